"""Stage changes derived from history are dated when the facts happened, so an imported history
gives the same journey as the same orders arriving one by one through webhooks."""
from __future__ import annotations

import json
from datetime import datetime, time, timedelta, timezone

from sqlalchemy import select

from crm.extensions import db
from crm.models import Contact, Setting, StageChange
from crm.services.orders import webhooks
from crm.services.orders.importing import run as importing
from crm.services.rules import engine
from crm.services.rules.facts import ContactFacts, InteractionFact
from crm.services.rules.journey import Decision, dated_steps
from crm.services.rules.settings import load_all

UTC = timezone.utc
NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)
SECRET = "dating secret"


def ago(days: float, hour: int = 10) -> datetime:
    return datetime.combine((NOW - timedelta(days=days)).date(), time(hour), tzinfo=UTC)


# email -> order times: a one-time buyer whose window closed, a quick second order, a second
# order after the window closed, a recent first order, and one with many orders over years.
HISTORY = {
    "once@example.com": [ago(400)],
    "quick@example.com": [ago(300), ago(290)],
    "slow@example.com": [ago(200), ago(150)],
    "new@example.com": [ago(5)],
    "loyal@example.com": [ago(900 - 60 * k) for k in range(12)],
}


def journeys() -> dict[str, list[tuple]]:
    rows = db.session.execute(
        select(Contact.email, StageChange.from_stage, StageChange.to_stage, StageChange.changed_at)
        .join(Contact, Contact.id == StageChange.contact_id).order_by(StageChange.changed_at, StageChange.id))
    found: dict[str, list[tuple]] = {}
    for email, from_stage, to_stage, changed_at in rows:
        found.setdefault(email, []).append((from_stage, to_stage, changed_at))
    return found


def wipe():
    for table in reversed(db.metadata.sorted_tables):
        db.session.execute(table.delete())
    db.session.commit()


def test_an_imported_history_gets_the_journey_it_would_have_had_order_by_order(app, tmp_path):
    path = tmp_path / "history.csv"
    lines = ["order_id,email,placed_at,total"]
    lines += [f"{email.split('@')[0]}-{n},{email},{when.isoformat()},40.00"
              for email, times in HISTORY.items() for n, when in enumerate(times)]
    path.write_text("\n".join(lines) + "\n")
    importing.run_import("orders", path, "history.csv", now=NOW)
    engine.apply(None, now=NOW)
    db.session.commit()
    imported = journeys()

    wipe()
    db.session.add(Setting(key="webhooks.shopify_secret", value=SECRET))
    db.session.commit()
    arrivals = sorted((when, email, n) for email, times in HISTORY.items() for n, when in enumerate(times))
    for number, (when, email, n) in enumerate(arrivals):
        body = json.dumps({"id": 1000 + number, "name": f"#{1000 + number}", "email": email,
                           "created_at": when.isoformat(), "financial_status": "paid", "currency": "EUR",
                           "total_price": "40.00", "line_items": [], "refunds": []}).encode()
        answer = webhooks.receive("shopify", body=body, signature=webhooks.sign(SECRET, body), topic="orders/create",
                                  delivery_id=f"d-{number}", now=when)
        assert answer.status == 200, answer.message
        db.session.commit()
    engine.apply(None, now=ago(100))  # a refresh somewhere in between changes nothing in the story
    engine.apply(None, now=NOW)
    db.session.commit()
    one_by_one = journeys()

    assert imported == one_by_one
    first = HISTORY["once@example.com"][0]
    window_closed = datetime.combine(first.date() + timedelta(days=31), time(0), tzinfo=UTC)
    assert imported["once@example.com"] == [(None, "conversion", first), ("conversion", "retention", window_closed)]
    quick = HISTORY["quick@example.com"]
    assert imported["quick@example.com"] == [(None, "conversion", quick[0]), ("conversion", "retention", quick[1])]
    slow = HISTORY["slow@example.com"]
    assert imported["slow@example.com"][-1] == (
        "conversion", "retention", datetime.combine(slow[0].date() + timedelta(days=31), time(0), tzinfo=UTC))
    assert imported["new@example.com"] == [(None, "conversion", HISTORY["new@example.com"][0])]
    loyal = HISTORY["loyal@example.com"]  # every 60 days: the window closed before the second order
    loyal_window = datetime.combine(loyal[0].date() + timedelta(days=31), time(0), tzinfo=UTC)
    assert imported["loyal@example.com"] == [(None, "conversion", loyal[0]), ("conversion", "retention", loyal_window)]
    # The contact remembers since when: the funnel's time in stage is meaningful on the first day.
    stored = db.session.scalar(select(Contact).where(Contact.email == "loyal@example.com"))
    assert stored.stage == "retention" and stored.stage_since == loyal_window


def test_a_testimonial_dates_advocacy_and_a_skipped_stage_is_not_invented(app):
    rules = load_all().journey
    first = ago(100)
    testimonial = first + timedelta(days=3)  # before the window closed: never in retention
    facts = ContactFacts(contact_id=1, order_count=1, order_days=1, first_order_at=first, last_order_at=first,
                         interactions=(InteractionFact("testimonial", "inbound", testimonial, "positive", None),))
    steps = dated_steps(Decision(None, "advocacy", "gave a testimonial", "initial"), facts, rules, NOW)
    assert [(s.from_stage, s.to_stage, s.at) for s in steps] == [
        (None, "conversion", first), ("conversion", "advocacy", testimonial)]
    later = first + timedelta(days=60)  # after the window: retention came first
    facts = ContactFacts(contact_id=1, order_count=1, order_days=1, first_order_at=first, last_order_at=first,
                         interactions=(InteractionFact("testimonial", "inbound", later, "positive", None),))
    steps = dated_steps(Decision(None, "advocacy", "gave a testimonial", "initial"), facts, rules, NOW)
    assert [s.to_stage for s in steps] == ["conversion", "retention", "advocacy"]
    assert steps[-1].at == later
