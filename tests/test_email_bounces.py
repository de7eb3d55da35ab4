"""Bounces that come back later: real DSN samples (Postfix, Exim, Gmail) read with flufl.bounce,
matched by the VERP return path or our Message-ID, through `crm email bounces FILE`."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.models import EmailMessage, EmailSuppression
from crm.services.email import bounces, outbox, sending, suppression
from tests.contact_helpers import make_contact
from tests.helpers import soup, text_of

SAMPLES = Path(__file__).parent / "fixtures" / "bounces"


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


# -- the bounce mailbox (IMAP) ------------------------------------------------------------------------

SMTP_FORM = {"smtp_host": "127.0.0.1", "smtp_port": "25", "smtp_security": "none", "from_name": "Tea House",
             "from_address": "hello@teahouse.example", "per_minute": "600", "bounce_domain": "bounces.teahouse.example"}
A_REPLY = (b"From: Ana <ana@example.org>\r\nTo: bounces@teahouse.example\r\nSubject: Re: your tea\r\n"
           b"Message-ID: <reply-1@example.org>\r\n\r\nThanks, it arrived!\r\n")


@pytest.fixture
def imap():
    from tests.imap_server import IMAPServer

    with IMAPServer() as server:
        yield server


def _use_mailbox(imap, **changes):
    from crm.services.email import settings as email_settings

    email_settings.save({**SMTP_FORM, **imap.settings(), **changes}, None)
    db.session.commit()


def test_the_worker_reads_the_bounce_mailbox_and_marks_the_right_messages(app, smtp, imap, run_worker):
    from crm.models import JobRun
    from crm.services.email.jobs import read_bounce_mailbox

    (ana, to_ana), (bo, to_bo), (cy, to_cy) = (_sent(a) for a in ("ana@example.org", "bo@example.net", "cy@example.com"))
    untouched, to_untouched = _sent("dee@example.com")
    imap.add(_dsn("postfix-hard.eml", to_ana))
    imap.add(A_REPLY)  # a person's reply: not a bounce, stays in the mailbox (read)
    imap.add(_dsn("gmail-hard.eml", to_bo))
    imap.add(_dsn("exim-hard.eml", to_cy), flags={"\\Seen"})  # already read by someone: not ours to take
    _use_mailbox(imap)

    read_bounce_mailbox()  # what the schedule queues every 5 minutes
    run_worker()

    db.session.expire_all()
    assert [(m.status, m.reason, m.bounce) for m in (to_ana, to_bo)] == [("failed", "bounced", "hard")] * 2
    assert (to_cy.status, to_cy.bounce) == ("sent", None) and (to_untouched.status, to_untouched.bounce) == ("sent", None)
    assert [suppression.eligibility(c, False).status for c in (ana, bo, cy, untouched)] == ["bounced", "bounced", "ok", "ok"]
    # The two bounces were deleted once processed; the reply and the read message stay, seen.
    assert [(m.raw.count(b"Thanks, it arrived"), sorted(m.flags)) for m in imap.messages] == [
        (1, ["\\Seen"]), (0, ["\\Seen"])]
    assert any(line.endswith("BODY.PEEK[])") for line in imap.log)  # read without marking, flagged after
    run = db.session.scalar(select(JobRun).where(JobRun.name == "email.bounce_mailbox"))
    assert run.status == "done" and run.result.startswith("Read 3 new messages; 2 bounces of ours marked"), run.result
    assert "imap-secret" not in " ".join(imap.log)

    # The next poll finds nothing new.
    from crm.services.email import mailbox

    assert mailbox.check().summary().startswith("No new messages. The server answered:")


def test_check_now_shows_the_servers_answer_and_a_wrong_password_is_said_plainly(app, client, smtp, imap):
    from tests.contact_helpers import sign_in

    contact, message = _sent("eve@example.org")
    imap.add(_dsn("postfix-hard.eml", message))
    _use_mailbox(imap, imap_password="wrong-password")
    sign_in(client, "admin")
    response = client.post("/settings/email/bounces/check")
    assert response.status_code == 200
    answer = text_of(soup(response).select_one(".mailbox-answer"))
    assert answer == (f"The bounce mailbox at 127.0.0.1:{imap.port} refused the sign-in: "
                      "[AUTHENTICATIONFAILED] Invalid credentials (Failure)")
    assert [sorted(m.flags) for m in imap.messages] == [[]]  # nothing read

    # The right password (typed on the page): the bounce is read, its message and address marked.
    form = {**SMTP_FORM, **imap.settings()}
    assert client.post("/settings/email", data=form).status_code == 302
    response = client.post("/settings/email/bounces/check")
    page = soup(response)
    assert text_of(page.select_one(".mailbox-answer")) == "Read 1 new message; 1 bounce of ours marked."
    assert text_of(page.select_one(".mailbox-bounces")).replace(" :", ":") == "eve@example.org: hard bounce, address suppressed"
    db.session.expire_all()
    assert message.reason == "bounced" and suppression.eligibility(contact, False).status == "bounced"
    assert imap.messages == []

    # Nobody listening at that port: said so, not a 500.
    imap_port = imap.port
    client.post("/settings/email", data={**form, "imap_port": str(imap_port + 1 if imap_port < 65535 else 1)})
    response = client.post("/settings/email/bounces/check")
    assert response.status_code == 200
    assert text_of(soup(response).select_one(".mailbox-answer")).startswith("Could not reach the bounce mailbox at 127.0.0.1:")


def test_the_imap_password_is_never_shown_and_masked_in_the_audit_log_and_the_environment_wins(app, client, imap,
                                                                                                monkeypatch):
    from crm.models import AuditEntry
    from crm.services.email import settings as email_settings
    from tests.contact_helpers import sign_in

    sign_in(client, "admin")
    assert client.post("/settings/email", data={**SMTP_FORM, **imap.settings()}).status_code == 302
    response = client.get("/settings/email")
    assert "imap-secret" not in response.get_data(as_text=True)
    assert soup(response).select_one("#f-imap_password")["placeholder"] == "stored; leave empty to keep it"
    client.post("/settings/email", data={**SMTP_FORM, **imap.settings(), "imap_password": ""})
    assert email_settings.effective().imap_password == "imap-secret"  # an empty field keeps it
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.entity == "email_settings").order_by(AuditEntry.id)).all()
    assert len(entries) == 2 and entries[0].after["imap_password"] == "******** (changed)"
    assert all("imap-secret" not in str(e.before) + str(e.after) for e in entries)

    monkeypatch.setenv("CRM_IMAP_HOST", "imap.env.example")
    monkeypatch.setenv("CRM_IMAP_PORT", "1993")
    current = email_settings.effective()
    assert (current.imap_host, current.imap_port, current.imap_username) == ("imap.env.example", 1993, imap.user)
    field = soup(client.get("/settings/email")).select_one("#f-imap_host")
    assert field.has_attr("disabled") and field["value"] == "imap.env.example"


def test_the_mailbox_is_polled_every_five_minutes_only_while_one_is_set(app, imap):
    from datetime import datetime

    from crm.services.email.jobs import WhenMailboxSet

    assert not WhenMailboxSet()(datetime(2026, 12, 5, 10, 5))
    _use_mailbox(imap)
    assert [WhenMailboxSet()(datetime(2026, 12, 5, 10, m)) for m in (5, 6, 10)] == [True, False, True]
