"""Bounces that come back later by mail: a delivery-status notification (DSN) read with flufl.bounce.

The message is found by its VERP return path (`bounces+<id>@<bounce domain>`, in the DSN's
recipient headers) or else by our Message-ID quoted in the returned headers. A hard (permanent)
bounce marks the message and suppresses the address at once; a soft (temporary) one only after
three messages in a row to that address came back soft.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy

from flufl.bounce import all_failures
from sqlalchemy import select

from crm.extensions import db
from crm.models import EmailMessage, utcnow
from crm.services.email import outbox, suppression
from crm.services.trust import audit

SOFT_IN_A_ROW = 3
_VERP = re.compile(rb"bounces\+(\d+)@", re.I)
_OUR_MESSAGE_ID = re.compile(rb"<crm\.[0-9a-f]+@[^>\s]+>", re.I)
_STATUS = re.compile(rb"^Status:\s*([245]\.\d+\.\d+)", re.I | re.M)
_SMTP_REPLY = re.compile(rb"^\s*([45]\d\d[ -][245]\.\d+\.\d+[^\r\n]*)", re.M)  # Exim quotes the server's reply
_DIAGNOSTIC = re.compile(rb"^Diagnostic-Code:\s*(?:smtp;\s*)?(.+(?:\r?\n[ \t].+)*)", re.I | re.M)


@dataclass
class BounceResult:
    """What one DSN did: the message it named, the address, hard or soft, and whether it suppressed."""

    message_id: int | None = None
    address: str | None = None
    kind: str | None = None  # "hard" | "soft"
    suppressed: bool = False
    permanent: set[str] = field(default_factory=set)
    temporary: set[str] = field(default_factory=set)
    note: str = ""


def _find_message(raw: bytes) -> EmailMessage | None:
    for match in _VERP.finditer(raw):
        message = db.session.get(EmailMessage, int(match.group(1)))
        if message is not None:
            return message
    for match in _OUR_MESSAGE_ID.finditer(raw):
        message = db.session.scalar(select(EmailMessage).where(EmailMessage.message_id == match.group(0).decode()))
        if message is not None:
            return message
    return None


def _detail(raw: bytes) -> str:
    status = _STATUS.search(raw)
    diagnostic = _DIAGNOSTIC.search(raw) or _SMTP_REPLY.search(raw)
    parts = [status.group(1).decode() if status else "", " ".join(diagnostic.group(1).decode("utf-8", "replace").split()) if diagnostic else ""]
    return " ".join(p for p in parts if p)[:400]


def process(raw: bytes, now: datetime | None = None) -> BounceResult:
    """Read one raw DSN and act on it (flushed; the caller commits)."""
    now = now or utcnow()
    mail = message_from_bytes(raw, policy=policy.compat32)
    temporary, permanent = all_failures(mail)  # flufl.bounce gives (temporary, permanent)
    result = BounceResult(permanent={a.decode().lower() for a in permanent},
                          temporary={a.decode().lower() for a in temporary})
    message = _find_message(raw)
    if message is None:
        result.note = "No message of ours is named in it (no VERP address, no Message-ID we sent)."
        return result
    result.message_id, result.address = message.id, message.to_address
    address = (message.to_address or "").lower()
    if not address:
        result.note = "The message's address was erased."
        return result
    if address in result.permanent or (not result.temporary and not result.permanent and _hard_status(raw)):
        result.kind = "hard"
    elif address in result.temporary or _soft_status(raw):
        result.kind = "soft"
    elif result.permanent:
        result.kind = "hard"  # the DSN names another form of the address (an alias); our message bounced
    else:
        result.note = "It names our message but reports no failure."
        return result
    detail = _detail(raw) or ("permanent failure" if result.kind == "hard" else "temporary failure")
    message.bounce, message.bounced_at = result.kind, now
    message.smtp_answer = ((message.smtp_answer or "") + f" | bounced later ({result.kind}): {detail}").strip(" |")[:2000]
    if result.kind == "hard" or _soft_in_a_row(address):
        suppression.suppress(address, "bounced", f"{result.kind} bounce: {detail}", contact_id=message.contact_id,
                             message_id=message.id, now=now)
        message.status, message.reason = "failed", "bounced"
        result.suppressed = True
    outbox.refresh_timeline(message)
    audit.record("bounce", "email_message", message.id,
                 after={"kind": result.kind, "detail": detail, "suppressed": result.suppressed})
    db.session.flush()
    return result


def _hard_status(raw: bytes) -> bool:
    status = _STATUS.search(raw)
    return bool(status and status.group(1).startswith(b"5"))


def _soft_status(raw: bytes) -> bool:
    status = _STATUS.search(raw)
    return bool(status and status.group(1).startswith(b"4"))


def _soft_in_a_row(address: str) -> bool:
    db.session.flush()
    last = list(db.session.scalars(select(EmailMessage.bounce).where(EmailMessage.to_address == address,
                                                                      EmailMessage.status.in_(("sent", "failed")))
                                   .order_by(EmailMessage.created_at.desc(), EmailMessage.id.desc()).limit(SOFT_IN_A_ROW)))
    return len(last) == SOFT_IN_A_ROW and all(kind == "soft" for kind in last)
