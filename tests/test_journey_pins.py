"""Pinning a contact's stage by hand from the contact page, the stage history and the score partials."""
from __future__ import annotations

from sqlalchemy import select

from crm.extensions import db
from crm.models import Contact, StageChange
from tests.conftest import soup, text_of
from tests.engine_data import T0, buy, days, refresh


def _customer():
    cid = buy("1", "anna@example.com", T0)
    refresh(T0 + days(40))
    return db.session.get(Contact, cid)


def test_pinning_in_place_swaps_the_controls_and_records_who_did_it(client, auth):
    auth.as_role("support")
    anna = _customer()
    response = client.post(f"/contacts/{anna.id}/stage", data={"action": "pin", "stage": "advocacy",
                                                                "reason": "Wrote about us in her blog"},
                           headers={"HX-Request": "true"})
    assert response.status_code == 200
    controls = soup(response).select_one("div.stage-controls")
    assert soup(response).select_one("header") is None
    assert text_of(controls.select_one(".badge.stage-advocacy")) == "Advocacy"
    assert controls.select_one(".badge.pinned") is not None
    assert text_of(controls.select_one(".stage-reason")) == "pinned by hand: Wrote about us in her blog"
    assert text_of(controls.select_one(".confirmation")) == "Pinned at advocacy."
    assert controls.select_one("form.unpin") is not None
    history = soup(response).select_one("section.stage-history[hx-swap-oob=true]")
    assert "pinned by hand: Wrote about us in her blog" in text_of(history.select_one("tr.stage-change"))
    from crm.services.staff import users

    change = db.session.scalar(select(StageChange).order_by(StageChange.id.desc()))
    assert (change.from_stage, change.to_stage, change.changed_by_id) == (
        "retention", "advocacy", users.by_email("support@example.com").id)


def test_a_pin_without_a_reason_comes_back_in_place(client, auth):
    auth.as_role("sales")
    anna = _customer()
    response = client.post(f"/contacts/{anna.id}/stage", data={"action": "pin", "stage": "awareness", "reason": ""},
                           headers={"HX-Request": "true"})
    controls = soup(response).select_one("div.stage-controls")
    assert text_of(controls.select_one(f"#pin-reason-{anna.id}-error")) == "Say why the stage is set by hand."
    assert controls.select_one("details.pin[open]") is not None
    assert controls.select_one(f"#pin-stage-{anna.id} option[selected]")["value"] == "awareness"
    db.session.refresh(anna)
    assert (anna.stage, anna.stage_pinned) == ("retention", False)


def test_unpinning_hands_the_stage_back_to_the_rules(client, auth):
    auth.as_role("sales")
    anna = _customer()
    client.post(f"/contacts/{anna.id}/stage", data={"action": "pin", "stage": "awareness", "reason": "Test order"})
    db.session.refresh(anna)
    assert (anna.stage, anna.stage_pinned) == ("awareness", True)
    response = client.post(f"/contacts/{anna.id}/stage", data={"action": "unpin"}, headers={"HX-Request": "true"})
    controls = soup(response).select_one("div.stage-controls")
    assert text_of(controls.select_one(".badge")) == "Retention" and controls.select_one(".badge.pinned") is None
    db.session.refresh(anna)
    assert (anna.stage, anna.stage_pinned) == ("retention", False)


def test_viewers_see_the_stage_but_cannot_pin_it(client, auth):
    auth.as_role("viewer")
    anna = _customer()
    page = soup(client.get(f"/contacts/{anna.id}/stage"))
    assert text_of(page.select_one(".stage-controls .badge")) == "Retention"
    assert page.select_one("form.pin") is None
    response = client.post(f"/contacts/{anna.id}/stage", data={"action": "pin", "stage": "awareness", "reason": "x"})
    assert response.status_code == 403
    db.session.refresh(anna)
    assert (anna.stage, anna.stage_pinned) == ("retention", False)
    assert client.get("/contacts/987654/stage").status_code == 404


def test_without_htmx_a_pin_redirects_with_a_flash(client, auth):
    auth.as_role("admin")
    anna = _customer()
    response = client.post(f"/contacts/{anna.id}/stage", data={"action": "pin", "stage": "advocacy",
                                                                "reason": "Referred three friends"},
                           follow_redirects=True)
    assert text_of(soup(response).select_one(".flash-success")) == "Pinned at advocacy."


def test_the_journey_page_shows_the_history_with_time_in_each_stage_and_the_score(client, auth):
    auth.as_role("viewer")
    anna = _customer()
    page = soup(client.get(f"/contacts/{anna.id}/stage"))
    history = [[text_of(td) for td in tr.select("td")] for tr in page.select("tr.stage-change")]
    assert [row[1] for row in history] == ["Conversion → Retention", "Conversion"]
    assert history[1][2] == "30 days"  # from the first order to the end of the first-purchase window, not to the refresh
    assert history[0][2].endswith("so far") and history[0][4] == "rules"
    assert history[0][3] == "first order 40 days ago, past the 30-day first-purchase window"
    score = page.select_one("section.lead-score")
    assert text_of(score.select_one("strong.score")) == str(anna.lead_score)
    assert [tr["data-rule"] for tr in score.select("tr[data-rule]")] == [l["rule"] for l in anna.score_breakdown]


def test_the_contact_page_partials_render_with_only_the_contact(app, auth, client):
    from flask import render_template

    from crm.models import Task

    auth.as_role("sales")
    anna = _customer()
    db.session.add(Task(contact_id=anna.id, kind="call", title="Call Anna", due_at=T0))
    db.session.commit()
    partials = {
        "journey/_stage_controls.html": "div.stage-controls form.pin",
        "journey/_stage_history.html": "section.stage-history tr.stage-change",
        "leads/_score.html": "section.lead-score tr[data-rule]",
        "tasks/_for_contact.html": "section.contact-tasks tr.task form.complete",
        "tasks/_new.html": "section.new-task form",
    }
    with app.test_request_context():
        from flask_login import login_user

        from crm.services.staff import users

        login_user(users.by_email("sales@example.com"))
        for name, selector in partials.items():
            html = render_template(name, contact=anna)
            assert soup_of(html).select_one(selector) is not None, name


def soup_of(html):
    from bs4 import BeautifulSoup

    return BeautifulSoup(html, "html.parser")
