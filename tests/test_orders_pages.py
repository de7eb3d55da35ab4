"""The orders pages: the list with search and filters, one order, and typing an order in for a contact."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import event, func, select

from crm.extensions import db
from crm.models import Contact, Order
from crm.services.orders import recording as orders
from crm.services.orders.importing.records import CustomerRecord, LineRecord, OrderRecord
from crm.services.people import contacts
from tests.conftest import soup, text_of


def an_order(number, email, *, first_name="Anna", last_name="de Vries", status="paid", total="20.00",
             placed_at=datetime(2026, 3, 1, 10, tzinfo=timezone.utc), lines=(("TEA-1", "Sencha", 2, "10.00"),)):
    customer = CustomerRecord(line=1, source="shopify", email=email, email_display=email, first_name=first_name,
                              last_name=last_name)
    record = OrderRecord(line=1, source="shopify", external_id=number, number=number, placed_at=placed_at,
                         status=status, currency="EUR", subtotal=Decimal(total), discount=Decimal(0),
                         shipping=Decimal(0), tax=Decimal("3.19"), total=Decimal(total), refunded=Decimal(0),
                         customer=customer, lines=[LineRecord(*line[:3], Decimal(line[3])) for line in lines])
    outcome = orders.record_order(record)
    db.session.commit()
    return db.session.get(Order, outcome.order_id)


@pytest.fixture
def shop(app):
    an_order("#1001", "anna@example.nl")
    an_order("#1002", "bjorn@example.se", first_name="Björn", last_name="Åberg", status="refunded",
             placed_at=datetime(2026, 3, 5, 18, tzinfo=timezone.utc))
    an_order("#1003", "anna@example.nl", placed_at=datetime(2026, 4, 11, 6, tzinfo=timezone.utc), total="36.00")


def numbers(response):
    return [text_of(row.select_one("td a")) for row in soup(response).select("table.orders tbody tr")]


def test_orders_newest_first_with_customer_and_total(client, auth, shop):
    auth.as_role("viewer")
    response = client.get("/orders")
    assert numbers(response) == ["#1003", "#1002", "#1001"]
    first = soup(response).select_one("table.orders tbody tr")
    assert "Anna de Vries" in text_of(first) and "€36.00" in text_of(first)


@pytest.mark.parametrize("query,expected", [
    ("q=1002", ["#1002"]), ("q=anna", ["#1003", "#1001"]), ("q=BJORN@example", ["#1002"]),
    ("q=de+vries", ["#1003", "#1001"]), ("status=refunded", ["#1002"]),
    ("from=2026-03-02&to=2026-04-30", ["#1003", "#1002"]), ("to=2026-03-01", ["#1001"]),
    ("q=%25", []), ("status=bogus", ["#1003", "#1002", "#1001"]), ("from=not-a-date", ["#1003", "#1002", "#1001"]),
])
def test_search_and_filters(client, auth, shop, query, expected):
    auth.as_role("viewer")
    assert numbers(client.get(f"/orders?{query}")) == expected


def test_an_htmx_search_gets_only_the_rows(client, auth, shop):
    auth.as_role("viewer")
    response = client.get("/orders?q=1001", headers={"HX-Request": "true"})
    page = soup(response)
    assert page.select_one("header") is None and numbers(response) == ["#1001"]


def test_pages_of_orders_use_a_bounded_number_of_queries(client, auth, app, shop, monkeypatch):
    import crm.views.orders as view

    monkeypatch.setattr(view, "PAGE", 2)
    for n in range(6):
        an_order(f"#20{n}", f"c{n}@example.com", first_name=f"C{n}")
    auth.as_role("viewer")
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        first = client.get("/orders")
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    orders_queries = [s for s in statements if "FROM orders" in s]
    assert len(orders_queries) == 1 and len(numbers(first)) == 2
    next_link = soup(first).select_one("a[rel=next]")["href"]
    assert numbers(client.get(next_link)) != numbers(first)


def test_an_order_page_shows_lines_totals_status_and_the_customer(client, auth, shop):
    auth.as_role("viewer")
    order = db.session.scalar(select(Order).where(Order.number == "#1001"))
    page = soup(client.get(f"/orders/{order.id}"))
    assert "paid" in text_of(page.select_one("h1 .badge"))
    line = page.select_one("table.order-lines tbody tr")
    assert [text_of(td) for td in line.select("td")] == ["Sencha", "TEA-1", "2", "€10.00", "€20.00"]
    assert "€20.00" in text_of(page.select_one("tr.order-total")) and "€3.19" in text_of(page.select_one("tfoot"))
    assert "Anna de Vries" in text_of(page.select_one(".order-contact"))
    assert client.get("/orders/99999").status_code == 404


def test_typing_in_an_order_for_a_contact(client, auth, app):
    contact = contacts.create_contact({"first_name": "Eva", "phone": "+420 601 123 456"})
    db.session.commit()
    auth.as_role("support")
    form = soup(client.get(f"/contacts/{contact.id}/orders/new")).select_one("form.order-form")
    assert form.select_one("input[name=currency]")["value"] == "EUR"
    response = client.post(f"/contacts/{contact.id}/orders/new", data={
        "placed_at": "2026-05-02T15:30", "status": "paid", "currency": "EUR",
        "lines-0-name": "Gift box", "lines-0-sku": "GIFT", "lines-0-quantity": "2", "lines-0-unit_price": "15.00",
        "lines-1-name": "Card", "lines-1-quantity": "1", "lines-1-unit_price": "2.50",
        "shipping": "4.95", "discount": "2.00", "tax": "0",
    })
    assert response.status_code == 302
    order = db.session.scalar(select(Order))
    assert (order.source, order.contact_id, order.total, order.subtotal) == ("manual", contact.id, Decimal("35.45"), Decimal("32.50"))
    assert order.external_id.startswith("M-") and order.number == order.external_id
    assert [(l.sku, l.quantity) for l in order.lines] == [("GIFT", 2), (None, 1)]
    assert db.session.get(Contact, contact.id).order_count == 1
    assert db.session.scalar(select(func.count()).select_from(Contact)) == 1  # a phone-only contact is not duplicated


def test_a_typed_in_order_needs_an_item(client, auth, app):
    contact = contacts.create_contact({"first_name": "Eva"})
    db.session.commit()
    auth.as_role("sales")
    response = client.post(f"/contacts/{contact.id}/orders/new", data={
        "placed_at": "2026-05-02T15:30", "status": "paid", "currency": "EUR"})
    assert response.status_code == 400
    assert "at least one item" in text_of(soup(response).select_one(".flash-error"))
    future = client.post(f"/contacts/{contact.id}/orders/new", data={
        "placed_at": "2999-01-01T00:00", "status": "paid", "currency": "EUR", "lines-0-name": "x", "lines-0-unit_price": "1"})
    assert "future" in text_of(soup(future).select_one(".field-error"))
    assert db.session.scalar(select(func.count()).select_from(Order)) == 0


def test_viewers_cannot_type_in_orders(client, auth, app):
    contact = contacts.create_contact({"first_name": "Eva"})
    db.session.commit()
    auth.as_role("viewer")
    assert client.get(f"/contacts/{contact.id}/orders/new").status_code == 403
    assert client.post(f"/contacts/{contact.id}/orders/new", data={"lines-0-name": "x"}).status_code == 403
    assert db.session.scalar(select(func.count()).select_from(Order)) == 0
