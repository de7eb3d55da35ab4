"""Lead score: 0-100 with a breakdown that explains every point.

``score_contact`` returns the score and a list of ``{"rule", "points", "why"}``
lines. Points are whole numbers (each line is rounded on its own) and the lines
always add up to the score: when the raw total leaves 0..100, a last ``cap`` line
shows the difference. Nothing here touches the database.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from crm.services.rules.facts import (
    ContactFacts,
    InteractionFact,
    is_problem,
    latest_abandoned_cart,
    open_questions,
    unresolved_complaints,
)
from crm.services.shared.said import N_, Day, Money, Np_, Said, said, said_plural
from crm.services.shared.wording import ago, days_between, require_aware, utc_date

SCORE_MIN, SCORE_MAX = 0, 100
# Inbound kinds that do not count as engagement: they have rules of their own.
_NOT_ENGAGEMENT = frozenset({"cart", "complaint", "note"})


@dataclass(frozen=True)
class ScoreResult:
    score: int
    breakdown: list[dict[str, Any]] = field(default_factory=list)


def _round(x: float) -> int:
    """Round half up (2.5 -> 3), the way people expect points to round."""
    return int(math.floor(x + 0.5))


def decayed_weight(weight: float, age_days: float, half_life_days: float) -> float:
    """``weight`` halved for every ``half_life_days`` of age (future events count in full)."""
    if half_life_days <= 0:
        raise ValueError("the engagement half-life must be positive")
    return weight * 0.5 ** (max(age_days, 0.0) / half_life_days)


def quantile_band(value: float | Decimal, edges: Sequence[float | Decimal], higher_is_better: bool) -> int:
    """Band 1..len(edges)+1 (quintiles with 4 edges); the best band is the highest.

    A value equal to an edge falls in the lower-value band.
    """
    below = bisect_left(list(edges), value)
    return below + 1 if higher_is_better else len(edges) + 1 - below


_BAND_WORDS = {
    ("recency", True): N_("recency quintile %(band)s of %(of)s"), ("recency", False): N_("recency band %(band)s of %(of)s"),
    ("frequency", True): N_("frequency quintile %(band)s of %(of)s"),
    ("frequency", False): N_("frequency band %(band)s of %(of)s"),
    ("monetary", True): N_("monetary quintile %(band)s of %(of)s"),
    ("monetary", False): N_("monetary band %(band)s of %(of)s"),
}


def _band_words(band: int, edges: Sequence, name: str) -> Said:
    return _bands_words(band, len(edges) + 1, name)


@lru_cache(maxsize=256)
def _bands_words(band: int, n: int, name: str) -> Said:
    # Made once per band (a Said is never changed once made): every customer's breakdown has three.
    return said(_BAND_WORDS[name, n == 5], band=band, of=n)


def _engagement_line(facts: ContactFacts, settings: Mapping[str, Any], now: datetime) -> dict | None:
    w = settings["weights"]
    half_life = settings["engagement_half_life_days"]
    total = 0.0
    inbound = meetings = problems = 0
    negative_too = settings["negative_is_a_problem"]
    counted: list[InteractionFact] = []
    for i in facts.interactions:
        if is_problem(i, negative_too):
            problems += 1  # a complaint or a negative interaction is a problem, not buying intent
            continue
        if i.kind == "meeting":
            weight, meetings = w["engagement_meeting"], meetings + 1
        elif i.direction == "inbound" and i.kind not in _NOT_ENGAGEMENT:
            weight, inbound = w["engagement_inbound"], inbound + 1
        else:
            continue
        counted.append(i)
        age = (now - i.occurred_at) / timedelta(days=1)
        total += decayed_weight(weight, age, half_life)
    if not counted:
        return None
    cap = settings["engagement_max_points"]
    points = _round(min(total, cap))
    if points == 0:
        return None
    parts = []
    if inbound:
        parts.append(said_plural(Np_(inbound, "%(num)s inbound interaction", "%(num)s inbound interactions"), inbound))
    if meetings:
        parts.append(said_plural(Np_(meetings, "%(num)s meeting", "%(num)s meetings"), meetings))
    what = parts[0] if len(parts) == 1 else said(N_("%(first)s and %(second)s"), first=parts[0], second=parts[1])
    latest = max(i.occurred_at for i in counted)
    why = said(N_("%(what)s, the latest %(ago)s; each counts half after %(days)s days"),
               what=what, ago=ago(days_between(latest, now)), days=f"{half_life:g}")
    if total > cap:
        why = said(N_("%(why)s (at most %(cap)s points)"), why=why, cap=cap)
    if problems:
        why = said(N_("%(why)s; %(problems)s not counted: a problem is not buying intent"), why=why,
                   problems=said_plural(Np_(problems, "%(num)s complaint or negative interaction",
                                            "%(num)s complaints or negative interactions"), problems))
    return {"rule": "engagement", "points": points, "why": why}


def problem_words(i: InteractionFact) -> Said:
    """'complaint', or 'negative call' for a problem logged under another kind."""
    return said(N_("complaint")) if i.kind == "complaint" else said(N_("negative %(kind)s"), kind=i.kind)


def score_contact(facts: ContactFacts, settings: Mapping[str, Any], now: datetime) -> ScoreResult:
    """The lead score at ``now`` and its breakdown (lines with zero points are left out)."""
    require_aware(now, "now")
    w = settings["weights"]
    lines: list[dict[str, Any]] = []

    def add(rule: str, points: float, why: Said) -> None:
        p = _round(points)
        if p:
            lines.append({"rule": rule, "points": p, "why": why})

    # Profile fit
    if facts.has_email or facts.has_phone:
        if facts.has_email and facts.has_phone:
            reachable = said(N_("has an email address and a phone number"))
        elif facts.has_email:
            reachable = said(N_("has an email address"))
        else:
            reachable = said(N_("has a phone number"))
        add("reachable", w["reachable"], reachable)
    if facts.consent:
        add("consent", w["consent"], said(N_("agreed to hear from the shop")))
    company = (facts.company or "").strip()
    if company:
        add("company", w["company"], said(N_("works at %(company)s"), company=company))

    # Engagement, decaying
    engagement = _engagement_line(facts, settings, now)
    if engagement:
        lines.append(engagement)

    # Intent
    cart = latest_abandoned_cart(facts)
    if cart is not None and days_between(cart, now) <= settings["cart_window_days"]:
        add("cart", w["cart"], said(N_("abandoned a cart %(ago)s"), ago=ago(days_between(cart, now))))
    since = now - timedelta(days=settings["question_window_days"])
    questions = open_questions(facts, settings["question_kinds"], since, settings["negative_is_a_problem"])
    if questions:
        q = questions[-1]
        add(
            "open_question",
            w["open_question"],
            said(N_("asked by %(kind)s %(ago)s; no outcome recorded yet"), kind=q.kind,
                 ago=ago(days_between(q.occurred_at, now))),
        )

    # Value (customers), against the shop's RFM quintile edges
    shop = facts.shop
    if facts.is_customer:
        assert facts.last_order_at is not None
        per = w["rfm_per_quintile"]
        if shop.recency_edges:
            days = days_between(facts.last_order_at, now)
            band = quantile_band(days, shop.recency_edges, higher_is_better=False)
            add(
                "recency",
                band * per,
                said(N_("last order %(ago)s (%(band)s)"), ago=ago(days),
                     band=_band_words(band, shop.recency_edges, "recency")),
            )
        if shop.frequency_edges:
            band = quantile_band(facts.order_count, shop.frequency_edges, higher_is_better=True)
            words = _band_words(band, shop.frequency_edges, "frequency")
            orders = said_plural(Np_(facts.order_count, "%(num)s paid order", "%(num)s paid orders"), facts.order_count)
            add("frequency", band * per, said(N_("%(orders)s (%(band)s)"), orders=orders, band=words))
        if shop.monetary_edges:
            band = quantile_band(facts.total_spent, shop.monetary_edges, higher_is_better=True)
            words = _band_words(band, shop.monetary_edges, "monetary")
            add("monetary", band * per, said(N_("spent %(spent)s in total (%(band)s)"),
                                             spent=Money(facts.total_spent, facts.shop.currency), band=words))

    # Penalties
    complaints = unresolved_complaints(facts, settings["negative_is_a_problem"])
    if complaints:
        latest = Day(utc_date(complaints[-1].occurred_at))
        what = problem_words(complaints[-1])
        if len(complaints) == 1:
            why = said(N_("%(what)s on %(date)s not resolved"), what=what, date=latest)
        elif all(c.kind == "complaint" for c in complaints):
            why = said(N_("%(count)s complaints not resolved, the latest on %(date)s"), count=len(complaints),
                       date=latest)
        else:
            why = said(N_("%(count)s problems not resolved, the latest a %(what)s on %(date)s"),
                       count=len(complaints), what=what, date=latest)
        if what != "complaint":
            why = said(N_("%(why)s (a problem, not buying intent)"), why=why)
        add("complaint", w["complaint"], why)
    if facts.do_not_contact:
        add("do_not_contact", w["do_not_contact"], said(N_("marked do not contact")))

    raw = sum(line["points"] for line in lines)
    score = min(max(raw, SCORE_MIN), SCORE_MAX)
    if score != raw:
        why = (
            said(N_("capped at %(max)s"), max=SCORE_MAX)
            if raw > SCORE_MAX
            else said(N_("raised to %(min)s: a score never goes below %(min)s"), min=SCORE_MIN)
        )
        lines.append({"rule": "cap", "points": score - raw, "why": why})
    return ScoreResult(score, lines)


def crossed_hot(previous_score: int | None, new_score: int, threshold: int) -> bool:
    """True when a score reaches the hot-lead threshold from below (or on its first computation)."""
    return new_score >= threshold and (previous_score is None or previous_score < threshold)
