"""Jobs: functions that run in the worker, inside a Flask app context, with each run recorded.

    @job(retries=2, retry_delay=60)
    def send_newsletter(newsletter_id): ...

    send_newsletter(12)        # queued when the caller's transaction commits; returns its JobRun

Calling a job records a "queued" row in job_runs through the caller's session and sends the
message to Huey when that session commits (at once, in its own commit, when no transaction is
open). So a job never runs before the rows it is about exists, and a rolled-back request queues
nothing. In the worker the function runs inside the worker's app context; its row goes running,
then done or failed (with the error), and `set_progress` fills in its progress on the way.

A job that raises StaleJob (or crm.services.shared.errors.NotFound) fails with that plain reason and is
not retried: its arguments point at something gone (an erased contact, a deleted upload). Any
other exception is retried as Huey's `retries` says, then marked failed.

A job whose worker died (SIGKILL, power cut) is "interrupted"; the next worker resumes it (runs
it again with the same arguments) unless the job says resume=False. Jobs must therefore be safe
to run twice: they read their state from the database, not from the message.
"""
from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app, has_app_context
from huey import signals as S
from huey.api import TaskWrapper
from huey.exceptions import RetryTask, TaskLockedException
from sqlalchemy import event
from sqlalchemy.orm import Session

from crm.extensions import db
from crm.services.jobs import runs
from crm.services.jobs.queue import huey
from crm.services.shared.errors import NotFound
from crm.services.shared.said import N_, Said, said

log = logging.getLogger("crm.jobs")

JOBS: dict[str, "Job"] = {}  # name -> job, every job defined so far
_PENDING_KEY = "crm_jobs_pending"


class StaleJob(Exception):
    """The job's arguments point at something that is gone; it fails with this reason, once."""


class _State:
    app: Flask | None = None  # the app a worker runs jobs in (the last one init_app saw)
    progress_interval = 0.5   # seconds between two progress writes of one job
    lock_wait = 2             # seconds before a job waiting for a lock tries again


_state = _State()
_current: contextvars.ContextVar["_Running | None"] = contextvars.ContextVar("crm_job", default=None)
_in_flight: set[str] = set()  # task ids running in this process
_in_flight_lock = threading.Lock()


class _Running:
    """What set_progress and job_lock need to know about the job running in this thread."""

    def __init__(self, run_id: int, task: Any):
        self.run_id = run_id
        self.task = task
        self.last_write = 0.0
        self.last_phase: str | None = None
        self.locks: list[str] = []


def init_app(app: Flask) -> None:
    """Point the queue at this app's storage; jobs run in this app when this process is a worker."""
    from crm.services.jobs import queue

    queue.configure(app.config, app.instance_path)
    _state.app = app
    app.extensions["crm_jobs"] = huey


def worker_app() -> Flask:
    if has_app_context():
        return current_app._get_current_object()  # type: ignore[attr-defined]
    if _state.app is None:
        raise RuntimeError("No app: create it (crm.create_app) before running jobs.")
    return _state.app


# -- queueing ---------------------------------------------------------------------------------

def _send_pending(session: Session) -> None:
    tasks = session.info.pop(_PENDING_KEY, None)
    for task in tasks or ():
        try:
            huey.enqueue(task)
        except Exception:  # noqa: BLE001 - the row stays "queued"; the log says why
            log.exception("Could not queue job %s (%s)", task.name, task.id)


def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


event.listen(Session, "after_commit", _send_pending)
event.listen(Session, "after_rollback", _drop_pending)


class Job:
    """A function that runs in the worker. Call it to queue it; `.call_local` runs it here."""

    def __init__(self, func: Callable, *, name: str | None = None, periodic: Callable | None = None,
                 resume: bool = True, lock: str | None = None, label: str | None = None,
                 **task_options: Any):
        self.func = func
        self.name = name or func.__name__
        self.label = label or (func.__doc__ or self.name).strip().splitlines()[0]
        self.resume = resume
        self.lock = lock
        self.schedule_rule = periodic
        self.__doc__ = func.__doc__
        self.__name__ = func.__name__
        self.__module__ = func.__module__
        job_self = self

        def execute(*args, task=None, **kwargs):
            return _execute(job_self, task, args, kwargs)

        execute.__name__ = self.name
        execute.__module__ = func.__module__
        execute.__doc__ = func.__doc__
        if periodic is not None:
            def validate(timestamp: datetime) -> bool:
                return _validate_in_app(periodic, timestamp)

            self.task: TaskWrapper = huey.periodic_task(validate, context=True, name=self.name,
                                                        **task_options)(execute)
        else:
            self.task = huey.task(context=True, name=self.name, **task_options)(execute)
        if self.name in JOBS and JOBS[self.name].func is not func:
            raise ValueError(f"Two jobs are named {self.name!r}; give one a name=.")
        JOBS[self.name] = self

    def __call__(self, *args: Any, **kwargs: Any):
        """Queue a run (sent when the caller's transaction commits) and return its JobRun."""
        return self.schedule(args, kwargs)

    def schedule(self, args: tuple | list = (), kwargs: dict | None = None, *, delay: float | None = None,
                 eta: datetime | None = None, task_id: str | None = None):
        """Queue a run to start no earlier than `delay` seconds or `eta` (aware) from now."""
        kwargs = dict(kwargs or {})
        options: dict[str, Any] = {}
        if delay is not None:
            options["delay"] = delay
        if eta is not None:
            options["eta"] = eta
        if task_id is not None:
            options["id"] = task_id
        task = self.task.s(*args, **kwargs, **options)
        session = db.session()
        was_open = session.in_transaction()
        run = runs.record_queued(task.id, self.name, list(args), kwargs, periodic=self.schedule_rule is not None)
        session.info.setdefault(_PENDING_KEY, []).append(task)
        if not was_open:
            session.commit()
        return run

    def call_local(self, *args: Any, **kwargs: Any) -> Any:
        """Run the function here and now, unrecorded (the foreground `crm` commands use this)."""
        return self.func(*args, **kwargs)


def job(name: str | None = None, *, resume: bool = True, lock: str | None = None,
        label: str | None = None, **task_options: Any) -> Callable[[Callable], Job]:
    """Decorate a function as a job: Huey's task(**task_options) plus a recorded run in an app context.

    resume: run it again when its worker died mid-run (default). lock: a Huey lock name held while
    it runs; a second run waits its turn (is retried until the lock is free).
    """
    def decorator(func: Callable) -> Job:
        return Job(func, name=name, resume=resume, lock=lock, label=label, **task_options)

    return decorator


def periodic_job(schedule: Callable[[datetime], bool], name: str | None = None, *, lock: str | None = None,
                 label: str | None = None, **task_options: Any) -> Callable[[Callable], Job]:
    """Decorate a function as a scheduled job: `schedule(utc_datetime)` (e.g. huey.crontab(...))
    says which minutes it runs at; it runs in the app context, may read settings. With `lock`,
    a run that finds the previous one still going is skipped (recorded as such)."""
    def decorator(func: Callable) -> Job:
        return Job(func, name=name, periodic=schedule, resume=False, lock=lock or None, label=label,
                   **task_options)

    return decorator


def _validate_in_app(schedule: Callable[[datetime], bool], timestamp: datetime) -> bool:
    try:
        if has_app_context() or _state.app is None:
            return bool(schedule(timestamp))
        with _state.app.app_context():
            try:
                return bool(schedule(timestamp))
            finally:
                db.session.remove()
    except Exception:  # noqa: BLE001 - a broken schedule must not stop the scheduler
        log.exception("Schedule check failed")
        return False


# -- running ----------------------------------------------------------------------------------

def _execute(job: Job, task: Any, args: tuple, kwargs: dict) -> Any:
    app = worker_app()
    pushed = None
    if not has_app_context():
        pushed = app.app_context()
        pushed.push()
    with _in_flight_lock:
        _in_flight.add(task.id)
    try:
        return _execute_in_app(job, task, args, kwargs)
    finally:
        with _in_flight_lock:
            _in_flight.discard(task.id)
        if pushed is not None:
            db.session.remove()
            pushed.pop()


def _execute_in_app(job: Job, task: Any, args: tuple, kwargs: dict) -> Any:
    if job.schedule_rule is not None and runs.ran_lately(job.name, task.id, timedelta(seconds=90)):
        # Every consumer's scheduler queues the slot; with several workers, the first one runs it.
        run = runs.mark_running(task.id, job.name, [], {}, periodic=True)
        runs.mark_finished(run.id, "skipped", error=said(N_("Not run: another worker ran this slot.")))
        db.session.commit()
        return None
    run = runs.mark_running(task.id, job.name, list(args), kwargs, periodic=job.schedule_rule is not None)
    db.session.commit()
    running = _Running(run.id, task)
    token = _current.set(running)
    try:
        if job.lock:
            with job_lock(job.lock):
                result = job.func(*args, **kwargs)
        else:
            result = job.func(*args, **kwargs)
    except TaskLockedException:
        # Another run holds the lock this one needs: a scheduled job skips this slot, any
        # other waits its turn (Huey tries it again shortly, without using up a retry).
        db.session.rollback()
        if job.schedule_rule is not None:
            runs.mark_finished(running.run_id, "skipped", error=said(N_("Not run: the previous run was still going.")))
            db.session.commit()
            return None
        runs.mark_finished(running.run_id, "queued", phase=N_("waiting for its turn"), started_at=None)
        db.session.commit()
        raise RetryTask(delay=_state.lock_wait)
    except RetryTask:
        db.session.rollback()
        runs.mark_finished(running.run_id, "queued", started_at=None)
        db.session.commit()
        raise
    except (StaleJob, NotFound) as error:
        db.session.rollback()
        reason = _words(error) or type(error).__name__
        runs.mark_finished(running.run_id, "failed", error=said(N_("Not done: %(reason)s"), reason=reason))
        db.session.commit()
        log.warning("Job %s (%s) dropped: %s", job.name, task.id, reason)
        return None
    except Exception as error:
        db.session.rollback()
        final = not task.retries
        # The exception's type stays as Python names it; its words are the reader's when it has a key.
        reason = Said("%(type)s: %(error)s", {"type": type(error).__name__, "error": _words(error)})
        if final:
            runs.mark_finished(running.run_id, "failed", error=reason)
        else:
            runs.mark_finished(running.run_id, "queued", error=said(
                N_("%(reason)s (will retry; %(retries)s retries left)"), reason=reason, retries=task.retries))
        db.session.commit()
        raise
    except BaseException:
        # KeyboardInterrupt from a consumer told to stop now: leave the row to on_interrupted.
        db.session.rollback()
        raise
    finally:
        _current.reset(token)
    runs.mark_finished(running.run_id, "done", result=result if isinstance(result, str) else None)
    db.session.commit()
    return result


def _words(error: BaseException) -> str:
    """An exception's message, a Said (its key and values kept) when it was raised with one."""
    if len(error.args) == 1 and isinstance(error.args[0], Said):
        return error.args[0]
    return str(error)


def current_run_id() -> int | None:
    """Return the job_runs id of the job running in this thread, or None outside a job."""
    running = _current.get()
    return running.run_id if running else None


def set_progress(done: int | None, total: int | None = None, phase: str | None = None, *,
                 force: bool = False) -> None:
    """Report the running job's progress (done of total, in a phase) for the jobs page.

    Writes at most every half second unless the phase changes or `force`; it commits the
    job's session, so call it where the work so far may be committed (e.g. after a batch).
    Outside a job it does nothing.
    """
    running = _current.get()
    if running is None:
        return
    now = time.monotonic()
    if not force and phase == running.last_phase and now - running.last_write < _state.progress_interval:
        return
    running.last_write = now
    running.last_phase = phase
    runs.set_progress(running.run_id, done, total, phase)
    db.session.commit()


@contextmanager
def job_lock(name: str):
    """Hold a Huey lock (raises huey TaskLockedException when another holds it); recorded on the
    running job so the lock is released should its worker die."""
    lock = huey.lock_task(name)
    running = _current.get()
    lock.acquire()
    if running is not None:
        running.locks.append(name)
        runs.set_locks(running.run_id, running.locks)
        db.session.commit()
    try:
        yield lock
    finally:
        lock.release()
        if running is not None and name in running.locks:
            running.locks.remove(name)


# -- interrupted runs -------------------------------------------------------------------------

def in_flight() -> set[str]:
    with _in_flight_lock:
        return set(_in_flight)


def stale_after() -> timedelta:
    seconds = 600
    if has_app_context():
        seconds = int(current_app.config.get("JOBS_STALE_AFTER", seconds))
    return timedelta(seconds=seconds)


def recover_interrupted() -> list[int]:
    """Mark the runs whose worker is gone as interrupted, release their locks and queue again
    those that resume. Returns the ids of the runs queued again. Needs an app context."""
    queued_again = []
    for run in runs.orphans(stale_after=stale_after(), in_flight=in_flight()):
        if run.locks:
            huey.flush_locks(*run.locks)
        job = JOBS.get(run.name)
        resumable = job is not None and job.resume and run.payload is not None
        runs.mark_finished(run.id, "interrupted", error=said(
            N_("Its worker (%(worker)s) stopped before it finished; it resumes.") if resumable
            else N_("Its worker (%(worker)s) stopped before it finished."), worker=run.worker))
        if resumable:
            payload = run.payload or {}
            task = job.task.s(*payload.get("args", []), id=run.task_id, **payload.get("kwargs", {}))
            runs.mark_finished(run.id, "queued", error=said(N_("Resumed after its worker (%(worker)s) stopped."), worker=run.worker),
                               started_at=None)
            db.session.info.setdefault(_PENDING_KEY, []).append(task)
            queued_again.append(run.id)
    db.session.commit()
    return queued_again


@huey.signal(S.SIGNAL_INTERRUPTED)
def _on_interrupted(_signal, task, *_args, **_kwargs):
    """The consumer stopped with this task still running: record it and queue it again now."""
    app = _state.app
    if app is None:
        return
    with app.app_context():
        try:
            run = runs.by_task_id(task.id)
            job = JOBS.get(run.name) if run else None
            if run is None or run.status != "running":
                return
            if run.locks:
                huey.flush_locks(*run.locks)
            if job is not None and job.resume:
                runs.mark_finished(run.id, "queued", error=said(N_("Interrupted by a worker shutdown; it resumes.")),
                                   started_at=None)
                db.session.info.setdefault(_PENDING_KEY, []).append(task)
            else:
                runs.mark_finished(run.id, "interrupted", error=said(N_("Interrupted by a worker shutdown.")))
            db.session.commit()
        except Exception:  # noqa: BLE001 - shutting down; the next worker's recovery catches up
            db.session.rollback()
            log.exception("Could not record the interruption of %s", task.id)
        finally:
            db.session.remove()


def retry(run_id: int):
    """Queue a failed or interrupted run again with the same arguments; returns the new JobRun."""
    from crm.models import JobRun
    from crm.services.shared.errors import ValidationError

    run = db.session.get(JobRun, run_id)
    if run is None:
        raise NotFound(said(N_("There is no job run #%(id)s."), id=str(run_id)))
    if run.status not in ("failed", "interrupted", "skipped"):
        raise ValidationError(N_("Only a failed, interrupted or skipped job can be retried."))
    job = JOBS.get(run.name)
    if job is None:
        raise ValidationError(said(N_("This version of the app has no job named %(name)s."), name=run.name))
    if run.periodic:
        return job.schedule((), {})
    if run.payload is None:
        raise ValidationError(N_("This job's arguments were not kept, so it cannot be retried from here."))
    return job.schedule(run.payload.get("args", []), run.payload.get("kwargs", {}))
