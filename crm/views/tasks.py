"""To-dos: my list (overdue, today, upcoming), all to-dos with filters, and working one in place."""
from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_date, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import Optional

from crm.extensions import db, htmx
from crm.models import SENTIMENTS, TASK_STATUSES, Task, utcnow
from crm.services.people import contacts as contact_service
from crm.services.people import tasks as task_service
from crm.services.shared.bounds import parse_id
from crm.services.shared.errors import ValidationError
from crm.services.shop.clock import shop_today
from crm.views import contact_forms
from crm.views.access import access, can
from crm.views.forms import choices, translated
from crm.views.params import date_arg_checked

bp = Blueprint("tasks", __name__)


class CompleteForm(FlaskForm):
    outcome = StringField(_l("Outcome"))
    sentiment = SelectField(_l("Sentiment"), choices=choices([("", "—"), *[(s, s.capitalize()) for s in SENTIMENTS]]),
                            validate_choice=False)  # the service names a bad one


class SnoozeForm(FlaskForm):
    until = DateField(_l("Until"), validators=[Optional()])


class ReassignForm(FlaskForm):
    assignee_id = IntegerField(_l("Assign to"), validators=[Optional()])


class DismissForm(FlaskForm):
    reason = StringField(_l("Reason"))


class NewTaskForm(FlaskForm):
    title = StringField(_l("What needs doing"))
    kind = SelectField(_l("Kind"), choices=choices((k, _l(task_service.KIND_LABELS[k])) for k in task_service.MANUAL_KINDS),
                       validate_choice=False)
    due_at = DateField(_l("Due"), validators=[Optional()])
    assignee_id = IntegerField(_l("Assign to"), validators=[Optional()])
    reason = TextAreaField(_l("Notes"))


@bp.app_template_global()
def task_kind_label(kind: str) -> str:
    return _(task_service.KIND_LABELS[kind]) if kind in task_service.KIND_LABELS else kind.replace("_", " ").capitalize()


# A user's role in brackets after their name, lower case as it has always been shown.
ROLE_LABELS = {"admin": _l("admin"), "sales": _l("sales"), "support": _l("support"), "viewer": _l("viewer")}


@bp.app_template_global()
def role_label(role: str) -> str:
    return str(ROLE_LABELS.get(role, role))


@bp.app_template_global()
def task_status_label(status: str) -> str:
    """A to-do's status, lower case ("done", "afgerond")."""
    return contact_forms.task_status_label(status)


@bp.app_template_global("translated")
def translated_message(message):
    """A service's reason (marked with N_) in the reader's language."""
    return translated(message)


@bp.app_template_global()
def shop_date(days_ahead: int = 0) -> date:
    """Return the shop's date today (or some days ahead), for due labels and date pickers."""
    return shop_today(utcnow()) + timedelta(days=days_ahead)


@bp.app_template_global()
def task_overdue(task: Task, today: date) -> bool:
    """Whether a to-do's row shows it overdue: the service's rule (tasks.is_overdue)."""
    return task_service.is_overdue(task, today)


@bp.app_template_global()
def task_assignees():
    """Return the people to-dos can be handed to (for the assignee selects)."""
    return task_service.assignable_users()


@bp.app_template_global()
def open_tasks_for(contact):
    """Return a contact's open to-dos (for tasks/_for_contact.html on the contact page)."""
    return task_service.open_tasks_for(contact.id)


def _first_errors(form: FlaskForm) -> dict[str, str]:
    return {name: errors[0] for name, errors in form.errors.items() if errors}


def _row(task: Task, **context):
    return render_template("tasks/_row.html", task=task, assignees=task_service.assignable_users(),
                           today=shop_today(utcnow()), can_write=can("write"),
                           bulk=can("write") and request.form.get("bulk") == "1", **context)


def _filters(args=None) -> tuple[task_service.TaskFilters, dict[str, str]]:
    """Read the list filters from the query string (or a form); a bad value is named and left out."""
    args, errors = request.args if args is None else args, {}
    status = args.get("status", "open")
    if status not in (*TASK_STATUSES, "any"):
        errors["status"], status = _("Choose a status from the list."), "open"
    kind = args.get("kind") or None
    if kind is not None and kind not in task_service.KIND_LABELS:
        errors["kind"], kind = _("Choose a kind from the list."), None
    assignee = args.get("assignee") or None
    if assignee not in (None, "none") and parse_id(assignee) is None:
        errors["assignee"], assignee = _("Choose someone from the list."), None
    days = {}
    for name in ("due_from", "due_to"):
        days[name], reason = date_arg_checked(name)
        if reason:
            errors[name] = translated(reason)
    filters = task_service.TaskFilters(status=None if status == "any" else status, kind=kind,
                                       assignee=assignee, **days)
    return filters, errors


@bp.route("/tasks")
@access("read")
def index():
    """Show my open to-dos by when they are due, or all to-dos with filters."""
    view = request.args.get("view") or ("mine" if can("write") else "all")
    now = utcnow()
    # Keyset pages: ?after=<cursor> for the next page, ?before=<cursor> for the one before.
    cursors = {"after": request.args.get("after"), "before": request.args.get("before"),
               "per_page": current_app.config["PAGE_SIZE"]}
    # Rows carry their four forms only once a person opens one (tasks.action_form).
    context = {"view": view, "assignees": task_service.assignable_users(), "today": shop_today(now),
               "can_write": can("write"), "kinds": task_service.KIND_LABELS, "statuses": TASK_STATUSES,
               "lazy_forms": True}
    if view == "mine":
        context["mine"] = task_service.my_tasks(current_user.id, now, **cursors)
    else:
        context["view"] = "all"
        filters, errors = _filters()
        context.update(filters=filters, filter_errors=errors, args=request.args,
                       page=task_service.task_page(filters, **cursors))
    if htmx.fragment:
        return render_template("tasks/_list.html", **context)
    return render_template("tasks/index.html", **context)


@bp.route("/tasks/<int:task_id>/<any(complete, snooze, reassign, dismiss):action>")
@access("write")
def action_form(task_id: int, action: str):
    """The form of one action on a to-do's row, fetched when a person opens it on /tasks (htmx);
    without htmx, the to-do's own page with every form."""
    task = db.get_or_404(Task, task_id)
    if not htmx.fragment:
        return redirect(url_for("tasks.detail", task_id=task.id))
    return render_template("tasks/_action_form.html", task=task, action=action,
                           assignees=task_service.assignable_users(), errors={},
                           bulk=request.args.get("bulk") == "1")


@bp.route("/tasks/<int:task_id>")
@access("read")
def detail(task_id: int):
    """Show one to-do, with what can be done with it."""
    task = db.get_or_404(Task, task_id)
    return render_template("tasks/detail.html", task=task, assignees=task_service.assignable_users(),
                           today=shop_today(utcnow()), can_write=can("write"))


def _act(task_id: int, form_class: type[FlaskForm], action: str, work: Callable[[Task, FlaskForm], str]):
    """Validate the action's form, let the service act, commit, and answer with the row in its new
    state (htmx) or a redirect with a flash; errors come back on the row, its form open."""
    task = db.get_or_404(Task, task_id)
    form = form_class()
    errors = {} if form.validate() else _first_errors(form)
    notice = None
    if not errors:
        try:
            notice = work(task, form)
        except ValidationError as error:
            db.session.rollback()
            task = db.get_or_404(Task, task_id)
            errors = {name: translated(reason) for name, reason in error.fields.items()} or {
                "form": translated(error.message)}
        else:
            db.session.commit()
    if htmx.fragment:
        return _row(task, notice=notice, errors=errors, open_form=action if errors else None)
    if errors:
        flash(" ".join(errors.values()), "error")
    else:
        flash(notice, "success")
    return redirect(request.referrer or url_for("tasks.index"))


@bp.route("/tasks/<int:task_id>/complete", methods=["POST"])
@access("write")
def complete(task_id: int):
    """Mark a to-do done with its outcome; the outcome goes on the contact's timeline."""
    logged = []

    def work(task, form):
        logged.append(task_service.complete_task(task, form.outcome.data, current_user.id,
                                                 sentiment=form.sentiment.data or None))
        return _("Done: %(outcome)s", outcome=task.outcome)
    response = _act(task_id, CompleteForm, "complete", work)
    if logged and htmx.fragment and _on_contact_page(logged[0].contact_id):
        # The outcome goes on top of the timeline beside the to-do, without a reload.
        from crm.services.people import queries as contact_queries
        from crm.views.contacts import _contact_helpers

        item = contact_queries.timeline_item("interaction", logged[0])
        response += render_template("tasks/_timeline_oob.html", item=item, contact_id=logged[0].contact_id,
                                    **_contact_helpers())
    return response


def _on_contact_page(contact_id: int) -> bool:
    """Whether the htmx request came from this contact's page (which shows the timeline)."""
    from urllib.parse import urlsplit

    return urlsplit(request.headers.get("HX-Current-URL", "")).path.rstrip("/") == f"/contacts/{contact_id}"


@bp.route("/tasks/<int:task_id>/snooze", methods=["POST"])
@access("write")
def snooze(task_id: int):
    """Hide a to-do until a later day."""
    def work(task, form):
        if form.until.data is None:
            raise ValidationError(fields={"until": _("Pick the day it should come back.")})
        task_service.snooze_task(task, form.until.data, current_user.id)
        return _("Snoozed until %(day)s", day=format_date(form.until.data, "d MMM y"))
    return _act(task_id, SnoozeForm, "snooze", work)


@bp.route("/tasks/<int:task_id>/reassign", methods=["POST"])
@access("write")
def reassign(task_id: int):
    """Hand a to-do to someone else."""
    def work(task, form):
        user = task_service.reassign_task(task, form.assignee_id.data, current_user.id)
        return _("Now with %(name)s", name=user.name)
    return _act(task_id, ReassignForm, "reassign", work)


@bp.route("/tasks/<int:task_id>/dismiss", methods=["POST"])
@access("write")
def dismiss(task_id: int):
    """Close a to-do that will not be done, with the reason."""
    def work(task, form):
        task_service.dismiss_task(task, form.reason.data, current_user.id)
        return _("Dismissed: %(reason)s", reason=task.close_reason)
    return _act(task_id, DismissForm, "dismiss", work)


def _bulk_text(result: task_service.BulkResult) -> str:
    """What a bulk action did, in the reader's language (str(result) in English)."""
    count = f"{result.changed:,}"
    text = {
        "complete": ngettext("%(count)s to-do marked done", "%(count)s to-dos marked done", result.changed, count=count),
        "dismiss": ngettext("%(count)s to-do dismissed", "%(count)s to-dos dismissed", result.changed, count=count),
        "reassign": ngettext("%(count)s to-do reassigned", "%(count)s to-dos reassigned", result.changed, count=count),
        "snooze": ngettext("%(count)s to-do snoozed", "%(count)s to-dos snoozed", result.changed, count=count),
    }[result.action]
    if result.skipped:
        text += ngettext("; %(count)s was no longer open", "; %(count)s were no longer open", result.skipped,
                         count=f"{result.skipped:,}")
    return text + "."


@bp.route("/tasks/bulk", methods=["POST"])
@access("write")
def bulk():
    """Do one action to the ticked to-dos, or to every open to-do matching the list's filters."""
    form = request.form
    action = form.get("action", "")
    scope = form.get("scope", "ticked")
    if scope == "matching":
        if form.get("view") == "mine":
            filters = task_service.TaskFilters(assignee=current_user.id)
        else:
            filters, _errors = _filters(form)
        ids = task_service.bulk_task_ids(filters=filters)
    else:
        ids = task_service.bulk_task_ids([int(i) for i in form.getlist("task_id") if i.isdigit() and len(i) < 10])
    value = {"complete": form.get("outcome") or form.get("reason"), "dismiss": form.get("reason"),
             "reassign": form.get("assignee_id"), "snooze": form.get("until")}.get(action)
    try:
        result = task_service.bulk_act(action, ids, value, current_user.id)
    except ValidationError as error:
        db.session.rollback()
        flash(" ".join(translated(reason) for reason in error.fields.values()) or translated(error.message), "error")
    else:
        db.session.commit()
        flash(_bulk_text(result), "success")
    back = form.get("back", "")
    return redirect(back if back.startswith("/tasks") and not back.startswith("//") else url_for("tasks.index"))


@bp.route("/contacts/<int:contact_id>/tasks", methods=["POST"])
@access("write")
def create(contact_id: int):
    """Add a to-do for a contact by hand (the form in tasks/_new.html)."""
    contact = contact_service.writable_contact(contact_id)
    form = NewTaskForm()
    errors = {} if form.validate() else _first_errors(form)
    created = None
    if not errors:
        try:
            created = task_service.create_task(contact, {
                "title": form.title.data, "kind": form.kind.data, "due_at": form.due_at.data,
                "assignee_id": form.assignee_id.data, "reason": form.reason.data}, current_user.id)
        except ValidationError as error:
            db.session.rollback()
            contact = contact_service.writable_contact(contact_id)
            errors = {name: translated(reason) for name, reason in error.fields.items()}
        else:
            db.session.commit()
    if htmx.fragment:
        values = {} if created else request.form
        form_part = render_template("tasks/_new.html", contact=contact, created=created, errors=errors, values=values)
        if not created:
            return form_part
        # The open to-dos above the form gain the new one without a reload (an out-of-band swap).
        return form_part + render_template("tasks/_for_contact.html", contact=contact, tasks_oob=True)
    if errors:
        flash(" ".join(errors.values()), "error")
    else:
        flash(_("To-do added: %(title)s", title=created.title), "success")
    return redirect(request.referrer or url_for("tasks.index"))
