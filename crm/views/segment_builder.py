"""The segment builder's form: rows of conditions (some in groups) to and from a definition."""
from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as default
from datetime import date
from typing import Any

from flask_babel import format_decimal
from flask_babel import gettext as _

from crm.services.insight.rfm_names import SEGMENT_LABELS
from crm.services.segments.definition import EMAIL_STATUSES, EVENT_OPTIONS, FIELDS, OPERATOR_LABELS, SET_OPS
from crm.services.shared.errors import N_
from crm.views.formatting import format_date

MAX_ROWS = 50
DEFAULT_FIELD = "stage"
OPTION_INPUTS = ("sku", "product", "min_count", "within_days", "from", "to", "kind", "rule", "status")


@dataclass
class Row:
    field: str = DEFAULT_FIELD
    op: str = "="
    value: str = ""
    value2: str = ""
    group: int = 0  # 0: the top level; otherwise the group's number
    options: dict[str, str] = default(default_factory=dict)
    error: str = ""

    @property
    def kind(self) -> str:
        return FIELDS[self.field].kind

    @property
    def operators(self) -> list[tuple[str, str]]:
        return [(op, OPERATOR_LABELS[op]) for op in FIELDS[self.field].operators]

    @property
    def field_choices(self) -> tuple[str, ...]:
        return FIELDS[self.field].choices

    @property
    def takes_value(self) -> bool:
        return self.op not in SET_OPS and self.kind != "event"


@dataclass
class Builder:
    match: str = "all"
    rows: list[Row] = default(default_factory=list)
    group_matches: dict[int, str] = default(default_factory=dict)
    positions: dict[str, int] = default(default_factory=dict)  # definition position -> row index

    def group_starts(self) -> set[int]:
        """Return the indexes of the rows that open a group (where its heading goes)."""
        seen, starts = set(), set()
        for index, row in enumerate(self.rows):
            if row.group and row.group not in seen:
                seen.add(row.group)
                starts.add(index)
        return starts


def _int_or_text(text: str) -> Any:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _typed(row: Row, text: str) -> Any:
    kind = row.kind
    if kind in ("number", "owner"):
        return _int_or_text(text)
    if kind == "bool":
        return {"true": True, "false": False}.get(text, text)
    if row.op in ("within_last_days", "not_within_last_days"):
        return _int_or_text(text)
    return text.strip()


def _condition(row: Row) -> dict[str, Any]:
    if row.op in SET_OPS:
        return {"field": row.field, "op": row.op}
    if row.kind == "event":
        options: dict[str, Any] = {}
        for name in EVENT_OPTIONS[row.field]:
            if name == "between":
                low, high = row.options.get("from", ""), row.options.get("to", "")
                if low or high:
                    options["between"] = [low, high]
            elif row.options.get(name, "").strip():
                text = row.options[name].strip()
                options[name] = _int_or_text(text) if name in ("min_count", "within_days") else text
        return {"field": row.field, "op": row.op, "value": options}
    if row.op == "in":
        value: Any = [_typed(row, part) for part in row.value.split(",") if part.strip()]
    elif row.op == "between":
        value = [_typed(row, row.value), _typed(row, row.value2)]
    else:
        value = _typed(row, row.value)
    return {"field": row.field, "op": row.op, "value": value}


def from_form(form, *, add: str | None = None, remove: str | None = None) -> Builder:
    """Return the builder a posted form describes, after adding or removing a row."""
    builder = Builder(match=form.get("match") if form.get("match") in ("all", "any") else "all")
    try:
        count = min(int(form.get("rows", "0")), MAX_ROWS)
    except ValueError:
        count = 0
    for index in range(count):
        name = form.get(f"field-{index}", DEFAULT_FIELD)
        if name not in FIELDS:
            name = DEFAULT_FIELD
        op = form.get(f"op-{index}", "")
        if op not in FIELDS[name].operators:
            op = FIELDS[name].operators[0]
        group = form.get(f"group-{index}", "0")
        row = Row(name, op, form.get(f"value-{index}", ""), form.get(f"value2-{index}", ""),
                  int(group) if group.isdigit() and len(group) < 4 else 0,
                  {key: form.get(f"{key}-{index}", "") for key in OPTION_INPUTS})
        shown = form.get(f"shown-{index}")
        if shown in FIELDS and FIELDS[shown].kind != row.kind:
            # Another kind of field: the old value means nothing to it (a city is not a lead score).
            row.value, row.value2, row.options = "", "", {}
        builder.rows.append(row)
    for row in builder.rows:
        if row.group and row.group not in builder.group_matches:
            chosen = form.get(f"gmatch-{row.group}")
            builder.group_matches[row.group] = chosen if chosen in ("all", "any") else "any"
    if remove is not None and remove.isdigit() and int(remove) < len(builder.rows):
        del builder.rows[int(remove)]
    if add and len(builder.rows) < MAX_ROWS:
        if add == "group":
            number = max([row.group for row in builder.rows] + [0]) + 1
            builder.rows.append(Row(group=number))
            builder.group_matches[number] = "any"
        elif add.startswith("g") and add[1:].isdigit():
            number = int(add[1:])
            last = max((i for i, row in enumerate(builder.rows) if row.group == number), default=len(builder.rows) - 1)
            builder.rows.insert(last + 1, Row(group=number))
        else:
            builder.rows.append(Row())
    return builder


def to_definition(builder: Builder) -> dict[str, Any]:
    """Return the definition the rows stand for, noting which row each position came from."""
    conditions: list[Any] = []
    groups: dict[int, tuple[int, dict]] = {}
    builder.positions = {}
    for index, row in enumerate(builder.rows):
        if row.group:
            if row.group not in groups:
                group = {"match": builder.group_matches.get(row.group, "any"), "conditions": []}
                groups[row.group] = (len(conditions), group)
                conditions.append(group)
            at, group = groups[row.group]
            builder.positions[f"conditions[{at}].conditions[{len(group['conditions'])}]"] = index
            group["conditions"].append(_condition(row))
        else:
            builder.positions[f"conditions[{len(conditions)}]"] = index
            conditions.append(_condition(row))
    return {"match": builder.match, "conditions": conditions}


def put_errors(builder: Builder, problems: list[tuple[str, str]]) -> list[str]:
    """Put each problem beside its row; return those that belong to no row."""
    left = []
    for position, reason in problems:
        if position in builder.positions:
            builder.rows[builder.positions[position]].error = reason
        else:
            left.append(reason)
    return left


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def from_definition(definition: dict[str, Any]) -> Builder:
    """Return the builder rows of a stored (checked) definition."""
    builder = Builder(match=definition.get("match", "all"))
    number = 0

    def row_of(item: dict, group: int) -> Row:
        row = Row(item["field"], item["op"], group=group)
        value = item.get("value")
        if row.kind == "event":
            value = value or {}
            row.options = {key: _text(value.get(key)) for key in OPTION_INPUTS if key in value}
            if value.get("between"):
                row.options["from"], row.options["to"] = value["between"]
        elif isinstance(value, list) and item["op"] == "between":
            row.value, row.value2 = _text(value[0]), _text(value[1])
        elif isinstance(value, list):
            row.value = ", ".join(_text(v) for v in value)
        else:
            row.value = _text(value)
        return row

    for item in definition.get("conditions", []):
        if "conditions" in item:
            number += 1
            builder.group_matches[number] = item.get("match", "all")
            builder.rows += [row_of(sub, number) for sub in item["conditions"]]
        else:
            builder.rows.append(row_of(item, 0))
    return builder


def describe(definition: dict[str, Any]) -> list[str]:
    """Return a definition as lines a person reads in their language ("City is Gent")."""
    lines = []
    joiner = _("and") if definition.get("match", "all") == "all" else _("or")
    for item in definition.get("conditions", []):
        if "conditions" in item:
            inner = f" {_('and') if item.get('match') == 'all' else _('or')} ".join(
                _phrase(sub) for sub in item["conditions"])
            lines.append(f"({inner})")
        else:
            lines.append(_phrase(item))
    return [line if i == 0 else f"{joiner} {line}" for i, line in enumerate(lines)]


# The options of an event condition ("ordered", "interaction", "to-do") as a summary names them.
OPTION_WORDS = {
    "sku": N_("SKU %(value)s"), "product": N_("product contains %(value)s"),
    "min_count": N_("at least %(value)s times"), "within_days": N_("in the last %(value)s days"),
    "between": N_("between %(low)s and %(high)s"), "kind": N_("of kind %(value)s"),
    "rule": N_("rule %(value)s"), "status": N_("status %(value)s"),
}


def value_label(field: str, value: Any) -> str:
    """A choice field's value (a stage, a health, an RFM segment code) as the builder's option shows it."""
    return _value_words(field, value) if field in FIELDS else str(value)


def _value_words(field: str, value: Any) -> str:
    """One value of a condition as the reader reads it: a stage, a yes/no, a date of their locale."""
    from crm.views.contact_forms import health_label, stage_label

    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if field == "stage":
        return stage_label(value)
    if field == "health":
        return health_label(value)
    if field == "email_status" and value in EMAIL_STATUSES:
        return _(EMAIL_STATUSES[value])
    if field == "rfm_segment" and value in SEGMENT_LABELS:
        return _(SEGMENT_LABELS[value])
    if FIELDS[field].kind == "date" and isinstance(value, str):
        try:
            return format_date(date.fromisoformat(value))
        except ValueError:
            return value
    if isinstance(value, int):
        return format_decimal(value)
    return _text(value)


def _option_words(name: str, value: Any) -> str:
    from crm.views.contact_forms import KIND_LABELS, task_status_label
    from crm.views.tasks import task_kind_label

    if name == "between" and isinstance(value, list) and len(value) == 2:
        low, high = (_value_words("created_at", v) for v in value)
        return _(OPTION_WORDS[name], low=low, high=high)
    if name == "kind":
        shown = str(KIND_LABELS.get(value, value)).lower()
    elif name == "rule":
        shown = task_kind_label(value).lower()
    elif name == "status":
        shown = task_status_label(value)
    else:
        shown = _value_words("order_count", value) if isinstance(value, int) else _text(value)
    if name not in OPTION_WORDS:
        return f"{name.replace('_', ' ')} {shown}"
    return _(OPTION_WORDS[name], value=shown)


def _phrase(item: dict) -> str:
    field = item["field"]
    label = _(FIELDS[field].label)
    operator = _(OPERATOR_LABELS[item["op"]])
    value = item.get("value")
    if isinstance(value, dict):
        shown = ", ".join(_option_words(k, v) for k, v in value.items())
    elif isinstance(value, list) and item["op"] == "between":
        shown = _("%(low)s and %(high)s", low=_value_words(field, value[0]), high=_value_words(field, value[1]))
    elif isinstance(value, list):
        shown = ", ".join(_value_words(field, v) for v in value)
    elif item["op"] in ("within_last_days", "not_within_last_days"):
        # The operator's label holds the number's place: "in the last … days".
        return f"{label} {operator.replace('…', _value_words(field, value))}".strip()
    elif "value" in item:
        shown = _value_words(field, value)
    else:
        shown = ""
    return f"{label} {operator} {shown}".strip()
