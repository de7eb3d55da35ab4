"""Template filters and globals: money, shop-local times, navigation."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache

from babel import Locale, dates, numbers
from babel.numbers import get_currency_symbol
from flask import Flask, current_app, request, url_for
from flask_babel import format_decimal, get_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from crm.services import shop
from crm.services.people.contacts import display_phone
from crm.services.shared.wording import CURRENCY_SIGNS
from crm.services.shop.clock import shop_zone
from crm.views import access
from crm.views.languages import DEFAULT, chosen_locale

NAVIGATION = (
    (_l("Dashboard"), "main.dashboard"),
    (_l("Contacts"), "contacts.index"),
    (_l("Segments"), "segments.index"),
    (_l("Newsletters"), "campaigns.index"),
    (_l("Leads"), "leads.index"),
    (_l("To-dos"), "tasks.index"),
    (_l("Orders"), "orders.index"),
    (_l("Imports"), "imports.index"),
    (_l("Settings"), "settings.index"),
)


def _locale() -> Locale:
    return chosen_locale() or get_locale() or Locale.parse(DEFAULT)


def _english() -> bool:
    return _locale().language == "en"


# The money pattern, parsed once (format_decimal parsed it for every amount).
_MONEY = numbers.parse_pattern("#,##0.00")
# A page's formatted values are kept for the page; a long-lived app context (a job) starts afresh past this.
_KEPT_VALUES = 5000


class _Formats:
    """The reader's locale and the shop's settings, and what the filters derive from them, found
    once per request: each |money, |date and |datetime looked them all up again (locale, shop,
    currency sign and placement, the pattern parsed), 15–40 µs a value, and a list shows 50 rows
    of them. Kept for the request beside the locale object they are for, so a language forced
    for an email is followed at once; the shop's settings are those the request began with (a
    saved shop form redirects)."""

    def __init__(self, locale: Locale, settings: shop.ShopSettings):
        self.locale = locale
        self.settings = settings
        self.english = locale.language == "en"
        self.zone = settings.zone
        self.currencies: dict[str, tuple[str, str]] = {}
        self.values: dict[tuple, str] = {}  # (filter, value, format): the formatted text, once per distinct value

    def currency(self, code: str) -> tuple[str, str]:
        found = self.currencies.get(code)
        if found is None:
            found = self.currencies[code] = _currency_pattern_for(code, self.locale, self.english)
        return found

    def keep(self, key: tuple, text: str) -> str:
        if len(self.values) >= _KEPT_VALUES:
            self.values.clear()
        self.values[key] = text
        return text


def _formats() -> _Formats:
    locale = _locale()
    try:
        environ = request.environ
    except RuntimeError:  # no request (a job, a command): nothing to keep them on
        return _Formats(locale, shop.current())
    kept = environ.get("crm.formats")
    if kept is None or kept.locale is not locale:
        kept = environ["crm.formats"] = _Formats(locale, shop.current())
    return kept


# The words stored as codes, as a reader sees them (templates: stage_name(c.stage), health_name(...)).
STAGE_NAMES = {"awareness": _l("Awareness"), "consideration": _l("Consideration"), "conversion": _l("Conversion"),
               "retention": _l("Retention"), "advocacy": _l("Advocacy")}
HEALTH_NAMES = {"active": _l("active"), "at_risk": _l("at risk"), "lapsed": _l("lapsed"), None: _l("unknown")}


def stage_name(stage: str | None) -> str:
    """"Awareness" (Oriëntatie in Dutch) for a stored stage code."""
    return str(STAGE_NAMES.get(stage, stage or "—"))


def health_name(health: str | None) -> str:
    """"at risk" (risico in Dutch) for a stored health code."""
    return str(HEALTH_NAMES.get(health, (health or "").replace("_", " ")))


def human_size(size: int) -> str:
    """Return a byte count as people say it: 2,048 MB, 12 KB, 900 bytes (2.048 MB in Dutch)."""
    if size >= 1024 * 1024:
        return _("%(size)s MB", size=format_decimal(round(size / 1024 / 1024), format="#,##0"))
    if size >= 1024:
        return _("%(size)s KB", size=format_decimal(round(size / 1024), format="#,##0"))
    return ngettext("%(num)s byte", "%(num)s bytes", size)


def local(value: datetime | None, zone=None) -> datetime | None:
    """Return a UTC datetime in the shop's time zone."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(zone or shop_zone())


def _currency_pattern_for(code: str, locale: Locale, english: bool) -> tuple[str, str]:
    """Return the sign of ``code`` in this language and how the language places it:
    ("€", "{sign}{number}") in English, ("€", "{sign}\u00a0{number}") in Dutch."""
    symbol = CURRENCY_SIGNS.get(code, "").strip() if english else ""
    symbol = symbol or get_currency_symbol(code, locale=locale)
    if symbol == code and not (english and code in CURRENCY_SIGNS):  # no sign in this language: the code after the amount ("3.00 SEK")
        return code, "{number} {sign}"
    pattern = locale.currency_formats["standard"].pattern.split(";")[0]
    before, _hash, after = pattern.partition("#") if "#" in pattern else pattern.partition("0")
    if "¤" in after:
        space = "\u00a0" if re.search(r"[\s\u00a0]¤", after) else ""
        return symbol, "{number}" + space + "{sign}"
    space = "\u00a0" if re.search(r"¤[\s\u00a0]", before) else ""
    if code in CURRENCY_SIGNS and CURRENCY_SIGNS[code].endswith(" ") and not space:
        space = " "  # "CHF 12.50"
    return symbol, "{sign}" + space + "{number}"


def with_currency(number: str, negative: bool, currency: str | None = None, formats: _Formats | None = None) -> str:
    """Put the currency sign to a formatted number as the reader's language does; a minus goes
    before the sign ("−€12.50", "−€ 12,50"), never between sign and number."""
    formats = formats or _formats()
    code = (currency or formats.settings.currency).upper()
    sign, pattern = formats.currency(code)
    return ("−" if negative else "") + pattern.format(sign=sign, number=number)


_CENT = Decimal("0.01")


def format_money(value, currency: str | None = None) -> str:
    """€1,234.50 in English, € 1.234,50 in Dutch; −€12.50 when negative."""
    if value is None:
        return "—"
    formats = _formats()
    key = ("money", value, currency)
    if (kept := formats.values.get(key)) is not None:
        return kept
    amount = Decimal(str(value)).quantize(_CENT)
    number = _MONEY.apply(abs(amount), formats.locale)  # format_decimal(abs(amount), format="#,##0.00")
    return formats.keep(key, with_currency(number, amount < 0, currency, formats))


# strftime codes the templates pass to |date and |datetime, as CLDR pattern letters.
_STRFTIME = {"%-d": "d", "%d": "dd", "%b": "MMM", "%B": "MMMM", "%Y": "y", "%y": "yy", "%-m": "M",
             "%m": "MM", "%H": "HH", "%M": "mm", "%a": "EEE", "%A": "EEEE"}


@cache
def _pattern(fmt: str) -> str:
    """Turn a strftime format into a Babel pattern; a month without a day is the standalone form."""
    parts = re.split(r"(%-?[a-zA-Z])", fmt)
    standalone = not any(code in ("%-d", "%d") for code in parts)
    out = []
    for part in parts:
        if part in _STRFTIME:
            code = _STRFTIME[part]
            out.append(code.replace("M", "L") if standalone and code.startswith("MMM") else code)
        elif part:
            out.append("'" + part.replace("'", "''") + "'" if re.search("[A-Za-z]", part) else part)
    return "".join(out)


def format_datetime(value: datetime | None, fmt: str | None = None) -> str:
    """5 Dec 2026 14:30 (5 dec 2026 14:30 in Dutch), in the shop's time zone."""
    if value is None:
        return "—"
    formats = _formats()
    key = ("datetime", value, fmt)
    if (kept := formats.values.get(key)) is not None:
        return kept
    value, locale = local(value, formats.zone), formats.locale
    if fmt:
        text = dates.format_datetime(value, _pattern(fmt), locale=locale)
    elif formats.english:
        text = dates.format_datetime(value, "d MMM y HH:mm", locale=locale)
    else:
        text = f"{dates.format_date(value, 'medium', locale=locale)} {dates.format_time(value, 'short', locale=locale)}"
    return formats.keep(key, text)


def format_date(value: datetime | date | None, fmt: str | None = None) -> str:
    """5 Dec 2026 (5 dec 2026 in Dutch); a datetime is first moved to the shop's time zone."""
    if value is None:
        return "—"
    formats = _formats()
    key = ("date", value, fmt)
    if (kept := formats.values.get(key)) is not None:
        return kept
    if isinstance(value, datetime):
        value = local(value, formats.zone)
    pattern = _pattern(fmt) if fmt else "d MMM y" if formats.english else "medium"
    return formats.keep(key, dates.format_date(value, pattern, locale=formats.locale))


_UNITS = (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400), ("day", 86400),
          ("hour", 3600), ("minute", 60))


def time_ago(value: datetime | None, now: datetime | None = None) -> str:
    """Return "3 days ago", "in 2 hours", "just now" for a UTC datetime (whole units, rounded down)."""
    if value is None:
        return _("never")
    now = now or datetime.now(timezone.utc)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    seconds = (now - value).total_seconds()
    sign = -1 if seconds < 0 else 1
    seconds = abs(seconds)
    for _unit, size in _UNITS:
        if seconds >= size:
            whole = int(seconds // size) * size
            # Babel picks the unit from the whole count, so "3 weeks ago" stays 3 weeks.
            return dates.format_timedelta(timedelta(seconds=-sign * whole), "second", threshold=1,
                                          add_direction=True, locale=_locale())
    return _("just now")


# Where a record of an entity is shown, by the endpoint each area is expected to provide.
RECORD_PAGES = {
    "contact": ("contacts.detail", "contacts.show", "contacts.view"),
    "order": ("orders.detail", "orders.show", "orders.view"),
    "task": ("tasks.detail", "tasks.show"),
    "import_run": ("imports.detail", "imports.report", "imports.show"),
}


# A row's id while its link is built once for the page; no other part of our URLs holds these digits.
_ROW_MARKER = 7_306_419_582_463_019
_ROW_MARKER_TEXT = str(_ROW_MARKER)


def row_url(endpoint: str, key: str, row_id: int, **values) -> str:
    """Return url_for(endpoint, **{key: row_id}, **values), for one row of a list: the link is built
    once per request with a marker for the id, and each row's id put in the marker's place (what
    Werkzeug's int converter writes, str(id)). url_for costs 7–9 µs a call, and a list of fifty
    to-dos built ten links a row. Anything but a plain int id is built by url_for itself."""
    if type(row_id) is not int:
        return url_for(endpoint, **{key: row_id}, **values)
    try:
        links = request.environ.setdefault("crm.row_urls", {})
        found = links.get(lookup := (endpoint, key, *sorted(values.items())))
    except (TypeError, RuntimeError):  # a value that cannot be a key (a list), or no request (a job's email)
        return url_for(endpoint, **{key: row_id}, **values)
    if found is None:
        parts = url_for(endpoint, **{key: _ROW_MARKER}, **values).split(_ROW_MARKER_TEXT)
        found = links[lookup] = tuple(parts) if len(parts) == 2 else ()
    if not found:
        return url_for(endpoint, **{key: row_id}, **values)
    return f"{found[0]}{row_id}{found[1]}"


def contact_url(contact_id: int) -> str:
    """Return the link to a contact's page."""
    return row_url("contacts.show", "contact_id", contact_id)


def record_url(entity: str, record_id: int | None) -> str | None:
    """Return the URL of the page showing one record, or None when no such page exists yet."""
    if record_id is None:
        return None
    for endpoint in RECORD_PAGES.get(entity, ()):
        rules = current_app.url_map.iter_rules(endpoint) if endpoint in current_app.view_functions else ()
        for rule in rules:
            if len(rule.arguments) == 1 and "GET" in (rule.methods or ()):
                return url_for(endpoint, **{next(iter(rule.arguments)): record_id})
    return None


def navigation():
    """Return the (label, url, active) entries of the areas that exist and the user may open."""
    items = []
    for label, endpoint in NAVIGATION:
        view = current_app.view_functions.get(endpoint)
        if view is None or not access.can(access.rule_for(view, "GET") or "admin"):
            continue
        active = request.endpoint is not None and request.endpoint.split(".")[0] == endpoint.split(".")[0]
        items.append((str(label), url_for(endpoint), active))
    return items


def init_app(app: Flask) -> None:
    app.jinja_env.filters["money"] = format_money
    app.jinja_env.filters["datetime"] = format_datetime
    app.jinja_env.filters["date"] = format_date
    app.jinja_env.filters["ago"] = time_ago
    app.jinja_env.filters["local"] = local
    app.jinja_env.filters["phone"] = display_phone
    app.jinja_env.globals["can"] = access.can
    app.jinja_env.globals["stage_name"] = stage_name
    app.jinja_env.globals["health_name"] = health_name
    app.jinja_env.globals["navigation"] = navigation
    app.jinja_env.globals["contact_url"] = contact_url
    app.jinja_env.globals["row_url"] = row_url
    app.jinja_env.globals["record_url"] = record_url
    app.jinja_env.globals["shop_name"] = lambda: shop.current().name
    app.jinja_env.globals["shop_settings"] = shop.current
