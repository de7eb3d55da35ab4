"""Plain-language pieces for the reasons rules give: dates, durations, counts.

Dates are the UTC calendar date of an aware datetime (times are stored in UTC);
month names are fixed English words, not the process locale.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache

from crm.services.shared.said import (  # noqa: F401
    CURRENCY_SIGNS,
    N_,
    Day,
    Money,
    Np_,
    Ordinal,
    Said,
    said,
    said_plural,
)


def require_aware(value: datetime, name: str = "datetime") -> datetime:
    """Return ``value`` in UTC; refuse a naive datetime, which would be ambiguous."""
    if value.tzinfo is UTC:  # as read from the database: already in UTC
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware (UTC) datetime, got naive {value!r}")
    return value.astimezone(UTC)


def utc_date(value: datetime | date) -> date:
    """The UTC calendar date of a datetime (a date is returned as is)."""
    if isinstance(value, datetime):
        return require_aware(value).date()
    return value


def days_between(earlier: datetime | date, later: datetime | date) -> int:
    """Whole calendar days from ``earlier`` to ``later`` (negative if ``earlier`` is later)."""
    return (utc_date(later) - utc_date(earlier)).days


def format_date(value: datetime | date) -> str:
    """'3 May 2026'."""
    return str(Day(utc_date(value)))


def format_days(days: float) -> Said:
    """'1 day', '12 days' (rounded to whole days)."""
    return _whole_days(int(round(days)))


# The rules name a few hundred day counts a hundred thousand times a refresh: each sentence is
# made once (a Said is never changed once made).
@lru_cache(maxsize=4096)
def _whole_days(n: int) -> Said:
    return said_plural(Np_(n, "%(num)s day", "%(num)s days"), n)


# An interaction's kind as a reason names it inside a sentence ("negative call"). The reasons keep
# the kind's code as the value %(kind)s (language-neutral, as stored); the pages show this word of
# the reader's language in its place (crm.views.said).
INTERACTION_WORDS = {
    "call": N_("call"), "email": N_("email"), "chat": N_("chat"), "meeting": N_("meeting"), "note": N_("note"),
    "complaint": N_("complaint"), "testimonial": N_("testimonial"), "review": N_("review"),
    "survey": N_("survey"), "sms": N_("text message"), "social": N_("social media message"),
    "cart": N_("abandoned cart"),
}


@lru_cache(maxsize=4096)
def ago(days: int) -> Said:
    """'today', '1 day ago', '12 days ago'; a future date reads 'in 3 days'."""
    if days == 0:
        return said(N_("today"))
    if days < 0:
        return said(N_("in %(days)s"), days=format_days(-days))
    return said(N_("%(days)s ago"), days=format_days(days))


def ordinal(n: int) -> str:
    """'1st', '2nd', '3rd', '4th', '11th', '22nd'."""
    return str(Ordinal(n))


def plural(n: int, word: str, plural_word: str | None = None) -> str:
    """'1 order', '3 orders'."""
    return f"{n} {word if n == 1 else (plural_word or word + 's')}"




def money(amount, currency: str) -> str:
    """'€2,851.71' (or '2,851.71 SEK'): an amount with its currency, for reasons people read."""
    return str(Money(amount, currency))
