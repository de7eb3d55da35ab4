"""The email settings: SMTP server, sender, links and throttle. Environment variables win.

Stored as one Setting row (``email.settings``). The password is stored, never shown back and
masked in the audit log. `effective()` merges the defaults, the stored values and the
environment (``CRM_SMTP_HOST`` …) and says which fields the environment fixed.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.utils import parseaddr
from typing import Any

from flask import current_app, has_app_context

from crm.extensions import db
from crm.models import Setting
from crm.services import shop
from crm.services.shared.errors import ValidationError
from crm.services.trust import audit

SETTING_KEY = "email.settings"
SECURITY = ("none", "starttls", "tls")
MASK = "********"

DEFAULTS: dict[str, Any] = {
    "smtp_host": "",
    "smtp_port": 25,
    "smtp_security": "none",
    "smtp_username": "",
    "smtp_password": "",
    "from_name": "",
    "from_address": "",
    "reply_to": "",
    "public_url": "",
    "shop_address": "",
    "per_minute": 60,
    "bounce_domain": "",
    # The optional bounce mailbox the worker polls (IMAP); empty host: not polled.
    "imap_host": "",
    "imap_port": 993,
    "imap_security": "tls",
    "imap_username": "",
    "imap_password": "",
    "imap_folder": "INBOX",
}
PASSWORDS = ("smtp_password", "imap_password")
# Field -> environment variable that wins over the page.
ENVIRONMENT = {
    "smtp_host": "CRM_SMTP_HOST",
    "smtp_port": "CRM_SMTP_PORT",
    "smtp_security": "CRM_SMTP_SECURITY",
    "smtp_username": "CRM_SMTP_USERNAME",
    "smtp_password": "CRM_SMTP_PASSWORD",
    "public_url": "CRM_PUBLIC_URL",
    "shop_address": "CRM_SHOP_ADDRESS",
    "bounce_domain": "CRM_BOUNCE_DOMAIN",
    "imap_host": "CRM_IMAP_HOST",
    "imap_port": "CRM_IMAP_PORT",
    "imap_security": "CRM_IMAP_SECURITY",
    "imap_username": "CRM_IMAP_USERNAME",
    "imap_password": "CRM_IMAP_PASSWORD",
    "imap_folder": "CRM_IMAP_FOLDER",
}


@dataclass
class EmailSettings:
    values: dict[str, Any]
    from_environment: set[str] = field(default_factory=set)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def configured(self) -> bool:
        return bool(self.values["smtp_host"] and self.values["from_address"])

    @property
    def mailbox_configured(self) -> bool:
        """Whether a bounce mailbox is set (the worker polls it)."""
        return bool(self.values["imap_host"] and self.values["imap_username"])

    @property
    def sender(self) -> Address:
        return Address(display_name=self.values["from_name"] or "", addr_spec=self.values["from_address"])

    def return_path(self, message_id: int) -> str:
        """The envelope sender: a VERP address naming the message when a bounce domain is set."""
        if self.values.get("bounce_domain"):
            return f"bounces+{message_id}@{self.values['bounce_domain']}"
        return self.values["from_address"]

    @property
    def sender_domain(self) -> str:
        return (self.values["from_address"].rpartition("@")[2] or "localhost").lower()


def _stored() -> dict[str, Any]:
    row = db.session.get(Setting, SETTING_KEY)
    return dict(row.value or {}) if row is not None else {}


def _environment(config: dict | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, variable in ENVIRONMENT.items():
        if os.environ.get(variable):
            found[name] = os.environ[variable]
    if os.environ.get("CRM_MAIL_FROM"):
        display, address = parseaddr(os.environ["CRM_MAIL_FROM"])
        found["from_name"], found["from_address"] = display, address
    # Tests and instance/config.py may set the same names in the app config (EMAIL_SMTP_HOST ...).
    for name in DEFAULTS:
        key = "EMAIL_" + name.upper()
        if config and config.get(key) not in (None, ""):
            found.setdefault(name, config[key])
    return found


def effective(config: dict | None = None) -> EmailSettings:
    """Return the settings in force: defaults, then the page, then the environment."""
    if config is None:
        config = current_app.config if has_app_context() else {}
    values = {**DEFAULTS, **_stored()}
    env = _environment(config)
    values.update(env)
    values["smtp_port"] = int(values["smtp_port"] or 25)
    values["imap_port"] = int(values["imap_port"] or 993)
    values["imap_folder"] = values["imap_folder"] or "INBOX"
    values["per_minute"] = max(1, int(values["per_minute"] or 60))
    if not values["public_url"]:
        values["public_url"] = (config or {}).get("PUBLIC_URL") or "http://localhost:5000"
    values["public_url"] = str(values["public_url"]).rstrip("/")
    values["shop_name"] = shop_name(config)
    return EmailSettings(values, set(env))


def shop_name(config: dict | None = None) -> str:
    """The shop's name as Settings → Shop has it (in an app context); else the config's, else "My shop"."""
    if has_app_context():
        return shop.current().name
    return (config or {}).get("SHOP_NAME") or "My shop"


def _no_newline(value: str, name: str, errors: dict[str, str]) -> None:
    if "\n" in value or "\r" in value:
        errors[name] = "Keep it on one line."


def clean(form: dict[str, Any]) -> dict[str, Any]:
    """Return the settings from a form, or raise ValidationError naming each bad field."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name in ("smtp_host", "smtp_username", "from_name", "from_address", "reply_to", "public_url", "bounce_domain",
                 "imap_host", "imap_username", "imap_folder"):
        values[name] = str(form.get(name) or "").strip()
        _no_newline(str(form.get(name) or ""), name, errors)
    values["shop_address"] = str(form.get("shop_address") or "").strip()[:500]
    security = str(form.get("smtp_security") or "none")
    if security not in SECURITY:
        errors["smtp_security"] = "Choose none, STARTTLS or TLS."
    values["smtp_security"] = security
    imap_security = str(form.get("imap_security") or "tls")
    if imap_security not in SECURITY:
        errors["imap_security"] = "Choose none, STARTTLS or TLS."
    values["imap_security"] = imap_security
    values["imap_folder"] = values["imap_folder"] or "INBOX"
    if not str(form.get("imap_port") or "").strip():
        form = {**form, "imap_port": DEFAULTS["imap_port"]}
    for name, low, high, what in (("smtp_port", 1, 65535, "a port from 1 to 65535"),
                                  ("imap_port", 1, 65535, "a port from 1 to 65535"),
                                  ("per_minute", 1, 10000, "a number of messages from 1 to 10,000")):
        try:
            number = int(str(form.get(name) or "").strip())
            if not low <= number <= high:
                raise ValueError
            values[name] = number
        except ValueError:
            errors[name] = f"Give {what}."
    for name in ("from_address", "reply_to"):
        if values[name] and name not in errors:
            try:
                Address(addr_spec=values[name])
                if "@" not in values[name]:
                    raise ValueError
            except (ValueError, IndexError, TypeError):
                errors[name] = "Give an email address such as hello@shop.example."
    if values["bounce_domain"] and not re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", values["bounce_domain"]):
        errors["bounce_domain"] = "Give a domain such as bounces.shop.example."
    if values["public_url"] and not values["public_url"].startswith(("http://", "https://")):
        errors["public_url"] = "Give the address starting with https:// (or http://)."
    for name in PASSWORDS:
        password = form.get(name)
        if password:
            if "\n" in password or "\r" in password:
                errors[name] = "Keep it on one line."
            values[name] = password
    if errors:
        raise ValidationError(fields=errors)
    return values


def save(form: dict[str, Any], actor_id: int | None) -> dict[str, Any]:
    """Store the settings from the page (an empty password keeps the stored one); audit with the passwords masked."""
    values = clean(form)
    row = db.session.get(Setting, SETTING_KEY)
    before = dict(row.value or {}) if row is not None else {}
    for name in PASSWORDS:
        if name not in values:
            values[name] = before.get(name, "")
    if row is None:
        row = Setting(key=SETTING_KEY, value=values)
        db.session.add(row)
    else:
        row.value = values
    db.session.flush()
    after = masked(values)
    for name in PASSWORDS:
        if values[name] and values[name] != before.get(name, ""):
            after[name] = MASK + " (changed)"  # the log says that it changed, never what to
    audit.record("update", "email_settings", None, user_id=actor_id, before=masked(before), after=after)
    return values


def masked(values: dict[str, Any]) -> dict[str, Any]:
    """Return the values with the passwords replaced by a mask (or empty when there is none)."""
    shown = dict(values)
    for name in PASSWORDS:
        if name in shown:
            shown[name] = MASK if shown[name] else ""
    return shown
