"""Flows for real: switch a rule's flow on, let time pass, run the worker, read the message from
the SMTP server (aiosmtpd); an order in between skips it with the reason on the timeline."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.models import EmailMessage, FlowSend, Interaction, Task
from crm.services.email import outbox
from crm.services.flows import config as flow_config
from crm.services.flows import runner
from crm.services.flows.jobs import run_flows
from crm.services.shared import signals
from tests.contact_helpers import make_contact, make_interaction, make_order

pytestmark = pytest.mark.slow

# Yesterday at noon UTC: inside the default sending window, and never in the worker's future.
T = datetime.combine(datetime.now(UTC).date() - timedelta(days=1), datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)


def _repeat_customer(email="ada@example.com", consent=True):
    contact = make_contact(email=email, first_name="Ada", consent=consent, created_at=T - timedelta(days=60))
    make_order(contact, T - timedelta(days=30))
    make_order(contact, T - timedelta(days=10))
    return contact


def _timeline(contact):
    return list(db.session.scalars(select(Interaction).where(Interaction.contact_id == contact.id)
                                   .order_by(Interaction.id)))


@pytest.mark.slow
def test_the_testimonial_flow_sends_through_the_worker(app, smtp, run_worker):
    smtp.save_settings()
    flow_config.save_flow("testimonial_request", {"action": "email"}, None, now=T - timedelta(days=40))
    contact = _repeat_customer()
    signals.after_contacts_changed([contact.id], now=T)  # time passes: the rule's to-do is due
    task = db.session.scalar(select(Task).where(Task.contact_id == contact.id, Task.kind == "testimonial_request"))
    assert task is not None and task.due_at <= T
    run_flows(T.isoformat())
    run_worker()
    [received] = smtp.messages
    assert received.message["To"] == "Ada <ada@example.com>" or "ada@example.com" in received.message["To"]
    assert received.message["Subject"].startswith("Would you share a few words about")
    assert received.message["List-Unsubscribe"]
    row = db.session.scalar(select(FlowSend).where(FlowSend.contact_id == contact.id))
    assert (row.flow, row.status) == ("testimonial_request", "sent")
    message = db.session.get(EmailMessage, row.message_id)
    assert message.status == "sent" and message.template_key == "testimonial_request"
    assert db.session.get(Task, task.id).status == "done"  # the email answered the to-do
    # Once per occasion: a second pass, later, sends nothing more.
    run_flows((T + timedelta(hours=2)).isoformat())
    run_worker()
    assert len(smtp.messages) == 1


def test_an_order_in_between_skips_the_abandoned_cart_email_with_the_reason(app, smtp, run_worker):
    smtp.save_settings()
    flow_config.save_flow("abandoned_cart", {"action": "email"}, None, now=T - timedelta(days=5))
    contact = make_contact(email="bo@example.com", first_name="Bo", consent=True, created_at=T - timedelta(days=60))
    make_interaction(contact, T - timedelta(hours=40), kind="cart", direction="inbound")
    signals.after_contacts_changed([contact.id], now=T - timedelta(hours=15))
    task = db.session.scalar(select(Task).where(Task.contact_id == contact.id, Task.kind == "cart_followup"))
    assert task is not None and task.status == "open"
    make_order(contact, T - timedelta(hours=3))  # they ordered before the flow's pass
    run_flows(T.isoformat())
    run_worker()
    assert smtp.messages == []
    row = db.session.scalar(select(FlowSend).where(FlowSend.contact_id == contact.id))
    assert row.status == "skipped" and row.reason.startswith("no longer applies: ordered on")
    note = _timeline(contact)[-1]
    assert note.channel == "flow" and "Abandoned cart email not sent" in note.subject and "ordered on" in note.body


def test_no_consent_is_skipped_with_the_reason_and_the_cap_delays(app):
    flow_config.save_flow("testimonial_request", {"action": "both", "followup_days": "3"}, None,
                          now=T - timedelta(days=40))
    silent = _repeat_customer("cy@example.com", consent=False)
    busy = _repeat_customer("di@example.com")
    for days in (5, 1):  # two marketing emails this week already: the cap is reached
        outbox.queue_message(busy, "stay_in_touch", now=T - timedelta(days=days))
    signals.after_contacts_changed([silent.id, busy.id], now=T)
    summary = runner.run(T)
    assert (summary.sent, summary.skipped, summary.waiting) == (0, 1, 1)
    skipped = db.session.scalar(select(FlowSend).where(FlowSend.contact_id == silent.id))
    assert skipped.status == "skipped" and "consent" in skipped.reason
    assert "consent" in _timeline(silent)[-1].body
    # "Both": the to-do stays for a person when the email may not go.
    assert db.session.get(Task, skipped.task_id).status == "open"
    waiting = db.session.scalar(select(FlowSend).where(FlowSend.contact_id == busy.id))
    assert waiting.status == "waiting" and waiting.due_at == T - timedelta(days=5) + timedelta(days=7)
    assert db.session.get(Task, waiting.task_id).snoozed_until == waiting.due_at
    # When the oldest leaves the 7 days, it goes; the to-do comes back after 3 days without a reply.
    due = waiting.due_at
    summary = runner.run(due)
    assert summary.sent == 1 and waiting.status == "sent" and waiting.sent_at == due
    task = db.session.get(Task, waiting.task_id)
    assert task.status == "open" and task.snoozed_until == due + timedelta(days=3)
    make_interaction(busy, due + timedelta(days=1), kind="email", direction="inbound")
    runner.run(due + timedelta(days=3, minutes=1))
    assert waiting.followup.startswith("replied on") and task.status == "closed"


def test_the_sending_window_holds_a_message_until_nine(app):
    flow_config.save_flow("testimonial_request", {"action": "email"}, None, now=T - timedelta(days=40))
    contact = _repeat_customer("ed@example.com")
    late = T.replace(hour=22)
    signals.after_contacts_changed([contact.id], now=late)
    runner.run(late)
    row = db.session.scalar(select(FlowSend).where(FlowSend.contact_id == contact.id))
    assert row.status == "waiting" and row.due_at == (T + timedelta(days=1)).replace(hour=9)


def test_a_flow_switched_on_later_leaves_older_to_dos_to_people(app):
    contact = _repeat_customer("fi@example.com")
    signals.after_contacts_changed([contact.id], now=T - timedelta(days=1))
    flow_config.save_flow("testimonial_request", {"action": "email"}, None, now=T)
    summary = runner.run(T + timedelta(hours=1))
    assert (summary.sent, summary.skipped) == (0, 0)
    assert db.session.scalar(select(FlowSend)) is None


def test_the_flow_page_shows_its_weeks(app, client, auth, smtp, run_worker):
    from tests.conftest import soup, text_of

    smtp.save_settings()
    flow_config.save_flow("testimonial_request", {"action": "email"}, None, now=T - timedelta(days=40))
    contact = _repeat_customer("jo@example.com")
    signals.after_contacts_changed([contact.id], now=T)
    run_flows(T.isoformat())
    run_worker()
    auth.as_role("admin")
    page = soup(client.get("/settings/flows/testimonial_request"))
    assert "In all: 1 sent, 0 failed" in text_of(page.select_one(".flow-total"))
    rows = [text_of(r) for r in page.select(".flow-weeks tbody tr")]
    assert len(rows) == 8 and sum(" 1 0 0 0 0 " in f" {r} " for r in rows) == 1


def test_the_birthday_greeting_waits_for_nine_on_the_day(app):
    flow_config.save_flow("birthday", {"action": "email"}, None, now=T - timedelta(days=10))
    day = (T + timedelta(days=5)).date()
    contact = make_contact(email="kim@example.com", first_name="Kim", consent=True, birthday=day.replace(year=1990),
                           created_at=T - timedelta(days=60))
    signals.after_contacts_changed([contact.id], now=T)
    runner.run(T)
    row = db.session.scalar(select(FlowSend).where(FlowSend.contact_id == contact.id))
    nine = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
    assert row.status == "waiting" and row.due_at == nine
    assert runner.run(nine - timedelta(minutes=1)).sent == 0
    assert runner.run(nine).sent == 1 and row.status == "sent"
