"""The import job: a file uploaded on the Imports page, imported by the worker with its progress."""
from __future__ import annotations

from huey.exceptions import TaskLockedException
from sqlalchemy import update

from crm.extensions import db
from crm.models import ImportRun
from crm.services.jobs import StaleJob, job, job_lock, set_progress
from crm.services.orders.importing import run as importing
from crm.services.shared.said import N_, said

# The phases as the jobs page names them (an English msgid: shown in the reader's language).
PHASES = {"reading": N_("reading the file"), "recording": N_("recording"), "refreshing": N_("refreshing")}


@job(name="imports.run", label="Import a file")
def import_file(run_id: int) -> None:
    """Import an uploaded file"""
    run = db.session.get(ImportRun, run_id)
    if run is None:
        raise StaleJob(said(N_("import #%(id)s no longer exists"), id=str(run_id)))
    if run.status not in ("queued", "running"):
        return  # ended already (a resumed message arriving after the run finished)
    digest = (run.options or {}).get("sha256") or run.upload_path or str(run_id)
    batch = _batch_size()
    try:
        with job_lock(f"import:{digest}"):
            importing.run_queued(run_id, report=_report, batch_size=batch)
    except TaskLockedException:
        # The same file is being imported: wait for it (the queue tries again shortly).
        db.session.rollback()
        db.session.execute(update(ImportRun).where(ImportRun.id == run_id).values(phase="waiting")
                           .execution_options(synchronize_session=False))
        db.session.commit()
        raise
    except (importing.UploadGone, LookupError) as error:
        raise StaleJob(*error.args[:1] or (str(error),)) from error


def _report(phase: str, done: int, total: int | None, counts: dict) -> None:
    set_progress(done, total, PHASES.get(phase, phase), force=phase != "recording")


def _batch_size() -> int:
    from flask import current_app

    return int(current_app.config.get("IMPORT_BATCH_SIZE") or importing.BATCH)
