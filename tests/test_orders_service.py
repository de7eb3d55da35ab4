"""The one path every order takes: matching the customer, idempotent insert, updates, aggregates."""
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import func, select

from crm.extensions import db
from crm.models import AuditEntry, Contact, ContactExternalId, ErasedEmail, Order, OrderLine
from crm.services.orders import recording as orders
from crm.services.orders.importing.records import CustomerRecord, LineRecord, OrderRecord, Rejected
from crm.services.orders.importing.shopify import read_shopify_orders
from crm.services.trust import privacy
from tests.helpers import FIXTURES


def order(external_id="1001", email="anna@example.com", total="20.00", status="paid", customer_id=None,
          lines=(("SKU-1", "Tea", 2, "10.00"),), source="shopify", **extra):
    customer = CustomerRecord(line=2, source=source, external_id=customer_id, email=email, email_display=email,
                              first_name=extra.pop("first_name", "Anna"), last_name="Schmidt",
                              phone=extra.pop("phone", None))
    return OrderRecord(
        line=2, source=source, external_id=external_id, number=f"#{external_id}",
        placed_at=extra.pop("placed_at", datetime(2026, 3, 1, 10, tzinfo=timezone.utc)), status=status,
        currency="EUR", subtotal=Decimal(total), discount=Decimal("0"), shipping=Decimal("0"), tax=Decimal("0"),
        total=Decimal(total), refunded=extra.pop("refunded", Decimal("0")), customer=customer,
        lines=[LineRecord(sku, name, qty, Decimal(price)) for sku, name, qty, price in lines],
    )


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_a_new_order_creates_the_contact_and_the_order_with_lines(app):
    outcome = orders.record_order(order())
    db.session.commit()
    assert (outcome.result, outcome.contact_created) == ("created", True)
    stored = db.session.get(Order, outcome.order_id)
    assert stored.total == Decimal("20.00") and [l.sku for l in stored.lines] == ["SKU-1"]
    contact = db.session.get(Contact, outcome.contact_id)
    assert (contact.email, contact.first_name, contact.order_count, contact.total_spent) == (
        "anna@example.com", "Anna", 1, Decimal("20.00"))
    assert contact.first_order_at == datetime(2026, 3, 1, 10, tzinfo=timezone.utc)


def test_the_same_order_twice_changes_nothing(app):
    orders.record_order(order())
    db.session.commit()
    again = orders.record_order(order())
    db.session.commit()
    assert again.result == "unchanged" and not again.contact_created
    assert (count(Order), count(OrderLine), count(Contact)) == (1, 1, 1)


def test_a_changed_order_updates_status_totals_and_lines_instead_of_duplicating(app):
    first = orders.record_order(order())
    db.session.commit()
    changed = orders.record_order(order(status="refunded", refunded=Decimal("20.00"),
                                        lines=(("SKU-1", "Tea", 1, "10.00"), ("SKU-2", "Cup", 1, "10.00"))))
    db.session.commit()
    assert (changed.result, changed.order_id) == ("updated", first.order_id)
    stored = db.session.get(Order, first.order_id)
    assert stored.status == "refunded" and sorted(l.sku for l in stored.lines) == ["SKU-1", "SKU-2"]
    contact = db.session.get(Contact, first.contact_id)
    assert (contact.order_count, contact.total_spent) == (0, Decimal("0.00"))
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "update", AuditEntry.entity == "order")).after["status"] == "refunded"


def test_customer_matched_by_source_id_before_email(app):
    orders.record_order(order("1", email="old@example.com", customer_id="C-9"))
    outcome = orders.record_order(order("2", email="new@example.com", customer_id="C-9"))
    db.session.commit()
    assert not outcome.contact_created and count(Contact) == 1
    assert db.session.scalar(select(ContactExternalId.external_id)) == "C-9"


def test_customer_matched_by_normalised_email(app):
    orders.record_order(order("1", email="anna@example.com"))
    outcome = orders.record_order(order("2", email="anna@example.com", customer_id="S-1"))
    db.session.commit()
    assert not outcome.contact_created and count(Contact) == 1
    assert db.session.get(Contact, outcome.contact_id).order_count == 2


def test_one_batch_with_the_same_new_customer_twice_makes_one_contact(app):
    summary = orders.record_orders([order("1"), order("2"), order("1", total="25.00")])
    db.session.commit()
    assert [o.result for o in summary.outcomes] == ["created", "created", "updated"]
    assert count(Contact) == 1 and count(Order) == 2 and summary.contacts_created == 1
    assert db.session.scalar(select(Order.total).where(Order.external_id == "1")) == Decimal("25.00")


def test_a_bad_phone_in_a_shop_export_does_not_lose_the_order(app):
    outcome = orders.record_order(order(phone="not a phone"))
    db.session.commit()
    contact = db.session.get(Contact, outcome.contact_id)
    assert outcome.result == "created" and contact.phone is None and contact.first_name == "Anna"


def test_blank_fields_of_a_known_contact_are_filled_not_overwritten(app):
    orders.record_order(order("1", first_name=""))
    outcome = orders.record_order(order("2", first_name="Annabel", phone="+49 30 1234567"))
    db.session.commit()
    contact = db.session.get(Contact, outcome.contact_id)
    assert (contact.first_name, contact.phone) == ("Annabel", "+49301234567")
    orders.record_order(order("3", first_name="Other"))
    db.session.commit()
    assert db.session.get(Contact, outcome.contact_id).first_name == "Annabel"


def test_an_erased_and_blocked_email_is_not_imported_again(app):
    db.session.add(ErasedEmail(email_hash=privacy.email_hash("anna@example.com")))
    db.session.commit()
    outcome = orders.record_order(order())
    assert outcome.result == "rejected" and "blocked" in outcome.reason
    assert count(Order) == 0 and count(Contact) == 0


def test_the_shopify_fixture_goes_in_once(app):
    path = FIXTURES / "shopify" / "orders_export.csv"
    items = list(read_shopify_orders(path))
    records = [i for i in items if isinstance(i, OrderRecord)]
    assert [i.line for i in items if isinstance(i, Rejected)]
    first = orders.record_orders(records)
    db.session.commit()
    assert first.count("created") == len(records)
    second = orders.record_orders(records)
    db.session.commit()
    assert second.count("unchanged") == len(records)
    # #1001 and #1003 are one customer whose email was written differently.
    owners = dict(db.session.execute(select(Order.number, Order.contact_id)).all())
    assert owners["#1001"] == owners["#1003"]
