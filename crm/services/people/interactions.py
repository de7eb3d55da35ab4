"""Interactions: logging, editing and deleting what happened with a contact."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from crm.extensions import db
from crm.models import DIRECTIONS, INTERACTION_KINDS, SENTIMENTS, Contact, Interaction, utcnow
from crm.services.shared import signals
from crm.services.shared.bounds import EARLIEST
from crm.services.shared.errors import N_, Message, ValidationError
from crm.services.trust import audit

FIELDS = ("kind", "direction", "channel", "subject", "body", "outcome", "sentiment", "occurred_at")


def clean(values: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """Return validated interaction fields, or raise ValidationError naming each bad one."""
    errors: dict[str, str] = {}
    cleaned = {k: (v.strip() if isinstance(v, str) else v) for k, v in values.items() if k in FIELDS}
    if "kind" in cleaned and cleaned["kind"] not in INTERACTION_KINDS:
        errors["kind"] = Message(N_("Kind must be one of %(choices)s."), choices=", ".join(INTERACTION_KINDS))
    if "direction" in cleaned and cleaned["direction"] not in DIRECTIONS:
        errors["direction"] = Message(N_("Direction must be one of %(choices)s."), choices=", ".join(DIRECTIONS))
    if "sentiment" in cleaned:
        cleaned["sentiment"] = cleaned["sentiment"] or None
        if cleaned["sentiment"] not in (None, *SENTIMENTS):
            errors["sentiment"] = N_("Sentiment must be negative, neutral or positive.")
    for name, limit in (("subject", 300), ("outcome", 300), ("channel", 40)):
        if cleaned.get(name) and len(cleaned[name]) > limit:
            errors[name] = Message(N_("Keep it under %(limit)s characters."), limit=limit)
    if "occurred_at" in cleaned:
        when = cleaned["occurred_at"]
        if isinstance(when, str):
            try:
                when = datetime.fromisoformat(when) if when else None
            except ValueError:
                errors["occurred_at"] = N_("Use a date and time such as 2026-05-03T14:30.")
                when = None
        if when is not None and when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        if when is not None and when > (now or utcnow()).replace(microsecond=0) + timedelta(minutes=5):
            errors["occurred_at"] = N_("That is in the future; log what already happened.")
        elif when is not None and when < EARLIEST:
            errors["occurred_at"] = Message(N_("%(day)s is before %(earliest)s, the earliest date this CRM accepts."),
                                            day=when.date().isoformat(), earliest=EARLIEST.date().isoformat())
        cleaned["occurred_at"] = when
    if errors:
        raise ValidationError(fields=errors)
    return cleaned


def log_interaction(contact: Contact, values: dict[str, Any], *, author_id: int | None, task_id: int | None = None,
                    now: datetime | None = None) -> Interaction:
    """Record an interaction (flushed): the timeline shows it, stage, score and to-dos react."""
    now = now or utcnow()
    values = {"direction": "outbound", **values}
    if not values.get("kind"):
        raise ValidationError(fields={"kind": N_("Choose what kind of contact this was.")})
    cleaned = clean(values, now=now)
    cleaned["occurred_at"] = cleaned.get("occurred_at") or now
    interaction = Interaction(contact_id=contact.id, author_id=author_id, task_id=task_id, **cleaned)
    db.session.add(interaction)
    db.session.flush()
    if contact.last_interaction_at is None or interaction.occurred_at > contact.last_interaction_at:
        contact.last_interaction_at = interaction.occurred_at
    audit.record("create", "interaction", interaction.id, user_id=author_id,
                 after={"contact_id": contact.id, **audit.snapshot(interaction, FIELDS)})
    signals.after_contacts_changed([contact.id], now=now)
    return interaction


def update_interaction(interaction: Interaction, values: dict[str, Any], *, actor_id: int | None,
                       now: datetime | None = None) -> None:
    """Change an interaction and audit the before and after."""
    cleaned = clean(values, now=now)
    before = audit.snapshot(interaction, FIELDS)
    for name, value in cleaned.items():
        if name == "occurred_at" and value is None:
            continue
        setattr(interaction, name, value)
    db.session.flush()
    audit.record("update", "interaction", interaction.id, user_id=actor_id, before=before,
                 after=audit.snapshot(interaction, FIELDS))
    from crm.services.orders import aggregates

    aggregates.refresh([interaction.contact_id])
    signals.after_contacts_changed([interaction.contact_id], now=now)


def delete_interaction(interaction: Interaction, *, actor_id: int | None, now: datetime | None = None) -> None:
    """Delete an interaction, keeping its content in the audit log."""
    contact_id = interaction.contact_id
    audit.record("delete", "interaction", interaction.id, user_id=actor_id,
                 before={"contact_id": contact_id, **audit.snapshot(interaction, FIELDS)})
    db.session.delete(interaction)
    db.session.flush()
    from crm.services.orders import aggregates

    aggregates.refresh([contact_id])
    signals.after_contacts_changed([contact_id], now=now)
