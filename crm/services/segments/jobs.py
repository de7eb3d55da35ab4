"""The nightly job that records every segment's size for the shop's day."""
from __future__ import annotations

from datetime import datetime, timezone

from crm.services.jobs import periodic_job
from crm.services.segments.store import record_segment_sizes
from crm.services.shop.clock import shop_zone

# When, in the shop's time zone, the sizes are recorded (before anyone looks at them in the morning).
NIGHTLY_AT = (2, 40)


def nightly(moment: datetime) -> bool:
    """Return whether `moment` (UTC) is the nightly minute in the shop's time zone."""
    local = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(shop_zone())
    return (local.hour, local.minute) == NIGHTLY_AT


@periodic_job(nightly, name="segments.record_sizes", lock="segments.record_sizes", label="Record segment sizes")
def record_sizes() -> int:
    """Record each segment's size for today (the shop's calendar); return how many were counted."""
    return record_segment_sizes()
