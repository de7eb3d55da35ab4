"""What came in from outside: webhook deliveries and import runs."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.models.base import db, UTCDateTime, utcnow


class WebhookDelivery(db.Model):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (sa.UniqueConstraint("source", "delivery_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(40))
    delivery_id: Mapped[Optional[str]] = mapped_column(sa.String(120))
    topic: Mapped[str] = mapped_column(sa.String(80), default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # processed, ignored, rejected, failed
    status: Mapped[str] = mapped_column(sa.String(20))
    error: Mapped[Optional[str]] = mapped_column(sa.Text)
    payload: Mapped[Optional[str]] = mapped_column(sa.Text)


class ImportRun(db.Model):
    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    filename: Mapped[str] = mapped_column(sa.String(300))
    user_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    dry_run: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(sa.String(20), default="running")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    finished_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    counts: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    error: Mapped[Optional[str]] = mapped_column(sa.Text)
    # A run from the Imports page waits in the queue ("queued") and then runs in the worker:
    # where its uploaded file waits, how to read it, its phase and its total of records.
    upload_path: Mapped[Optional[str]] = mapped_column(sa.String(500))
    options: Mapped[Optional[dict[str, Any]]] = mapped_column(sa.JSON)
    phase: Mapped[Optional[str]] = mapped_column(sa.String(20))
    total: Mapped[Optional[int]]
    job_run_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("job_runs.id", ondelete="SET NULL"))

    rejections: Mapped[list["ImportRejection"]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="ImportRejection.line"
    )


class ImportRejection(db.Model):
    __tablename__ = "import_rejections"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("import_runs.id", ondelete="CASCADE"), index=True)
    line: Mapped[int]
    reason: Mapped[str] = mapped_column(sa.String(500))
    raw: Mapped[Optional[dict[str, Any]]] = mapped_column(sa.JSON)

    run: Mapped[ImportRun] = relationship(back_populates="rejections")
