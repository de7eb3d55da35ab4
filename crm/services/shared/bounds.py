"""The limits every value from outside must fit, in one place: ids, integers, dates, JSON bodies.

Pure functions (no Flask, no database), shared by the route converters, the query-string
parsers, the import readers, the API and the webhooks, so the rule for a whole class of
input (every id, every date, every nested body) lives here once.
"""
from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta

from crm.services.shared.said import N_, said

__all__ = [
    "MAX_ID", "MAX_INT", "EARLIEST", "YEARS_AHEAD", "MAX_JSON_DEPTH", "BadJson",
    "parse_id", "check_int", "check_moment", "check_day", "latest_moment", "shifted", "parse_json",
]

# Ids and counts are 32-bit integers on PostgreSQL (serial); SQLite would take 64 bits but
# anything above this is no row of ours, and ≥ 2^63 overflows the driver.
MAX_ID = 2**31 - 1
MAX_INT = MAX_ID
_ID_RE = re.compile(r"[0-9]{1,19}")

# Dates a shop's records can carry: from 1970 to ten years ahead. Sentinels such as 9999-12-31
# ("no date" in ERP exports) or 0001-01-01 are refused with this reason, never stored.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
YEARS_AHEAD = 10
MAX_JSON_DEPTH = 32


def parse_id(value: object) -> int | None:
    """Return a row id (1..MAX_ID) written as plain ASCII digits, else None (never raises)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 1 <= value <= MAX_ID else None
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        return None
    number = int(value)
    return number if 1 <= number <= MAX_ID else None


def check_int(value: object, *, low: int = -MAX_INT, high: int = MAX_INT) -> int:
    """Return `value` as an int within [low, high], or raise ValueError saying the range (its
    message a Said: shown in the reader's language where it reaches a page or the API)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(said(N_("is not a whole number")))
    if not low <= value <= high:
        raise ValueError(said(N_("must be a whole number from %(low)s to %(high)s"), low=low, high=high))
    return value


def latest_moment(now: datetime | None = None) -> datetime:
    """Return the latest moment a record may carry: ten years after `now`."""
    now = now or datetime.now(UTC)
    return now.replace(year=now.year + YEARS_AHEAD, day=28 if (now.month, now.day) == (2, 29) else now.day)


def check_moment(moment: datetime, *, now: datetime | None = None) -> datetime:
    """Return an aware moment inside 1970 .. ten years ahead, or raise ValueError with the reason."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    latest = latest_moment(now)
    if not EARLIEST <= aware <= latest:
        raise ValueError(said(N_("%(day)s is outside the dates this CRM accepts (%(first)s to %(last)s)"),
                              day=moment.date().isoformat(), first=EARLIEST.date().isoformat(),
                              last=latest.date().isoformat()))
    return moment


def check_day(day: date, *, now: datetime | None = None) -> date:
    """Return a calendar date inside the same window as check_moment, or raise ValueError."""
    check_moment(datetime(day.year, day.month, day.day, tzinfo=UTC), now=now)
    return day


def shifted(moment, delta: timedelta):
    """Return `moment + delta`, clamped to the calendar's ends instead of raising OverflowError.

    Date arithmetic in the rules goes through this, so no stored date and no setting can make a
    rule (and so every write on a contact, or `crm refresh`) fail.
    """
    try:
        return moment + delta
    except OverflowError:
        kind = type(moment)
        end = kind.max if delta > timedelta(0) else kind.min
        if isinstance(moment, datetime):
            end = end.replace(tzinfo=moment.tzinfo)
        return end


class BadJson(ValueError):
    """A body that is not JSON we take: the message says why."""


def _depth_within(raw: str, limit: int) -> bool:
    """Return whether the brackets of a JSON text nest at most `limit` deep (strings skipped)."""
    depth = 0
    in_string = escaped = False
    for ch in raw:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return False
        elif ch in "]}":
            depth -= 1
    return True


_SURROGATE_RE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _has_lone_surrogate(value: object) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_json(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH):
    """Parse a JSON body, or raise BadJson: not UTF-8, not JSON, nested deeper than `max_depth`,
    a lone surrogate (which no database column can store), or a number too long to be real."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadJson(said(N_("The body is not UTF-8 text."))) from None
    else:
        text = raw
    if not _depth_within(text, max_depth):
        raise BadJson(said(N_("The JSON nests deeper than %(levels)s levels."), levels=max_depth))
    try:
        value = json.loads(text, parse_int=_parse_int, parse_constant=_refuse_constant)
    except BadJson:
        raise
    except (ValueError, RecursionError) as error:
        raise BadJson(said(N_("The body is not valid JSON: %(error)s."), error=str(error))) from None
    if _SURROGATE_RE.search(text) and _has_lone_surrogate(value):
        raise BadJson(said(N_("The JSON holds a lone surrogate (\\ud800–\\udfff), which is not text.")))
    return value


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > 30:
        raise BadJson(said(N_("The number %(number)s… is too long."), number=text[:20]))
    return int(text)


def _refuse_constant(name: str):
    raise BadJson(said(N_("%(name)s is not a number JSON allows."), name=name))


# ISO 3166-1 alpha-2: the officially assigned codes, plus XK (Kosovo), which Shopify and
# WooCommerce send. "ZZ", "UK" or "EU" are not countries and are refused.
COUNTRY_CODES = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE
EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM
HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC
LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW XK
""".split())

# Line quantities: one rule for the form, the API, the webhooks and the imports.
MAX_QUANTITY = 1_000_000


def is_country_code(value: str | None) -> bool:
    """Return whether `value` (any case) is an ISO 3166-1 alpha-2 country code."""
    return bool(value) and value.upper() in COUNTRY_CODES
