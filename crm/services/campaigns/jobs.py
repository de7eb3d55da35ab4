"""The worker's side of newsletters: one job per campaign (resumed after a crash)."""
from __future__ import annotations

from datetime import datetime

from crm.services.campaigns import sending
from crm.services.jobs import job, set_progress


@job(name="campaigns.send", lock="campaigns", retries=3, retry_delay=60, label="Send a newsletter")
def send_campaign(campaign_id: int) -> str:
    """Queue a newsletter's messages through the outbox"""
    result = sending.send(campaign_id, progress=lambda done, total: set_progress(done, total, "queueing"))
    if isinstance(result, datetime):
        send_campaign.schedule((campaign_id,), eta=result)  # the sending window opens then
        from crm.extensions import db

        db.session.commit()
        return f"waiting for the sending window ({result.isoformat()})"
    return result
