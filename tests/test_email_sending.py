"""Sending email through a real SMTP server (aiosmtpd on 127.0.0.1): the outbox, both parts,
the unsubscribe headers, retries, bounces, suppression and header injection."""
from __future__ import annotations

from datetime import timedelta

import pytest

from crm.extensions import db
from crm.models import EmailMessage, EmailSuppression, Interaction, Task, utcnow
from crm.services.email import outbox, sending, suppression
from crm.services.shared.errors import ValidationError
from tests.contact_helpers import make_contact, make_user
from tests.smtp_server import free_port


@pytest.fixture
def app_config(smtp):
    # `smtp` (tests/conftest.py): the module's real SMTP server, emptied before each test.
    return smtp.settings()


def _send_all():
    counts = sending.deliver_due()
    db.session.commit()
    return counts


def test_a_queued_message_arrives_with_both_parts_and_one_click_unsubscribe(app, smtp, client):
    contact = make_contact(first_name="Ada", last_name="Lovelace", email="ada@example.com", consent=True)
    message = outbox.queue_message(contact, "testimonial_request")
    db.session.commit()
    assert message.status == "queued"
    assert smtp.messages == []  # nothing goes before the worker sends it

    assert _send_all() == {"sent": 1}
    [received] = smtp.messages
    mail = received.message
    assert received.rcpt_tos == ["ada@example.com"]
    assert mail["To"] == "Ada Lovelace <ada@example.com>"
    assert mail["From"] == "Tea House <hello@teahouse.example>"
    assert mail["Subject"] == "Would you share a few words about Tea House?"
    assert mail["Message-ID"] == message.message_id
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = mail["List-Unsubscribe"].strip().strip("<>")
    assert unsubscribe.startswith("http://localhost/u/")
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "Hello Ada," in text and f"Unsubscribe: {unsubscribe}" in text
    assert "<p>Hello Ada,</p>" in html and f'href="{unsubscribe}"' in html
    assert 'style="' in html and "<style" not in html  # CSS inlined

    db.session.refresh(message)
    assert message.status == "sent" and message.smtp_answer.startswith("250 ")
    assert message.finished_at is not None and message.attempts == 1

    # The link works when followed: a GET changes nothing, a one-click POST unsubscribes.
    path = unsubscribe.removeprefix("http://localhost")
    assert client.get(path).status_code == 200
    db.session.refresh(contact)
    assert contact.consent is True
    response = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and "You are unsubscribed" in response.get_data(as_text=True)
    db.session.refresh(contact)
    assert contact.consent is False
    assert suppression.eligibility(contact, True).status == "unsubscribed"
    [event] = suppression.history(contact.id)
    assert event.consent is False and event.message_id == message.id and "one-click" in event.source

    # A later marketing message is stored as suppressed and never reaches the server.
    later = outbox.queue_message(contact, "winback")
    db.session.commit()
    assert later.status == "suppressed" and later.reason == "unsubscribed"
    _send_all()
    assert len(smtp.messages) == 1


def test_personal_and_order_thanks_need_no_consent_and_carry_no_unsubscribe_header(app, smtp):
    contact = make_contact(email="bo@example.com", consent=False)
    refused = outbox.queue_message(contact, "welcome")
    personal = outbox.queue_message(contact, "personal", subject="Your parcel", body="Hi {{ contact.first_name }}, it left today.")
    db.session.commit()
    assert refused.status == "suppressed" and refused.reason == "no_consent"
    _send_all()
    [received] = smtp.messages
    assert received.message["Subject"] == "Your parcel"
    assert received.message["List-Unsubscribe"] is None
    assert "Unsubscribe" not in received.message.get_body(("plain",)).get_content()
    assert personal.status == "sent"


@pytest.mark.parametrize("field, value, reason", [
    ("do_not_contact", True, "do_not_contact"),
    ("email", None, "no_address"),
    ("consent", False, "no_consent"),
])
def test_who_cannot_receive_is_told_why(app, smtp, field, value, reason):
    contact = make_contact(**{"consent": True, field: value})
    assert suppression.eligibility(contact, True).status == reason
    message = outbox.queue_message(contact, "birthday")
    db.session.commit()
    assert message.status == "suppressed" and message.reason == reason
    assert _send_all() == {}


def test_the_worker_checks_again_before_sending(app, smtp):
    contact = make_contact(consent=True)
    message = outbox.queue_message(contact, "survey")
    db.session.commit()
    contact.do_not_contact = True
    db.session.commit()
    assert _send_all() == {"suppressed": 1}
    assert smtp.messages == [] and message.reason == "do_not_contact"


def test_a_permanent_refusal_of_the_recipient_bounces_and_suppresses_the_address(app, smtp):
    contact = make_contact(email="gone@example.com", consent=True)
    smtp.answers["gone@example.com"] = "550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown"
    message = outbox.queue_message(contact, "personal", subject="Hello", body="Hi")
    db.session.commit()
    assert _send_all() == {"failed": 1}
    db.session.refresh(message)
    assert message.reason == "bounced"
    assert message.smtp_answer == "550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown"
    assert db.session.query(EmailSuppression).one().reason == "bounced"
    # Even a personal message no longer goes to a bounced address.
    assert outbox.queue_message(contact, "personal", subject="Again", body="Hi").reason == "bounced"
    # The timeline says what happened.
    interaction = db.session.get(Interaction, message.interaction_id)
    assert interaction.kind == "email" and interaction.direction == "outbound"
    assert interaction.outcome.startswith("failed: 550 5.1.1")


def test_a_temporary_refusal_is_retried_with_backoff(app, smtp):
    contact = make_contact(email="busy@example.com", consent=True)
    smtp.answers["busy@example.com"] = "451 4.7.1 Greylisted, try again later"
    message = outbox.queue_message(contact, "personal", subject="Hello", body="Hi")
    db.session.commit()
    assert _send_all() == {"queued": 1}
    db.session.refresh(message)
    assert message.status == "queued" and message.attempts == 1
    assert message.smtp_answer == "451 4.7.1 Greylisted, try again later"
    assert message.next_attempt_at >= utcnow() + timedelta(seconds=55)
    assert _send_all() == {}  # not due yet
    del smtp.answers["busy@example.com"]
    assert sending.deliver(message.id, now=message.next_attempt_at + timedelta(seconds=1)).status == "sent"
    assert len(smtp.messages) == 1


def test_connection_refused_is_temporary_and_gives_up_after_five_attempts(app, smtp):
    app.config["EMAIL_SMTP_PORT"] = free_port()  # nobody listens there
    contact = make_contact(consent=True)
    message = outbox.queue_message(contact, "personal", subject="Hello", body="Hi")
    db.session.commit()
    now = utcnow()
    for attempt in range(1, 6):
        result = sending.deliver(message.id, now=now)
        assert message.attempts == attempt
        if attempt < 5:
            assert result.status == "queued" and "Connection refused" in message.smtp_answer
            now = message.next_attempt_at
    assert message.status == "failed" and message.smtp_answer.startswith("gave up after 5 attempts")


def test_throttle_holds_back_messages_beyond_the_rate(app, smtp):
    app.config["EMAIL_PER_MINUTE"] = 3
    contacts = [make_contact(consent=True) for _ in range(5)]
    for contact in contacts:
        outbox.queue_message(contact, "personal", subject="Hi", body="Hello")
    db.session.commit()
    counts = _send_all()
    assert counts == {"sent": 3, "queued": 1}
    assert len(smtp.messages) == 3
    waiting = db.session.query(EmailMessage).filter_by(status="queued").all()
    assert len(waiting) == 2


def test_header_injection_is_folded_never_a_new_header(app, smtp):
    contact = make_contact(first_name="Eve\r\nBcc: victim@example.com", last_name="X", email="eve@example.com", consent=True)
    message = outbox.queue_message(contact, "personal", subject="Hello {{ contact.first_name }}", body="Hi")
    db.session.commit()
    _send_all()
    [received] = smtp.messages
    assert received.rcpt_tos == ["eve@example.com"]
    assert received.message["Bcc"] is None
    assert received.message["Subject"] == "Hello Eve Bcc: victim@example.com"
    assert b"\nBcc:" not in received.raw
    assert message.status == "sent"


def test_a_subject_with_a_newline_is_refused(app):
    contact = make_contact(consent=True)
    with pytest.raises(ValidationError) as error:
        outbox.queue_message(contact, "personal", subject="Hi\nBcc: x@example.com", body="Hello")
    assert "one line" in error.value.fields["subject"]


def test_sending_from_a_todo_completes_it_with_email_sent(app, smtp):
    user = make_user("sales")
    contact = make_contact(consent=True)
    task = Task(contact_id=contact.id, kind="testimonial_request", rule_key="testimonial:x", title="Ask for a testimonial",
                assignee_id=user.id)
    db.session.add(task)
    db.session.flush()
    message = outbox.queue_message(contact, "testimonial_request", actor_id=user.id, task=task)
    db.session.commit()
    assert task.status == "done" and task.outcome == "email sent"
    interaction = db.session.get(Interaction, message.interaction_id)
    assert interaction.task_id == task.id and interaction.channel == "crm email" and interaction.kind == "email"
    _send_all()
    assert smtp.messages[0].message["Subject"] == message.subject


def test_test_message_reports_the_servers_exact_answer(app, smtp):
    accepted, answer = sending.send_test("owner@teahouse.example")
    assert accepted and answer == "250 2.0.0 Message accepted for delivery"
    smtp.answers["nobody@teahouse.example"] = "550 5.1.1 No such user here"
    assert sending.send_test("nobody@teahouse.example") == (False, "550 5.1.1 No such user here")
