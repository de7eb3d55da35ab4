"""Journey stage and customer health: pure rules over ``ContactFacts``.

``derive_stage`` says which stage the facts support today; ``next_stage`` decides
whether the stored stage should change (forward only, or back when the fact
behind it was undone); ``derive_health`` gives active / at_risk / lapsed for
customers. Nothing here reads or writes the database: the writer stores a
``Decision`` as a stage change (from, to, reason, when, by) and the new stage.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Any, Literal

from crm.services.rules.facts import ContactFacts, InteractionFact
from crm.services.shared.said import N_, Day, Np_, said, said_plural
from crm.services.shared.wording import ago, days_between, format_days, require_aware, utc_date
from crm.vocabulary import STAGES

STAGE_RANK = {stage: rank for rank, stage in enumerate(STAGES)}
# Stages that stand on at least one paid order: losing the last one undoes them.
CUSTOMER_STAGES = frozenset({"conversion", "retention", "advocacy"})

_ENGAGEMENT_PHRASES = {
    "cart": N_("left a cart on %(date)s"),
    "meeting": N_("had a meeting on %(date)s"),
    "email": N_("sent an email on %(date)s"),
    "chat": N_("started a chat on %(date)s"),
    "call": N_("called on %(date)s"),
    "complaint": N_("made a complaint on %(date)s"),
    "sms": N_("sent a text message on %(date)s"),
    "social": N_("got in touch on social media on %(date)s"),
    "survey": N_("answered a survey on %(date)s"),
    "testimonial": N_("gave a testimonial on %(date)s"),
    "review": N_("left a review on %(date)s"),
}
_ADVOCACY_PHRASES = {"testimonial": N_("gave a testimonial on %(date)s"), "review": N_("left a review on %(date)s")}
_ADVOCACY_SUMMARY = N_("gave a testimonial or review on %(date)s")


@dataclass(frozen=True)
class Decision:
    """A stage change to record. The writer adds when and by (None = rule)."""

    from_stage: str | None
    to_stage: str
    reason: str
    direction: Literal["initial", "forward", "back"]


# -- stage -------------------------------------------------------------------------------


def _day(moment: datetime) -> Day:
    """The UTC calendar day of a moment, as the reasons name it."""
    return Day(utc_date(moment))


def _advocacy_evidence(facts: ContactFacts, settings: Mapping[str, Any]) -> tuple[datetime, str, str] | None:
    """The latest fact that makes this customer an advocate: (when, phrase, interaction kind)."""
    kinds = set(settings["advocacy_kinds"])
    evidence: list[tuple[datetime, str, str]] = []
    if facts.last_advocacy_at is not None:
        evidence.append((facts.last_advocacy_at, _ADVOCACY_SUMMARY, ""))
    for i in facts.interactions:
        if i.kind in kinds and i.sentiment != "negative":
            evidence.append((i.occurred_at, _ADVOCACY_PHRASES.get(i.kind, N_("gave a %(kind)s on %(date)s")), i.kind))
        elif (
            i.kind == "survey"
            and i.sentiment == "positive"
            and facts.order_count >= settings["advocacy_survey_min_orders"]
        ):
            evidence.append((i.occurred_at, N_("answered a survey positively as a repeat customer on %(date)s"), i.kind))
    if not evidence:
        return None
    # Latest first; at equal times prefer the interaction's own words over the summary's.
    return max(evidence, key=lambda e: (e[0], e[1] != _ADVOCACY_SUMMARY))


def _is_engagement(i: InteractionFact, settings: Mapping[str, Any]) -> bool:
    if i.kind in settings["engagement_kinds"]:
        return True
    return i.direction == "inbound" and i.kind not in settings["not_engagement_kinds"]


def derive_stage(facts: ContactFacts, settings: Mapping[str, Any], now: datetime) -> tuple[str, str]:
    """The journey stage the facts support at ``now``, and the reason in plain words.

    advocacy:      a customer with a testimonial/review (not negative), or a repeat
                   customer with a positive survey
    retention:     a customer whose first paid order is more than the conversion
                   window ago, or (by default) who has a second paid order
    conversion:    a customer whose first paid order is inside the window
    consideration: no paid order, but an engagement signal (an inbound interaction
                   other than a note, a meeting, a cart, or an order that was
                   refunded or cancelled)
    awareness:     known to the shop, nothing else yet
    """
    require_aware(now, "now")
    if facts.is_customer:
        assert facts.first_order_at is not None and facts.last_order_at is not None
        advocacy = _advocacy_evidence(facts, settings)
        if advocacy is not None:
            when, phrase, kind = advocacy
            values = {"date": _day(when), **({"kind": kind} if "%(kind)s" in phrase else {})}
            return "advocacy", said(phrase, **values)
        window = settings["conversion_window_days"]
        since_first = days_between(facts.first_order_at, now)
        if facts.order_count >= 2 and settings["repeat_order_is_retention"]:
            return "retention", said(
                N_("repeat customer: %(orders)s, the latest on %(date)s"),
                orders=said_plural(Np_(facts.order_count, "%(num)s paid order", "%(num)s paid orders"),
                                   facts.order_count),
                date=_day(facts.last_order_at),
            )
        if since_first > window:
            return "retention", said(
                N_("first order %(ago)s, past the %(window)s-day first-purchase window"),
                ago=ago(since_first), window=window,
            )
        return "conversion", said(N_("first order %(ago)s"), ago=ago(since_first))

    signals = [i for i in facts.interactions if _is_engagement(i, settings)]
    if signals:
        latest = max(signals, key=lambda i: i.occurred_at)
        phrase = _ENGAGEMENT_PHRASES.get(latest.kind, N_("inbound %(kind)s on %(date)s"))
        values = {"date": _day(latest.occurred_at)}
        if "%(kind)s" in phrase:
            values["kind"] = latest.kind
        return "consideration", said(phrase, **values)
    if facts.refunded_or_cancelled_count:
        return "consideration", said(N_("placed an order that was refunded or cancelled"))
    return "awareness", said(N_("known to the shop; no engagement signal yet"))


def _still_supported(stage: str, facts: ContactFacts) -> bool:
    """Whether the fact a stage stands on still holds.

    Only paid orders are checked: conversion, retention and advocacy need at least
    one. (Interactions reach the rules through a window of recent months, so a
    testimonial or question dropping out of it is not a fact being undone.)
    """
    if stage in CUSTOMER_STAGES:
        return facts.is_customer
    return True


def next_stage(
    current_stage: str | None, pinned: bool, derived_stage: str, derived_reason: str, facts: ContactFacts
) -> Decision | None:
    """What stage change to make, if any.

    - a pinned stage is left alone;
    - no stored stage yet: take the derived one;
    - the derived stage is further along: move forward;
    - the derived stage is behind: move back only when the current stage's fact was
      undone (no paid order left, e.g. the only order refunded or cancelled);
      otherwise stay (losing a customer shows in health, not in the stage).
    """
    if derived_stage not in STAGE_RANK:
        raise ValueError(f"unknown stage {derived_stage!r}")
    if pinned:
        return None
    if current_stage is None:
        return Decision(None, derived_stage, derived_reason, "initial")
    if current_stage not in STAGE_RANK:
        raise ValueError(f"unknown stage {current_stage!r}")
    if derived_stage == current_stage:
        return None
    if STAGE_RANK[derived_stage] > STAGE_RANK[current_stage]:
        return Decision(current_stage, derived_stage, derived_reason, "forward")
    if _still_supported(current_stage, facts):
        return None
    if facts.refunded_or_cancelled_count:
        undone = said(N_("no paid order left (refunded or cancelled)"))
    else:
        undone = said(N_("no paid order left"))
    return Decision(current_stage, derived_stage,
                    said(N_("%(undone)s; %(reason)s"), undone=undone, reason=derived_reason), "back")


# -- when the facts happened ---------------------------------------------------------------


@dataclass(frozen=True)
class DatedStep:
    """One stage change of a decision, dated when the fact behind it happened."""

    from_stage: str | None
    to_stage: str
    reason: str
    at: datetime


def _became_customer_stage_at(stage: str, facts: ContactFacts, settings: Mapping[str, Any]) -> datetime | None:
    """When the fact a customer stage stands on happened, or None when it has not (yet)."""
    first = facts.first_order_at
    if first is None:
        return None
    if stage == "conversion":
        return first
    if stage == "retention":
        times = []
        if settings["repeat_order_is_retention"] and facts.second_order_at is not None:
            times.append(facts.second_order_at)
        # Past the window: the first UTC day on which days_between(first, day) > window.
        window_over = datetime.combine(first.astimezone(timezone.utc).date(), time(0), tzinfo=timezone.utc) \
            + timedelta(days=settings["conversion_window_days"] + 1)
        times.append(window_over)
        return min(times)
    if stage == "advocacy":
        kinds = set(settings["advocacy_kinds"])
        evidence = [i.occurred_at for i in facts.interactions if i.kind in kinds and i.sentiment != "negative"]
        evidence += [i.occurred_at for i in facts.interactions
                     if i.kind == "survey" and i.sentiment == "positive"
                     and facts.order_count >= settings["advocacy_survey_min_orders"]]
        if facts.last_advocacy_at is not None and not evidence:
            evidence.append(facts.last_advocacy_at)
        # An advocate is a customer first: a testimonial before the first order counts from it.
        return max(min(evidence), first) if evidence else None
    return None


def dated_steps(decision: Decision, facts: ContactFacts, settings: Mapping[str, Any],
                now: datetime) -> list[DatedStep]:
    """Return the stage changes a decision stands for, each dated when its fact happened.

    A customer's stages are dated by the facts, not by when the rules ran: conversion at the
    first paid order, retention at the second one (or the end of the first-purchase window,
    whichever came first), advocacy at the testimonial. A jump over stages whose facts happened
    in between (an imported history: no stage to straight retention) records each of them, so
    deriving at once from a whole history gives the same changes as following it order by order.
    Other changes (consideration, going back when a fact is undone) are dated `now`. Dates never
    go back before the current stage began, nor after `now`.
    """
    floor = facts.stage_since if decision.from_stage is not None else None
    if decision.direction == "back" or decision.to_stage not in CUSTOMER_STAGES:
        return [DatedStep(decision.from_stage, decision.to_stage, decision.reason, now)]
    current_rank = STAGE_RANK[decision.from_stage] if decision.from_stage is not None else -1
    target_at = _became_customer_stage_at(decision.to_stage, facts, settings)
    path: list[tuple[str, datetime | None]] = []
    for stage in ("conversion", "retention"):
        rank = STAGE_RANK[stage]
        if current_rank < rank < STAGE_RANK[decision.to_stage]:
            at = _became_customer_stage_at(stage, facts, settings)
            # A stage the contact passed through: its fact came after the current stage began
            # (not, e.g., before a pin) and before the final stage's.
            if (at is not None and at <= now and (target_at is None or at < target_at)
                    and (floor is None or at > floor)):
                path.append((stage, at))
    path.append((decision.to_stage, target_at))
    steps: list[DatedStep] = []
    previous_stage, previous_at = decision.from_stage, floor
    for stage, at in path:
        at = min(at or now, now)
        if previous_at is not None and at < previous_at:
            at = previous_at
        reason = decision.reason if stage == decision.to_stage else _passed_reason(stage, facts, settings)
        steps.append(DatedStep(previous_stage, stage, reason, at))
        previous_stage, previous_at = stage, at
    return steps


def _passed_reason(stage: str, facts: ContactFacts, settings: Mapping[str, Any]) -> str:
    if stage == "conversion":
        return said(N_("first order on %(date)s"), date=_day(facts.first_order_at))
    if settings["repeat_order_is_retention"] and facts.second_order_at is not None:
        return said(N_("second order on %(date)s"), date=_day(facts.second_order_at))
    return said(N_("past the %(window)s-day first-purchase window"), window=settings["conversion_window_days"])


# -- health ------------------------------------------------------------------------------


def usual_gap(facts: ContactFacts, settings: Mapping[str, Any]) -> tuple[float, bool]:
    """(gap in days, whether it is the customer's own) used to judge recency."""
    own = facts.usual_gap_days
    if own is not None:
        gap, is_own = own, True
    elif facts.shop.median_gap_days is not None:
        gap, is_own = float(facts.shop.median_gap_days), False
    else:
        gap, is_own = float(settings["fallback_gap_days"]), False
    return max(gap, float(settings["min_gap_days"])), is_own


def derive_health(facts: ContactFacts, settings: Mapping[str, Any], now: datetime) -> tuple[str | None, str]:
    """(health, reason): active / at_risk / lapsed for customers, None for everyone else.

    By default: days since the last paid order against the customer's usual gap
    between orders (the shop's median gap for one-time buyers; never less than
    ``min_gap_days``): more than ``at_risk_after_gaps`` gaps is at risk, more than
    ``lapsed_after_gaps`` is lapsed. With a BG/NBD fit (``p_alive``), a repeat buyer
    who is past their usual gap is judged by p_alive instead. One-time buyers stay on
    the recency rule: BG/NBD puts p_alive at 1 for them.
    """
    require_aware(now, "now")
    if not facts.is_customer:
        return None, said(N_("not a customer"))
    assert facts.last_order_at is not None
    days = days_between(facts.last_order_at, now)
    gap, is_own = usual_gap(facts, settings)
    if is_own:
        gap_words = said(N_("usually orders every %(days)s"), days=format_days(gap))
    else:
        gap_words = said(N_("customers here usually reorder within %(days)s"), days=format_days(gap))
    last = said(N_("last order %(ago)s"), ago=ago(days))

    if settings["use_p_alive"] and facts.p_alive is not None and is_own and days > gap:
        p = facts.p_alive
        # Rounded down, so a value just under a threshold never reads as the threshold itself.
        chance = said(N_("%(percent)s%% likely to still be buying"), percent=math.floor(p * 100 + 1e-9))
        for health, threshold in (("lapsed", settings["p_alive_lapsed"]), ("at_risk", settings["p_alive_at_risk"])):
            if p < threshold:
                return health, said(N_("%(last)s; %(chance)s (below %(percent)s%%)"), last=last, chance=chance,
                                    percent=round(threshold * 100))
        return "active", said(N_("%(last)s; %(chance)s"), last=last, chance=chance)

    both = N_("%(last)s; %(gap)s")
    if days > settings["lapsed_after_gaps"] * gap:
        return "lapsed", said(both, last=last, gap=gap_words)
    if days > settings["at_risk_after_gaps"] * gap:
        return "at_risk", said(both, last=last, gap=gap_words)
    return "active", said(both, last=last, gap=gap_words)
