"""Saved segments: create, change, duplicate and delete them; count and list their members;
record their sizes day by day; turn the contact list's filters into a definition."""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import delete, false, func, select, text
from sqlalchemy.exc import DBAPIError

from crm.extensions import db
from crm.models import Contact, Segment, SegmentSize, utcnow
from crm.services.people import queries as contact_queries
from crm.services.segments import compile as compiler
from crm.services.segments.definition import DefinitionError, Group, parse, to_json
from crm.services.shared.bounds import MAX_ID
from crm.services.shared.errors import N_, Message, ValidationError
from crm.services.shop.clock import shop_today
from crm.services.trust import audit

SAMPLE_SIZE = 10
HISTORY_DAYS = 90
# How long one segment query may run before it is stopped (setting SEGMENT_QUERY_LIMIT_MS).
DEFAULT_LIMIT_MS = 5_000
log = logging.getLogger(__name__)


class SegmentTooSlow(ValidationError):
    """A segment query ran past the time limit and was stopped."""

    def __init__(self, limit_ms: int):
        super().__init__(N_("The segment took too long to count."), {
            "definition": Message(N_("Counting this segment took longer than %(seconds)s s and was stopped; "
                                     "narrow it (fewer product or event conditions, a shorter time window)."),
                                  seconds=f"{limit_ms / 1000:g}")})


@contextmanager
def time_limited():
    """Run the block's queries under the segment time limit; raise SegmentTooSlow past it.

    SQLite: a progress handler interrupts the statement. PostgreSQL: statement_timeout, set inside
    a savepoint so that a cancelled query leaves the transaction usable."""
    limit_ms = max(1, int(current_app.config.get("SEGMENT_QUERY_LIMIT_MS", DEFAULT_LIMIT_MS)))
    connection = db.session.connection()
    try:
        if connection.dialect.name == "sqlite":
            raw = connection.connection.dbapi_connection
            deadline = time.monotonic() + limit_ms / 1000
            raw.set_progress_handler(lambda: time.monotonic() > deadline, 1_000)
            try:
                yield
            finally:
                raw.set_progress_handler(None, 0)
        else:
            with db.session.begin_nested():
                before = db.session.scalar(text("SELECT current_setting('statement_timeout')"))
                db.session.execute(text("SELECT set_config('statement_timeout', :ms, true)"), {"ms": str(limit_ms)})
                yield
                db.session.execute(text("SELECT set_config('statement_timeout', :before, true)"), {"before": before})
    except DBAPIError as error:
        message = str(error.orig).lower()
        if "interrupted" in message or "statement timeout" in message or "canceling statement" in message:
            raise SegmentTooSlow(limit_ms) from None
        raise


def today() -> date:
    """Return the shop's calendar date now."""
    return shop_today(utcnow())


def condition(definition: Group, day: date | None = None, *, per_contact: bool = False):
    """Return the WHERE clause of a checked definition, counting days from `day` (default today);
    `per_contact` when it checks a few given contacts (see compile.where)."""
    return compiler.where(definition, day or today(), per_contact=per_contact)


def segment_condition(segment_id: int, *, per_contact: bool = False):
    """Return the WHERE clause of a saved segment (matching nobody when there is no such segment).
    The segment is read once per session: a page that counts and then lists costs one query."""
    segment = get(segment_id)
    if segment is None:
        return false()
    try:
        return condition(parse(segment.definition), per_contact=per_contact)
    except DefinitionError:
        # Saved before a field or limit changed: match nobody rather than fail every page using it.
        log.warning("Segment %s no longer has a valid definition", segment_id)
        return false()


def member_ids(definition: Group, day: date | None = None):
    """Return a select of the ids of the members, for set-based work (bulk actions, exports)."""
    return select(Contact.id).where(condition(definition, day))


def count(definition: Group, day: date | None = None) -> int:
    """Return how many contacts a definition matches (one query, time-limited)."""
    with time_limited():
        return db.session.scalar(select(func.count()).select_from(Contact).where(condition(definition, day))) or 0


def sample(definition: Group, size: int = SAMPLE_SIZE) -> list[Contact]:
    """Return the first members in the contact list's default order (time-limited), walked in that
    order (contact_queries.walk): a big segment's first rows cost about what its rows cost."""
    sort = contact_queries.SORTS[contact_queries.DEFAULT_SORT]

    def fetch(conditions: list, by_index: bool, _with_cursor: bool) -> list[Contact]:
        order = contact_queries.sort_clauses(by_index=by_index)
        return list(db.session.scalars(select(Contact).where(*conditions).order_by(*order).limit(size)))

    with time_limited():
        return contact_queries.walk(condition(definition, per_contact=True), lambda: [condition(definition)], fetch,
                                    sort, wanted=size)


@dataclass
class Spend:
    members: int
    customers: int
    total: Decimal
    orders: int

    @property
    def average(self) -> Decimal:
        return (self.total / self.customers).quantize(Decimal("0.01")) if self.customers else Decimal("0.00")


def spend(definition: Group) -> Spend:
    """Return what the members have spent, in one query."""
    where = condition(definition)
    with time_limited():
        members, customers, total, orders = db.session.execute(select(
        func.count(), func.count(Contact.id).filter(Contact.order_count > 0),
            func.coalesce(func.sum(Contact.total_spent), 0), func.coalesce(func.sum(Contact.order_count), 0),
        ).where(where)).one()
    return Spend(members, customers, Decimal(str(total)).quantize(Decimal("0.01")), int(orders))


def history(segment_id: int, day: date | None = None) -> list[tuple[date, int]]:
    """Return the recorded (day, size) of the last HISTORY_DAYS days, oldest first."""
    day = day or today()
    return [tuple(row) for row in db.session.execute(
        select(SegmentSize.day, SegmentSize.size)
        .where(SegmentSize.segment_id == segment_id, SegmentSize.day > day - timedelta(days=HISTORY_DAYS))
        .order_by(SegmentSize.day)
    )]


def record_segment_sizes(day: date | None = None) -> int:
    """Record every segment's size for the shop day `day` (today by default); recording twice on
    a day keeps the later figure. Return how many segments were counted (one past the time limit
    is skipped and logged)."""
    day = day or today()
    segments = list(db.session.execute(select(Segment.id, Segment.definition)))
    counted = 0
    for segment_id, raw in segments:
        try:
            size = count(parse(raw), day)
        except SegmentTooSlow:
            log.warning("Segment %s took too long to count; no size recorded for %s", segment_id, day)
            continue
        db.session.execute(delete(SegmentSize).where(SegmentSize.segment_id == segment_id, SegmentSize.day == day))
        db.session.add(SegmentSize(segment_id=segment_id, day=day, size=size))
        counted += 1
    db.session.flush()
    return counted


def latest_sizes() -> dict[int, int]:
    """Return each segment's most recently recorded size."""
    newest = select(SegmentSize.segment_id, func.max(SegmentSize.day).label("day")).group_by(
        SegmentSize.segment_id).subquery()
    rows = db.session.execute(select(SegmentSize.segment_id, SegmentSize.size).join(
        newest, (newest.c.segment_id == SegmentSize.segment_id) & (newest.c.day == SegmentSize.day)))
    return dict(rows.all())


# ---------------------------------------------------------------------------
# Saved segments

def all_segments() -> list[Segment]:
    return list(db.session.scalars(select(Segment).order_by(Segment.name)))


def get(segment_id: int) -> Segment | None:
    if not 1 <= segment_id <= MAX_ID:
        return None
    return db.session.get(Segment, segment_id)


def _clean(values: dict[str, Any], *, segment_id: int | None = None) -> dict[str, Any]:
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    if "name" in values:
        name = values["name"]
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > 120:
            errors["name"] = N_("Give a name of 1 to 120 characters.")
        else:
            name = name.strip()
            other = db.session.scalar(select(Segment.id).where(Segment.name == name))
            if other is not None and other != segment_id:
                errors["name"] = N_("Another segment already has this name.")
            cleaned["name"] = name
    if "description" in values:
        description = values["description"] if values["description"] is not None else ""
        if not isinstance(description, str) or len(description) > 1000:
            errors["description"] = N_("Give a description of at most 1,000 characters.")
        else:
            cleaned["description"] = description.strip()
    if errors:
        raise ValidationError(fields=errors)
    if "definition" in values:
        cleaned["definition"] = to_json(parse(values["definition"]))
    return cleaned


def create(values: dict[str, Any], *, actor_id: int | None = None) -> Segment:
    """Save a new segment from {"name", "description", "definition"}; raise ValidationError."""
    if "name" not in values:
        raise ValidationError(fields={"name": N_("Give the segment a name.")})
    cleaned = _clean({"description": "", "definition": {"match": "all", "conditions": []}, **values})
    segment = Segment(**cleaned, created_by_id=actor_id)
    db.session.add(segment)
    db.session.flush()
    audit.record("create", "segment", segment.id, user_id=actor_id, after=cleaned)
    return segment


def update(segment: Segment, values: dict[str, Any], *, actor_id: int | None = None) -> Segment:
    """Change a segment's name, description or definition; raise ValidationError."""
    cleaned = _clean(values, segment_id=segment.id)
    before = {key: getattr(segment, key) for key in cleaned}
    for key, value in cleaned.items():
        setattr(segment, key, value)
    db.session.flush()
    if before != cleaned:
        audit.record("update", "segment", segment.id, user_id=actor_id, before=before, after=cleaned)
    return segment


def duplicate(segment: Segment, *, actor_id: int | None = None) -> Segment:
    """Save a copy of a segment under a free name ("Copy of …")."""
    base = f"Copy of {segment.name}"[:110]
    name, number = base, 2
    while db.session.scalar(select(Segment.id).where(Segment.name == name)) is not None:
        name, number = f"{base} ({number})", number + 1
    return create({"name": name, "description": segment.description, "definition": segment.definition},
                  actor_id=actor_id)


def remove(segment: Segment, *, actor_id: int | None = None) -> None:
    """Delete a segment and its recorded sizes."""
    audit.record("delete", "segment", segment.id, user_id=actor_id,
                 before={"name": segment.name, "definition": segment.definition})
    db.session.execute(delete(SegmentSize).where(SegmentSize.segment_id == segment.id))
    db.session.delete(segment)
    db.session.flush()


# ---------------------------------------------------------------------------
# The contact list's filters as a definition

def from_filters(filters: contact_queries.ContactFilters, *, user_id: int | None = None) -> dict[str, Any]:
    """Return the definition the contact list's filters stand for (the search text is not kept)."""
    conditions: list[dict[str, Any]] = []
    if filters.stage:
        conditions.append({"field": "stage", "op": "=", "value": filters.stage})
    if filters.health:
        conditions.append({"field": "health", "op": "=", "value": filters.health})
    conditions += [{"field": "tag", "op": "=", "value": tag} for tag in filters.tags]
    if filters.score_min is not None:
        conditions.append({"field": "lead_score", "op": ">=", "value": filters.score_min})
    if filters.score_max is not None:
        conditions.append({"field": "lead_score", "op": "<=", "value": filters.score_max})
    if filters.open_todo:
        conditions.append({"field": "task", "op": "has" if filters.open_todo == "yes" else "has_not",
                           "value": {"status": "open"}})
    owner = str(user_id) if filters.owner == "me" and user_id else filters.owner
    if owner == "none":
        conditions.append({"field": "owner", "op": "is_not_set"})
    elif owner and owner.isdigit():
        conditions.append({"field": "owner", "op": "=", "value": int(owner)})
    if filters.segment is not None:
        saved = get(filters.segment)
        if saved is not None:
            conditions += [c for c in saved.definition.get("conditions", [])] if saved.definition.get(
                "match", "all") == "all" else [saved.definition]
    return {"match": "all", "conditions": conditions}


def members_after(definition: Group, *, after_id: int | None = None, limit: int = 50) -> list[Contact]:
    """Return up to `limit` members in id order after `after_id` (the API's keyset page),
    with tags and external ids loaded."""
    from sqlalchemy.orm import selectinload

    query = (select(Contact).where(condition(definition)).order_by(Contact.id).limit(limit)
             .options(selectinload(Contact.tags), selectinload(Contact.external_ids)))
    if after_id is not None:
        query = query.where(Contact.id > after_id)
    with time_limited():
        return list(db.session.scalars(query))


def page_after(*, after_id: int | None = None, limit: int = 50) -> list[Segment]:
    """Return up to `limit` saved segments in id order after `after_id`."""
    query = select(Segment).order_by(Segment.id).limit(limit)
    if after_id is not None:
        query = query.where(Segment.id > after_id)
    return list(db.session.scalars(query))
