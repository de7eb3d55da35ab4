"""To-dos: retention and sales tasks, made by rules or by people."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.models.base import db, UTCDateTime, utcnow

if TYPE_CHECKING:
    from crm.models.contact import Contact
    from crm.models.user import User

TASK_STATUSES = ("open", "done", "dismissed", "closed")


class Task(db.Model):
    __tablename__ = "tasks"
    __table_args__ = (
        # A rule never makes the same task twice for the same contact and occasion.
        sa.UniqueConstraint("contact_id", "rule_key"),
        sa.Index("ix_tasks_assignee_status_due", "assignee_id", "status", "due_at"),
        sa.Index("ix_tasks_status_due", "status", "due_at"),
        sa.CheckConstraint("status IN ('open', 'done', 'dismissed', 'closed')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(40))
    # Null for tasks a person made; otherwise "<rule>:<occasion>".
    rule_key: Mapped[Optional[str]] = mapped_column(sa.String(160))
    title: Mapped[str] = mapped_column(sa.String(300))
    reason: Mapped[str] = mapped_column(sa.String(500), default="")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(sa.String(12), default="open")
    assignee_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    snoozed_until: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    close_reason: Mapped[Optional[str]] = mapped_column(sa.String(300))
    # The rules' words as message keys and values ({"title": ..., "reason": ...}; close_reason_said),
    # so each reader sees them in their language; the columns above keep the English.
    said: Mapped[Optional[dict]] = mapped_column(sa.JSON)
    close_reason_said: Mapped[Optional[dict]] = mapped_column(sa.JSON)
    outcome: Mapped[Optional[str]] = mapped_column(sa.String(300))

    contact: Mapped["Contact"] = relationship()
    assignee: Mapped[Optional["User"]] = relationship()
