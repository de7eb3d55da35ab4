"""Interactions: every call, email, chat, note or testimonial logged for a contact."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.models.base import db, UTCDateTime, utcnow

if TYPE_CHECKING:
    from crm.models.contact import Contact
    from crm.models.user import User

INTERACTION_KINDS = (
    "call", "email", "chat", "meeting", "note", "complaint", "testimonial",
    "review", "survey", "sms", "social", "cart",
)
DIRECTIONS = ("inbound", "outbound", "internal")
SENTIMENTS = ("negative", "neutral", "positive")


class Interaction(db.Model):
    __tablename__ = "interactions"
    __table_args__ = (
        # A contact's timeline, and the segments' "interaction" conditions (kind, within days)
        # answered from the index alone.
        sa.Index("ix_interactions_contact_occurred_kind", "contact_id", "occurred_at", "kind"),
        sa.CheckConstraint(
            "sentiment IS NULL OR sentiment IN ('negative', 'neutral', 'positive')", name="sentiment"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"))
    author_id: Mapped[Optional[int]] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(sa.String(20), index=True)
    direction: Mapped[str] = mapped_column(sa.String(10), default="outbound")
    channel: Mapped[Optional[str]] = mapped_column(sa.String(40))
    subject: Mapped[str] = mapped_column(sa.String(300), default="")
    body: Mapped[str] = mapped_column(sa.Text, default="")
    outcome: Mapped[Optional[str]] = mapped_column(sa.String(300))
    sentiment: Mapped[Optional[str]] = mapped_column(sa.String(10))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # The to-do this interaction completed, if any.
    task_id: Mapped[Optional[int]] = mapped_column(
        sa.ForeignKey("tasks.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    contact: Mapped["Contact"] = relationship()
    author: Mapped[Optional["User"]] = relationship()
