"""Customer insight: the journey funnel, cohorts, revenue, scores, segments, who is slipping away.

Every figure is computed set-based (GROUP BY and window functions), so the dashboard costs the
same handful of queries for ten contacts or a hundred thousand. Each function takes `now`, so a
test (or a report for a past day) sees the shop as it was then. Months are calendar months in
the shop's time zone, exact on both databases: PostgreSQL converts with its zone database;
SQLite, which knows no zones, compares each timestamp with the instants the window's months
begin in the shop's zone (worked out here with zoneinfo, daylight saving included).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, case, cast, distinct, exists, extract, func, or_, select, union_all
from sqlalchemy.orm import aliased

from crm.extensions import db
from crm.models import PAID_STATUSES, STAGES, Contact, Order, StageChange, Task, utcnow
from crm.services.insight import summaries
from crm.services.insight.predict_status import PredictionStatus, prediction_status
from crm.services.insight.rfm_names import segment_label

CENT = Decimal("0.01")
COHORT_MONTHS = 12  # months since the first order shown for each cohort: 0 … 11
COHORTS = 12
REVENUE_MONTHS = 12
SPARKLINE_MONTHS = 24
SCORE_BIN = 10
AT_RISK_P_ALIVE = 0.5
# At or below this chance of still buying, no next order is expected (predict_models.next_purchase_time).
LIKELY_LOST_P_ALIVE = 0.5
AT_RISK_LIMIT = 10
TASK_LIMIT = 10

STAGE_RANK = {stage: rank for rank, stage in enumerate(STAGES)}


# ---------------------------------------------------------------------------- helpers


def _money(value) -> Decimal:
    """Return a database sum or average as Decimal with two places (SQLite sums text as floats)."""
    return Decimal(str(value if value is not None else 0)).quantize(CENT)


def _zone(zone: ZoneInfo | str | None) -> ZoneInfo:
    if isinstance(zone, ZoneInfo):
        return zone
    return ZoneInfo(zone or "UTC")


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def _month_number(moment: datetime, zone: ZoneInfo) -> int:
    """Return the month of an instant in the shop's zone as year * 12 + month - 1."""
    local = moment.astimezone(zone)
    return local.year * 12 + local.month - 1


def _month_start(number: int) -> date:
    return date(number // 12, number % 12 + 1, 1)


def _month_begins_at(number: int, zone: ZoneInfo) -> datetime:
    """Return the instant the month `number` begins in the shop's zone."""
    return datetime.combine(_month_start(number), time(0), tzinfo=zone)


def _month_index(column, zone: ZoneInfo, first: int, last: int):
    """Return SQL for the month of a timestamp column in the shop's zone (year * 12 + month - 1).

    Exact for months `first` … `last`; callers keep to that window. PostgreSQL converts with its
    zone database. SQLite compares the column (UTC text) with the instants each month of the
    window begins in the zone, so a daylight-saving change never moves an order across a month
    boundary: a time before the window reads as `first - 1`, one after it as `last + 1`.
    """
    if _dialect() == "postgresql":
        local = func.timezone(zone.key, column)
        return cast(extract("year", local), Integer) * 12 + cast(extract("month", local), Integer) - 1
    whens = [(column < _month_begins_at(number, zone), number - 1) for number in range(first, last + 2)]
    return case(*whens, else_=last + 1)


def _seconds_between(earlier, later):
    """Return SQL for the seconds from one timestamp column to another."""
    if _dialect() == "postgresql":
        return extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _stage_rank(column):
    return case(STAGE_RANK, value=column)


def _median_rows(values, *group, where=()):
    """Return a select of (group…, median, size) of `values` among the rows `where` selects.

    ROW_NUMBER and COUNT windows work the same on SQLite 3.25+ and PostgreSQL, which
    have no common MEDIAN; an even count averages the two middle rows.
    """
    partition = list(group) or None
    ranked = select(
        *group, values.label("value"),
        func.row_number().over(partition_by=partition, order_by=values).label("position"),
        func.count().over(partition_by=partition).label("size"),
    ).where(*where).subquery()
    middle = or_(ranked.c.position == (ranked.c.size + 1) // 2, ranked.c.position == (ranked.c.size + 2) // 2)
    group_columns = [ranked.c[column.key] for column in group]
    return (
        select(*group_columns, func.avg(ranked.c.value).label("median"), func.max(ranked.c.size).label("size"))
        .where(middle).group_by(*group_columns)
    )


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# ---------------------------------------------------------------------------- the journey


@dataclass
class FunnelStage:
    stage: str
    contacts: int  # in this stage now
    share: float | None  # of all contacts
    entered: int  # ever entered this stage (by the history, or standing in it now)
    moved_on: int  # of those, later reached a stage further on
    median_seconds: float | None  # median completed stay in this stage
    stays: int  # completed stays the median is taken over

    @property
    def conversion(self) -> float | None:
        """Share of those who entered this stage who later reached a stage further on."""
        return _share(self.moved_on, self.entered)


@dataclass
class Funnel:
    stages: list[FunnelStage]
    total: int
    has_history: bool

    @property
    def widest(self) -> int:
        return max((s.contacts for s in self.stages), default=0)


def journey_funnel(now: datetime | None = None, shown: "Period | None" = None,
                   stages: summaries.StageCells | None = None) -> Funnel:
    """Return contacts per stage, conversion to later stages and the median time in each stage.

    Conversion: of the contacts who entered stage S (within the period `shown`, when given),
    the share whose history shows a stage beyond S by the as-of (the next one, or further when
    a rule skipped one: a first purchase without an enquiry goes straight from awareness to
    conversion). A contact's stages are those its changes went to or came from, and the one it
    stands in. Time in stage: from a change into S to the contact's next change, completed
    stays begun in the period only. Nothing changed after the as-of counts; with an as-of in
    the past the contacts per stage are those of that moment (their last change by then).
    Three queries whatever the data size; two with the summary `stages` (summaries.read, which
    gives them only when no change is dated after the as-of), which hold the contacts per stage
    and who entered each stage in which month and moved on, as of now.
    """
    now = now or utcnow()
    as_of = shown.as_of if shown is not None else now
    since = shown.begins_at if shown is not None and shown.kind != "all" else None
    past = _in_the_past(as_of, now)
    if stages is not None and not past:
        first = shown.first if shown is not None and shown.kind != "all" else None
        counts, conversions = _funnel_from_cells(stages, first)
        return _funnel(counts, conversions, _stay_medians(as_of, since), _has_history(as_of))
    history = exists().where(StageChange.changed_at <= as_of)
    if past:
        latest = select(
            StageChange.contact_id, StageChange.to_stage,
            func.row_number().over(partition_by=StageChange.contact_id,
                                   order_by=(StageChange.changed_at.desc(), StageChange.id.desc())).label("n"),
        ).where(StageChange.changed_at <= as_of).subquery()
        earliest = select(
            StageChange.contact_id, StageChange.from_stage,
            func.row_number().over(partition_by=StageChange.contact_id,
                                   order_by=(StageChange.changed_at, StageChange.id)).label("n"),
        ).subquery()
        # Their last change by then; with changes only later, where the first of those came from
        # (the first stage when it was their first ever); with no history at all, where they stand.
        stage_then = func.coalesce(
            latest.c.to_stage,
            case((earliest.c.contact_id.is_not(None), func.coalesce(earliest.c.from_stage, STAGES[0]))),
            Contact.stage,
        )

        def at_the_time(statement):
            return (statement.outerjoin(latest, and_(latest.c.contact_id == Contact.id, latest.c.n == 1))
                    .outerjoin(earliest, and_(earliest.c.contact_id == Contact.id, earliest.c.n == 1))
                    .where(Contact.created_at <= as_of))

        count_rows = db.session.execute(
            at_the_time(select(stage_then, func.count(), history).select_from(Contact)).group_by(stage_then)).all()
        standing = at_the_time(select(Contact.id, stage_then, func.coalesce(Contact.stage_since, Contact.created_at))
                               .select_from(Contact))
    else:
        count_rows = db.session.execute(select(Contact.stage, func.count(), history).group_by(Contact.stage)).all()
        standing = select(Contact.id, Contact.stage, func.coalesce(Contact.stage_since, Contact.created_at))
    counts = {stage: count for stage, count, _history in count_rows}
    # Whether any change is recorded by then comes with the counts (asked apart only with no contacts).
    has_history = bool(count_rows[0][2]) if count_rows else _has_history(as_of)

    entries = union_all(
        select(StageChange.contact_id, StageChange.to_stage.label("stage"), StageChange.changed_at.label("at"))
        .where(StageChange.changed_at <= as_of),
        select(StageChange.contact_id, StageChange.from_stage, StageChange.changed_at)
        .where(StageChange.from_stage.is_not(None), StageChange.changed_at <= as_of),
        standing,
    ).subquery()
    first_entry = (
        select(entries.c.contact_id, entries.c.stage, func.min(entries.c.at).label("at"))
        .group_by(entries.c.contact_id, entries.c.stage).subquery()
    )
    later = aliased(StageChange)
    moved_on = exists().where(
        later.contact_id == first_entry.c.contact_id,
        _stage_rank(later.to_stage) > _stage_rank(first_entry.c.stage),
        later.changed_at >= first_entry.c.at,
        later.changed_at <= as_of,
    )
    entered_in_period = [] if since is None else [first_entry.c.at >= since]
    conversions = {
        stage: (entered, int(moved or 0))
        for stage, entered, moved in db.session.execute(
            select(first_entry.c.stage, func.count(), func.sum(case((moved_on, 1), else_=0)))
            .where(*entered_in_period).group_by(first_entry.c.stage)
        )
    }

    return _funnel(counts, conversions, _stay_medians(as_of, since), has_history)


def _in_the_past(as_of: datetime, now: datetime) -> bool:
    """Whether the funnel is seen as of an earlier moment than now (its stages as they stood then)."""
    return as_of < now - timedelta(minutes=1)


def _funnel_from_cells(stages: summaries.StageCells, first: int | None) -> tuple[dict, dict]:
    """Return the contacts per stage now and {stage: (entered, moved on)} of those who first
    entered it from the month `first` on (None: ever), from the summary cells."""
    counts: dict[str, int] = {}
    conversions: dict[str, tuple[int, int]] = {}
    for (stage, month), (entered, moved_on, standing) in stages.items():
        if standing:
            counts[stage] = counts.get(stage, 0) + standing
        if first is None or month >= first:
            had = conversions.get(stage, (0, 0))
            conversions[stage] = (had[0] + entered, had[1] + moved_on)
    return counts, conversions


def _stay_medians(as_of: datetime, since: datetime | None) -> dict:
    """Return {stage: (median seconds, completed stays)} of the stays begun from `since` on and
    ended by the as-of: from a change into the stage to the contact's next change."""
    stays = select(
        StageChange.to_stage.label("stage"),
        StageChange.changed_at.label("began"),
        func.lead(StageChange.changed_at).over(
            partition_by=StageChange.contact_id, order_by=(StageChange.changed_at, StageChange.id)
        ).label("ended"),
    ).where(StageChange.changed_at <= as_of).subquery()
    began_in_period = [] if since is None else [stays.c.began >= since]
    durations = (
        select(stays.c.stage, _seconds_between(stays.c.began, stays.c.ended).label("seconds"))
        .where(stays.c.ended.is_not(None), *began_in_period).subquery()
    )
    return {
        stage: (float(median), size)
        for stage, median, size in db.session.execute(_median_rows(durations.c.seconds, durations.c.stage))
    }


def _has_history(as_of: datetime) -> bool:
    return bool(db.session.scalar(select(exists().where(StageChange.changed_at <= as_of))))


def _funnel(counts: dict, conversions: dict, medians: dict, has_history: bool) -> Funnel:
    total = sum(counts.values())
    stages = []
    for stage in STAGES:
        entered, moved = conversions.get(stage, (0, 0))
        median, size = medians.get(stage, (None, 0))
        stages.append(FunnelStage(
            stage=stage, contacts=counts.get(stage, 0), share=_share(counts.get(stage, 0), total),
            entered=entered, moved_on=moved, median_seconds=median, stays=size,
        ))
    return Funnel(stages=stages, total=total, has_history=has_history)


# ---------------------------------------------------------------------------- the period shown


PERIOD_KINDS = ("12m", "year", "range", "all")


@dataclass(frozen=True)
class Period:
    """The months a dashboard shows, `first` … `last` (year * 12 + month - 1, shop time), and the
    as-of instant: nothing placed, changed or entered after `as_of` counts."""

    kind: str  # one of PERIOD_KINDS
    first: int
    last: int
    as_of: datetime
    zone: str = "UTC"  # the shop's time zone, whose months these are

    @property
    def first_month(self) -> date:
        return _month_start(self.first)

    @property
    def last_month(self) -> date:
        return _month_start(self.last)

    @property
    def months(self) -> int:
        return self.last - self.first + 1

    @property
    def label(self) -> str:
        if self.kind == "12m":
            return "the last 12 months"
        if self.kind == "year":
            return str(self.first // 12)
        if self.kind == "all":
            return "all history"
        return f"{self.first_month:%b %Y} – {self.last_month:%b %Y}"

    @property
    def begins_at(self) -> datetime:
        return _month_begins_at(self.first, _zone(self.zone))


@dataclass(frozen=True)
class DataRange:
    """The months that hold paid orders (up to the as-of), to offer when a period is empty."""

    first: int | None
    last: int | None

    @property
    def empty(self) -> bool:
        return self.first is None


def data_range(as_of: datetime, zone: ZoneInfo | str | None = None) -> DataRange:
    """Return the first and last month with a paid order placed by `as_of`. One query: two index
    seeks per paid status on orders (status, placed_at). A min() and a max() over the three
    statuses at once read every paid order's index entry on SQLite (0.3 s for a million)."""
    zone = _zone(zone)
    ends = [select(aggregate(Order.placed_at)).where(Order.status == status, Order.placed_at <= as_of)
            .scalar_subquery() for status in PAID_STATUSES for aggregate in (func.min, func.max)]
    found = db.session.execute(select(*ends)).one()
    firsts = [moment for moment in found[0::2] if moment is not None]
    if not firsts:
        return DataRange(None, None)
    first, last = min(firsts), max(moment for moment in found[1::2] if moment is not None)
    return DataRange(_month_number(first, zone), _month_number(last, zone))


def period(kind: str = "12m", as_of: datetime | None = None, zone: ZoneInfo | str | None = None, *,
           year: int | None = None, start: date | None = None, end: date | None = None,
           history: DataRange | None = None) -> Period:
    """Return the period a dashboard shows, ending no later than `as_of` (default now).

    "12m": the 12 months up to the as-of month; "year": a calendar year (the as-of moves back to
    the year's end when that is earlier); "range": the months from `start` to `end` (both
    included, end capped at the as-of); "all": from the first month with a paid order
    (`history`) to the as-of month. Raises ValueError for a period that cannot be shown.
    """
    zone = _zone(zone)
    as_of = as_of or utcnow()
    current = _month_number(as_of, zone)
    if kind == "12m":
        return Period(kind, current - REVENUE_MONTHS + 1, current, as_of, zone.key)
    if kind == "year":
        if year is None or not 1900 <= year <= 9999:
            raise ValueError("Choose a year between 1900 and 9999.")
        first, last = year * 12, year * 12 + 11
    elif kind == "range":
        if start is None or end is None:
            raise ValueError("Give both the first and the last month of the range.")
        first, last = start.year * 12 + start.month - 1, end.year * 12 + end.month - 1
        if last < first:
            raise ValueError("The range ends before it begins.")
    elif kind == "all":
        history = history or data_range(as_of, zone)
        first = history.first if history.first is not None else current
        last = current
    else:
        raise ValueError(f"Unknown period {kind!r}; choose one of {', '.join(PERIOD_KINDS)}.")
    if first > current:
        raise ValueError(f"The period begins after the as-of date ({as_of.astimezone(zone):%d %b %Y}).")
    if last < current:
        # The period ended before the as-of: it is seen as at its own end.
        as_of = _month_begins_at(last + 1, zone) - timedelta(microseconds=1)
    return Period(kind, first, min(last, current), as_of, zone.key)


# ---------------------------------------------------------------------------- cohorts and revenue


def _window_since(start_month: int, zone: ZoneInfo) -> datetime:
    """Return the instant a window from `start_month` on begins (months are exact on both databases)."""
    return _month_begins_at(start_month, zone)


def _newcomers_paid_orders(start_month: int, zone: ZoneInfo, end_month: int, until: datetime):
    """Return a subquery of the paid orders, from `start_month` on, of customers whose first paid
    order falls in that window: contact, month, first-order month (cohort), amount.

    Only these customers can be new or start a cohort in the window: a small set of contacts
    (by their stored first_order_at, kept current by the aggregates in the same transaction as
    every order write) whose orders are found through the (contact, placed_at) index, instead
    of a contact lookup for every order of the window.
    """
    month = _month_index(Order.placed_at, zone, start_month, end_month)
    since = _window_since(start_month, zone)
    newcomers = (
        select(Contact.id, Contact.first_order_at)
        .where(Contact.first_order_at >= since, Contact.first_order_at <= until)
        .cte("newcomers").prefix_with("MATERIALIZED")
    )
    return (
        select(
            Order.contact_id,
            month.label("month"),
            _month_index(newcomers.c.first_order_at, zone, start_month, end_month).label("cohort"),
            (Order.total - Order.refunded).label("amount"),
        )
        .join(newcomers, newcomers.c.id == Order.contact_id)
        .where(Order.status.in_(PAID_STATUSES), Order.placed_at >= since, Order.placed_at <= until)
        .subquery()
    )


@dataclass
class CohortCell:
    months_since: int
    customers: int  # who ordered (again) in that month
    share: float


@dataclass
class CohortRow:
    month: date
    customers: int  # new customers: first paid order in this month
    # One per month since the first order; None where that month has not come yet.
    cells: list[CohortCell | None]


@dataclass
class Cohorts:
    rows: list[CohortRow]
    months: int = COHORT_MONTHS

    @property
    def customers(self) -> int:
        return sum(row.customers for row in self.rows)

    @property
    def highest_share(self) -> float:
        return max((c.share for row in self.rows for c in row.cells if c is not None), default=0.0)


def cohort_retention(now: datetime | None = None, zone: ZoneInfo | str | None = None,
                     shown: Period | None = None, cells: summaries.Cells | None = None) -> Cohorts:
    """Return the monthly cohorts of new customers of a period (default: the last 12 months) and
    who ordered again in each month after, up to the period's as-of.

    Month 0 is the month of the first paid order; its share is the customers who placed a
    second order within that same month (by the as-of). Month k > 0 is the share who ordered at
    all in the k-th calendar month after. One query, none with the summary `cells` of the period
    (summaries.read), which hold the same counts.
    """
    now, zone = now or utcnow(), _zone(zone)
    shown = shown or period("12m", now, zone)
    now, current, first = shown.as_of, shown.last, shown.first
    if cells is not None:
        found = {(cohort, month - cohort): (customers, repeaters)
                 for (cohort, month), (_cents, _orders, customers, repeaters) in cells.items()
                 if first <= cohort <= month <= current}
    else:
        found = _cohort_counts(first, current, zone, now)
    return _cohort_rows(first, current, found)


def _cohort_counts(first: int, current: int, zone: ZoneInfo, now: datetime) -> dict:
    """Return {(cohort, months since): (customers, of them ordering twice or more)} from the orders."""
    orders = _newcomers_paid_orders(first, zone, current, now)
    per_customer = (
        select(orders.c.contact_id, orders.c.cohort, (orders.c.month - orders.c.cohort).label("age"),
               func.count().label("orders"))
        .where(orders.c.cohort >= first, orders.c.month <= current)
        .group_by(orders.c.contact_id, orders.c.cohort, orders.c.month).subquery()
    )
    return {
        (cohort, age): (customers, int(repeat or 0))
        for cohort, age, customers, repeat in db.session.execute(
            select(per_customer.c.cohort, per_customer.c.age, func.count(),
                   func.sum(case((per_customer.c.orders > 1, 1), else_=0)))
            .group_by(per_customer.c.cohort, per_customer.c.age)
        )
    }


def _cohort_rows(first: int, current: int, found: dict) -> Cohorts:
    rows = []
    for cohort in range(first, current + 1):
        size, repeat_in_first_month = found.get((cohort, 0), (0, 0))
        cells: list[CohortCell | None] = []
        for age in range(COHORT_MONTHS):
            if cohort + age > current or not size:
                cells.append(None)
                continue
            customers = repeat_in_first_month if age == 0 else found.get((cohort, age), (0, 0))[0]
            cells.append(CohortCell(months_since=age, customers=customers, share=customers / size))
        rows.append(CohortRow(month=_month_start(cohort), customers=size, cells=cells))
    return Cohorts(rows=rows)


@dataclass
class MonthRevenue:
    month: date
    new: Decimal  # from customers whose first paid order fell in this month
    returning: Decimal
    new_customers: int
    returning_customers: int

    @property
    def total(self) -> Decimal:
        return self.new + self.returning


@dataclass
class Revenue:
    months: list[MonthRevenue]

    @property
    def total(self) -> Decimal:
        return sum((m.total for m in self.months), Decimal("0.00"))

    @property
    def highest(self) -> Decimal:
        return max((m.total for m in self.months), default=Decimal("0.00"))


def revenue_by_month(now: datetime | None = None, zone: ZoneInfo | str | None = None,
                     months: int = REVENUE_MONTHS, shown: Period | None = None,
                     cells: summaries.Cells | None = None) -> Revenue:
    """Return paid revenue (total less refunds) per month, split into new and returning customers.

    A customer is new in the month of their first paid order, returning after. Two queries:
    every order of the window summed by month (no join), and the new customers' orders, which
    are few; returning is the difference. A customer's orders in one month are all new or all
    returning, so the customer counts subtract too. The months are those of `shown` (default: the
    last `months` up to `now`); nothing placed after its as-of counts. No query with the summary
    `cells` of the period (summaries.read): a month's total is its cells summed over the cohorts,
    its new customers the cell of the cohort of that month.
    """
    now, zone = now or utcnow(), _zone(zone)
    if shown is None:
        current = _month_number(now, zone)
        shown = Period("12m", current - months + 1, current, now, zone.key)
    now, current, first = shown.as_of, shown.last, shown.first
    if cells is not None:
        totals, new = _revenue_from_cells(cells, first, current)
    else:
        totals, new = _revenue_from_orders(first, current, zone, now)
    result = []
    for number in range(first, current + 1):
        total, customers = totals.get(number, (Decimal("0.00"), 0))
        new_amount, new_customers = new.get(number, (Decimal("0.00"), 0))
        result.append(MonthRevenue(_month_start(number), new_amount, total - new_amount, new_customers,
                                   customers - new_customers))
    return Revenue(months=result)


def _revenue_from_cells(cells: summaries.Cells, first: int, current: int) -> tuple[dict, dict]:
    cents: dict[int, int] = {}
    customers: dict[int, int] = {}
    new = {}
    for (cohort, month), (amount, _orders, buyers, _repeaters) in cells.items():
        if not first <= month <= current:
            continue
        cents[month] = cents.get(month, 0) + amount
        customers[month] = customers.get(month, 0) + buyers
        if cohort == month:
            new[month] = (_money(Decimal(amount) / 100), buyers)
    totals = {month: (_money(Decimal(amount) / 100), customers[month]) for month, amount in cents.items()}
    return totals, new


def _revenue_from_orders(first: int, current: int, zone: ZoneInfo, now: datetime) -> tuple[dict, dict]:
    month = _month_index(Order.placed_at, zone, first, current)
    since = _window_since(first, zone)
    totals = {
        row_month: (_money(amount), customers)
        for row_month, amount, customers in db.session.execute(
            select(month, func.sum(Order.total - Order.refunded), func.count(distinct(Order.contact_id)))
            .where(Order.status.in_(PAID_STATUSES), Order.placed_at >= since, Order.placed_at <= now)
            .group_by(month)
        )
    }
    newcomers = _newcomers_paid_orders(first, zone, current, now)
    new = {
        row_month: (_money(amount), customers)
        for row_month, amount, customers in db.session.execute(
            select(newcomers.c.month, func.sum(newcomers.c.amount), func.count(distinct(newcomers.c.contact_id)))
            .where(newcomers.c.month <= newcomers.c.cohort, newcomers.c.month >= first, newcomers.c.month <= current)
            .group_by(newcomers.c.month)
        )
    }
    return totals, new


# ---------------------------------------------------------------------------- scores and segments


@dataclass
class ScoreBin:
    low: int
    high: int
    contacts: int


@dataclass
class ScoreHistogram:
    bins: list[ScoreBin]

    @property
    def total(self) -> int:
        return sum(b.contacts for b in self.bins)

    @property
    def highest(self) -> int:
        return max((b.contacts for b in self.bins), default=0)


def lead_score_histogram() -> ScoreHistogram:
    """Return how many contacts have a lead score in each 10-point bin (90–100 is the last). One
    query, counting per score in the order of the index on lead_score (a hundred-odd rows), binned
    here: grouped by an expression of the score, the database sorted every contact first."""
    found: dict[int, int] = {}
    for score, count in db.session.execute(select(Contact.lead_score, func.count()).group_by(Contact.lead_score)):
        number = min(max(score, 0), 100) // SCORE_BIN if score < 90 else 9
        found[number] = found.get(number, 0) + count
    return ScoreHistogram(bins=[
        ScoreBin(low=n * SCORE_BIN, high=100 if n == 9 else n * SCORE_BIN + SCORE_BIN - 1, contacts=found.get(n, 0))
        for n in range(10)
    ])


@dataclass
class Segment:
    name: str
    customers: int
    value: Decimal  # what they have spent in total
    share_of_value: float | None


@dataclass
class Segments:
    segments: list[Segment]

    @property
    def customers(self) -> int:
        return sum(s.customers for s in self.segments)

    @property
    def largest(self) -> int:
        return max((s.customers for s in self.segments), default=0)


def rfm_segments(shown: Period | None = None) -> Segments:
    """Return each RFM segment (by name) with its customers and what they spent, largest value
    first: their total spent, or with a period `shown` their paid orders placed in it (by its
    as-of). One query. Empty until `crm predict` (or `crm refresh`) has written segments.
    """
    segment_members = (Contact.rfm_segment.is_not(None), Contact.erased_at.is_(None))
    if shown is None:
        statement = (
            select(Contact.rfm_segment, func.count(), func.coalesce(func.sum(Contact.total_spent), 0))
            .where(*segment_members).group_by(Contact.rfm_segment)
        )
    else:
        spent = (
            select(Order.contact_id, func.sum(Order.total - Order.refunded).label("amount"))
            .where(Order.status.in_(PAID_STATUSES), Order.placed_at >= shown.begins_at,
                   Order.placed_at <= shown.as_of)
            .group_by(Order.contact_id).subquery()
        )
        statement = (
            select(Contact.rfm_segment, func.count(), func.coalesce(func.sum(spent.c.amount), 0))
            .select_from(Contact).outerjoin(spent, spent.c.contact_id == Contact.id)
            .where(*segment_members).group_by(Contact.rfm_segment)
        )
    rows = db.session.execute(statement).all()
    value_total = sum((_money(value) for _name, _count, value in rows), Decimal("0.00"))
    segments = [
        Segment(name=segment_label(name), customers=count, value=_money(value),
                share_of_value=float(_money(value) / value_total) if value_total else None)
        for name, count, value in rows
    ]
    segments.sort(key=lambda s: (-s.value, -s.customers, s.name))
    return Segments(segments=segments)


# ---------------------------------------------------------------------------- who is slipping away


@dataclass
class SlippingCustomer:
    contact_id: int
    name: str
    total_spent: Decimal
    order_count: int
    last_order_at: datetime | None
    p_alive: float | None
    predicted_value_12m: Decimal | None
    health: str | None


@dataclass
class AboutToLose:
    customers: list[SlippingCustomer]
    # "p_alive" when the predictions ranked them; "health" when there are none yet.
    basis: str
    median_spent: Decimal | None

    @property
    def highest_spent(self) -> Decimal:
        return max((c.total_spent for c in self.customers), default=Decimal("0.00"))


def current_medians() -> tuple[Decimal | None, Decimal | None, int]:
    """Return the median customer's total spent and predicted 12-month value (None without any)
    and how many customers have a chance of still buying, as stored now. One query, over every
    customer: the maintenance jobs keep its answer in the summaries (summaries.store_medians)."""
    customers = and_(Contact.order_count > 0, Contact.erased_at.is_(None))
    spent_median = _median_rows(Contact.total_spent, where=[customers]).subquery()
    predicted = Contact.predicted_value_12m
    predicted_median = _median_rows(predicted, where=[customers, predicted.is_not(None)]).subquery()
    spent, predicted_value, with_p_alive = db.session.execute(select(
        select(spent_median.c.median).scalar_subquery(),
        select(predicted_median.c.median).scalar_subquery(),
        select(func.count(Contact.p_alive)).where(customers).scalar_subquery(),
    )).one()
    return (None if spent is None else _money(spent), None if predicted_value is None else _money(predicted_value),
            int(with_p_alive or 0))


def about_to_lose(now: datetime | None = None, limit: int = AT_RISK_LIMIT, *,
                  as_of: datetime | None = None,
                  medians: tuple[Decimal | None, Decimal | None, int] | None = None) -> AboutToLose:
    """Return the valuable customers least likely to still be buying, most spent first.

    Valuable: spent more than the median customer, or a predicted 12-month value above the
    median prediction. Slipping: a probability of being alive under 0.5; before `crm predict`
    has run (no p_alive anywhere) the health flag stands in (at risk or lapsed). Two queries.
    With an `as_of` in the past, what they spent, their orders and their last order are those
    placed by then (summed from the orders instead of the stored figures). `medians` (as of now:
    what current_medians returns, kept in the summaries by the maintenance jobs) saves a query
    over every customer.
    """
    now = now or utcnow()
    past = as_of is not None and as_of < now - timedelta(minutes=1)
    if past:
        by_then = (
            select(Order.contact_id.label("contact_id"), func.count().label("orders"),
                   func.sum(Order.total - Order.refunded).label("spent"), func.max(Order.placed_at).label("last"))
            .where(Order.status.in_(PAID_STATUSES), Order.placed_at <= as_of)
            .group_by(Order.contact_id).subquery()
        )
        spent, orders, last = by_then.c.spent, by_then.c.orders, by_then.c.last
        customers = and_(by_then.c.contact_id == Contact.id, Contact.erased_at.is_(None))
    else:
        spent, orders, last = Contact.total_spent, Contact.order_count, Contact.last_order_at
        customers = and_(Contact.order_count > 0, Contact.erased_at.is_(None))
    predicted = Contact.predicted_value_12m
    if past or medians is None:
        spent_median = _median_rows(spent, where=[customers]).subquery()
        predicted_median = _median_rows(predicted, where=[Contact.order_count > 0, Contact.erased_at.is_(None),
                                                          predicted.is_not(None)]).subquery()
        median_spent, median_predicted, with_p_alive = db.session.execute(select(
            select(spent_median.c.median).scalar_subquery(),
            select(predicted_median.c.median).scalar_subquery(),
            select(func.count(Contact.p_alive)).where(Contact.order_count > 0, Contact.erased_at.is_(None))
            .scalar_subquery(),
        )).one()
    else:
        median_spent, median_predicted, with_p_alive = medians
    if median_spent is None:
        return AboutToLose(customers=[], basis="p_alive" if with_p_alive else "health", median_spent=None)
    valuable = spent > _money(median_spent)
    if median_predicted is not None:
        valuable = or_(valuable, predicted > _money(median_predicted))
    if with_p_alive:
        basis, slipping = "p_alive", Contact.p_alive < AT_RISK_P_ALIVE
    else:
        basis, slipping = "health", Contact.health.in_(("at_risk", "lapsed"))
    found = db.session.execute(
        select(Contact, spent, orders, last).where(customers, valuable, slipping)
        .order_by(spent.desc(), Contact.p_alive.asc().nulls_last(), Contact.id).limit(limit)
    ).all()
    return AboutToLose(
        customers=[
            SlippingCustomer(
                contact_id=c.id, name=c.name, total_spent=_money(c_spent), order_count=c_orders,
                last_order_at=c_last, p_alive=c.p_alive, predicted_value_12m=c.predicted_value_12m,
                health=c.health,
            )
            for c, c_spent, c_orders, c_last in found
        ],
        basis=basis,
        median_spent=_money(median_spent),
    )


# ---------------------------------------------------------------------------- to-dos


@dataclass
class DueTask:
    task_id: int
    title: str
    kind: str
    due_at: datetime
    overdue: bool  # due before today began
    contact_id: int
    contact_name: str


@dataclass
class DueTasks:
    tasks: list[DueTask]
    total: int  # all that are due, the list shows the first few


def tasks_due_today(user_id: int | None, now: datetime | None = None, zone: ZoneInfo | str | None = None,
                    limit: int = TASK_LIMIT) -> DueTasks:
    """Return the user's open to-dos due today or earlier (shop time), not snoozed, oldest due first.

    Two queries: the first `limit` rows, read in the (assignee, status, due) index's order, and
    the count. (A window count in the same query would join every due to-do to its contact
    before the limit applies: tens of thousands on a big shop with one person on the to-dos.)
    """
    now, zone = now or utcnow(), _zone(zone)
    today = now.astimezone(zone).date()
    today_begins = datetime.combine(today, time(0), tzinfo=zone)
    tomorrow_begins = datetime.combine(today + timedelta(days=1), time(0), tzinfo=zone)
    if user_id is None:
        return DueTasks(tasks=[], total=0)
    due = (Task.assignee_id == user_id, Task.status == "open", Task.due_at < tomorrow_begins,
           or_(Task.snoozed_until.is_(None), Task.snoozed_until <= now))
    rows = db.session.execute(
        select(Task, Contact).join(Contact, Contact.id == Task.contact_id)
        .where(*due).order_by(Task.due_at, Task.id).limit(limit)
    ).all()
    total = db.session.scalar(select(func.count()).select_from(Task).where(*due))
    return DueTasks(
        tasks=[
            DueTask(task_id=task.id, title=task.title, kind=task.kind, due_at=task.due_at,
                    overdue=task.due_at < today_begins, contact_id=contact.id, contact_name=contact.name)
            for task, contact in rows
        ],
        total=total,
    )


# ---------------------------------------------------------------------------- the dashboard


@dataclass
class Dashboard:
    funnel: Funnel
    cohorts: Cohorts
    revenue: Revenue
    scores: ScoreHistogram
    segments: Segments
    at_risk: AboutToLose
    tasks: DueTasks
    predictions: PredictionStatus
    period: Period | None = None
    history: DataRange | None = None  # the months with paid orders, to offer when the period has none

    @property
    def as_of(self) -> datetime | None:
        return self.period.as_of if self.period is not None else None


def dashboard(user_id: int | None, now: datetime | None = None, zone: ZoneInfo | str | None = None,
              shown: Period | None = None, history: DataRange | None = None) -> Dashboard:
    """Return every chart of the dashboard for a user, in a fixed number of queries.

    Revenue, cohorts, the medians and the journey's stage counts and conversions come from the
    summary tables (crm.services.insight.summaries) when they answer for the period exactly, else from
    the orders and the stage changes, with the same figures.

    `shown` is the period (default: the last 12 months up to `now`); every figure sees only
    what happened by its as-of. `history` (the months with paid orders) is read when not given.
    """
    now, zone = now or utcnow(), _zone(zone)
    shown = shown or period("12m", now, zone)
    history = history or data_range(shown.as_of, zone)
    # The journey's summaries hold the funnel as of now; one as of a past day is counted from the history.
    kept = summaries.read(shown.first, shown.last, zone, shown.as_of,
                          journey=not _in_the_past(shown.as_of, now))
    return Dashboard(
        funnel=journey_funnel(now, shown, stages=kept.stages),
        cohorts=cohort_retention(now, zone, shown, cells=kept.cells),
        revenue=revenue_by_month(now, zone, shown=shown, cells=kept.cells),
        scores=lead_score_histogram(),
        segments=rfm_segments(shown),
        at_risk=about_to_lose(now, as_of=shown.as_of, medians=kept.medians),
        tasks=tasks_due_today(user_id, now, zone),
        predictions=prediction_status(),
        period=shown,
        history=history,
    )


# ---------------------------------------------------------------------------- one customer


@dataclass
class MonthTotal:
    month: date
    amount: Decimal
    orders: int


@dataclass
class CustomerFigures:
    """A customer's figures; None where there is not enough data for an honest number."""

    historic_value: Decimal
    order_count: int
    predicted_value_12m: Decimal | None
    expected_orders_90d: float | None
    average_order_value: Decimal | None
    average_days_between_orders: float | None
    p_alive: float | None
    next_order_expected_at: datetime | None
    days_to_next_order: int | None  # negative when the expected day has passed
    months: list[MonthTotal] = field(default_factory=list)  # the sparkline, oldest first
    segment: str | None = None  # the RFM segment's name
    rfm: tuple[int, int, int] | None = None  # recency, frequency, monetary scores 1..5
    # Why predicted figures are missing, shop-wide (None: not asked for)
    predictions: PredictionStatus | None = None

    @property
    def likely_lost(self) -> bool:
        """More likely to have stopped buying than not: the model then gives no next-order date."""
        return self.p_alive is not None and self.p_alive <= LIKELY_LOST_P_ALIVE

    @property
    def churn_probability(self) -> float | None:
        return None if self.p_alive is None else 1.0 - self.p_alive

    @property
    def highest_month(self) -> Decimal:
        return max((m.amount for m in self.months), default=Decimal("0.00"))

    @property
    def has_orders_in_window(self) -> bool:
        return any(m.orders for m in self.months)


def customer_figures(contact: Contact, now: datetime | None = None,
                     zone: ZoneInfo | str | None = None) -> CustomerFigures:
    """Return a customer's historic and predicted figures and their monthly order totals (24 months).

    Averages come from the stored aggregates; predictions from `crm predict`, None until it
    has run or where the data could not support them (`predictions` says why). Two queries:
    the sparkline and the predictions' status.
    """
    now, zone = now or utcnow(), _zone(zone)
    current = _month_number(now, zone)
    first = current - SPARKLINE_MONTHS + 1
    month = _month_index(Order.placed_at, zone, first, current)
    since = _window_since(first, zone)
    per_month = (
        select(month.label("month"),
               (Order.total - Order.refunded).label("amount"))
        .where(Order.contact_id == contact.id, Order.status.in_(PAID_STATUSES), Order.placed_at >= since,
               Order.placed_at <= now)
        .subquery()
    )
    nothing = (Decimal("0.00"), 0)
    found = {
        number: (_money(amount), orders)
        for number, amount, orders in db.session.execute(
            select(per_month.c.month, func.sum(per_month.c.amount), func.count())
            .where(per_month.c.month >= first, per_month.c.month <= current)
            .group_by(per_month.c.month)
        )
    }
    count = contact.order_count or 0
    spent = contact.total_spent if contact.total_spent is not None else Decimal("0.00")
    between = None
    if count >= 2 and contact.first_order_at and contact.last_order_at:
        between = (contact.last_order_at - contact.first_order_at).total_seconds() / 86400 / (count - 1)
    next_at = contact.next_order_expected_at
    return CustomerFigures(
        historic_value=spent,
        order_count=count,
        predicted_value_12m=contact.predicted_value_12m,
        expected_orders_90d=contact.expected_orders_90d,
        average_order_value=(spent / count).quantize(CENT) if count else None,
        average_days_between_orders=between,
        p_alive=contact.p_alive,
        next_order_expected_at=next_at,
        days_to_next_order=(next_at.astimezone(zone).date() - now.astimezone(zone).date()).days if next_at else None,
        months=[
            MonthTotal(_month_start(n), *found.get(n, nothing)) for n in range(first, current + 1)
        ],
        segment=segment_label(contact.rfm_segment),
        rfm=(contact.rfm_recency, contact.rfm_frequency, contact.rfm_monetary)
        if contact.rfm_recency is not None else None,
        predictions=prediction_status(),
    )
