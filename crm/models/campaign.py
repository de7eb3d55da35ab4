"""Newsletters: a one-off message to a segment, and who it went to (once each)."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import db, UTCDateTime, utcnow

CAMPAIGN_STATUSES = ("draft", "scheduled", "sending", "sent", "cancelled")


class Campaign(db.Model):
    __tablename__ = "campaigns"
    __table_args__ = (
        sa.Index("ix_campaigns_status_scheduled", "status", "scheduled_at"),
        sa.CheckConstraint("status IN ('draft', 'scheduled', 'sending', 'sent', 'cancelled')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    segment_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("segments.id", ondelete="SET NULL"))
    template_key: Mapped[str] = mapped_column(sa.String(60))
    subject: Mapped[str] = mapped_column(sa.String(300))
    body: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(12), default="draft")
    scheduled_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    started_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    finished_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    created_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CampaignRecipient(db.Model):
    """One member of the campaign's segment: queued (with its message) or excluded with the reason."""

    __tablename__ = "campaign_recipients"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "contact_id"),
        sa.CheckConstraint("status IN ('queued', 'excluded')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(sa.String(10))
    reason: Mapped[Optional[str]] = mapped_column(sa.String(40))
    message_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("email_messages.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
