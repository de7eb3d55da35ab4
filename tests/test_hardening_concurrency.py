"""Writers at once (issue 12, findings 4 and 5): on PostgreSQL (`bash .ci/with-postgres …`) these are
real races between transactions; on SQLite they check the same rules with the writers queued.

Each thread has its own app context, so its own session and connection, as gunicorn workers would.
"""
from __future__ import annotations

import threading
import traceback
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from crm.extensions import db
from crm.models import PAID_STATUSES, Contact, Order, User
from crm.services.orders import aggregates
from crm.services.orders import recording as orders
from crm.services.orders.importing.records import CustomerRecord, OrderRecord
from tests.conftest import PASSWORD

THREADS = 6
ORDERS_EACH = 8


def _run_threads(app, target, count=THREADS):
    errors: list[str] = []
    barrier = threading.Barrier(count)

    def main(n):
        try:
            with app.app_context():
                barrier.wait(timeout=30)
                target(n)
                db.session.remove()
        except BaseException:
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=main, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    return errors


def _order(key: str, email: str, total: str) -> OrderRecord:
    from crm.services.orders.importing.records import parse_timestamp

    return OrderRecord(line=1, source="api", external_id=key, number=key, placed_at=parse_timestamp("2026-03-01"),
                       status="paid", currency="EUR", subtotal=Decimal(total), total=Decimal(total), discount=Decimal(0),
                       shipping=Decimal(0), tax=Decimal(0), refunded=Decimal(0),
                       customer=CustomerRecord(line=1, source="api", email=email, email_display=email))


def assert_aggregates_match_orders():
    db.session.expire_all()
    paid = dict(db.session.execute(select(Order.contact_id, func.count()).where(Order.status.in_(PAID_STATUSES))
                                   .group_by(Order.contact_id)).all())
    spent = dict(db.session.execute(select(Order.contact_id, func.sum(Order.total - Order.refunded))
                                    .where(Order.status.in_(PAID_STATUSES)).group_by(Order.contact_id)).all())
    for contact in db.session.scalars(select(Contact)):
        assert contact.order_count == paid.get(contact.id, 0), contact.email
        assert Decimal(contact.total_spent) == Decimal(spent.get(contact.id, 0) or 0).quantize(Decimal("0.01")), contact.email
    assert aggregates.stale_ids() == []


@pytest.mark.slow
def test_concurrent_orders_for_new_emails_make_one_contact_and_exact_figures(app):
    """Every writer orders for the same two new emails at once: no IntegrityError, one contact per
    email, and every stored figure equal to a count of the orders (no lost update)."""
    db.session.commit()

    def write(n):
        for i in range(ORDERS_EACH):
            email = f"race{i % 2}@example.com"
            outcome = orders.record_order(_order(f"T{n}-{i}", email, "10.00"))
            assert outcome.result == "created", outcome
            db.session.commit()

    errors = _run_threads(app, write)
    assert errors == []
    assert db.session.scalar(select(func.count()).select_from(Contact)) == 2
    assert db.session.scalar(select(func.count()).select_from(Order)) == THREADS * ORDERS_EACH
    assert_aggregates_match_orders()
    counts = sorted(db.session.scalars(select(Contact.order_count)))
    assert counts == [THREADS * ORDERS_EACH // 2] * 2


def test_crm_refresh_repairs_figures_that_drifted_from_the_orders(app, runner):
    for i in range(3):
        orders.record_order(_order(f"R-{i}", "drift@example.com", "5.00"))
    orders.record_order(_order("R-x", "other@example.com", "7.00"))
    db.session.commit()
    db.session.execute(update(Contact).where(Contact.email == "drift@example.com")
                       .values(order_count=2, total_spent=Decimal("10.00")))
    db.session.commit()
    assert len(aggregates.stale_ids()) == 1
    result = runner.invoke(args=["refresh"])
    assert result.exit_code == 0, result.output
    assert "Recounted the orders of 1 contact" in result.output
    assert_aggregates_match_orders()


@pytest.mark.slow
def test_concurrent_first_run_setups_create_exactly_one_admin(app):
    db.session.commit()
    statuses: list[int] = []

    def setup(n):
        client = app.test_client()
        response = client.post("/setup", data={"name": f"Admin {n}", "email": f"admin{n}@example.com",
                                               "password": PASSWORD, "confirm": PASSWORD})
        statuses.append(response.status_code)

    errors = _run_threads(app, setup, count=8)
    assert errors == []
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(User)) == 1
    assert sorted(statuses).count(302) == 1 and all(s in (302, 404) for s in statuses), statuses
