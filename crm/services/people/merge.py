"""Merging two contacts who are the same person: everything of one moves to the other.

One set-based UPDATE per table, whatever the number of orders or interactions; nothing
is lost: what cannot move as it is (a to-do a rule already made for the survivor) is
closed with its reason, and both contacts are kept whole in the audit log.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import case, delete, func, insert, literal, select, update

from crm.extensions import db
from crm.models import (
    Contact,
    ContactExternalId,
    Interaction,
    Order,
    ScoreHistory,
    StageChange,
    Task,
    UTCDateTime,
    contact_tags,
    utcnow,
)
from crm.services.orders import aggregates
from crm.services.people.contacts import EDITABLE, full_snapshot
from crm.services.shared import signals
from crm.services.shared.errors import N_, ValidationError
from crm.services.trust import audit

# What moves, by the label the confirmation page shows.
MOVED = (
    ("orders", Order),
    ("interactions", Interaction),
    ("to-dos", Task),
    ("stage changes", StageChange),
    ("score history", ScoreHistory),
    ("external ids", ContactExternalId),
)
# Flags with their own rules: the stricter do-not-contact wins, consent moves with its record.
FILLED = tuple(name for name in EDITABLE if name not in ("consent", "consent_source", "do_not_contact")) + (
    "email_display",
)
TASK_KEY_LENGTH = Task.__table__.c.rule_key.type.length


@dataclass
class MergePlan:
    """What merging `loser` into `survivor` will do, for the confirmation page and the audit log."""

    survivor: Contact
    loser: Contact
    moves: dict[str, int]
    tags: list[str]  # the loser's tags the survivor does not have yet
    fills: dict[str, tuple[Any, Any]]  # survivor's blank field: (blank, loser's value)
    kept: dict[str, tuple[Any, Any]]  # both set and different: (survivor's, loser's) — survivor's stays
    duplicate_tasks: list[Task] = field(default_factory=list)

    @property
    def nothing_moves(self) -> bool:
        return not any(self.moves.values()) and not self.tags and not self.fills


def _blank(value: Any) -> bool:
    return value is None or value == ""


def history_counts(contact: Contact) -> dict[str, int]:
    """Return how many orders, interactions, to-dos, stage changes, scores and external ids
    a contact has, in one query."""
    counts = db.session.execute(select(*(
        select(func.count()).select_from(model).where(model.contact_id == contact.id).scalar_subquery().label(label)
        for label, model in MOVED
    ))).one()
    return dict(counts._mapping)


def plan(survivor: Contact, loser: Contact) -> MergePlan:
    """Return what a merge would move, fill and close, without changing anything."""
    if survivor.id == loser.id:
        raise ValidationError(fields={"other": N_("A contact cannot be merged with itself.")})
    survivor_tags = {tag.name for tag in survivor.tags}
    fills, kept = {}, {}
    for name in FILLED:
        mine, theirs = getattr(survivor, name), getattr(loser, name)
        if _blank(theirs):
            continue
        if _blank(mine):
            fills[name] = (mine, theirs)
        elif mine != theirs and name != "email_display":
            kept[name] = (mine, theirs)
    if not survivor.consent and loser.consent:
        for name in ("consent", "consent_at", "consent_source"):
            fills[name] = (getattr(survivor, name), getattr(loser, name))
    if loser.do_not_contact and not survivor.do_not_contact:
        fills["do_not_contact"] = (False, True)
    duplicates = list(db.session.scalars(
        select(Task).where(Task.contact_id == loser.id, Task.rule_key.in_(_rule_keys(survivor.id))).order_by(Task.id)
    ))
    return MergePlan(
        survivor=survivor, loser=loser, moves=history_counts(loser),
        tags=sorted({tag.name for tag in loser.tags} - survivor_tags),
        fills=fills, kept=kept, duplicate_tasks=duplicates,
    )


def _rule_keys(contact_id: int):
    return select(Task.rule_key).where(Task.contact_id == contact_id, Task.rule_key.isnot(None))


def merge(survivor: Contact, loser: Contact, *, actor_id: int | None = None, now: datetime | None = None) -> MergePlan:
    """Move everything of `loser` to `survivor`, fill the survivor's blank fields, delete the
    loser and return the plan that was carried out. Flushes; the caller commits."""
    now = now or utcnow()
    db.session.flush()
    merge_plan = plan(survivor, loser)
    before = {"survivor": full_snapshot(survivor), "loser": full_snapshot(loser)}
    survivor_id, loser_id = survivor.id, loser.id
    duplicate_task_ids = [task.id for task in merge_plan.duplicate_tasks]
    created_at = min(survivor.created_at, loser.created_at)

    # A to-do the survivor already has for the same rule and occasion would break the
    # (contact, rule_key) rule: the loser's copy is closed with the reason and its key marked.
    suffix = f"~merged-{loser_id}"
    reason = f"Duplicate after merging contact #{loser_id} into #{survivor_id}; the survivor's to-do stands."
    db.session.execute(
        update(Task).where(Task.contact_id == loser_id, Task.rule_key.in_(_rule_keys(survivor_id)))
        .values(
            rule_key=func.substr(Task.rule_key, 1, TASK_KEY_LENGTH - len(suffix), type_=sa.String).concat(suffix),
            status=case((Task.status == "open", "closed"), else_=Task.status),
            close_reason=case((Task.status == "open", reason), else_=Task.close_reason),
            closed_at=func.coalesce(Task.closed_at, literal(now, UTCDateTime())),
        )
        .execution_options(synchronize_session=False)
    )
    for _label, model in MOVED:
        db.session.execute(
            update(model).where(model.contact_id == loser_id).values(contact_id=survivor_id)
            .execution_options(synchronize_session=False)
        )
    db.session.execute(
        insert(contact_tags).from_select(
            ["contact_id", "tag_id"],
            select(literal(survivor_id), contact_tags.c.tag_id).where(
                contact_tags.c.contact_id == loser_id,
                contact_tags.c.tag_id.not_in(select(contact_tags.c.tag_id).where(contact_tags.c.contact_id == survivor_id)),
            ),
        )
    )
    db.session.execute(delete(contact_tags).where(contact_tags.c.contact_id == loser_id))
    # Everything loaded before points at the old owners; reload, then delete the empty loser
    # before its email goes to the survivor (emails are unique).
    db.session.expire_all()
    db.session.delete(loser)
    db.session.flush()
    for name, (_mine, theirs) in merge_plan.fills.items():
        setattr(survivor, name, theirs)
    survivor.created_at = created_at
    db.session.flush()
    aggregates.refresh([survivor_id, loser_id])  # the loser's id takes its rows out of the summaries
    signals.after_contacts_changed([survivor_id], now=now)

    after = {
        "survivor": full_snapshot(survivor),
        "merged_contact_id": loser_id,
        "moved": merge_plan.moves,
        "tags_added": merge_plan.tags,
        "filled": sorted(merge_plan.fills),
        "closed_duplicate_tasks": duplicate_task_ids,
    }
    entry = audit.record("merge", "contact", survivor_id, user_id=actor_id, before=before)
    # Both snapshots in full: record() keeps only the changed keys when given before and after.
    entry.after = after
    audit.record("merged_into", "contact", loser_id, user_id=actor_id, after={"survivor_id": survivor_id})
    return merge_plan
