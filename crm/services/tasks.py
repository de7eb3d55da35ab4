"""To-dos worked by people: completing, dismissing, snoozing and reassigning them, each audited.

The engine's rules make most to-dos; these are the state changes a person (a page or the API)
makes. Completing a to-do records an interaction with its outcome, linked to the to-do.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from crm.extensions import db
from crm.models import INTERACTION_KINDS, Contact, Interaction, Task, User, utcnow
from crm.services import audit, engine_hooks
from crm.services.errors import ValidationError
from crm.services.interactions import log_interaction

AUDITED = ("status", "assignee_id", "snoozed_until", "closed_at", "close_reason", "outcome", "due_at")


class TaskNotOpen(ValidationError):
    """The to-do is already done, dismissed or closed, so it cannot change state."""


def create_task(contact_id: int, kind: str, title: str, *, reason: str = "", due_at: datetime,
                rule_key: str | None = None, assignee_id: int | None = None, actor_id: int | None = None) -> Task:
    """Return a new open to-do (flushed); with a `rule_key`, the existing one when it was made before."""
    if rule_key is not None:
        existing = db.session.scalar(select(Task).where(Task.contact_id == contact_id, Task.rule_key == rule_key))
        if existing is not None:
            return existing
    task = Task(contact_id=contact_id, kind=kind[:40], rule_key=rule_key, title=title[:300], reason=reason[:500],
                due_at=due_at, status="open", assignee_id=assignee_id)
    db.session.add(task)
    db.session.flush()
    audit.record("create", "task", task.id, user_id=actor_id,
                 after={"contact_id": contact_id, "kind": task.kind, "title": task.title, **audit.snapshot(task, AUDITED)})
    return task


def _require_open(task: Task) -> None:
    if task.status != "open":
        raise TaskNotOpen(f"This to-do is already {task.status}.", fields={"status": f"The to-do is already {task.status}."})


def _change(task: Task, *, actor_id: int | None, **values) -> None:
    """Set fields of a to-do and audit the before and after."""
    before = audit.snapshot(task, AUDITED)
    for name, value in values.items():
        setattr(task, name, value)
    db.session.flush()
    audit.record("update", "task", task.id, user_id=actor_id, before=before, after=audit.snapshot(task, AUDITED))


def _short_text(name: str, value: str | None, missing: str) -> str:
    """Return the stripped text of a required field of at most 300 characters, or raise ValidationError."""
    value = (value or "").strip()
    if not value:
        raise ValidationError(fields={name: missing})
    if len(value) > 300:
        raise ValidationError(fields={name: "Keep it under 300 characters."})
    return value


def complete_task(task: Task, outcome: str, *, actor_id: int | None, now: datetime | None = None) -> Interaction:
    """Mark a to-do done and return the interaction that records its outcome."""
    now = now or utcnow()
    _require_open(task)
    outcome = _short_text("outcome", outcome, "Say how it went, e.g. 'Called, happy with the order'.")
    contact = db.session.get(Contact, task.contact_id)
    kind = task.kind if task.kind in INTERACTION_KINDS else "call"
    interaction = log_interaction(contact, {"kind": kind, "subject": task.title[:300], "outcome": outcome},
                                  author_id=actor_id, task_id=task.id, now=now)
    _change(task, actor_id=actor_id, status="done", closed_at=now, outcome=outcome, close_reason="done")
    return interaction


def dismiss_task(task: Task, reason: str, *, actor_id: int | None, now: datetime | None = None) -> None:
    """Close a to-do that will not be done, keeping the reason."""
    _require_open(task)
    reason = _short_text("reason", reason, "Say why it will not be done.")
    _change(task, actor_id=actor_id, status="dismissed", closed_at=now or utcnow(), close_reason=reason)
    engine_hooks.after_contacts_changed([task.contact_id], now=now)


def snooze_task(task: Task, until: datetime | None, *, actor_id: int | None, now: datetime | None = None) -> None:
    """Hide an open to-do until a later time (None wakes it up now)."""
    now = now or utcnow()
    _require_open(task)
    if until is not None:
        until = until if until.tzinfo else until.replace(tzinfo=timezone.utc)
        if until <= now:
            raise ValidationError(fields={"snoozed_until": "Choose a time in the future."})
    _change(task, actor_id=actor_id, snoozed_until=until)


def reassign_task(task: Task, user_id: int | None, *, actor_id: int | None) -> None:
    """Give an open to-do to another person who can work it (None: to nobody)."""
    _require_open(task)
    if user_id is not None:
        user = db.session.get(User, user_id)
        if user is None or not user.active or user.role == "viewer":
            raise ValidationError(fields={"assignee_id": "Choose an active admin, sales or support user."})
    _change(task, actor_id=actor_id, assignee_id=user_id)
