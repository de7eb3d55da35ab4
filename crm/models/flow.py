"""Flows: what a retention rule's email flow did with each occasion (sent, waiting, skipped ...)."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import db, UTCDateTime, utcnow

# waiting: paced (cap or window) until due_at; sent: the email is queued in the outbox;
# skipped: not sent, with the reason; todo: left to a person (not in the flow's segment, ...).
FLOW_SEND_STATUSES = ("waiting", "sent", "skipped", "todo")


class FlowSend(db.Model):
    """One occasion of a flow for one contact: at most one per (contact, rule key)."""

    __tablename__ = "flow_sends"
    __table_args__ = (
        sa.UniqueConstraint("contact_id", "rule_key"),
        sa.Index("ix_flow_sends_status_due", "status", "due_at"),
        sa.Index("ix_flow_sends_flow_created", "flow", "created_at"),
        sa.CheckConstraint("status IN ('waiting', 'sent', 'skipped', 'todo')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"))
    task_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("tasks.id", ondelete="SET NULL"), index=True)
    flow: Mapped[str] = mapped_column(sa.String(40))
    rule_key: Mapped[str] = mapped_column(sa.String(160))
    action: Mapped[str] = mapped_column(sa.String(10))
    status: Mapped[str] = mapped_column(sa.String(10), default="waiting")
    reason: Mapped[str] = mapped_column(sa.String(300), default="")
    due_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    message_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("email_messages.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # "both": when the to-do comes back if there was no reply or order; and what became of it.
    followup_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    followup: Mapped[Optional[str]] = mapped_column(sa.String(300))


class SurveyAnswer(db.Model):
    """A customer's answer from a survey or testimonial email: a 0-10 score and/or a comment."""

    __tablename__ = "survey_answers"
    __table_args__ = (
        sa.Index("ix_survey_answers_answered", "answered_at"),
        sa.CheckConstraint("score IS NULL OR (score >= 0 AND score <= 10)", name="score"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("email_messages.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(sa.String(20))  # "survey" or "testimonial"
    score: Mapped[Optional[int]]
    comment: Mapped[str] = mapped_column(sa.Text, default="")
    interaction_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("interactions.id", ondelete="SET NULL"))
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EmailClick(db.Model):
    """A click on a link in a marketing email, through the signed redirect (no open pixel)."""

    __tablename__ = "email_clicks"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(sa.ForeignKey("email_messages.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(sa.String(2000))
    clicked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
