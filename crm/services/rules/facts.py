"""The facts the engine rules read, as plain typed data (no database here).

A later step computes these in bulk from the database: the contact's columns, the
aggregates of its *paid* orders (status in ``PAID_STATUSES``), a count of its
refunded or cancelled orders, and its recent interactions (the last few months
are enough for the rules, except where a field says "all time").

All datetimes are aware UTC; money is ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import pairwise
from typing import NamedTuple

from crm.services.shared.wording import require_aware, utc_date
from crm.vocabulary import STAGES


class InteractionFact(NamedTuple):
    """One logged interaction, as the rules see it."""

    kind: str  # INTERACTION_KINDS: call, email, chat, meeting, note, complaint, ...
    direction: str  # inbound, outbound, internal
    occurred_at: datetime
    sentiment: str | None = None  # negative, neutral, positive or None
    outcome: str | None = None  # empty/None: nothing recorded (an open question, an unresolved complaint)

    @property
    def has_outcome(self) -> bool:
        return bool(self.outcome and self.outcome.strip())


class OrderFact(NamedTuple):
    """One paid order, for building facts from a list of orders (tests, small callers)."""

    placed_at: datetime
    total: Decimal


def _ascending(name: str, edges: tuple) -> None:
    if any(b < a for a, b in pairwise(edges)):
        raise ValueError(f"{name} must be ascending, got {edges!r}")


@dataclass(frozen=True)
class ShopContext:
    """Shop-wide numbers the per-contact rules compare against (computed in bulk)."""

    # Median of the customers' usual gaps between orders, in days (for one-time buyers).
    median_gap_days: float | None = None
    # Median total spent by customers (the win-back rule targets customers above it).
    median_spend: Decimal | None = None
    # RFM quintile cut points (4 ascending values make 5 quintiles; empty = not computed yet).
    recency_edges: tuple[float, ...] = ()  # days since the last order (fewer is better)
    frequency_edges: tuple[float, ...] = ()  # paid order count
    monetary_edges: tuple[Decimal, ...] = ()  # total spent
    currency: str = "EUR"  # the shop's, for the amounts the rules write in their reasons

    def __post_init__(self) -> None:
        _ascending("recency_edges", self.recency_edges)
        _ascending("frequency_edges", self.frequency_edges)
        _ascending("monetary_edges", self.monetary_edges)


@dataclass(frozen=True)
class ContactFacts:
    """Everything the journey, health, scoring and retention rules need about one contact."""

    contact_id: int
    # Profile
    has_email: bool = False
    has_phone: bool = False
    consent: bool = False
    company: str | None = None
    do_not_contact: bool = False
    birthday: date | None = None
    stay_in_touch_days: int | None = None
    # Journey state as stored on the contact (None: never derived yet)
    stage: str | None = None
    stage_pinned: bool = False
    stage_since: datetime | None = None
    # Paid orders (status in PAID_STATUSES), aggregated
    order_count: int = 0
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None
    total_spent: Decimal = Decimal("0.00")
    order_days: int = 0  # distinct UTC calendar days with a paid order
    refunded_or_cancelled_count: int = 0  # orders that were refunded in full or cancelled
    second_order_at: datetime | None = None  # when the second paid order was placed (None: fewer)
    # Interactions: the recent ones in detail, plus all-time summaries
    interactions: tuple[InteractionFact, ...] = ()
    last_interaction_at: datetime | None = None  # all time, any kind
    last_advocacy_at: datetime | None = None  # all time: latest testimonial/review (not negative)
    # Scores and predictions
    lead_score: int | None = None
    hot_since: datetime | None = None  # when the score last crossed the hot threshold; None if not hot now
    p_alive: float | None = None  # BG/NBD probability the customer is still active
    # Shop-wide context (shared by every contact in a refresh)
    shop: ShopContext = field(default_factory=ShopContext)

    def __post_init__(self) -> None:
        for name in (
            "stage_since",
            "first_order_at",
            "last_order_at",
            "second_order_at",
            "last_interaction_at",
            "last_advocacy_at",
            "hot_since",
        ):
            value = getattr(self, name)
            if value is not None:
                require_aware(value, name)
        for i in self.interactions:
            require_aware(i.occurred_at, "interaction occurred_at")
        if self.stage is not None and self.stage not in STAGES:
            raise ValueError(f"unknown stage {self.stage!r}")
        if self.order_count < 0 or self.refunded_or_cancelled_count < 0:
            raise ValueError("order counts cannot be negative")
        if self.order_count == 0:
            if self.first_order_at or self.last_order_at or self.order_days:
                raise ValueError("a contact without paid orders has no order dates")
        else:
            if self.first_order_at is None or self.last_order_at is None:
                raise ValueError("a customer needs first_order_at and last_order_at")
            if self.first_order_at > self.last_order_at:
                raise ValueError("first_order_at is after last_order_at")
            if not 1 <= self.order_days <= self.order_count:
                raise ValueError("order_days must be between 1 and order_count")
        if self.p_alive is not None and not 0.0 <= self.p_alive <= 1.0:
            raise ValueError(f"p_alive must be within 0..1, got {self.p_alive}")
        if self.stay_in_touch_days is not None and self.stay_in_touch_days < 1:
            raise ValueError("stay_in_touch_days must be at least 1 when set")

    @classmethod
    def from_orders(cls, contact_id: int, paid_orders: Iterable[OrderFact], **other) -> ContactFacts:
        """Facts with the order aggregates computed from a list of paid orders."""
        orders = sorted(paid_orders, key=lambda o: o.placed_at)
        if not orders:
            return cls(contact_id=contact_id, **other)
        return cls(
            contact_id=contact_id,
            order_count=len(orders),
            first_order_at=orders[0].placed_at,
            last_order_at=orders[-1].placed_at,
            total_spent=sum((Decimal(o.total) for o in orders), Decimal("0.00")),
            order_days=len({utc_date(o.placed_at) for o in orders}),
            **other,
        )

    def scored(self, lead_score: int, hot_since: datetime | None) -> ContactFacts:
        """These facts with a new lead score and hot-since, made without checking the rest again
        (the engine does this for every contact; `dataclasses.replace` would check everything)."""
        if hot_since is not None:
            require_aware(hot_since, "hot_since")
        copy = object.__new__(ContactFacts)
        copy.__dict__.update(self.__dict__, lead_score=lead_score, hot_since=hot_since)
        return copy

    @property
    def is_customer(self) -> bool:
        return self.order_count > 0

    @property
    def usual_gap_days(self) -> float | None:
        """The customer's own mean gap between order days; None with fewer than two order days."""
        if self.order_days < 2 or self.first_order_at is None or self.last_order_at is None:
            return None
        span = (utc_date(self.last_order_at) - utc_date(self.first_order_at)).days
        return span / (self.order_days - 1)

    @property
    def latest_interaction_at(self) -> datetime | None:
        """The later of the stored all-time value and the interactions given."""
        times = [i.occurred_at for i in self.interactions]
        if self.last_interaction_at is not None:
            times.append(self.last_interaction_at)
        return max(times) if times else None


# -- derived signals shared by the scoring and retention rules ---------------------------


def cart_moment(i: InteractionFact) -> datetime:
    """A cart's time to the second: the unit rule keys and "ordered since" checks share."""
    return i.occurred_at.astimezone(UTC).replace(microsecond=0)


def latest_abandoned_cart(facts: ContactFacts) -> datetime | None:
    """When the latest cart was left, if no paid order was placed at or after it."""
    carts = [cart_moment(i) for i in facts.interactions if i.kind == "cart"]
    if not carts:
        return None
    latest = max(carts)
    if facts.last_order_at is not None and facts.last_order_at >= latest:
        return None
    return latest


def is_problem(i: InteractionFact, negative_too: bool = True) -> bool:
    """Whether an interaction reports a problem (a complaint, or with ``negative_too`` any
    interaction logged with a negative sentiment): a health signal, never buying intent."""
    return i.kind == "complaint" or (negative_too and i.sentiment == "negative" and i.kind != "cart")


def open_questions(facts: ContactFacts, kinds: Iterable[str], since: datetime,
                   negative_too: bool = False) -> list[InteractionFact]:
    """Inbound emails/chats/calls at or after ``since`` with no outcome recorded, oldest first
    (problems left out when ``negative_too``: "my order never arrived" is not a buying question)."""
    kinds = set(kinds)
    found = [
        i
        for i in facts.interactions
        if i.kind in kinds and i.direction == "inbound" and not i.has_outcome and i.occurred_at >= since
        and not (negative_too and is_problem(i))
    ]
    return sorted(found, key=lambda i: i.occurred_at)


def unresolved_complaints(facts: ContactFacts, negative_too: bool = False) -> list[InteractionFact]:
    """Complaints (and, with ``negative_too``, negative interactions) with no outcome of their own
    and no later interaction with an outcome, oldest first."""
    found = []
    for c in facts.interactions:
        if not is_problem(c, negative_too) or c.has_outcome:
            continue
        resolved = any(
            i.has_outcome and i.occurred_at > c.occurred_at and i.kind != "cart" for i in facts.interactions
        )
        if not resolved:
            found.append(c)
    return sorted(found, key=lambda i: i.occurred_at)
