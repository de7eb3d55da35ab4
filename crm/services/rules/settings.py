"""The shop's own journey, health, scoring and to-do rule settings, stored over the defaults.

Each kind is one Setting row ("rules.journey", "rules.health", "rules.scoring",
"rules.retention") holding only what differs from the defaults in rules_config, so a
later release can improve a default the shop never changed. `load` merges the row over
the defaults; `save` validates every value (type and range), stores, and audits.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from crm.extensions import db
from crm.models import HEALTHS, INTERACTION_KINDS, ROLES, Setting
from crm.services.rules.defaults import (
    ASSIGNEE_POLICIES,
    DEFAULT_HEALTH,
    DEFAULT_JOURNEY,
    DEFAULT_RETENTION,
    DEFAULT_SCORING,
    merge_settings,
)
from crm.services.shared.errors import ValidationError
from crm.services.trust import audit

DEFAULTS: dict[str, Mapping[str, Any]] = {
    "journey": DEFAULT_JOURNEY,
    "health": DEFAULT_HEALTH,
    "scoring": DEFAULT_SCORING,
    "retention": DEFAULT_RETENTION,
}
KINDS = tuple(DEFAULTS)
# Roles a to-do may be handed to in turn (a viewer cannot work one).
ASSIGNABLE_ROLES = tuple(r for r in ROLES if r != "viewer")
# Which values each list setting may hold.
LIST_CHOICES: dict[str, tuple[str, ...]] = {
    "advocacy_kinds": INTERACTION_KINDS,
    "not_engagement_kinds": INTERACTION_KINDS,
    "engagement_kinds": INTERACTION_KINDS,
    "question_kinds": INTERACTION_KINDS,
    "testimonial_kinds": INTERACTION_KINDS,
    "health": HEALTHS,
}
# Bounds by the last part of a setting's path; anything else numeric is checked by its suffix.
BOUNDS: dict[str, tuple[float, float]] = {
    "conversion_window_days": (1, 3650),
    "advocacy_survey_min_orders": (1, 1000),
    "at_risk_after_gaps": (0.1, 100),
    "lapsed_after_gaps": (0.1, 100),
    "p_alive_at_risk": (0, 1),
    "p_alive_lapsed": (0, 1),
    "engagement_half_life_days": (1, 3650),
    "engagement_max_points": (0, 100),
    "hot_threshold": (1, 100),
    "min_orders": (1, 1000),
    "after_order_count": (1, 1000),
}
SUFFIX_BOUNDS = {"_days": (0, 3650), "_hours": (0, 8760)}
WEIGHT_BOUNDS = (-100, 100)


@dataclass(frozen=True)
class RuleSettings:
    """The effective settings of every kind, as the engine reads them."""

    journey: dict[str, Any]
    health: dict[str, Any]
    scoring: dict[str, Any]
    retention: dict[str, Any]


def setting_key(kind: str) -> str:
    if kind not in DEFAULTS:
        raise ValueError(f"unknown kind of rules {kind!r}")
    return f"rules.{kind}"


def load(kind: str) -> dict[str, Any]:
    """Return the effective settings of one kind: the stored values over the defaults."""
    row = db.session.get(Setting, setting_key(kind))
    return merge_settings(DEFAULTS[kind], row.value if row is not None else None)


def load_all() -> RuleSettings:
    """Return the effective settings of every kind, in one query."""
    keys = {setting_key(kind): kind for kind in KINDS}
    stored = {keys[key]: value for key, value in db.session.execute(
        select(Setting.key, Setting.value).where(Setting.key.in_(keys)))}
    return RuleSettings(**{kind: merge_settings(DEFAULTS[kind], stored.get(kind)) for kind in KINDS})


def _type_errors(defaults: Mapping[str, Any], values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Return {path: reason} for unknown settings and values of the wrong type."""
    errors: dict[str, str] = {}
    for key, value in values.items():
        path = f"{prefix}{key}"
        if key not in defaults:
            errors[path] = "There is no such setting."
            continue
        default = defaults[key]
        if isinstance(default, Mapping):
            if isinstance(value, Mapping):
                errors.update(_type_errors(default, value, f"{path}."))
            else:
                errors[path] = "Expected a group of settings."
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                errors[path] = "Choose on or off."
        elif isinstance(default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                errors[path] = "Give a number."
            elif isinstance(default, int) and not isinstance(value, int) and not float(value).is_integer():
                errors[path] = "Give a whole number."
        elif isinstance(default, str):
            if not isinstance(value, str):
                errors[path] = "Give a text value."
        elif isinstance(default, (list, tuple)) and not isinstance(value, (list, tuple)):
            errors[path] = "Give a list."
    return errors


def _range_errors(settings: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Return {path: reason} for values outside what the rules can work with."""
    errors: dict[str, str] = {}
    for key, value in settings.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            errors.update(_range_errors(value, f"{path}."))
            continue
        if key == "assignee" and value not in ASSIGNEE_POLICIES:
            errors[path] = "Choose the contact's owner or round robin."
        elif key == "role" and value not in ASSIGNABLE_ROLES:
            errors[path] = f"Choose one of {', '.join(ASSIGNABLE_ROLES)}."
        elif key in LIST_CHOICES:
            unknown = [v for v in value if v not in LIST_CHOICES[key]]
            if unknown:
                errors[path] = f"Unknown: {', '.join(map(str, unknown))}."
            elif key == "health" and not value:
                errors[path] = "Choose at least one health."
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            low, high = (
                WEIGHT_BOUNDS if prefix == "weights."
                else BOUNDS.get(key) or next((b for s, b in SUFFIX_BOUNDS.items() if key.endswith(s)), None)
                or (0, 100_000)
            )
            if not low <= value <= high:
                errors[path] = f"Give a number from {low:g} to {high:g}."
    return errors


def _consistency_errors(kind: str, s: Mapping[str, Any]) -> dict[str, str]:
    """Return {path: reason} for values that contradict each other."""
    errors = {}
    if kind == "health":
        if s["lapsed_after_gaps"] <= s["at_risk_after_gaps"]:
            errors["lapsed_after_gaps"] = "Lapsed must take more gaps than at risk."
        if s["p_alive_lapsed"] >= s["p_alive_at_risk"]:
            errors["p_alive_lapsed"] = "The lapsed chance must be below the at-risk chance."
    return errors


def _differences(defaults: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Return the part of `values` that differs from `defaults` (nested groups kept nested)."""
    diff: dict[str, Any] = {}
    for key, value in values.items():
        default = defaults[key]
        if isinstance(default, Mapping):
            inner = _differences(default, value)
            if inner:
                diff[key] = inner
        elif isinstance(default, (list, tuple)):
            if sorted(value) != sorted(default):  # kinds are a set: order means nothing
                diff[key] = list(value)
        elif value != default:
            diff[key] = value
    return diff


def _flat(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, Mapping):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def save(kind: str, values: Mapping[str, Any], actor_id: int | None) -> dict[str, Any]:
    """Validate and store new settings of one kind (flushed, audited); return the effective settings.

    `values` has the shape of the defaults, whole or in part; a ValidationError names each
    bad value by its dotted path ("weights.cart", "winback.role").
    """
    key = setting_key(kind)
    errors = _type_errors(DEFAULTS[kind], values)
    if errors:
        raise ValidationError(fields=errors)
    before = load(kind)
    merged = merge_settings(before, _integers_where_expected(DEFAULTS[kind], values))
    errors = _range_errors(merged) or _consistency_errors(kind, merged)
    if errors:
        raise ValidationError(fields=errors)
    stored = _differences(DEFAULTS[kind], merged)
    row = db.session.get(Setting, key)
    if row is None:
        row = Setting(key=key, value=stored)
        db.session.add(row)
    elif row.value != stored:
        row.value = stored
    db.session.flush()
    if before != merged:
        # Keys carry the setting's name ("rules.scoring.weights.cart"): the entry keeps only what changed.
        audit.record("update", "setting", None, user_id=actor_id,
                     before=_flat(before, f"{key}."), after=_flat(merged, f"{key}."))
    return merged


def _integers_where_expected(defaults: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Return `values` with whole floats turned into ints where the default is an int (7.0 -> 7)."""
    result: dict[str, Any] = {}
    for key, value in values.items():
        default = defaults[key]
        if isinstance(default, Mapping):
            result[key] = _integers_where_expected(default, value)
        elif isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float):
            result[key] = int(value)
        else:
            result[key] = list(value) if isinstance(value, tuple) else value
    return result
