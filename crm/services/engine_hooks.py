"""Where the engine (journey, score, to-do rules) is told that facts changed."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime


def after_contacts_changed(contact_ids: Iterable[int], now: datetime | None = None) -> None:
    """Re-derive stage, score and to-dos for these contacts in the current transaction."""


def after_bulk_change(now: datetime | None = None) -> None:
    """Re-derive time-based state for everyone after a bulk load."""
