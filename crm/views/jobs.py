"""Settings → Jobs: what the background worker did and does (admins), retry a failed job; the
schedule settings shown on Settings → Rules; failed schedules on the admins' dashboard."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from crm.extensions import db
from crm.models import JOB_STATUSES
from crm.services import jobs
from crm.services.jobs import maintenance, runs
from crm.services.shared.errors import NotFound, ValidationError
from crm.views.access import access, can
from crm.views.forms import translated

bp = Blueprint("jobs", __name__, url_prefix="/settings/jobs")

PAGE = 100
SCHEDULE_FIELDS = {"refresh_time": _l("Nightly refresh at"), "backups_keep": _l("Backups to keep")}
# The jobs' labels (the service names them in English) and statuses, in the reader's language.
JOB_LABELS = {
    "Daily backup": _l("Daily backup"), "Demo contacts": _l("Demo contacts"), "Import a file": _l("Import a file"),
    "Leftover-upload cleanup": _l("Leftover-upload cleanup"), "Nightly refresh": _l("Nightly refresh"),
    "Record segment sizes": _l("Record segment sizes"), "Refresh everyone": _l("Refresh everyone"),
    "Read the bounce mailbox": _l("Read the bounce mailbox"),
    "Retention emails (flows)": _l("Retention emails (flows)"), "Send a newsletter": _l("Send a newsletter"),
    "Shop-wide figures and predictions": _l("Shop-wide figures and predictions"),
}
JOB_STATUS_WORDS = {"queued": _l("queued"), "running": _l("running"), "done": _l("done"), "failed": _l("failed"),
                    "interrupted": _l("interrupted"), "skipped": _l("skipped")}


@bp.app_template_global("job_label")
def job_label(label: str | None) -> str:
    return str(JOB_LABELS.get(label or "", label or ""))


@bp.app_template_global("job_phase")
def job_phase(phase: str | None) -> str:
    """A running job's phase (stored as the English msgid the job marked it with) in the reader's words."""
    return _(phase) if phase else ""


@bp.app_template_global("job_status")
def job_status(status: str) -> str:
    return str(JOB_STATUS_WORDS.get(status, status))


@bp.route("/")
@access("admin")
def index():
    """List the jobs, newest first: queued, running, done and failed, with times, progress and errors."""
    status = request.args.get("status")
    if status not in JOB_STATUSES:
        status = None
    return render_template("jobs/index.html", runs=runs.recent(PAGE, status), status=status,
                           counts=runs.counts_by_status(), statuses=JOB_STATUSES, labels=_labels())


@bp.route("/<int:job_id>/retry", methods=["POST"])
@access("admin")
def retry(job_id: int):
    """Queue a failed, interrupted or skipped job again with the same arguments."""
    try:
        again = jobs.retry(job_id)
    except NotFound:
        abort(404)
    except ValidationError as error:
        flash(translated(error.message), "error")
        return redirect(url_for("jobs.index"))
    db.session.commit()
    flash(_("Job #%(id)s is queued again as #%(again)s.", id=job_id, again=again.id), "success")
    return redirect(url_for("jobs.index"))


@bp.route("/schedules", methods=["POST"])
@access("admin")
def schedules():
    """Save the schedule settings (nightly refresh time, backups kept) from Settings → Rules."""
    values = {key: request.form.get(key, "") for key in SCHEDULE_FIELDS}
    try:
        maintenance.save(values, current_user.id)
    except ValidationError as error:
        db.session.rollback()
        for field, reason in error.fields.items():
            flash(_("%(field)s: %(reason)s", field=SCHEDULE_FIELDS.get(field, field), reason=translated(reason)), "error")
        return redirect(url_for("rules.index") + "#schedules")
    db.session.commit()
    flash(_("Schedules saved."), "success")
    return redirect(url_for("rules.index") + "#schedules")


def _labels() -> dict[str, str]:
    return {name: job_label(job.label) for name, job in jobs.JOBS.items() if job.label}


@bp.app_context_processor
def _job_helpers():
    def schedules_panel():
        return {"settings": maintenance.load(), "schedules": maintenance.schedule_status()}

    def failed_schedules():
        return maintenance.failed_schedules() if can("admin") else []

    return {"schedules_panel": schedules_panel, "failed_schedules": failed_schedules}
