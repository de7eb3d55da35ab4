"""Making shop data for the engine tests through the services' own paths, at chosen times."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import event, func, select

from crm.extensions import db
from crm.models import Contact, Interaction, ScoreHistory, StageChange, Task
from crm.services.orders import recording as orders
from crm.services.orders.importing.records import CustomerRecord, LineRecord, OrderRecord
from crm.services.people import contacts, interactions
from crm.services.rules import engine

UTC = timezone.utc
# A Monday morning, well before the real date, so every test picks its own "now".
T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)


def days(n: float) -> timedelta:
    return timedelta(days=n)


def contact(email: str = "anna@example.com", now: datetime = T0, **fields) -> Contact:
    """A contact made through the contacts service (so the engine runs as for a person's edit)."""
    made = contacts.create_contact({"email": email, "first_name": email.split("@")[0].title(), **fields}, now=now)
    db.session.commit()
    return made


def order(external_id: str, email: str, placed_at: datetime, total: str = "50.00", status: str = "paid",
          refunded: str = "0.00") -> OrderRecord:
    customer = CustomerRecord(line=2, source="shopify", email=email, email_display=email)
    amount = Decimal(total)
    return OrderRecord(
        line=2, source="shopify", external_id=external_id, number=f"#{external_id}", placed_at=placed_at,
        status=status, currency="EUR", subtotal=amount, discount=Decimal("0"), shipping=Decimal("0"),
        tax=Decimal("0"), total=amount, refunded=Decimal(refunded), customer=customer,
        lines=[LineRecord("TEA-1", "Sencha", 1, amount)],
    )


def buy(external_id: str, email: str, placed_at: datetime, now: datetime | None = None, **kw) -> int:
    """Record an order through the one order path; return the contact id."""
    outcome = orders.record_order(order(external_id, email, placed_at, **kw), now=now or placed_at)
    db.session.commit()
    return outcome.contact_id


def log(contact_id: int, kind: str, when: datetime, direction: str = "inbound", **values) -> Interaction:
    """Log an interaction through the interactions service, at `when`."""
    made = interactions.log_interaction(db.session.get(Contact, contact_id),
                                        {"kind": kind, "direction": direction, "occurred_at": when, **values},
                                        author_id=None, now=when)
    db.session.commit()
    return made


def refresh(now: datetime):
    """Time passes: run the rules for everyone at `now`."""
    summary = engine.apply(None, now)
    db.session.commit()
    return summary


def stage_of(contact_id: int) -> str:
    return db.session.scalar(select(Contact.stage).where(Contact.id == contact_id))


def stage_changes(contact_id: int) -> list[tuple]:
    return [(c.from_stage, c.to_stage, c.changed_by_id) for c in db.session.scalars(
        select(StageChange).where(StageChange.contact_id == contact_id).order_by(StageChange.id))]


def tasks_of(contact_id: int) -> dict[str, Task]:
    """The contact's rule to-dos by rule name (the part of the key before the colon)."""
    return {t.rule_key.split(":")[0]: t for t in db.session.scalars(
        select(Task).where(Task.contact_id == contact_id, Task.rule_key.is_not(None)))}


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def history(contact_id: int) -> list[int]:
    return list(db.session.scalars(select(ScoreHistory.score).where(ScoreHistory.contact_id == contact_id)
                                   .order_by(ScoreHistory.id)))


class QueryCounter:
    """Counts the SQL statements sent while the block runs."""

    def __init__(self):
        self.statements: list[str] = []

    def _count(self, _conn, _cursor, statement, *_args):
        self.statements.append(statement)

    def __enter__(self):
        event.listen(db.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *_exc):
        event.remove(db.engine, "before_cursor_execute", self._count)

    def __len__(self):
        return len(self.statements)
