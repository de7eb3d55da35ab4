"""The figures stored on each contact from their orders and interactions, refreshed set-based."""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select, update

from crm.extensions import db
from crm.models import PAID_STATUSES, Contact, Interaction, Order

BATCH = 500


def _paid_orders(column):
    return (
        select(column)
        .where(Order.contact_id == Contact.id, Order.status.in_(PAID_STATUSES))
        .scalar_subquery()
    )


def refresh(contact_ids: Iterable[int] | None = None) -> None:
    """Recompute order count, total spent, first/last order and last interaction.

    One UPDATE per batch of contacts (or one for everyone when no ids are given),
    so the cost does not grow with the number of ORM objects.
    """
    values = {
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
    if contact_ids is None:
        db.session.execute(update(Contact).values(**values).execution_options(synchronize_session=False))
    else:
        ids = sorted(set(contact_ids))
        for start in range(0, len(ids), BATCH):
            chunk = ids[start:start + BATCH]
            db.session.execute(
                update(Contact).where(Contact.id.in_(chunk)).values(**values)
                .execution_options(synchronize_session=False)
            )
    db.session.expire_all()
