"""The worker's side of newsletters: one job per campaign (resumed after a crash)."""
from __future__ import annotations

from datetime import datetime

from crm.services.campaigns import sending
from crm.services.jobs import job, set_progress
from crm.services.shared.said import N_, said

# What a run returns (a campaign's status code), in words the jobs page shows in the reader's language.
RESULT_WORDS = {"sent": N_("sent"), "sending": N_("sending"), "draft": N_("draft"), "scheduled": N_("scheduled"),
                "cancelled": N_("cancelled"), "missing": N_("missing")}


@job(name="campaigns.send", lock="campaigns", retries=3, retry_delay=60, label="Send a newsletter")
def send_campaign(campaign_id: int) -> str:
    """Queue a newsletter's messages through the outbox"""
    result = sending.send(campaign_id, progress=lambda done, total: set_progress(done, total, N_("queueing")))
    if isinstance(result, datetime):
        send_campaign.schedule((campaign_id,), eta=result)  # the sending window opens then
        from crm.extensions import db

        db.session.commit()
        return said(N_("waiting for the sending window (%(when)s)"), when=result.isoformat())
    return said(RESULT_WORDS[result]) if result in RESULT_WORDS else result
