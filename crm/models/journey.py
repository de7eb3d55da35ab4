"""Append-only history of journey stages and lead scores."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import UTCDateTime, db, utcnow


class StageChange(db.Model):
    __tablename__ = "stage_changes"
    # changed_at alone: whether anything changed after a moment (the dashboard's summaries answer
    # only when nothing did) is one index seek.
    __table_args__ = (sa.Index("ix_stage_changes_contact_changed", "contact_id", "changed_at"),
                      sa.Index("ix_stage_changes_changed_at", "changed_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"))
    from_stage: Mapped[Optional[str]] = mapped_column(sa.String(20))
    to_stage: Mapped[str] = mapped_column(sa.String(20), index=True)
    reason: Mapped[str] = mapped_column(sa.String(300), default="")
    reason_said: Mapped[Optional[dict]] = mapped_column(sa.JSON)  # the rule's words as key and values
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Null when a rule made the change.
    changed_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))


class ScoreHistory(db.Model):
    __tablename__ = "score_history"
    __table_args__ = (sa.Index("ix_score_history_contact_computed", "contact_id", "computed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"))
    score: Mapped[int]
    breakdown: Mapped[list] = mapped_column(sa.JSON, default=list)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
