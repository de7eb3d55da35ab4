"""Running the queue: the Huey consumer (`crm worker`) and one pass over what is due (`--burst`)."""
from __future__ import annotations

import importlib
import logging
from datetime import datetime, timedelta, timezone

from flask import Flask

from crm.extensions import db
from crm.services.jobs import core, runs
from crm.services.jobs.queue import huey
from crm.services.jobs.registry import import_task_modules

log = logging.getLogger("crm.jobs")

# How far back `--burst` looks for a scheduled slot it has not run yet (cron may call it rarely);
# a job that never ran is only due for a slot in the last FIRST_CATCH_UP (a new install does not
# start with last night's work).
CATCH_UP = timedelta(hours=25)
FIRST_CATCH_UP = timedelta(minutes=15)


def load_jobs(app: Flask) -> None:
    """Import every module that defines jobs (TASK_MODULES, then the app's JOBS_EXTRA_MODULES)."""
    import_task_modules()
    for name in app.config.get("JOBS_EXTRA_MODULES") or ():
        importlib.import_module(name)


def prepare(app: Flask) -> list[int]:
    """Get a worker process ready: jobs loaded, runs orphaned by a dead worker marked and resumed."""
    load_jobs(app)
    with app.app_context():
        try:
            return core.recover_interrupted()
        finally:
            db.session.remove()


def run_consumer(app: Flask, *, workers: int = 1, shutdown_timeout: float | None = 30.0) -> None:
    """Run Huey's consumer (jobs and schedules) until SIGTERM (finish the running jobs, up to
    `shutdown_timeout` s, then stop them) or SIGINT (stop now); a stopped job is queued again."""
    prepare(app)
    consumer = huey.create_consumer(
        workers=workers, worker_type="thread", periodic=True, check_worker_health=True,
        graceful_signal="TERM", shutdown_timeout=shutdown_timeout,
    )
    consumer.run()


def due_periodic(now: datetime | None = None) -> list[core.Job]:
    """Return the scheduled jobs whose latest slot (up to CATCH_UP ago) has not started a run yet.
    Needs an app context (schedules may read settings)."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(second=0, microsecond=0)
    due = []
    for job in core.JOBS.values():
        if job.schedule_rule is None:
            continue
        slot = _latest_slot(job, now)
        if slot is None:
            continue
        last = runs.last_run(job.name)
        if last is None and slot >= now - FIRST_CATCH_UP:
            due.append(job)
        elif last is not None and last.enqueued_at < slot:
            due.append(job)
    return due


def _latest_slot(job: core.Job, now: datetime) -> datetime | None:
    minute = now
    earliest = now - CATCH_UP
    while minute > earliest:
        # Huey validates naive UTC datetimes (utc=True); so do we.
        if job.schedule_rule(minute.replace(tzinfo=None)):
            return minute
        minute -= timedelta(minutes=1)
    return None


def run_burst(app: Flask, *, periodic: bool = True, max_tasks: int = 10_000) -> int:
    """Run everything due now with Huey's own API, then return the number of tasks executed.

    Resumes interrupted runs, queues the scheduled jobs whose slot passed without a run, moves
    due scheduled messages to the queue, then dequeues and executes until the queue is empty.
    A message scheduled for later (a retry with a delay, a job waiting its turn) stays for the
    next worker.
    """
    prepare(app)
    if periodic and app.config.get("JOBS_BURST_SCHEDULES", True):
        with app.app_context():
            try:
                for job in due_periodic():
                    log.info("Queueing scheduled job %s", job.name)
                    huey.enqueue(job.task.task_class())
            finally:
                db.session.remove()
    storage = huey.storage
    blocking = getattr(storage, "blocking", False)
    storage.blocking = False  # Redis: return at once when the queue is empty
    executed = 0
    try:
        while executed < max_tasks:
            for task in huey.read_schedule():
                huey.enqueue(task)
            try:
                task = huey.dequeue()
            except Exception:  # noqa: BLE001 - a message no job of this version reads: dropped, logged
                log.exception("Dropped a message that could not be read")
                executed += 1
                continue
            if task is None:
                break
            executed += 1
            try:
                huey.execute(task)
            except Exception:  # noqa: BLE001 - Huey logged it; the next task still runs
                log.exception("Task %s failed", task.id)
    finally:
        storage.blocking = blocking
    return executed
