"""The worker's side of email: one job per message.

A worker killed mid-send is resumed by the job queue, and `deliver` knows whether the message
was already handed to the server. Should a job ever be lost altogether, `crm email send` sends
whatever is due.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta

from sqlalchemy import func, select

from crm.extensions import db
from crm.models import EmailMessage
from crm.services.email import mailbox, sending
from crm.services.email import settings as email_settings
from crm.services.jobs import job, periodic_job, set_progress
from crm.services.shared.said import N_, said

BATCH = 100
# What a send job returns (the message's status), in words the jobs page shows in the reader's language.
RESULT_WORDS = {"queued": N_("queued"), "sending": N_("sending"), "sent": N_("sent"), "failed": N_("failed"),
                "suppressed": N_("suppressed"), "missing": N_("missing")}


@job(name="email.send", retries=3, retry_delay=60)
def send_email(message_id: int) -> str:
    """Send one queued email"""
    return _send(message_id)


@job(name="email.send_batch", retries=3, retry_delay=60)
def send_batch(message_ids: list[int]) -> int:
    """Send a batch of queued emails"""
    for done, message_id in enumerate(message_ids, 1):
        _send(message_id)  # safe to run again: a message already sent or handed over is left alone
        set_progress(done, len(message_ids), N_("sending"))
    return len(message_ids)


def _send(message_id: int) -> str:
    result = sending.deliver(message_id)
    if result.status == "queued" and result.retry_at is not None:
        eta = result.retry_at
        if result.answer == "throttled":
            # Spread the waiting messages over the minutes to come instead of all retrying at once.
            ahead = db.session.scalar(select(func.count()).select_from(EmailMessage).where(
                EmailMessage.status == "queued", EmailMessage.id < message_id)) or 0
            eta += timedelta(minutes=ahead // sending.effective().per_minute)
        send_email.schedule((message_id,), eta=eta)
        db.session.commit()
    return said(RESULT_WORDS[result.status]) if result.status in RESULT_WORDS else result.status


def queue_delivery(message_ids: list[int]) -> None:
    """Queue the send jobs (to the worker when the caller commits): one per message, or per 100 of many."""
    if len(message_ids) == 1:
        send_email(message_ids[0])
        return
    for start in range(0, len(message_ids), BATCH):
        send_batch(message_ids[start:start + BATCH])


class WhenMailboxSet:
    """A schedule: every POLL_MINUTES minutes, only while a bounce mailbox is set (read when checked,
    once every few seconds, so a burst checking many minutes reads the settings once)."""

    def __init__(self, minutes: int = 5):
        self.minutes = minutes
        # What the jobs pages say of when it runs (a Said: shown in the reader's language).
        self.description = said(N_("every %(minutes)s minutes, when a bounce mailbox is set"), minutes=minutes)
        self._cached: tuple[float, bool] | None = None

    def __call__(self, moment: datetime) -> bool:
        if moment.minute % self.minutes:
            return False
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > 5:
            self._cached = (now, email_settings.effective().mailbox_configured)
        return self._cached[1]


@periodic_job(WhenMailboxSet(), name="email.bounce_mailbox", lock="email.bounce_mailbox", label="Read the bounce mailbox")
def read_bounce_mailbox() -> str:
    """Read the bounce mailbox (IMAP) and mark the messages its delivery-status notifications name"""
    result = mailbox.check()
    if not result.ok:
        raise RuntimeError(result.answer)  # the jobs page shows a failed poll with the server's words
    return result.summary()
