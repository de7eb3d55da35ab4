"""The dashboard, and the words and links its charts are drawn with."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import Blueprint, make_response, render_template, request, url_for
from flask_babel import format_decimal, ngettext
from flask_babel import gettext as _
from flask_login import current_user

from crm.models import utcnow
from crm.services import shop
from crm.services.insight import figures as insight
from crm.services.insight import shop_totals
from crm.services.rules import freshness
from crm.views.access import access
from crm.views.formatting import with_currency

bp = Blueprint("main", __name__)


def _month(text: str, field: str) -> date:
    try:
        return datetime.strptime(text.strip(), "%Y-%m").date()
    except ValueError:
        raise ValueError(_("%(field)s: %(text)s is not a month (YYYY-MM).", field=field, text=repr(text))) from None


def _as_of(text: str, zone: ZoneInfo, now: datetime) -> datetime:
    """Return the end of the given day in the shop's zone (capped at now)."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(_("As of: %(text)s is not a date (YYYY-MM-DD).", text=repr(text))) from None
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone) - timedelta(microseconds=1)
    return min(end, now)


def chosen_period(args, now: datetime, zone_name: str) -> tuple[insight.Period, insight.DataRange, list[str]]:
    """Return the period the URL asks for (default: the last 12 months up to now), the months with
    paid orders, and the errors in the request (a bad value falls back to the default, named)."""
    zone = ZoneInfo(zone_name)
    errors: list[str] = []
    as_of = now
    if args.get("as_of"):
        try:
            as_of = _as_of(args["as_of"], zone, now)
        except ValueError as error:
            errors.append(str(error))
    history = insight.data_range(as_of, zone)
    kind = args.get("period") or "12m"
    try:
        if kind not in insight.PERIOD_KINDS:
            raise ValueError(_("Period: %(kind)s is not one of %(kinds)s.", kind=repr(kind), kinds=", ".join(insight.PERIOD_KINDS)))
        year = start = end = None
        if kind == "year":
            text = (args.get("year") or "").strip()
            if not text.isdigit():
                raise ValueError(_("Year: %(text)s is not a year.", text=repr(text)) if text else _("Year: choose a year."))
            year = int(text)
        if kind == "range":
            start = _month(args.get("from") or "", _("From"))
            end = _month(args.get("to") or "", _("To"))
        return insight.period(kind, as_of, zone, year=year, start=start, end=end, history=history), history, errors
    except ValueError as error:
        errors.append(str(error))
        return insight.period("12m", as_of, zone), history, errors


@bp.route("/")
@access("read")
def dashboard():
    """Show the shop at a glance: the journey, who is slipping away, revenue and what is due today.

    The URL carries the period (`period=12m|year|range|all`, with `year=` or `from=`/`to=` months)
    and an `as_of=` day, so a view can be bookmarked; every figure sees only what happened by then.
    """
    now = utcnow()
    zone = shop.current().timezone
    shown, history, errors = chosen_period(request.args, now, zone)
    return render_template(
        "main/dashboard.html", summary=shop_totals.summary(shown.as_of),
        insight=insight.dashboard(current_user.id, now, zone, shown, history),
        period_errors=errors, period_args=request.args, explicit_as_of=bool(request.args.get("as_of")),
        updating=freshness.refresh_pending(),
    )


@bp.app_template_global()
def period_url(**changes) -> str:
    """Return the dashboard's URL with the current period arguments changed (None removes one)."""
    args = {key: value for key, value in request.args.items() if key in ("period", "year", "from", "to", "as_of")}
    args.update(changes)
    return url_for("main.dashboard", **{key: value for key, value in args.items() if value not in (None, "")})


@bp.route("/updating")
@access("read")
def updating():
    """The dashboard's "updating…" note while a refresh is on its way; once done, reload the page."""
    pending = freshness.refresh_pending()
    if pending is None:
        response = make_response("")
        response.headers["HX-Refresh"] = "true"
        return response
    return render_template("main/_updating.html", updating=pending)


@bp.app_template_filter()
def money_short(value) -> str:
    """Return an amount short enough for a chart label: €840, €12k, €1.2M (€ 1,2M in Dutch)."""
    if value is None:
        return "—"
    amount = Decimal(str(value))
    size = abs(amount)
    if size >= 1_000_000:
        number = format_decimal(size / 1_000_000, format="0.#") + "M"
    elif size >= 10_000:
        number = format_decimal(size / 1_000, format="0") + "k"
    elif size >= 1_000:
        number = format_decimal(size / 1_000, format="0.#") + "k"
    else:
        number = format_decimal(size, format="0")
    negative = amount < 0 and number.strip("0kM") != ""  # "−€840", never "€-840"; nothing for −0.20
    return with_currency(number, negative)


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
    if days < 1:
        count = round(seconds / 3600)
        return _("under an hour") if count < 1 else ngettext("%(num)d hour", "%(num)d hours", count)
    if days < 14:
        return ngettext("%(num)d day", "%(num)d days", round(days))
    if days < 61:
        return ngettext("%(num)d week", "%(num)d weeks", round(days / 7))
    if days < 730:
        return ngettext("%(num)d month", "%(num)d months", round(days / 30.44))
    years = round(days / 365.25, 1)
    return ngettext("%(years)s year", "%(years)s years", years, years=format_decimal(years, format="0.#"))


@bp.app_template_global()
def period_label(shown) -> str:
    """The chosen period in the reader's words: "the last 12 months", "2025", "Mar 2024 – Feb 2025"."""
    from crm.views.formatting import format_date

    if shown.kind == "12m":
        return _("the last 12 months")
    if shown.kind == "year":
        return str(shown.first // 12)
    if shown.kind == "all":
        return _("all history")
    return f"{format_date(shown.first_month, '%b %Y')} – {format_date(shown.last_month, '%b %Y')}"
