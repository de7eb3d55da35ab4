"""Sending a newsletter: members are queued through the email outbox in chunks, each chunk with
its campaign_recipients rows in the same transaction. A worker that dies mid-way leaves whole
chunks behind; running again skips every member who already has a row, so no one is queued (or
sent) twice. Outside the sending window the job waits for the window to open."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select

from crm.extensions import db
from crm.models import Campaign, CampaignRecipient, Contact, utcnow
from crm.services.campaigns import store
from crm.services.email import outbox
from crm.services.flows import config as flow_config
from crm.services.flows import pacing

CHUNK = 1000  # members per transaction: one set-based write of each kind of row


def send(campaign_id: int, now: datetime | None = None, progress=None) -> datetime | str:
    """Queue the campaign's remaining members (committing per chunk); return the status, or the
    moment to try again when the sending window is closed."""
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None or campaign.status not in ("scheduled", "sending"):
        return campaign.status if campaign else "missing"
    now = now or utcnow()
    pace = flow_config.pacing()
    if not pacing.in_window(now, pace):
        return pacing.into_window(now, pace)
    campaign.status, campaign.started_at = "sending", campaign.started_at or now
    db.session.commit()
    done = set(db.session.scalars(select(CampaignRecipient.contact_id).where(CampaignRecipient.campaign_id == campaign.id)))
    todo = [cid for cid in store.member_ids(campaign) if cid not in done]
    for start in range(0, len(todo), CHUNK):
        contacts = list(db.session.scalars(select(Contact).where(Contact.id.in_(todo[start:start + CHUNK])).order_by(Contact.id)))
        verdicts = store.judge(contacts, now, pace)
        going = [c for c in contacts if verdicts[c.id] is None]
        messages = outbox.queue_many(going, campaign.template_key, subject=campaign.subject, body=campaign.body,
                                     actor_id=campaign.created_by_id, now=now) if going else []
        by_contact = {m.contact_id: m.id for m in messages}
        db.session.execute(insert(CampaignRecipient), [
            {"campaign_id": campaign.id, "contact_id": c.id, "status": "excluded" if verdicts[c.id] else "queued",
             "reason": verdicts[c.id], "message_id": by_contact.get(c.id), "created_at": now} for c in contacts])
        db.session.commit()  # the chunk and its send jobs, together
        if progress is not None:
            progress(start + len(contacts), len(todo))
    campaign.status, campaign.finished_at = "sent", utcnow()
    db.session.commit()
    return "sent"
