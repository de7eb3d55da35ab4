"""Data for browser tests, made through the services in the test's app context.

Everything returned is plain values (ids, names), never ORM objects: reading a lazy attribute
later would open a write transaction in the test thread and make the live server's writes
wait. Read what the browser wrote with `db_rows` / `db_scalar`, which end their transaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import func, select

from crm.database import read_only
from crm.extensions import db
from crm.services.orders import recording as orders_service
from crm.services.orders.importing.records import ZERO, CustomerRecord, LineRecord, OrderRecord
from crm.services.people import contacts, interactions, tasks
from crm.services.staff import users
from tests.conftest import PASSWORD


@dataclass(frozen=True)
class SeededUser:
    id: int
    email: str
    name: str
    role: str
    password: str = PASSWORD


@dataclass(frozen=True)
class SeededContact:
    id: int
    name: str
    email: str


@dataclass(frozen=True)
class SeededTask:
    id: int
    title: str
    contact_id: int


@dataclass(frozen=True)
class Shop:
    """The seeded shop: who can sign in, and the contacts the workflows use."""

    users: dict[str, SeededUser]  # by role: admin, sales, support, viewer
    customer: SeededContact  # Anna de Vries: three paid orders, a call, a note, an open to-do
    lead: SeededContact  # Björn Åberg: asked about bulk prices, never ordered
    subscriber: SeededContact  # Carla Rossi: signed up for the newsletter, nothing since
    task: SeededTask  # Anna's open to-do, due today, assigned to the sales user
    now: datetime


def ensure_user(role: str) -> SeededUser:
    """Return the user `<role>@example.com` (password PASSWORD), creating them if needed."""
    user = users.by_email(f"{role}@example.com")
    if user is None:
        user = users.create_user(f"{role}@example.com", f"{role.title()} User", role, PASSWORD)
    seeded = SeededUser(user.id, user.email, user.name, user.role)
    db.session.commit()
    return seeded


def _seeded(contact) -> SeededContact:
    return SeededContact(contact.id, contact.name, contact.email)


def _paid_order(contact: SeededContact, number: int, placed_at: datetime,
                lines: list[tuple[str, str, int, str]]) -> OrderRecord:
    """Return a fulfilled Shopify order of this contact, as an import would read it."""
    items = [LineRecord(sku=sku, name=name, quantity=qty, unit_price=Decimal(price)) for sku, name, qty, price in lines]
    subtotal = sum((item.unit_price * item.quantity for item in items), Decimal("0"))
    customer = CustomerRecord(line=1, source="shopify", email=contact.email.lower(), email_display=contact.email)
    return OrderRecord(line=1, source="shopify", external_id=str(5_500_000 + number), number=f"#{number}",
                       placed_at=placed_at, status="fulfilled", currency="EUR", subtotal=subtotal,
                       discount=ZERO, shipping=ZERO, tax=ZERO, total=subtotal, refunded=ZERO,
                       customer=customer, lines=items)


def seed_shop(now: datetime | None = None) -> Shop:
    """Create the small shop every workflow test can start from, commit it, return its ids."""
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    team = {role: ensure_user(role) for role in ("admin", "sales", "support", "viewer")}
    author = team["support"].id

    anna = contacts.create_contact(
        {"email": "Anna.de.Vries@example.nl", "first_name": "Anna", "last_name": "de Vries",
         "phone": "+31 20 555 0101", "city": "Amsterdam", "country": "NL", "consent": True},
        actor_id=team["admin"].id, source="shopify", tags=["vip"], now=now)
    bjorn = contacts.create_contact(
        {"email": "bjorn@example.se", "first_name": "Björn", "last_name": "Åberg", "company": "Kontor AB",
         "city": "Stockholm", "country": "SE"}, actor_id=team["admin"].id, now=now)
    carla = contacts.create_contact(
        {"email": "carla.rossi@example.it", "first_name": "Carla", "last_name": "Rossi", "country": "IT",
         "consent": True, "consent_source": "newsletter form"}, actor_id=team["admin"].id, source="newsletter",
        tags=["newsletter"], now=now)

    orders = [_paid_order(_seeded(anna), number, now - timedelta(days=days_ago), lines) for number, days_ago, lines in (
        (1001, 200, [("TEA-DJ-100", "Darjeeling First Flush 100g", 2, "18.00"), ("POT-CI-BLU", "Cast Iron Teapot - Blue", 1, "48.00")]),
        (1003, 120, [("TEA-DJ-100", "Darjeeling First Flush 100g", 3, "12.00")]),
        (1007, 20, [("TEA-SK-050", "Sencha Kyoto 50g", 2, "24.00")]),
    )]
    recorded = orders_service.record_orders(orders, actor_id=team["admin"].id, now=now,
                                            contact_ids=[anna.id] * len(orders))
    assert [o.result for o in recorded.outcomes] == ["created"] * 3, recorded.outcomes
    interactions.log_interaction(anna, {"kind": "call", "direction": "inbound", "channel": "phone",
                                        "subject": "Asked when the Sencha is back in stock", "outcome": "Promised an email",
                                        "occurred_at": now - timedelta(days=19)}, author_id=author, now=now)
    interactions.log_interaction(anna, {"kind": "note", "direction": "internal",
                                        "subject": "Prefers email", "body": "Prefers email over phone.",
                                        "occurred_at": now - timedelta(days=5)}, author_id=author, now=now)
    interactions.log_interaction(bjorn, {"kind": "email", "direction": "inbound", "channel": "email",
                                         "subject": "Bulk prices for the office?",
                                         "occurred_at": now - timedelta(days=2)}, author_id=author, now=now)
    task = tasks.create_task(anna, {"kind": "call", "title": "Satisfaction call after the Sencha order",
                                    "reason": "Third order 20 days ago", "due_at": now,
                                    "assignee_id": team["sales"].id}, actor_id=team["admin"].id, now=now)

    shop = Shop(users=team, customer=_seeded(anna), lead=_seeded(bjorn), subscriber=_seeded(carla),
                task=SeededTask(task.id, task.title, task.contact_id), now=now)
    db.session.commit()
    return shop


def db_rows(statement) -> list:
    """Return the rows of a query as the database holds them now, in a transaction of its own."""
    db.session.rollback()  # drop any snapshot older than what the browser just did
    with read_only():
        try:
            return db.session.execute(statement).all()
        finally:
            db.session.rollback()


def db_scalar(statement):
    """Return the first column of the first row of a query, read as `db_rows` reads."""
    rows = db_rows(statement)
    return rows[0][0] if rows else None


def count(model, *where) -> int:
    """Return how many rows of a model match the conditions, as the database holds them now."""
    return db_scalar(select(func.count()).select_from(model).where(*where)) or 0

