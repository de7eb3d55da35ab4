"""Settings → rules: stored over the defaults, validated with clear reasons, admin only, refresh now."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.models import AuditEntry, Contact, Setting
from crm.services.rules import settings as rule_settings
from crm.services.rules.defaults import DEFAULT_RETENTION, DEFAULT_SCORING
from crm.services.shared.errors import ValidationError
from tests.conftest import soup, text_of
from tests.engine_data import T0, buy, days


def _form_data(page, kind):
    """The values the rules form of `kind` would post as it stands."""
    form = page.select_one(f"#rules-{kind} form")
    data = {}
    for field in form.select("input, select"):
        name = field.get("name")
        if not name or field.get("type") == "submit":
            continue
        if field.get("type") == "checkbox":
            if field.has_attr("checked"):
                data.setdefault(name, []).append(field.get("value", "y"))
        elif field.name == "select":
            chosen = field.select_one("option[selected]") or field.select_one("option")
            data[name] = chosen["value"]
        else:
            data[name] = field.get("value", "")
    return data


# -- the service -------------------------------------------------------------------------------


def test_load_gives_the_defaults_until_something_is_saved(app):
    assert rule_settings.load("scoring") == dict(rule_settings.load("scoring"), hot_threshold=70)
    assert rule_settings.load("retention")["winback"]["role"] == DEFAULT_RETENTION["winback"]["role"]


def test_save_keeps_only_what_differs_from_the_defaults_and_audits(app):
    merged = rule_settings.save("scoring", {"weights": {"cart": 25}, "hot_threshold": 70}, actor_id=None)
    assert merged["weights"]["cart"] == 25 and merged["weights"]["consent"] == DEFAULT_SCORING["weights"]["consent"]
    assert db.session.get(Setting, "rules.scoring").value == {"weights": {"cart": 25}}
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.entity == "setting"))
    assert (entry.before, entry.after) == ({"rules.scoring.weights.cart": 15}, {"rules.scoring.weights.cart": 25})
    assert rule_settings.load_all().scoring["weights"]["cart"] == 25


@pytest.mark.parametrize("values, field", [
    ({"hot_threshold": 500}, "hot_threshold"),
    ({"hot_threshold": "70"}, "hot_threshold"),
    ({"weights": {"cartt": 3}}, "weights.cartt"),
    ({"weights": {"cart": -500}}, "weights.cart"),
    ({"engagement_half_life_days": 0}, "engagement_half_life_days"),
    ({"question_kinds": ["email", "pigeon"]}, "question_kinds"),
])
def test_save_names_each_bad_value(app, values, field):
    with pytest.raises(ValidationError) as refused:
        rule_settings.save("scoring", values, actor_id=None)
    assert field in refused.value.fields
    assert db.session.get(Setting, "rules.scoring") is None


def test_save_refuses_health_thresholds_that_contradict_each_other(app):
    with pytest.raises(ValidationError) as refused:
        rule_settings.save("health", {"at_risk_after_gaps": 3.0, "lapsed_after_gaps": 2.0}, actor_id=None)
    assert "lapsed_after_gaps" in refused.value.fields
    with pytest.raises(ValidationError) as refused:
        rule_settings.save("retention", {"winback": {"role": "viewer", "health": []}}, actor_id=None)
    assert set(refused.value.fields) == {"winback.role", "winback.health"}


# -- the page ------------------------------------------------------------------------------------


def test_the_rules_page_is_for_admins_only(client, auth):
    auth.as_role("sales")
    assert client.get("/settings/rules/").status_code == 403
    response = client.post("/settings/rules/scoring", data={"scoring-hot_threshold": "5"})
    assert response.status_code == 403
    assert client.post("/settings/rules/refresh").status_code == 403
    assert db.session.get(Setting, "rules.scoring") is None


def test_the_page_shows_every_setting_with_its_current_value(client, auth):
    auth.as_role("admin")
    rule_settings.save("retention", {"winback": {"enabled": False, "role": "support"}}, actor_id=None)
    db.session.commit()
    page = soup(client.get("/settings/rules/"))
    assert [text_of(h) for h in page.select(".rules-section h2")] == [
        "Journey stages", "Customer health", "Lead score", "To-do rules"]
    assert page.select_one("#scoring-hot_threshold")["value"] == "70"
    assert page.select_one("#scoring-engagement_half_life_days")["value"] == "30"
    assert not page.select_one("#retention-winback__enabled").has_attr("checked")
    assert page.select_one("#retention-winback__role option[selected]")["value"] == "support"
    legends = [text_of(l) for l in page.select("#rules-retention fieldset.rule-group > legend")]
    assert "Win back a valuable customer who is slipping away" in legends
    assert page.select_one("form[action='/settings/rules/refresh'] button") is not None
    # The settings index links here.
    assert soup(client.get("/settings/")).select_one("a[href='/settings/rules/']") is not None


def test_saving_through_htmx_swaps_the_form_with_a_confirmation(client, auth):
    auth.as_role("admin")
    data = _form_data(soup(client.get("/settings/rules/")), "scoring")
    data.update({"scoring-hot_threshold": "80", "scoring-weights__cart": "20"})
    response = client.post("/settings/rules/scoring", data=data, headers={"HX-Request": "true"})
    assert response.status_code == 200
    section = soup(response)
    assert section.select_one("header") is None and section.select_one("section#rules-scoring") is not None
    assert "Lead score saved" in text_of(section.select_one(".confirmation"))
    assert section.select_one("#scoring-hot_threshold")["value"] == "80"
    assert rule_settings.load("scoring")["hot_threshold"] == 80
    assert db.session.get(Setting, "rules.scoring").value == {"weights": {"cart": 20}, "hot_threshold": 80}


def test_a_bad_value_comes_back_in_place_with_its_reason_and_nothing_is_stored(client, auth):
    auth.as_role("admin")
    data = _form_data(soup(client.get("/settings/rules/")), "health")
    data.update({"health-lapsed_after_gaps": "1.0", "health-min_gap_days": "lots"})
    response = client.post("/settings/rules/health", data=data, headers={"HX-Request": "true"})
    assert response.status_code == 200
    section = soup(response)
    assert section.select_one(".confirmation") is None
    assert text_of(section.select_one("#health-min_gap_days-error"))
    assert section.select_one("#health-min_gap_days")["aria-invalid"] == "true"
    assert db.session.get(Setting, "rules.health") is None
    # Once the form is fine, the range check speaks.
    data["health-min_gap_days"] = "14"
    section = soup(client.post("/settings/rules/health", data=data, headers={"HX-Request": "true"}))
    assert "more gaps than at risk" in text_of(section.select_one("#health-lapsed_after_gaps-error"))
    assert db.session.get(Setting, "rules.health") is None


def test_a_to_do_rule_switched_off_and_handed_to_another_role(client, auth):
    auth.as_role("admin")
    data = _form_data(soup(client.get("/settings/rules/")), "retention")
    data.pop("retention-abandoned_cart__enabled")
    data.update({"retention-survey__role": "sales", "retention-survey__delay_days": "5",
                 "retention-winback__health": ["lapsed"]})
    response = client.post("/settings/rules/retention", data=data)
    assert response.status_code == 302
    saved = rule_settings.load("retention")
    assert saved["abandoned_cart"]["enabled"] is False
    assert (saved["survey"]["role"], saved["survey"]["delay_days"]) == ("sales", 5)
    assert saved["winback"]["health"] == ["lapsed"]
    page = soup(client.get("/settings/rules/"))
    assert "To-do rules saved" in text_of(page.select_one(".flash-success"))


def test_refresh_now_queues_the_refresh_for_everyone_and_the_worker_says_what_changed(client, auth, run_worker):
    from crm.models import JobRun

    auth.as_role("admin")
    cid = buy("1", "anna@example.com", T0)
    rule_settings.save("journey", {"conversion_window_days": 1}, actor_id=None)
    db.session.commit()
    response = client.post("/settings/rules/refresh", follow_redirects=True)
    flash = text_of(soup(response).select_one(".flash-success"))
    assert flash.startswith("Refresh queued")
    assert db.session.get(Contact, cid).stage != "retention"  # not inside the request
    run_worker()
    job = db.session.scalar(db.select(JobRun).where(JobRun.name == "engine.refresh"))
    assert job.status == "done" and job.result.startswith("Refreshed 1 contacts: 1 stage changes")
    assert db.session.get(Contact, cid).stage == "retention"
    assert T0 + days(1) < db.session.get(Contact, cid).stage_since


def test_a_rule_switched_off_asks_then_closes_its_open_to_dos_with_that_reason(client, auth):
    from crm.models import Task

    auth.as_role("admin")
    anna = buy("1", "anna@example.com", T0)
    other = Task(contact_id=anna, kind="call", title="Call by hand", due_at=T0)
    rule_task = Task(contact_id=anna, kind="testimonial_request", rule_key="testimonial:repeat_customer",
                     title="Ask for a testimonial", due_at=T0)
    db.session.add_all([other, rule_task])
    db.session.commit()
    data = _form_data(soup(client.get("/settings/rules/")), "retention")
    data.pop("retention-testimonial_request__enabled")
    section = soup(client.post("/settings/rules/retention", data=data, headers={"HX-Request": "true"}))
    ask = section.select_one("form.ask")
    assert "1 open to-do it made is still on people's lists" in text_of(ask)
    assert db.session.get(Task, rule_task.id).status == "open"  # nothing closes before the admin says so
    response = client.post(ask["action"], follow_redirects=True)
    assert "1 open to-do of “Ask a happy repeat customer for a testimonial” closed." in text_of(
        soup(response).select_one(".flash-success"))
    db.session.expire_all()
    closed = db.session.get(Task, rule_task.id)
    assert (closed.status, closed.close_reason) == (
        "closed", "rule switched off: Ask a happy repeat customer for a testimonial")
    assert db.session.get(Task, other.id).status == "open"
    # Without htmx the page asks after the redirect.
    client.post("/settings/rules/retention", data=_form_data(soup(client.get("/settings/rules/")), "retention"))
    assert soup(client.get("/settings/rules/?ask=testimonial_request")).select_one("form.ask") is None
