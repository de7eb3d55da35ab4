"""The flow settings: what each retention rule does (a to-do, the email, or both), and the
shop-wide pacing (cap and sending window). One Setting row, audited on change."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from crm.extensions import db
from crm.models import Setting, utcnow
from crm.services.flows.pacing import Pacing
from crm.services.shared.errors import ValidationError
from crm.services.shop.clock import shop_zone
from crm.services.trust import audit

SETTING_KEY = "flows"
ACTIONS = {"todo": "Make a to-do (today)", "email": "Send the email", "both": "Send the email, then a to-do if no reply or order"}
# Rule -> the to-do kind the rule makes (its template has the rule's name).
RULE_KINDS = {
    "followup_first_order": "followup_call", "testimonial_request": "testimonial_request", "winback": "winback",
    "birthday": "birthday", "abandoned_cart": "cart_followup", "replenishment": "replenishment",
    "survey": "survey", "stay_in_touch": "stay_in_touch",
}
RULES = tuple(RULE_KINDS)
PACING_DEFAULTS: dict[str, Any] = {"cap": 2, "period_days": 7, "window_start": "09:00", "window_end": "20:00"}
RULE_DEFAULTS: dict[str, Any] = {"action": "todo", "followup_days": 3, "segment_id": None, "since": None}
TIME_FORMAT = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


@dataclass(frozen=True)
class Flow:
    rule: str
    action: str
    followup_days: int
    segment_id: int | None
    since: datetime | None

    @property
    def kind(self) -> str:
        return RULE_KINDS[self.rule]

    @property
    def sends(self) -> bool:
        return self.action in ("email", "both")


def _stored() -> dict[str, Any]:
    row = db.session.get(Setting, SETTING_KEY)
    return dict(row.value) if row is not None and isinstance(row.value, dict) else {}


def pacing_values() -> dict[str, Any]:
    return {**PACING_DEFAULTS, **(_stored().get("pacing") or {})}


def pacing() -> Pacing:
    """The pacing in force (the shop's time zone, SHOP_TIMEZONE)."""
    values = pacing_values()
    return Pacing(cap=int(values["cap"]), period_days=int(values["period_days"]),
                  window_start=time.fromisoformat(values["window_start"]),
                  window_end=time.fromisoformat(values["window_end"]), zone=shop_zone())


def flows() -> dict[str, Flow]:
    stored = _stored().get("rules") or {}
    result = {}
    for rule in RULES:
        values = {**RULE_DEFAULTS, **(stored.get(rule) or {})}
        since = datetime.fromisoformat(values["since"]) if values.get("since") else None
        result[rule] = Flow(rule, values["action"], int(values["followup_days"]), values["segment_id"], since)
    return result


def _save(value: dict[str, Any], before: dict[str, Any], actor_id: int | None) -> None:
    row = db.session.get(Setting, SETTING_KEY)
    if row is None:
        db.session.add(Setting(key=SETTING_KEY, value=value))
    else:
        row.value = value
    db.session.flush()
    audit.record("update", "setting", None, user_id=actor_id, before={SETTING_KEY: before}, after={SETTING_KEY: value})


def save_flow(rule: str, form: dict[str, Any], actor_id: int | None, now: datetime | None = None) -> Flow:
    """Store one rule's flow from the page; a ValidationError names each bad field."""
    if rule not in RULE_KINDS:
        raise ValidationError(fields={"rule": "There is no such rule."})
    errors: dict[str, str] = {}
    action = str(form.get("action") or "")
    if action not in ACTIONS:
        errors["action"] = "Choose a to-do, the email, or both."
    try:
        followup_days = int(str(form.get("followup_days") or "3").strip())
        if not 1 <= followup_days <= 90:
            raise ValueError
    except ValueError:
        followup_days = 3
        errors["followup_days"] = "Give a number of days from 1 to 90."
    segment_id = None
    raw_segment = str(form.get("segment_id") or "").strip()
    if raw_segment:
        from crm.services.segments import store as segments

        segment = segments.get(int(raw_segment)) if raw_segment.isdigit() and len(raw_segment) < 12 else None
        if segment is None:
            errors["segment_id"] = "Choose one of the saved segments, or everyone."
        else:
            segment_id = segment.id
    if errors:
        raise ValidationError(fields=errors)
    stored = _stored()
    before = {k: v for k, v in stored.items()}
    rules = dict(stored.get("rules") or {})
    current = {**RULE_DEFAULTS, **(rules.get(rule) or {})}
    since = current.get("since")
    if action in ("email", "both") and current["action"] not in ("email", "both"):
        since = (now or utcnow()).isoformat()  # only occasions from now on: switching on never mails the past
    elif action == "todo":
        since = None
    rules[rule] = {"action": action, "followup_days": followup_days, "segment_id": segment_id, "since": since}
    _save({**stored, "rules": rules}, before, actor_id)
    return flows()[rule]


def save_pacing(form: dict[str, Any], actor_id: int | None) -> dict[str, Any]:
    """Store the cap and the sending window; a ValidationError names each bad field."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name, low, high, what in (("cap", 1, 50, "a number of emails from 1 to 50"),
                                  ("period_days", 1, 90, "a number of days from 1 to 90")):
        try:
            values[name] = int(str(form.get(name) or "").strip())
            if not low <= values[name] <= high:
                raise ValueError
        except ValueError:
            errors[name] = f"Give {what}."
    for name in ("window_start", "window_end"):
        values[name] = str(form.get(name) or "").strip()
        if not TIME_FORMAT.match(values[name]):
            errors[name] = "Give a time of day as HH:MM, e.g. 09:00."
    if not errors and values["window_start"] >= values["window_end"]:
        errors["window_end"] = "The window must end after it starts."
    if errors:
        raise ValidationError(fields=errors)
    stored = _stored()
    _save({**stored, "pacing": values}, dict(stored), actor_id)
    return values
