"""Which language a page is written in, and the shop's time zone for Babel's dates.

A signed-in user's own choice (on /account) wins; then the browser's Accept-Language among the
languages the CRM has; then the shop's language; then English. /login and /setup have no user, so
they follow the browser.
"""
from __future__ import annotations

from functools import cache
from pathlib import Path

from flask import Flask, g, has_request_context, request
from flask_login import current_user

from flask_babel import Domain, get_locale, refresh

from crm.extensions import babel
from crm.services import shop

DEFAULT = "en"
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"


@cache
def available() -> tuple[str, ...]:
    """The languages the CRM is written in: English plus every catalogue in crm/translations."""
    found = sorted(p.name for p in TRANSLATIONS.iterdir() if (p / "LC_MESSAGES").is_dir()) if TRANSLATIONS.is_dir() else []
    return (DEFAULT, *[code for code in found if code != DEFAULT])


def supported(code: str | None) -> str | None:
    """Return ``code`` (or its base language, "nl" for "nl-BE") when the CRM has it, else None."""
    if not code:
        return None
    code = code.replace("-", "_").split("_")[0].lower()
    return code if code in available() else None


def select_locale() -> str:
    if not has_request_context():  # a CLI command or a job rendering a page: the shop's language
        return supported(shop.current().language) or DEFAULT
    if request.path.startswith("/api/"):
        # The API answers in English (codes, not sentences); only its messages follow Accept-Language.
        return request.accept_languages.best_match(available()) or DEFAULT
    user_choice = getattr(current_user, "language", None) if current_user and current_user.is_authenticated else None
    if chosen := supported(user_choice):
        return chosen
    if browser := request.accept_languages.best_match(available()):
        return browser
    return supported(shop.current().language) or DEFAULT


def page_language() -> str:
    """The page's language for <html lang>: "en", "nl"."""
    return str(get_locale() or DEFAULT).replace("_", "-")


def select_timezone() -> str:
    return shop.current().timezone


class RequestDomain(Domain):
    """Flask-Babel's message domain, its translations kept for the request beside the locale they
    are for. Flask-Babel looks them up again for every string (the locale's identifier rebuilt, the
    request context found three times): about 40 µs a string, and a list of fifty to-dos translates
    five hundred. Keyed by the locale object Babel holds, so `refresh()` and `force_locale` (which
    replace it) are followed at once. Serves the templates' _() and the code's (lazy) gettext alike."""

    def get_translations(self):
        state = getattr(g, "_flask_babel", None) if g else None
        locale = getattr(state, "babel_locale", None)
        kept = getattr(state, "crm_translations", None)
        if kept is not None and locale is not None and kept[0] is locale:
            return kept[1]
        found = super().get_translations()
        state = getattr(g, "_flask_babel", None) if g else None
        if state is not None:
            state.crm_translations = (getattr(state, "babel_locale", None), found)
        return found


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone,
                   default_translation_directories=str(TRANSLATIONS))
    # Every gettext (templates and code) through the translations kept for the request.
    babel.domain_instance = RequestDomain()
    # Babel keeps the chosen locale on `g`, which lives as long as the app context: choose again
    # for every request (a test, or a CLI command, may serve several in one context).
    app.before_request(refresh)
    app.jinja_env.globals["page_language"] = page_language
