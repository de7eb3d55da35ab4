"""The engine on the database: stages, health, scores and to-dos through the services' own paths."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.models import AuditEntry, Contact, Interaction, ScoreHistory, StageChange, Task
from crm.services.people import contacts, stage_pins
from crm.services.rules import engine
from crm.services.rules import settings as rule_settings
from crm.services.shared.errors import ValidationError
from tests.conftest import make_user
from tests.engine_data import (
    T0,
    QueryCounter,
    buy,
    contact,
    count,
    days,
    history,
    log,
    refresh,
    stage_changes,
    stage_of,
    tasks_of,
)

# -- the journey -----------------------------------------------------------------------------


def test_a_contact_walks_through_every_stage_and_back_when_the_order_is_refunded(app):
    anna = contact("anna@example.com", now=T0)
    assert (anna.stage, anna.stage_reason) == ("awareness", "known to the shop; no engagement signal yet")
    assert anna.stage_since == T0

    log(anna.id, "email", T0 + days(2), subject="Do you ship to Austria?")
    assert stage_of(anna.id) == "consideration"

    placed = T0 + days(5)
    buy("1001", "anna@example.com", placed)
    db.session.refresh(anna)
    assert (anna.stage, anna.stage_reason, anna.stage_since) == ("conversion", "first order today", placed)
    assert anna.health == "active"

    later = placed + days(40)  # time passes: the first-purchase window closes
    refresh(later)
    db.session.refresh(anna)
    assert anna.stage == "retention"
    assert anna.stage_reason == "first order 40 days ago, past the 30-day first-purchase window"
    # Dated when the window closed (the first day more than 30 days after the order), not when the rules ran.
    window_closed = datetime.combine(placed.date() + timedelta(days=31), time(0), tzinfo=timezone.utc)
    assert anna.stage_since == window_closed

    log(anna.id, "testimonial", later + days(1), sentiment="positive", body="Lovely tea")
    db.session.refresh(anna)
    assert (anna.stage, anna.stage_reason) == ("advocacy", "gave a testimonial on 17 April 2026")

    refunded = later + days(3)
    buy("1001", "anna@example.com", placed, now=refunded, status="refunded", refunded="50.00")
    db.session.refresh(anna)
    assert anna.stage == "consideration"
    assert anna.stage_reason.startswith("no paid order left (refunded or cancelled)")
    assert anna.health is None and anna.stage_since == refunded

    assert stage_changes(anna.id) == [
        (None, "awareness", None), ("awareness", "consideration", None), ("consideration", "conversion", None),
        ("conversion", "retention", None), ("retention", "advocacy", None), ("advocacy", "consideration", None),
    ]
    periods = stage_pins.stage_history(anna.id, now=refunded)
    assert [(p.to_stage, p.days) for p in periods] == [
        ("consideration", 0), ("advocacy", 2), ("retention", 10), ("conversion", 30), ("consideration", 3),
        ("awareness", 2),
    ]


def test_a_second_refresh_at_the_same_time_changes_nothing(app):
    anna = contact("anna@example.com", now=T0)
    buy("1", "anna@example.com", T0 + days(1))
    refresh(T0 + days(45))
    before = (count(StageChange), count(ScoreHistory), count(Task))
    summary = refresh(T0 + days(45))
    assert (summary.stage_changes, summary.scores_changed, summary.tasks_created) == (0, 0, 0)
    assert (count(StageChange), count(ScoreHistory), count(Task)) == before
    assert stage_of(anna.id) == "retention"


def test_losing_a_customer_shows_in_health_not_in_the_stage(app):
    cid = buy("1", "ben@example.com", T0)
    buy("2", "ben@example.com", T0 + days(30))
    refresh(T0 + days(400))
    ben = db.session.get(Contact, cid)
    assert (ben.stage, ben.health) == ("retention", "lapsed")


def test_a_pinned_stage_is_left_alone_until_unpinned(app):
    sales = make_user("sales")
    cid = buy("1", "carla@example.com", T0)
    carla = db.session.get(Contact, cid)
    stage_pins.pin_stage(carla, "awareness", "a test order by a colleague", sales.id, now=T0 + days(1))
    db.session.commit()
    assert (carla.stage, carla.stage_pinned) == ("awareness", True)
    assert carla.stage_reason == "pinned by hand: a test order by a colleague"

    buy("2", "carla@example.com", T0 + days(3))
    refresh(T0 + days(60))
    db.session.refresh(carla)
    assert carla.stage == "awareness"

    stage_pins.unpin_stage(carla, sales.id, now=T0 + days(61))
    db.session.commit()
    db.session.refresh(carla)
    assert (carla.stage, carla.stage_pinned) == ("retention", False)
    assert stage_changes(cid)[-3:] == [
        ("conversion", "awareness", sales.id), ("awareness", "awareness", sales.id), ("awareness", "retention", None),
    ]
    assert [e.action for e in db.session.scalars(select(AuditEntry).where(AuditEntry.action.like("%pin%")))] == [
        "pin_stage", "unpin_stage"]


def test_pinning_needs_a_known_stage_and_a_reason(app):
    anna = contact()
    with pytest.raises(ValidationError) as refused:
        stage_pins.pin_stage(anna, "lost", "  ", None)
    assert set(refused.value.fields) == {"stage", "reason"}
    with pytest.raises(ValidationError):
        stage_pins.unpin_stage(anna, None)
    assert stage_changes(anna.id) == [(None, "awareness", None)]


def test_rules_read_the_shops_settings(app):
    rule_settings.save("journey", {"conversion_window_days": 7}, actor_id=None)
    cid = buy("1", "dora@example.com", T0)
    refresh(T0 + days(8))
    assert stage_of(cid) == "retention"


# -- the lead score ----------------------------------------------------------------------------


def test_the_score_is_stored_with_its_breakdown_and_history_only_when_it_changes(app):
    anna = contact("anna@example.com", now=T0, phone="+49 30 1234567", consent=True)
    assert anna.lead_score == 20
    assert [line["rule"] for line in anna.score_breakdown] == ["reachable", "consent"]
    assert sum(line["points"] for line in anna.score_breakdown) == 20
    assert history(anna.id) == [20]

    refresh(T0 + days(1))
    contacts.update_contact(anna, {"first_name": "Anna Maria"}, now=T0 + days(2))
    db.session.commit()
    assert history(anna.id) == [20]  # nothing about the score changed

    contacts.update_contact(anna, {"company": "Atelier Blau"}, now=T0 + days(3))
    db.session.commit()
    assert anna.lead_score == 25 and history(anna.id) == [20, 25]
    stored = db.session.scalars(select(ScoreHistory).where(ScoreHistory.contact_id == anna.id)
                                .order_by(ScoreHistory.id)).all()
    assert stored[-1].computed_at == T0 + days(3)
    assert {line["rule"] for line in stored[-1].breakdown} == {"reachable", "consent", "company"}


def test_engagement_decays_as_time_passes(app):
    anna = contact("anna@example.com", now=T0)
    log(anna.id, "meeting", T0, direction="outbound")
    db.session.refresh(anna)
    assert anna.lead_score == 20  # reachable 10 + meeting 10
    refresh(T0 + days(30))  # one half-life
    db.session.refresh(anna)
    assert anna.lead_score == 15 and history(anna.id) == [10, 20, 15]


def _hot_lead(email="hot@example.com", now=T0, **fields):
    lead = contact(email, now=now, phone="+49 30 1234567", consent=True, company="Studio Nord", **fields)
    for n in range(3):
        log(lead.id, "meeting", now + days(n / 10), direction="outbound")
    log(lead.id, "cart", now + days(0.5))
    db.session.refresh(lead)
    return lead


def test_a_lead_crossing_the_hot_threshold_gets_one_call_to_do_for_sales(app):
    sales = make_user("sales")
    lead = _hot_lead()
    assert lead.lead_score >= 70
    hot = tasks_of(lead.id)["hot_lead"]
    assert (hot.kind, hot.assignee_id, hot.status) == ("hot_lead", sales.id, "open")
    assert hot.rule_key == f"hot_lead:{(T0 + days(0.5)).date().isoformat()}"
    assert "crossed the hot-lead threshold" in hot.reason

    refresh(T0 + days(1))
    refresh(T0 + days(2))
    assert [t.rule_key for t in db.session.scalars(select(Task).where(Task.kind == "hot_lead"))] == [hot.rule_key]


def test_a_lead_that_cools_and_heats_again_on_another_day_gets_another_call(app):
    make_user("sales")
    lead = _hot_lead()
    refresh(T0 + days(60))  # cools down
    assert db.session.get(Contact, lead.id).lead_score < 70
    again = T0 + days(61)
    for n in range(3):
        log(lead.id, "meeting", again, direction="outbound")
    log(lead.id, "cart", again)
    keys = sorted(t.rule_key for t in db.session.scalars(select(Task).where(Task.kind == "hot_lead")))
    assert keys == [f"hot_lead:{T0.date().isoformat()}", f"hot_lead:{again.date().isoformat()}"]


# -- to-dos --------------------------------------------------------------------------------------


def test_satisfaction_call_after_the_first_order(app):
    support = make_user("support")
    cid = buy("1", "anna@example.com", T0)
    assert "followup" not in tasks_of(cid)
    refresh(T0 + days(7))
    task = tasks_of(cid)["followup"]
    assert (task.kind, task.title, task.assignee_id) == ("followup_call", "Satisfaction call about the first order",
                                                         support.id)
    assert task.due_at == T0 + days(7)


def test_to_dos_are_made_once_even_after_they_are_done_or_dismissed(app):
    make_user("support")
    cid = buy("1", "anna@example.com", T0)
    refresh(T0 + days(7))
    refresh(T0 + days(7))
    assert count(Task) == 1
    task = tasks_of(cid)["followup"]
    task.status = "dismissed"
    db.session.commit()
    summary = refresh(T0 + days(8))
    assert summary.tasks_created == 0 and count(Task) == 1


def test_testimonial_request_for_a_happy_repeat_customer_but_not_after_a_complaint(app):
    happy = buy("1", "happy@example.com", T0)
    buy("2", "happy@example.com", T0 + days(20))
    unhappy = buy("3", "unhappy@example.com", T0)
    buy("4", "unhappy@example.com", T0 + days(20))
    log(unhappy, "complaint", T0 + days(21), body="Broken lid", sentiment="negative")
    refresh(T0 + days(27))
    assert tasks_of(happy)["testimonial"].kind == "testimonial_request"
    assert "testimonial" not in tasks_of(unhappy)


def test_testimonial_request_closes_itself_when_the_testimonial_arrives(app):
    cid = buy("1", "anna@example.com", T0)
    buy("2", "anna@example.com", T0 + days(20))
    refresh(T0 + days(27))
    log(cid, "testimonial", T0 + days(28), sentiment="positive")
    task = tasks_of(cid)["testimonial"]
    assert (task.status, task.close_reason) == ("closed", "gave a testimonial or review on 30 March 2026")
    assert task.closed_at == T0 + days(28)


def _shop_of_small_spenders(n=5):
    for i in range(n):
        buy(f"s{i}", f"small{i}@example.com", T0 + days(100 + i), total="20.00")


def test_win_back_a_valuable_customer_at_risk_and_close_it_when_they_order_again(app):
    sales = make_user("sales")
    _shop_of_small_spenders()
    big = buy("b1", "big@example.com", T0, total="300.00")
    buy("b2", "big@example.com", T0 + days(30), total="300.00")
    refresh(T0 + days(110))
    task = tasks_of(big)["winback"]
    assert task.title == "Win back a valuable customer who is at risk"
    assert "above the shop median of €20.00" in task.reason
    assert task.assignee_id == sales.id

    buy("b3", "big@example.com", T0 + days(115), total="80.00")
    db.session.refresh(task)
    assert (task.status, task.close_reason) == ("closed", "ordered again on 25 June 2026")


def test_birthday_greeting_a_week_ahead(app):
    anna = contact("anna@example.com", birthday="1990-03-14")
    refresh(T0)
    assert "birthday" not in tasks_of(anna.id)
    refresh(datetime(2026, 3, 8, 6, tzinfo=T0.tzinfo))
    task = tasks_of(anna.id)["birthday"]
    assert (task.rule_key, task.reason) == ("birthday:2026", "birthday on 14 March 2026")
    refresh(datetime(2026, 3, 15, 6, tzinfo=T0.tzinfo))
    db.session.refresh(task)
    assert (task.status, task.close_reason) == ("closed", "birthday was on 14 March 2026")


def test_abandoned_cart_follow_up_closes_when_they_order(app):
    anna = contact("anna@example.com")
    log(anna.id, "cart", T0 + days(1), subject="Teapot")
    refresh(T0 + days(1.5))
    assert "cart" not in tasks_of(anna.id)  # not before a day has passed
    refresh(T0 + days(2.1))
    task = tasks_of(anna.id)["cart"]
    assert task.kind == "cart_followup"
    buy("1", "anna@example.com", T0 + days(3))
    db.session.refresh(task)
    assert (task.status, task.close_reason) == ("closed", "ordered on 5 March 2026")


def test_replenishment_reminder_before_the_usual_gap_is_up(app):
    cid = buy("1", "tea@example.com", T0)
    buy("2", "tea@example.com", T0 + days(30))
    buy("3", "tea@example.com", T0 + days(60))
    refresh(T0 + days(84))
    assert "replenish" not in tasks_of(cid)
    refresh(T0 + days(86))
    assert tasks_of(cid)["replenish"].reason.startswith("usually orders every 30 days")


def test_survey_after_the_third_order(app):
    cid = buy("1", "s@example.com", T0)
    buy("2", "s@example.com", T0 + days(10))
    buy("3", "s@example.com", T0 + days(20))
    refresh(T0 + days(23))
    assert tasks_of(cid)["survey"].rule_key == "survey:order_count:3"


def test_stay_in_touch_cadence_and_a_logged_interaction_closes_it(app):
    anna = contact("anna@example.com", stay_in_touch_days=14)
    task = tasks_of(anna.id)["stay_in_touch"]
    assert task.rule_key == "stay_in_touch:never"
    log(anna.id, "call", T0 + days(1), direction="outbound", outcome="Chatted")
    db.session.refresh(task)
    assert task.status == "closed" and task.close_reason == "interaction logged on 3 March 2026"
    refresh(T0 + days(16))
    keys = db.session.execute(select(Task.rule_key, Task.status).where(Task.contact_id == anna.id).order_by(Task.id)).all()
    assert keys == [("stay_in_touch:never", "closed"), ("stay_in_touch:2026-03-03", "open")]


def test_do_not_contact_gets_no_to_dos_and_loses_the_open_ones(app):
    quiet = contact("quiet@example.com", do_not_contact=True)
    log(quiet.id, "cart", T0 + days(1))
    anna = contact("anna@example.com")
    log(anna.id, "cart", T0 + days(1))
    refresh(T0 + days(2.1))
    assert tasks_of(quiet.id) == {}
    task = tasks_of(anna.id)["cart"]
    contacts.update_contact(anna, {"do_not_contact": True}, now=T0 + days(3))
    db.session.commit()
    db.session.refresh(task)
    assert (task.status, task.close_reason) == ("closed", "marked do not contact")


def test_round_robin_hands_to_dos_to_the_person_of_the_role_with_the_fewest_open_ones(app):
    first, second = make_user("sales", "s1@example.com"), make_user("sales", "s2@example.com")
    make_user("support")
    busy = contact("busy@example.com")
    db.session.add(Task(contact_id=busy.id, kind="call", title="Call back", assignee_id=first.id, due_at=T0))
    db.session.commit()
    carts = []
    for name in ("a", "b", "c"):
        lead = contact(f"{name}@example.com")
        log(lead.id, "cart", T0 + days(1))
        carts.append(lead.id)
    refresh(T0 + days(2.1))
    assert [tasks_of(cid)["cart"].assignee_id for cid in carts] == [second.id, first.id, second.id]


def test_the_owner_gets_the_to_do_unless_they_cannot_work_it(app):
    owner, other = make_user("support", "owner@example.com"), make_user("support", "other@example.com")
    demoted = make_user("sales", "demoted@example.com")
    mine = buy("1", "mine@example.com", T0)
    contacts.update_contact(db.session.get(Contact, mine), {"owner_id": owner.id}, now=T0)
    watched = buy("2", "watched@example.com", T0)
    contacts.update_contact(db.session.get(Contact, watched), {"owner_id": demoted.id}, now=T0)
    demoted.role = "viewer"  # an owner who later became a viewer
    db.session.commit()
    refresh(T0 + days(7))
    assert tasks_of(mine)["followup"].assignee_id == owner.id
    assert tasks_of(watched)["followup"].assignee_id == other.id  # a viewer cannot work to-dos


def test_with_nobody_in_the_role_an_admin_gets_it(app):
    admin = make_user("admin")
    cid = buy("1", "anna@example.com", T0)
    refresh(T0 + days(7))
    assert tasks_of(cid)["followup"].assignee_id == admin.id


def test_a_rule_switched_off_makes_no_to_dos(app):
    rule_settings.save("retention", {"followup_first_order": {"enabled": False}}, actor_id=None)
    cid = buy("1", "anna@example.com", T0)
    refresh(T0 + days(7))
    assert tasks_of(cid) == {}


# -- set-based and repeatable ------------------------------------------------------------------


def _shop(n):
    """n contacts written directly (no rules run yet): some with orders, some with a question."""
    from decimal import Decimal

    from crm.models import Order
    from crm.services.orders import aggregates

    for i in range(n):
        lead = Contact(email=f"c{i}@example.com", phone="+4930123456" if i % 2 else None, created_at=T0)
        db.session.add(lead)
        db.session.flush()
        if i % 3 == 0:
            db.session.add(Order(contact_id=lead.id, source="shopify", external_id=f"o{i}", number=f"#{i}",
                                 placed_at=T0 + days(1), status="paid", total=Decimal("20.00")))
        if i % 4 == 0:
            db.session.add(Interaction(contact_id=lead.id, kind="email", direction="inbound", occurred_at=T0 + days(2)))
    aggregates.refresh()
    db.session.commit()


@pytest.mark.parametrize("run, most", [
    (lambda: list(engine.gather_facts(None, T0 + days(10))), 12),  # reading the facts
    (lambda: refresh(T0 + days(40)), 25),  # reading, deciding and writing
])
def test_the_engine_takes_the_same_queries_for_3_or_60_contacts(app, run, most):
    from tests.conftest import _empty_all_tables

    counts = []
    for n in (3, 60):
        _empty_all_tables()
        _shop(n)
        with QueryCounter() as queries:
            run()
        counts.append(len(queries))
    assert counts[0] == counts[1] <= most


def test_facts_read_from_the_database_match_the_orders_and_interactions(app):
    cid = buy("1", "anna@example.com", T0, total="30.00")
    buy("2", "anna@example.com", T0 + days(0.1), total="20.00")  # same day
    buy("3", "anna@example.com", T0 + days(10), total="10.00", status="refunded", refunded="10.00")
    buy("4", "anna@example.com", T0 + days(20), total="15.00")
    log(cid, "review", T0 + days(21), sentiment="positive")
    log(cid, "review", T0 + days(22), sentiment="negative")
    (facts,) = engine.gather_facts([cid], T0 + days(30))
    assert (facts.order_count, facts.order_days, facts.refunded_or_cancelled_count) == (3, 2, 1)
    assert str(facts.total_spent) == "65.00"
    assert (facts.first_order_at, facts.last_order_at) == (T0, T0 + days(20))
    assert facts.last_advocacy_at == T0 + days(21) and facts.last_interaction_at == T0 + days(22)
    assert [i.kind for i in facts.interactions] == ["review", "review"]


def _dump():
    """Every row of every table, in key order."""
    dump = {}
    for table in db.metadata.sorted_tables:
        rows = db.session.execute(select(table).order_by(*table.primary_key.columns)).all()
        dump[table.name] = [tuple(row) for row in rows]
    return dump


def test_a_refresh_of_everyone_sees_an_order_placed_while_it_runs(app, monkeypatch):
    """A run for everyone reads the order figures once at its start; an order written after that
    (the contact's own rules already moved it on) is seen when its batch comes, not undone."""
    anna = contact("anna@example.com", now=T0)
    read = engine._Everyone.read

    def read_then_an_order_arrives(orders=None):
        everyone = read(orders)
        buy("1001", "anna@example.com", T0 + days(1))  # written and committed while the run goes on
        return everyone

    monkeypatch.setattr(engine._Everyone, "read", read_then_an_order_arrives)
    summary = refresh(T0 + days(2))
    assert stage_of(anna.id) == "conversion"
    assert summary.stage_changes == 0  # nothing moved back to awareness by stale figures
    assert db.session.scalar(select(Contact.order_count).where(Contact.id == anna.id)) == 1


def test_crm_refresh_twice_gives_the_same_database_as_once(app, runner):
    from crm.services.shop import demo

    make_user("sales")
    demo.generate(contacts=80, seed=5, today=date(2026, 6, 1))
    db.session.commit()
    result = runner.invoke(args=["refresh", "--as-of", "2026-07-15"])
    assert result.exit_code == 0, result.output
    assert "80 contacts:" in result.output and "to-dos created" in result.output
    # The progress output names each step as it starts, not only the rules' count.
    assert result.output.index("Predicting who buys again") < result.output.index("Stages, scores and to-dos")
    once = _dump()
    result = runner.invoke(args=["refresh", "--as-of", "2026-07-15"])
    assert result.exit_code == 0, result.output
    assert "0 stage changes" in result.output and "0 to-dos created" in result.output
    assert _dump() == once


def test_crm_refresh_leaves_the_query_planner_current_statistics(app, runner):
    """A shop that grew through webhooks was never analysed; the nightly refresh does it."""
    from sqlalchemy import text

    contact = Contact(email="planner@example.com")
    db.session.add(contact)
    db.session.commit()
    result = runner.invoke(args=["refresh", "--as-of", "2026-07-15"])
    assert result.exit_code == 0, result.output
    if db.engine.dialect.name == "sqlite":
        analysed = db.session.scalars(text("SELECT tbl FROM sqlite_stat1")).all()
    else:
        analysed = db.session.scalars(text(
            "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL")).all()
    assert "contacts" in analysed


def test_crm_refresh_refuses_a_bad_date(runner):
    result = runner.invoke(args=["refresh", "--as-of", "next tuesday"])
    assert result.exit_code == 2 and "2026-12-01" in result.output


def test_the_demo_shop_has_every_stage_scores_and_open_to_dos(app):
    from crm.services.insight import shop_totals
    from crm.services.shop import demo

    make_user("admin")
    made = demo.generate(contacts=120, seed=1, today=date(2026, 6, 1))
    db.session.commit()
    by_stage = shop_totals.summary().by_stage
    assert all(by_stage[stage] > 0 for stage in by_stage), by_stage
    assert db.session.scalar(select(Contact.lead_score).order_by(Contact.lead_score.desc()).limit(1)) > 0
    rule_tasks = db.session.scalars(select(Task).where(Task.rule_key.is_not(None), Task.status == "open")).all()
    assert len({t.kind for t in rule_tasks}) >= 4
    assert made["tasks"] == count(Task)
    assert count(Interaction) == made["interactions"]
