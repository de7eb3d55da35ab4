"""The figures stored on each contact from their orders and interactions, refreshed set-based."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cache

from sqlalchemy import bindparam, func, or_, select, update

from crm.extensions import db
from crm.models import PAID_STATUSES, Contact, Interaction, Order
from crm.services.insight import summaries

BATCH = 500


def _paid_orders(column):
    return (
        select(column)
        .where(Order.contact_id == Contact.id, Order.status.in_(PAID_STATUSES))
        .scalar_subquery()
    )


def _figures() -> dict:
    return {
        "order_count": _paid_orders(func.count(Order.id)),
        # ROUND keeps SQLite's float SUM to cents; PostgreSQL sums numerics exactly anyway.
        "total_spent": func.coalesce(_paid_orders(func.round(func.sum(Order.total - Order.refunded), 2)), 0),
        "first_order_at": _paid_orders(func.min(Order.placed_at)),
        "last_order_at": _paid_orders(func.max(Order.placed_at)),
        "last_interaction_at": select(func.max(Interaction.occurred_at))
        .where(Interaction.contact_id == Contact.id)
        .scalar_subquery(),
        # Derived figures changing is not an edit of the contact: keep updated_at as it was.
        "updated_at": Contact.updated_at,
    }


@cache
def _update_some():
    """The UPDATE for a list of contacts, built once: a Core statement taking the ids as one
    expanding parameter, so each call only binds them (an order through the API refreshes one)."""
    contacts = Contact.__table__
    return update(contacts).where(contacts.c.id.in_(bindparam("ids", expanding=True))).values(**_figures())


def refresh(contact_ids: Iterable[int] | None = None, new_orders: Mapping[int, Sequence[int]] | None = None) -> None:
    """Recompute order count, total spent, first/last order and last interaction, and the
    dashboard's summaries (crm.services.insight.summaries) for these contacts' orders and journeys.

    Every order write, refund, cancellation, merge and contact deletion ends here with the
    contacts it touched (a deleted contact's id included, so its rows are taken out).

    One UPDATE per batch of contacts (or one for everyone when no ids are given),
    so the cost does not grow with the number of ORM objects.

    `new_orders` ({contact: ids of orders just inserted}) names contacts that existed before and
    whose only change is those new orders (recording.record_orders): their summaries add the new
    orders instead of reading all of theirs again, and their journey, which no order changes, is
    left as it is.
    """
    if contact_ids is None:
        db.session.execute(update(Contact).values(**_figures()).execution_options(synchronize_session=False))
        summaries.rebuild(summaries.built_zone())
    else:
        ids = sorted(set(contact_ids))
        for start in range(0, len(ids), BATCH):
            chunk = ids[start:start + BATCH]
            _lock(chunk)
            db.session.execute(_update_some(), {"ids": chunk})
        # The dashboard's summaries, in the same transaction, under the locks taken above: the
        # orders', and the journey's (a contact new from an order, merged or deleted).
        summaries.update(ids, new_orders)
        summaries.update_journeys([c for c in ids if not new_orders or c not in new_orders])
    db.session.expire_all()


def _lock(ids: list[int]) -> None:
    """On PostgreSQL, lock the contacts' rows (in id order, so writers never deadlock) before
    counting their orders.

    Without it two writers adding orders for one contact at once each count with a snapshot that
    misses the other's order, and the later UPDATE wins: one order lost from the figures. With
    it, the second writer waits, and its UPDATE (a new statement, so a new snapshot under READ
    COMMITTED) counts both. NO KEY UPDATE does not conflict with the key-share locks that
    inserting an order takes on its contact, so it adds no deadlock of its own. SQLite's writers
    already run one at a time.
    """
    if db.session.get_bind().dialect.name != "postgresql":
        return
    db.session.execute(select(Contact.id).where(Contact.id.in_(ids)).order_by(Contact.id)
                       .with_for_update(key_share=True))  # FOR NO KEY UPDATE


def stale_ids() -> list[int]:
    """Return the ids of contacts whose stored figures differ from a count of their orders and
    interactions now (a lost update, a hand edit, an older version's bug), in id order."""
    paid = (
        select(Order.contact_id.label("contact_id"), func.count(Order.id).label("n"),
               func.round(func.sum(Order.total - Order.refunded), 2).label("spent"),
               func.min(Order.placed_at).label("first"), func.max(Order.placed_at).label("last"))
        .where(Order.status.in_(PAID_STATUSES)).group_by(Order.contact_id).subquery()
    )
    touched = (select(Interaction.contact_id.label("contact_id"), func.max(Interaction.occurred_at).label("at"))
               .group_by(Interaction.contact_id).subquery())
    query = (
        select(Contact.id)
        .outerjoin(paid, paid.c.contact_id == Contact.id)
        .outerjoin(touched, touched.c.contact_id == Contact.id)
        .where(or_(
            Contact.order_count != func.coalesce(paid.c.n, 0),
            Contact.total_spent != func.coalesce(paid.c.spent, 0),
            Contact.first_order_at.is_distinct_from(paid.c.first),
            Contact.last_order_at.is_distinct_from(paid.c.last),
            Contact.last_interaction_at.is_distinct_from(touched.c.at),
        ))
        .order_by(Contact.id)
    )
    return list(db.session.scalars(query))


def repair() -> int:
    """Recompute the figures of every contact whose stored ones drifted from their orders; return how many.

    `crm refresh` runs this first, so figures a crash or a race left wrong are put right nightly.
    """
    ids = stale_ids()
    if ids:
        refresh(ids)
    return len(ids)
