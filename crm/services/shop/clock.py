"""The shop's calendar: which day it is in the shop's time zone, and where that day starts in UTC."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import has_app_context


def shop_zone() -> ZoneInfo:
    """Return the shop's time zone (Settings → Shop, else SHOP_TIMEZONE; UTC outside an app)."""
    if not has_app_context():
        return ZoneInfo("UTC")
    from crm.services import shop

    return shop.current().zone


def shop_today(now: datetime) -> date:
    """Return the shop's calendar date at `now`."""
    return now.astimezone(shop_zone()).date()


def start_of_shop_day(day: date) -> datetime:
    """Return the moment (aware, in the shop's zone) the shop's day `day` begins."""
    return datetime.combine(day, time(0, 0), tzinfo=shop_zone())


def shop_day_bounds(day: date) -> tuple[datetime, datetime]:
    """Return [start, end) of the shop's day `day` as aware datetimes."""
    return start_of_shop_day(day), start_of_shop_day(day + timedelta(days=1))
