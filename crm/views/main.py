"""The dashboard, and the words and links its charts are drawn with."""
from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, current_app, render_template
from flask_login import current_user

from crm.models import utcnow
from crm.services import insight, overview
from crm.services.clock import shop_zone
from crm.views.access import access
from crm.views.formatting import CURRENCY_SIGNS

bp = Blueprint("main", __name__)


@bp.route("/")
@access("read")
def dashboard():
    """Show the shop at a glance: the journey, who is slipping away, revenue and what is due today."""
    now = utcnow()
    zone = shop_zone().key
    return render_template(
        "main/dashboard.html", summary=overview.summary(now),
        insight=insight.dashboard(current_user.id, now, zone),
    )


@bp.app_template_filter()
def money_short(value) -> str:
    """Return an amount short enough for a chart label: €840, €12.3k, €1.2M."""
    if value is None:
        return "—"
    amount = Decimal(str(value))
    code = (current_app.config.get("SHOP_CURRENCY") or "EUR").upper()
    sign = CURRENCY_SIGNS.get(code)
    size = abs(amount)
    if size >= 1_000_000:
        text = f"{amount / 1_000_000:.1f}M"
    elif size >= 10_000:
        text = f"{amount / 1_000:.0f}k"
    elif size >= 1_000:
        text = f"{amount / 1_000:.1f}k"
    else:
        text = f"{amount:.0f}"
    text = text.replace(".0k", "k").replace(".0M", "M")
    return f"{sign}{text}" if sign else f"{text} {code}"


@bp.app_template_filter()
def percent(share) -> str:
    """Return a share (0…1) as a whole percentage; "<1%" rather than a misleading 0% for a few."""
    if share is None:
        return "—"
    value = float(share) * 100
    if 0 < value < 1:
        return "<1%"
    if 99 < value < 100:
        return ">99%"
    return f"{value:.0f}%"


@bp.app_template_filter()
def duration(seconds) -> str:
    """Return a length of time in the largest unit that reads well: "5 hours", "12 days", "5 weeks"."""
    if seconds is None:
        return "—"
    seconds = abs(float(seconds))
    days = seconds / 86400
    for limit, size, unit in ((1, 3600, "hour"), (14, 1, "day"), (61, 7, "week"), (730, 30.44, "month")):
        if days < limit:
            count = round(seconds / size) if unit == "hour" else round(days / size)
            if unit == "hour" and count < 1:
                return "under an hour"
            return f"{count} {unit}{'' if count == 1 else 's'}"
    years = round(days / 365.25, 1)
    return f"{years:g} year{'' if years == 1 else 's'}"
