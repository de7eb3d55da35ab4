"""Retention to-dos: which rule tasks should exist for a contact, and which became moot.

``wanted_tasks`` evaluates every enabled rule against one contact's facts at ``now``
and returns ``TaskSpec``s. Each carries a ``rule_key`` naming the rule and its
occasion ("winback:2026-05-12"), so the writer can insert idempotently on
(contact_id, rule_key): evaluating again, at any later ``now``, yields the same key
for the same occasion. A rule fires only while its occasion is current (inside its
window), so a first import does not create years of stale to-dos.

``moot_tasks`` looks at the rule keys of a contact's open tasks and says which ones
the facts have overtaken ("ordered again on 12 May 2026"). A task that
``wanted_tasks`` returns is never moot at the same ``now``.

Do-not-contact contacts get no tasks, and their open rule tasks are moot.
Dates in keys and reasons are UTC calendar dates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from crm.services.bounds import shifted
from crm.services.facts import ContactFacts, latest_abandoned_cart, unresolved_complaints
from crm.services.journey import derive_health
from crm.services.rules_config import DEFAULT_HEALTH, DEFAULT_RETENTION
from crm.services.wording import (
    money,
    ago,
    days_between,
    format_date,
    format_days,
    ordinal,
    plural,
    require_aware,
    utc_date,
)

_CART_KEY_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
Settings = Mapping[str, Any]


@dataclass(frozen=True)
class TaskSpec:
    """A to-do a rule wants to exist. The writer assigns a person by the policy."""

    kind: str
    rule_key: str
    title: str
    reason: str
    due_at: datetime
    assignee_policy: str  # "owner" (the contact's owner, else round robin among the role) or "round_robin"
    assignee_role: str  # the role to round-robin among: "sales", "support", ...
    # The occasion's last day: past it the moment has gone (an order from March imported in
    # December), and the to-do is not made. None: the occasion lasts while the facts hold.
    open_until: datetime | None = field(default=None, compare=False)


def _start_of_day(d: date) -> datetime:
    return datetime.combine(d, time(0, 0), tzinfo=UTC)


def birthday_in(birthday: date, year: int) -> date:
    """The birthday's date in ``year`` (29 February falls on 28 February in other years)."""
    try:
        return birthday.replace(year=year)
    except ValueError:
        return date(year, 2, 28)


def _spec(
    settings: Mapping[str, Any], kind: str, rule_key: str, title: str, reason: str, due_at: datetime,
    open_until: datetime | None = None,
) -> TaskSpec:
    return TaskSpec(kind, rule_key, title, reason, due_at, settings["assignee"], settings["role"], open_until)


# -- blockers shared by a rule and its moot check ----------------------------------------


def _testimonial_blocker(facts: ContactFacts, c: Mapping[str, Any], now: datetime) -> str | None:
    """Why a testimonial request is out of place now (None: it is fine to ask)."""
    kinds = set(c["testimonial_kinds"])
    given = [i.occurred_at for i in facts.interactions if i.kind in kinds]
    if facts.last_advocacy_at is not None:
        given.append(facts.last_advocacy_at)
    if given:
        return f"gave a testimonial or review on {format_date(max(given))}"
    since = shifted(now, -timedelta(days=c["complaint_lookback_days"]))
    unhappy = [
        i
        for i in facts.interactions
        if i.occurred_at >= since and (i.kind == "complaint" or i.sentiment == "negative")
    ]
    if unhappy:
        latest = max(unhappy, key=lambda i: i.occurred_at)
        what = "complaint" if latest.kind == "complaint" else f"negative {latest.kind}"
        return f"{what} on {format_date(latest.occurred_at)}"
    return None


def _open_until(since: datetime, *day_limits: int) -> datetime:
    """The last moment of the day that is the nearest of these many days after `since` (UTC days,
    as `days_between` counts them)."""
    last_day = shifted(utc_date(since), timedelta(days=min(day_limits) + 1))
    return shifted(_start_of_day(last_day), -timedelta(microseconds=1))


def _ordered_after_day(facts: ContactFacts, day: date) -> str | None:
    if facts.last_order_at is not None and utc_date(facts.last_order_at) > day:
        return format_date(facts.last_order_at)
    return None


# -- the rules -----------------------------------------------------------------------------


def _followup_first_order(facts: ContactFacts, c: Settings, now: datetime, _h: Settings) -> TaskSpec | None:
    if not facts.is_customer:
        return None
    first = facts.first_order_at
    assert first is not None
    due = shifted(first, timedelta(days=c["delay_days"]))
    if now < due:
        return None
    return _spec(
        c,
        "followup_call",
        f"followup:first_order:{utc_date(first).isoformat()}",
        "Satisfaction call about the first order",
        f"first order on {format_date(first)}, {ago(days_between(first, now))}: "
        f"check it arrived and all is well",
        due,
        shifted(due, timedelta(days=c["grace_days"]) - timedelta(microseconds=1)),
    )


def _testimonial_request(facts: ContactFacts, c: Settings, now: datetime, _h: Settings) -> TaskSpec | None:
    if facts.order_count < c["min_orders"] or facts.last_order_at is None:
        return None
    since_last = days_between(facts.last_order_at, now)
    if since_last < c["delay_days"]:
        return None
    if _testimonial_blocker(facts, c, now) is not None:
        return None
    return _spec(
        c,
        "testimonial_request",
        "testimonial:repeat_customer",
        "Ask for a testimonial",
        f"repeat customer ({plural(facts.order_count, 'paid order')}, the latest "
        f"{ago(since_last)}) with no complaint or negative feedback in the last "
        f"{format_days(c['complaint_lookback_days'])} and no testimonial yet",
        shifted(facts.last_order_at, timedelta(days=c["delay_days"])),
        _open_until(facts.last_order_at, c["max_days_since_order"], c["delay_days"] + c["grace_days"]),
    )


def _winback(facts: ContactFacts, c: Settings, now: datetime, health_settings: Settings) -> TaskSpec | None:
    median = facts.shop.median_spend
    if facts.last_order_at is None or median is None or facts.total_spent <= median:
        return None
    health, why = derive_health(facts, health_settings, now)
    if health not in c["health"]:
        return None
    label = "at risk" if health == "at_risk" else health
    return _spec(
        c,
        "winback",
        f"winback:{utc_date(facts.last_order_at).isoformat()}",
        f"Win back a valuable customer who is {label}",
        f"{why}; spent {money(facts.total_spent, facts.shop.currency)} in total, above the shop median of {money(median, facts.shop.currency)}",
        now,
    )


def _birthday(facts: ContactFacts, c: Settings, now: datetime, _h: Settings) -> TaskSpec | None:
    if facts.birthday is None:
        return None
    today = utc_date(now)
    for year in (today.year, today.year + 1):
        day = birthday_in(facts.birthday, year)
        greet_from = shifted(day, -timedelta(days=c["days_ahead"]))
        if greet_from <= today <= day:
            return _spec(
                c,
                "birthday",
                f"birthday:{year}",
                "Send birthday greetings",
                f"birthday on {format_date(day)}",
                _start_of_day(greet_from),
            )
    return None


def _abandoned_cart(facts: ContactFacts, c: Settings, now: datetime, _h: Settings) -> TaskSpec | None:
    cart = latest_abandoned_cart(facts)
    if cart is None:
        return None
    due = shifted(cart, timedelta(hours=c["delay_hours"]))
    if now < due:
        return None
    return _spec(
        c,
        "cart_followup",
        f"cart:{cart.strftime(_CART_KEY_FORMAT)}",
        "Follow up an abandoned cart",
        f"left a cart on {format_date(cart)} and has not ordered since",
        due,
        shifted(cart, timedelta(days=c["max_age_days"])),
    )


def _replenishment(facts: ContactFacts, c: Settings, now: datetime, _h: Settings) -> TaskSpec | None:
    gap, last = facts.usual_gap_days, facts.last_order_at
    if gap is None or last is None or gap < c["min_gap_days"]:
        return None
    due = shifted(last, timedelta(days=gap - c["days_before"]))
    if now < due:
        return None
    return _spec(
        c,
        "replenishment",
        f"replenish:{utc_date(last).isoformat()}",
        "Replenishment reminder",
        f"usually orders every {format_days(gap)}; last order on {format_date(last)}, "
        f"{ago(days_between(last, now))}",
        due,
        shifted(last, timedelta(days=gap + c["grace_days"])),
    )


def _survey(facts: ContactFacts, c: Settings, now: datetime, _h: Settings) -> TaskSpec | None:
    n, last = c["after_order_count"], facts.last_order_at
    if facts.order_count < n or last is None:
        return None
    if days_between(last, now) < c["delay_days"]:
        return None
    if facts.order_count == n:
        why = f"placed their {ordinal(n)} paid order on {format_date(last)}"
    else:
        why = (
            f"has placed {facts.order_count} paid orders, the latest on {format_date(last)}; "
            f"the survey follows the {ordinal(n)}"
        )
    return _spec(
        c,
        "survey",
        f"survey:order_count:{n}",
        "Send a satisfaction survey",
        why,
        shifted(last, timedelta(days=c["delay_days"])),
        _open_until(last, c["max_days_since_order"], c["delay_days"] + c["grace_days"]),
    )


def _problem_followup(facts: ContactFacts, c: Settings, now: datetime, _h: Settings) -> TaskSpec | None:
    problems = unresolved_complaints(facts, negative_too=True)
    if not problems:
        return None
    latest = problems[-1]
    what = "complaint" if latest.kind == "complaint" else f"negative {latest.kind}"
    return _spec(
        c,
        "problem_followup",
        f"problem:{latest.occurred_at.strftime(_CART_KEY_FORMAT)}",
        "Satisfaction call about a problem",
        f"{what} on {format_date(latest.occurred_at)}, {ago(days_between(latest.occurred_at, now))}, "
        f"with no outcome recorded: call to put it right",
        latest.occurred_at,
        shifted(latest.occurred_at, timedelta(days=c["within_days"])),
    )


def _hot_lead(facts: ContactFacts, c: Settings, now: datetime, _h: Settings) -> TaskSpec | None:
    hot = facts.hot_since
    if hot is None or hot > now or _ordered_after_day(facts, utc_date(hot)):
        return None
    score = f" (score {facts.lead_score})" if facts.lead_score is not None else ""
    return _spec(
        c,
        "hot_lead",
        f"hot_lead:{utc_date(hot).isoformat()}",
        "Call a hot lead",
        f"lead score crossed the hot-lead threshold on {format_date(hot)}{score}",
        hot,
    )


def _stay_in_touch(facts: ContactFacts, c: Settings, now: datetime, _h: Settings) -> TaskSpec | None:
    every = facts.stay_in_touch_days
    if not every:
        return None
    cadence = f"stay in touch every {format_days(every)}"
    last = facts.latest_interaction_at
    if last is None:
        return _spec(
            c,
            "stay_in_touch",
            "stay_in_touch:never",
            "Get in touch",
            f"no interaction logged yet; {cadence}",
            now,
        )
    due = shifted(last, timedelta(days=every))
    if now < due:
        return None
    return _spec(
        c,
        "stay_in_touch",
        f"stay_in_touch:{utc_date(last).isoformat()}",
        "Get in touch",
        f"last interaction on {format_date(last)}, {ago(days_between(last, now))}; {cadence}",
        due,
    )


# The first part of the rule_key of each rule's to-dos ("testimonial:repeat_customer").
RULE_KEY_PREFIXES = {
    "followup_first_order": "followup",
    "testimonial_request": "testimonial",
    "winback": "winback",
    "birthday": "birthday",
    "abandoned_cart": "cart",
    "replenishment": "replenish",
    "survey": "survey",
    "problem_followup": "problem",
    "hot_lead": "hot_lead",
    "stay_in_touch": "stay_in_touch",
}

Rule = Callable[[ContactFacts, Settings, datetime, Settings], TaskSpec | None]
RULES: dict[str, Rule] = {
    "followup_first_order": _followup_first_order,
    "testimonial_request": _testimonial_request,
    "winback": _winback,
    "birthday": _birthday,
    "abandoned_cart": _abandoned_cart,
    "replenishment": _replenishment,
    "survey": _survey,
    "problem_followup": _problem_followup,
    "hot_lead": _hot_lead,
    "stay_in_touch": _stay_in_touch,
}


def wanted_tasks(
    facts: ContactFacts,
    settings: Mapping[str, Any],
    now: datetime,
    *,
    health_settings: Mapping[str, Any] = DEFAULT_HEALTH,
    passed: list[TaskSpec] | None = None,
) -> list[TaskSpec]:
    """The rule tasks that should exist for this contact at ``now`` (none for do-not-contact).

    ``health_settings`` feed the win-back rule, which targets customers whose health
    (see ``journey.derive_health``) is in its ``health`` list. Occasions whose moment has
    passed (``open_until`` before ``now``: history arriving late, by import or webhook) are
    not wanted; they are appended to ``passed`` when given, so a caller can say why it made
    fewer to-dos than the facts suggest.
    """
    require_aware(now, "now")
    if facts.do_not_contact:
        return []
    wanted = []
    for name, rule in RULES.items():
        c = settings[name]
        if c["enabled"]:
            spec = rule(facts, c, now, health_settings)
            if spec is None:
                continue
            if spec.open_until is not None and now > spec.open_until:
                if passed is not None:
                    passed.append(spec)
                continue
            wanted.append(spec)
    return wanted


# -- moot ----------------------------------------------------------------------------------


def _moot_reason(key: str, facts: ContactFacts, now: datetime, settings: Mapping[str, Any],
                 health_settings: Mapping[str, Any]) -> str | None:
    rule, _, occasion = key.partition(":")
    if rule == "followup":
        _, _, day = occasion.partition(":")
        if facts.first_order_at is None:
            return "no paid order any more"
        if utc_date(facts.first_order_at).isoformat() != day:
            return f"the first paid order is now the one on {format_date(facts.first_order_at)}"
    elif rule == "testimonial":
        return _testimonial_blocker(facts, settings["testimonial_request"], now)
    elif rule in ("winback", "replenish"):
        ordered = _ordered_after_day(facts, date.fromisoformat(occasion))
        if ordered:
            return f"ordered again on {ordered}"
        if rule == "winback":
            # The to-do follows the figures beside it: once the customer is judged active
            # again (a fresh prediction), there is nobody to win back.
            health, why = derive_health(facts, health_settings, now)
            if health not in settings["winback"]["health"]:
                return f"no longer slipping away: {(health or 'not a customer').replace('_', ' ')} ({why})"
    elif rule == "birthday":
        if facts.birthday is None:
            return "birthday removed"
        day = birthday_in(facts.birthday, int(occasion))
        if utc_date(now) > day:
            return f"birthday was on {format_date(day)}"
    elif rule == "cart":
        left = datetime.strptime(occasion, _CART_KEY_FORMAT).replace(tzinfo=UTC)
        if facts.last_order_at is not None and facts.last_order_at >= left:
            return f"ordered on {format_date(facts.last_order_at)}"
    elif rule == "survey":
        n = int(occasion.rpartition(":")[2])
        if facts.order_count < n:
            return f"only {plural(facts.order_count, 'paid order')} now"
    elif rule == "problem":
        left = datetime.strptime(occasion, _CART_KEY_FORMAT).replace(tzinfo=UTC)
        still_open = [p for p in unresolved_complaints(facts, negative_too=True) if p.occurred_at >= left]
        if not still_open:
            return "the problem has an outcome recorded"
    elif rule == "hot_lead":
        ordered = _ordered_after_day(facts, date.fromisoformat(occasion))
        if ordered:
            return f"ordered on {ordered}"
    elif rule == "stay_in_touch":
        if not facts.stay_in_touch_days:
            return "no longer on a stay-in-touch cadence"
        last = facts.latest_interaction_at
        if last is not None and (occasion == "never" or utc_date(last) > date.fromisoformat(occasion)):
            return f"interaction logged on {format_date(last)}"
    return None


def moot_tasks(
    open_tasks: Iterable[str],
    facts: ContactFacts,
    now: datetime,
    settings: Mapping[str, Any] = DEFAULT_RETENTION,
    *,
    health_settings: Mapping[str, Any] = DEFAULT_HEALTH,
) -> list[tuple[str, str]]:
    """(rule_key, reason) for each open rule task the facts have made moot.

    ``open_tasks`` are the rule keys of the contact's open tasks; keys of tasks a
    person made (None) and keys this module does not know are left alone.
    """
    require_aware(now, "now")
    moot = []
    for key in open_tasks:
        if not key:
            continue
        if facts.do_not_contact:
            moot.append((key, "marked do not contact"))
            continue
        try:
            reason = _moot_reason(key, facts, now, settings, health_settings)
        except ValueError:  # a key in an older format: leave the task to a person
            reason = None
        if reason:
            moot.append((key, reason))
    return moot
