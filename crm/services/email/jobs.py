"""The worker's side of email: one job per message.

A worker killed mid-send is resumed by the job queue, and `deliver` knows whether the message
was already handed to the server. Should a job ever be lost altogether, `crm email send` sends
whatever is due.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from crm.extensions import db
from crm.models import EmailMessage
from crm.services.email import sending
from crm.services.jobs import job, set_progress


BATCH = 100


@job(name="email.send", retries=3, retry_delay=60)
def send_email(message_id: int) -> str:
    """Send one queued email"""
    return _send(message_id)


@job(name="email.send_batch", retries=3, retry_delay=60)
def send_batch(message_ids: list[int]) -> int:
    """Send a batch of queued emails"""
    for done, message_id in enumerate(message_ids, 1):
        _send(message_id)  # safe to run again: a message already sent or handed over is left alone
        set_progress(done, len(message_ids), "sending")
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
    return result.status


def queue_delivery(message_ids: list[int]) -> None:
    """Queue the send jobs (to the worker when the caller commits): one per message, or per 100 of many."""
    if len(message_ids) == 1:
        send_email(message_ids[0])
        return
    for start in range(0, len(message_ids), BATCH):
        send_batch(message_ids[start:start + BATCH])
