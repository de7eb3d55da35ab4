"""A segment's count reads indexes, never a table per order or line (issue 17): the event
conditions' subqueries are answered from the covering indexes of migration 0014_segment_indexes
(a product or sku product first, from the lines alone: their copies of the order's contact, date
and status and the indexes of 0018_line_mirror), and the field
conditions a shop uses most from the contacts' own indexes."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select, text

from crm.extensions import db
from crm.models import Contact
from crm.services.segments import store
from crm.services.segments.definition import parse

DAY = date(2026, 11, 1)
ORDERS = "ix_orders_contact_placed_status"
LINES = "ix_order_lines_order_sku_name"
PRODUCT = "ix_order_lines_name_placed_status_contact"
SKU = "ix_order_lines_name_sku_placed"
INTERACTIONS = "ix_interactions_contact_occurred_kind"


def _plan(conditions) -> str:
    """The SQLite plan of the segment's count, as `store.count` runs it. PostgreSQL turns the
    subqueries into semi-joins and picks nested loops or hashes by the tables' sizes, so a plan
    on a test's empty tables says nothing (bench/README.md has its plans on a 200,000-order shop)."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's plan depends on the tables' sizes")
    # Planner statistics an earlier test left (a refresh ANALYZEs a near-empty shop) would make a
    # scan look cheap; the plan asserted here is the one of a shop with no statistics yet.
    if db.session.scalar(text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")):
        db.session.execute(text("DELETE FROM sqlite_stat1"))
        db.session.execute(text("ANALYZE sqlite_schema"))  # reload the (now empty) statistics
    definition = parse({"match": "all", "conditions": conditions})
    statement = select(func.count()).select_from(Contact).where(store.condition(definition, DAY))
    sql = str(statement.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True}))
    return "\n".join(str(row[-1]) for row in db.session.execute(text("EXPLAIN QUERY PLAN " + sql)))


def _reads_only(plan: str, index: str, table: str) -> None:
    assert f"USING COVERING INDEX {index} " in plan, plan
    assert f"SCAN {table}" not in plan and f"{table} USING INDEX" not in plan, plan


@pytest.mark.parametrize("op, value", [
    pytest.param("has", {}, id="ordered ever"),
    pytest.param("has", {"within_days": 365}, id="ordered in the last year"),
    pytest.param("has", {"between": ["2026-01-01", "2026-06-30"]}, id="ordered between dates"),
    pytest.param("has", {"min_count": 3, "within_days": 365}, id="ordered three times in a year"),
    pytest.param("has_not", {"within_days": 90}, id="not ordered in 90 days"),
])
def test_ordered_reads_the_orders_index_alone(app, op, value):
    _reads_only(_plan([{"field": "ordered", "op": op, "value": value}]), ORDERS, "orders")


@pytest.mark.parametrize("value, index, lines", [
    pytest.param({"product": "Sencha", "within_days": 365}, PRODUCT, "(name=? AND placed_at>?)",
                 id="bought a product in the last year"),
    pytest.param({"sku": "TEA-09-250"}, SKU, "(name=? AND sku=?)", id="bought a sku"),
    pytest.param({"sku": "TEA-09-250", "between": ["2026-01-01", "2026-06-30"]}, SKU,
                 "(name=? AND sku=? AND placed_at>? AND placed_at<?)", id="bought a sku between dates"),
    pytest.param({"product": "Sencha", "sku": "TEA-02-050", "min_count": 2}, SKU, "(name=? AND sku=?)",
                 id="bought a product and sku twice"),
])
def test_bought_a_product_reads_the_products_lines_alone(app, value, index, lines):
    """Product first, lines only: the distinct names are enumerated by seeks (a loose index scan),
    the matching names' lines in the window (and with the sku) are read once as a list, and their
    copies of the order's contact, date and status answer the rest: no order is read, and nothing
    is looked up per contact or per order."""
    plan = _plan([{"field": "ordered", "op": "has", "value": value}])
    assert "orders" not in plan and LINES not in plan, plan
    _reads_only(plan, index, "order_lines")
    assert "SEARCH order_lines_1 USING COVERING INDEX" in plan and "(name>?)" in plan, plan  # the next name
    assert f"SEARCH order_lines USING COVERING INDEX {index} {lines}" in plan, plan  # the product's lines
    assert "LIST SUBQUERY" in plan, plan
    assert plan.count("CORRELATED") == 1, plan  # the next-name step only


@pytest.mark.parametrize("value", [{"kind": "testimonial"}, {"kind": "email", "within_days": 30}])
def test_an_interaction_reads_the_interactions_index_alone(app, value):
    _reads_only(_plan([{"field": "interaction", "op": "has_not", "value": value}]), INTERACTIONS, "interactions")


@pytest.mark.parametrize("condition, index", [
    ({"field": "total_spent", "op": ">=", "value": 200}, "ix_contacts_total_spent"),
    ({"field": "last_order_at", "op": "before", "value": "2026-05-01"}, "ix_contacts_last_order_at"),
])
def test_spent_and_last_order_read_the_contacts_indexes(app, condition, index):
    plan = _plan([condition])
    assert f"USING INDEX {index}" in plan and "SCAN contacts" not in plan, plan


def test_the_benchmarks_segment_narrows_the_contacts_then_reads_indexes_only(app):
    """bench/run.py SEGMENT: bought the Sencha in the last year, in retention, lead score 30 or more."""
    plan = _plan([{"field": "ordered", "op": "has", "value": {"product": "Sencha", "within_days": 365}},
                  {"field": "stage", "op": "=", "value": "retention"},
                  {"field": "lead_score", "op": ">=", "value": 30}])
    assert "SEARCH contacts USING COVERING INDEX ix_contacts_stage_score_erased (stage=? AND lead_score>?)" in plan, plan
    assert f"SEARCH order_lines USING COVERING INDEX {PRODUCT} (name=? AND placed_at>?)" in plan, plan
    _reads_only(plan, PRODUCT, "order_lines")
    assert "orders" not in plan and LINES not in plan, plan
