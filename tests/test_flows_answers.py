"""Survey and testimonial answers: the email carries one-click links; the public page records an
answer only by POST; answers reach the timeline and the journey; a low score makes a to-do."""
from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.models import Interaction, SurveyAnswer, Task
from crm.services.email import outbox
from crm.services.flows import answers
from crm.services.flows import config as flow_config
from crm.services.flows.jobs import run_flows
from crm.services.shared import signals
from tests.contact_helpers import make_contact, make_order
from tests.test_flows_worker import T

pytestmark = pytest.mark.slow


def _links(text):
    return [urlsplit(u) for u in re.findall(r"https?://[^\s/]+/a/[^\s)\]]+", text)]


def test_the_survey_flow_email_carries_score_links_and_the_page_records_by_post_only(app, client, smtp, run_worker):
    smtp.save_settings()
    flow_config.save_flow("survey", {"action": "email"}, None, now=T - timedelta(days=60))
    contact = make_contact(email="gus@example.com", first_name="Gus", consent=True, created_at=T - timedelta(days=90))
    for days in (40, 20, 5):
        make_order(contact, T - timedelta(days=days))
    signals.after_contacts_changed([contact.id], now=T)
    run_flows(T.isoformat())
    run_worker()
    [received] = smtp.messages
    text = received.message.get_body(("plain",)).get_content()
    links = _links(text)
    assert len(links) == 11 and links[3].query == "score=3"
    page = client.get(f"{links[3].path}?{links[3].query}")
    assert page.status_code == 200 and 'value="3" checked' in page.get_data(as_text=True)
    assert db.session.scalar(select(SurveyAnswer)) is None  # a prefetching scanner records nothing
    response = client.post(links[3].path, data={"score": "3", "comment": "Parcel arrived broken."})
    assert response.status_code == 200 and "Thank you" in response.get_data(as_text=True)
    answer = db.session.scalar(select(SurveyAnswer))
    assert (answer.contact_id, answer.score, answer.kind) == (contact.id, 3, "survey") and answer.message_id
    entry = db.session.get(Interaction, answer.interaction_id)
    assert entry.kind == "survey" and entry.sentiment == "negative" and entry.body == "Parcel arrived broken."
    task = db.session.scalar(select(Task).where(Task.contact_id == contact.id, Task.kind == "satisfaction_call"))
    assert task is not None and "scored 3 out of 10" in task.reason


def test_a_testimonial_makes_an_advocate_and_bad_input_is_refused(app, client):
    contact = make_contact(email="hal@example.com", first_name="Hal", consent=True)
    make_order(contact, T - timedelta(days=40))
    make_order(contact, T - timedelta(days=10))
    message = outbox.queue_message(contact, "testimonial_request", now=T)
    db.session.commit()
    [link] = _links(message.text_body)
    assert client.post(link.path, data={"comment": ""}).status_code == 422
    assert client.post(link.path, data={"comment": "The best sencha in town."}).status_code == 200
    db.session.refresh(contact)
    assert contact.stage == "advocacy"
    assert client.get("/a/forged-token").status_code == 404
    survey = outbox.queue_message(contact, "survey", now=T)
    db.session.commit()
    path = _links(survey.text_body)[0].path
    assert client.post(path, data={"score": "11"}).status_code == 422
    assert client.post(path, data={"score": "10"}).status_code == 200


def test_nps_per_month(app):
    people = [make_contact(email=f"n{i}@example.com") for i in range(4)]
    for person, score in zip(people, (10, 9, 7, 2)):
        answers.record(person, "survey", score, "", None, now=T)
    [month] = answers.nps(now=T)
    assert (month.answers, month.promoters, month.detractors, month.score) == (4, 2, 1, 25)


def test_the_dashboard_card_shows_nps_and_the_latest_comments(app, client, auth):
    person = make_contact(email="ivy@example.com", first_name="Ivy")
    answers.record(person, "survey", 10, "Lovely tea & quick delivery", None)
    flow_config.save_flow("survey", {"action": "email"}, None)
    db.session.commit()
    auth.as_role("admin")
    page = client.get("/").get_data(as_text=True)
    assert "Net Promoter Score" in page and "<strong>100</strong> (1 answer)" in page
    assert "Ivy" in page and "Lovely tea &amp; quick delivery" in page
    assert "Survey" in page  # the flow's row
