"""Email: the templates staff edit, the outbox of every message, suppressed addresses and consent history."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import db, UTCDateTime, utcnow

# queued -> sending (the attempt is recorded before the server is spoken to) -> sent | failed;
# suppressed when the contact may not receive it (no consent, unsubscribed, bounced, ...).
EMAIL_STATUSES = ("queued", "sending", "sent", "failed", "suppressed")
SUPPRESSION_REASONS = ("unsubscribed", "bounced")


class EmailTemplate(db.Model):
    __tablename__ = "email_templates"
    # One row per template and language the shop wrote its own version in (missing: the shipped default).
    __table_args__ = (sa.UniqueConstraint("key", "language"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(60))
    language: Mapped[str] = mapped_column(sa.String(10), default="en", server_default="en")
    name: Mapped[str] = mapped_column(sa.String(120))
    subject: Mapped[str] = mapped_column(sa.String(300))
    body: Mapped[str] = mapped_column(sa.Text)
    marketing: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))


class EmailMessage(db.Model):
    __tablename__ = "email_messages"
    __table_args__ = (
        sa.Index("ix_email_messages_status_next", "status", "next_attempt_at"),
        sa.Index("ix_email_messages_contact_created", "contact_id", "created_at"),
        sa.CheckConstraint(
            "status IN ('queued', 'sending', 'sent', 'failed', 'suppressed')", name="status"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("contacts.id", ondelete="SET NULL"))
    template_key: Mapped[Optional[str]] = mapped_column(sa.String(60))
    task_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("tasks.id", ondelete="SET NULL"))
    interaction_id: Mapped[Optional[int]] = mapped_column(
        sa.ForeignKey("interactions.id", ondelete="SET NULL"), index=True
    )
    created_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    marketing: Mapped[bool] = mapped_column(default=True)
    to_address: Mapped[str] = mapped_column(sa.String(320), default="")
    to_name: Mapped[str] = mapped_column(sa.String(300), default="")
    subject: Mapped[str] = mapped_column(sa.String(300), default="")
    html_body: Mapped[str] = mapped_column(sa.Text, default="")
    text_body: Mapped[str] = mapped_column(sa.Text, default="")
    message_id: Mapped[str] = mapped_column(sa.String(250), unique=True)
    unsubscribe_url: Mapped[Optional[str]] = mapped_column(sa.String(1000))
    status: Mapped[str] = mapped_column(sa.String(12), default="queued")
    reason: Mapped[Optional[str]] = mapped_column(sa.String(40))  # why suppressed or failed, as a key
    smtp_answer: Mapped[Optional[str]] = mapped_column(sa.Text)
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    attempt_started_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # Set just before the message itself goes to the server: after this a restart must not resend.
    handed_over_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    finished_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # A delivery-status notification that came back later: "hard" or "soft", and when.
    bounce: Mapped[Optional[str]] = mapped_column(sa.String(10))
    bounced_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)


class EmailSuppression(db.Model):
    """An address no message goes to: unsubscribed or bounced. Erasing keeps only the hash."""

    __tablename__ = "email_suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    email: Mapped[Optional[str]] = mapped_column(sa.String(320))
    reason: Mapped[str] = mapped_column(sa.String(20))
    detail: Mapped[str] = mapped_column(sa.String(500), default="")
    contact_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    message_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("email_messages.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConsentEvent(db.Model):
    """The consent history: every opt-in and opt-out, when, how and from which message."""

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    consent: Mapped[bool]
    source: Mapped[str] = mapped_column(sa.String(200))
    message_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("email_messages.id", ondelete="SET NULL"))
    actor_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
