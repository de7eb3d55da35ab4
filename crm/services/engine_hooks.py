"""Where the engine (journey, score, to-do rules) is told that facts changed."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime


def after_contacts_changed(contact_ids: Iterable[int], now: datetime | None = None) -> None:
    """Re-derive stage, score and to-dos for these contacts in the current transaction."""
    ids = {int(i) for i in contact_ids if i is not None}
    if not ids:
        return
    from crm.services import engine  # the engine reads contacts; contacts call this hook

    engine.apply(ids, now)


def after_bulk_change(now: datetime | None = None) -> None:
    """Re-derive time-based state for everyone after a bulk load."""
    from crm.services import engine

    engine.refresh(now)
