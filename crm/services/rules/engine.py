"""The engine: the pure journey, health, score and to-do rules, run over the database in bulk.

`gather_facts` reads what the rules need for a batch of about a thousand contacts in a
handful of set-based queries (the contacts, their orders aggregated with GROUP BY, their
recent interactions, all-time interaction summaries, their rule to-dos, and when hot
leads turned hot); a run for everyone reads every contact's order figures once instead
(and the shop-wide figures from the same read). `apply` runs the rules for each batch and
writes only what changed: one executemany UPDATE of the contacts, INSERTs of stage changes,
score history (copied from the contacts' rows just written) and new to-dos, and one bulk
UPDATE closing to-dos that became moot. `refresh` is the list of steps `crm refresh` and the
settings page run for everyone.

Time is always a parameter (`now`), so tests and `crm refresh --as-of` can run the rules
at any date. Nothing here commits: callers do, once (or per batch through `progress`).
"""
from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, and_, bindparam, case, cast, distinct, func, insert, or_, select, update

from crm.extensions import db
from crm.models import (
    PAID_STATUSES,
    Contact,
    Interaction,
    Order,
    ScoreHistory,
    Setting,
    StageChange,
    Task,
    User,
    utcnow,
)
from crm.services import shop
from crm.services.insight import summaries
from crm.services.orders import aggregates
from crm.services.rules import settings as rule_settings
from crm.services.rules.facts import ContactFacts, InteractionFact, ShopContext
from crm.services.rules.journey import dated_steps, derive_health, derive_stage, next_stage
from crm.services.rules.retention import TaskSpec, moot_tasks, occasions
from crm.services.rules.scoring import score_contact
from crm.services.rules.settings import RuleSettings
from crm.services.shared import signals
from crm.services.shared.said import N_, Np_, Number, Said, said, said_plural
from crm.services.shared.said import to_json as said_json
from crm.services.shared.wording import days_between, require_aware, utc_date

BATCH = 1000
# Interactions older than this reach the rules only through the all-time summaries; at a
# 30-day half-life their engagement points are long gone.
INTERACTION_WINDOW_DAYS = 400
# The most recent interactions per contact the rules see (a bot leaving carts all day
# must not make a refresh load thousands of rows for one contact).
INTERACTIONS_PER_CONTACT = 200
UNDONE_STATUSES = ("refunded", "cancelled")
SHOP_CONTEXT_KEY = "engine.shop_context"
# Columns the engine derives and writes on a contact; updated_at is passed through unchanged
# because a derived change is not an edit.
DERIVED = ("stage", "stage_reason", "stage_reason_said", "stage_since", "health", "lead_score", "score_breakdown", "updated_at")
REASON_LENGTH, TASK_REASON_LENGTH = 300, 500

Progress = Callable[[int], None]


@dataclass
class RefreshSummary:
    """What one run changed, for the CLI and the settings page."""

    contacts: int = 0
    stage_changes: int = 0
    health_changes: int = 0
    scores_changed: int = 0
    tasks_created: int = 0
    tasks_closed: int = 0
    # To-dos not made because their occasion had passed (history imported late), by title.
    tasks_passed: dict[str, int] = field(default_factory=dict)
    # What the other refresh steps said (the predictions: how many customers, or why none).
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.contacts:,} contacts: {self.stage_changes:,} stage changes, "
            f"{self.health_changes:,} health changes, {self.scores_changed:,} scores changed, "
            f"{self.tasks_created:,} to-dos created, {self.tasks_closed:,} closed as moot"
        )

    def said(self) -> Said:
        """The same words as a Said (the jobs page shows them in the reader's language)."""
        return said(N_("%(contacts)s contacts: %(stage_changes)s stage changes, %(health_changes)s health changes, "
                       "%(scores_changed)s scores changed, %(tasks_created)s to-dos created, "
                       "%(tasks_closed)s closed as moot"),
                    contacts=Number(self.contacts), stage_changes=Number(self.stage_changes),
                    health_changes=Number(self.health_changes), scores_changed=Number(self.scores_changed),
                    tasks_created=Number(self.tasks_created), tasks_closed=Number(self.tasks_closed))


@dataclass
class StoredState:
    """What is stored on a contact beyond its facts, to write only what changed."""

    owner_id: int | None
    stage_reason: str
    health: str | None
    score_breakdown: list
    updated_at: datetime
    # rule_key -> (task id, status) of every rule to-do the contact ever had
    tasks: dict[str, tuple[int, str]] = field(default_factory=dict)
    stage_reason_said: dict | None = None


@dataclass
class Batch:
    facts: list[ContactFacts]
    stored: dict[int, StoredState]


# -- shop-wide context ---------------------------------------------------------------------


def _utc_day(column):
    """The UTC calendar date of a timestamp column, in this database's dialect."""
    if db.engine.dialect.name == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)


def _money(value) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


def _quintile_edges(values: Sequence) -> tuple:
    """Return the 4 cut points of 5 equal groups, or () when there are too few values to say."""
    if len(values) < 5:
        return ()
    return tuple(statistics.quantiles(sorted(values), n=5, method="inclusive"))


def compute_shop_context(now: datetime, figures: dict[int, tuple] | None = None) -> ShopContext:
    """Return the shop-wide medians and RFM quintile edges, from one grouped query over paid orders
    (or from every contact's order `figures`, `_everyones_order_figures`, when given)."""
    if figures is not None:
        rows = [(count, first, last, spent, days) for count, first, last, spent, days, _undone in figures.values()
                if count]
    else:
        rows = db.session.execute(
            select(
                func.count(Order.id), func.min(Order.placed_at), func.max(Order.placed_at),
                func.sum(Order.total - Order.refunded), func.count(distinct(_utc_day(Order.placed_at))),
            ).where(Order.status.in_(PAID_STATUSES)).group_by(Order.contact_id)
        ).all()
    if not rows:
        return ShopContext()
    gaps = [
        (utc_date(last) - utc_date(first)).days / (days - 1)
        for _count, first, last, _spend, days in rows if days >= 2
    ]
    spend = [_money(s) for *_rest, s, _days in rows]
    return ShopContext(
        median_gap_days=statistics.median(gaps) if gaps else None,
        median_spend=_money(statistics.median(spend)),
        recency_edges=_quintile_edges([days_between(last, now) for _c, _f, last, _s, _d in rows]),
        frequency_edges=_quintile_edges([count for count, *_rest in rows]),
        monetary_edges=tuple(_money(e) for e in _quintile_edges(spend)),
    )


def _context_as_json(context: ShopContext, now: datetime) -> dict[str, Any]:
    return {
        "as_of": utc_date(now).isoformat(),
        "median_gap_days": context.median_gap_days,
        "median_spend": None if context.median_spend is None else str(context.median_spend),
        "recency_edges": list(context.recency_edges),
        "frequency_edges": list(context.frequency_edges),
        "monetary_edges": [str(e) for e in context.monetary_edges],
    }


def _context_from_json(value: dict[str, Any], now: datetime) -> ShopContext:
    # Recency edges are days before the day they were computed: move them on by the days since.
    shift = max(0, days_between(datetime.fromisoformat(value["as_of"] + "T00:00:00+00:00"), now))
    return ShopContext(
        median_gap_days=value["median_gap_days"],
        median_spend=None if value["median_spend"] is None else Decimal(value["median_spend"]),
        recency_edges=tuple(e + shift for e in value["recency_edges"]),
        frequency_edges=tuple(value["frequency_edges"]),
        monetary_edges=tuple(Decimal(e) for e in value["monetary_edges"]),
    )


def shop_context(now: datetime, *, fresh: bool, figures: dict[int, tuple] | None = None) -> ShopContext:
    """Return the shop context: computed and kept when `fresh` (a run for everyone), else the
    one the last full run kept (computed on the spot when there is none yet), in the shop's
    currency (the pure rules write amounts in it).

    A write on one contact thus costs no scan of every order; `crm refresh` keeps it current.
    """
    return replace(_figures_context(now, fresh=fresh, figures=figures), currency=shop.current().currency)


def _figures_context(now: datetime, *, fresh: bool, figures: dict[int, tuple] | None) -> ShopContext:
    if not fresh:
        row = db.session.get(Setting, SHOP_CONTEXT_KEY)
        if row is not None:
            return _context_from_json(row.value, now)
        # None kept yet (a shop loaded or imported before its first full run): compute it once
        # and keep it, as a full run would, so the next write does not read every paid order again
        # (2 s a write at a million orders). A context another worker kept meanwhile stays.
        context = compute_shop_context(now, figures)
        db.session.execute(_insert_ignoring_duplicates(Setting, ["key"]),
                           [{"key": SHOP_CONTEXT_KEY, "value": _context_as_json(context, now), "updated_at": utcnow()}])
        return context
    context = compute_shop_context(now, figures)
    value = _context_as_json(context, now)
    row = db.session.get(Setting, SHOP_CONTEXT_KEY)
    if row is None:
        db.session.add(Setting(key=SHOP_CONTEXT_KEY, value=value))
    elif row.value != value:
        row.value = value
    return context


# -- facts ---------------------------------------------------------------------------------

# Statements read for every batch (one contact, for an order through the API), built once per
# dialect as Core statements taking the contact ids as one expanding parameter: each run then
# only binds them, instead of building, keying and ORM-compiling the query again.
_BUILT: dict[tuple[str, str], Any] = {}


def _built(name: str, build: Callable[[], Any]):
    key = (name, db.engine.dialect.name)
    statement = _BUILT.get(key)
    if statement is None:
        statement = _BUILT[key] = build()
    return statement


_IDS = bindparam("ids", expanding=True)
# In this order _batches unpacks them, and _Everyone.holds reads the last four.
_CONTACT_COLUMNS = ("id", "email", "phone", "consent", "company", "do_not_contact", "birthday", "stay_in_touch_days",
                    "stage", "stage_pinned", "stage_since", "lead_score", "p_alive", "owner_id", "stage_reason",
                    "health", "score_breakdown", "updated_at", "erased_at", "stage_reason_said",
                    "order_count", "first_order_at", "last_order_at", "total_spent")


def _contacts_by_id():
    c = Contact.__table__.c
    return select(*[c[name] for name in _CONTACT_COLUMNS]).where(c.id.in_(_IDS)).order_by(c.id)


def _contact_batches(contact_ids: Iterable[int] | None) -> Iterator[list[tuple]]:
    """Yield the stored columns of the contacts, a batch at a time, in id order."""
    columns = [Contact.__table__.c[name] for name in _CONTACT_COLUMNS]
    if contact_ids is None:
        last = 0
        while True:
            rows = db.session.execute(
                select(*columns).where(Contact.id > last).order_by(Contact.id).limit(BATCH)).all()
            if not rows:
                return
            last = rows[-1].id
            yield rows
    else:
        ids = sorted(set(contact_ids))
        for start in range(0, len(ids), BATCH):
            rows = db.session.execute(_built("contacts", _contacts_by_id), {"ids": ids[start:start + BATCH]}).all()
            if rows:
                yield rows


def _everyones_order_figures_statement():
    o = Order.__table__.c
    paid = o.status.in_(PAID_STATUSES)
    return select(
        o.contact_id,
        func.count(case((paid, o.id))),
        func.min(case((paid, o.placed_at))),
        func.max(case((paid, o.placed_at))),
        func.sum(case((paid, o.total - o.refunded), else_=0)),
        func.count(distinct(case((paid, _utc_day(o.placed_at))))),
        func.count(case((o.status.in_(UNDONE_STATUSES), o.id))),
    ).group_by(o.contact_id)


def _order_figures_statement():
    return _everyones_order_figures_statement().where(Order.__table__.c.contact_id.in_(_IDS))


def _order_figures(ids: list[int]) -> dict[int, tuple]:
    rows = db.session.execute(_built("order_figures", _order_figures_statement), {"ids": ids})
    return {row[0]: tuple(row[1:]) for row in rows}


def _everyones_order_figures() -> dict[int, tuple]:
    """{contact id: (paid orders, first, last, spent, days with a paid order, refunded or cancelled)}
    of every contact with an order, in one grouped read (a run for everyone takes the shop-wide
    figures from it too)."""
    rows = db.session.execute(_built("everyones_order_figures", _everyones_order_figures_statement))
    return {row[0]: tuple(row[1:]) for row in rows}


def _second_orders_statement(ids: list[int] | None):
    # Each contact's second paid order by (placed_at, id), looked up in the index of their orders
    # by time: a quarter of the CPU of numbering every paid order in the shop with a window.
    o = Order.__table__.alias("o")
    contacts = Contact.__table__
    second = (select(o.c.placed_at)
              .where(o.c.contact_id == contacts.c.id, o.c.status.in_(PAID_STATUSES))
              .order_by(o.c.placed_at, o.c.id).limit(1).offset(1)
              .correlate(contacts).scalar_subquery())
    statement = select(contacts.c.id, second)
    return statement if ids is None else statement.where(contacts.c.id.in_(ids))


def _second_orders(ids: list[int] | None) -> dict[int, datetime]:
    """Return {contact id: when their second paid order was placed} for contacts with two or more
    (of these contacts, or everyone's)."""
    if ids is not None and not ids:
        return {}
    return {cid: at for cid, at in db.session.execute(_second_orders_statement(ids)) if at is not None}


@dataclass
class _Everyone:
    """Order figures read once for a run for everyone, instead of per batch."""

    orders: dict[int, tuple]
    second: dict[int, datetime]

    @classmethod
    def read(cls, orders: dict[int, tuple] | None = None) -> _Everyone:
        return cls(orders if orders is not None else _everyones_order_figures(), _second_orders(None))

    def holds(self, rows: Sequence) -> bool:
        """Whether the figures read at the start still hold for these contacts: their stored order
        figures (kept by every order write, in its transaction) say the same. A batch with an
        order written since the run began reads its figures again."""
        for row in rows:
            stored_count, stored_first, stored_last, stored_spent = row[-4:]  # _CONTACT_COLUMNS' last four
            count, first, last, spent, *_rest = self.orders.get(row[0], _NO_ORDERS)
            if (stored_count != count or stored_first != (first if count else None)
                    or stored_last != (last if count else None)
                    or stored_spent != (_money(spent) if count else Decimal("0.00"))):
                return False
        return True


def _recent_interactions_statement():
    i = Interaction.__table__.c
    rank = func.row_number().over(partition_by=i.contact_id, order_by=(i.occurred_at.desc(), i.id.desc())).label("rank")
    recent = (
        select(i.contact_id, i.kind, i.direction, i.occurred_at, i.sentiment, i.outcome, rank)
        .where(i.contact_id.in_(_IDS), i.occurred_at >= bindparam("since", type_=i.occurred_at.type))
        .subquery()
    )
    return (select(recent.c.contact_id, recent.c.kind, recent.c.direction, recent.c.occurred_at,
                   recent.c.sentiment, recent.c.outcome)
            .where(recent.c.rank <= INTERACTIONS_PER_CONTACT))


def _recent_interactions(ids: list[int], since: datetime) -> dict[int, list[InteractionFact]]:
    found: dict[int, list[InteractionFact]] = {}
    rows = db.session.execute(_built("recent_interactions", _recent_interactions_statement),
                              {"ids": ids, "since": since}).all()
    for contact_id, kind, direction, occurred_at, sentiment, outcome in rows:
        found.setdefault(contact_id, []).append(InteractionFact(kind, direction, occurred_at, sentiment, outcome))
    return found


def _interaction_summaries(ids: list[int], advocacy_kinds: Sequence[str]) -> dict[int, tuple]:
    """Return {contact id: (latest interaction, latest testimonial/review that was not negative)}."""
    rows = db.session.execute(_built("interaction_summaries", _interaction_summaries_statement),
                              {"ids": ids, "kinds": list(advocacy_kinds)})
    return {row[0]: (row[1], row[2]) for row in rows}


def _interaction_summaries_statement():
    i = Interaction.__table__.c
    advocacy = and_(i.kind.in_(bindparam("kinds", expanding=True)),
                    or_(i.sentiment.is_(None), i.sentiment != "negative"))
    return (select(i.contact_id, func.max(i.occurred_at), func.max(case((advocacy, i.occurred_at))))
            .where(i.contact_id.in_(_IDS)).group_by(i.contact_id))


def _rule_tasks(ids: list[int]) -> dict[int, dict[str, tuple[int, str]]]:
    found: dict[int, dict[str, tuple[int, str]]] = {}
    for task_id, contact_id, rule_key, status in db.session.execute(_built("rule_tasks", _rule_tasks_statement),
                                                                     {"ids": ids}):
        found.setdefault(contact_id, {})[rule_key] = (task_id, status)
    return found


def _rule_tasks_statement():
    t = Task.__table__.c
    return select(t.id, t.contact_id, t.rule_key, t.status).where(t.contact_id.in_(_IDS), t.rule_key.is_not(None))


def _hot_since(ids: list[int], threshold: int) -> dict[int, datetime]:
    """Return when each contact's current run of scores at or above `threshold` began."""
    if not ids:
        return {}
    below = (
        select(ScoreHistory.contact_id, func.max(ScoreHistory.computed_at).label("last_below"))
        .where(ScoreHistory.contact_id.in_(ids), ScoreHistory.score < threshold)
        .group_by(ScoreHistory.contact_id)
        .subquery()
    )
    rows = db.session.execute(
        select(ScoreHistory.contact_id, func.min(ScoreHistory.computed_at))
        .outerjoin(below, below.c.contact_id == ScoreHistory.contact_id)
        .where(ScoreHistory.contact_id.in_(ids), ScoreHistory.score >= threshold,
               or_(below.c.last_below.is_(None), ScoreHistory.computed_at > below.c.last_below))
        .group_by(ScoreHistory.contact_id)
    )
    return {contact_id: since for contact_id, since in rows}


_NO_ORDERS = (0, None, None, 0, 0, 0)
_NO_INTERACTIONS = (None, None)


def _interaction_window(rules: RuleSettings) -> int:
    r = rules.retention
    return max(INTERACTION_WINDOW_DAYS, r["testimonial_request"]["complaint_lookback_days"],
               rules.scoring["cart_window_days"], rules.scoring["question_window_days"],
               r["abandoned_cart"]["max_age_days"])


def _batches(contact_ids: Iterable[int] | None, now: datetime, rules: RuleSettings,
             shop: ShopContext, everyone: _Everyone | None = None) -> Iterator[Batch]:
    since = now - timedelta(days=_interaction_window(rules))
    threshold = rules.scoring["hot_threshold"]
    if contact_ids is None and everyone is None:
        everyone = _Everyone.read()
    for rows in _contact_batches(contact_ids):
        ids = [row.id for row in rows]
        if everyone is not None and everyone.holds(rows):
            orders, second = everyone.orders, everyone.second
        else:
            orders = _order_figures(ids)
            second = _second_orders([row.id for row in rows if orders.get(row.id, (0,))[0] >= 2])
        recent = _recent_interactions(ids, since)
        summaries = _interaction_summaries(ids, rules.journey["advocacy_kinds"])
        tasks = _rule_tasks(ids)
        hot = _hot_since([row.id for row in rows if row.lead_score >= threshold], threshold)
        facts, stored = [], {}
        # Unpacked in _CONTACT_COLUMNS' order: a Row's attributes by name cost more than the rules.
        for (cid, email, phone, consent, company, do_not_contact, birthday, stay_in_touch_days, stage, stage_pinned,
             stage_since, lead_score, p_alive, owner_id, stage_reason, health, score_breakdown, updated_at, erased_at,
             stage_reason_said, *_stored_order_figures) in rows:
            count, first, last, spent, days, undone = orders.get(cid, _NO_ORDERS)
            last_interaction, last_advocacy = summaries.get(cid, _NO_INTERACTIONS)
            facts.append(ContactFacts(
                contact_id=cid,
                has_email=bool(email), has_phone=bool(phone), consent=bool(consent),
                company=company,
                # An erased contact keeps its row for the books but is never contacted again.
                do_not_contact=bool(do_not_contact) or erased_at is not None,
                birthday=birthday, stay_in_touch_days=stay_in_touch_days or None,
                stage=stage, stage_pinned=bool(stage_pinned), stage_since=stage_since,
                order_count=count, first_order_at=first if count else None,
                last_order_at=last if count else None, total_spent=_money(spent) if count else Decimal("0.00"),
                order_days=days if count else 0, refunded_or_cancelled_count=undone,
                second_order_at=second.get(cid),
                interactions=tuple(recent.get(cid, ())),
                last_interaction_at=last_interaction, last_advocacy_at=last_advocacy,
                lead_score=lead_score, hot_since=hot.get(cid), p_alive=p_alive, shop=shop,
            ))
            stored[cid] = StoredState(
                owner_id=owner_id, stage_reason=stage_reason or "", health=health,
                score_breakdown=score_breakdown or [], updated_at=updated_at, tasks=tasks.get(cid, {}),
                stage_reason_said=stage_reason_said,
            )
        yield Batch(facts, stored)


def gather_facts(contact_ids: Iterable[int] | None, now: datetime, *, rules: RuleSettings | None = None,
                 shop: ShopContext | None = None) -> Iterator[ContactFacts]:
    """Yield the rules' facts about these contacts (everyone when None), as stored at `now`."""
    now = require_aware(now, "now")
    rules = rules or rule_settings.load_all()
    shop = shop if shop is not None else shop_context(now, fresh=False)
    for batch in _batches(contact_ids, now, rules, shop):
        yield from batch.facts


# -- who gets a to-do ----------------------------------------------------------------------


class Assigner:
    """Picks the person for each new rule to-do: the contact's owner when the policy says so and
    the owner can work to-dos, else the person of the role with the fewest open to-dos (ties by
    id), counting the ones handed out in this run; admins when the role has nobody."""

    def __init__(self) -> None:
        self._users: dict[int, tuple[str, bool]] | None = None
        self._open: dict[int, int] = {}
        self._roles: dict[str, list[int]] = {}

    def _load(self) -> dict[int, tuple[str, bool]]:
        if self._users is None:
            self._users = {uid: (role, active) for uid, role, active in
                           db.session.execute(select(User.id, User.role, User.active))}
            self._open = dict(db.session.execute(
                select(Task.assignee_id, func.count()).where(Task.status == "open", Task.assignee_id.is_not(None))
                .group_by(Task.assignee_id)).all())
        return self._users

    def _can_work(self, user_id: int | None) -> bool:
        user = self._load().get(user_id) if user_id is not None else None
        return user is not None and user[1] and user[0] != "viewer"

    def _next_of(self, role: str) -> int | None:
        for wanted in (role, "admin"):
            candidates = self._of_role(wanted)
            if candidates:
                chosen = min(candidates, key=lambda uid: (self._open.get(uid, 0), uid))
                return chosen
        return None

    def _of_role(self, role: str) -> list[int]:
        """The active users of a role (read once per run, as the users are)."""
        found = self._roles.get(role)
        if found is None:
            found = self._roles[role] = [uid for uid, (r, active) in self._load().items() if r == role and active]
        return found

    def assignee(self, spec: TaskSpec, owner_id: int | None) -> int | None:
        chosen = owner_id if spec.assignee_policy == "owner" and self._can_work(owner_id) else None
        if chosen is None:
            chosen = self._next_of(spec.assignee_role)
        if chosen is not None:
            self._open[chosen] = self._open.get(chosen, 0) + 1
        return chosen


# -- applying the rules ----------------------------------------------------------------------


@dataclass
class _Writes:
    contacts: list[dict] = field(default_factory=list)
    stage_changes: list[dict] = field(default_factory=list)
    scores: list[int] = field(default_factory=list)  # contacts whose score changed (written on the contact)
    new_tasks: list[dict] = field(default_factory=list)
    closed_tasks: list[dict] = field(default_factory=list)


def _decide(facts: ContactFacts, stored: StoredState, rules: RuleSettings, now: datetime,
            assigner: Assigner, writes: _Writes, summary: RefreshSummary) -> None:
    """Run every rule for one contact and add what changed to `writes`."""
    cid = facts.contact_id
    state = {"stage": facts.stage, "stage_reason": stored.stage_reason, "stage_since": facts.stage_since,
             "stage_reason_said": stored.stage_reason_said,
             "health": stored.health, "lead_score": facts.lead_score, "score_breakdown": stored.score_breakdown,
             "updated_at": stored.updated_at}
    changed = False

    stage, reason = derive_stage(facts, rules.journey, now)
    # A contact whose stage was never derived has no stage_since yet: its first stage is "initial".
    current = facts.stage if facts.stage_since is not None else None
    decision = next_stage(current, facts.stage_pinned, stage, reason, facts)
    if decision is not None:
        # Dated when the facts happened (an imported history gets its real journey).
        steps = dated_steps(decision, facts, rules.journey, now)
        state.update(stage=decision.to_stage, stage_reason=decision.reason[:REASON_LENGTH], stage_since=steps[-1].at,
                     stage_reason_said=said_json(decision.reason))
        writes.stage_changes.extend(
            {"contact_id": cid, "from_stage": step.from_stage, "to_stage": step.to_stage,
             "reason": step.reason[:REASON_LENGTH], "reason_said": said_json(step.reason), "changed_at": step.at,
             "changed_by_id": None}
            for step in steps)
        summary.stage_changes += len(steps)
        changed = True
    elif not facts.stage_pinned and stage == facts.stage and reason[:REASON_LENGTH] != stored.stage_reason:
        state["stage_reason"] = reason[:REASON_LENGTH]  # same stage, fresher words ("12 days ago")
        state["stage_reason_said"] = said_json(reason)
        changed = True

    health_now = derive_health(facts, rules.health, now)  # the to-do rules judge by it too
    health = health_now[0]
    if health != stored.health:
        state["health"] = health
        summary.health_changes += 1
        changed = True

    result = score_contact(facts, rules.scoring, now)
    # Each line keeps its words as key and values too, for readers of other languages.
    breakdown = [{**line, "why": str(line["why"]), "said": said_json(line["why"])} for line in result.breakdown]
    if result.score != facts.lead_score:
        state["lead_score"] = result.score
        writes.scores.append(cid)
        summary.scores_changed += 1
        changed = True
    if breakdown != stored.score_breakdown:
        state["score_breakdown"] = breakdown
        changed = True
    if changed:
        writes.contacts.append({"contact_id": cid, **state})

    threshold = rules.scoring["hot_threshold"]
    if result.score < threshold:
        hot_since = None
    elif (facts.lead_score or 0) >= threshold and facts.hot_since is not None:
        hot_since = facts.hot_since
    else:
        hot_since = now
    now_facts = facts.scored(result.score, hot_since)

    # Only the to-dos made are worded: an occasion made before (a rule never makes a task twice,
    # whatever became of it) or passed is dropped as it is.
    passed = summary.tasks_passed
    for occasion in occasions(now_facts, rules.retention, now, health_settings=rules.health, health=health_now):
        if occasion.rule_key in stored.tasks:
            continue
        if occasion.has_passed(now):
            passed[occasion.title] = passed.get(occasion.title, 0) + 1
            continue
        spec = occasion.spec()
        stored.tasks[spec.rule_key] = (0, "open")
        writes.new_tasks.append({
            "contact_id": cid, "kind": spec.kind, "rule_key": spec.rule_key, "title": spec.title[:300],
            "reason": spec.reason[:TASK_REASON_LENGTH], "due_at": spec.due_at, "status": "open",
            "said": {"title": said_json(spec.title), "reason": said_json(spec.reason)},
            "assignee_id": assigner.assignee(spec, stored.owner_id), "created_at": now,
        })
    open_keys = [key for key, (task_id, status) in stored.tasks.items() if status == "open" and task_id]
    if not open_keys:
        return
    for key, why in moot_tasks(open_keys, now_facts, now, rules.retention, health_settings=rules.health,
                               health=health_now):
        writes.closed_tasks.append({"id": stored.tasks[key][0], "status": "closed",
                                    "close_reason": why[:REASON_LENGTH], "close_reason_said": said_json(why),
                                    "closed_at": now})


def _insert_ignoring_duplicates(model, keys: list[str]):
    """INSERT … ON CONFLICT (keys) DO NOTHING into the model's table, on PostgreSQL and SQLite alike."""
    if db.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(model.__table__).on_conflict_do_nothing(index_elements=keys)


def _insert_tasks(rows: list[dict]) -> None:
    """Insert new rule to-dos; a key another transaction inserted meanwhile is skipped, not an error."""
    statement = _insert_ignoring_duplicates(Task, ["contact_id", "rule_key"])
    db.session.execute(statement, [{**row, "snoozed_until": None, "closed_at": None, "close_reason": None,
                                    "close_reason_said": None, "outcome": None} for row in rows])


def _expire(model, ids: set[int], attributes: Sequence[str] | None = None) -> None:
    """Expire loaded objects whose rows a bulk statement changed, so they read the new values."""
    if not ids:
        return
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, model) and obj.id in ids:
            db.session.expire(obj, attributes)


def _update_contacts_statement():
    # The SET clause is the rows' other keys (DERIVED).
    return update(Contact.__table__).where(Contact.__table__.c.id == bindparam("contact_id"))


def _score_history_statement():
    """The score history rows of contacts whose score changed, copied from the contacts' rows just
    written (the breakdown's JSON is made once, for the contact)."""
    c, h = Contact.__table__.c, ScoreHistory.__table__
    return insert(h).from_select(
        ["contact_id", "score", "breakdown", "computed_at"],
        select(c.id, c.lead_score, c.score_breakdown, bindparam("computed_at", type_=h.c.computed_at.type))
        .where(c.id.in_(_IDS)).order_by(c.id))


def _write(writes: _Writes, summary: RefreshSummary, now: datetime) -> None:
    # Core statements, executemany: every row has the same keys, and no ORM bookkeeping per row
    # (the objects loaded in this session are expired below).
    if writes.contacts:
        db.session.execute(_built("update_contacts", _update_contacts_statement), writes.contacts)
    if writes.stage_changes:
        db.session.execute(insert(StageChange.__table__), writes.stage_changes)
        # The dashboard's journey summaries, after the contacts' rows were written (and locked).
        summaries.update_journeys({row["contact_id"] for row in writes.stage_changes})
    if writes.scores:
        db.session.execute(_built("score_history", _score_history_statement),
                           {"ids": writes.scores, "computed_at": now})
    if writes.new_tasks:
        _insert_tasks(writes.new_tasks)
        summary.tasks_created += len(writes.new_tasks)
    if writes.closed_tasks:
        db.session.execute(update(Task), writes.closed_tasks)
        summary.tasks_closed += len(writes.closed_tasks)
    _expire(Contact, {row["contact_id"] for row in writes.contacts}, [c for c in DERIVED if c != "updated_at"])
    _expire(Task, {row["id"] for row in writes.closed_tasks})


def apply(contact_ids: Iterable[int] | None, now: datetime | None = None,
          progress: Progress | None = None) -> RefreshSummary:
    """Derive stage, health, score and to-dos for these contacts (everyone when None) at `now`,
    write what changed, and return a summary. `progress(n)` is called after each batch of n."""
    now = require_aware(now or utcnow(), "now")
    rules = rule_settings.load_all()
    # A run for everyone reads every contact's order figures once, and the shop-wide ones from them.
    everyone = _Everyone.read() if contact_ids is None else None
    shop = shop_context(now, fresh=contact_ids is None, figures=everyone.orders if everyone else None)
    assigner = Assigner()
    summary = RefreshSummary()
    for batch in _batches(contact_ids, now, rules, shop, everyone):
        writes = _Writes()
        for facts in batch.facts:
            _decide(facts, batch.stored[facts.contact_id], rules, now, assigner, writes, summary)
        _write(writes, summary, now)
        summary.contacts += len(batch.facts)
        if progress is not None:
            progress(len(batch.facts))
    return summary


def contact_count() -> int:
    """Return how many contacts a refresh for everyone goes through."""
    return db.session.scalar(select(func.count()).select_from(Contact)) or 0


# -- refresh: every time-based job, in order ---------------------------------------------------


def _predict_step(now: datetime, progress: Progress | None) -> str:
    # Imported here: numpy and scipy load only when predictions run, not with every web worker.
    from crm.services.insight import predict

    # progress(0) lets the caller commit after each written batch without moving a bar
    # that counts the rules' contacts.
    return predict.run(now, progress=None if progress is None else (lambda _count: progress(0))).headline()


def _rules_step(now: datetime, progress: Progress | None) -> RefreshSummary:
    return apply(None, now, progress)


# The jobs `crm refresh` runs, in order, each with what a person watching is told. Predictions
# (p_alive, expected orders) go first, because health and the win-back rule read p_alive.
RefreshStep = Callable[[datetime, Progress | None], RefreshSummary | str | None]
def _aggregates_step(now: datetime, progress: Progress | None) -> str | None:

    repaired = aggregates.repair()
    if progress is not None:
        progress(0)  # commit the repair before the long steps
    if repaired:
        return said_plural(Np_(repaired, "Recounted the orders of %(num)s contact whose figures had drifted.",
                               "Recounted the orders of %(num)s contacts whose figures had drifted."), repaired)
    return None


REFRESH_STEPS: list[tuple[str, RefreshStep]] = [
    (N_("Recounting orders on each contact"), _aggregates_step),
    (N_("Predicting who buys again"), _predict_step),
    (N_("Stages, scores and to-dos"), _rules_step),
]


def refresh(now: datetime | None = None, progress: Progress | None = None,
            step_started: Callable[[str], None] | None = None) -> RefreshSummary:
    """Run every refresh step for everyone at `now` and return what the rules changed.

    `step_started(label)` is called as each step begins, so a progress bar can say what it waits for.
    """
    now = require_aware(now or utcnow(), "now")
    summary, notes = RefreshSummary(), []
    for label, step in REFRESH_STEPS:
        if step_started is not None:
            step_started(label)
        result = step(now, progress)
        if isinstance(result, RefreshSummary):
            summary = result
        elif isinstance(result, str):
            notes.append(result)
    summary.notes = notes
    return summary


# --- reacting to writes -------------------------------------------------------------------------

def _on_contacts_changed(_sender, *, ids: set[int], now: datetime | None = None):
    return apply(ids, now)


def _on_bulk_change(_sender, *, now: datetime | None = None):
    return refresh(now)


def connect() -> None:
    """Make the engine react to the services' writes (crm.services.shared.signals); safe to call again."""
    signals.contacts_changed.connect(_on_contacts_changed)
    signals.bulk_changed.connect(_on_bulk_change)
