"""The audit log: one function that records who did what to which record."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from crm.extensions import db
from crm.models import AuditEntry, utcnow


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
