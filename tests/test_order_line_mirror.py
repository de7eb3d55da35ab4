"""Order lines carry copies of their order's contact, date and status (migration 0018_line_mirror,
kept by database triggers), which the segments' "bought a product" count reads instead of the
orders (issue 17). Whatever writes an order or a line, the copies must equal the order's: each
test compares every line's copies with its order through the join, and checks the segment a
shop owner sees."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from sqlalchemy import func, select, text, update

from crm.extensions import db
from crm.models import Contact, Order, OrderLine
from crm.services.orders import recording as orders
from crm.services.people import merge
from crm.services.segments import store
from crm.services.segments.definition import parse
from crm.services.trust import privacy
from tests.test_orders_service import order

DAY = date(2026, 11, 1)
SENCHA = parse({"match": "all", "conditions": [
    {"field": "ordered", "op": "has", "value": {"product": "Sencha", "within_days": 365}}]})
SENCHA_TWICE = parse({"match": "all", "conditions": [
    {"field": "ordered", "op": "has", "value": {"product": "Sencha", "min_count": 2}}]})
SENCHA_LINES = (("TEA-1", "Sencha 100 g", 1, "8.00"), ("TEA-2", "Sencha 250 g", 1, "16.00"))


def _placed(month: int, day: int = 1) -> datetime:
    return datetime(2026, month, day, 10, tzinfo=timezone.utc)


def _wrong_lines() -> list[tuple]:
    """Every line whose copies differ from its order's (or that has none)."""
    lines, orders_ = OrderLine.__table__, Order.__table__
    return db.session.execute(
        select(lines.c.id, lines.c.contact_id, orders_.c.contact_id, lines.c.placed_at, orders_.c.placed_at,
               lines.c.status, orders_.c.status)
        .join(orders_, orders_.c.id == lines.c.order_id)
        .where(lines.c.contact_id.is_distinct_from(orders_.c.contact_id)
               | lines.c.placed_at.is_distinct_from(orders_.c.placed_at)
               | lines.c.status.is_distinct_from(orders_.c.status))).all()


def _assert_mirrored() -> None:
    db.session.flush()
    assert db.session.scalar(select(func.count()).select_from(OrderLine)) > 0
    assert _wrong_lines() == []


def _members(definition=SENCHA) -> set[int]:
    return set(db.session.scalars(select(Contact.id).where(store.condition(definition, DAY))))


def test_new_orders_lines_copy_the_order(app):
    anna = orders.record_order(order("1", lines=SENCHA_LINES, placed_at=_placed(5)))
    orders.record_orders([order("2", email="ben@example.com", lines=SENCHA_LINES[:1], placed_at=_placed(6)),
                          order("3", email="cleo@example.com", status="refunded", lines=SENCHA_LINES)])
    db.session.commit()
    _assert_mirrored()
    line = db.session.scalars(select(OrderLine).where(OrderLine.order_id == anna.order_id)).first()
    assert (line.contact_id, line.placed_at, line.status) == (anna.contact_id, _placed(5), "paid")
    ben = db.session.scalar(select(Contact.id).where(Contact.email == "ben@example.com"))
    assert _members() == {anna.contact_id, ben}  # the refunded order does not count


def test_a_status_change_reaches_the_lines_whoever_writes_it(app):
    first = orders.record_order(order("1", lines=SENCHA_LINES, placed_at=_placed(5)))
    db.session.commit()
    assert _members() == {first.contact_id}
    # Re-imported as refunded (the import updates the order and replaces its lines).
    orders.record_order(order("1", status="refunded", lines=SENCHA_LINES, placed_at=_placed(5)))
    db.session.commit()
    _assert_mirrored()
    assert _members() == set()
    # Changed through the ORM, then by hand-written SQL.
    stored = db.session.get(Order, first.order_id)
    stored.status = "fulfilled"
    db.session.commit()
    _assert_mirrored()
    assert _members() == {first.contact_id}
    db.session.execute(update(Order).where(Order.id == first.order_id).values(status="cancelled"))
    _assert_mirrored()
    assert _members() == set()
    # A date moved out of the window.
    db.session.execute(update(Order).where(Order.id == first.order_id).values(status="paid", placed_at=_placed(1, 1).replace(year=2024)))
    _assert_mirrored()
    assert _members() == set()


def test_a_reimported_order_with_new_lines_keeps_them_right(app):
    first = orders.record_order(order("1", lines=(("CUP", "Cup", 1, "5.00"),), placed_at=_placed(5)))
    db.session.commit()
    assert _members() == set()
    orders.record_order(order("1", lines=SENCHA_LINES, placed_at=_placed(7)))
    db.session.commit()
    _assert_mirrored()
    assert _members() == {first.contact_id}
    assert set(db.session.scalars(select(OrderLine.placed_at).where(OrderLine.order_id == first.order_id))) == {_placed(7)}


def test_a_merge_moves_the_lines_with_the_orders(app):
    anna = orders.record_order(order("1", lines=SENCHA_LINES, placed_at=_placed(5)))
    other = orders.record_order(order("2", email="anna.s@example.com", lines=SENCHA_LINES[:1], placed_at=_placed(6)))
    db.session.commit()
    assert _members(SENCHA_TWICE) == set()  # one Sencha order each (two Sencha lines are one order)
    merge.merge(db.session.get(Contact, anna.contact_id), db.session.get(Contact, other.contact_id))
    db.session.commit()
    _assert_mirrored()
    assert set(db.session.scalars(select(OrderLine.contact_id))) == {anna.contact_id}
    assert _members() == {anna.contact_id}
    assert _members(SENCHA_TWICE) == {anna.contact_id}


def test_an_erased_contact_keeps_its_lines_right_and_leaves_the_segment(app):
    anna = orders.record_order(order("1", lines=SENCHA_LINES, placed_at=_placed(5)))
    db.session.commit()
    privacy.erase_contact(db.session.get(Contact, anna.contact_id), actor_id=None)
    db.session.commit()
    _assert_mirrored()
    assert _members() == set()


def test_copies_written_by_hand_are_put_back(app):
    anna = orders.record_order(order("1", lines=SENCHA_LINES, placed_at=_placed(5)))
    db.session.commit()
    db.session.execute(update(OrderLine).values(contact_id=None, status="paid", placed_at=_placed(1)))
    _assert_mirrored()
    line = db.session.scalars(select(OrderLine)).first()
    db.session.execute(text("INSERT INTO order_lines (order_id, sku, name, quantity, unit_price, contact_id, status) "
                            "VALUES (:order, 'X', 'Sencha 1 kg', 1, 30, :wrong, 'refunded')"),
                       {"order": line.order_id, "wrong": anna.contact_id + 1000})
    _assert_mirrored()
    assert _members() == {anna.contact_id}
    assert Decimal(db.session.scalar(select(func.sum(OrderLine.unit_price)))) == Decimal("54.00")
