"""Rendering a template: Markdown with sandboxed Jinja variables -> subject, HTML (inlined CSS,
sanitised) and a plain-text part.

Staff write templates, so they run in Jinja's SandboxedEnvironment with StrictUndefined over
plain dictionaries holding only the documented variables: `{{ ''.__class__ }}` or an unknown
name is an error, reported with its line, never a leak.
"""
from __future__ import annotations

import traceback
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import css_inline
import nh3
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from markdown_it import MarkdownIt

# The variables a template may use, as documented on the editor page.
VARIABLES: dict[str, str] = {
    "contact.first_name": "first name", "contact.last_name": "last name", "contact.name": "full name",
    "contact.email": "email address", "contact.company": "company", "contact.city": "city",
    "contact.country": "country code", "contact.birthday": "birthday (a date)",
    "contact.order_count": "paid orders", "contact.total_spent": "total spent",
    "order.number": "the last order's number", "order.placed_at": "when it was placed",
    "order.total": "its total", "order.currency": "its currency",
    "order.lines": "its lines, each with name, sku, quantity, unit_price",
    "shop.name": "the shop's name", "shop.url": "the shop's public address", "shop.address": "postal address",
    "sender.name": "the person sending",
    "links.scores": "eleven one-click answer links, 0 to 10 (a survey)",
    "links.testimonial": "a link to leave a testimonial",
}
TOP_LEVEL = ("contact", "order", "shop", "sender", "links")
TEMPLATE_NAME = "template"

LAYOUT_CSS = """
body { margin: 0; padding: 0; background: #f4f4f5; }
.wrap { max-width: 600px; margin: 0 auto; padding: 24px 16px; font-family: -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; font-size: 16px; line-height: 1.5; color: #1f2933; }
.card { background: #ffffff; border-radius: 6px; padding: 24px; }
a { color: #1d4ed8; }
h1, h2, h3 { line-height: 1.25; color: #111827; }
table { border-collapse: collapse; width: 100%; }
td, th { padding: 4px 8px; border-bottom: 1px solid #e5e7eb; text-align: left; }
.footer { color: #6b7280; font-size: 13px; padding: 16px 8px; text-align: center; }
.footer a { color: #6b7280; }
"""
LAYOUT = """<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>{css}</style></head>
<body><div class="wrap"><div class="card">{body}</div><div class="footer">{footer}</div></div></body></html>"""

ALLOWED_TAGS = {
    "a", "p", "br", "hr", "strong", "em", "b", "i", "ul", "ol", "li", "blockquote", "code", "pre",
    "h1", "h2", "h3", "h4", "table", "thead", "tbody", "tr", "th", "td", "img", "del", "s",
}


class TemplateProblem(Exception):
    """A template that does not compile or uses something it may not; says where and why."""

    def __init__(self, part: str, line: int | None, reason: str):
        super().__init__(f"{part}, line {line}: {reason}" if line else f"{part}: {reason}")
        self.part, self.line, self.reason = part, line, reason


@dataclass
class Rendered:
    subject: str
    html: str
    text: str


class _Environment(SandboxedEnvironment):
    pass


# The language the message being rendered is written in: `|date` and `|money` follow it.
_LANGUAGE: ContextVar[str] = ContextVar("email_language", default="en")


def _money(value: Any, currency: str = "") -> str:
    amount = Decimal(str(value or 0))
    language = _LANGUAGE.get()
    if language == "en":
        return f"{amount:.2f}" + (f" {currency}" if currency else "")
    try:
        if currency:
            return format_currency(amount, currency, locale=language)
        return format_decimal(amount, format="#,##0.00", locale=language)
    except (ValueError, LookupError):
        return f"{amount:.2f}" + (f" {currency}" if currency else "")


def _date(value: Any, fmt: str | None = None) -> str:
    if not isinstance(value, (date, datetime)):
        return ""
    if fmt is not None or _LANGUAGE.get() == "en":
        return value.strftime(fmt or "%-d %B %Y")
    try:
        return format_date(value, "d MMMM y", locale=_LANGUAGE.get())
    except (ValueError, LookupError):
        return value.strftime("%-d %B %Y")


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    env = _Environment(undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True)
    env.filters["money"] = _money
    env.filters["date"] = _date
    return env


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    # Raw HTML in a template is not passed through; links and emphasis are.
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")


@lru_cache(maxsize=512)
def _compile(source: str, part: str):
    try:
        return environment().from_string(source)
    except TemplateSyntaxError as error:
        raise TemplateProblem(part, error.lineno, error.message or "does not compile") from None


def _line_of(error: BaseException) -> int | None:
    line = getattr(error, "lineno", None)
    if line:
        return line
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if frame.filename == "<template>":
            return frame.lineno
    return None


def _render_part(source: str, part: str, context: dict[str, Any]) -> str:
    template = _compile(source, part)
    try:
        return template.render(context)
    except TemplateProblem:
        raise
    except (TemplateError, TypeError, ValueError, AttributeError, ArithmeticError, KeyError, IndexError) as error:
        reason = str(error) or type(error).__name__
        if type(error).__name__ == "SecurityError":
            reason = f"not allowed: {reason}"
        raise TemplateProblem(part, _line_of(error), reason) from None


def one_line(text: str) -> str:
    """Return a header value on one line: newlines fold to spaces, never a new header."""
    return " ".join(str(text).split())


def markdown_to_html(markdown: str) -> str:
    """Return sanitised HTML for a Markdown text (links keep http, https and mailto only)."""
    html = _markdown().render(markdown)
    return nh3.clean(html, tags=ALLOWED_TAGS, url_schemes={"http", "https", "mailto"},
                     link_rel="noopener noreferrer")


def render(subject: str, body: str, context: dict[str, Any], *, footer_text: str = "", footer_html: str = "",
           language: str = "en") -> Rendered:
    """Render a subject and a Markdown body for one contact; raise TemplateProblem naming the line.
    Dates and amounts are written the way the language writes them."""
    token = _LANGUAGE.set(language)
    try:
        rendered_subject = one_line(_render_part(subject, "Subject", context))
        markdown = _render_part(body, "Body", context).strip()
    finally:
        _LANGUAGE.reset(token)
    body_html = markdown_to_html(markdown)
    html = LAYOUT.format(lang=language, title=nh3.clean_text(rendered_subject), css=LAYOUT_CSS, body=body_html, footer=footer_html)
    html = _inliner().inline(html)
    text = markdown + ("\n\n-- \n" + footer_text if footer_text else "") + "\n"
    return Rendered(rendered_subject, html, text)


@lru_cache(maxsize=1)
def _inliner():
    return css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)


def sample_context(shop: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return a context with every documented variable filled, to check a template at save."""
    return {
        "contact": {"first_name": "Ada", "last_name": "Lovelace", "name": "Ada Lovelace", "email": "ada@example.com",
                    "company": "Analytical Engines", "city": "London", "country": "GB", "birthday": date(1815, 12, 10),
                    "order_count": 2, "total_spent": Decimal("84.50")},
        "order": {"number": "#1002", "placed_at": datetime(2026, 5, 1, 10, 0), "total": Decimal("42.25"), "currency": "EUR",
                  "lines": [{"name": "Sencha", "sku": "TEA-1", "quantity": 2, "unit_price": Decimal("12.00")}]},
        "shop": shop or {"name": "My shop", "url": "https://shop.example", "address": "1 High Street"},
        "sender": {"name": "Sam from support"},
        "links": {"scores": [f"https://shop.example/a/sample?score={n}" for n in range(11)],
                  "testimonial": "https://shop.example/a/sample"},
    }


def check(subject: str, body: str, shop: dict[str, Any] | None = None) -> None:
    """Raise TemplateProblem when a template does not compile or uses an unknown variable."""
    render(subject, body, sample_context(shop))
    # A contact without orders must not break a template either; `order` is then empty.
    render(subject, body, {**sample_context(shop), "order": _empty_order()})


def _empty_order() -> dict[str, Any]:
    return {"number": "", "placed_at": None, "total": Decimal("0"), "currency": "", "lines": []}


def context_for(contact, last_order, shop: dict[str, Any], sender_name: str = "",
                links: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the documented variables for one contact and their last order."""
    order = _empty_order()
    if last_order is not None:
        order = {"number": last_order.number or "", "placed_at": last_order.placed_at, "total": last_order.total,
                 "currency": last_order.currency or "",
                 "lines": [{"name": line.name or "", "sku": line.sku or "", "quantity": line.quantity,
                            "unit_price": line.unit_price} for line in last_order.lines]}
    return {
        "contact": {"first_name": contact.first_name or "", "last_name": contact.last_name or "", "name": contact.name,
                    "email": contact.email_display or contact.email or "", "company": contact.company or "",
                    "city": contact.city or "", "country": contact.country or "", "birthday": contact.birthday,
                    "order_count": contact.order_count, "total_spent": contact.total_spent},
        "order": order,
        "shop": shop,
        "sender": {"name": sender_name},
        "links": links or {"scores": [], "testimonial": ""},
    }
