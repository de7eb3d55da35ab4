"""Delivering one queued message over SMTP, at most once.

The attempt is committed before the server is spoken to (status `sending`), and the moment
the message itself is handed over (just before DATA) is committed too. A worker killed before
the hand-over leaves a message that is safely tried again; one killed after it leaves a message
the server may already have accepted, which is never sent again but marked failed with the
reason `interrupted`. This is the one service that commits by itself: that is the guarantee.

Temporary trouble (a 4xx answer, a refused or dropped connection) puts the message back in the
queue with a growing delay; a 5xx on the recipient marks the address bounced and suppresses it.
Sending is throttled to the `per_minute` setting.
"""
from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime

from crm.services.email import mime as mime_parts

from sqlalchemy import func, select, update

from crm.extensions import db
from crm.models import Contact, EmailMessage, utcnow
from crm.services.email import outbox, suppression
from crm.services.email.settings import EmailSettings, effective

# Why a message failed, in words (the reason keys a failed message carries).
FAILURES = {
    "bounced": "The server refused the address permanently; it is suppressed.",
    "rejected": "The server refused the message.",
    "temporary": "The server kept answering with a temporary error.",
    "interrupted": "The worker stopped while handing it over; it was not sent again.",
    "bad_address": "The address cannot be used in an email header.",
}
MAX_ATTEMPTS = 5
BACKOFF = (60, 300, 900, 3600)  # seconds before the 2nd, 3rd, 4th and 5th attempt
TIMEOUT = 30


@dataclass
class Delivery:
    """What became of one attempt: the message's status and, when it waits, until when."""

    status: str
    retry_at: datetime | None = None
    answer: str = ""


class TemporaryFailure(Exception):
    pass


def _answer(code: int, text: bytes | str) -> str:
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(text.split())}".strip()


SMTP_POLICY = mime_parts.SMTP_POLICY


def build(message: EmailMessage, settings: EmailSettings) -> MimeMessage:
    """Return the MIME message for a stored message: both parts, and the unsubscribe headers when marketing.

    The same message, byte for byte, as `email.message` builds with `set_content` and
    `add_alternative`; `mime.alternative` makes it with the headers every message shares parsed once.
    """
    headers: list[tuple[str, object]] = [
        ("From", mime_parts.sender_header(settings.from_name or "", settings.from_address)),
        ("To", Address(display_name=outbox.render.one_line(message.to_name), addr_spec=message.to_address)),
        ("Subject", mime_parts.shared("Subject", outbox.render.one_line(message.subject))),
        ("Date", mime_parts.shared("Date", format_datetime(message.created_at))),
        ("Message-ID", message.message_id),
    ]
    if settings.reply_to:
        headers.append(("Reply-To", mime_parts.shared("Reply-To", settings.reply_to)))
    if message.marketing and message.unsubscribe_url:
        headers.append(("List-Unsubscribe", f"<{message.unsubscribe_url}>"))
        headers.append(("List-Unsubscribe-Post", mime_parts.shared("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")))
    return mime_parts.alternative(headers, message.text_body, message.html_body)


def connect(settings: EmailSettings) -> smtplib.SMTP:
    """Return an SMTP connection, secured and logged in as the settings say."""
    if settings.smtp_security == "tls":
        server: smtplib.SMTP = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT,
                                                context=ssl.create_default_context())
    else:
        server = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT)
    server.ehlo()
    if settings.smtp_security == "starttls":
        server.starttls(context=ssl.create_default_context())
        server.ehlo()
    if settings.smtp_username:
        server.login(settings.smtp_username, settings.smtp_password)
    return server


def _commit() -> None:
    db.session.commit()


def _claim(message_id: int, now: datetime) -> bool:
    """Mark a queued message as being sent; False when another worker got it first."""
    result = db.session.execute(
        update(EmailMessage).where(EmailMessage.id == message_id, EmailMessage.status == "queued")
        .values(status="sending", attempts=EmailMessage.attempts + 1, attempt_started_at=now, handed_over_at=None)
        .execution_options(synchronize_session=False)
    )
    _commit()
    return result.rowcount == 1


def _throttle_wait(settings: EmailSettings, now: datetime) -> datetime | None:
    """Return when the next message may go if this minute's allowance is used up, else None."""
    since = now - timedelta(seconds=60)
    started = list(db.session.scalars(
        select(EmailMessage.attempt_started_at).where(EmailMessage.attempt_started_at >= since)
        .order_by(EmailMessage.attempt_started_at.desc()).limit(settings.per_minute)
    ))
    if len(started) < settings.per_minute:
        return None
    return min(started) + timedelta(seconds=60)


def _finish(message: EmailMessage, status: str, answer: str, now: datetime, reason: str | None = None) -> Delivery:
    message.status, message.smtp_answer, message.reason = status, answer[:2000] if answer else answer, reason
    message.finished_at = now if status != "queued" else None
    outbox.refresh_timeline(message)
    _commit()
    return Delivery(status, message.next_attempt_at if status == "queued" else None, answer)


def _retry_later(message: EmailMessage, answer: str, now: datetime) -> Delivery:
    if message.attempts >= MAX_ATTEMPTS:
        return _finish(message, "failed", f"gave up after {message.attempts} attempts; last answer: {answer}", now, "temporary")
    message.next_attempt_at = now + timedelta(seconds=BACKOFF[min(message.attempts, len(BACKOFF)) - 1])
    return _finish(message, "queued", answer, now, "temporary")


def deliver(message_id: int, now: datetime | None = None, settings: EmailSettings | None = None) -> Delivery:
    """Send one message if it is due and may still go; return what became of it (commits)."""
    now = now or utcnow()
    message = db.session.get(EmailMessage, message_id)
    if message is None:
        return Delivery("missing")
    db.session.refresh(message)
    if message.status == "sending":
        if message.handed_over_at is not None:
            # The server may have accepted it before the worker died: never send it twice.
            return _finish(message, "failed", "The worker stopped while handing this message to the server; "
                           "it was not sent again, so it may or may not have arrived.", now, "interrupted")
        message.status = "queued"  # the worker died before the hand-over: nothing left, try again
        _commit()
    if message.status != "queued":
        return Delivery(message.status, None, message.smtp_answer or "")
    if message.next_attempt_at and message.next_attempt_at > now:
        return Delivery("queued", message.next_attempt_at)
    settings = settings or effective()
    contact = db.session.get(Contact, message.contact_id) if message.contact_id else None
    eligibility = suppression.eligibility(contact, message.marketing) if contact else suppression.Eligibility("erased")
    if not eligibility.ok:
        return _finish(message, "suppressed", "", now, eligibility.status)
    if not settings.configured:
        return _retry_later(message, "No SMTP server is set up (Settings → Email).", now)
    wait = _throttle_wait(settings, now)
    if wait is not None:
        message.next_attempt_at = wait
        _commit()
        return Delivery("queued", wait, "throttled")
    try:
        mime = build(message, settings)
    except (ValueError, IndexError, TypeError, MessageError) as error:
        return _finish(message, "failed", f"The message could not be built: {error}", now, "bad_address")
    if not _claim(message.id, now):
        return Delivery("sending")
    db.session.refresh(message)
    return _talk(message, mime, settings, now)


def _talk(message: EmailMessage, mime: MimeMessage, settings: EmailSettings, now: datetime) -> Delivery:
    envelope_from = settings.return_path(message.id)
    try:
        server = connect(settings)
    except (OSError, smtplib.SMTPException) as error:
        return _retry_later(message, _error_text(error), now)
    try:
        code, text = server.mail(envelope_from)
        if code >= 400:
            return _rejected(message, code, text, now, recipient=False)
        code, text = server.rcpt(message.to_address)
        if code >= 400:
            return _rejected(message, code, text, now, recipient=True)
        message.handed_over_at = utcnow()
        _commit()
        code, text = server.data(mime.as_bytes(policy=SMTP_POLICY))
        if code >= 400:
            return _rejected(message, code, text, now, recipient=False)
        return _finish(message, "sent", _answer(code, text), utcnow())
    except smtplib.SMTPResponseException as error:
        # The server answered (DATA refused, say): it did not take the message.
        return _rejected(message, error.smtp_code, error.smtp_error, now, recipient=False)
    except (OSError, smtplib.SMTPException) as error:
        if message.handed_over_at is not None:
            return _finish(message, "failed", "The connection broke while the server was receiving the message; "
                           f"it was not sent again to avoid a duplicate ({_error_text(error)}).", now, "interrupted")
        return _retry_later(message, _error_text(error), now)
    finally:
        try:
            server.quit()
        except (OSError, smtplib.SMTPException):
            server.close()


def _rejected(message: EmailMessage, code: int, text: bytes, now: datetime, *, recipient: bool) -> Delivery:
    answer = _answer(code, text)
    if code < 500:
        return _retry_later(message, answer, now)
    if recipient:
        suppression.suppress(message.to_address, "bounced", answer, contact_id=message.contact_id,
                             message_id=message.id, now=now)
        return _finish(message, "failed", answer, now, "bounced")
    return _finish(message, "failed", answer, now, "rejected")


def _error_text(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        return _answer(error.smtp_code, error.smtp_error)
    if isinstance(error, ConnectionRefusedError):
        return f"Connection refused ({error.strerror or error})"
    if isinstance(error, socket.timeout):
        return "The server did not answer in time."
    return f"{type(error).__name__}: {error}"


def due_ids(now: datetime | None = None, limit: int = 1000) -> list[int]:
    """Return the ids of queued messages that are due (and of attempts a dead worker left behind)."""
    now = now or utcnow()
    return list(db.session.scalars(
        select(EmailMessage.id).where(
            ((EmailMessage.status == "queued") & ((EmailMessage.next_attempt_at.is_(None)) | (EmailMessage.next_attempt_at <= now)))
            | (EmailMessage.status == "sending")
        ).order_by(EmailMessage.id).limit(limit)
    ))


def deliver_due(now: datetime | None = None, limit: int = 1000) -> dict[str, int]:
    """Deliver every due message once (the burst the worker or `crm email send` runs); return counts by status."""
    counts: dict[str, int] = {}
    for message_id in due_ids(now, limit):
        result = deliver(message_id)
        counts[result.status] = counts.get(result.status, 0) + 1
        if result.answer == "throttled":
            break
    return counts


def send_test(to_address: str, settings: EmailSettings | None = None,
              rendered: outbox.render.Rendered | None = None) -> tuple[bool, str]:
    """Send a short test message now (or a rendered message marked as a test, e.g. a newsletter
    as one member would get it); return (accepted, the server's exact answer or the error)."""
    settings = settings or effective()
    if not settings.configured:
        return False, "Set the SMTP host and the From address first."
    mime = MimeMessage()
    try:
        mime["From"] = settings.sender
        mime["To"] = Address(addr_spec=to_address.strip())
    except (ValueError, IndexError, MessageError) as error:
        return False, f"That address cannot be used: {error}"
    mime["Date"] = format_datetime(utcnow())
    if rendered is not None:
        mime["Subject"] = outbox.render.one_line(f"[Test] {rendered.subject}")
        mime.set_content(rendered.text)
        mime.add_alternative(rendered.html, subtype="html")
    else:
        mime["Subject"] = f"Test message from {settings.shop_name}"
        mime.set_content(f"This is a test message from the CRM of {settings.shop_name}. If you read this, email works.")
    try:
        server = connect(settings)
    except (OSError, smtplib.SMTPException) as error:
        return False, _error_text(error)
    try:
        for step in (lambda: server.mail(settings.from_address), lambda: server.rcpt(to_address.strip()),
                     lambda: server.data(mime.as_bytes(policy=SMTP_POLICY))):
            code, text = step()
            if code >= 400:
                return False, _answer(code, text)
        return True, _answer(code, text)
    except (OSError, smtplib.SMTPException) as error:
        return False, _error_text(error)
    finally:
        try:
            server.quit()
        except (OSError, smtplib.SMTPException):
            server.close()


def pending_count() -> int:
    return db.session.scalar(select(func.count()).select_from(EmailMessage).where(EmailMessage.status == "queued")) or 0
