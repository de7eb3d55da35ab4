"""Orders through the API while other writers write (issue 15): the token's user is signed in and
the body read before SQLite's write lock is taken (`crm.database.writes_later`), the recording
itself under it. On PostgreSQL (`bash .ci/with-postgres …`) the other writer holds the contact's
row instead, and the same outcomes are checked.

Each thread sends its requests with its own test client and app context, so each thread has its
own session and connection, as a gunicorn worker has.
"""
from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from flask import g, has_app_context
from sqlalchemy import func, select

from crm.extensions import db
from crm.models import AuditEntry, Contact, Order
from crm.services.insight import summaries
from crm.services.people import contacts
from crm.services.staff import api_tokens, users
from tests.conftest import make_user
from tests.test_hardening_concurrency import _run_threads, assert_aggregates_match_orders

THREADS = 4
ORDERS_EACH = 6


def _token() -> str:
    user = users.by_email("sales@example.com") or make_user("sales")
    _row, plain = api_tokens.create_token(user, "shop")
    db.session.commit()
    return plain


def _order(key: str, email: str, total: str = "10.00") -> dict:
    return {"order_id": key, "source": "shop", "email": email, "placed_at": "2026-03-01T10:00:00Z",
            "status": "paid", "currency": "EUR", "total": total,
            "lines": [{"sku": "TEA-1", "name": "Sencha", "quantity": 1, "unit_price": total}]}


def _post(app, token: str, body: dict):
    if has_app_context():
        g.pop("_login_user", None)  # the test's app context is shared: each request signs in afresh
    return app.test_client().post("/api/v1/orders", json=body, headers={"Authorization": f"Bearer {token}"})


class OtherWriter:
    """Another writer holding what an order for `contact_id` needs: SQLite's write lock, or on
    PostgreSQL the contact's row, until `release()`."""

    def __init__(self, contact_id: int):
        self.connection = db.engine.connect()
        self.sqlite = db.engine.dialect.name == "sqlite"
        if self.sqlite:
            self.connection.exec_driver_sql("SELECT 1")  # begun with BEGIN IMMEDIATE: the lock is held
        else:
            self.connection.exec_driver_sql(f"SELECT id FROM contacts WHERE id = {int(contact_id)} FOR UPDATE")

    def release(self) -> None:
        self.connection.rollback()
        self.connection.close()


def test_refusals_are_answered_at_once_while_another_writer_holds_the_lock(app):
    """A viewer's token (403) and a body the API cannot take (422) are answered without waiting
    for another writer (an import, the other worker's order); before, the request took SQLite's
    write lock first and waited for it (the busy timeout, 30 s)."""
    contact = contacts.create_contact({"first_name": "Anna", "email": "anna@example.nl"})
    db.session.commit()
    token = _token()
    viewer = users.by_email("viewer@example.com") or make_user("viewer")
    _row, viewer_token = api_tokens.create_token(viewer, "reader")
    db.session.commit()
    contact_id = contact.id
    db.session.commit()  # the test's own session holds no lock
    other = OtherWriter(contact_id)
    try:
        started = time.monotonic()
        forbidden = _post(app, viewer_token, _order("A-0", "anna@example.nl"))
        invalid = _post(app, token, {**_order("A-0", "anna@example.nl"), "total": "lots"})
        took = time.monotonic() - started
    finally:
        other.release()
    assert (forbidden.status_code, invalid.status_code) == (403, 422)
    assert took < 5, f"the refusals waited {took:.1f} s for the other writer"
    assert _post(app, token, _order("A-1", "anna@example.nl")).status_code == 201
    db.session.expire_all()
    assert [order.external_id for order in db.session.scalars(select(Order))] == ["A-1"]


def test_an_order_waits_for_the_other_writer_then_is_stored_once(app):
    contact = contacts.create_contact({"first_name": "Anna", "email": "anna@example.nl"})
    db.session.commit()
    token = _token()
    contact_id = contact.id
    db.session.commit()  # the test's own session holds no lock
    other = OtherWriter(contact_id)
    answers = []
    sender = threading.Thread(target=lambda: answers.append(_post(app, token, _order("A-1", "anna@example.nl", "12.50"))))
    try:
        sender.start()
        sender.join(timeout=0.5)
        assert sender.is_alive(), "the order did not wait for the other writer"
    finally:
        other.release()
    sender.join(timeout=60)
    assert [answer.status_code for answer in answers] == [201]
    assert answers[0].json["total"] == "12.50" and answers[0].json["result"] == "created"
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Order)) == 1
    assert db.session.get(Contact, contact_id).order_count == 1
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)
                             .where(AuditEntry.entity == "order", AuditEntry.action == "create")) == 1


@pytest.mark.slow
def test_orders_posted_at_once_are_each_stored_once_with_exact_figures_and_summaries(app):
    """Every thread posts orders for one known customer and two new emails at once, some twice:
    no error, each order once (201 then 200), one contact per email, every figure and the
    dashboard's summaries equal to a count from the orders."""
    contacts.create_contact({"first_name": "Anna", "email": "anna@example.nl"})
    db.session.commit()
    summaries.rebuild()
    db.session.commit()
    token = _token()
    results: list[tuple[str, int, str]] = []
    emails = ("anna@example.nl", "new0@example.com", "new1@example.com")

    def post_orders(n: int) -> None:  # in a thread with an app context, so a session, of its own
        for i in range(ORDERS_EACH):
            key = f"T{n}-{i}"
            body = _order(key, emails[(n + i) % len(emails)], f"{10 + i}.25")
            for _repeat in range(1 + (i % 2)):  # every other order is sent twice
                response = _post(app, token, body)
                results.append((key, response.status_code, response.json.get("result", response.json)))

    assert _run_threads(app, post_orders, THREADS) == []
    by_key: dict[str, list[tuple[int, str]]] = {}
    for key, status, result in results:
        by_key.setdefault(key, []).append((status, result))
    assert len(by_key) == THREADS * ORDERS_EACH
    for key, answers in by_key.items():
        assert answers[0] == (201, "created"), (key, answers)
        assert all(answer == (200, "unchanged") for answer in answers[1:]), (key, answers)

    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Order)) == THREADS * ORDERS_EACH
    assert sorted(db.session.scalars(select(Contact.email))) == sorted(emails)
    assert_aggregates_match_orders()
    spent = db.session.scalar(select(func.sum(Contact.total_spent)))
    assert Decimal(spent).quantize(Decimal("0.01")) == Decimal(sum(10.25 + i for i in range(ORDERS_EACH)) * THREADS) \
        .quantize(Decimal("0.01"))
    zone = summaries.built_zone()
    fresh = summaries.contributions(None, zone)
    assert summaries.stored_ledger() == fresh
    assert summaries.stored_cells() == summaries.cells_of(fresh)
    db.session.rollback()
