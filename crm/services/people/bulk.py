"""Bulk actions on many contacts at once: tag, untag, assign an owner, export as CSV.

Each action takes a select of contact ids (the ticked rows, or every contact a filter
matches) and runs as one set-based statement, whatever the number of contacts.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select, delete, exists, func, insert, literal, select, update
from sqlalchemy.orm import selectinload

from crm.database import read_only
from crm.extensions import db
from crm.models import Contact, Tag, contact_tags
from crm.services.people.contacts import clean_tag_names, owner_problem, tags_by_name
from crm.services.shared import signals
from crm.services.shared.csv_safe import csv_writer_rows
from crm.services.shared.errors import ValidationError
from crm.services.trust import audit

# Audit entries list the ids of up to this many contacts, and the count always.
AUDITED_IDS = 1000


def selected(ids: list[int]) -> Select:
    """Return a select of the ids of these contacts (the ticked rows)."""
    return select(Contact.id).where(Contact.id.in_(ids))


def _ids(selection: Select) -> list[int]:
    return list(db.session.scalars(selection.order_by(None).order_by(Contact.id)))


def _record(action: str, ids: list[int], actor_id: int | None, **details: Any) -> None:
    audit.record(action, "contact", None, user_id=actor_id,
                 after={**details, "count": len(ids), "contact_ids": ids[:AUDITED_IDS]})


def add_tag(selection: Select, name: str, *, actor_id: int | None = None, now=None) -> int:
    """Tag every selected contact; return how many did not have the tag before."""
    (tag,) = tags_by_name(clean_tag_names([name]))
    db.session.flush()
    ids = _ids(selection)
    has_tag = exists().where(contact_tags.c.contact_id == Contact.id, contact_tags.c.tag_id == tag.id)
    untagged = select(Contact.id).where(Contact.id.in_(selection.subquery().select()), ~has_tag)
    # Counted first: drivers differ in what rowcount says after INSERT … SELECT.
    added = db.session.scalar(select(func.count()).select_from(untagged.subquery()))
    db.session.execute(
        insert(contact_tags).from_select(["contact_id", "tag_id"], untagged.add_columns(literal(tag.id)))
    )
    _record("bulk_tag", ids, actor_id, tag=tag.name)
    db.session.expire_all()
    signals.after_contacts_changed(ids, now=now)
    return added


def remove_tag(selection: Select, name: str, *, actor_id: int | None = None, now=None) -> int:
    """Take a tag off every selected contact; return how many had it."""
    (name,) = clean_tag_names([name])
    ids = _ids(selection)
    result = db.session.execute(
        delete(contact_tags).where(
            contact_tags.c.contact_id.in_(selection.subquery().select()),
            contact_tags.c.tag_id.in_(select(Tag.id).where(Tag.name == name)),
        )
    )
    _record("bulk_untag", ids, actor_id, tag=name)
    db.session.expire_all()
    signals.after_contacts_changed(ids, now=now)
    return result.rowcount


def assign_owner(selection: Select, owner_id: int | None, *, actor_id: int | None = None, now=None) -> int:
    """Make one user the owner of every selected contact (None: nobody); return how many."""
    if reason := owner_problem(owner_id):
        raise ValidationError(fields={"owner": reason})
    ids = _ids(selection)
    db.session.execute(
        update(Contact).where(Contact.id.in_(selection.subquery().select())).values(owner_id=owner_id)
        .execution_options(synchronize_session=False)
    )
    _record("bulk_owner", ids, actor_id, owner_id=owner_id)
    db.session.expire_all()
    signals.after_contacts_changed(ids, now=now)
    return len(ids)


# ---------------------------------------------------------------------------
# CSV export

CSV_COLUMNS = (
    ("id", lambda c: c.id),
    ("first_name", lambda c: c.first_name),
    ("last_name", lambda c: c.last_name),
    ("email", lambda c: c.email_display or c.email),
    ("phone", lambda c: c.phone),
    ("company", lambda c: c.company),
    ("title", lambda c: c.title),
    ("city", lambda c: c.city),
    ("country", lambda c: c.country),
    ("stage", lambda c: c.stage),
    ("health", lambda c: c.health),
    ("lead_score", lambda c: c.lead_score),
    ("order_count", lambda c: c.order_count),
    ("total_spent", lambda c: c.total_spent),
    ("last_order_at", lambda c: c.last_order_at.isoformat() if c.last_order_at else None),
    ("owner", lambda c: c.owner.email if c.owner else None),
    ("tags", lambda c: ", ".join(t.name for t in c.tags)),
    ("consent", lambda c: "yes" if c.consent else "no"),
    ("do_not_contact", lambda c: "yes" if c.do_not_contact else "no"),
    ("created_at", lambda c: c.created_at.isoformat() if c.created_at else None),
)
EXPORT_BATCH = 500


def csv_lines(contacts: Select) -> Iterator[str]:
    """Yield a CSV file of these contacts line by line (header first), reading them in batches
    so that memory stays flat however many there are; cells are made safe by csv_safe."""
    query = contacts.options(selectinload(Contact.owner), selectinload(Contact.tags)).execution_options(
        yield_per=EXPORT_BATCH
    )

    def rows():
        # A long export must not hold SQLite's write lock: the caller commits its audit entry
        # first, so this read begins a new, deferred transaction.
        with read_only():
            for contact in db.session.scalars(query):
                yield [value(contact) for _, value in CSV_COLUMNS]

    yield "\ufeff"  # the BOM tells spreadsheets the file is UTF-8
    yield from csv_writer_rows(rows(), [name for name, _ in CSV_COLUMNS])


def record_export(selection: Select, *, actor_id: int | None, description: dict[str, Any]) -> int:
    """Write the audit entry for an export and return how many contacts it holds."""
    ids = _ids(selection)
    _record("export", ids, actor_id, **description)
    return len(ids)
