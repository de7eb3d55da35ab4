"""Default settings for the journey, health, scoring and retention rules, in one place.

The shop's own values live in the ``settings`` table as JSON (one key per dict
below); ``merge_settings(DEFAULT_X, stored)`` gives the effective settings. The
defaults are read-only so that no caller can change them for everyone by accident.

Retention rules share the keys ``enabled`` and ``assignee`` / ``role``: the
assignee policy is ``"owner"`` (the contact's owner, else round robin among
``role``) or ``"round_robin"`` (always round robin among ``role``). The rules
only say which policy applies; the writer picks the person.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

ASSIGNEE_POLICIES = ("owner", "round_robin")


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_thaw(v) for v in value]
    return copy.deepcopy(value)


DEFAULT_JOURNEY: Mapping[str, Any] = _freeze(
    {
        # A customer stays in "conversion" for this many days after the first paid order
        # (day 30 is still conversion, day 31 is retention).
        "conversion_window_days": 30,
        # A second paid order moves a customer to retention before the window ends.
        "repeat_order_is_retention": True,
        # Interaction kinds that make a customer an advocate (unless their sentiment is negative).
        "advocacy_kinds": ["testimonial", "review"],
        # A positive survey makes an advocate of a customer with at least this many paid orders.
        "advocacy_survey_min_orders": 2,
        # Engagement signals for consideration: any inbound interaction except these kinds ...
        "not_engagement_kinds": ["note"],
        # ... and these kinds in any direction.
        "engagement_kinds": ["meeting", "cart"],
    }
)

DEFAULT_HEALTH: Mapping[str, Any] = _freeze(
    {
        # Recency rule: days since the last order compared with the customer's usual gap
        # between orders (the shop-wide median gap for one-time buyers).
        "at_risk_after_gaps": 1.5,  # more than 1.5 usual gaps without an order: at risk
        "lapsed_after_gaps": 3.0,  # more than 3 usual gaps: lapsed
        "fallback_gap_days": 90,  # when the shop has no median gap yet
        "min_gap_days": 14,  # a gap never counts as shorter than this
        # BG/NBD: once a fit exists, a repeat buyer past their usual gap is judged by p_alive.
        "use_p_alive": True,
        "p_alive_at_risk": 0.6,  # p_alive below this: at risk
        "p_alive_lapsed": 0.3,  # p_alive below this: lapsed
    }
)

DEFAULT_SCORING: Mapping[str, Any] = _freeze(
    {
        "weights": {
            # profile fit
            "reachable": 10,  # has an email address or a phone number
            "consent": 10,
            "company": 5,
            # engagement, per interaction, before decay
            "engagement_inbound": 5,  # an inbound interaction (not a cart or complaint)
            "engagement_meeting": 10,  # a meeting, either direction
            # intent
            "cart": 15,  # an abandoned cart in the last cart_window_days
            "open_question": 10,  # an unanswered inbound email/chat/call in question_window_days
            # value (customers): points per quintile, so 1..5 quintile -> 3..15 points each
            "rfm_per_quintile": 3,
            # penalties
            "complaint": -20,  # a complaint not resolved
            "do_not_contact": -50,
        },
        "engagement_half_life_days": 30,  # an interaction this old counts half
        "engagement_max_points": 30,  # engagement never adds more than this
        "cart_window_days": 14,
        "question_window_days": 14,
        "question_kinds": ["email", "chat", "call"],
        # A negative interaction of any kind ("order never arrived", logged as a call) is a
        # problem like a complaint: no engagement or open-question points, the complaint
        # penalty until resolved, and a satisfaction call (the problem_followup to-do rule).
        "negative_is_a_problem": True,
        "hot_threshold": 70,
    }
)

DEFAULT_RETENTION: Mapping[str, Any] = _freeze(
    {
        # Satisfaction call some days after the first paid order.
        "followup_first_order": {
            "enabled": True,
            "delay_days": 7,
            "grace_days": 14,
            "assignee": "owner",
            "role": "support",
        },
        # Ask a happy repeat customer for a testimonial.
        "testimonial_request": {
            "enabled": True,
            "min_orders": 2,
            "delay_days": 7,
            "max_days_since_order": 90,
            # History is history: an occasion older than this (an imported order from
            # March) makes no to-do; a daily refresh makes each one on the day it falls due.
            "grace_days": 14,
            "complaint_lookback_days": 180,
            "testimonial_kinds": ["testimonial", "review"],
            "assignee": "owner",
            "role": "support",
        },
        # Win back a valuable customer (total spend above the shop median) whose health slipped.
        "winback": {"enabled": True, "health": ["at_risk", "lapsed"], "assignee": "owner", "role": "sales"},
        # Birthday greeting, due this many days ahead.
        "birthday": {"enabled": True, "days_ahead": 7, "assignee": "owner", "role": "support"},
        # Follow up an abandoned cart (no order since), after a delay, while it is fresh.
        "abandoned_cart": {
            "enabled": True,
            "delay_hours": 24,
            "max_age_days": 7,
            "assignee": "round_robin",
            "role": "sales",
        },
        # Remind a repeat customer when their usual gap between orders is nearly up.
        "replenishment": {
            "enabled": True,
            "days_before": 5,
            "min_gap_days": 14,
            "grace_days": 14,
            "assignee": "owner",
            "role": "sales",
        },
        # Satisfaction survey after the Nth paid order.
        "survey": {
            "enabled": True,
            "after_order_count": 3,
            "delay_days": 3,
            "max_days_since_order": 30,
            "grace_days": 14,
            "assignee": "owner",
            "role": "support",
        },
        # Call a customer who reported a problem (a complaint, or a negative interaction) that
        # nobody has resolved yet: a satisfaction call, while it is fresh.
        "problem_followup": {"enabled": True, "within_days": 14, "assignee": "owner", "role": "support"},
        # Call a lead whose score crossed the hot-lead threshold.
        "hot_lead": {"enabled": True, "assignee": "owner", "role": "sales"},
        # Contacts with a stay-in-touch cadence: a to-do once that many days pass without an interaction.
        "stay_in_touch": {"enabled": True, "assignee": "owner", "role": "sales"},
    }
)


def _check_type(path: str, default: Any, value: Any) -> None:
    if default is None:
        return
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, (list, tuple))
    else:
        ok = True
    if not ok:
        raise ValueError(f"setting {path} must be like {default!r}, got {value!r}")


def merge_settings(
    defaults: Mapping[str, Any], overrides: Mapping[str, Any] | None = None, _path: str = ""
) -> dict[str, Any]:
    """Return a new, plain dict: ``defaults`` with ``overrides`` applied, nested dicts merged.

    Unknown keys and values of the wrong type raise ``ValueError`` (a typo in a stored
    setting should be loud, not silently ignored). Lists replace lists. Neither
    argument is changed.
    """
    result = _thaw(defaults)
    for key, value in (overrides or {}).items():
        path = f"{_path}.{key}" if _path else str(key)
        if key not in result:
            raise ValueError(f"unknown setting {path}")
        current = result[key]
        if isinstance(current, dict):
            if not isinstance(value, Mapping):
                raise ValueError(f"setting {path} must be a mapping, got {value!r}")
            result[key] = merge_settings(current, value, path)
        else:
            _check_type(path, current, value)
            if key == "assignee" and value not in ASSIGNEE_POLICIES:
                raise ValueError(f"setting {path} must be one of {ASSIGNEE_POLICIES}, got {value!r}")
            result[key] = _thaw(value)
    return result
