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
from jinja2 import pass_eval_context
from markupsafe import Markup

from flask_babel import Domain, get_locale, get_translations, refresh

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
        kept = _kept_translations()
        if kept is not None:
            return kept
        found = super().get_translations()
        state = _babel_state()
        if state is not None:
            state.crm_translations = (getattr(state, "babel_locale", None), found)
        return found


def _babel_state():
    """What Flask-Babel keeps for this request on `g` (its locale, and our translations beside it),
    or None when it has looked nothing up yet or there is no app context. Flask-Babel's private
    attribute, read here only."""
    try:
        return g._flask_babel
    except (AttributeError, RuntimeError):
        return None


def chosen_locale():
    """The locale Flask-Babel chose for this request, or None before it chose one (`get_locale()`
    finds the same, slower)."""
    return getattr(_babel_state(), "babel_locale", None)


def _kept_translations():
    """The request's translations kept by RequestDomain, or None when there are none yet (or they
    are for another locale than the one Babel now holds)."""
    kept = getattr(_babel_state(), "crm_translations", None)
    if kept is not None and kept[0] is not None and kept[0] is chosen_locale():
        return kept[1]
    return None


def request_translations():
    """The translations for this request: the kept ones, else found through Flask-Babel (which keeps them)."""
    kept = _kept_translations()
    return kept if kept is not None else get_translations()


# The templates' _(), gettext and ngettext as Jinja's i18n extension defines them (newstyle: the
# translation is a format string, escaped variables put in when autoescaping), but asking only for the
# evaluation context. Jinja's own take the whole context, so inside a {% for %} every call first copied
# the template's context with the loop's variables (`Context.derived`): 15 µs a string, 500 on /tasks.
def _filled(eval_ctx, translated: str, variables: dict) -> str:
    """The translation with its variables put in, escaped when the template autoescapes (Jinja's newstyle)."""
    return (Markup(translated) if eval_ctx.autoescape else translated) % variables


@pass_eval_context
def template_gettext(eval_ctx, string: str, **variables) -> str:
    translations = request_translations()
    if variables or not eval_ctx.autoescape:
        return _filled(eval_ctx, translations.ugettext(string), variables)
    # Without variables: the same Markup each time, kept beside the translations it came from.
    try:
        return translations.crm_markup[string]
    except AttributeError:
        translations.crm_markup = {}
    except KeyError:
        pass
    translated = _filled(eval_ctx, translations.ugettext(string), {})
    if len(translations.crm_markup) < 5000:  # the templates' own strings; a stored message may be anything
        translations.crm_markup[string] = translated
    return translated


@pass_eval_context
def template_ngettext(eval_ctx, singular: str, plural: str, num: int, **variables) -> str:
    variables.setdefault("num", num)
    return _filled(eval_ctx, request_translations().ungettext(singular, plural, num), variables)


@pass_eval_context
def template_pgettext(eval_ctx, context: str, string: str, **variables) -> str:
    variables.setdefault("context", context)
    return _filled(eval_ctx, request_translations().upgettext(context, string), variables)


@pass_eval_context
def template_npgettext(eval_ctx, context: str, singular: str, plural: str, num: int, **variables) -> str:
    variables.setdefault("context", context)
    variables.setdefault("num", num)
    return _filled(eval_ctx, request_translations().unpgettext(context, singular, plural, num), variables)


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone,
                   default_translation_directories=str(TRANSLATIONS))
    # Every gettext (templates and code) through the translations kept for the request.
    babel.domain_instance = RequestDomain()
    # Babel keeps the chosen locale on `g`, which lives as long as the app context: choose again
    # for every request (a test, or a CLI command, may serve several in one context).
    app.before_request(refresh)
    app.jinja_env.globals["page_language"] = page_language
    app.jinja_env.globals.update(_=template_gettext, gettext=template_gettext, ngettext=template_ngettext,
                                 pgettext=template_pgettext, npgettext=template_npgettext)
