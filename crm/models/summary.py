"""Summary tables the dashboard reads instead of every order and stage change: kept current by
aggregates.refresh, the one path every order write, refund, cancellation, merge and deletion
takes, and (the journey's) by every stage change as it is written (crm.services.insight.summaries)."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import UTCDateTime, db


class SummaryState(db.Model):
    """One row per summary: "orders" (the zone its months are in, when it was rebuilt) and
    "spend_median" (the median customer's spend, written by the maintenance jobs)."""

    __tablename__ = "summary_state"

    name: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    zone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    cents: Mapped[Optional[int]] = mapped_column(sa.BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SummaryContactMonth(db.Model):
    """A customer's paid orders in one month (shop time): the ledger the cohort cells are kept from.

    Months are numbered year * 12 + month - 1; `cohort` is the month of the customer's first paid
    order. Read only by contact, so a change is subtracted and added back without reading orders
    of anyone else."""

    __tablename__ = "summary_contact_months"

    contact_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    month: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    cohort: Mapped[int] = mapped_column(sa.Integer)
    cents: Mapped[int] = mapped_column(sa.BigInteger)
    orders: Mapped[int] = mapped_column(sa.Integer)


class SummaryCohortMonth(db.Model):
    """Per first-order month (cohort) and order month: paid revenue in cents, paid orders, the
    customers who ordered, and how many of them ordered more than once that month."""

    __tablename__ = "summary_cohort_months"
    __table_args__ = (sa.Index("ix_summary_cohort_months_month", "month"),)

    cohort: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    month: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    orders: Mapped[int] = mapped_column(sa.Integer, default=0)
    customers: Mapped[int] = mapped_column(sa.Integer, default=0)
    repeaters: Mapped[int] = mapped_column(sa.Integer, default=0)


class SummaryContactStage(db.Model):
    """A contact's way through one journey stage: the ledger the stage cells are kept from.

    `entered` is the month (shop time, year * 12 + month - 1) the contact first entered the stage
    (a change into it, a change out of it, or standing in it now, whichever is earliest);
    `moved_on` the month it first reached a stage further along after that (None: never);
    `standing` whether it stands in the stage now. Read only by contact, like the order ledger."""

    __tablename__ = "summary_contact_stages"

    contact_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    stage: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    entered: Mapped[int] = mapped_column(sa.Integer)
    moved_on: Mapped[Optional[int]] = mapped_column(sa.Integer)
    standing: Mapped[bool] = mapped_column(default=False)


class SummaryStageMonth(db.Model):
    """Per journey stage and month of first entering it: the contacts who entered, how many of
    them later went further along, and how many stand in the stage now."""

    __tablename__ = "summary_stage_months"

    stage: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    month: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    entered: Mapped[int] = mapped_column(sa.Integer, default=0)
    moved_on: Mapped[int] = mapped_column(sa.Integer, default=0)
    standing: Mapped[int] = mapped_column(sa.Integer, default=0)
