"""Template filters and globals: money, shop-local times, navigation."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from flask import Flask, current_app, request, url_for
from flask_babel import lazy_gettext as _l

from crm.services import shop
from crm.services.contacts import display_phone
from crm.services.clock import shop_zone
from crm.services.wording import CURRENCY_SIGNS
from crm.views import access


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


def human_size(size: int) -> str:
    """Return a byte count as people say it: 2,048 MB, 12 KB, 900 bytes."""
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:,.0f} MB"
    if size >= 1024:
        return f"{size / 1024:,.0f} KB"
    return f"{size} bytes"


def local(value: datetime | None) -> datetime | None:
    """Return a UTC datetime in the shop's time zone."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(shop_zone())


def format_money(value, currency: str | None = None) -> str:
    if value is None:
        return "—"
    amount = Decimal(str(value)).quantize(Decimal("0.01"))
    code = (currency or shop.current().currency).upper()
    sign = CURRENCY_SIGNS.get(code)
    # A minus goes before the currency sign ("−€12.50", never "€-12.50").
    minus = "−" if amount < 0 else ""
    text = f"{abs(amount):,.2f}"
    return f"{minus}{sign}{text}" if sign else f"{minus}{text} {code}"


def format_datetime(value: datetime | None, fmt: str = "%-d %b %Y %H:%M") -> str:
    value = local(value)
    return value.strftime(fmt) if value else "—"


def format_date(value: datetime | date | None, fmt: str = "%-d %b %Y") -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        value = local(value)
    return value.strftime(fmt)


def time_ago(value: datetime | None, now: datetime | None = None) -> str:
    """Return "3 days ago", "in 2 hours", "just now" for a UTC datetime."""
    if value is None:
        return "never"
    now = now or datetime.now(timezone.utc)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    seconds = (now - value).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            text = f"{count} {unit}{'s' if count != 1 else ''}"
            return f"in {text}" if future else f"{text} ago"
    return "just now"


# Where a record of an entity is shown, by the endpoint each area is expected to provide.
RECORD_PAGES = {
    "contact": ("contacts.detail", "contacts.show", "contacts.view"),
    "order": ("orders.detail", "orders.show", "orders.view"),
    "task": ("tasks.detail", "tasks.show"),
    "import_run": ("imports.detail", "imports.report", "imports.show"),
}


def contact_url(contact_id: int) -> str:
    """Return the link to a contact's page."""
    return url_for("contacts.show", contact_id=contact_id)


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
    app.jinja_env.globals["navigation"] = navigation
    app.jinja_env.globals["contact_url"] = contact_url
    app.jinja_env.globals["record_url"] = record_url
    app.jinja_env.globals["shop_name"] = lambda: shop.current().name
    app.jinja_env.globals["shop_settings"] = shop.current
