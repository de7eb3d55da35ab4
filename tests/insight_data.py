"""Hand-made shop data for the insight tests, inserted directly (no journey engine involved)."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from crm.extensions import db
from crm.models import Contact, Order, StageChange, Task
from crm.services.orders import aggregates

UTC = timezone.utc
# A fixed "now" for every test: the middle of June 2026.
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
_numbers = itertools.count(1)


def at(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def days(n: float) -> timedelta:
    return timedelta(days=n)


def contact(first_name: str = "Anna", stage: str = "awareness", **fields) -> Contact:
    """Add a contact with the given stored fields (stage, lead_score, predictions …) and flush."""
    number = next(_numbers)
    made = Contact(first_name=first_name, last_name=fields.pop("last_name", "Tester"),
                   email=fields.pop("email", f"{first_name.lower()}{number}@example.com"), stage=stage, **fields)
    db.session.add(made)
    db.session.flush()
    return made


def order(customer: Contact, placed_at: datetime, total: str = "50.00", status: str = "paid",
          refunded: str = "0.00") -> Order:
    number = next(_numbers)
    made = Order(contact_id=customer.id, source="test", external_id=str(number), number=f"#{number}",
                 placed_at=placed_at, status=status, total=Decimal(total), subtotal=Decimal(total),
                 refunded=Decimal(refunded))
    db.session.add(made)
    db.session.flush()
    return made


def journey(customer: Contact, *steps: tuple[str, datetime]) -> None:
    """Record the stage history of a contact: (stage, when) pairs in order; the contact ends in the last."""
    previous = None
    for stage, when in steps:
        db.session.add(StageChange(contact_id=customer.id, from_stage=previous, to_stage=stage, changed_at=when))
        previous = stage
    customer.stage, customer.stage_since = previous, steps[-1][1]
    db.session.flush()


def task(customer: Contact, assignee_id: int | None, due_at: datetime, **fields) -> Task:
    made = Task(contact_id=customer.id, assignee_id=assignee_id, kind=fields.pop("kind", "call"),
                title=fields.pop("title", f"Call {customer.first_name}"), due_at=due_at, **fields)
    db.session.add(made)
    db.session.flush()
    return made


def refresh_aggregates() -> None:
    """Bring the stored order count, total spent and first/last order up to date, as the services do."""
    aggregates.refresh()
    db.session.commit()
