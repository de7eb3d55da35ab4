"""Counting requests by hand where a decorator cannot say what to count: failed sign-ins per
address and per account, unsigned WooCommerce pings per address. The counts live in the
limiter's storage (RATELIMIT_STORAGE_URI), so several workers share them when it is Redis."""
from __future__ import annotations

import hashlib

from flask import current_app
from flask_limiter.util import get_remote_address
from limits import parse

from crm.extensions import limiter


def _enabled() -> bool:
    return bool(current_app.config.get("RATELIMIT_ENABLED", True)) and limiter.enabled


def _key(kind: str, value: str) -> tuple[str, str]:
    return "crm-" + kind, hashlib.sha256(value.encode()).hexdigest()[:32]


def within(setting: str, kind: str, value: str) -> bool:
    """Return whether `value` (an address, an account) is still under the limit `setting` names."""
    if not _enabled():
        return True
    try:
        return limiter.limiter.test(parse(current_app.config[setting]), *_key(kind, value))
    except Exception:  # storage gone: never lock people out because Redis is down
        return True


def count(setting: str, kind: str, value: str) -> bool:
    """Count one more for `value`; return whether it is still under the limit."""
    if not _enabled():
        return True
    try:
        return limiter.limiter.hit(parse(current_app.config[setting]), *_key(kind, value))
    except Exception:
        return True


def refuse(setting: str):
    """Answer 429 with Retry-After: the length of the limit's window."""
    from werkzeug.exceptions import TooManyRequests

    try:
        seconds = parse(current_app.config[setting]).get_expiry()
    except Exception:
        seconds = 60
    raise TooManyRequests("Too many attempts; wait a moment and try again.", retry_after=seconds)


def address() -> str:
    return get_remote_address() or "unknown"
