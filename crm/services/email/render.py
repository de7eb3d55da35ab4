"""Rendering a template: Markdown with sandboxed Jinja variables -> subject, HTML (inlined CSS,
sanitised) and a plain-text part.

Staff write templates, so they run in Jinja's SandboxedEnvironment with StrictUndefined over
plain dictionaries holding only the documented variables: `{{ ''.__class__ }}` or an unknown
name is an error, reported with its line, never a leak.
"""
from __future__ import annotations

import re
import secrets
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
from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, meta
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
           language: str = "en", tokens: tuple[str | None, ...] = ()) -> Rendered:
    """Render a subject and a Markdown body for one contact; raise TemplateProblem naming the line.
    Dates and amounts are written the way the language writes them.

    `tokens` are the signed tokens inside the context's links and the footer (they differ for every
    message): naming them lets the HTML be made once for many messages (see `_html`)."""
    token = _LANGUAGE.set(language)
    try:
        rendered_subject = one_line(_render_part(subject, "Subject", context))
        markdown = _render_part(body, "Body", context).strip()
        html = _html(body, markdown, rendered_subject, context, footer_html, language, tokens)
    finally:
        _LANGUAGE.reset(token)
    text = markdown + ("\n\n-- \n" + footer_text if footer_text else "") + "\n"
    return Rendered(rendered_subject, html, text)


def _document(markdown: str, subject: str, footer_html: str, language: str) -> str:
    """The message's HTML: the Markdown made HTML and sanitised, in the layout, CSS inlined."""
    body_html = markdown_to_html(markdown)
    html = LAYOUT.format(lang=language, title=nh3.clean_text(subject), css=LAYOUT_CSS, body=body_html, footer=footer_html)
    return _inliner().inline(html)


# -- the HTML once for many messages ------------------------------------------------------------
#
# Markdown, nh3 and css-inline cost ten times what the rest of a message costs, and a newsletter's
# messages differ only in a few values (the first name, the signed tokens in the links). So the
# body is rendered a second time with each such value replaced by a placeholder; that Markdown is
# made HTML once (an LRU keyed on it), and each message's HTML is that document with the
# placeholders replaced by its values. This is used only where it gives exactly the HTML the
# message would get by itself (else the message is rendered alone):
#
# - the placeholders put back into the placeholder Markdown give this message's Markdown exactly
#   (so the template did not branch on, filter or cut a value: `{{ name or 'there' }}` with an
#   empty name is rendered by itself);
# - a value in the text is "inert": it starts with a letter, ends with a letter or digit and holds
#   only letters, digits, spaces and . , ' @ - (nothing Markdown, HTML escaping or a line start
#   reads), and is not part of an entity (`&{{ x }};`); the Markdown defines no link references
#   (`[{{ name }}]` could name one);
# - a value in an attribute is a URL-safe token (letters, digits, _ . -) in the path or query of
#   an href or src with a scheme and host (a link's destination parses the same whatever token it
#   holds); anywhere else (a title, alt text), the document is not shared;
# - the subject goes in the <title> as itself when it holds none of & < > NBSP or control
#   characters (nh3.clean_text's entities are decoded and html5ever writes the rest as they are).
#
# tests/test_email_render_shared.py renders messages both ways and compares them.

_NONCE = secrets.token_hex(5)
_PLACEHOLDER = re.compile(rf"q{_NONCE}x(\d+)z")
_TEXT_SAFE = re.compile(r"[^\W\d_](?:(?:[^\W_]|[ .,'@-])*[^\W_])?")
_URL_SAFE = re.compile(r"[A-Za-z0-9_.-]+")
_TITLE_SAFE = re.compile(r"[^&<>\u00a0\x00-\x1f\x7f-\x9f]*")
_ENTITY_BEFORE = re.compile(rf"&#?[A-Za-z0-9]*q{_NONCE}x")
_URL_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s\"]+[/?#]")
_TAG = re.compile(r"<[^<>]*>")
_ATTRIBUTE = re.compile(r'([A-Za-z_:][-A-Za-z0-9_:.]*)="([^"]*)"')
# The contact's words that may differ per message; each has its own placeholder number.
_CONTACT_TEXT = ("first_name", "last_name", "name", "email", "company", "city", "country")
_TITLE = 1
_FIRST_CONTACT = 2
_FIRST_TOKEN = _FIRST_CONTACT + len(_CONTACT_TEXT)


def _placeholder(number: int) -> str:
    return f"q{_NONCE}x{number}z"


@dataclass(frozen=True)
class _Shared:
    """A document with placeholders, and where each placeholder stands (in text or in an attribute)."""

    html: str
    in_text: frozenset[int]
    in_attributes: frozenset[int]


def _with_placeholders(context: dict[str, Any], tokens: tuple[str | None, ...]) -> tuple[dict[str, Any], dict[int, str]]:
    """A copy of the context with each placeholder-able value replaced, and the values by number."""
    values: dict[int, str] = {}
    contact = dict(context.get("contact") or {})
    for number, key in enumerate(_CONTACT_TEXT, _FIRST_CONTACT):
        value = contact.get(key)
        if isinstance(value, str) and value and _NONCE not in value and (
                _TEXT_SAFE.fullmatch(value) or _URL_SAFE.fullmatch(value)):
            contact[key] = _placeholder(number)
            values[number] = value
    found = {number: value for number, value in enumerate(tokens, _FIRST_TOKEN)
             if value and _URL_SAFE.fullmatch(value) and _NONCE not in value}
    values.update(found)
    result = {**context, "contact": contact}
    if found and "links" in context:
        result["links"] = _replace_tokens(context["links"], found)
    return result, values


def _replace_tokens(value: Any, found: dict[int, str]) -> Any:
    if isinstance(value, str):
        for number, token in found.items():
            if token in value:
                value = value.replace(token, _placeholder(number))
        return value
    if isinstance(value, dict):
        return {key: _replace_tokens(item, found) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_tokens(item, found) for item in value]
    return value


def _put_back(text: str, values: dict[int, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(int(m.group(1)), m.group(0)), text)


def _html(body: str, markdown: str, subject: str, context: dict[str, Any], footer_html: str, language: str,
          tokens: tuple[str | None, ...]) -> str:
    """This message's HTML: from the shared document when that is exactly the same, else by itself."""
    shared_context, values = _with_placeholders(context, tokens)
    try:
        markdown_shared = _render_part(body, "Body", shared_context).strip()
    except TemplateProblem:
        return _document(markdown, subject, footer_html, language)
    if not values or _put_back(markdown_shared, values) != markdown:
        return _document(markdown, subject, footer_html, language)
    footer_shared = _replace_tokens(footer_html, {n: v for n, v in values.items() if n >= _FIRST_TOKEN})
    if _TITLE_SAFE.fullmatch(subject):
        title, values = _placeholder(_TITLE), {**values, _TITLE: subject}
    else:
        title = subject
    shared = _shared_document(markdown_shared, title, footer_shared, language)
    if shared is None or not all(
            (number not in shared.in_text or _TEXT_SAFE.fullmatch(value))
            and (number not in shared.in_attributes or _URL_SAFE.fullmatch(value))
            for number, value in values.items()):
        return _document(markdown, subject, footer_html, language)
    return _put_back(shared.html, values)


@lru_cache(maxsize=256)
def _shared_document(markdown: str, title: str, footer_html: str, language: str) -> _Shared | None:
    """The document for a Markdown text with placeholders, or None when it cannot be shared."""
    if _ENTITY_BEFORE.search(markdown):
        return None
    env: dict[str, Any] = {}
    html = _markdown().render(markdown, env)
    if env.get("references"):
        return None
    body_html = nh3.clean(html, tags=ALLOWED_TAGS, url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer")
    html = LAYOUT.format(lang=language, title=nh3.clean_text(title) if title != _placeholder(_TITLE) else title,
                         css=LAYOUT_CSS, body=body_html, footer=footer_html)
    html = _inliner().inline(html)
    in_text: set[int] = set()
    in_attributes: set[int] = set()
    head, _, rest = html.partition("</title>")
    if head.count(f"q{_NONCE}x") != (1 if title == _placeholder(_TITLE) else 0) or (
            title == _placeholder(_TITLE) and not head.endswith(f"<title>{title}")):
        return None
    for tag in _TAG.finditer(rest):
        if f"q{_NONCE}x" not in tag.group(0):
            continue
        inside = 0
        for attribute in _ATTRIBUTE.finditer(tag.group(0)):
            name, value = attribute.groups()
            for found in _PLACEHOLDER.finditer(value):
                inside += 1
                if name not in ("href", "src") or not _URL_PREFIX.match(value[:found.start()]):
                    return None
                in_attributes.add(int(found.group(1)))
        if inside != tag.group(0).count(f"q{_NONCE}x"):
            return None
    text_only = _TAG.sub("", rest)
    in_text.update(int(found.group(1)) for found in _PLACEHOLDER.finditer(text_only))
    if text_only.count(f"q{_NONCE}x") != len(_PLACEHOLDER.findall(text_only)):
        return None
    return _Shared(html, frozenset(in_text), frozenset(in_attributes))


@lru_cache(maxsize=1024)
def _variables(source: str) -> frozenset[str]:
    try:
        return frozenset(meta.find_undeclared_variables(environment().parse(source)))
    except TemplateSyntaxError:
        return frozenset(TOP_LEVEL)


def uses(name: str, *sources: str) -> bool:
    """Whether any of these template sources reads the top-level variable `name`."""
    return any(name in _variables(source) for source in sources)


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
