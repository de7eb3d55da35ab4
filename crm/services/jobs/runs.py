"""The job_runs table: what each queued or scheduled job did, for the jobs and settings pages.

Every function here works in the caller's session and flushes; the worker's code in core.py
commits around them (a job's row must be visible while the job still runs).
"""
from __future__ import annotations

import json
import os
import socket
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from crm.extensions import db
from crm.models import JobRun, utcnow
from crm.services.shared.said import to_json

ENDED = ("done", "failed", "interrupted", "skipped")
SUMMARY_LENGTH = 300
ERROR_LENGTH = 2000


def this_worker() -> str:
    """Return host:pid, the identity a running job's row carries."""
    return f"{socket.gethostname()}:{os.getpid()}"


def summarize(args: tuple | list, kwargs: dict) -> str:
    """Return a call's arguments as a short line: 12, 'x.csv', dry_run=True."""
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in sorted(kwargs.items())]
    text = ", ".join(parts)
    return text if len(text) <= SUMMARY_LENGTH else text[:SUMMARY_LENGTH - 1] + "…"


def payload_of(args: tuple | list, kwargs: dict) -> dict[str, Any] | None:
    """Return the arguments as JSON-able data to retry the call later, or None when they are not."""
    data = {"args": list(args), "kwargs": dict(kwargs)}
    try:
        if json.loads(json.dumps(data)) != data:
            return None
    except (TypeError, ValueError):
        return None
    return data


def record_queued(task_id: str, name: str, args: tuple | list, kwargs: dict, *,
                  now: datetime | None = None, periodic: bool = False) -> JobRun:
    """Add the row of a job about to be queued (flushed, not committed)."""
    run = JobRun(task_id=task_id, name=name, args_summary=summarize(args, kwargs),
                 payload=payload_of(args, kwargs), periodic=periodic, status="queued",
                 enqueued_at=now or utcnow(), attempts=0)
    db.session.add(run)
    db.session.flush()
    return run


def by_task_id(task_id: str) -> JobRun | None:
    return db.session.scalar(select(JobRun).where(JobRun.task_id == task_id))


def mark_running(task_id: str, name: str, args: tuple | list, kwargs: dict, *, periodic: bool) -> JobRun:
    """Mark a job's row running in this worker (creating it for scheduled and resumed runs)."""
    now = utcnow()
    run = by_task_id(task_id)
    if run is None:
        run = record_queued(task_id, name, args, kwargs, now=now, periodic=periodic)
    run.status = "running"
    run.started_at = now
    run.heartbeat_at = now
    run.finished_at = None
    run.result = None
    run.attempts = (run.attempts or 0) + 1
    run.worker = this_worker()
    db.session.flush()
    return run


def mark_finished(run_id: int, status: str, error: str | None = None, result: str | None = None,
                  **values: Any) -> None:
    """Record a run's end: done, failed, skipped or interrupted, with the error for a person and
    the result (a text the job returned). Each is stored in English, cut to its column, and, when
    it is a Said, with its message key and values beside it (the jobs page in the reader's words)."""
    said = {name: data for name, data in (("error", to_json(error)), ("result", to_json(result)))
            if data is not None}
    now = utcnow()
    finished = None if status == "queued" else now
    db.session.execute(update(JobRun).where(JobRun.id == run_id).values(
        status=status, error=_cut(error, ERROR_LENGTH), result=_cut(result, SUMMARY_LENGTH), said=said or None,
        finished_at=finished, heartbeat_at=now, locks=None, **values,
    ).execution_options(synchronize_session=False))


def _cut(text: str | None, length: int) -> str | None:
    if text is None or len(text) <= length:
        return None if text is None else str(text)
    return str(text)[:length - 1] + "…"


def set_progress(run_id: int, done: int | None, total: int | None, phase: str | None) -> None:
    values: dict[str, Any] = {"heartbeat_at": utcnow(), "progress_done": done}
    if total is not None:
        values["progress_total"] = total
    if phase is not None:
        values["phase"] = phase[:60]
    db.session.execute(update(JobRun).where(JobRun.id == run_id).values(**values)
                       .execution_options(synchronize_session=False))


def set_locks(run_id: int, names: list[str]) -> None:
    db.session.execute(update(JobRun).where(JobRun.id == run_id).values(locks=names or None)
                       .execution_options(synchronize_session=False))


def process_gone(worker: str | None, heartbeat_at: datetime | None, *, stale_after: timedelta,
                 in_flight: set[str] = frozenset(), task_id: str | None = None, now: datetime | None = None) -> bool:
    """Return whether the process that ran a job is gone (so the job was interrupted).

    On this host: its pid no longer exists, or it is this very process and the job is not in
    flight here. Elsewhere: it has not reported for `stale_after`.
    """
    now = now or utcnow()
    host, _, pid_text = (worker or "").rpartition(":")
    if host == socket.gethostname() and pid_text.isdigit():
        pid = int(pid_text)
        if pid == os.getpid():
            return task_id not in in_flight
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return heartbeat_at is None or now - heartbeat_at > stale_after


def orphans(*, stale_after: timedelta, in_flight: set[str] = frozenset()) -> list[JobRun]:
    """Return the rows marked running whose process is gone."""
    running = db.session.scalars(select(JobRun).where(JobRun.status == "running")).all()
    return [run for run in running
            if process_gone(run.worker, run.heartbeat_at, stale_after=stale_after, in_flight=in_flight,
                            task_id=run.task_id)]


def ran_lately(name: str, task_id: str, within: timedelta) -> bool:
    """Return whether another run of this job started (and did not fail) in the last `within`."""
    since = utcnow() - within
    return db.session.scalar(
        select(JobRun.id).where(JobRun.name == name, JobRun.task_id != task_id, JobRun.started_at >= since,
                                JobRun.status.in_(("running", "done"))).limit(1)) is not None


def recent(limit: int = 100, status: str | None = None) -> list[JobRun]:
    query = select(JobRun).order_by(JobRun.enqueued_at.desc(), JobRun.id.desc()).limit(limit)
    if status:
        query = query.where(JobRun.status == status)
    return list(db.session.scalars(query))


def last_run(name: str, *, finished: bool = False) -> JobRun | None:
    """Return the newest run of a job (only those that ended, with finished=True)."""
    query = select(JobRun).where(JobRun.name == name)
    if finished:
        query = query.where(JobRun.status.in_(ENDED))
    return db.session.scalar(query.order_by(JobRun.enqueued_at.desc(), JobRun.id.desc()).limit(1))


def counts_by_status() -> dict[str, int]:
    from sqlalchemy import func

    rows = db.session.execute(select(JobRun.status, func.count()).group_by(JobRun.status)).all()
    return {status: count for status, count in rows}
