"""Imports: upload a file, preview it as it will be read, run it, and the history of runs.

The upload waits in instance/uploads/<random> between the preview and the run. A run is queued
and done by the worker (crm.services.orders.importing.jobs); its page shows the progress live. A dry run
happens inside the request. Files bigger than MAX_CONTENT_LENGTH go through `crm import`.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import secrets
from datetime import timedelta
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import select
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from crm.extensions import db, htmx
from crm.models import ImportRun, JobRun, User
from crm.services import shop
from crm.services.orders.importing import jobs as import_jobs
from crm.services.orders.importing import run as importing
from crm.services.orders.importing.generic import GENERIC_FIELDS
from crm.services.orders.importing.records import Rejected
from crm.services.shared.csv_safe import csv_writer_rows
from crm.services.shared.errors import ValidationError
from crm.services.shared.uploads import forget_old_uploads
from crm.views.access import access
from crm.views.forms import choices, translated
from crm.views.import_text import kind_labels as _kind_labels
from crm.views.import_text import reason_text, run_state_label, summary_lines
from crm.views.params import id_arg

bp = Blueprint("imports", __name__, url_prefix="/imports")

PAGE = 50
PREVIEW_ROWS = 20
UPLOAD_MAX_AGE = 24 * 3600
TOKEN_LENGTH = 32


class UploadForm(FlaskForm):
    kind = SelectField(_l("What the file holds"), choices=choices((kind, _l(label)) for kind, label in importing.KIND_LABELS.items()))
    fmt = SelectField(_l("Format"), choices=choices([("", _l("From the file name")), ("csv", "CSV"), ("tsv", "TSV"),
                                                 ("json", "JSON"), ("ndjson", "NDJSON")]), default="")
    file = FileField(_l("File"), validators=[FileRequired(_l("Choose a file to import."))])
    source = StringField(_l("Where the orders come from"), validators=[Optional(), Length(max=40)],
                         description=_l("For “any orders file”: a short name such as etsy (default: import)."))
    mapping = TextAreaField(_l("Column mapping"), validators=[Optional(), Length(max=4000)],
                            description=_l("For “any orders file”: one FILECOL=field per line, e.g. Order Ref=order_id. "
                                           "Fields: %(fields)s.", fields=", ".join(GENERIC_FIELDS)))


class RunForm(FlaskForm):
    dry_run = BooleanField(_l("Dry run: check everything and report, store nothing"))


@bp.context_processor
def _import_helpers():
    return {"run_state_label": run_state_label}


def _uploads() -> Path:
    path = Path(current_app.instance_path) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _upload_paths(token: str) -> tuple[Path, Path]:
    if len(token) != TOKEN_LENGTH or not all(c in "0123456789abcdef" for c in token):
        abort(404)
    folder = _uploads()
    return folder / token, folder / f"{token}.json"


def _load_upload(token: str) -> tuple[Path, dict]:
    """The stored file and what was chosen for it; 404 unless it is this user's upload."""
    data_path, meta_path = _upload_paths(token)
    if not data_path.exists() or not meta_path.exists():
        abort(404)
    meta = json.loads(meta_path.read_text())
    if meta.get("user_id") != current_user.id:
        abort(404)
    return data_path, meta


def _is_own_upload(token: str) -> bool:
    try:
        _load_upload(token)
    except HTTPException:
        return False
    return True


def _forget_upload(token: str) -> None:
    for path in _upload_paths(token):
        path.unlink(missing_ok=True)


def _forget_old_uploads() -> None:
    forget_old_uploads(_uploads(), UPLOAD_MAX_AGE, keep=importing.active_upload_paths())


def _refusal(error: Exception) -> str:
    """Why an upload was refused, in the reader's language (the service's Said or msgid)."""
    return translated(error.args[0] if error.args and isinstance(error.args[0], str) else str(error))


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(error):
    limit_mb = (current_app.config.get("MAX_CONTENT_LENGTH") or 0) / (1024 * 1024)
    error.description = _("The file is larger than the upload limit (%(limit)s MB). Import big files on the "
                          "server with the command line: crm import KIND FILE.", limit=f"{limit_mb:g}")
    return render_template("errors/error.html", error=error), 413


@bp.route("/", methods=["GET", "POST"])
@access("read", post="write")
def index():
    """Show the upload form and the history of import runs; an upload goes on to the preview."""
    form = UploadForm()
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            token = _store_upload(form)
            if token:
                return redirect(url_for("imports.preview", token=token))
        status = 400
    before = id_arg("before")
    query = select(ImportRun, User.name).outerjoin(User, User.id == ImportRun.user_id) \
        .order_by(ImportRun.id.desc()).limit(PAGE + 1)
    if before:
        query = query.where(ImportRun.id < before)
    runs = db.session.execute(query).all()
    # Runs not ended yet say whether they wait, run or were interrupted.
    states = {run.id: _progress(run)["state"] for run, _by in runs[:PAGE] if run.status in ("queued", "running")}
    return render_template(
        "imports/index.html", form=form, runs=runs[:PAGE], older=runs[PAGE - 1][0].id if len(runs) > PAGE else None,
        labels=_kind_labels(), summary=summary_lines, states=states,
    ), status


def _store_upload(form: UploadForm) -> str | None:
    """Keep the upload for the preview and return its token; None (errors on the form) when refused."""
    upload = form.file.data
    filename = Path(upload.filename or "upload").name[:300]
    reason = importing.not_text_reason(upload.stream.read(8192))
    if reason:
        form.file.errors.append(translated(reason))
        return None
    upload.stream.seek(0)
    try:
        fmt = importing.resolve_format(form.kind.data, filename, form.fmt.data or None)
        mapping = importing.parse_mapping((form.mapping.data or "").splitlines())
        if form.kind.data != importing.GENERIC_KIND and (mapping or (form.source.data or "").strip()):
            raise importing.ImportRefused(_("A column mapping and a source apply to “any orders file” only."))
    except importing.ImportRefused as error:
        form.form_errors.append(_refusal(error))
        return None
    _forget_old_uploads()
    token = secrets.token_hex(TOKEN_LENGTH // 2)
    data_path, meta_path = _upload_paths(token)
    upload.save(data_path)
    meta_path.write_text(json.dumps({
        "user_id": current_user.id, "kind": form.kind.data, "fmt": fmt, "filename": filename,
        "mapping": mapping, "source": (form.source.data or "").strip() or None, "sha256": _digest(data_path),
    }))
    return token


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _reader(meta: dict, handle):
    return importing.open_reader(meta["kind"], handle, meta["filename"], fmt=meta["fmt"],
                                 mapping=meta["mapping"] or None, source=meta["source"])


@bp.route("/upload/<token>", methods=["GET"])
@access("write")
def preview(token: str):
    """Show the first rows of an upload exactly as the import will read them."""
    data_path, meta = _load_upload(token)
    try:
        with data_path.open("rb") as handle:
            reader = _reader(meta, handle)
            items = list(itertools.islice(reader, PREVIEW_ROWS))
            reader.close()
    except importing.ImportRefused as error:
        flash(_refusal(error), "error")
        _forget_upload(token)
        return redirect(url_for("imports.index"))
    return render_template(
        "imports/preview.html", token=token, meta=meta, label=_kind_labels()[meta["kind"]],
        records=[i for i in items if not isinstance(i, Rejected)],
        rejected=[Rejected(i.line, reason_text(i.reason), i.raw) for i in items if isinstance(i, Rejected)],
        is_orders=importing.is_order_kind(meta["kind"]), form=RunForm(), size=data_path.stat().st_size,
        shown=len(items), limit=PREVIEW_ROWS,
    )


@bp.route("/upload/<token>/run", methods=["POST"])
@access("write")
def run(token: str):
    """Queue the import of an upload and show its run page (a dry run happens here and now)."""
    data_path, meta = _load_upload(token)
    form = RunForm()
    if not form.validate_on_submit():
        abort(400)
    if not form.dry_run.data:
        # The file stays in instance/uploads under a name of its own until the worker is done with it.
        queued_path = data_path.with_name(f"{token}.queued")
        data_path.rename(queued_path)
        result = importing.queue_file(meta["kind"], queued_path, meta["filename"], fmt=meta["fmt"],
                                      mapping=meta["mapping"] or None, source=meta["source"],
                                      user_id=current_user.id, digest=meta.get("sha256"))
        result.job_run_id = import_jobs.import_file(result.id).id
        db.session.commit()
        _forget_upload(token)
        flash(_("The import is queued; this page follows it."), "success")
        return redirect(url_for("imports.show", run_id=result.id))
    with data_path.open("rb") as handle:
        result = importing.run_import(meta["kind"], handle, meta["filename"], fmt=meta["fmt"],
                                      mapping=meta["mapping"] or None, source=meta["source"],
                                      dry_run=True, user_id=current_user.id)
    flash(_("Dry run finished: nothing was stored."), "error" if result.status == "failed" else "success")
    return redirect(url_for("imports.show", run_id=result.id, upload=token))


@bp.route("/upload/<token>/discard", methods=["POST"])
@access("write")
def discard(token: str):
    """Throw away an upload without importing it."""
    _load_upload(token)
    _forget_upload(token)
    flash(_("The upload was discarded."), "info")
    return redirect(url_for("imports.index"))


def _progress(result: ImportRun) -> dict:
    job = db.session.get(JobRun, result.job_run_id) if result.job_run_id else None
    state = importing.progress_of(result, job, stale_after=timedelta(seconds=current_app.config["JOBS_STALE_AFTER"]))
    headline = state["headline"]
    running = headline.endswith("…") and headline[:-1] in (*importing.PHASE_LABELS.values(), "Running")
    state["headline"] = _(headline[:-1]) + "…" if running else _(headline)
    if state["phase"] in importing.PHASE_LABELS.values():
        state["phase"] = _(state["phase"])
    return state


@bp.route("/<int:run_id>")
@access("read")
def show(run_id: int):
    """Show an import run: its live progress while it waits or runs, then its summary and first rejected rows."""
    result = db.get_or_404(ImportRun, run_id)
    upload = request.args.get("upload")
    if upload and not _is_own_upload(upload):
        upload = None
    return render_template(
        "imports/show.html", run=result, label=_kind_labels().get(result.kind, result.kind),
        summary=summary_lines(result), rejections=[
            Rejected(r.line, reason_text(r.reason), None) for r in importing.first_rejections(result.id, PREVIEW_ROWS)],
        by=db.session.get(User, result.user_id) if result.user_id else None, upload=upload,
        progress=_progress(result), currency_offer=importing.currency_offer(result),
        shop_currency=shop.current().currency,
    )


@bp.route("/<int:run_id>/use-currency", methods=["POST"])
@access("admin")
def use_currency(run_id: int):
    """Set the shop's currency to the one a first import's orders are in (offered on its page)."""
    result = db.get_or_404(ImportRun, run_id)
    code = importing.currency_offer(result)
    if code is None:
        flash(_("This import no longer suggests a currency for the shop."), "info")
        return redirect(url_for("imports.show", run_id=run_id))
    try:
        shop.use_currency(code, current_user.id)
    except ValidationError as error:  # another shop setting needs a fix first: say which
        db.session.rollback()
        flash(_("%(error)s Fix them on Settings → Shop: %(fields)s", error=translated(error.message),
                fields=", ".join(translated(reason) for reason in error.fields.values())), "error")
        return redirect(url_for("imports.show", run_id=run_id))
    db.session.commit()
    flash(_("The shop now counts in %(code)s.", code=code), "success")
    return redirect(url_for("imports.show", run_id=run_id))


@bp.route("/<int:run_id>/progress")
@access("read")
def progress(run_id: int):
    """The progress box of a run, polled by its page; once the run has ended the page reloads."""
    result = db.get_or_404(ImportRun, run_id)
    state = _progress(result)
    response = make_response(render_template("imports/_progress.html", run=result, progress=state))
    if not state["active"] and htmx:
        response.headers["HX-Refresh"] = "true"
    return response


@bp.route("/<int:run_id>/rejections.csv")
@access("read")
def rejections_csv(run_id: int):
    """Download every rejected row of a run: line, reason and the original row (as JSON)."""
    result = db.get_or_404(ImportRun, run_id)

    def generate():
        yield "\ufeff"  # so spreadsheets open it as UTF-8
        yield from csv_writer_rows(importing.rejection_rows(result.id), importing.REJECTION_COLUMNS)

    return Response(stream_with_context(generate()), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="import-{result.id}-rejected.csv"',
    })
