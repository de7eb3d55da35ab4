"""Segments: the list, the builder (live count and first rows as conditions change), a segment's
page (size today and over 90 days, members' spend), duplicate and delete."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from crm.extensions import db, htmx
from crm.services.people import queries as contact_queries
from crm.services.segments import store as segments
from crm.services.segments.definition import (
    EMAIL_STATUSES,
    FIELDS,
    INTERACTION_KINDS,
    TASK_RULES,
    TASK_STATUSES,
    DefinitionError,
    parse,
)
from crm.services.shared.errors import ValidationError
from crm.views import segment_builder
from crm.views.access import access, can
from crm.views.contact_forms import KIND_LABELS, stage_label, task_status_label
from crm.views.forms import translated

bp = Blueprint("segments", __name__, url_prefix="/segments")


def _segment_or_404(segment_id: int):
    segment = segments.get(segment_id)
    if segment is None:
        abort(404)
    return segment


@bp.context_processor
def _segment_helpers():
    from crm.views.tasks import task_kind_label

    return {"translated": translated, "stage_label": stage_label, "task_status_label": task_status_label,
            "task_kind_label": task_kind_label, "kind_label": lambda kind: str(KIND_LABELS.get(kind, kind)),
            "value_label": segment_builder.value_label}


def _preview(builder: segment_builder.Builder) -> dict:
    """Return the builder's count and first rows, or its mistakes (put beside their rows)."""
    try:
        definition = parse(segment_builder.to_definition(builder))
    except DefinitionError as error:
        return {"count": None, "sample": [], "problems": segment_builder.put_errors(builder, error.problems)}
    try:
        return {"count": segments.count(definition), "sample": segments.sample(definition), "problems": []}
    except segments.SegmentTooSlow as error:
        return {"count": None, "sample": [], "problems": list(error.fields.values())}


def _choices() -> dict:
    return {
        "fields": [(name, _(field.label)) for name, field in FIELDS.items()],
        "owners": [(str(user.id), user.name) for user in contact_queries.owner_choices()],
        "email_statuses": list(EMAIL_STATUSES.items()),
        "interaction_kinds": INTERACTION_KINDS, "task_rules": TASK_RULES, "task_statuses": TASK_STATUSES,
        "tag_names": contact_queries.tag_names(),
    }


def _builder_page(template: str, builder, status: int = 200, preview: dict | None = None, **context):
    return render_template(template, builder=builder, preview=preview or _preview(builder), choices=_choices(),
                           **context), status


@bp.route("")
@access("read")
def index():
    """List the saved segments with their last recorded size."""
    return render_template("segments/index.html", segments=segments.all_segments(), sizes=segments.latest_sizes())


@bp.route("/new")
@access("write")
def new():
    """The builder for a new segment, empty or made from the contact list's filters in the query string."""
    filters = contact_queries.ContactFilters.from_args(request.args)
    builder = segment_builder.from_definition(segments.from_filters(filters, user_id=current_user.id))
    if not builder.rows:
        builder.rows.append(segment_builder.Row())
    return _builder_page("segments/new.html", builder, name="", description="", errors={},
                         dropped_search=bool(filters.q))


@bp.route("/builder", methods=["POST"])
@access("write")
def builder():
    """Answer a change in the builder: the rows (after adding, removing or changing a field) with the
    count and first rows, or just the count and first rows with the rows' mistakes beside them."""
    built = segment_builder.from_form(request.form, add=request.form.get("add"), remove=request.form.get("remove"))
    preview = _preview(built)
    part = "rows" if htmx.target == "builder-rows" else "preview"
    return render_template("segments/_builder_answer.html", builder=built, preview=preview, choices=_choices(),
                           part=part)


def _save(segment=None):
    built = segment_builder.from_form(request.form)
    values = {"name": request.form.get("name", ""), "description": request.form.get("description", ""),
              "definition": segment_builder.to_definition(built)}
    try:
        if segment is None:
            segment = segments.create(values, actor_id=current_user.id)
        else:
            segments.update(segment, values, actor_id=current_user.id)
    except ValidationError as error:
        db.session.rollback()
        problems = error.problems if isinstance(error, DefinitionError) else []
        segment_builder.put_errors(built, problems)
        errors = {} if problems else error.fields
        template = "segments/new.html" if segment is None else "segments/show.html"
        context = {} if segment is None else _show_context(segment)
        return _builder_page(template, built, 422, name=values["name"], description=values["description"],
                             errors=errors, **context)
    db.session.commit()
    flash(_("Saved the segment “%(name)s”.", name=segment.name), "success")
    return redirect(url_for("segments.show", segment_id=segment.id))


@bp.route("", methods=["POST"])
@access("write")
def create():
    """Save a new segment from the builder's form."""
    return _save()


def _show_context(segment) -> dict:
    definition = parse(segment.definition)
    history = segments.history(segment.id)
    first_day = segments.today() - timedelta(days=segments.HISTORY_DAYS - 1)
    context = {"segment": segment, "history": history, "peak": max([size for _day, size in history] + [1]),
               "bars": [((day - first_day).days, size) for day, size in history], "days": segments.HISTORY_DAYS,
               "summary": segment_builder.describe(segment.definition), "too_slow": None}
    try:
        # The spend query counts the members too: one pass over the segment for both.
        spend = segments.spend(definition)
        context.update(size=spend.members, spend=spend, members=segments.sample(definition))
    except segments.SegmentTooSlow as error:
        context.update(size=None, spend=None, members=[], too_slow=error.fields["definition"])
    return context


@bp.route("/<int:segment_id>", methods=["GET", "POST"])
@access("read", post="write")
def show(segment_id: int):
    """GET: a segment, its size today and over the last 90 days, what its members spent, its first
    members, and (for those who build) the builder to change it. POST: save the builder's changes."""
    segment = _segment_or_404(segment_id)
    if request.method == "POST":
        return _save(segment)
    builder = segment_builder.from_definition(segment.definition)
    context = _show_context(segment)
    if not can("write"):
        return render_template("segments/show.html", builder=None, **context)
    # The builder shows the saved definition: its count and first rows are the page's own.
    preview = ({"count": context["size"], "sample": context["members"], "problems": []} if context["too_slow"] is None
               else {"count": None, "sample": [], "problems": [context["too_slow"]]})
    return _builder_page("segments/show.html", builder, preview=preview, name=segment.name,
                         description=segment.description, errors={}, **context)


@bp.route("/<int:segment_id>/duplicate", methods=["POST"])
@access("write")
def duplicate(segment_id: int):
    """Save a copy of a segment and open it."""
    copy = segments.duplicate(_segment_or_404(segment_id), actor_id=current_user.id)
    db.session.commit()
    flash(_("Saved a copy: “%(name)s”.", name=copy.name), "success")
    return redirect(url_for("segments.show", segment_id=copy.id))


@bp.route("/<int:segment_id>/delete", methods=["POST"])
@access("admin")
def delete(segment_id: int):
    """Delete a segment (admins)."""
    segment = _segment_or_404(segment_id)
    name = segment.name
    segments.remove(segment, actor_id=current_user.id)
    db.session.commit()
    flash(_("Deleted the segment “%(name)s”.", name=name), "success")
    return redirect(url_for("segments.index"))
