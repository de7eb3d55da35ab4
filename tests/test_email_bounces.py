"""Bounces that come back later: real DSN samples (Postfix, Exim, Gmail) read with flufl.bounce,
matched by the VERP return path or our Message-ID, through `crm email bounces FILE`."""
from __future__ import annotations

from pathlib import Path

import pytest

from crm.extensions import db
from crm.models import EmailMessage, EmailSuppression
from crm.services.email import bounces, outbox, sending, suppression
from tests.contact_helpers import make_contact
from tests.smtp_server import SMTPServer

SAMPLES = Path(__file__).parent / "fixtures" / "bounces"


@pytest.fixture(scope="module")
def smtp():
    with SMTPServer() as server:
        yield server


@pytest.fixture
def app_config(smtp):
    return {**smtp.settings(), "EMAIL_BOUNCE_DOMAIN": "bounces.teahouse.example"}


def _sent(address="ana@example.org"):
    contact = make_contact(email=address, consent=True)
    message = outbox.queue_message(contact, "testimonial_request")
    db.session.commit()
    sending.deliver(message.id)
    assert message.status == "sent"
    return contact, message


def _dsn(name, message):
    raw = (SAMPLES / name).read_bytes()
    return (raw.replace(b"__ID__", str(message.id).encode()).replace(b"__MESSAGE_ID__", message.message_id.encode())
            .replace(b"__RCPT__", message.to_address.encode()))


def test_messages_go_out_with_a_verp_return_path(app, smtp):
    _contact, message = _sent()
    assert smtp.messages[-1].mail_from == f"bounces+{message.id}@bounces.teahouse.example"


@pytest.mark.parametrize("sample", ["postfix-hard.eml", "exim-hard.eml", "gmail-hard.eml"])
def test_a_hard_bounce_marks_the_message_and_suppresses_the_address(app, smtp, sample):
    contact, message = _sent()
    result = bounces.process(_dsn(sample, message))
    db.session.commit()
    assert (result.message_id, result.kind, result.suppressed) == (message.id, "hard", True)
    assert message.status == "failed" and message.reason == "bounced" and message.bounce == "hard"
    assert "5.1.1" in message.smtp_answer
    assert suppression.eligibility(contact, False).status == "bounced"


def test_soft_bounces_suppress_only_after_three_in_a_row(app, smtp):
    contact, message = _sent()
    for attempt in range(3):
        if attempt:
            message = outbox.queue_message(contact, "testimonial_request")
            db.session.commit()
            sending.deliver(message.id)
        result = bounces.process(_dsn("postfix-soft.eml", message))
        db.session.commit()
        assert result.kind == "soft"
        assert result.suppressed is (attempt == 2), attempt
    assert db.session.query(EmailSuppression).one().reason == "bounced"


def test_a_message_that_is_not_ours_changes_nothing(app, smtp):
    _contact, message = _sent()
    raw = _dsn("postfix-hard.eml", message).replace(f"bounces+{message.id}@".encode(), b"someone@").replace(
        message.message_id.encode(), b"<other@example.com>")
    result = bounces.process(raw)
    assert result.kind is None and "No message of ours" in result.note
    assert message.status == "sent" and db.session.query(EmailSuppression).count() == 0


def test_the_bounces_command_reads_a_file(app, smtp, runner, tmp_path):
    contact, message = _sent()
    path = tmp_path / "dsn.eml"
    path.write_bytes(_dsn("exim-hard.eml", message))
    result = runner.invoke(args=["email", "bounces", str(path)])
    assert result.exit_code == 0, result.output
    assert f"message #{message.id} to ana@example.org bounced (hard); the address is suppressed." in result.output
    db.session.expire_all()
    assert db.session.get(EmailMessage, message.id).reason == "bounced"
