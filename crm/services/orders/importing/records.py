"""What the import readers yield, and the small parsers they share.

These dataclasses are the contract between the file readers (``readers.py``) and the database
writer. Everything here is pure: no Flask, no database, no I/O.

Parsing rules (each raises ``ValueError`` with a message that quotes the offending value, so a
caller can prefix it with the field name and use it as a rejection reason):

``parse_money``
    Accepts ints, Decimals, finite floats (via ``str()``, so ``8.5`` -> ``Decimal("8.5")``) and
    text made of an optional sign, an optional currency (``€ $ £ ¥`` or an upper-case ISO code,
    before or after the number) and digits with separators:

    * ``"12.50"``, ``"-3"``, ``"EUR 12.50"``, ``"12,50 €"``
    * both ``.`` and ``,`` present: the right-most one is the decimal mark and the other one
      groups thousands: ``"1,234.50"``, ``"1.234,50"``;
    * only one kind of mark, used once: ``.`` is always the decimal mark (``"1.234"`` is 1.234);
      ``,`` is a decimal comma unless exactly three digits follow it (``"12,50"`` is 12.50,
      ``"1,234"`` is 1234);
    * a mark used more than once groups thousands (``"1.234.567"``); spaces, no-break spaces and
      ``'`` may also group thousands (``"1 234,50"``, ``"1'234.50"``);
    * thousands groups must have exactly three digits, so ``"1,2,3"`` is refused.

    Anything else is refused (``"ten euros"``, ``""``, ``"12."``, ``"1e3"``, ``"NaN"``), as are
    amounts of 10^12 or more (they would not fit the ``Money`` column, ``Numeric(14, 2)``). The
    Decimal is exact as written: no rounding here; the ``Money`` column rounds to cents.

``parse_timestamp``
    ``YYYY-MM-DD`` (midnight UTC), ``YYYY-MM-DD[T ]HH:MM[:SS[.fff]]`` optionally followed (with or
    without a space) by ``Z``, ``UTC``, ``GMT`` or an offset ``±HH:MM``/``±HHMM``/``±HH``.
    Shopify's ``"2024-03-01 10:15:00 +0100"`` and WooCommerce's ``date_created_gmt``
    (``"2024-03-01T09:15:00"``, no offset) are both covered; a timestamp without an offset is
    taken as UTC. ``date``/``datetime`` objects are accepted too. The result is always an aware
    UTC datetime from 1970 to ten years ahead; anything outside (``9999-12-31``, ``0001-01-01``,
    the "no date" sentinels of ERP exports) is refused with that reason.

``is_valid_email``, ``email_problem``, ``normalise_email``
    The one email rule (``crm.services.shared.emails``, email-validator without a deliverability
    check), the same the forms and the API apply: a row with an address they would refuse is
    rejected with email-validator's reason.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from crm.services.shared.bounds import check_moment
from crm.services.shared.emails import REASONS as EMAIL_REASONS
from crm.services.shared.emails import email_problem, is_valid_email, normalise_email
from crm.services.shared.said import N_, Said

__all__ = [
    "CustomerRecord", "LineRecord", "OrderRecord", "Rejected", "ORDER_STATUSES", "PAID_STATUSES",
    "normalise_email", "is_valid_email", "email_problem", "parse_money", "parse_timestamp", "parse_bool",
    "show", "said_problem",
]

# Copied from crm.models.order so the readers import without Flask-SQLAlchemy; a test checks
# that the two stay the same.
ORDER_STATUSES = ("pending", "paid", "fulfilled", "partially_refunded", "refunded", "cancelled")
PAID_STATUSES = ("paid", "fulfilled", "partially_refunded")

ZERO = Decimal("0.00")


@dataclass
class CustomerRecord:
    line: int  # 1-based line where the record starts (the CSV header is line 1)
    source: str  # "shopify" | "woocommerce" | the generic file's source (default "import")
    external_id: str | None = None  # the source's customer id
    email: str | None = None  # stripped and lower-cased; None when empty
    email_display: str | None = None  # as written (stripped)
    first_name: str = ""
    last_name: str = ""
    phone: str | None = None  # as written; E.164 normalisation happens later, in the service
    company: str | None = None
    address: str | None = None  # street lines and postcode, joined with ", "
    city: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2 when the source gives one, else None
    consent: bool | None = None  # accepts email marketing, when the file says
    language: str | None = None  # ISO 639-1, when the platform says which language the customer shops in
    tags: list[str] = field(default_factory=list)
    created_at: datetime | None = None  # aware UTC
    raw: dict = field(default_factory=dict)  # the original row / object, for reports


@dataclass
class LineRecord:
    sku: str | None
    name: str
    quantity: int
    unit_price: Decimal


@dataclass
class OrderRecord:
    line: int
    source: str
    external_id: str
    number: str
    placed_at: datetime  # aware UTC
    status: str  # one of ORDER_STATUSES
    currency: str  # ISO 4217, upper-case
    subtotal: Decimal
    discount: Decimal
    shipping: Decimal
    tax: Decimal
    total: Decimal
    refunded: Decimal
    customer: CustomerRecord
    lines: list[LineRecord] = field(default_factory=list)
    raw: dict | list = field(default_factory=dict)  # the original row(s) / object


@dataclass
class Rejected:
    line: int  # where the rejected record starts (for JSON arrays: the 1-based item index)
    reason: str  # names the field(s) and value(s) at fault; at most 500 characters
    raw: dict = field(default_factory=dict)  # what was read, JSON-serialisable


# -- small helpers -----------------------------------------------------------------------------

def show(value: object, limit: int = 60) -> str:
    """``repr`` of a value for a rejection reason, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


_TRUE = {"yes", "y", "true", "t", "1", "subscribed", "on", "opt_in", "opted_in"}
_FALSE = {"no", "n", "false", "f", "0", "not_subscribed", "unsubscribed", "off", "opt_out"}


def parse_bool(value: object) -> bool | None:
    """yes/no-style text (or a bool) to a bool; None when empty or not recognised."""
    if isinstance(value, bool):
        return value
    if value is None:
        return None
    text = re.sub(r"[\s-]+", "_", str(value).strip().lower())
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


# -- money -------------------------------------------------------------------------------------

_CURRENCY = r"(?:[€$£¥]|[A-Z]{3})"
_MONEY_RE = re.compile(
    rf"(?P<s1>[-+\u2212])?\s*(?:{_CURRENCY}\s*)?(?P<s2>[-+\u2212])?\s*"
    r"(?P<num>\d[\d.,' \u00a0\u202f]*?)\s*"
    rf"(?:{_CURRENCY})?",
    re.ASCII,
)
_PLAIN_MONEY_RE = re.compile(r"-?[0-9]{1,12}(?:\.[0-9]{1,12})?")
_SPACES = " '\u00a0\u202f"
MONEY_LIMIT = Decimal(10) ** 12


def _grouped(integer: str, separators: str) -> str | None:
    """Remove thousands separators from ``integer``; None when the grouping is wrong."""
    parts = re.split("[" + re.escape(separators) + "]", integer) if separators else [integer]
    if len(parts) > 1:
        if not (1 <= len(parts[0]) <= 3) or any(len(p) != 3 for p in parts[1:]):
            return None
    digits = "".join(parts)
    return digits if digits.isdigit() and digits.isascii() else None


def parse_money(value: object) -> Decimal:
    """Parse an amount of money; see the module docstring for what is accepted."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{show(value)} is not an amount")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{show(value)} is not an amount")
        amount = Decimal(str(value))
    else:
        amount = _parse_money_text(str(value))
    if not amount.is_finite():
        raise ValueError(f"{show(value)} is not an amount")
    if abs(amount) >= MONEY_LIMIT:
        raise ValueError(f"{show(value)} is too large an amount")
    return amount


@lru_cache(maxsize=2048)  # prices repeat; Decimals are immutable
def _parse_money_text(raw: str) -> Decimal:
    text = raw.strip()
    if _PLAIN_MONEY_RE.fullmatch(text):
        return Decimal(text)
    if not text:
        raise ValueError("empty amount")
    m = _MONEY_RE.fullmatch(text)
    if not m or (m.group("s1") and m.group("s2")):
        raise ValueError(f"{show(raw)} is not an amount")
    negative = (m.group("s1") or m.group("s2") or "+") in "-\u2212"
    num = m.group("num")
    marks = [c for c in num if c in ".,"]
    integer, fraction = num, ""
    group_marks = _SPACES
    if marks:
        last = max(num.rfind("."), num.rfind(","))
        mark = num[last]
        kinds = set(marks)
        if len(kinds) == 2:
            decimal_mark = mark
        elif len(marks) > 1:
            decimal_mark = None  # one kind, used several times: thousands only
        elif mark == ".":
            decimal_mark = "."
        else:  # a single comma: decimal unless exactly three digits follow
            decimal_mark = None if len(num) - last - 1 == 3 and num[last + 1:].isdigit() else ","
        if decimal_mark is not None:
            if num.count(decimal_mark) != 1:
                raise ValueError(f"{show(raw)} is not an amount")
            integer, fraction = num[:last], num[last + 1:]
            group_marks += "," if decimal_mark == "." else "."
            if not fraction.isdigit() or not fraction.isascii():
                raise ValueError(f"{show(raw)} is not an amount")
        else:
            group_marks += mark
    digits = _grouped(integer, group_marks)
    if digits is None:
        raise ValueError(f"{show(raw)} is not an amount")
    try:
        amount = Decimal(f"{'-' if negative else ''}{digits}{'.' + fraction if fraction else ''}")
    except InvalidOperation:  # pragma: no cover - the checks above only let digits through
        raise ValueError(f"{show(raw)} is not an amount") from None
    return amount


# -- the words of a field's problem, for the reader --------------------------------------------

# How the parsers above and the readers word what is wrong with a field's value ("'ten euros' is
# not an amount"), each as the msgid it is shown by. A rejection reason is stored, and written to
# the rejections CSV, in English; `said_problem` gives the pages (and the API) the same words with
# their key and values, so they are shown in the reader's language.
FIELD_PROBLEMS: tuple[tuple[re.Pattern, str], ...] = tuple((re.compile(pattern), key) for pattern, key in (
    (r"missing", N_("missing")),
    (r"(?P<value>.+) is not a valid email address \((?P<why>.*)\)", N_("%(value)s is not a valid email address (%(why)s)")),
    (r"(?P<value>.+) is not a currency code", N_("%(value)s is not a currency code")),
    (r"(?P<value>.+) is not a quantity from 0 to (?P<high>\d+)", N_("%(value)s is not a quantity from 0 to %(high)s")),
    (r"(?P<value>.+) is not a quantity", N_("%(value)s is not a quantity")),
    (r"(?P<value>.+) is not a Shopify financial status", N_("%(value)s is not a Shopify financial status")),
    (r"(?P<value>.+) is not a WooCommerce order status", N_("%(value)s is not a WooCommerce order status")),
    (r"(?P<value>.+) is not an order status", N_("%(value)s is not an order status")),
    (r"empty amount", N_("empty amount")),
    (r"(?P<value>.+) is not an amount", N_("%(value)s is not an amount")),
    (r"(?P<value>.+) is too large an amount", N_("%(value)s is too large an amount")),
    (r"must not be negative", N_("must not be negative")),
    (r"(?P<value>.+) is negative; record a refund as the order's refunded amount \(or status refunded\), not as a "
     r"negative amount", N_("%(value)s is negative; record a refund as the order's refunded amount (or status "
                            "refunded), not as a negative amount")),
    (r"is not a whole number", N_("is not a whole number")),
    (r"must be a whole number from (?P<low>-?\d+) to (?P<high>-?\d+)", N_("must be a whole number from %(low)s to %(high)s")),
    (r"empty date", N_("empty date")),
    (r"(?P<value>.+) is not a date or timestamp", N_("%(value)s is not a date or timestamp")),
    (r"(?P<value>.+) has an impossible UTC offset", N_("%(value)s has an impossible UTC offset")),
    (r"(?P<value>.+) is not a valid date or time", N_("%(value)s is not a valid date or time")),
    (r"(?P<value>.+) is out of range", N_("%(value)s is out of range")),
    (r"(?P<day>\d{4}-\d{2}-\d{2}) is outside the dates this CRM accepts \((?P<first>[\d-]+) to (?P<last>[\d-]+)\)",
     N_("%(day)s is outside the dates this CRM accepts (%(first)s to %(last)s)")),
))


def said_problem(text: str) -> str:
    """Return a field's problem as the parsers word it as a Said (the same English, with its key and
    values), or the text as it is when it is worded some other way."""
    for pattern, key in FIELD_PROBLEMS:
        if match := pattern.fullmatch(text):
            values: dict[str, object] = dict(match.groupdict())
            if values.get("why") in EMAIL_REASONS:
                values["why"] = Said(values["why"])
            return Said(key, values)
    return text


# -- timestamps --------------------------------------------------------------------------------

_TS_RE = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})"
    r"(?:[T ](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d+))?)?"
    r"\s*(?P<tz>Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?)?",
    re.IGNORECASE | re.ASCII,
)


def parse_timestamp(value: object) -> datetime:
    """Parse a date or timestamp to an aware UTC datetime inside the dates a record may carry
    (1970 to ten years ahead, `bounds.check_moment`); see the module docstring."""
    return check_moment(_parse_timestamp(value))


def _parse_timestamp(value: object) -> datetime:
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return _to_utc(dt, value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if value is None or isinstance(value, bool):
        raise ValueError(f"{show(value)} is not a date or timestamp")
    text = str(value).strip()
    if not text:
        raise ValueError("empty date")
    m = _TS_RE.fullmatch(text)
    if not m:
        raise ValueError(f"{show(value)} is not a date or timestamp")
    tz = timezone.utc
    tzs = (m.group("tz") or "").upper()
    if tzs and tzs not in ("Z", "UTC", "GMT"):
        hours, minutes = int(tzs[1:3]), int(tzs[-2:]) if len(tzs) > 3 else 0
        if hours > 23 or minutes > 59:
            raise ValueError(f"{show(value)} has an impossible UTC offset")
        offset = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-offset if tzs[0] == "-" else offset)
    try:
        dt = datetime(
            int(m.group("y")), int(m.group("mo")), int(m.group("d")),
            int(m.group("h") or 0), int(m.group("mi") or 0), int(m.group("s") or 0),
            int((m.group("f") or "0")[:6].ljust(6, "0")), tzinfo=tz,
        )
    except ValueError:
        raise ValueError(f"{show(value)} is not a valid date or time") from None
    return _to_utc(dt, value)


def _to_utc(dt: datetime, original: object) -> datetime:
    try:
        return dt.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise ValueError(f"{show(original)} is out of range") from None
