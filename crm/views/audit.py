"""The audit log page: who created, changed, merged, exported or erased what, and when."""
from __future__ import annotations

import json
from datetime import datetime, time, timedelta, timezone

from flask import Blueprint, current_app, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, SelectField
from wtforms.validators import NumberRange, Optional, ValidationError

from crm.extensions import htmx
from crm.services.shared.bounds import parse_id
from crm.services.staff import users
from crm.services.trust import audit
from crm.views.access import access
from crm.views.formatting import shop_zone
from crm.views.forms import page_number

bp = Blueprint("audit", __name__)


def plausible_year(_form, field):
    if field.data is not None and not 1900 <= field.data.year <= 9000:
        raise ValidationError(_("Choose a date between the years 1900 and 9000."))


class AuditFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET filter changes nothing

    user = SelectField(_l("User"), validate_choice=True, validators=[Optional()])
    action = SelectField(_l("Action"), validators=[Optional()])
    entity = SelectField(_l("Record"), validators=[Optional()])
    entity_id = IntegerField(_l("Record id"), validators=[Optional(), NumberRange(min=1, max=2**62)])
    since = DateField(_l("From"), validators=[Optional(), plausible_year])
    until = DateField(_l("To"), validators=[Optional(), plausible_year])


FILTER_FIELDS = ("user", "action", "entity", "entity_id", "since", "until")


def _filter_form() -> AuditFilterForm:
    form = AuditFilterForm(request.args)
    actions, entities = audit.choices()
    form.user.choices = {"": _("Anyone"), **{str(u.id): f"{u.name} ({u.email})" for u in users.list_users()}}
    form.action.choices = {"": _("Any action"), **{a: a.replace("_", " ") for a in actions}}
    form.entity.choices = {"": _("Any record"), **{e: e.replace("_", " ") for e in entities}}
    return form


def _day_start(day) -> datetime:
    """Return the UTC instant a shop-local day begins."""
    return datetime.combine(day, time(0), tzinfo=shop_zone()).astimezone(timezone.utc)


def _wanted(form: AuditFilterForm) -> audit.AuditFilter:
    """Return the filter of the fields that are valid; a refused field is shown and ignored."""
    form.validate()

    def ok(field):
        return field.data not in (None, "") and not field.errors

    return audit.AuditFilter(
        user_id=parse_id(form.user.data) if ok(form.user) else None,
        action=form.action.data if ok(form.action) else None,
        entity=form.entity.data if ok(form.entity) else None,
        entity_id=form.entity_id.data if ok(form.entity_id) else None,
        since=_day_start(form.since.data) if ok(form.since) else None,
        until=_day_start(form.until.data + timedelta(days=1)) if ok(form.until) else None,
    )


def show_value(value) -> str:
    """Return a before/after value as a person reads it."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


@bp.route("/settings/audit")
@access("admin")
def index():
    """List audit entries, newest first, filtered and paginated, with each change as a table."""
    form = _filter_form()
    page = page_number()
    result = audit.search(_wanted(form), page=page, per_page=current_app.config["PAGE_SIZE"])
    args = {name: request.args[name] for name in FILTER_FIELDS if request.args.get(name)}
    context = dict(form=form, result=result, changes=audit.changes, show_value=show_value, args=args)
    if htmx.fragment:
        return render_template("audit/_entries.html", **context)
    return render_template("audit/index.html", **context)
