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
from crm.services.jobs import job


@job(name="email.send", retries=3, retry_delay=60)
def send_email(message_id: int) -> str:
    """Send one queued email"""
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
    """Queue a send job per message (sent to the worker when the caller commits)."""
    for message_id in message_ids:
        send_email(message_id)
