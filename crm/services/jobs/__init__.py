"""The job queue: Huey, with each run recorded in job_runs and run inside the app.

    from crm.services.jobs import job, periodic_job, set_progress, huey

Storage: SqliteHuey-style SQLite file in the instance folder by default (JOBS_SQLITE_PATH),
Redis when REDIS_URL (CRM_REDIS_URL) is set; `init_app(app)` (called by create_app) points the
one `huey` at it. Modules defining jobs are listed in registry.TASK_MODULES. `crm worker` runs
the consumer; `crm worker --burst` runs what is due and exits.
"""
from __future__ import annotations

from crm.services.jobs.core import (
    JOBS,
    Job,
    StaleJob,
    current_run_id,
    init_app,
    job,
    job_lock,
    periodic_job,
    recover_interrupted,
    retry,
    set_progress,
)
from crm.services.jobs.queue import NotConfigured, huey

__all__ = [
    "JOBS", "Job", "NotConfigured", "StaleJob", "current_run_id", "huey", "init_app", "job", "job_lock",
    "periodic_job", "recover_interrupted", "retry", "set_progress",
]
