"""Contacts: the list with search and bulk actions, the contact page with its timeline,
logging interactions, and creating, editing, merging and deleting contacts."""
from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from crm.extensions import db, htmx
from crm.models import STAGES, Contact, Interaction, utcnow
from crm.services import shop
from crm.services.insight import figures as insight
from crm.services.people import bulk as contact_bulk
from crm.services.people import contacts, interactions, merge
from crm.services.people import queries as contact_queries
from crm.services.people.queries import ContactFilters
from crm.services.segments import store as segments
from crm.services.shared.bounds import parse_id
from crm.services.shared.errors import ValidationError
from crm.views.access import access, can, narrowed
from crm.views.contact_forms import (
    CHANNELS,
    DIRECTION_LABELS,
    FIELD_LABELS,
    HISTORY_LABELS,
    KIND_LABELS,
    SENTIMENT_LABELS,
    STAGE_LABELS,
    ContactForm,
    InteractionForm,
    health_label,
    history_count,
    local,
    local_now,
    order_status_label,
    prefix_ids,
    stage_label,
    task_status_label,
)
from crm.views.forms import apply_errors, translated

bp = Blueprint("contacts", __name__, url_prefix="/contacts")


# What _save returns when the service refused the input.
REFUSED = object()


def _save(form, action):
    """Return what a service call for a valid form gave back, committed; or REFUSED, rolled
    back, with the service's reasons on the form's fields."""
    try:
        result = action()
    except ValidationError as error:
        db.session.rollback()
        apply_errors(form, error)
        return REFUSED
    db.session.commit()
    return result


def _contact_or_404(contact_id: int) -> Contact:
    """The contact to show (an erased one too, read-only); writes load theirs with
    contacts.writable_contact, which refuses an erased contact with 410."""
    contact = contact_queries.contact_for_page(contact_id)
    if contact is None:
        abort(404)
    return contact


def may_change(interaction: Interaction) -> bool:
    """Whether the current user may edit or delete an interaction: its author or an admin."""
    return can("write") and (current_user.role == "admin" or interaction.author_id == current_user.id)


@bp.context_processor
def _contact_helpers():
    return {"kind_labels": KIND_LABELS, "channels": CHANNELS, "may_change": may_change,
            "stage_label": stage_label, "health_label": health_label, "direction_labels": DIRECTION_LABELS,
            "sentiment_labels": SENTIMENT_LABELS, "order_status_label": order_status_label,
            "task_status_label": task_status_label, "history_count": history_count,
            "history_labels": HISTORY_LABELS, "field_labels": FIELD_LABELS}


def _list_url(filters: ContactFilters, **extra) -> str:
    return url_for("contacts.index") + _query(filters.to_args() + [(k, v) for k, v in extra.items() if v])


def _query(pairs: list[tuple[str, str]]) -> str:
    from urllib.parse import urlencode

    return "?" + urlencode(pairs) if pairs else ""


# ---------------------------------------------------------------------------
# The list

@bp.route("")
@access("read")
def index():
    """List contacts: live search, filters, sort and keyset pages; htmx gets the results only.
    A segment's rows are shown without waiting for its count, which the page then loads (`count`);
    `count=1` (the link shown without JavaScript) counts it with the rows."""
    filters = ContactFilters.from_args(request.args)
    counted = filters.segment is None or request.args.get("count") == "1"
    result = contact_queries.page(filters, after=request.args.get("after"), before=request.args.get("before"),
                                  user_id=current_user.id, counted=counted)
    context = {"page": result, "filters": filters, "list_url": _list_url}
    if htmx.fragment:
        return render_template("contacts/_results.html", **context)
    tag_names, owners = contact_queries.tag_names(), contact_queries.owner_choices()
    choices = {
        "stage": [(stage, str(STAGE_LABELS[stage])) for stage in STAGES],
        "tag": [(name, name) for name in tag_names],
        "owner": [(str(user.id), user.name) for user in owners],
        "sort": [(key, _(sort.label)) for key, sort in contact_queries.SORTS.items()],
    }
    segment = segments.get(filters.segment) if filters.segment else None
    return render_template("contacts/index.html", tag_names=tag_names, owners=owners, choices=choices,
                           segment=segment, **context)


@bp.route("/count")
@access("read")
def count():
    """How many contacts the filters match (the count a segment's list loads after its rows)."""
    filters = ContactFilters.from_args(request.args)
    total = contact_queries.count(filters, user_id=current_user.id)
    return render_template("contacts/_count.html", filters=filters, list_url=_list_url, total=total,
                           capped=total > contact_queries.COUNT_CAP)


@bp.route("/go")
@access("read")
def go():
    """Open the single (or first) contact matching the header search; the list when none or no words."""
    filters = ContactFilters.from_args({"q": request.args.get("q", "")})
    if not filters.q:
        return redirect(url_for("contacts.index"))
    result = contact_queries.page(filters, size=1, user_id=current_user.id)
    if not result.contacts:
        flash(_("No contact matches “%(query)s”.", query=filters.q), "info")
        return redirect(url_for("contacts.index", q=filters.q))
    return redirect(url_for("contacts.show", contact_id=result.contacts[0].id))


@bp.route("/bulk", methods=["POST"])
@access("write")
def bulk():
    """Tag, untag, assign an owner to or export the ticked contacts or every one the filters match."""
    form = request.form
    filters = ContactFilters.from_args(form)
    back = _list_url(filters)
    if form.get("scope") == "all":
        selection = contact_queries.matching_ids(filters, user_id=current_user.id)
        description = {"filters": dict(filters.to_args())}
    else:
        ids = sorted({parse_id(value) for value in form.getlist("ids")} - {None})
        if not ids:
            flash(_("Tick the contacts first, or choose every contact that matches."), "warning")
            return redirect(back)
        selection = contact_bulk.selected(ids)
        description = {"selected": True}
    action = form.get("action")
    # "tag" is the tag filter; the tag to add or remove has its own name.
    tag = form.get("bulk_tag", "")
    try:
        if action == "export":
            return _export(selection, filters, description)
        if action == "tag_add":
            count = contact_bulk.add_tag(selection, tag, actor_id=current_user.id)
            message = ngettext("Tagged %(num)d contact “%(tag)s”.", "Tagged %(num)d contacts “%(tag)s”.", count,
                               tag=tag.strip().lower())
        elif action == "tag_remove":
            count = contact_bulk.remove_tag(selection, tag, actor_id=current_user.id)
            message = ngettext("Took the tag “%(tag)s” off %(num)d contact.", "Took the tag “%(tag)s” off %(num)d contacts.",
                               count, tag=tag.strip().lower())
        elif action == "owner":
            owner = form.get("owner_id", "")
            count = contact_bulk.assign_owner(selection, parse_id(owner),
                                              actor_id=current_user.id)
            message = ngettext("Changed the owner of %(num)d contact.", "Changed the owner of %(num)d contacts.", count)
        else:
            abort(400, _("Choose what to do with the contacts."))
    except ValidationError as error:
        db.session.rollback()
        flash(" ".join(translated(reason) for reason in error.fields.values()) or translated(error.message), "error")
        return redirect(back)
    db.session.commit()
    flash(message, "success")
    return redirect(back)


def _export(selection, filters: ContactFilters, description: dict) -> Response:
    """Stream every selected contact as CSV, in the list's sort order."""
    count = contact_bulk.record_export(selection, actor_id=current_user.id, description=description)
    db.session.commit()
    rows = (
        contact_queries.ordered(filters, user_id=current_user.id)
        .where(Contact.id.in_(selection.subquery().select()))
    )
    filename = f"contacts-{utcnow():%Y%m%d-%H%M}.csv"
    return Response(
        stream_with_context(contact_bulk.csv_lines(rows)), mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "X-Contact-Count": str(count)},
    )


# ---------------------------------------------------------------------------
# The contact page

@bp.route("/<int:contact_id>")
@access("read")
def show(contact_id: int):
    """Show a contact: who they are, their stage and score, to-dos, and the whole timeline."""
    return _contact_page(_contact_or_404(contact_id), _log_form())


def _contact_page(contact: Contact, log_form: InteractionForm):
    # The page's partials (stage, score, to-dos) load what they need from `contact` alone.
    figures = insight.customer_figures(contact, utcnow(), shop.current().timezone)
    return render_template(
        "contacts/show.html", contact=contact, timeline=contact_queries.timeline(contact.id),
        figures=figures, log_form=log_form, tag_names=contact_queries.tag_names(),
    )


@bp.route("/<int:contact_id>/timeline")
@access("read")
def timeline(contact_id: int):
    """Return the next page of a contact's timeline (the page asks when its last item scrolls into view)."""
    if not contact_queries.contact_exists(contact_id):
        abort(404)
    page = contact_queries.timeline(contact_id, cursor=request.args.get("cursor"))
    return render_template("contacts/_timeline_items.html", contact_id=contact_id, timeline=page)


def _log_form(*, fresh: bool = False) -> InteractionForm:
    """Return the log form: the posted one, or a fresh one (after a save) set to now."""
    submitted = request.method == "POST" and not fresh
    form = InteractionForm() if submitted else InteractionForm(formdata=None)
    if not submitted:
        form.occurred_at.data = local_now()
    return form


@bp.route("/<int:contact_id>/interactions", methods=["POST"])
@access("write")
def log(contact_id: int):
    """Log an interaction; htmx gets the new timeline item and a fresh form, or the form with its errors."""
    contact = contacts.writable_contact(contact_id)
    form = _log_form()
    interaction = _save(form, lambda: interactions.log_interaction(contact, form.values(), author_id=current_user.id)) \
        if form.validate() else REFUSED
    if interaction is not REFUSED:
        if not htmx.fragment:
            flash(_("Logged."), "success")
            return redirect(url_for("contacts.show", contact_id=contact.id))
        item = contact_queries.timeline_item("interaction", interaction)
        return render_template("contacts/_logged.html", contact=contact, item=item, log_form=_log_form(fresh=True))
    if not htmx.fragment:
        return _contact_page(contact, form), 422
    response = Response(render_template("contacts/_log_form.html", contact=contact, log_form=form))
    response.headers["HX-Retarget"] = "#log-form"
    response.headers["HX-Reswap"] = "outerHTML"
    return response


def _interaction_or_404(contact_id: int, interaction_id: int) -> Interaction:
    interaction = db.session.get(Interaction, interaction_id)
    if interaction is None or interaction.contact_id != contact_id:
        abort(404)
    return interaction


@bp.route("/<int:contact_id>/interactions/<int:interaction_id>")
@access("read")
def interaction(contact_id: int, interaction_id: int):
    """Return one timeline item (what "Cancel" on an edit form swaps back in)."""
    record = _interaction_or_404(contact_id, interaction_id)
    return render_template("contacts/_timeline_item.html", contact_id=contact_id,
                           item=contact_queries.timeline_item("interaction", record))


def _edit_form(record: Interaction, **kwargs) -> InteractionForm:
    form = InteractionForm(obj=record, **kwargs).for_kind(record.kind)
    if not form.is_submitted():
        form.occurred_at.data = local(record.occurred_at).replace(tzinfo=None, second=0, microsecond=0)
    return prefix_ids(form, f"edit-{record.id}-")


@bp.route("/<int:contact_id>/interactions/<int:interaction_id>/edit", methods=["GET", "POST"])
@access("write")
@narrowed("its author or an admin")
def edit_interaction(contact_id: int, interaction_id: int):
    """Edit an interaction in place (its author or an admin)."""
    contacts.writable_contact(contact_id)
    record = _interaction_or_404(contact_id, interaction_id)
    if not may_change(record):
        abort(403)
    form = _edit_form(record)
    if form.validate_on_submit() and _save(
            form, lambda: interactions.update_interaction(record, form.values(), actor_id=current_user.id)
    ) is not REFUSED:
        if not htmx.fragment:
            flash(_("Saved."), "success")
            return redirect(url_for("contacts.show", contact_id=contact_id))
        record = _interaction_or_404(contact_id, interaction_id)
        return render_template("contacts/_timeline_item.html", contact_id=contact_id,
                               item=contact_queries.timeline_item("interaction", record))
    template = "contacts/_interaction_edit.html" if htmx.fragment else "contacts/interaction_edit.html"
    status = 422 if form.errors and not htmx.fragment else 200
    return render_template(template, contact_id=contact_id, record=record, form=form), status


@bp.route("/<int:contact_id>/interactions/<int:interaction_id>/delete", methods=["POST"])
@access("write")
@narrowed("its author or an admin")
def delete_interaction(contact_id: int, interaction_id: int):
    """Delete an interaction (its author or an admin); the audit log keeps what it said."""
    contacts.writable_contact(contact_id)
    record = _interaction_or_404(contact_id, interaction_id)
    if not may_change(record):
        abort(403)
    interactions.delete_interaction(record, actor_id=current_user.id)
    db.session.commit()
    if htmx.fragment:
        return ""
    flash(_("Deleted."), "success")
    return redirect(url_for("contacts.show", contact_id=contact_id))


@bp.route("/<int:contact_id>/tags", methods=["POST"])
@access("write")
def add_tag(contact_id: int):
    """Add tags to a contact; htmx gets the tag list back."""
    contact = contacts.writable_contact(contact_id)
    error = None
    try:
        contacts.add_tags(contact, request.form.get("tag", ""), actor_id=current_user.id)
    except ValidationError as refused:
        db.session.rollback()
        error = translated(refused.fields.get("tag", refused.message))
    else:
        db.session.commit()
    return _tags_response(contact_id, error)


@bp.route("/<int:contact_id>/tags/remove", methods=["POST"])
@access("write")
def remove_tag(contact_id: int):
    """Take a tag off a contact; htmx gets the tag list back."""
    contact = contacts.writable_contact(contact_id)
    contacts.remove_tag(contact, request.form.get("tag", ""), actor_id=current_user.id)
    db.session.commit()
    return _tags_response(contact_id)


def _tags_response(contact_id: int, error: str | None = None):
    if not htmx.fragment:
        if error:
            flash(error, "error")
        return redirect(url_for("contacts.show", contact_id=contact_id))
    contact = contacts.writable_contact(contact_id)
    return render_template("contacts/_tags.html", contact=contact, tag_error=error,
                           tag_names=contact_queries.tag_names())


# ---------------------------------------------------------------------------
# Create, edit, merge, delete

def _duplicate_of(form: ContactForm, contact: Contact | None = None) -> Contact | None:
    """Return the contact that already has the email a refused form asked for, to link to it."""
    if not form.email.errors:
        return None
    other = contacts.by_email(form.email.data)
    return other if other is not None and (contact is None or other.id != contact.id) else None


@bp.route("/new", methods=["GET", "POST"])
@access("write")
def new():
    """Create a contact."""
    form = ContactForm().with_owners(contact_queries.owner_choices())

    def save() -> Contact:
        tags = contacts.clean_tag_names(form.tags.data) if (form.tags.data or "").strip() else []
        created = contacts.create_contact(form.values(), actor_id=current_user.id, tags=tags)
        flash(_("%(name)s is in the CRM.", name=created.name), "success")
        return created

    return _contact_form(form, None, save)


@bp.route("/<int:contact_id>/edit", methods=["GET", "POST"])
@access("write")
def edit(contact_id: int):
    """Edit a contact's details."""
    contact = contacts.writable_contact(contact_id)
    form = ContactForm.for_contact(contact, contact_queries.owner_choices())
    del form.tags  # tags are changed on the contact page

    def save() -> Contact:
        contacts.update_contact(contact, form.values(), actor_id=current_user.id)
        flash(_("Saved."), "success")
        return contact

    return _contact_form(form, contact, save)


def _contact_form(form: ContactForm, contact: Contact | None, save):
    """Save a posted contact form and go to the contact, or show the form with its errors
    (a duplicate email links to the contact who has it)."""
    saved = _save(form, save) if form.validate_on_submit() else REFUSED
    if saved is not REFUSED:
        return redirect(url_for("contacts.show", contact_id=saved.id))
    status = 422 if form.is_submitted() else 200
    return render_template("contacts/form.html", form=form, contact=contact, duplicate=_duplicate_of(form, contact)), \
        status


@bp.route("/<int:contact_id>/merge", methods=["GET", "POST"])
@access("admin")
def merge_contact(contact_id: int):
    """Pick the contact to merge into this one, confirm what will move, then merge."""
    contact = contacts.writable_contact(contact_id)
    other_id = parse_id(request.values.get("other", ""))
    if other_id is None:
        query = request.args.get("q", "")
        candidates = contact_queries.merge_candidates(contact, query)
        if htmx.fragment:
            return render_template("contacts/_merge_candidates.html", contact=contact, candidates=candidates, q=query)
        return render_template("contacts/merge_pick.html", contact=contact, candidates=candidates, q=query)
    other = contacts.writable_contact(other_id)
    try:
        merge_plan = merge.plan(contact, other)
    except ValidationError as error:
        flash(" ".join(translated(reason) for reason in error.fields.values()), "error")
        return redirect(url_for("contacts.merge_contact", contact_id=contact.id))
    if request.method == "GET":
        return render_template("contacts/merge_confirm.html", plan=merge_plan)
    merged_name, merged_id = other.name, other.id
    merge.merge(contact, other, actor_id=current_user.id)
    db.session.commit()
    flash(_("Merged %(name)s (#%(id)s) into %(into)s.", name=merged_name, id=merged_id, into=contact.name), "success")
    return redirect(url_for("contacts.show", contact_id=contact.id))


@bp.route("/<int:contact_id>/delete", methods=["GET", "POST"])
@access("admin")
def delete(contact_id: int):
    """Confirm, then delete a contact with its whole history."""
    contact = _contact_or_404(contact_id)
    if request.method == "GET":
        counts = merge.history_counts(contact)
        return render_template("contacts/delete.html", contact=contact, counts=counts)
    name = contact.name
    contacts.delete_contact(contact, actor_id=current_user.id)
    db.session.commit()
    flash(_("%(name)s is deleted. The audit log keeps a copy of the contact's details.", name=name), "success")
    return redirect(url_for("contacts.index"))
