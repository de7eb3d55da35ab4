"""A segment's definition: the JSON condition language, its fields and operators, and the one
parser that checks a definition and names the position and reason of every fault.

    {"match": "all" | "any", "conditions": [condition | group, ...]}
    condition = {"field": F, "op": OP, "value": V}
    group     = {"match": "all" | "any", "conditions": [condition, ...]}   (one level deep)

Limits keep any definition a cheap query: at most MAX_CONDITIONS conditions in all, MAX_LIST
values in an `in` list, MAX_TEXT characters in a text, dates in the years 1900-2999.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Union

from crm.models import HEALTHS, INTERACTION_KINDS, PAID_STATUSES, STAGES, TASK_STATUSES
from crm.services.insight.rfm_names import SEGMENT_LABELS
from crm.services.rules.defaults import DEFAULT_RETENTION
from crm.services.shared.bounds import MAX_ID
from crm.services.shared.errors import N_, Message, ValidationError
from crm.services.shared.said import said

MAX_CONDITIONS = 50
MAX_LIST = 500
MAX_TEXT = 200
MAX_DAYS = 36_500
MAX_COUNT = 10_000
MAX_NUMBER = 10**12
YEARS = (1900, 2999)
MATCHES = ("all", "any")

EMAIL_STATUSES = {
    "missing": N_("No email address"),
    "do_not_contact": N_("Do not contact"),
    "subscribed": N_("Agreed to email"),
    "not_subscribed": N_("Has not agreed to email"),
}
TASK_RULES = tuple(DEFAULT_RETENTION)
PAID = PAID_STATUSES

# Operators by the kind of field; `!=`, `not_within_last_days` and `has_not` are the exact
# complements of `=`, `within_last_days` and `has` (a contact without a value is "not equal").
SET_OPS = ("is_set", "is_not_set")
OPERATORS: dict[str, tuple[str, ...]] = {
    "text": ("=", "!=", "in", "contains", *SET_OPS),
    "choice": ("=", "!=", "in", *SET_OPS),
    "tag": ("=", "!=", "in", *SET_OPS),
    "owner": ("=", "!=", "in", *SET_OPS),
    "number": ("=", "!=", "<", "<=", ">", ">=", "between", *SET_OPS),
    "money": ("=", "!=", "<", "<=", ">", ">=", "between", *SET_OPS),
    "date": ("=", "before", "after", "between", "within_last_days", "not_within_last_days", *SET_OPS),
    "bool": ("=", "!="),
    "event": ("has", "has_not"),
}
OPERATOR_LABELS = {
    "=": N_("is"), "!=": N_("is not"), "<": N_("less than"), "<=": N_("at most"), ">": N_("more than"), ">=": N_("at least"),
    "between": N_("between"), "in": N_("is one of"), "contains": N_("contains"), "is_set": N_("is set"), "is_not_set": N_("is not set"),
    "before": N_("before"), "after": N_("after"), "within_last_days": N_("in the last … days"),
    "not_within_last_days": N_("not in the last … days"), "has": N_("has"), "has_not": N_("has not"),
}


@dataclass(frozen=True)
class Field:
    name: str
    kind: str
    label: str
    column: str | None = None  # the contacts column (None for tags, events, derived fields)
    nullable: bool = False
    choices: tuple[str, ...] = ()
    integer: bool = False

    @property
    def operators(self) -> tuple[str, ...]:
        ops = OPERATORS[self.kind]
        if self.kind in ("number", "money", "choice", "owner", "date") and not self.nullable:
            ops = tuple(op for op in ops if op not in SET_OPS)
        return ops


FIELDS: dict[str, Field] = {f.name: f for f in (
    Field("email", "text", N_("Email"), "email", nullable=True),
    Field("first_name", "text", N_("First name"), "first_name"),
    Field("last_name", "text", N_("Last name"), "last_name"),
    Field("company", "text", N_("Company"), "company", nullable=True),
    Field("city", "text", N_("City"), "city", nullable=True),
    Field("country", "text", N_("Country (two letters)"), "country", nullable=True),
    Field("tag", "tag", N_("Tag")),
    Field("owner", "owner", N_("Owner (user id)"), "owner_id", nullable=True),
    Field("stage", "choice", N_("Journey stage"), "stage", choices=STAGES),
    Field("health", "choice", N_("Health"), "health", nullable=True, choices=HEALTHS),
    Field("lead_score", "number", N_("Lead score"), "lead_score", integer=True),
    Field("rfm_segment", "choice", N_("RFM segment"), "rfm_segment", nullable=True, choices=tuple(SEGMENT_LABELS)),
    Field("p_alive", "number", N_("Probability still a customer"), "p_alive", nullable=True),
    Field("predicted_value_12m", "money", N_("Predicted value, next 12 months"), "predicted_value_12m", nullable=True),
    Field("expected_orders_90d", "number", N_("Expected orders, next 90 days"), "expected_orders_90d", nullable=True),
    Field("order_count", "number", N_("Number of orders"), "order_count", integer=True),
    Field("total_spent", "money", N_("Total spent"), "total_spent"),
    Field("first_order_at", "date", N_("First order"), "first_order_at", nullable=True),
    Field("last_order_at", "date", N_("Last order"), "last_order_at", nullable=True),
    Field("created_at", "date", N_("Added"), "created_at"),
    Field("email_consent", "bool", N_("Agreed to email"), "consent"),
    Field("do_not_contact", "bool", N_("Do not contact"), "do_not_contact"),
    Field("email_status", "choice", N_("Email status"), choices=tuple(EMAIL_STATUSES)),
    Field("ordered", "event", N_("Ordered")),
    Field("interaction", "event", N_("Interaction")),
    Field("task", "event", N_("To-do")),
)}

# The options each event condition takes in its value object.
EVENT_OPTIONS: dict[str, tuple[str, ...]] = {
    "ordered": ("sku", "product", "min_count", "within_days", "between"),
    "interaction": ("kind", "min_count", "within_days", "between"),
    "task": ("rule", "status"),
}


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any = None  # normalised: str, tuple, Decimal, float, int, bool, date, (low, high) or EventOptions


@dataclass(frozen=True)
class EventOptions:
    sku: str | None = None
    product: str | None = None
    min_count: int = 1
    within_days: int | None = None
    between: tuple[date, date] | None = None
    kind: str | None = None
    rule: str | None = None
    status: str | None = None


@dataclass(frozen=True)
class Group:
    match: str
    conditions: tuple[Union[Condition, "Group"], ...]


EVERYONE = Group("all", ())


class DefinitionError(ValidationError):
    """A definition that cannot be used: `problems` lists (position, reason), e.g.
    ("conditions[2]", "Unknown field “colour”."). Each reason is English marked with N_, or a
    Message with values: the pages and the API show it in the reader's language."""

    def __init__(self, problems: list[tuple[str, str]]):
        fields: dict[str, str] = {}
        for position, reason in problems:
            fields.setdefault(position or "definition", reason)
        super().__init__(N_("The segment definition has mistakes."), fields)
        self.problems = problems


class _Refusal(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def parse(raw: Any) -> Group:
    """Return the checked definition, or raise DefinitionError naming each faulty position."""
    problems: list[tuple[str, str]] = []
    group = _group(raw, "", problems, depth=0)
    if problems:
        raise DefinitionError(problems[:20])
    return group


def _group(raw: Any, where: str, problems: list, *, depth: int) -> Group:
    if not isinstance(raw, dict):
        problems.append((where, N_("A definition (or group) is an object with “match” and “conditions”.")))
        return EVERYONE
    unknown = sorted(str(k) for k in raw if k not in ("match", "conditions"))
    if unknown:
        problems.append((where, Message(N_("Unknown key “%(key)s”; a group has only “match” and “conditions”."),
                                        key=unknown[0][:40])))
        return EVERYONE
    match = raw.get("match", "all")
    if match not in MATCHES:
        problems.append((_at(where, "match"), N_("“match” is “all” or “any”.")))
    conditions = raw.get("conditions", [])
    if not isinstance(conditions, list):
        problems.append((_at(where, "conditions"), N_("“conditions” is a list.")))
        return EVERYONE
    total = len(conditions) + sum(
        len(c["conditions"]) for c in conditions if isinstance(c, dict) and isinstance(c.get("conditions"), list)
    )
    if total > MAX_CONDITIONS:
        problems.append((_at(where, "conditions"), Message(N_("At most %(limit)s conditions in a segment; this has %(count)s."),
                                                           limit=MAX_CONDITIONS, count=total)))
        return EVERYONE
    parsed = []
    for index, item in enumerate(conditions):
        position = _at(where, f"conditions[{index}]")
        if isinstance(item, dict) and "conditions" in item:
            if depth >= 1:
                problems.append((position, N_("Groups go one level deep: a group cannot hold another group.")))
                continue
            parsed.append(_group(item, position, problems, depth=depth + 1))
            continue
        try:
            parsed.append(condition(item))
        except _Refusal as refusal:
            problems.append((position, refusal.reason))
    return Group(match if match in MATCHES else "all", tuple(parsed))


def _at(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def condition(raw: Any) -> Condition:
    """Return one checked condition, or raise _Refusal with the plain reason."""
    if not isinstance(raw, dict):
        raise _Refusal(N_("A condition is an object with “field”, “op” and “value”."))
    unknown = [str(k) for k in raw if k not in ("field", "op", "value")]
    if unknown:
        raise _Refusal(Message(N_("Unknown key “%(key)s”; a condition has “field”, “op” and “value”."), key=unknown[0][:40]))
    name, op = raw.get("field"), raw.get("op")
    if not isinstance(name, str) or name not in FIELDS:
        shown = name[:40] if isinstance(name, str) else name if isinstance(name, (int, float, bool)) else "?"
        raise _Refusal(Message(N_("Unknown field “%(field)s”."), field=shown) if name is not None else N_("Say which field."))
    field = FIELDS[name]
    if not isinstance(op, str) or op not in field.operators:
        shown = op[:20] if isinstance(op, str) else "?"
        raise _Refusal(Message(N_("“%(op)s” does not apply to the field “%(field)s”; use one of: %(ops)s."),
                               op=shown, field=said(field.label), ops=", ".join(field.operators)))
    value = raw.get("value")
    if op in SET_OPS:
        if value is not None:
            raise _Refusal(Message(N_("“%(op)s” takes no value."), op=op))
        return Condition(name, op)
    return Condition(name, op, _value(field, op, value))


def _value(field: Field, op: str, value: Any) -> Any:
    if field.kind == "event":
        return _event(field.name, value)
    if op == "in":
        if not isinstance(value, list) or not value:
            raise _Refusal(N_("“in” takes a list of values."))
        if len(value) > MAX_LIST:
            raise _Refusal(Message(N_("At most %(limit)s values in a list; this has %(count)s."), limit=MAX_LIST, count=len(value)))
        return tuple(dict.fromkeys(_single(field, item) for item in value))
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise _Refusal(N_("“between” takes a list of two values, lowest first."))
        low, high = (_date(v) if field.kind == "date" else _single(field, v) for v in value)
        if low > high:
            raise _Refusal(N_("“between” takes the lowest value first."))
        return (low, high)
    if op in ("within_last_days", "not_within_last_days"):
        return _whole(value, 1, MAX_DAYS, N_("a number of days"))
    if field.kind == "date":
        return _date(value)
    return _single(field, value)


def _single(field: Field, value: Any) -> Any:
    kind = field.kind
    if kind in ("text", "tag"):
        if not isinstance(value, str):
            raise _Refusal(N_("Give a text value."))
        text = value.strip()
        if not text or len(text) > MAX_TEXT:
            raise _Refusal(Message(N_("Give a text of 1 to %(limit)s characters."), limit=MAX_TEXT))
        if "\x00" in text:
            raise _Refusal(N_("Text must not contain NUL characters."))
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise _Refusal(N_("Text must be valid Unicode.")) from None
        if kind == "tag" or field.name == "email":
            text = text.lower()
        if field.name == "country":
            text = text.upper()
        return text
    if kind == "choice":
        if value not in field.choices:
            raise _Refusal(Message(N_("Use one of: %(choices)s."), choices=", ".join(field.choices)))
        return value
    if kind == "owner":
        return _whole(value, 1, MAX_ID, N_("a user id"))
    if kind == "bool":
        if not isinstance(value, bool):
            raise _Refusal(N_("Give true or false."))
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Refusal(N_("Give a number."))
        if abs(value) > MAX_NUMBER or not math.isfinite(value):  # NaN fails both; a huge int the first
            raise _Refusal(N_("Give a finite number of a sensible size."))
        return value
    if kind == "money":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise _Refusal(N_("Give an amount (a number)."))
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            raise _Refusal(N_("Give an amount (a number).")) from None
        if not amount.is_finite() or abs(amount) > MAX_NUMBER:
            raise _Refusal(N_("Give a finite amount of a sensible size."))
        return amount.quantize(Decimal("0.01"))
    raise _Refusal(N_("This field takes no value."))  # pragma: no cover - every kind is handled above


def _whole(value: Any, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _Refusal(Message(N_("Give %(what)s: a whole number from %(low)s to %(high)s."),
                               what=said(what), low=low, high=high))
    return value


def _date(value: Any) -> date:
    if not isinstance(value, str) or len(value) != 10:
        raise _Refusal(N_("Give a date as YYYY-MM-DD."))
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise _Refusal(N_("Give a real date as YYYY-MM-DD.")) from None
    if not YEARS[0] <= day.year <= YEARS[1]:
        raise _Refusal(Message(N_("Give a date between the years %(first)s and %(last)s."), first=str(YEARS[0]), last=str(YEARS[1])))
    return day


def _event(name: str, value: Any) -> EventOptions:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise _Refusal(Message(N_("“%(field)s” takes an object of options: %(options)s."), field=name,
                               options=", ".join(EVENT_OPTIONS[name])))
    unknown = [str(k) for k in value if k not in EVENT_OPTIONS[name]]
    if unknown:
        raise _Refusal(Message(N_("Unknown option “%(option)s”; use %(options)s."), option=unknown[0][:40],
                               options=", ".join(EVENT_OPTIONS[name])))
    options: dict[str, Any] = {}
    for key in ("sku", "product"):
        if value.get(key) is not None:
            options[key] = _single(FIELDS["first_name"], value[key])
    if value.get("min_count") is not None:
        options["min_count"] = _whole(value["min_count"], 1, MAX_COUNT, N_("a count"))
    if value.get("within_days") is not None and value.get("between") is not None:
        raise _Refusal(N_("Give either “within_days” or “between”, not both."))
    if value.get("within_days") is not None:
        options["within_days"] = _whole(value["within_days"], 1, MAX_DAYS, N_("a number of days"))
    if value.get("between") is not None:
        between = value["between"]
        if not isinstance(between, list) or len(between) != 2:
            raise _Refusal(N_("“between” takes two dates, earliest first."))
        low, high = _date(between[0]), _date(between[1])
        if low > high:
            raise _Refusal(N_("“between” takes the earliest date first."))
        options["between"] = (low, high)
    if value.get("kind") is not None:
        if value["kind"] not in INTERACTION_KINDS:
            raise _Refusal(Message(N_("Use a kind of interaction: %(choices)s."), choices=", ".join(INTERACTION_KINDS)))
        options["kind"] = value["kind"]
    if value.get("rule") is not None:
        if value["rule"] not in TASK_RULES:
            raise _Refusal(Message(N_("Use a to-do rule: %(choices)s."), choices=", ".join(TASK_RULES)))
        options["rule"] = value["rule"]
    if value.get("status") is not None:
        if value["status"] not in TASK_STATUSES:
            raise _Refusal(Message(N_("Use a to-do status: %(choices)s."), choices=", ".join(TASK_STATUSES)))
        options["status"] = value["status"]
    return EventOptions(**options)


def to_json(group: Group) -> dict[str, Any]:
    """Return a checked definition as the JSON it is stored as (parse(to_json(g)) == g)."""
    return {"match": group.match, "conditions": [
        to_json(item) if isinstance(item, Group) else _condition_json(item) for item in group.conditions
    ]}


def _plain(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _condition_json(item: Condition) -> dict[str, Any]:
    data: dict[str, Any] = {"field": item.field, "op": item.op}
    if isinstance(item.value, EventOptions):
        options = item.value
        data["value"] = {
            key: _plain(getattr(options, key)) for key in EVENT_OPTIONS[item.field]
            if getattr(options, key) is not None and not (key == "min_count" and options.min_count == 1)
        }
    elif item.op not in SET_OPS:
        data["value"] = _plain(item.value)
    return data


def catalog() -> dict[str, Any]:
    """Return the fields with their kinds, operators and choices (for the API and the builder)."""
    return {
        "fields": {
            name: {"kind": field.kind, "label": field.label, "operators": list(field.operators),
                   **({"choices": list(field.choices)} if field.choices else {}),
                   **({"options": list(EVENT_OPTIONS[name])} if field.kind == "event" else {})}
            for name, field in FIELDS.items()
        },
        "limits": {"conditions": MAX_CONDITIONS, "list_values": MAX_LIST, "text": MAX_TEXT, "days": MAX_DAYS,
                   "years": list(YEARS)},
    }
