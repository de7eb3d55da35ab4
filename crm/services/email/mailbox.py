"""The optional bounce mailbox: the worker (and the "check now" button) signs in over IMAP, reads
the unseen messages and feeds each through `bounces.process`, the same function as
`crm email bounces FILE`.

A message is fetched with BODY.PEEK[] (which leaves it unseen), processed and committed; only then
is it flagged: a delivery-status notification that named a message of ours is marked \\Seen and
\\Deleted (expunged at the end), anything else only \\Seen, so a person can still read it. A
message whose processing fails stays unseen and is tried again at the next poll.
"""
from __future__ import annotations

import imaplib
import logging
import ssl
from dataclasses import dataclass, field

from crm.extensions import db
from crm.services.email import bounces
from crm.services.email import settings as email_settings
from crm.services.shared.said import N_, Np_, said, said_plural

log = logging.getLogger("crm.email.mailbox")
TIMEOUT = 30  # seconds for the connection and each answer


@dataclass
class MailboxCheck:
    """What one poll did, in words for the page and the job's result."""

    ok: bool
    answer: str  # the server's answer, or why it could not be read
    read: int = 0
    bounced: list[bounces.BounceResult] = field(default_factory=list)
    other: int = 0  # read but not a bounce of ours (left in the mailbox, seen)
    failed: int = 0  # could not be processed (left unseen)

    def summary(self) -> str:
        """What the poll did, as a Said: English for the job's result, the reader's language on the page."""
        if not self.ok:
            return self.answer
        if not self.read:
            return said(N_("No new messages. The server answered: %(answer)s"), answer=self.answer)
        parts = [said_plural(Np_(self.read, "Read %(num)s new message", "Read %(num)s new messages"), self.read),
                 said_plural(Np_(len(self.bounced), "%(num)s bounce of ours marked", "%(num)s bounces of ours marked"),
                             len(self.bounced))]
        if self.other:
            parts.append(said_plural(Np_(self.other, "%(num)s left in the mailbox (not a bounce of ours)",
                                         "%(num)s left in the mailbox (not bounces of ours)"), self.other))
        if self.failed:
            parts.append(said_plural(Np_(self.failed, "%(num)s could not be read and stays unseen",
                                         "%(num)s could not be read and stay unseen"), self.failed))
        sentence = parts[0]
        for part in parts[1:]:
            sentence = said(N_("%(sentence)s; %(part)s"), sentence=sentence, part=part)
        return said(N_("%(sentence)s."), sentence=sentence)


def _text(error: BaseException) -> str:
    """The server's words from an imaplib error (it carries bytes)."""
    value = error.args[0] if error.args else str(error)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value)


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _connect(settings: email_settings.EmailSettings) -> imaplib.IMAP4:
    host, port, security = settings.imap_host, settings.imap_port, settings.imap_security
    if security == "tls":
        return imaplib.IMAP4_SSL(host, port, ssl_context=ssl.create_default_context(), timeout=TIMEOUT)
    client = imaplib.IMAP4(host, port, timeout=TIMEOUT)
    if security == "starttls":
        client.starttls(ssl.create_default_context())
    return client


def check(settings: email_settings.EmailSettings | None = None) -> MailboxCheck:
    """Poll the bounce mailbox once: process every unseen message (committing each), then flag it."""
    settings = settings or email_settings.effective()
    if not settings.mailbox_configured:
        return MailboxCheck(False, said(N_("No bounce mailbox is set (give its host and user name).")))
    where = f"{settings.imap_host}:{settings.imap_port}"
    try:
        client = _connect(settings)
    except (OSError, imaplib.IMAP4.error) as error:
        return MailboxCheck(False, said(N_("Could not reach the bounce mailbox at %(where)s: %(error)s"),
                                        where=where, error=_text(error) or repr(error)))
    try:
        try:
            _typ, data = client.login(settings.imap_username, settings.imap_password)
        except imaplib.IMAP4.error as error:
            return MailboxCheck(False, said(N_("The bounce mailbox at %(where)s refused the sign-in: %(error)s"),
                                            where=where, error=_text(error)))
        answer = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
        typ, data = client.select(_quoted(settings.imap_folder))
        if typ != "OK":
            return MailboxCheck(False, said(
                N_("The bounce mailbox has no folder %(folder)s: %(error)s"), folder=repr(settings.imap_folder),
                error=b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")))
        result = MailboxCheck(True, answer)
        _typ, data = client.search(None, "UNSEEN")
        numbers = (data[0] or b"").split() if data else []
        delete = False
        for number in numbers:
            result.read += 1
            _typ, fetched = client.fetch(number, "(BODY.PEEK[])")
            raw = next((part[1] for part in fetched if isinstance(part, tuple)), None)
            if raw is None:
                result.failed += 1
                continue
            try:
                found = bounces.process(raw)
                db.session.commit()
            except Exception:  # noqa: BLE001 - one unreadable message must not stop the others
                db.session.rollback()
                log.exception("Could not process message %s of the bounce mailbox", number.decode())
                result.failed += 1
                continue
            if found.message_id is not None and found.kind is not None:
                result.bounced.append(found)
                client.store(number, "+FLAGS", "(\\Seen \\Deleted)")
                delete = True
            else:
                result.other += 1
                client.store(number, "+FLAGS", "(\\Seen)")
        if delete:
            client.expunge()
        return result
    except (OSError, imaplib.IMAP4.error) as error:
        db.session.rollback()
        return MailboxCheck(False, said(N_("The bounce mailbox at %(where)s stopped answering: %(error)s"),
                                        where=where, error=_text(error) or repr(error)))
    finally:
        try:
            client.logout()
        except (OSError, imaplib.IMAP4.error):
            pass
