"""Retention to-dos: which rule tasks should exist for a contact, and which became moot.

``wanted_tasks`` evaluates every enabled rule against one contact's facts at ``now``
and returns ``TaskSpec``s. Each carries a ``rule_key`` naming the rule and its
occasion ("winback:2026-05-12"), so the writer can insert idempotently on
(contact_id, rule_key): evaluating again, at any later ``now``, yields the same key
for the same occasion. A rule fires only while its occasion is current (inside its
window), so a first import does not create years of stale to-dos. ``occasions`` is the same
without the words: the engine words only the to-dos it makes.

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
from functools import lru_cache
from typing import Any, NamedTuple

from crm.services.rules.defaults import DEFAULT_HEALTH, DEFAULT_RETENTION
from crm.services.rules.facts import ContactFacts, latest_abandoned_cart, unresolved_complaints
from crm.services.rules.journey import derive_health
from crm.services.shared.bounds import shifted
from crm.services.shared.said import N_, Day, Money, Np_, Ordinal, said, said_plural
from crm.services.shared.wording import ago, days_between, format_days, require_aware, utc_date


def _day(moment: datetime | date) -> Day:
    """The UTC calendar day of a moment, as reasons name it."""
    return Day(utc_date(moment))


def _orders(count: int):
    return said_plural(Np_(count, "%(num)s paid order", "%(num)s paid orders"), count)

_CART_KEY_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
Settings = Mapping[str, Any]
# The contact's health and its reason at `now` (journey.derive_health), judged once when asked.
Health = tuple[str | None, str]
Judge = Callable[[], Health]


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


class Occasion(NamedTuple):
    """What a rule found: a to-do's fields, its reason still to be worded (`words()`). A refresh
    drops most occasions unworded: passed (about two a customer in a shop whose history was
    imported) or made before."""

    kind: str
    rule_key: str
    title: str
    words: Callable[[], str]
    due_at: datetime
    assignee_policy: str
    assignee_role: str
    open_until: datetime | None

    def has_passed(self, now: datetime) -> bool:
        """Whether the occasion's moment has gone at `now` (its to-do is not made)."""
        return self.open_until is not None and now > self.open_until

    def spec(self) -> TaskSpec:
        """The to-do, worded."""
        return TaskSpec(self.kind, self.rule_key, self.title, self.words(), self.due_at, self.assignee_policy,
                        self.assignee_role, self.open_until)


def _spec(
    settings: Mapping[str, Any], kind: str, rule_key: str, title: str, words: Callable[[], str], due_at: datetime,
    open_until: datetime | None = None,
) -> Occasion:
    return Occasion(kind, rule_key, title, words, due_at, settings["assignee"], settings["role"], open_until)


# -- blockers shared by a rule and its moot check ----------------------------------------


def _testimonial_blocker(facts: ContactFacts, c: Mapping[str, Any], now: datetime) -> str | None:
    """Why a testimonial request is out of place now (None: it is fine to ask)."""
    kinds = set(c["testimonial_kinds"])
    given = [i.occurred_at for i in facts.interactions if i.kind in kinds]
    if facts.last_advocacy_at is not None:
        given.append(facts.last_advocacy_at)
    if given:
        return said(N_("gave a testimonial or review on %(date)s"), date=_day(max(given)))
    since = shifted(now, -timedelta(days=c["complaint_lookback_days"]))
    unhappy = [
        i
        for i in facts.interactions
        if i.occurred_at >= since and (i.kind == "complaint" or i.sentiment == "negative")
    ]
    if unhappy:
        latest = max(unhappy, key=lambda i: i.occurred_at)
        return said(N_("%(what)s on %(date)s"), what=_problem(latest.kind), date=_day(latest.occurred_at))
    return None


def _open_until(since: datetime, *day_limits: int) -> datetime:
    """The last moment of the day that is the nearest of these many days after `since` (UTC days,
    as `days_between` counts them)."""
    return _last_moment(utc_date(since), min(day_limits))


@lru_cache(maxsize=4096)
def _last_moment(day: date, days: int) -> datetime:
    # Per day and limit, made once: a refresh asks it for most customers, of a few hundred days.
    last_day = shifted(day, timedelta(days=days + 1))
    return shifted(_start_of_day(last_day), -timedelta(microseconds=1))


def _ordered_after_day(facts: ContactFacts, day: date) -> Day | None:
    if facts.last_order_at is not None and utc_date(facts.last_order_at) > day:
        return _day(facts.last_order_at)
    return None


def _problem(kind: str):
    """'complaint', or 'negative call' for a negative interaction of another kind."""
    return said(N_("complaint")) if kind == "complaint" else said(N_("negative %(kind)s"), kind=kind)


# -- the rules -----------------------------------------------------------------------------


def _followup_first_order(facts: ContactFacts, c: Settings, now: datetime, _h: Judge) -> Occasion | None:
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
        said(N_("Satisfaction call about the first order")),
        lambda: said(N_("first order on %(date)s, %(ago)s: check it arrived and all is well"),
                     date=_day(first), ago=ago(days_between(first, now))),
        due,
        shifted(due, timedelta(days=c["grace_days"]) - timedelta(microseconds=1)),
    )


def _testimonial_request(facts: ContactFacts, c: Settings, now: datetime, _h: Judge) -> Occasion | None:
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
        said(N_("Ask for a testimonial")),
        lambda: said(N_("repeat customer (%(orders)s, the latest %(ago)s) with no complaint or negative feedback "
                        "in the last %(days)s and no testimonial yet"),
                     orders=_orders(facts.order_count), ago=ago(since_last),
                     days=format_days(c["complaint_lookback_days"])),
        shifted(facts.last_order_at, timedelta(days=c["delay_days"])),
        _open_until(facts.last_order_at, c["max_days_since_order"], c["delay_days"] + c["grace_days"]),
    )


def _winback(facts: ContactFacts, c: Settings, now: datetime, judged: Judge) -> Occasion | None:
    median = facts.shop.median_spend
    if facts.last_order_at is None or median is None or facts.total_spent <= median:
        return None
    health, why = judged()
    if health not in c["health"]:
        return None
    title = said(N_("Win back a valuable customer who is at risk")) if health == "at_risk" else \
        said(N_("Win back a valuable customer who is lapsed")) if health == "lapsed" else \
        said(N_("Win back a valuable customer who is %(health)s"), health=health)
    return _spec(
        c,
        "winback",
        f"winback:{utc_date(facts.last_order_at).isoformat()}",
        title,
        lambda: said(N_("%(why)s; spent %(spent)s in total, above the shop median of %(median)s"), why=why,
                     spent=Money(facts.total_spent, facts.shop.currency), median=Money(median, facts.shop.currency)),
        now,
    )


def _birthday(facts: ContactFacts, c: Settings, now: datetime, _h: Judge) -> Occasion | None:
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
                said(N_("Send birthday greetings")),
                lambda: said(N_("birthday on %(date)s"), date=Day(day)),
                _start_of_day(greet_from),
            )
    return None


def _abandoned_cart(facts: ContactFacts, c: Settings, now: datetime, _h: Judge) -> Occasion | None:
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
        said(N_("Follow up an abandoned cart")),
        lambda: said(N_("left a cart on %(date)s and has not ordered since"), date=_day(cart)),
        due,
        shifted(cart, timedelta(days=c["max_age_days"])),
    )


def _replenishment(facts: ContactFacts, c: Settings, now: datetime, _h: Judge) -> Occasion | None:
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
        said(N_("Replenishment reminder")),
        lambda: said(N_("usually orders every %(days)s; last order on %(date)s, %(ago)s"),
                     days=format_days(gap), date=_day(last), ago=ago(days_between(last, now))),
        due,
        shifted(last, timedelta(days=gap + c["grace_days"])),
    )


def _survey(facts: ContactFacts, c: Settings, now: datetime, _h: Judge) -> Occasion | None:
    n, last = c["after_order_count"], facts.last_order_at
    if facts.order_count < n or last is None:
        return None
    if days_between(last, now) < c["delay_days"]:
        return None

    def why() -> str:
        if facts.order_count == n:
            return said(N_("placed their %(nth)s paid order on %(date)s"), nth=Ordinal(n), date=_day(last))
        return said(N_("has placed %(count)s paid orders, the latest on %(date)s; the survey follows the %(nth)s"),
                    count=facts.order_count, date=_day(last), nth=Ordinal(n))

    return _spec(
        c,
        "survey",
        f"survey:order_count:{n}",
        said(N_("Send a satisfaction survey")),
        why,
        shifted(last, timedelta(days=c["delay_days"])),
        _open_until(last, c["max_days_since_order"], c["delay_days"] + c["grace_days"]),
    )


def _problem_followup(facts: ContactFacts, c: Settings, now: datetime, _h: Judge) -> Occasion | None:
    problems = unresolved_complaints(facts, negative_too=True)
    if not problems:
        return None
    latest = problems[-1]
    return _spec(
        c,
        "problem_followup",
        f"problem:{latest.occurred_at.strftime(_CART_KEY_FORMAT)}",
        said(N_("Satisfaction call about a problem")),
        lambda: said(N_("%(what)s on %(date)s, %(ago)s, with no outcome recorded: call to put it right"),
                     what=_problem(latest.kind), date=_day(latest.occurred_at),
                     ago=ago(days_between(latest.occurred_at, now))),
        latest.occurred_at,
        shifted(latest.occurred_at, timedelta(days=c["within_days"])),
    )


def _hot_lead(facts: ContactFacts, c: Settings, now: datetime, _h: Judge) -> Occasion | None:
    hot = facts.hot_since
    if hot is None or hot > now or _ordered_after_day(facts, utc_date(hot)):
        return None

    def why() -> str:
        if facts.lead_score is not None:
            return said(N_("lead score crossed the hot-lead threshold on %(date)s (score %(score)s)"),
                        date=_day(hot), score=facts.lead_score)
        return said(N_("lead score crossed the hot-lead threshold on %(date)s"), date=_day(hot))

    return _spec(
        c,
        "hot_lead",
        f"hot_lead:{utc_date(hot).isoformat()}",
        said(N_("Call a hot lead")),
        why,
        hot,
    )


def _stay_in_touch(facts: ContactFacts, c: Settings, now: datetime, _h: Judge) -> Occasion | None:
    every = facts.stay_in_touch_days
    if not every:
        return None

    def cadence() -> str:
        return said(N_("stay in touch every %(days)s"), days=format_days(every))

    last = facts.latest_interaction_at
    if last is None:
        return _spec(
            c,
            "stay_in_touch",
            "stay_in_touch:never",
            said(N_("Get in touch")),
            lambda: said(N_("no interaction logged yet; %(cadence)s"), cadence=cadence()),
            now,
        )
    due = shifted(last, timedelta(days=every))
    if now < due:
        return None
    return _spec(
        c,
        "stay_in_touch",
        f"stay_in_touch:{utc_date(last).isoformat()}",
        said(N_("Get in touch")),
        lambda: said(N_("last interaction on %(date)s, %(ago)s; %(cadence)s"), date=_day(last),
                     ago=ago(days_between(last, now)), cadence=cadence()),
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

Rule = Callable[[ContactFacts, Settings, datetime, Judge], Occasion | None]
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


def _judge(facts: ContactFacts, health_settings: Mapping[str, Any], now: datetime, health: Health | None) -> Judge:
    """The contact's health at `now`: the one given, else judged once, when first asked."""
    if health is not None:
        return lambda: health
    judged: list = []

    def judge() -> Health:
        if not judged:
            judged.append(derive_health(facts, health_settings, now))
        return judged[0]

    return judge


def occasions(facts: ContactFacts, settings: Mapping[str, Any], now: datetime, *,
              health_settings: Mapping[str, Any] = DEFAULT_HEALTH, health: Health | None = None) -> list[Occasion]:
    """Every enabled rule's occasion for this contact at ``now``, passed or not, not yet worded
    (none for do-not-contact); ``wanted_tasks`` words the ones still open.

    ``health`` is ``journey.derive_health`` of these facts at ``now`` when the caller judged it
    already (the engine does, for every contact): the win-back rule then does not judge again.
    """
    require_aware(now, "now")
    if facts.do_not_contact:
        return []
    judge = _judge(facts, health_settings, now, health)
    found = []
    for name, rule in RULES.items():
        c = settings[name]
        if c["enabled"]:
            occasion = rule(facts, c, now, judge)
            if occasion is not None:
                found.append(occasion)
    return found


def wanted_tasks(
    facts: ContactFacts,
    settings: Mapping[str, Any],
    now: datetime,
    *,
    health_settings: Mapping[str, Any] = DEFAULT_HEALTH,
    passed: list[TaskSpec] | None = None,
    health: Health | None = None,
) -> list[TaskSpec]:
    """The rule tasks that should exist for this contact at ``now`` (none for do-not-contact).

    ``health_settings`` feed the win-back rule, which targets customers whose health
    (see ``journey.derive_health``; ``health`` when already judged) is in its ``health`` list.
    Occasions whose moment has passed (``open_until`` before ``now``: history arriving late, by
    import or webhook) are not wanted; they are appended to ``passed`` when given, so a caller
    can say why it made fewer to-dos than the facts suggest.
    """
    wanted = []
    for occasion in occasions(facts, settings, now, health_settings=health_settings, health=health):
        if occasion.has_passed(now):
            if passed is not None:
                passed.append(occasion.spec())
            continue
        wanted.append(occasion.spec())
    return wanted


# -- moot ----------------------------------------------------------------------------------


_HEALTH_WORDS = {None: said(N_("not a customer")), "active": said(N_("active")), "at_risk": said(N_("at risk")),
                 "lapsed": said(N_("lapsed"))}


def _moot_reason(key: str, facts: ContactFacts, now: datetime, settings: Mapping[str, Any],
                 judge: Judge) -> str | None:
    rule, _, occasion = key.partition(":")
    if rule == "followup":
        _, _, day = occasion.partition(":")
        if facts.first_order_at is None:
            return said(N_("no paid order any more"))
        if utc_date(facts.first_order_at).isoformat() != day:
            return said(N_("the first paid order is now the one on %(date)s"), date=_day(facts.first_order_at))
    elif rule == "testimonial":
        return _testimonial_blocker(facts, settings["testimonial_request"], now)
    elif rule in ("winback", "replenish"):
        ordered = _ordered_after_day(facts, date.fromisoformat(occasion))
        if ordered:
            return said(N_("ordered again on %(date)s"), date=ordered)
        if rule == "winback":
            # The to-do follows the figures beside it: once the customer is judged active
            # again (a fresh prediction), there is nobody to win back.
            health, why = judge()
            if health not in settings["winback"]["health"]:
                return said(N_("no longer slipping away: %(health)s (%(why)s)"), health=_HEALTH_WORDS.get(health, health),
                            why=why)
    elif rule == "birthday":
        if facts.birthday is None:
            return said(N_("birthday removed"))
        day = birthday_in(facts.birthday, int(occasion))
        if utc_date(now) > day:
            return said(N_("birthday was on %(date)s"), date=Day(day))
    elif rule == "cart":
        left = datetime.strptime(occasion, _CART_KEY_FORMAT).replace(tzinfo=UTC)
        if facts.last_order_at is not None and facts.last_order_at >= left:
            return said(N_("ordered on %(date)s"), date=_day(facts.last_order_at))
    elif rule == "survey":
        n = int(occasion.rpartition(":")[2])
        if facts.order_count < n:
            return said(N_("only %(orders)s now"), orders=_orders(facts.order_count))
    elif rule == "problem":
        left = datetime.strptime(occasion, _CART_KEY_FORMAT).replace(tzinfo=UTC)
        still_open = [p for p in unresolved_complaints(facts, negative_too=True) if p.occurred_at >= left]
        if not still_open:
            return said(N_("the problem has an outcome recorded"))
    elif rule == "hot_lead":
        ordered = _ordered_after_day(facts, date.fromisoformat(occasion))
        if ordered:
            return said(N_("ordered on %(date)s"), date=ordered)
    elif rule == "stay_in_touch":
        if not facts.stay_in_touch_days:
            return said(N_("no longer on a stay-in-touch cadence"))
        last = facts.latest_interaction_at
        if last is not None and (occasion == "never" or utc_date(last) > date.fromisoformat(occasion)):
            return said(N_("interaction logged on %(date)s"), date=_day(last))
    return None


def moot_tasks(
    open_tasks: Iterable[str],
    facts: ContactFacts,
    now: datetime,
    settings: Mapping[str, Any] = DEFAULT_RETENTION,
    *,
    health_settings: Mapping[str, Any] = DEFAULT_HEALTH,
    health: Health | None = None,
) -> list[tuple[str, str]]:
    """(rule_key, reason) for each open rule task the facts have made moot.

    ``open_tasks`` are the rule keys of the contact's open tasks; keys of tasks a
    person made (None) and keys this module does not know are left alone. ``health`` as
    for ``occasions``.
    """
    require_aware(now, "now")
    judge = _judge(facts, health_settings, now, health)
    moot = []
    for key in open_tasks:
        if not key:
            continue
        if facts.do_not_contact:
            moot.append((key, said(N_("marked do not contact"))))
            continue
        try:
            reason = _moot_reason(key, facts, now, settings, judge)
        except ValueError:  # a key in an older format: leave the task to a person
            reason = None
        if reason:
            moot.append((key, reason))
    return moot
