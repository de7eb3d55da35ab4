"""Summary tables the dashboard reads instead of every order: kept current by aggregates.refresh,
the one path every order write, refund, cancellation, merge and deletion takes."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import db, UTCDateTime


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
