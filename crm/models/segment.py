"""Saved segments (audiences): a named JSON definition, and its size recorded each day."""
from __future__ import annotations

from datetime import date, datetime
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import db, UTCDateTime, utcnow


class Segment(db.Model):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    description: Mapped[str] = mapped_column(sa.String(1000), default="")
    # {"match": "all" | "any", "conditions": [...]}, checked by crm.services.segments.definition.
    definition: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    created_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<Segment {self.id} {self.name}>"


class SegmentSize(db.Model):
    """How many contacts a segment had on a shop day (written by the nightly recording)."""

    __tablename__ = "segment_sizes"

    segment_id: Mapped[int] = mapped_column(sa.ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    size: Mapped[int]
