"""Where the services say that facts changed: two blinker signals (as indico does) that the engine
(journey, score, to-do rules) receives. The services that write never import the engine; the
engine connects itself (crm.services.rules.engine.connect) when the app is made."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from blinker import Namespace

signals = Namespace()
# Sent with ids (a set of contact ids) and now: re-derive these contacts in the current transaction.
contacts_changed = signals.signal("contacts-changed")
# Sent with now after a bulk load: re-derive time-based state for everyone.
bulk_changed = signals.signal("bulk-changed")
# Sent with ids and now after orders came in on their own (webhook, API, form): the worker queues
# the shop-wide figures (crm.services.jobs.maintenance). Without a receiver they wait for the night.
orders_recorded = signals.signal("orders-recorded")


def _send(signal, **kwargs):
    """Send to the one receiver (the engine) and return its answer (the engine's summary)."""
    if not signal.receivers:
        # A write nobody reacts to would leave stages, scores and to-dos stale without a word.
        raise RuntimeError(f"Nothing receives {signal.name!r}: make the app with crm.create_app.")
    answers = signal.send(None, **kwargs)
    return answers[0][1] if answers else None


def after_contacts_changed(contact_ids: Iterable[int], now: datetime | None = None):
    """Re-derive stage, score and to-dos for these contacts in the current transaction; return
    the engine's summary (None when no contact was named)."""
    ids = {int(i) for i in contact_ids if i is not None}
    if not ids:
        return None
    return _send(contacts_changed, ids=ids, now=now)


def after_bulk_change(now: datetime | None = None):
    """Re-derive time-based state for everyone after a bulk load; return the engine's summary."""
    return _send(bulk_changed, now=now)


def after_orders_recorded(contact_ids: Iterable[int], now: datetime | None = None) -> None:
    """Say that orders came in for these contacts (what can wait goes to the worker)."""
    ids = {int(i) for i in contact_ids if i is not None}
    if ids:
        orders_recorded.send(None, ids=ids, now=now)
