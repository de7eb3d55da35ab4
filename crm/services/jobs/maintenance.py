"""The shop's upkeep, run by the worker: the nightly refresh, the daily backup, the leftover-upload
cleanup (all scheduled), and the shop-wide figures queued after orders arrive one by one.

The refresh time (default 03:15) and the number of backups kept (default 7) are settings
(Settings → Rules); times are in SHOP_TIMEZONE. A failed scheduled run is shown on the settings
page and the dashboard, and simply runs again at its next slot.
"""
from __future__ import annotations

import gc
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import delete, select

from crm.extensions import db
from crm.models import JobRun, Setting, utcnow
from crm.services.insight import summaries
from crm.services.jobs import runs
from crm.services.jobs.core import Job, job, periodic_job, set_progress
from crm.services.shared import signals
from crm.services.shared.errors import N_, ValidationError
from crm.services.shared.said import Np_, said, said_plural, sentences
from crm.services.shop import backups
from crm.services.shop.clock import shop_zone
from crm.services.trust import audit

log = logging.getLogger(__name__)

SETTING_KEY = "schedules"
DEFAULTS: dict[str, Any] = {"refresh_time": "03:15", "backups_keep": 7}
BACKUP_TIME = "02:45"
CLEANUP_TIME = "04:30"
UPLOAD_MAX_AGE = 24 * 3600
KEEP_JOB_RUNS_DAYS = 90
TIME_FORMAT = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


# -- settings ----------------------------------------------------------------------------------

def load() -> dict[str, Any]:
    """Return the schedule settings (stored values over the defaults)."""
    row = db.session.get(Setting, SETTING_KEY)
    return {**DEFAULTS, **(row.value if row is not None and isinstance(row.value, dict) else {})}


def save(values: dict[str, Any], actor_id: int | None) -> dict[str, Any]:
    """Validate and store the schedule settings (flushed, audited); a ValidationError names each bad field."""
    errors = {}
    refresh_time = str(values.get("refresh_time", "")).strip()
    if not TIME_FORMAT.match(refresh_time):
        errors["refresh_time"] = N_("Give a time of day as HH:MM, e.g. 03:15.")
    try:
        keep = int(values.get("backups_keep"))
    except (TypeError, ValueError):
        keep = 0
        errors["backups_keep"] = N_("Give a whole number of backups to keep, from 1 to 365.")
    if not errors and not 1 <= keep <= 365:
        errors["backups_keep"] = N_("Keep from 1 to 365 backups.")
    if errors:
        raise ValidationError(fields=errors)
    before = load()
    after = {"refresh_time": refresh_time, "backups_keep": keep}
    row = db.session.get(Setting, SETTING_KEY)
    if row is None:
        db.session.add(Setting(key=SETTING_KEY, value=after))
    else:
        row.value = after
    db.session.flush()
    if before != after:
        audit.record("update", "setting", None, user_id=actor_id,
                     before={f"{SETTING_KEY}.{k}": v for k, v in before.items()},
                     after={f"{SETTING_KEY}.{k}": v for k, v in after.items()})
    return after




class DailyAt:
    """A schedule: every day at a time of day in the shop's time zone, read when checked (so a
    changed setting applies from the next minute). Called by Huey with naive UTC datetimes."""

    def __init__(self, when: Callable[[], str], description: str):
        self.when = when
        self.description = description
        self._cached: tuple[float, str, ZoneInfo] | None = None

    def _setting(self) -> tuple[str, ZoneInfo]:
        # A burst run checks many minutes at once: read the setting once a few seconds.
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > 5:
            self._cached = (now, self.when(), shop_zone())
        return self._cached[1], self._cached[2]

    def __call__(self, moment: datetime) -> bool:
        when, zone = self._setting()
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(zone).strftime("%H:%M") == when


# -- the jobs ----------------------------------------------------------------------------------

def refresh_everyone_now(*, now: datetime | None = None, on_batch: Callable[[int], None] | None = None,
                         on_step: Callable[[str], None] | None = None):
    """Run the predictions and the rules for everyone, committing each batch (so the shop's own
    writes never wait long), then the planner statistics; return the engine's summary.
    `crm refresh` and the refresh jobs share it; in a job the progress goes to the jobs page."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads for the predictions
    from crm.database import refresh_statistics
    from crm.services.rules import engine

    total = engine.contact_count()
    state = {"done": 0, "phase": N_("starting")}

    def batch_done(count: int) -> None:
        db.session.commit()
        state["done"] += count
        set_progress(state["done"], total, state["phase"])
        if on_batch is not None:
            on_batch(count)

    def step_started(label: str) -> None:
        state["phase"] = label
        set_progress(state["done"], total, label, force=True)
        if on_step is not None:
            on_step(label)

    with fewer_garbage_collections():
        summary = retrying_deadlocks(lambda: engine.refresh(now or utcnow(), progress=batch_done,
                                                             step_started=step_started))
        db.session.commit()
        # The dashboard's summaries, from scratch (in the shop's zone, should it have changed): a
        # drift is fixed and said; the medians follow the new predictions and spend.
        drift = summaries.rebuild(medians=True)
        db.session.commit()
    if drift.rows and drift.previous_zone is not None:
        summary.notes.append(drift.said())
    refresh_statistics(db.session)  # the nightly job keeps the query planner's picture current
    return summary


# Objects made between two collections of the youngest generation while a refresh runs (Python's
# default is 700): a refresh makes tens of millions of short-lived rows, facts and sentences, and
# with the default the collector ran ~15,000 times, 60 of them over everything alive (the run's
# millions of order figures and ledger rows), 7 of its 54 s of CPU at full scale.
REFRESH_GC_THRESHOLD = 100_000


@contextmanager
def fewer_garbage_collections(threshold: int = REFRESH_GC_THRESHOLD) -> Iterator[None]:
    """Collect garbage less often inside the block (the process's setting; restored after).
    Nothing changes but when cycles are freed: the memory they hold waits a little longer."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], threshold), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _said(summary) -> str:
    """The refresh's result: English, with its key and values (the jobs page in the reader's words)."""
    return sentences(said(N_("Refreshed %(summary)s."), summary=summary.said()), *summary.notes)


@job(name="engine.refresh", lock="refresh", label="Refresh everyone")
def refresh_everyone() -> str:
    """Refresh predictions, stages, scores and to-dos for everyone"""
    return _said(refresh_everyone_now())


@periodic_job(DailyAt(lambda: load()["refresh_time"], said(N_("daily at the time set below"))),
              name="schedule.nightly_refresh", lock="refresh", label="Nightly refresh")
def nightly_refresh() -> str:
    """Nightly refresh: predictions, stages, scores and to-dos for everyone"""
    return _said(refresh_everyone_now())


@periodic_job(DailyAt(lambda: BACKUP_TIME, said(N_("daily at %(time)s"), time=BACKUP_TIME)), name="schedule.backup", lock="backup",
              label="Daily backup")
def daily_backup() -> str:
    """Daily backup of the SQLite database, keeping the last N"""
    live = backups.sqlite_file(db.engine.url)
    if live is None:
        return said(N_("The database is PostgreSQL: back it up with pg_dump (see the README); nothing copied."))
    folder = os.path.join(current_app.instance_path, "backups")
    made = backups.backup_sqlite(live, backups.default_backup_path(current_app.instance_path, utcnow()))
    removed = backups.prune_backups(folder, load()["backups_keep"])
    if not removed:
        return said(N_("Saved %(file)s."), file=made.name)
    return said_plural(Np_(len(removed), "Saved %(file)s; removed %(num)s older.", "Saved %(file)s; removed %(num)s older."),
                       len(removed), file=made.name)


@periodic_job(DailyAt(lambda: CLEANUP_TIME, said(N_("daily at %(time)s"), time=CLEANUP_TIME)), name="schedule.cleanup",
              label="Leftover-upload cleanup")
def cleanup() -> str:
    """Delete uploads nobody imported within a day, and job records older than 90 days"""
    from crm.services.orders.importing.run import active_upload_paths
    from crm.services.shared.uploads import forget_old_uploads

    removed = forget_old_uploads(os.path.join(current_app.instance_path, "uploads"), UPLOAD_MAX_AGE,
                                 keep=active_upload_paths())
    cutoff = utcnow() - timedelta(days=KEEP_JOB_RUNS_DAYS)
    pruned = db.session.execute(delete(JobRun).where(JobRun.status.in_(("done", "skipped")),
                                                     JobRun.finished_at < cutoff)).rowcount
    db.session.commit()
    return said_plural(Np_(removed, "Removed %(num)s leftover upload and %(records)s old job records.",
                           "Removed %(num)s leftover uploads and %(records)s old job records."),
                       removed, records=pruned or 0)


@job(name="engine.shop_figures", lock="refresh", label="Shop-wide figures and predictions")
def shop_figures() -> str:
    """Work out the shop-wide figures and every customer's predictions again"""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from crm.services.insight import predict
    from crm.services.rules import engine

    now = utcnow()
    set_progress(None, None, N_("predicting"), force=True)
    result = predict.run(now, progress=lambda _count: db.session.commit())
    engine.shop_context(now, fresh=True)
    db.session.commit()
    summaries.ensure_built()  # a new shop's first orders (or a new time zone): the dashboard's summaries
    db.session.commit()
    return result.headline()


def queue_shop_figures() -> JobRun | None:
    """Queue the shop-wide figures after an order came in on its own (webhook, API, form), unless
    a run is already waiting: orders arriving together share one run, JOBS_FIGURES_DELAY s later."""
    waiting = db.session.scalar(select(JobRun.id).where(JobRun.name == shop_figures.name,
                                                        JobRun.status == "queued").limit(1))
    if waiting is not None:
        return None
    return shop_figures.schedule(delay=float(current_app.config.get("JOBS_FIGURES_DELAY", 600)))


def _on_orders_recorded(_sender, **_details) -> None:
    queue_shop_figures()


def connect() -> None:
    """Queue the shop-wide figures whenever orders come in on their own (signals.orders_recorded)."""
    signals.orders_recorded.connect(_on_orders_recorded)


# -- what the settings page and the dashboard show --------------------------------------------

SCHEDULED: list[Job] = [nightly_refresh, daily_backup, cleanup]


def schedule_status() -> list[dict[str, Any]]:
    """Each scheduled job with when it runs and its last run: when, how long, outcome, error."""
    rows = []
    for scheduled in SCHEDULED:
        last = runs.last_run(scheduled.name, finished=True)
        current = runs.last_run(scheduled.name)
        rows.append({
            "name": scheduled.name, "label": scheduled.label, "when": scheduled.schedule_rule.description,
            "last": last, "running": current if current is not None and current.status == "running" else None,
            "failed": last is not None and last.status in ("failed", "interrupted"),
        })
    return rows


def failed_schedules() -> list[JobRun]:
    """The last runs of scheduled jobs that failed (for the admins' dashboard), in one query."""
    names = [scheduled.name for scheduled in SCHEDULED]
    recent = db.session.scalars(
        select(JobRun).where(JobRun.name.in_(names), JobRun.status.in_(runs.ENDED))
        .order_by(JobRun.enqueued_at.desc(), JobRun.id.desc()).limit(10 * len(names))
    ).all()
    latest: dict[str, JobRun] = {}
    for run in recent:
        latest.setdefault(run.name, run)
    labels = {scheduled.name: scheduled.label for scheduled in SCHEDULED}
    failed = [run for run in latest.values() if run.status in ("failed", "interrupted")]
    for run in failed:
        run.label = labels[run.name]  # type: ignore[attr-defined]
    return failed


def retrying_deadlocks(work, attempts: int = 3):
    """Return work()'s result, running the idempotent work again when PostgreSQL picked it as a
    deadlock (or serialisation) victim against the shop's own writers, instead of failing."""
    from sqlalchemy.exc import DBAPIError

    for attempt in range(1, attempts + 1):
        try:
            return work()
        except DBAPIError as error:
            code = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
            if code not in ("40P01", "40001") or attempt == attempts:
                raise
            db.session.rollback()
            log.warning("A concurrent write got in the way (PostgreSQL %s); trying again.", code)
