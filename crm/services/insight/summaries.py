"""Summary tables for the dashboard, kept current by the one path every order (and stage) change takes.

`aggregates.refresh(ids)` (after any order write, refund, cancellation, merge or deletion, per
batch) calls `update(ids)`: the changed customers' old rows in the ledger (paid revenue per
customer and month) are subtracted from the per-cohort, per-month cells and their new rows added,
set-based, reading only those customers' orders. The dashboard then reads a few hundred cells
instead of every order. `rebuild()` (`crm rebuild-summaries`, the nightly refresh) recomputes
everything from the orders, reports the rows that differed and fixes them. The median customer's
spend is kept by the maintenance jobs (`store_spend_median`).

The journey funnel's contacts per stage and conversions are kept the same way from every stage
change (`update_journeys`: the rules' writes, pins, and aggregates.refresh for contacts new from
orders, merged or deleted): per contact and stage a ledger row (the month it first entered the
stage, the month it first moved further along, whether it stands there now) and per stage and
month of entering the counts the funnel sums. They hold the funnel as of now, so they are read
only when no stage change is dated after the dashboard's as-of.

Months are calendar months in the zone the summaries were built in (the shop's, at the last
rebuild), numbered year * 12 + month - 1. Until a first rebuild, or when the shop's zone has
changed since, the dashboard computes from the orders and the stage changes as before.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from bisect import bisect_right
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from crm.database import plain_rows
from crm.extensions import db
from crm.models import (
    PAID_STATUSES,
    STAGES,
    Contact,
    Order,
    StageChange,
    SummaryCohortMonth,
    SummaryContactMonth,
    SummaryContactStage,
    SummaryStageMonth,
    SummaryState,
    utcnow,
)

ORDERS = "orders"
JOURNEY = "journey"
MEDIAN = "spend_median"
BATCH = 500
WRITE_BATCH = 5000

Ledger = dict[tuple[int, int], tuple[int, int, int]]  # (contact, month) -> (cohort, cents, orders)
Cells = dict[tuple[int, int], tuple[int, int, int, int]]  # (cohort, month) -> (cents, orders, customers, repeaters)
# (contact, stage) -> (month first entered, month first moved further along or None, standing in it now)
Journeys = dict[tuple[int, str], tuple[int, int | None, bool]]
StageCells = dict[tuple[str, int], tuple[int, int, int]]  # (stage, month entered) -> (entered, moved on, standing)
STAGE_RANK = {stage: rank for rank, stage in enumerate(STAGES)}


def month_number(moment: datetime, zone: ZoneInfo) -> int:
    local = moment.astimezone(zone)
    return local.year * 12 + local.month - 1


def month_begins_at(number: int, zone: ZoneInfo) -> datetime:
    return datetime.combine(date(number // 12, number % 12 + 1, 1), time(0), tzinfo=zone)


def _cents(amount) -> int:
    return int((Decimal(str(amount)) * 100).to_integral_value())


# ---------------------------------------------------------------------------- computing


def contributions(contact_ids: Iterable[int] | None, zone: ZoneInfo) -> Ledger:
    """Return the ledger rows computed from the paid orders (of `contact_ids`, or everyone's)."""
    ledger: dict[tuple[int, int], list[int]] = {}
    cohort_of: dict[int, int] = {}
    paid = Order.status.in_(PAID_STATUSES)
    columns = (Order.contact_id, Order.placed_at, Order.total, Order.refunded)

    def add(rows) -> None:
        for contact_id, placed_at, total, refunded in rows:
            month = month_number(placed_at, zone)
            cohort = cohort_of.setdefault(contact_id, month)  # rows come oldest first per contact
            entry = ledger.get((contact_id, month))
            if entry is None:
                ledger[(contact_id, month)] = [cohort, _cents(total - refunded), 1]
            else:
                entry[1] += _cents(total - refunded)
                entry[2] += 1

    if contact_ids is None:
        return _everyones_contributions(zone)
    order_by = (Order.contact_id, Order.placed_at)
    ids = sorted(set(contact_ids))
    for start in range(0, len(ids), BATCH):
        chunk = ids[start:start + BATCH]
        add(db.session.execute(select(*columns).where(paid, Order.contact_id.in_(chunk)).order_by(*order_by)))
    return {key: tuple(value) for key, value in ledger.items()}


class _Months:
    """`month_number` of many moments: a search among the months' first moments, and the exact
    conversion near a month's start (within two days: a clock change there can move local time
    back across it)."""

    NEAR = timedelta(days=2)

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.first = 0
        self.starts: list[datetime] = []  # naive UTC: the first moment of months first, first + 1, ...

    def _cover(self, moment: datetime) -> None:
        month = month_number(moment.replace(tzinfo=UTC), self.zone)
        first = min(self.first, month - 12) if self.starts else month - 12
        last = max(self.first + len(self.starts), month + 13) if self.starts else month + 13
        self.first = first
        self.starts = [self._begins(m) for m in range(first, last)]

    def _begins(self, month: int) -> datetime:
        """The month's first moment in naive UTC; a month past either end of the calendar (an order
        stored at 9999-12-31) stands at that end, so the search still finds the months inside it."""
        try:
            return month_begins_at(month, self.zone).astimezone(UTC).replace(tzinfo=None)
        except (ValueError, OverflowError):
            return datetime.min if month < 12 * 5000 else datetime.max

    def __call__(self, moment: datetime) -> int:
        """The month of a naive UTC moment."""
        at = bisect_right(self.starts, moment) - 1
        if not 0 <= at < len(self.starts) - 1:
            self._cover(moment)
            at = bisect_right(self.starts, moment) - 1
        if moment - self.starts[at] < self.NEAR or self.starts[at + 1] - moment <= self.NEAR:
            return month_number(moment.replace(tzinfo=UTC), self.zone)
        return self.first + at


def _naive_utc(moment: datetime | str) -> datetime:
    """A timestamp as read (SQLite's text, or an aware datetime) as a naive UTC datetime."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment


def _everyones_contributions(zone: ZoneInfo) -> Ledger:
    """Every customer's ledger rows, from one unordered read of the paid orders as the driver
    gives them (no ORDER BY: sorting a million orders cost more than the rest), grouped with numpy
    (imported here: only rebuilds need it). A customer's cohort is the month of their earliest
    paid order; amounts are the same cents as `_cents`."""
    import numpy as np

    o = Order.__table__.c
    statement = select(o.contact_id, o.placed_at, o.total, o.refunded).where(o.status.in_(PAID_STATUSES))
    contact_ids: list = []
    moments: list = []
    totals: list = []
    refunds: list = []
    for rows in plain_rows(db.session, statement, 20_000):
        for column, values in zip((contact_ids, moments, totals, refunds), zip(*rows)):
            column.extend(values)
    if not contact_ids:
        return {}
    cents_of: dict = {}  # an amount as read -> its cents (a shop has far fewer amounts than orders)

    def cents(amount) -> int:
        found = cents_of.get(amount)
        if found is None:
            found = cents_of[amount] = _cents(Decimal(str(amount)).quantize(Decimal("0.01")))
        return found

    count = len(contact_ids)
    contacts = np.array(contact_ids, dtype=np.int64)
    amounts = np.fromiter(map(cents, totals), np.int64, count) - np.fromiter(map(cents, refunds), np.int64, count)
    at = _utc_moments(moments)
    months = _month_numbers(at, zone)
    # Per contact and month: sort by the pair, add up each run.
    first_month = int(months.min())
    span = int(months.max()) - first_month + 1
    keys = contacts * span + (months - first_month)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    sums = np.add.reduceat(amounts[order], starts)
    orders = np.diff(np.r_[starts, count])
    # Cohorts: the month of each contact's earliest order.
    by_time = np.lexsort((at, contacts))
    earliest = by_time[np.r_[True, contacts[by_time][1:] != contacts[by_time][:-1]]]
    cohorts = dict(zip(contacts[earliest].tolist(), months[earliest].tolist()))
    return {(c, m + first_month): (cohorts[c], amount, n) for c, m, amount, n in
            zip((keys[starts] // span).tolist(), (keys[starts] % span).tolist(), sums.tolist(), orders.tolist())}


def _utc_moments(moments: list):
    """The timestamps as read, as a numpy array of naive UTC microseconds."""
    import warnings

    import numpy as np

    if isinstance(moments[0], str):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a zone in the text: parsed below instead
                return np.array(moments, dtype="datetime64[us]")
        except (ValueError, DeprecationWarning):
            pass
    return np.array([_naive_utc(m) for m in moments], dtype="datetime64[us]")


def _month_numbers(at, zone: ZoneInfo):
    """`month_number` of each naive UTC moment: a search among the months' first moments, and the
    exact conversion near a month's start (a clock change there can move local time back across it)."""
    import numpy as np

    months_of = _Months(zone)
    months_of(at.min().item())
    months_of(at.max().item())
    starts = np.array(months_of.starts, dtype="datetime64[us]")
    index = np.searchsorted(starts, at, side="right") - 1
    months = index + months_of.first
    near = np.timedelta64(months_of.NEAR)
    for i in np.flatnonzero((at - starts[index] < near) | (starts[index + 1] - at <= near)).tolist():
        months[i] = month_number(at[i].item().replace(tzinfo=UTC), zone)
    return months


def cells_of(ledger: Ledger) -> Cells:
    cells: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for (_contact, month), (cohort, cents, orders) in ledger.items():
        cell = cells[(cohort, month)]
        cell[0] += cents
        cell[1] += orders
        cell[2] += 1
        cell[3] += orders > 1
    return {key: tuple(value) for key, value in cells.items()}


def stored_ledger(contact_ids: Iterable[int] | None = None) -> Ledger:
    columns = (SummaryContactMonth.contact_id, SummaryContactMonth.month, SummaryContactMonth.cohort,
               SummaryContactMonth.cents, SummaryContactMonth.orders)
    if contact_ids is None:
        return {(c, m): (cohort, cents, orders) for rows in plain_rows(db.session, select(*columns), 20_000)
                for c, m, cohort, cents, orders in rows}
    found: Ledger = {}
    ids = sorted(set(contact_ids))
    for start in range(0, len(ids), BATCH):
        chunk = ids[start:start + BATCH]
        for c, m, cohort, cents, orders in db.session.execute(
                select(*columns).where(SummaryContactMonth.contact_id.in_(chunk))):
            found[(c, m)] = (cohort, cents, orders)
    return found


def stored_cells() -> Cells:
    return {
        (cohort, month): (cents, orders, customers, repeaters)
        for cohort, month, cents, orders, customers, repeaters in db.session.execute(select(
            SummaryCohortMonth.cohort, SummaryCohortMonth.month, SummaryCohortMonth.cents,
            SummaryCohortMonth.orders, SummaryCohortMonth.customers, SummaryCohortMonth.repeaters))
    }


def state(name: str = ORDERS) -> SummaryState | None:
    return db.session.get(SummaryState, name)


def built_zone() -> ZoneInfo | None:
    """The zone the summaries were built in, or None when they are not kept (never built)."""
    row = db.session.execute(select(SummaryState.zone).where(SummaryState.name == ORDERS)).first()
    return ZoneInfo(row[0]) if row is not None else None


# ---------------------------------------------------------------------------- keeping current


def _dialect_insert(dialect: str):
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _insert(model):
    return _dialect_insert(db.session.get_bind().dialect.name)(model)


# The two upserts an order's summaries make (`update`), built once per dialect as Core statements:
# executed with their rows, each call then only binds them (as an ORM insert, each was built and
# compiled again for every order).
_UPSERTS: dict[tuple[str, str], Any] = {}


def _upsert(name: str, build):
    key = (name, db.session.get_bind().dialect.name)
    statement = _UPSERTS.get(key)
    if statement is None:
        statement = _UPSERTS[key] = build(_dialect_insert(key[1]))
    return statement


def _ledger_upsert(dialect_insert):
    """A customer's month rows, replaced by their new figures."""
    statement = dialect_insert(SummaryContactMonth.__table__)
    return statement.on_conflict_do_update(
        index_elements=["contact_id", "month"],
        set_={name: statement.excluded[name] for name in ("cohort", "cents", "orders")})


def _cells_upsert(dialect_insert):
    """Each change added to its cell (an atomic increment, so concurrent writers never lose one)."""
    statement = dialect_insert(SummaryCohortMonth.__table__)
    table = SummaryCohortMonth.__table__
    return statement.on_conflict_do_update(
        index_elements=["cohort", "month"],
        set_={name: table.c[name] + statement.excluded[name] for name in ("cents", "orders", "customers", "repeaters")})


def _ledger_rows(ledger: Ledger) -> list[dict]:
    return [{"contact_id": c, "month": m, "cohort": cohort, "cents": cents, "orders": orders}
            for (c, m), (cohort, cents, orders) in sorted(ledger.items())]


def update(contact_ids: Iterable[int], new_orders: Mapping[int, Sequence[int]] | None = None) -> None:
    """Bring the summaries up to date with these customers' orders (after they were written, with
    the customers' rows locked: aggregates.refresh).

    Per batch of customers: one read of their ledger rows, one of their paid orders, a delete and
    an insert of their ledger rows; then for all of them one upsert adding the differences to the
    cells (in key order, after every customer's lock, so two writers never wait on each other in
    opposite orders) and one delete of emptied cells. Nothing when the summaries are not kept yet.

    `new_orders` ({customer: ids of orders just inserted}) names customers whose only change
    since their ledger was kept is those new orders: their orders are not read again, the new
    ones are added to their stored rows (`_with_new_orders`), so an order for a customer with
    hundreds costs the same as for a new one. A new order dated before a customer's first month
    changes their cohort on every row: that customer is recomputed from their orders.
    """
    ids = sorted(set(contact_ids))
    if not ids:
        return
    zone = built_zone()
    if zone is None:
        return
    delta: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for start in range(0, len(ids), BATCH):
        chunk = ids[start:start + BATCH]
        before = stored_ledger(chunk)
        after, added = _with_new_orders([c for c in chunk if c in new_orders], before, new_orders, zone) \
            if new_orders else ({}, set())
        rest = [c for c in chunk if c not in added]
        if rest:
            after.update(contributions(rest, zone))
        if before == after:
            continue
        for sign, ledger in ((-1, before), (1, after)):
            for (_contact, month), (cohort, cents, orders) in ledger.items():
                cell = delta[(cohort, month)]
                cell[0] += sign * cents
                cell[1] += sign * orders
                cell[2] += sign
                cell[3] += sign * (orders > 1)
        if rest:
            db.session.execute(delete(SummaryContactMonth).where(SummaryContactMonth.contact_id.in_(rest)))
            rows = {key: value for key, value in after.items() if key[0] not in added}
            if rows:
                db.session.execute(_insert(SummaryContactMonth), _ledger_rows(rows))
        changed = {key: value for key, value in after.items() if key[0] in added and before.get(key) != value}
        if changed:
            db.session.execute(_upsert("ledger", _ledger_upsert), _ledger_rows(changed))
    changes = [{"cohort": k[0], "month": k[1], "cents": v[0], "orders": v[1], "customers": v[2],
                "repeaters": v[3]} for k, v in sorted(delta.items()) if any(v)]
    if changes:
        _add_to_cells(changes)


def _with_new_orders(contact_ids: list[int], stored: Ledger, new_orders: Mapping[int, Sequence[int]],
                     zone: ZoneInfo) -> tuple[Ledger, set[int]]:
    """Return the ledger rows of these customers with their new paid orders added to their stored
    rows (one read of the new orders only), and the customers that could be done so: not those
    with a new order before their first month (their cohort moves on every row)."""
    order_ids = sorted({order_id for c in contact_ids for order_id in new_orders[c]})
    if not order_ids:
        return {}, set()
    ledger = {key: value for key, value in stored.items() if key[0] in new_orders}
    first: dict[int, int] = {}
    for contact_id, month in ledger:
        first[contact_id] = min(month, first.get(contact_id, month))
    moved: set[int] = set()
    paid = Order.status.in_(PAID_STATUSES)
    for start in range(0, len(order_ids), BATCH):
        for contact_id, placed_at, total, refunded in db.session.execute(
                select(Order.contact_id, Order.placed_at, Order.total, Order.refunded)
                .where(paid, Order.id.in_(order_ids[start:start + BATCH])).order_by(Order.placed_at)):
            month = month_number(placed_at, zone)
            cohort = first.setdefault(contact_id, month)  # oldest first: a new customer's first month
            if month < cohort or contact_id not in new_orders:
                moved.add(contact_id)
                continue
            _cohort, cents, orders = ledger.get((contact_id, month), (cohort, 0, 0))
            ledger[(contact_id, month)] = (cohort, cents + _cents(total - refunded), orders + 1)
    added = set(contact_ids) - moved
    return {key: value for key, value in ledger.items() if key[0] in added}, added


def _add_to_cells(changes: list[dict]) -> None:
    """Add each change to its cell (an atomic increment, so concurrent writers never lose one),
    then drop the cells left with no customer."""
    db.session.execute(_upsert("cells", _cells_upsert), changes)
    keys = [(c["cohort"], c["month"]) for c in changes if c["customers"] < 0]  # only these can be left empty
    for start in range(0, len(keys), BATCH):
        db.session.execute(delete(SummaryCohortMonth).where(
            tuple_(SummaryCohortMonth.cohort, SummaryCohortMonth.month).in_(keys[start:start + BATCH]),
            SummaryCohortMonth.customers <= 0))


# ---------------------------------------------------------------------------- from scratch


@dataclass
class Drift:
    zone: str
    previous_zone: str | None
    ledger_rows: int = 0  # ledger rows that differed (missing, extra or wrong)
    cells: int = 0  # cohort-month cells that differed
    median_changed: bool = False
    examples: list[str] = field(default_factory=list)
    journey_rows: int = 0  # contact-stage rows that differed
    stage_cells: int = 0  # stage-month cells that differed
    previous_journey_zone: str | None = None

    @property
    def rows(self) -> int:
        return self.ledger_rows + self.cells + self.journey_rows + self.stage_cells

    def said(self) -> str:
        if self.previous_zone is None:
            return (f"Summaries built ({self.zone}): {self.cells} months of cohorts and revenue, "
                    f"{self.stage_cells} stage-months of the journey.")
        if self.previous_zone != self.zone:
            return (f"Summaries rebuilt for the time zone {self.zone} (they were in {self.previous_zone}): "
                    f"{self.cells + self.stage_cells} cells rewritten.")
        if self.previous_journey_zone is None:
            return (f"Journey summaries built ({self.zone}): {self.stage_cells} stage-months"
                    + ("; the orders' summaries matched." if not self.cells + self.ledger_rows else
                       f"; {self.cells} cohort-month cells and {self.ledger_rows} customer-month rows differed "
                       "from the orders and were rewritten."))
        if not self.rows:
            return "No drift: the summaries matched the orders."
        parts = []
        if self.cells or self.ledger_rows:
            parts.append(f"{self.cells} cohort-month cell{'s' if self.cells != 1 else ''} and "
                         f"{self.ledger_rows} customer-month row{'s' if self.ledger_rows != 1 else ''} differed "
                         "from the orders")
        if self.stage_cells or self.journey_rows:
            parts.append(f"{self.stage_cells} stage-month cell{'s' if self.stage_cells != 1 else ''} and "
                         f"{self.journey_rows} contact-stage row{'s' if self.journey_rows != 1 else ''} differed "
                         "from the stage changes")
        return f"Drift fixed: {'; '.join(parts)} and were rewritten."


def _differences(stored: dict, fresh: dict) -> tuple[list, list]:
    """Return (keys to delete, keys to write) to turn `stored` into `fresh`."""
    gone = [key for key in stored if key not in fresh]
    changed = [key for key, value in fresh.items() if stored.get(key) != value]
    return gone, changed


def rebuild(zone: ZoneInfo | str | None = None, now: datetime | None = None, *, medians: bool = False) -> Drift:
    """Recompute every summary from the orders (and the journey's from the contacts and their
    stage changes) in the shop's zone (or `zone`), fix what differed, say what did; with
    `medians`, store the medians too (store_medians)."""
    from crm.services.shop.clock import shop_zone

    zone = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone) if zone else shop_zone()
    now = now or utcnow()
    row = state()
    previous = row.zone if row is not None else None
    fresh_ledger = contributions(None, zone)
    fresh_cells = cells_of(fresh_ledger)
    old_ledger, old_cells = stored_ledger(), stored_cells()
    drift = Drift(zone=zone.key, previous_zone=previous)

    gone, changed = _differences(old_ledger, fresh_ledger)
    drift.ledger_rows = len(gone) + len(changed)
    by_contact = sorted({c for c, _m in gone} | {c for c, _m in changed})
    for start in range(0, len(by_contact), BATCH):
        chunk = by_contact[start:start + BATCH]
        db.session.execute(delete(SummaryContactMonth).where(SummaryContactMonth.contact_id.in_(chunk)))
        rows = _ledger_rows({k: v for c in chunk for k, v in _rows_of(fresh_ledger, c)})
        for at in range(0, len(rows), WRITE_BATCH):
            db.session.execute(_insert(SummaryContactMonth), rows[at:at + WRITE_BATCH])

    gone, changed = _differences(old_cells, fresh_cells)
    drift.cells = len(gone) + len(changed)
    drift.examples = [f"cohort {_label(k[0])}, {_label(k[1])}: stored {old_cells.get(k)}, "
                      f"from the orders {fresh_cells.get(k)}" for k in sorted(set(gone) | set(changed))[:5]]
    keys = sorted(set(gone) | set(changed))
    for start in range(0, len(keys), BATCH):
        db.session.execute(delete(SummaryCohortMonth).where(
            tuple_(SummaryCohortMonth.cohort, SummaryCohortMonth.month).in_(keys[start:start + BATCH])))
    rewrite = set(changed)
    rows = [{"cohort": k[0], "month": k[1], "cents": v[0], "orders": v[1], "customers": v[2], "repeaters": v[3]}
            for k, v in sorted(fresh_cells.items()) if k in rewrite]
    if rows:
        db.session.execute(_insert(SummaryCohortMonth), rows)
    if row is None:
        db.session.add(SummaryState(name=ORDERS, zone=zone.key, updated_at=now))
    elif row.zone != zone.key or changed or gone:
        row.zone, row.updated_at = zone.key, now
    journey = state(JOURNEY)
    drift.previous_journey_zone = journey.zone if journey is not None else None
    fixed = _rebuild_journeys(zone, drift)
    if journey is None:
        db.session.add(SummaryState(name=JOURNEY, zone=zone.key, updated_at=now))
    elif journey.zone != zone.key or fixed:
        journey.zone, journey.updated_at = zone.key, now
    if medians:
        drift.median_changed = store_medians(now)
    db.session.flush()
    return drift


def ensure_built() -> Drift | None:
    """Rebuild the summaries when they were never built (a new shop, just upgraded; the journey's
    as well) or are in another zone than the shop's now; else leave them to the incremental path. Return the drift
    of a rebuild, None when none was needed."""
    from crm.services.shop.clock import shop_zone

    built, journey = built_zone(), journey_zone()
    if built is not None and journey is not None and built.key == journey.key == shop_zone().key:
        return None
    return rebuild()


def _rows_of(ledger: Ledger, contact_id: int):
    # The ledger is small per contact; a scan per chunk would be quadratic, so index it once.
    index = _rows_of.__dict__.setdefault("index", {})
    if index.get("ledger") is not ledger:
        by_contact: dict[int, list] = defaultdict(list)
        for key, value in ledger.items():
            by_contact[key[0]].append((key, value))
        index["ledger"], index["by_contact"] = ledger, by_contact
    return index["by_contact"].get(contact_id, [])


def _label(month: int) -> str:
    return f"{month // 12}-{month % 12 + 1:02d}"


# ---------------------------------------------------------------------------- the journey


def _journey_of(stage: str, standing_since: datetime | None, changes: list[tuple], zone: ZoneInfo,
                contact_id: int, into: Journeys) -> None:
    """Add one contact's ledger rows to `into`: for each stage it entered, the month it first did
    (a change into it or out of it, or standing in it now: the earliest), the month it first
    reached a stage further along after that, and whether it stands in it now.

    The same rules as the funnel counted from the history (insight.journey_funnel), with every
    change counted: the dashboard reads these only when no change is dated after its as-of.
    """
    first: dict[str, datetime] = {}

    def enter(entered: str | None, at: datetime | None) -> None:
        if entered is not None and at is not None and (entered not in first or at < first[entered]):
            first[entered] = at

    for from_stage, to_stage, at in changes:
        enter(to_stage, at)
        enter(from_stage, at)
    enter(stage, standing_since)
    for entered, at in first.items():
        rank = STAGE_RANK.get(entered)
        further = [when for _from, to_stage, when in changes
                   if rank is not None and STAGE_RANK.get(to_stage, -1) > rank and when >= at]
        into[(contact_id, entered)] = (month_number(at, zone), month_number(min(further), zone) if further else None,
                                       entered == stage)


def journeys(contact_ids: Iterable[int] | None, zone: ZoneInfo) -> Journeys:
    """Return the journey ledger rows computed from the contacts and their stage changes (of
    `contact_ids`, or everyone's)."""
    ledger: Journeys = {}
    # One read: each contact with its changes (one row without a change when it has none), by contact.
    statement = (
        select(Contact.id, Contact.stage, func.coalesce(Contact.stage_since, Contact.created_at),
               StageChange.from_stage, StageChange.to_stage, StageChange.changed_at)
        .outerjoin(StageChange, StageChange.contact_id == Contact.id).order_by(Contact.id)
    )

    def add(rows) -> None:
        current, stage, standing_since, changes = None, None, None, []
        for contact_id, contact_stage, since, from_stage, to_stage, at in rows:
            if contact_id != current:
                if current is not None:
                    _journey_of(stage, standing_since, changes, zone, current, ledger)
                current, stage, standing_since, changes = contact_id, contact_stage, since, []
            if at is not None:
                changes.append((from_stage, to_stage, at))
        if current is not None:
            _journey_of(stage, standing_since, changes, zone, current, ledger)

    if contact_ids is None:
        add(db.session.execute(statement.execution_options(yield_per=20_000)))
    else:
        ids = sorted(set(contact_ids))
        for start in range(0, len(ids), BATCH):
            add(db.session.execute(statement.where(Contact.id.in_(ids[start:start + BATCH]))))
    return ledger


def stage_cells_of(ledger: Journeys) -> StageCells:
    cells: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for (_contact, stage), (entered, moved_on, standing) in ledger.items():
        cell = cells[(stage, entered)]
        cell[0] += 1
        cell[1] += moved_on is not None
        cell[2] += bool(standing)
    return {key: tuple(value) for key, value in cells.items()}


def stored_journeys(contact_ids: Iterable[int] | None = None) -> Journeys:
    columns = (SummaryContactStage.contact_id, SummaryContactStage.stage, SummaryContactStage.entered,
               SummaryContactStage.moved_on, SummaryContactStage.standing)
    if contact_ids is None:
        rows = db.session.execute(select(*columns).execution_options(yield_per=20_000))
        return {(c, stage): (entered, moved, bool(standing)) for c, stage, entered, moved, standing in rows}
    found: Journeys = {}
    ids = sorted(set(contact_ids))
    for start in range(0, len(ids), BATCH):
        for c, stage, entered, moved, standing in db.session.execute(
                select(*columns).where(SummaryContactStage.contact_id.in_(ids[start:start + BATCH]))):
            found[(c, stage)] = (entered, moved, bool(standing))
    return found


def stored_stage_cells() -> StageCells:
    return {
        (stage, month): (entered, moved_on, standing)
        for stage, month, entered, moved_on, standing in db.session.execute(select(
            SummaryStageMonth.stage, SummaryStageMonth.month, SummaryStageMonth.entered,
            SummaryStageMonth.moved_on, SummaryStageMonth.standing))
    }


def journey_zone() -> ZoneInfo | None:
    """The zone the journey summaries were built in, or None when they are not kept."""
    row = db.session.execute(select(SummaryState.zone).where(SummaryState.name == JOURNEY)).first()
    return ZoneInfo(row[0]) if row is not None else None


def _journey_rows(ledger: Journeys) -> list[dict]:
    return [{"contact_id": c, "stage": stage, "entered": entered, "moved_on": moved, "standing": bool(standing)}
            for (c, stage), (entered, moved, standing) in sorted(ledger.items())]


def update_journeys(contact_ids: Iterable[int]) -> None:
    """Bring the journey summaries up to date with these contacts' stages and stage changes (after
    they were written, in the same transaction, the contacts' rows written or locked first).

    Every path that writes a stage change or moves a contact's stage ends here: the rules
    (engine._write), a pin or unpin (stages), and aggregates.refresh (new contacts from orders,
    merges, deletions). As for the orders: per batch one read of their ledger rows, one of the
    contacts with their stage changes, a delete and an insert of their rows; then one
    upsert adding the differences to the cells and one delete of emptied cells. Nothing when the
    journey summaries are not kept yet.
    """
    ids = sorted(set(contact_ids))
    if not ids:
        return
    zone = journey_zone()
    if zone is None:
        return
    delta: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for start in range(0, len(ids), BATCH):
        chunk = ids[start:start + BATCH]
        before = stored_journeys(chunk)
        after = journeys(chunk, zone)
        if before == after:
            continue
        for sign, ledger in ((-1, before), (1, after)):
            for (_contact, stage), (entered, moved, standing) in ledger.items():
                cell = delta[(stage, entered)]
                cell[0] += sign
                cell[1] += sign * (moved is not None)
                cell[2] += sign * bool(standing)
        db.session.execute(delete(SummaryContactStage).where(SummaryContactStage.contact_id.in_(chunk)))
        if after:
            db.session.execute(_insert(SummaryContactStage).execution_options(render_nulls=True),
                               _journey_rows(after))
    changes = [{"stage": k[0], "month": k[1], "entered": v[0], "moved_on": v[1], "standing": v[2]}
               for k, v in sorted(delta.items()) if any(v)]
    if not changes:
        return
    statement = _insert(SummaryStageMonth)
    excluded = statement.excluded
    table = SummaryStageMonth.__table__
    db.session.execute(statement.on_conflict_do_update(
        index_elements=["stage", "month"],
        set_={name: table.c[name] + excluded[name] for name in ("entered", "moved_on", "standing")},
    ), changes)
    keys = [(c["stage"], c["month"]) for c in changes]
    for start in range(0, len(keys), BATCH):
        db.session.execute(delete(SummaryStageMonth).where(
            tuple_(SummaryStageMonth.stage, SummaryStageMonth.month).in_(keys[start:start + BATCH]),
            SummaryStageMonth.entered <= 0))


def _rebuild_journeys(zone: ZoneInfo, drift: Drift) -> bool:
    """Recompute the journey summaries from the contacts and stage changes, fix what differed and
    count it in `drift`; True when anything did."""
    fresh = journeys(None, zone)
    fresh_cells = stage_cells_of(fresh)
    old, old_cells = stored_journeys(), stored_stage_cells()
    gone, changed = _differences(old, fresh)
    drift.journey_rows = len(gone) + len(changed)
    by_contact = sorted({c for c, _s in gone} | {c for c, _s in changed})
    if by_contact:
        rows_of: dict[int, dict] = defaultdict(dict)
        for key, value in fresh.items():
            rows_of[key[0]][key] = value
        for start in range(0, len(by_contact), BATCH):
            chunk = by_contact[start:start + BATCH]
            db.session.execute(delete(SummaryContactStage).where(SummaryContactStage.contact_id.in_(chunk)))
            rows = _journey_rows({k: v for c in chunk for k, v in rows_of.get(c, {}).items()})
            for at in range(0, len(rows), WRITE_BATCH):
                db.session.execute(_insert(SummaryContactStage).execution_options(render_nulls=True),
                                   rows[at:at + WRITE_BATCH])
    gone, changed = _differences(old_cells, fresh_cells)
    drift.stage_cells = len(gone) + len(changed)
    drift.examples += [f"{k[0]}, entered {_label(k[1])}: stored {old_cells.get(k)}, "
                       f"from the stage changes {fresh_cells.get(k)}" for k in sorted(set(gone) | set(changed))[:5]]
    keys = sorted(set(gone) | set(changed))
    for start in range(0, len(keys), BATCH):
        db.session.execute(delete(SummaryStageMonth).where(
            tuple_(SummaryStageMonth.stage, SummaryStageMonth.month).in_(keys[start:start + BATCH])))
    rewrite = set(changed)
    rows = [{"stage": k[0], "month": k[1], "entered": v[0], "moved_on": v[1], "standing": v[2]}
            for k, v in sorted(fresh_cells.items()) if k in rewrite]
    if rows:
        db.session.execute(_insert(SummaryStageMonth), rows)
    return bool(drift.journey_rows or drift.stage_cells)


# ---------------------------------------------------------------------------- the medians


MEDIANS = (MEDIAN, "predicted_median", "customers_with_p_alive")


def store_medians(now: datetime | None = None) -> bool:
    """Store the median customer's spend and predicted value and how many customers have a chance
    of still buying (insight.current_medians), for the dashboard; True when any changed.

    Kept by the maintenance jobs (the nightly refresh, the shop-wide figures queued after orders
    arrive) and by every rebuild: a median cannot be kept by adding differences.
    """
    from crm.services.insight.figures import current_medians

    spent, predicted, with_p_alive = current_medians()
    values = (None if spent is None else _cents(spent), None if predicted is None else _cents(predicted),
              with_p_alive)
    now = now or utcnow()
    changed = False
    for name, cents in zip(MEDIANS, values):
        row = state(name)
        if row is None:
            db.session.add(SummaryState(name=name, zone="", cents=cents, updated_at=now))
            changed = True
        elif row.cents != cents:  # unchanged figures are not rewritten: a second refresh changes nothing
            changed = True
            row.cents, row.updated_at = cents, now
    db.session.flush()
    return changed


# ---------------------------------------------------------------------------- reading


@dataclass
class Snapshot:
    """What the dashboard reads: the cells of its months (None: compute from the orders) and the
    stored medians (None: compute them)."""

    cells: Cells | None
    medians: tuple[Decimal | None, Decimal | None, int] | None
    # The journey's stage cells, all months (None: count from the stage changes).
    stages: StageCells | None = None


def read(first: int, last: int, zone: ZoneInfo, as_of: datetime, *, journey: bool = True) -> Snapshot:
    """Return the cells of months `first` … `last` when the summaries answer for that as-of exactly,
    and the journey's stage cells when they do.

    Three queries when they do: the state rows with whether any paid order was placed after the
    as-of within its month (the cells hold whole months; such a period is computed from the
    orders instead) and whether any stage change is dated after the as-of (the stage cells count
    every change: the funnel is then counted from the history), then the cells, then the stage
    cells (a few per stage and month; not read without `journey`: a funnel as of a past day is
    counted from the history).
    """
    after_as_of = (
        select(Order.id).where(Order.status.in_(PAID_STATUSES), Order.placed_at > as_of,
                               Order.placed_at < month_begins_at(last + 1, zone)).limit(1)
    ).exists()
    changed_after = select(StageChange.id).where(StageChange.changed_at > as_of).limit(1).exists()
    rows = db.session.execute(select(SummaryState.name, SummaryState.zone, SummaryState.cents, after_as_of,
                                     changed_after)).all()
    states = {name: (row_zone, cents) for name, row_zone, cents, _later, _changed in rows}
    cut = any(later for _n, _z, _c, later, _changed in rows)
    medians = None
    if all(name in states for name in MEDIANS):
        spent, predicted, with_p_alive = (states[name][1] for name in MEDIANS)
        medians = (None if spent is None else Decimal(spent) / 100,
                   None if predicted is None else Decimal(predicted) / 100, int(with_p_alive or 0))
    stages = None
    if journey and JOURNEY in states and states[JOURNEY][0] == zone.key \
            and not any(changed for *_rest, changed in rows):
        stages = stored_stage_cells()
    if ORDERS not in states or states[ORDERS][0] != zone.key:
        return Snapshot(cells=None, medians=medians, stages=stages)
    whole_months = last - 1 if cut else last
    cells = {
        (cohort, month): (cents, orders, customers, repeaters)
        for cohort, month, cents, orders, customers, repeaters in db.session.execute(
            select(SummaryCohortMonth.cohort, SummaryCohortMonth.month, SummaryCohortMonth.cents,
                   SummaryCohortMonth.orders, SummaryCohortMonth.customers, SummaryCohortMonth.repeaters)
            .where(SummaryCohortMonth.month >= first, SummaryCohortMonth.month <= whole_months))
    }
    if cut:
        cells.update(_month_until(last, first, zone, as_of))
    return Snapshot(cells=cells, medians=medians, stages=stages)


def _month_until(month: int, first: int, zone: ZoneInfo, as_of: datetime) -> Cells:
    """Return the cells of `month` counting only the paid orders placed by `as_of`, from the orders
    (one query over that month's orders). Cohorts before `first` come out as one (`first - 1`):
    the dashboard only needs them in the month's total."""
    from crm.models import Contact
    from crm.services.insight.figures import _month_index  # the same SQL month as the live figures

    begins = month_begins_at(month, zone)
    cohort = _month_index(Contact.first_order_at, zone, first, month).label("cohort")
    per_customer = (
        select(Order.contact_id, cohort, func.sum(Order.total - Order.refunded).label("amount"),
               func.count().label("orders"))
        .join(Contact, Contact.id == Order.contact_id)
        .where(Order.status.in_(PAID_STATUSES), Order.placed_at >= begins, Order.placed_at <= as_of)
        .group_by(Order.contact_id, cohort).subquery()
    )
    found: dict[tuple[int, int], list[int]] = {}
    for row_cohort, amount, orders in db.session.execute(
            select(per_customer.c.cohort, per_customer.c.amount, per_customer.c.orders)):
        cell = found.setdefault((min(row_cohort, month), month), [0, 0, 0, 0])
        cell[0] += _cents(amount)
        cell[1] += orders
        cell[2] += 1
        cell[3] += orders > 1
    return {key: tuple(value) for key, value in found.items()}
