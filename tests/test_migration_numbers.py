"""Migration 0003_numbers: stored Shopify `authorized` orders become paid, with their contacts' figures."""
from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from crm.extensions import db
from crm.models import Contact, Order, WebhookDelivery

MIGRATION = Path(__file__).resolve().parents[1] / "migrations" / "versions" / "0005_numbers.py"


def _migration():
    spec = importlib.util.spec_from_file_location("migration_0003_numbers", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stored(email, external_id, status, total, financial, *, fulfilment=None, cancelled=None, when=1):
    contact = db.session.scalar(select(Contact).where(Contact.email == email))
    if contact is None:
        contact = Contact(email=email, first_name=email.split("@")[0])
        db.session.add(contact)
        db.session.flush()
    placed = datetime(2026, 5, when, 10, tzinfo=UTC)
    db.session.add(Order(contact_id=contact.id, source="shopify", external_id=external_id, number=f"#{external_id}",
                         placed_at=placed, status=status, total=Decimal(total)))
    payload = {"id": int(external_id), "financial_status": financial, "fulfillment_status": fulfilment,
               "cancelled_at": cancelled}
    db.session.add(WebhookDelivery(source="shopify", delivery_id=f"d-{external_id}-{financial}", topic="orders/create",
                                   received_at=placed, status="processed", payload=json.dumps(payload)))
    db.session.flush()
    return contact


def test_the_migration_makes_authorized_orders_paid_and_recounts_their_customers(app):
    made_to_order = _stored("mo@example.com", "1", "pending", "80.00", "authorized")
    _stored("mo@example.com", "2", "pending", "20.00", "authorized", fulfilment="fulfilled", when=2)
    waiting = _stored("bank@example.com", "3", "pending", "15.00", "pending")
    voided = _stored("void@example.com", "4", "pending", "9.00", "authorized", cancelled="2026-05-02T10:00:00Z")
    db.session.commit()
    assert made_to_order.order_count == 0

    changed = _migration().rederive(db.session.connection())
    db.session.commit()
    db.session.expire_all()

    assert changed == 1
    statuses = dict(db.session.execute(select(Order.external_id, Order.status)).all())
    assert statuses == {"1": "paid", "2": "fulfilled", "3": "pending", "4": "pending"}
    mo = db.session.get(Contact, made_to_order.id)
    assert (mo.order_count, mo.total_spent) == (2, Decimal("100.00"))
    assert mo.first_order_at == datetime(2026, 5, 1, 10, tzinfo=UTC)
    assert mo.last_order_at == datetime(2026, 5, 2, 10, tzinfo=UTC)
    assert db.session.get(Contact, waiting.id).order_count == 0
    assert db.session.get(Contact, voided.id).order_count == 0
    # Safe to run again.
    assert _migration().rederive(db.session.connection()) == 0
