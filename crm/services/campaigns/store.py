"""Campaigns: write, check, see the audience, preview, schedule."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from crm.extensions import db
from crm.models import Campaign, CampaignRecipient, Contact, EmailMessage, utcnow
from crm.services.email import outbox, suppression, templates
from crm.services.email.settings import effective
from crm.services.flows import config as flow_config
from crm.services.flows import pacing
from crm.services.flows.runner import marketing_history
from crm.services.shared.errors import N_, NotFound, ValidationError
from crm.services.trust import audit

BATCH = 500
EXCLUDED = {
    "no_consent": "no marketing consent", "unsubscribed": "unsubscribed", "bounced": "bounced",
    "no_address": "no email address", "do_not_contact": "do not contact", "erased": "erased",
    "capped": "over the cap on marketing email",
}


def marketing_templates() -> list[templates.Template]:
    return [t for t in templates.all_templates() if t.marketing]


def get(campaign_id: int) -> Campaign:
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(N_("There is no such newsletter."))
    return campaign


def all_campaigns() -> list[Campaign]:
    return list(db.session.scalars(select(Campaign).order_by(Campaign.created_at.desc(), Campaign.id.desc())))


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    from crm.services.segments import store as segments

    errors: dict[str, str] = {}
    name = str(values.get("name") or "").strip()
    if not name:
        errors["name"] = N_("Give the newsletter a name.")
    elif len(name) > 200:
        errors["name"] = N_("Keep the name under 200 characters.")
    key = str(values.get("template_key") or "")
    if key not in {t.key for t in marketing_templates()}:
        errors["template_key"] = N_("Choose one of the marketing templates.")
    raw = str(values.get("segment_id") or "").strip()
    segment = segments.get(int(raw)) if raw.isdigit() and len(raw) < 12 else None
    if segment is None:
        errors["segment_id"] = N_("Choose the segment it goes to.")
    subject, body = values.get("subject"), values.get("body")
    if key and not errors.get("template_key") and not subject and not body:
        template = templates.get(key)
        subject, body = template.subject, template.body
    try:
        subject, body = templates.clean(subject or "", body or "", outbox.shop_context(effective()))
        if not subject:
            errors["subject"] = N_("Give the message a subject.")
    except ValidationError as error:
        errors.update(error.fields)
    if errors:
        raise ValidationError(fields=errors)
    return {"name": name, "template_key": key, "segment_id": segment.id, "subject": subject, "body": body}


def create(values: dict[str, Any], actor_id: int | None) -> Campaign:
    """A draft newsletter; the subject and body start from the template when not given."""
    clean = _clean(values)
    campaign = Campaign(**clean, status="draft", created_by_id=actor_id)
    db.session.add(campaign)
    db.session.flush()
    audit.record("create", "campaign", campaign.id, user_id=actor_id, after=clean)
    return campaign


def update(campaign: Campaign, values: dict[str, Any], actor_id: int | None) -> Campaign:
    if campaign.status not in ("draft", "scheduled"):
        raise ValidationError(N_("A newsletter that is sending or sent cannot be changed."))
    clean = _clean(values)
    before = {k: getattr(campaign, k) for k in clean}
    for key, value in clean.items():
        setattr(campaign, key, value)
    db.session.flush()
    audit.record("update", "campaign", campaign.id, user_id=actor_id, before=before, after=clean)
    return campaign


@dataclass
class Audience:
    members: int = 0
    receive: int = 0
    excluded: Counter = field(default_factory=Counter)

    def excluded_words(self) -> list[tuple[str, int]]:
        return [(EXCLUDED.get(reason, reason), n) for reason, n in self.excluded.most_common()]


def member_ids(campaign: Campaign) -> list[int]:
    from crm.services.segments import store as segments

    if campaign.segment_id is None:
        return []
    return list(db.session.scalars(select(Contact.id).where(segments.segment_condition(campaign.segment_id),
                                                            Contact.erased_at.is_(None)).order_by(Contact.id)))


def sample_members(campaign: Campaign, limit: int = 50) -> list[Contact]:
    """The first members, to pick one for the preview."""
    ids = member_ids(campaign)[:limit]
    return list(db.session.scalars(select(Contact).where(Contact.id.in_(ids)).order_by(Contact.id))) if ids else []


def judge(contacts: list[Contact], now: datetime, pace: pacing.Pacing) -> dict[int, str | None]:
    """Why each contact may not receive a newsletter now (None: they may): consent, suppression, cap."""
    suppressed = suppression.suppressed_among(c.email for c in contacts if c.email)
    history = marketing_history([c.id for c in contacts])
    verdicts: dict[int, str | None] = {}
    for contact in contacts:
        eligibility = suppression.status_of(contact, True, suppressed.get(contact.email or ""), looked_up=True)
        if not eligibility.ok:
            verdicts[contact.id] = eligibility.status
        elif pacing.earliest(history.get(contact.id, []), now, pace, relevant_until=now) is None:
            verdicts[contact.id] = "capped"
        else:
            verdicts[contact.id] = None
    return verdicts


def audience(campaign: Campaign, now: datetime | None = None) -> Audience:
    """How many will receive it and how many are excluded, by reason (as it would go now)."""
    now = now or utcnow()
    ids = member_ids(campaign)
    result = Audience(members=len(ids))
    pace = flow_config.pacing()
    for start in range(0, len(ids), BATCH):
        contacts = list(db.session.scalars(select(Contact).where(Contact.id.in_(ids[start:start + BATCH]))))
        for reason in judge(contacts, now, pace).values():
            if reason is None:
                result.receive += 1
            else:
                result.excluded[reason] += 1
    return result


def preview(campaign: Campaign, contact: Contact) -> outbox.Draft:
    return outbox.draft(contact, campaign.template_key, subject=campaign.subject, body=campaign.body)


def schedule(campaign: Campaign, when: datetime | None, actor_id: int | None, now: datetime | None = None) -> Campaign:
    """Send now (when None) or at a moment; the worker does the sending."""
    now = now or utcnow()
    if campaign.status not in ("draft", "scheduled"):
        raise ValidationError(N_("This newsletter is already sending or sent."))
    if when is not None and when <= now:
        raise ValidationError(fields={"scheduled_at": N_("Choose a moment in the future, or send now.")})
    campaign.status, campaign.scheduled_at = "scheduled", when or now
    db.session.flush()
    audit.record("schedule", "campaign", campaign.id, user_id=actor_id, after={"scheduled_at": campaign.scheduled_at.isoformat()})
    from crm.services.campaigns.jobs import send_campaign

    send_campaign.schedule((campaign.id,), eta=campaign.scheduled_at if when else None)
    return campaign


def cancel(campaign: Campaign, actor_id: int | None) -> None:
    if campaign.status != "scheduled":
        raise ValidationError(N_("Only a scheduled newsletter can be cancelled."))
    campaign.status = "cancelled"
    audit.record("cancel", "campaign", campaign.id, user_id=actor_id)


@dataclass
class Progress:
    members: int
    queued: int
    excluded: int
    sent: int
    failed: int
    waiting: int


def progress(campaign: Campaign) -> Progress:
    rows = dict(db.session.execute(select(CampaignRecipient.status, func.count()).where(
        CampaignRecipient.campaign_id == campaign.id).group_by(CampaignRecipient.status)).all())
    statuses = dict(db.session.execute(
        select(EmailMessage.status, func.count()).join(CampaignRecipient, CampaignRecipient.message_id == EmailMessage.id)
        .where(CampaignRecipient.campaign_id == campaign.id).group_by(EmailMessage.status)).all())
    return Progress(members=rows.get("queued", 0) + rows.get("excluded", 0), queued=rows.get("queued", 0),
                    excluded=rows.get("excluded", 0), sent=statuses.get("sent", 0),
                    failed=statuses.get("failed", 0) + statuses.get("suppressed", 0),
                    waiting=statuses.get("queued", 0) + statuses.get("sending", 0))


def excluded_reasons(campaign: Campaign) -> list[tuple[str, int]]:
    rows = db.session.execute(select(CampaignRecipient.reason, func.count()).where(
        CampaignRecipient.campaign_id == campaign.id, CampaignRecipient.status == "excluded")
        .group_by(CampaignRecipient.reason))
    return [(EXCLUDED.get(reason or "", reason or ""), n) for reason, n in rows]
