"""Never pester: the cap on marketing email per contact and the shop's sending window.

`earliest` is the one rule, pure (no database, no clock): given when a contact was sent marketing
messages, when a new one would like to go, and the pacing settings, it returns the earliest
moment at or after that wish when the message may go, or None when that moment is past the
point where the message is still relevant. Flows and newsletters both call it.

The guarantee (checked by a property test): sending each message at the moment `earliest`
returns, no contact ever receives more than `cap` marketing messages in any `period_days`
window [s, s + period), and nothing goes outside the window [window_start, window_end) in the
shop's time zone.
"""
from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Pacing:
    cap: int = 2
    period_days: int = 7
    window_start: time = time(9, 0)
    window_end: time = time(20, 0)
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))

    @property
    def period(self) -> timedelta:
        return timedelta(days=self.period_days)


def in_window(moment: datetime, pacing: Pacing) -> bool:
    local = moment.astimezone(pacing.zone).time()
    return pacing.window_start <= local < pacing.window_end


def into_window(moment: datetime, pacing: Pacing) -> datetime:
    """Return `moment` if it is inside the sending window, else the next opening of the window (UTC)."""
    if in_window(moment, pacing):
        return moment
    local = moment.astimezone(pacing.zone)
    day = local.date() if local.time() < pacing.window_start else local.date() + timedelta(days=1)
    for _ in range(3):  # a DST jump can swallow the opening hour; the next day will do
        opening = datetime.combine(day, pacing.window_start, tzinfo=pacing.zone).astimezone(UTC)
        if opening >= moment and in_window(opening, pacing):
            return opening
        day += timedelta(days=1)
    return opening


def within_cap(sent: list[datetime], moment: datetime, pacing: Pacing) -> bool:
    """Whether one more message at `moment` keeps every period-long window at or under the cap.
    `sent` is sorted."""
    if pacing.cap < 1:
        return False
    period = pacing.period
    low = bisect_left(sent, moment - period)
    nearby = sent[low:bisect_left(sent, moment + period)]
    points = sorted([*nearby, moment])
    # The fullest window holding `moment` starts at one of the messages in (moment - period, moment].
    for start in points:
        if moment - period < start <= moment:
            count = sum(1 for p in points if start <= p < start + period)
            if count > pacing.cap:
                return False
    return True


def earliest(sent: Iterable[datetime], want: datetime, pacing: Pacing,
             relevant_until: datetime | None = None) -> datetime | None:
    """Return the earliest moment at or after `want` a marketing message may go, or None when
    that is after `relevant_until` (the message is then skipped rather than delayed)."""
    history = sorted(sent)
    period = pacing.period
    candidates = sorted({want, *(h + period for h in history if h + period > want)})
    for candidate in candidates:
        moment = into_window(candidate, pacing)
        if relevant_until is not None and moment > relevant_until:
            return None
        if within_cap(history, moment, pacing):
            return moment
    # Past every message's period: only the window can hold it back.
    moment = into_window(max([want, *(h + period for h in history)]), pacing)
    if relevant_until is not None and moment > relevant_until:
        return None
    return moment if within_cap(history, moment, pacing) else None
