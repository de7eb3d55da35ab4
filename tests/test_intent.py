"""Scores mean buying intent: a complaint or a negative interaction is a problem, not engagement."""
from __future__ import annotations

from crm.extensions import db
from crm.models import Contact
from crm.services.rules.defaults import DEFAULT_SCORING, merge_settings
from tests.conftest import soup, text_of
from tests.engine_data import T0, contact, days, log, tasks_of


def test_a_negative_inbound_call_lowers_the_score_and_asks_for_a_satisfaction_call(app):
    anna = contact(consent=True)
    before = db.session.get(Contact, anna.id).lead_score
    log(anna.id, "call", T0 + days(1), subject="Order never arrived", sentiment="negative")
    after = db.session.get(Contact, anna.id)
    assert after.lead_score < before
    rules = {line["rule"]: line for line in after.score_breakdown}
    assert "engagement" not in rules and "open_question" not in rules
    assert rules["complaint"]["why"] == "negative call on 3 March 2026 not resolved (a problem, not buying intent)"
    task = tasks_of(anna.id)["problem"]
    assert (task.title, task.status, task.kind) == ("Satisfaction call about a problem", "open", "problem_followup")
    # An outcome on a later call resolves the problem: the to-do is moot and the penalty goes.
    log(anna.id, "call", T0 + days(2), direction="outbound", outcome="Sent a new parcel")
    db.session.expire_all()
    assert tasks_of(anna.id)["problem"].status == "closed"
    assert "complaint" not in {line["rule"] for line in db.session.get(Contact, anna.id).score_breakdown}


def test_a_friendly_inbound_call_is_still_engagement(app):
    anna = contact(consent=True)
    log(anna.id, "call", T0 + days(1), subject="Do you ship to Norway?", sentiment="positive")
    rules = {line["rule"] for line in db.session.get(Contact, anna.id).score_breakdown}
    assert {"engagement", "open_question"} <= rules
    assert "problem" not in tasks_of(anna.id)


def test_the_breakdown_says_a_problem_is_not_counted_as_engagement(app):
    anna = contact(consent=True)
    log(anna.id, "chat", T0 + days(1), sentiment="positive")
    log(anna.id, "email", T0 + days(1), sentiment="negative")
    engagement = {line["rule"]: line for line in db.session.get(Contact, anna.id).score_breakdown}["engagement"]
    assert engagement["why"].endswith("1 complaint or negative interaction not counted: a problem is not buying intent")


def test_the_shop_can_count_negative_interactions_as_before(app):
    settings = merge_settings(DEFAULT_SCORING, {"negative_is_a_problem": False})
    assert settings["negative_is_a_problem"] is False


def test_the_rule_is_on_the_rules_page(client, auth):
    auth.as_role("admin")
    page = soup(client.get("/settings/rules/"))
    scoring = text_of(page.select_one("#rules-scoring"))
    assert "A negative interaction of any kind is a problem like a complaint" in scoring
    assert "Satisfaction call about a problem" in text_of(page.select_one("#rules-retention"))
