"""A person's hand on the journey: pinning a stage, unpinning it, and the stage history shown.

Pinning sets the stage and keeps the rules off it until someone unpins; both are stored as
stage changes made by that person (changed_by_id), and audited, and reach the dashboard's
journey summaries (summaries.update_journeys) in the same transaction. Unpinning hands the contact
back to the rules at once (they move it forward if the facts say so, never back).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from crm.extensions import db
from crm.models import STAGES, Contact, StageChange, User, utcnow
from crm.services.insight import summaries
from crm.services.shared import signals
from crm.services.shared.errors import N_, Message, ValidationError
from crm.services.shared.said import Said, said
from crm.services.shared.said import to_json as said_json
from crm.services.trust import audit

REASON_LENGTH = 300
PIN_FIELDS = ("stage", "stage_reason", "stage_pinned")


def _fitting(words: Said) -> str:
    """The words as stored: the Said itself when it fits the column (so this request's page shows
    it in the reader's language too), else its English cut to the column."""
    return words if len(words) <= REASON_LENGTH else str(words)[:REASON_LENGTH]


def _record(contact: Contact, to_stage: str, reason: Said, actor_id: int | None, now: datetime) -> StageChange:
    # The reason's words with their key beside them: the pages show them in the reader's language.
    change = StageChange(contact_id=contact.id, from_stage=contact.stage, to_stage=to_stage,
                         reason=str(reason)[:REASON_LENGTH], reason_said=said_json(reason), changed_at=now,
                         changed_by_id=actor_id)
    db.session.add(change)
    return change


def pin_stage(contact: Contact, stage: str, reason: str, actor_id: int | None,
              now: datetime | None = None) -> StageChange:
    """Set the contact's stage by hand and keep the rules off it; return the stage change (flushed)."""
    now = now or utcnow()
    reason = (reason or "").strip()
    errors = {}
    if stage not in STAGES:
        errors["stage"] = Message(N_("Choose one of %(choices)s."), choices=", ".join(STAGES))
    if not reason:
        errors["reason"] = N_("Say why the stage is set by hand.")
    elif len(reason) > REASON_LENGTH - 20:
        errors["reason"] = Message(N_("Keep it under %(count)s characters."), count=REASON_LENGTH - 20)
    if errors:
        raise ValidationError(fields=errors)
    before = audit.snapshot(contact, PIN_FIELDS)
    words = said(N_("pinned by hand: %(reason)s"), reason=reason)
    change = _record(contact, stage, words, actor_id, now)
    if contact.stage != stage or contact.stage_since is None:
        contact.stage_since = now
    contact.stage, contact.stage_reason, contact.stage_pinned = stage, _fitting(words), True
    contact.stage_reason_said = change.reason_said
    db.session.flush()
    summaries.update_journeys([contact.id])
    audit.record("pin_stage", "contact", contact.id, user_id=actor_id, before=before,
                 after=audit.snapshot(contact, PIN_FIELDS))
    return change


def unpin_stage(contact: Contact, actor_id: int | None, now: datetime | None = None) -> None:
    """Hand the contact's stage back to the rules, which re-derive it at once (flushed, audited)."""
    now = now or utcnow()
    if not contact.stage_pinned:
        raise ValidationError(fields={"stage": N_("The stage is not pinned.")})
    before = audit.snapshot(contact, PIN_FIELDS)
    words = said(N_("unpinned by hand: the rules decide again"))
    change = _record(contact, contact.stage, words, actor_id, now)
    contact.stage_pinned = False
    contact.stage_reason, contact.stage_reason_said = _fitting(words), change.reason_said
    db.session.flush()
    summaries.update_journeys([contact.id])
    audit.record("unpin_stage", "contact", contact.id, user_id=actor_id, before=before,
                 after=audit.snapshot(contact, PIN_FIELDS))
    signals.after_contacts_changed([contact.id], now=now)


@dataclass(frozen=True)
class StagePeriod:
    """One stored stage change and how long the contact stayed in the stage it entered."""

    from_stage: str | None
    to_stage: str
    reason: str
    changed_at: datetime
    changed_by: str | None  # the person's name; None when a rule made the change
    left_at: datetime | None  # when the contact moved to another stage; None while still in it
    days: int  # whole days in the stage, up to `left_at` or now


def stage_history(contact_id: int, now: datetime | None = None) -> list[StagePeriod]:
    """Return the contact's stage changes, newest first, each with the time spent in its stage."""
    now = now or utcnow()
    rows = db.session.execute(
        select(StageChange, User.name).outerjoin(User, User.id == StageChange.changed_by_id)
        .where(StageChange.contact_id == contact_id)
        .order_by(StageChange.changed_at, StageChange.id)
    ).all()
    periods = []
    for index, (change, name) in enumerate(rows):
        # The stage lasts until a later change moves to a different stage (a pin of the
        # same stage does not end it).
        left_at = next((later.changed_at for later, _ in rows[index + 1:] if later.to_stage != change.to_stage), None)
        until = left_at or now
        periods.append(StagePeriod(
            change.from_stage, change.to_stage, change.reason, change.changed_at,
            name if change.changed_by_id is not None else None, left_at,
            max(0, (until - change.changed_at).days),
        ))
    periods.reverse()
    return periods
