"""Shop-wide figures for the dashboard."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select

from crm.extensions import db
from crm.models import PAID_STATUSES, STAGES, Contact, Order, Task, utcnow


@dataclass
class Summary:
    contacts: int
    by_stage: dict[str, int]
    customers: int
    revenue_30d: Decimal
    orders_30d: int
    open_tasks: int


def _by_stage(now) -> dict[str, int]:
    """Return the contacts per stage added by `now`: each stage's contacts counted in its range of
    the index on stage (a count per stage, never a read of the table), less those added after
    `now` (through the index on created_at; none for a dashboard as of now). A grouped count with
    the created_at condition read every contact's row (0.35 s for 100,000 on SQLite)."""
    counts = db.session.execute(select(*(
        select(func.count()).select_from(Contact).where(Contact.stage == stage).scalar_subquery()
        for stage in STAGES))).one()
    by_stage = dict(zip(STAGES, counts, strict=True))
    # Not grouped in SQL: SQLite would then read every contact in stage order instead.
    for stage in db.session.scalars(select(Contact.stage).where(Contact.created_at > now)):
        by_stage[stage] -= 1
    return by_stage


def summary(now=None) -> Summary:
    """Return the counts the dashboard shows as of `now`, in four queries whatever the data size.

    Contacts added, customers (first paid order), revenue and to-dos created by `now` only, so
    a report as of a past day shows that day's shop.
    """
    now = now or utcnow()
    by_stage = _by_stage(now)
    customers = db.session.scalar(
        select(func.count()).where(Contact.order_count > 0, Contact.first_order_at <= now)) or 0
    since = now - timedelta(days=30)
    revenue, orders = db.session.execute(
        select(func.coalesce(func.sum(Order.total - Order.refunded), 0), func.count())
        .where(Order.placed_at >= since, Order.placed_at <= now, Order.status.in_(PAID_STATUSES))
    ).one()
    open_tasks = db.session.scalar(
        select(func.count()).select_from(Task).where(Task.status == "open", Task.created_at <= now)) or 0
    return Summary(
        contacts=sum(by_stage.values()), by_stage=by_stage, customers=customers,
        revenue_30d=Decimal(str(revenue)).quantize(Decimal("0.01")), orders_30d=orders, open_tasks=open_tasks,
    )
