"""The staff pages' queries at full scale (issue 15): the dashboard's counts and the contact list
filtered by a stage read indexes (migration 0017_page_indexes), never every contact or every paid
order; and they give the same answers as the grouped counts they replace."""
from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event, text

from crm.extensions import db
from crm.services.insight import figures as insight
from crm.services.insight import shop_totals
from crm.services.people import queries
from tests.helpers import sign_in
from tests.insight_data import NOW, at, contact, days, order


@contextmanager
def captured():
    """The SELECTs run inside the block, with their parameters."""
    statements: list[tuple[str, tuple]] = []

    def _before(_connection, _cursor, statement, parameters, _context, executemany):
        if not executemany and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append((statement, tuple(parameters or ())))

    event.listen(db.engine, "before_cursor_execute", _before)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", _before)


def plans(statements) -> list[str]:
    """The SQLite plan of each statement (PostgreSQL's depends on the tables' sizes)."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's plan depends on the tables' sizes")
    connection = db.session.connection().connection.driver_connection
    return ["\n".join(str(row[-1]) for row in connection.execute("EXPLAIN QUERY PLAN " + sql, params))
            for sql, params in statements]


def _no_statistics():
    """As tests/test_segments_indexes.py: the plans of a shop without planner statistics."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's plan depends on the tables' sizes")
    if db.session.scalar(text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")):
        db.session.execute(text("DELETE FROM sqlite_stat1"))
        db.session.execute(text("ANALYZE sqlite_schema"))


@pytest.fixture
def shop(app):
    """Contacts in several stages, one added after the as-of; paid and unpaid orders around it."""
    before = NOW - days(100)
    early, late = contact("Early", "retention", created_at=before), contact("Late", "conversion", created_at=before)
    browsing = contact("Browsing", created_at=before)
    contact("Future", "retention", created_at=NOW + days(1))
    order(early, at(2025, 3, 2), status="refunded")  # earlier than any paid order: not counted
    order(early, at(2025, 3, 9), status="fulfilled")
    order(late, at(2025, 6, 1), status="partially_refunded", refunded="5.00")
    order(late, at(2025, 9, 1), status="pending")
    order(browsing, NOW + days(3))  # after the as-of
    db.session.commit()
    return NOW


def test_stage_counts_leave_out_contacts_added_after_the_as_of(shop):
    summary = shop_totals.summary(shop)
    assert summary.by_stage == {"awareness": 1, "consideration": 0, "conversion": 1, "retention": 1, "advocacy": 0}
    assert summary.contacts == 3
    assert shop_totals.summary(NOW + days(2)).by_stage["retention"] == 2


def test_customers_are_counted_by_their_first_paid_order_by_the_as_of(shop):
    from tests.insight_data import refresh_aggregates

    refresh_aggregates()
    assert shop_totals.summary(shop).customers == 2
    assert shop_totals.summary(at(2025, 4, 1)).customers == 1
    assert shop_totals.summary(NOW + days(4)).customers == 3


def test_the_data_range_spans_the_paid_orders_of_every_paid_status_by_the_as_of(shop):
    found = insight.data_range(shop)
    assert (found.first, found.last) == (2025 * 12 + 2, 2025 * 12 + 5)  # March (fulfilled) to June (part-refunded)
    assert insight.data_range(NOW + days(4)).last == (NOW + days(3)).year * 12 + (NOW + days(3)).month - 1
    assert insight.data_range(at(2025, 3, 5)).empty


def test_scores_outside_0_to_100_fall_into_the_first_and_last_bins(app):
    for score in (-5, 0, 89, 90, 140):
        contact(lead_score=score)
    db.session.commit()
    assert [b.contacts for b in insight.lead_score_histogram().bins] == [2, 0, 0, 0, 0, 0, 0, 0, 1, 2]


def test_the_dashboards_counts_read_indexes_never_every_contact_or_paid_order(shop):
    _no_statistics()
    with captured() as statements:
        shop_totals.summary(shop)
        insight.data_range(shop)
        insight.lead_score_histogram()
    found = plans(statements)
    assert len(found) == 7, found
    for plan in found:
        assert "SCAN contacts\n" not in plan + "\n" and "SCAN orders\n" not in plan + "\n", plan
        assert "TEMP B-TREE" not in plan, plan
    joined = "\n".join(found)
    assert "ix_contacts_first_order_count" in joined and "COVERING INDEX ix_orders_status_placed" in joined


def test_the_list_filtered_by_a_stage_reads_its_first_page_in_name_order_from_the_index(client, app, monkeypatch):
    # More matches than the list counts exactly: it reads them in the sort's order (few are sorted).
    monkeypatch.setattr(queries, "COUNT_CAP", 2)
    sign_in(client, "admin")
    for number in range(3):
        contact(f"P{number}", "retention")
    db.session.commit()
    _no_statistics()
    with captured() as statements:
        response = client.get("/contacts?stage=retention")
    assert response.status_code == 200 and "P2" in response.get_data(as_text=True)
    listings = [(sql, params) for sql, params in statements if "ORDER BY contacts.last_name" in sql]
    [listing] = listings
    [plan] = plans([listing])
    assert "ix_contacts_stage_name (stage=?)" in plan and "TEMP B-TREE" not in plan, plan
