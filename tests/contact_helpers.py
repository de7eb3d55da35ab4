"""Factories for contacts and their history, for the contact tests (users: tests/helpers.py)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from itertools import count

from crm.extensions import db
from tests.helpers import make_user, sign_in  # noqa: F401  (re-exported for the contact tests)
from crm.models import (
    Contact, ContactExternalId, Interaction, Order, OrderLine, ScoreHistory, StageChange, Tag, Task, User,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
_numbers = count(1)


def make_contact(**fields) -> Contact:
    """Return a flushed contact; `tags` takes names."""
    number = next(_numbers)
    tag_names = fields.pop("tags", [])
    values = {
        "first_name": f"First{number}", "last_name": f"Last{number}", "email": f"person{number}@example.com",
        "created_at": NOW - timedelta(days=number),
    }
    values.update(fields)
    if values.get("email") and "email_display" not in fields:
        values["email_display"] = values["email"]
    contact = Contact(**values)
    if tag_names:
        existing = {t.name: t for t in db.session.query(Tag).filter(Tag.name.in_(tag_names))}
        contact.tags = [existing.get(name) or Tag(name=name) for name in tag_names]
    db.session.add(contact)
    db.session.flush()
    return contact


def make_order(contact: Contact, placed_at: datetime, total: str = "20.00", status: str = "paid",
               lines: int = 1, **fields) -> Order:
    number = next(_numbers)
    order = Order(contact_id=contact.id, source=fields.pop("source", "shopify"), external_id=f"o{number}",
                  number=f"#{1000 + number}", placed_at=placed_at, status=status, total=Decimal(total),
                  subtotal=Decimal(total), **fields)
    order.lines = [OrderLine(sku=f"SKU{i}", name=f"Tea {i}", quantity=1, unit_price=Decimal(total))
                   for i in range(lines)]
    db.session.add(order)
    db.session.flush()
    return order


def make_interaction(contact: Contact, occurred_at: datetime, kind: str = "call", author: User | None = None,
                     **fields) -> Interaction:
    interaction = Interaction(contact_id=contact.id, kind=kind, occurred_at=occurred_at,
                              author_id=author.id if author else None,
                              subject=fields.pop("subject", f"{kind} {next(_numbers)}"), **fields)
    db.session.add(interaction)
    db.session.flush()
    return interaction


def make_task(contact: Contact, created_at: datetime, status: str = "open", rule_key: str | None = None,
              **fields) -> Task:
    task = Task(contact_id=contact.id, kind=fields.pop("kind", "call"), rule_key=rule_key,
                title=fields.pop("title", f"Call back {next(_numbers)}"), created_at=created_at,
                due_at=fields.pop("due_at", created_at + timedelta(days=2)), status=status, **fields)
    db.session.add(task)
    db.session.flush()
    return task


def make_stage_change(contact: Contact, changed_at: datetime, to_stage: str = "consideration",
                      from_stage: str | None = "awareness", **fields) -> StageChange:
    change = StageChange(contact_id=contact.id, from_stage=from_stage, to_stage=to_stage, changed_at=changed_at,
                         reason=fields.pop("reason", "Asked a question"), **fields)
    db.session.add(change)
    db.session.flush()
    return change


def make_score(contact: Contact, computed_at: datetime, score: int = 40) -> ScoreHistory:
    row = ScoreHistory(contact_id=contact.id, score=score, breakdown=[], computed_at=computed_at)
    db.session.add(row)
    db.session.flush()
    return row


def link_external_id(contact: Contact, source: str, external_id: str) -> ContactExternalId:
    row = ContactExternalId(contact_id=contact.id, source=source, external_id=external_id)
    db.session.add(row)
    db.session.flush()
    return row


def hx(**extra) -> dict[str, str]:
    """Return the headers of a (non-boosted) htmx request."""
    return {"HX-Request": "true", **extra}
