"""Keeping the figures current without a command: after an import or a change of rules the app
queues one refresh of everyone (predictions, stages, scores, to-dos) for the worker, and pages
can ask whether one is on its way ("updating…")."""
from __future__ import annotations

from sqlalchemy import select

from crm.extensions import db
from crm.models import JobRun

# The runs that re-derive the shop's figures for everyone.
REFRESH_JOBS = ("engine.refresh", "schedule.nightly_refresh")
PENDING = ("queued", "running")


def queue_refresh() -> JobRun | None:
    """Queue a refresh of everyone (sent when the caller commits), unless one is already waiting
    to start: changes arriving together share one run. Return the run queued, or None."""
    waiting = db.session.scalar(select(JobRun.id).where(JobRun.name.in_(REFRESH_JOBS), JobRun.status == "queued")
                                .limit(1))
    if waiting is not None:
        return None
    from crm.services.jobs.maintenance import refresh_everyone

    return refresh_everyone()


def refresh_pending() -> JobRun | None:
    """Return the refresh of everyone that is queued or running (the oldest), or None."""
    return db.session.scalar(select(JobRun).where(JobRun.name.in_(REFRESH_JOBS), JobRun.status.in_(PENDING))
                             .order_by(JobRun.enqueued_at, JobRun.id).limit(1))
