"""The sales view: contacts ranked by lead score, with the reasons, the trend and what is next.

`lead_page` answers in a fixed number of queries whatever the page size: the count, the
page of contacts (owners joined, the score 7 and 30 days ago as correlated subqueries),
and the next open to-do of each contact on the page.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.orm import aliased

from crm.extensions import db
from crm.models import STAGES, Contact, ScoreHistory, Tag, Task, User, contact_tags, utcnow
from crm.services.shared.errors import ValidationError
from crm.services.shared.paging import clamp_page

TREND_DAYS = (7, 30)
TOP_REASONS = 3


@dataclass(frozen=True)
class Trend:
    """How much the score moved over the last 7 and 30 days (None: no score that far back)."""

    score: int
    week: int | None
    month: int | None


@dataclass
class LeadFilters:
    stage: str | None = None
    owner: int | str | None = None  # a user id, or "none" for contacts nobody owns
    tag: str | None = None


@dataclass
class LeadRow:
    contact: Contact
    owner_name: str | None
    reasons: list[dict]
    trend: Trend
    last_touch: datetime | None
    next_task: Task | None


@dataclass
class LeadPage:
    rows: list[LeadRow]
    total: int
    page: int
    pages: int


def top_reasons(breakdown: list[dict], count: int = TOP_REASONS) -> list[dict]:
    """Return the breakdown lines that weigh most (positive or negative), heaviest first."""
    lines = [line for line in breakdown or [] if line.get("rule") != "cap" and line.get("points")]
    return sorted(lines, key=lambda line: (-abs(line["points"]), line["rule"]))[:count]


def _score_at(contact_id_column, cutoff: datetime):
    """The contact's stored score at `cutoff`: the latest history row at or before it."""
    return (
        select(ScoreHistory.score)
        .where(ScoreHistory.contact_id == contact_id_column, ScoreHistory.computed_at <= cutoff)
        .order_by(ScoreHistory.computed_at.desc(), ScoreHistory.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _trend(score: int, week: int | None, month: int | None) -> Trend:
    return Trend(score, None if week is None else score - week, None if month is None else score - month)


def score_trend(contact: Contact, now: datetime | None = None) -> Trend:
    """Return one contact's score and how it moved over 7 and 30 days (one query)."""
    now = now or utcnow()
    week, month = db.session.execute(
        select(*(_score_at(contact.id, now - timedelta(days=d)) for d in TREND_DAYS))).one()
    return _trend(contact.lead_score, week, month)


def _conditions(filters: LeadFilters) -> list:
    conditions = [Contact.erased_at.is_(None)]
    if filters.stage:
        if filters.stage not in STAGES:
            raise ValidationError(fields={"stage": f"Choose one of {', '.join(STAGES)}."})
        conditions.append(Contact.stage == filters.stage)
    if filters.owner == "none":
        conditions.append(Contact.owner_id.is_(None))
    elif filters.owner is not None:
        conditions.append(Contact.owner_id == int(filters.owner))
    if filters.tag:
        conditions.append(exists().where(contact_tags.c.contact_id == Contact.id, contact_tags.c.tag_id == Tag.id,
                                         Tag.name == filters.tag.strip().lower()))
    return conditions


def next_open_tasks(contact_ids: list[int]) -> dict[int, Task]:
    """Return each contact's open to-do that is due first, in one query."""
    if not contact_ids:
        return {}
    rank = func.row_number().over(partition_by=Task.contact_id, order_by=(Task.due_at, Task.id)).label("rank")
    ranked = select(Task, rank).where(Task.contact_id.in_(contact_ids), Task.status == "open").subquery()
    first = aliased(Task, ranked)
    return {task.contact_id: task for task in db.session.scalars(select(first).where(ranked.c.rank == 1))}


def lead_page(filters: LeadFilters, page: int = 1, per_page: int = 50, now: datetime | None = None) -> LeadPage:
    """Return one page of contacts, highest score first, with reasons, trend, last touch and next to-do."""
    now = now or utcnow()
    conditions = _conditions(filters)
    total = db.session.scalar(select(func.count()).select_from(Contact).where(*conditions)) or 0
    page, pages = clamp_page(total, page, per_page)
    week, month = (_score_at(Contact.id, now - timedelta(days=d)).label(f"score_{d}d") for d in TREND_DAYS)
    rows = db.session.execute(
        select(Contact, User.name, week, month)
        .outerjoin(User, User.id == Contact.owner_id)
        .where(*conditions)
        .order_by(Contact.lead_score.desc(), Contact.id.desc())  # both ways along the score index
        .offset((page - 1) * per_page).limit(per_page)
    ).all()
    tasks = next_open_tasks([contact.id for contact, *_ in rows])
    leads = []
    for contact, owner_name, score_week, score_month in rows:
        touches = [t for t in (contact.last_interaction_at, contact.last_order_at) if t is not None]
        leads.append(LeadRow(
            contact=contact, owner_name=owner_name, reasons=top_reasons(contact.score_breakdown),
            trend=_trend(contact.lead_score, score_week, score_month),
            last_touch=max(touches) if touches else None, next_task=tasks.get(contact.id),
        ))
    return LeadPage(leads, total, page, pages)


def owners() -> list[User]:
    """Return the people who may own contacts, for the owner filter."""
    return list(db.session.scalars(select(User).where(User.role != "viewer").order_by(User.name, User.id)))


def tag_names() -> list[str]:
    """Return every tag's name, for the tag filter."""
    return list(db.session.scalars(select(Tag.name).order_by(Tag.name)))
