"""Property test: over random histories of orders, refunds, cancellations, merges, erasures and
deletions, the incrementally kept dashboard summaries equal a from-scratch computation, and the
dashboard's revenue and cohorts read from them equal those counted from the orders (SQLite and
PostgreSQL); the same for the journey funnel's summaries over histories with the rules running,
stages pinned and unpinned by hand, and contacts added without orders."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from crm.extensions import db
from crm.models import (
    ORDER_STATUSES,
    STAGES,
    AuditEntry,
    Contact,
    ErasedEmail,
    Order,
    OrderLine,
    ScoreHistory,
    StageChange,
    SummaryCohortMonth,
    SummaryContactMonth,
    SummaryContactStage,
    SummaryStageMonth,
    SummaryState,
    Task,
)
from crm.services.insight import figures as insight
from crm.services.insight import summaries
from crm.services.orders import aggregates
from crm.services.orders.importing.records import CustomerRecord, OrderRecord
from crm.services.orders.recording import record_orders
from crm.services.people import contacts, merge
from crm.services.people import stage_pins as stages
from crm.services.trust import privacy

EXAMPLES = 15 if os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql") else 25
ZONE = "Europe/Berlin"
NOW = datetime(2026, 6, 15, 16, 0, tzinfo=timezone.utc)
PEOPLE = 4


@pytest.fixture
def app_config():
    return {"SHOP_TIMEZONE": ZONE}


# Around month ends in Berlin (22:00-23:59 UTC on the last day is already the next month there).
moments = st.integers(min_value=-420, max_value=20).map(lambda day: NOW + timedelta(days=day)).flatmap(
    lambda day: st.sampled_from((day, day.replace(hour=22, minute=30))))
amounts = st.sampled_from((Decimal("10.00"), Decimal("25.50"), Decimal("99.99")))
order_step = st.tuples(st.just("order"), st.integers(0, PEOPLE - 1), st.integers(0, 7), st.sampled_from(ORDER_STATUSES),
                       moments, amounts, st.sampled_from((Decimal("0"), Decimal("0.5"))))
steps = st.lists(st.one_of(
    order_step, order_step, order_step,
    st.tuples(st.just("merge"), st.integers(0, PEOPLE - 1), st.integers(0, PEOPLE - 1)),
    st.tuples(st.just("erase"), st.integers(0, PEOPLE - 1)),
    st.tuples(st.just("delete"), st.integers(0, PEOPLE - 1)),
), min_size=1, max_size=10)


def _empty() -> None:
    for model in (SummaryCohortMonth, SummaryContactMonth, SummaryContactStage, SummaryStageMonth, SummaryState,
                  OrderLine, Order, StageChange, ScoreHistory, Task, AuditEntry, ErasedEmail, Contact):
        db.session.execute(delete(model))
    summaries.rebuild()  # an empty shop: the summaries are kept from here on, in the shop's zone


def _order(person: int, key: int, status: str, placed_at: datetime, total: Decimal, share: Decimal,
           react: bool = False) -> None:
    """Record (or change: refund, cancel, move) an order the way an import batch does: the orders,
    then the stored figures of the contacts it touched (the one path the summaries follow); with
    `react`, as the API and webhooks do: the rules then move the contact along the journey."""
    refunded = {"refunded": total, "partially_refunded": (total * share).quantize(Decimal("0.01"))}.get(status, Decimal("0"))
    summary = record_orders([OrderRecord(
        line=1, source="test", external_id=f"o{key}", number=f"#{key}", placed_at=placed_at, status=status,
        currency="EUR", subtotal=total, discount=Decimal("0"), shipping=Decimal("0"), tax=Decimal("0"), total=total,
        refunded=refunded, customer=CustomerRecord(line=1, source="test", email=f"p{person}@example.com",
                                                   first_name=f"P{person}"),
    )], now=NOW, audit_each=False, react=react)
    if not react:  # reacting, record_orders kept them itself (a new order added to the stored rows)
        aggregates.refresh(summary.contact_ids)


def _person(person: int) -> Contact | None:
    return db.session.scalar(select(Contact).where(Contact.email == f"p{person}@example.com"))


def _apply(step) -> None:
    kind = step[0]
    if kind == "order":
        _order(*step[1:])
    elif kind == "merge":
        survivor, loser = _person(step[1]), _person(step[2])
        if survivor is not None and loser is not None and survivor.id != loser.id:
            merge.merge(survivor, loser, now=NOW)
    elif kind == "erase":
        person = _person(step[1])
        if person is not None:
            privacy.erase_contact(person, None, now=NOW)
    elif kind == "delete":
        person = _person(step[1])
        if person is not None:
            contacts.delete_contact(person)
    db.session.flush()


def _periods():
    zone = summaries.ZoneInfo(ZONE)
    history = insight.data_range(NOW, zone)
    yield insight.period("12m", NOW, zone)
    yield insight.period("all", NOW, zone, history=history)
    # An as-of in the middle of a month, with orders of that month after it.
    yield insight.period("12m", NOW - timedelta(days=40), zone)


# The journey: the same steps with the rules running after orders, stages pinned and unpinned by
# hand (now and then dated after the dashboard's as-of), and contacts added without an order.
journey_steps = st.lists(st.one_of(
    order_step.map(lambda step: (*step, True)), order_step.map(lambda step: (*step, True)), order_step,
    st.tuples(st.just("pin"), st.integers(0, PEOPLE - 1), st.sampled_from(STAGES),
              st.integers(min_value=-400, max_value=3).map(lambda day: NOW + timedelta(days=day, hours=-1))),
    st.tuples(st.just("unpin"), st.integers(0, PEOPLE - 1), moments),
    st.tuples(st.just("add"), st.integers(0, PEOPLE - 1)),
    st.tuples(st.just("merge"), st.integers(0, PEOPLE - 1), st.integers(0, PEOPLE - 1)),
    st.tuples(st.just("erase"), st.integers(0, PEOPLE - 1)),
    st.tuples(st.just("delete"), st.integers(0, PEOPLE - 1)),
), min_size=1, max_size=10)


def _apply_journey(step) -> None:
    kind = step[0]
    person = _person(step[1]) if kind in ("pin", "unpin", "add") else None
    if kind == "pin" and person is not None:
        stages.pin_stage(person, step[2], "told us so", None, now=min(step[3], NOW + timedelta(days=2)))
    elif kind == "unpin" and person is not None and person.stage_pinned:
        stages.unpin_stage(person, None, now=min(step[2], NOW))
    elif kind == "add" and person is None:
        contacts.create_contact({"email": f"p{step[1]}@example.com", "first_name": f"P{step[1]}"}, now=NOW)
    elif kind not in ("pin", "unpin", "add"):
        _apply(step)
    db.session.flush()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=journey_steps)
def test_kept_journey_summaries_equal_a_count_from_the_stage_changes(app, history):
    _empty()
    for step in history:
        _apply_journey(step)
    zone = summaries.journey_zone()
    assert zone is not None and zone.key == ZONE
    fresh = summaries.journeys(None, zone)
    assert summaries.stored_journeys() == fresh
    assert summaries.stored_stage_cells() == summaries.stage_cells_of(fresh)
    for shown in (*_periods(), insight.period("year", NOW, zone, year=NOW.year)):
        kept = summaries.read(shown.first, shown.last, zone, shown.as_of)
        # Kept stage cells answer only when no change is dated after the as-of (and a funnel as of
        # a past day does not use them).
        later = db.session.scalar(select(StageChange.id).where(StageChange.changed_at > shown.as_of).limit(1))
        assert (kept.stages is None) == (later is not None)
        assert insight.journey_funnel(NOW, shown, stages=kept.stages) == insight.journey_funnel(NOW, shown)
    drift = summaries.rebuild()
    assert drift.rows == 0, drift.examples
    db.session.rollback()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=steps)
def test_kept_summaries_equal_a_count_from_scratch(app, history):
    _empty()
    for step in history:
        _apply(step)
    _assert_kept_summaries_equal_a_count_from_scratch()


# As the API and webhooks record them: one order at a time, the rules reacting, and a new order of
# a contact with orders added to their stored rows instead of counted again (mostly new keys, so
# most steps are such new orders; a key seen before changes that order and recounts its contact).
reacting_steps = st.lists(st.one_of(
    *[st.tuples(st.just("order"), st.integers(0, PEOPLE - 1), st.integers(0, 40), st.sampled_from(ORDER_STATUSES),
                moments, amounts, st.sampled_from((Decimal("0"), Decimal("0.5"))), st.just(True))] * 4,
    st.tuples(st.just("merge"), st.integers(0, PEOPLE - 1), st.integers(0, PEOPLE - 1)),
    st.tuples(st.just("erase"), st.integers(0, PEOPLE - 1)),
    st.tuples(st.just("delete"), st.integers(0, PEOPLE - 1)),
), min_size=8, max_size=16)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=reacting_steps)
def test_summaries_kept_order_by_order_equal_a_count_from_scratch(app, history):
    _empty()
    for step in history:
        _apply(step)
    _assert_kept_summaries_equal_a_count_from_scratch()


def _assert_kept_summaries_equal_a_count_from_scratch() -> None:
    zone = summaries.built_zone()
    assert zone is not None and zone.key == ZONE
    fresh = summaries.contributions(None, zone)
    assert summaries.stored_ledger() == fresh
    assert summaries.stored_cells() == summaries.cells_of(fresh)
    for shown in _periods():
        kept = summaries.read(shown.first, shown.last, zone, shown.as_of)
        assert kept.cells is not None
        assert insight.revenue_by_month(NOW, zone, shown=shown, cells=kept.cells) == \
            insight.revenue_by_month(NOW, zone, shown=shown)
        assert insight.cohort_retention(NOW, zone, shown, cells=kept.cells) == insight.cohort_retention(NOW, zone, shown)
    drift = summaries.rebuild()
    assert drift.rows == 0, drift.examples
    db.session.rollback()


def test_rebuild_reports_and_fixes_drift(app):
    _empty()
    _order(0, 1, "paid", NOW - timedelta(days=3), Decimal("40.00"), Decimal("0"))
    _order(1, 2, "paid", NOW - timedelta(days=40), Decimal("10.00"), Decimal("0"))
    shown = insight.period("12m", NOW, summaries.ZoneInfo(ZONE))
    right = insight.revenue_by_month(NOW, ZONE, shown=shown)
    # A lost update: one cell wrong, one customer-month missing.
    db.session.execute(SummaryCohortMonth.__table__.update().values(cents=SummaryCohortMonth.cents + 500))
    db.session.execute(delete(SummaryContactMonth).where(SummaryContactMonth.contact_id == _person(0).id))
    kept = summaries.read(shown.first, shown.last, summaries.ZoneInfo(ZONE), shown.as_of)
    assert insight.revenue_by_month(NOW, ZONE, shown=shown, cells=kept.cells).total == right.total + 10
    drift = summaries.rebuild()
    assert (drift.cells, drift.ledger_rows) == (2, 1)
    assert "2 cohort-month cells and 1 customer-month row differed" in drift.said()
    kept = summaries.read(shown.first, shown.last, summaries.ZoneInfo(ZONE), shown.as_of)
    assert insight.revenue_by_month(NOW, ZONE, shown=shown, cells=kept.cells) == right
    assert summaries.rebuild().said() == "No drift: the summaries matched the orders."


def test_crm_rebuild_summaries_says_what_drifted_and_the_dashboard_shows_the_orders_again(app, client, auth):
    from tests.helpers import soup, text_of

    _empty()
    _order(0, 1, "paid", NOW - timedelta(days=3), Decimal("40.00"), Decimal("0"))
    db.session.execute(SummaryCohortMonth.__table__.update().values(cents=SummaryCohortMonth.cents + 99_900))
    db.session.commit()
    auth.as_role("viewer")

    def this_months_revenue():
        section = soup(client.get("/?as_of=2026-06-15")).find("section", attrs={"aria-labelledby": "revenue-heading"})
        return text_of(section.select("details table tbody tr")[-1].find_all("td")[2])

    assert this_months_revenue() == "€1,039.00"  # the drifted cell is what the dashboard reads
    result = app.test_cli_runner().invoke(args=["rebuild-summaries"])
    assert result.exit_code == 0, result.output
    assert "Drift fixed: 1 cohort-month cell and 0 customer-month rows differed" in result.output
    assert "cohort 2026-06, 2026-06: stored (103900, 1, 1, 0), from the orders (4000, 1, 1, 0)" in result.output
    assert this_months_revenue() == "€40.00"
    again = app.test_cli_runner().invoke(args=["rebuild-summaries"])
    assert "No drift" in again.output


def test_rebuild_reports_and_fixes_journey_drift(app):
    _empty()
    _order(0, 1, "paid", NOW - timedelta(days=3), Decimal("40.00"), Decimal("0"), react=True)
    _order(1, 2, "paid", NOW - timedelta(days=100), Decimal("10.00"), Decimal("0"), react=True)
    contacts.create_contact({"email": "p2@example.com", "first_name": "P2"}, now=NOW)
    shown = insight.period("12m", NOW, summaries.ZoneInfo(ZONE))
    right = insight.journey_funnel(NOW, shown)
    assert right.total == 3 and right.has_history
    # A lost update: every stage cell one contact too many, one contact's rows missing.
    cells = len(summaries.stored_stage_cells())
    missing = len(summaries.stored_journeys([_person(0).id]))
    db.session.execute(SummaryStageMonth.__table__.update().values(standing=SummaryStageMonth.standing + 1))
    db.session.execute(delete(SummaryContactStage).where(SummaryContactStage.contact_id == _person(0).id))
    kept = summaries.read(shown.first, shown.last, summaries.ZoneInfo(ZONE), shown.as_of)
    assert insight.journey_funnel(NOW, shown, stages=kept.stages).total == right.total + cells
    drift = summaries.rebuild()
    assert missing == 1  # a first order straight to conversion: one stage entered
    assert (drift.stage_cells, drift.journey_rows, drift.cells, drift.ledger_rows) == (cells, missing, 0, 0)
    assert f"Drift fixed: {cells} stage-month cells and 1 contact-stage row differed from the stage changes" \
        in drift.said()
    kept = summaries.read(shown.first, shown.last, summaries.ZoneInfo(ZONE), shown.as_of)
    assert insight.journey_funnel(NOW, shown, stages=kept.stages) == right
    assert summaries.rebuild().said() == "No drift: the summaries matched the orders."


def test_the_migration_fills_the_journey_summaries_from_the_stage_changes(app):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "migrations" / "versions" / "0013_funnel.py"
    spec = importlib.util.spec_from_file_location("migration_0003_funnel", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)

    _empty()
    _order(0, 1, "paid", NOW - timedelta(days=3), Decimal("40.00"), Decimal("0"), react=True)
    _order(1, 2, "paid", NOW - timedelta(days=100), Decimal("10.00"), Decimal("0"), react=True)
    _order(1, 3, "paid", NOW - timedelta(days=20), Decimal("10.00"), Decimal("0"), react=True)
    stages.pin_stage(_person(0), "advocacy", "told us so", None, now=NOW - timedelta(days=1))
    zone = summaries.journey_zone()
    fresh = summaries.journeys(None, zone)
    assert fresh
    for model in (SummaryContactStage, SummaryStageMonth):
        db.session.execute(delete(model))
    db.session.execute(delete(SummaryState).where(SummaryState.name == summaries.JOURNEY))
    assert migration.fill(db.session.connection()) == len(fresh)
    assert summaries.journey_zone() == zone
    assert summaries.stored_journeys() == fresh
    assert summaries.stored_stage_cells() == summaries.stage_cells_of(fresh)
    # Summaries never built: nothing to fill in a zone of their own (the first rebuild does).
    db.session.execute(delete(SummaryState))
    assert migration.fill(db.session.connection()) == 0
