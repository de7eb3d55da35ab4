"""Background jobs: one row per run of a queued or scheduled job, for the jobs page."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import db, UTCDateTime, utcnow

# queued: waiting in the queue (or for its turn); running: a worker has it; done; failed (with
# the reason; retried only by hand or at the next slot); interrupted: its worker died mid-run
# (resumed by the next worker when the job allows it); skipped: not run (e.g. already running).
JOB_STATUSES = ("queued", "running", "done", "failed", "interrupted", "skipped")


class JobRun(db.Model):
    __tablename__ = "job_runs"
    __table_args__ = (sa.Index("ix_job_runs_name_enqueued", "name", "enqueued_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    args_summary: Mapped[str] = mapped_column(sa.String(300), default="")
    # The call's arguments as JSON ({"args": [...], "kwargs": {...}}), to retry or resume it.
    payload: Mapped[Optional[dict[str, Any]]] = mapped_column(sa.JSON)
    periodic: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(sa.String(20), default="queued", index=True)
    enqueued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    finished_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    progress_done: Mapped[Optional[int]]
    progress_total: Mapped[Optional[int]]
    phase: Mapped[Optional[str]] = mapped_column(sa.String(60))
    error: Mapped[Optional[str]] = mapped_column(sa.Text)
    # What a finished run did, in a line (the job's return value when it is text).
    result: Mapped[Optional[str]] = mapped_column(sa.String(300))
    # The result's and the error's words as message keys and values ({"result": ..., "error": ...},
    # crm.services.shared.said), so the jobs page shows them in the reader's language.
    said: Mapped[Optional[dict[str, Any]]] = mapped_column(sa.JSON)
    # host:pid of the worker process running it, to tell a live run from one whose process is gone.
    worker: Mapped[Optional[str]] = mapped_column(sa.String(200))
    # Huey lock names held while it runs, released if its worker dies.
    locks: Mapped[Optional[list[str]]] = mapped_column(sa.JSON)

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()
