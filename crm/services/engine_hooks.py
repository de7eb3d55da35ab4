"""Where the engine (journey, score, to-do rules) is told that facts changed."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime


def after_contacts_changed(contact_ids: Iterable[int], now: datetime | None = None):
    """Re-derive stage, score and to-dos for these contacts in the current transaction; return
    the engine's summary (None when no contact was named)."""
    ids = {int(i) for i in contact_ids if i is not None}
    if not ids:
        return None
    from crm.services import engine  # the engine reads contacts; contacts call this hook

    return engine.apply(ids, now)


def after_bulk_change(now: datetime | None = None):
    """Re-derive time-based state for everyone after a bulk load; return the engine's summary."""
    from crm.services import engine

    return engine.refresh(now)
