"""The shop's own settings: name, time zone, currency, default language and business hours.

Stored as one Setting row ("shop") that an admin edits in the app (Settings → Shop, and the
first-run /setup); the instance config (SHOP_NAME, SHOP_TIMEZONE, SHOP_CURRENCY …) only gives
the values until the shop saves its own. `current()` is what every page, import and rule reads.
Each process keeps the row for a few seconds (pages cost no extra query); `save` refreshes its own
process's copy at once, other web workers follow within CACHE_SECONDS. The app reads it once
at start, so no page pays for it.
"""
from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from flask import current_app, has_app_context
from sqlalchemy.exc import SQLAlchemyError

from crm.extensions import db
from crm.models import Setting
from crm.services.shared import wording
from crm.services.shared.errors import ValidationError
from crm.services.shared.languages import LANGUAGES  # noqa: F401 (the shop form lists them)
from crm.services.trust import audit

SETTING_KEY = "shop"
CACHE_SECONDS = 30.0
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class ShopSettings:
    name: str = "My shop"
    timezone: str = "UTC"
    currency: str = "EUR"
    language: str = "en"
    opens: str = "09:00"  # business hours, in the shop's time zone
    closes: str = "17:00"
    days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def hours_text(self) -> str:
        days = ", ".join(d.capitalize() for d in self.days) or "no days"
        return f"{days} {self.opens}–{self.closes}"


def _from_config() -> dict[str, Any]:
    if not has_app_context():
        return {}
    c = current_app.config
    found = {"name": c.get("SHOP_NAME"), "timezone": c.get("SHOP_TIMEZONE"), "currency": c.get("SHOP_CURRENCY"),
             "language": c.get("SHOP_LANGUAGE")}
    return {k: v for k, v in found.items() if v}


def _stored() -> dict[str, Any]:
    try:
        row = db.session.get(Setting, SETTING_KEY)
    except SQLAlchemyError:  # no settings table yet (a database never migrated)
        db.session.rollback()
        return {}
    return dict(row.value) if row is not None and isinstance(row.value, dict) else {}


def _build(values: dict[str, Any]) -> ShopSettings:
    known = {k: v for k, v in values.items() if k in ShopSettings.__dataclass_fields__}
    if "days" in known:
        known["days"] = tuple(known["days"])
    return ShopSettings(**known)


def _remember(settings: ShopSettings | None, config: dict | None = None) -> None:
    if has_app_context():
        current_app.extensions["crm.shop_settings"] = (time.monotonic(), settings, config or _from_config())


def current() -> ShopSettings:
    """Return the shop's settings: its own where saved, else the instance config, else defaults."""
    if not has_app_context():
        return ShopSettings()
    config = _from_config()
    cached = current_app.extensions.get("crm.shop_settings")
    if (cached is not None and cached[1] is not None and cached[2] == config
            and time.monotonic() - cached[0] < CACHE_SECONDS):
        return cached[1]
    settings = _build({**config, **_stored()})
    _remember(settings, config)
    return settings


def forget() -> None:
    """Drop this process's copy (a restore or a rolled-back save)."""
    _remember(None)


def is_saved() -> bool:
    """Whether the shop saved its own settings (the first-run setup does)."""
    return bool(_stored())


def validate(values: dict[str, Any]) -> dict[str, Any]:
    """Return the values cleaned (trimmed, upper-cased currency) or raise ValidationError naming each field."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    name = str(values.get("name") or "").strip()
    if not name:
        errors["name"] = "Give the shop's name."
    elif len(name) > 100:
        errors["name"] = "Keep the name under 100 characters."
    clean["name"] = name
    zone = str(values.get("timezone") or "").strip()
    if zone not in available_timezones():
        errors["timezone"] = "Choose a time zone from the list, e.g. Europe/Amsterdam."
    clean["timezone"] = zone
    currency = str(values.get("currency") or "").strip().upper()
    if not _CURRENCY.match(currency):
        errors["currency"] = "Give a three-letter currency code, e.g. EUR."
    clean["currency"] = currency
    language = str(values.get("language") or "").strip()
    if language not in LANGUAGES:
        errors["language"] = "Choose a language from the list."
    clean["language"] = language
    for key in ("opens", "closes"):
        text = str(values.get(key) or "").strip()[:5]
        if not _TIME.match(text):
            errors[key] = "Give a time such as 09:00."
        clean[key] = text
    if "opens" not in errors and "closes" not in errors and clean["opens"] >= clean["closes"]:
        errors["closes"] = "Closing time must be after opening time."
    days = [d for d in values.get("days") or () if d in WEEKDAYS]
    if not days:
        errors["days"] = "Tick at least one day the shop is open."
    clean["days"] = [d for d in WEEKDAYS if d in days]
    if errors:
        raise ValidationError("Some shop settings need a fix.", fields=errors)
    return clean


def save(values: dict[str, Any], actor_id: int | None) -> ShopSettings:
    """Validate and store the shop's settings (flushed, audited); return them."""
    clean = validate(values)
    row = db.session.get(Setting, SETTING_KEY)
    before = dict(row.value) if row is not None and isinstance(row.value, dict) else None
    if row is None:
        db.session.add(Setting(key=SETTING_KEY, value=clean))
    else:
        row.value = clean
    db.session.flush()
    audit.record("update" if before else "create", "setting", None, user_id=actor_id, before=before,
                 after={"key": SETTING_KEY, **clean})
    settings = _build(clean)
    _remember(settings)
    return settings


def money(amount, currency: str | None = None) -> str:
    """'€2,851.71' (or '2,851.71 SEK'): an amount in the shop's currency, for reasons people read."""
    return wording.money(amount, currency or current().currency)


def as_form_data(settings: ShopSettings | None = None) -> dict[str, Any]:
    values = asdict(settings or current())
    values["days"] = list(values["days"])
    return values


def use_currency(currency: str, actor_id: int | None) -> ShopSettings:
    """Change only the shop's currency, keeping the rest (validated, flushed, audited as `save`)."""
    return save({**asdict(current()), "currency": currency}, actor_id)
