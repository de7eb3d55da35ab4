"""The audit log: one function that records who did what to which record."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, text

from crm.extensions import db
from crm.models import AuditEntry, User, utcnow


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    return value


def snapshot(record, fields: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Return the named attributes of a record as JSON-ready values."""
    return {name: _jsonable(getattr(record, name)) for name in fields}


def record(
    action: str,
    entity: str,
    entity_id: int | None,
    *,
    user_id: int | None = None,
    before: dict | None = None,
    after: dict | None = None,
    ip: str | None = None,
) -> AuditEntry:
    """Add an audit entry to the session (the caller commits) and return it.

    Only the fields that changed are kept when both `before` and `after` are given.
    """
    before, after = _jsonable(before), _jsonable(after)
    if before is not None and after is not None:
        changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        before = {k: before.get(k) for k in sorted(changed)}
        after = {k: after.get(k) for k in sorted(changed)}
    entry = AuditEntry(
        action=action, entity=entity, entity_id=entity_id, user_id=user_id,
        before=before, after=after, ip=ip, at=utcnow(),
    )
    db.session.add(entry)
    return entry


def record_all(entries: list[dict[str, Any]]) -> None:
    """Insert many entries at once (one executemany), each given as `record`'s arguments
    (action, entity, entity_id, user_id, after); for the bulk paths that add hundreds at a time."""
    if not entries:
        return
    at = utcnow()
    db.session.execute(insert(AuditEntry), [
        {"action": entry["action"], "entity": entry["entity"], "entity_id": entry.get("entity_id"),
         "user_id": entry.get("user_id"), "before": None, "after": _jsonable(entry.get("after")), "ip": None, "at": at}
        for entry in entries])


@dataclass
class AuditFilter:
    """What the audit log page narrows the entries to; None means any."""

    user_id: int | None = None
    action: str | None = None
    entity: str | None = None
    entity_id: int | None = None
    since: datetime | None = None  # inclusive, UTC
    until: datetime | None = None  # exclusive, UTC


@dataclass
class AuditPage:
    entries: list[AuditEntry]
    users: dict[int, User]
    page: int
    has_next: bool


def search(wanted: AuditFilter, *, page: int = 1, per_page: int = 50) -> AuditPage:
    """Return one page of entries, newest first, in two queries whatever the log's size."""
    page = max(1, page)
    query = select(AuditEntry)
    if wanted.user_id is not None:
        query = query.where(AuditEntry.user_id == wanted.user_id)
    if wanted.action:
        query = query.where(AuditEntry.action == wanted.action)
    if wanted.entity:
        query = query.where(AuditEntry.entity == wanted.entity)
    if wanted.entity_id is not None:
        query = query.where(AuditEntry.entity_id == wanted.entity_id)
    if wanted.since is not None:
        query = query.where(AuditEntry.at >= wanted.since)
    if wanted.until is not None:
        query = query.where(AuditEntry.at < wanted.until)
    # One more row than shown tells whether there is a next page without counting the log.
    rows = list(db.session.scalars(
        query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).offset((page - 1) * per_page).limit(per_page + 1)
    ))
    entries = rows[:per_page]
    user_ids = {entry.user_id for entry in entries if entry.user_id is not None}
    users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(user_ids)))} if user_ids else {}
    return AuditPage(entries=entries, users=users, page=page, has_next=len(rows) > per_page)


def _distinct(column: str) -> list[str]:
    # A loose index scan: one index probe per distinct value, not a pass over the whole log.
    return list(db.session.scalars(text(f"""
        WITH RECURSIVE seen(value) AS (
            SELECT MIN({column}) FROM audit_entries
            UNION ALL
            SELECT (SELECT MIN({column}) FROM audit_entries WHERE {column} > seen.value)
            FROM seen WHERE seen.value IS NOT NULL
        )
        SELECT value FROM seen WHERE value IS NOT NULL
    """)))


def choices() -> tuple[list[str], list[str]]:
    """Return the actions and the entities that occur in the log, for the filter menus."""
    return _distinct("action"), _distinct("entity")


def changes(entry: AuditEntry) -> list[tuple[str, Any, Any]]:
    """Return (field, before, after) for every field an entry mentions, in name order."""
    before, after = entry.before or {}, entry.after or {}
    if not isinstance(before, dict):
        before = {"value": before}
    if not isinstance(after, dict):
        after = {"value": after}
    return [(name, before.get(name), after.get(name)) for name in sorted(set(before) | set(after))]
