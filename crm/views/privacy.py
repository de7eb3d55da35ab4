"""Privacy pages: export and erase one contact, and the retention review (admins only)."""
from __future__ import annotations

import io

from flask import Blueprint, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, StringField
from wtforms.validators import DataRequired, NumberRange

from crm.extensions import db
from crm.models import Contact, utcnow
from crm.services.trust import privacy
from crm.views.access import access
from crm.views.formatting import record_url
from crm.views.forms import page_number

bp = Blueprint("privacy", __name__)


class RetentionForm(FlaskForm):
    months = IntegerField(_l("Review contacts with no order or interaction for (months)"),
                          validators=[DataRequired(), NumberRange(min=1, max=240)])


class ExportForm(FlaskForm):
    """Only the CSRF token: downloading is a POST so no other site can trigger an export."""


class EraseForm(FlaskForm):
    confirm = StringField(_l("Type the contact's number or the word ERASE to confirm"),
                          validators=[DataRequired()])
    block_email = BooleanField(_l("Block this email address from being imported again (the contact asked for it)"))


def _contact_or_404(contact_id: int) -> Contact:
    return db.get_or_404(Contact, contact_id)


@bp.route("/settings/privacy", methods=["GET", "POST"])
@access("admin")
def index():
    """List contacts due for a retention review, the retention period, and the block list size."""
    form = RetentionForm(data={"months": privacy.retention_months()} if request.method == "GET" else None)
    if form.validate_on_submit():
        privacy.set_retention_months(form.months.data, actor_id=current_user.id)
        db.session.commit()
        flash(_("Contacts are now up for review after %(months)s months without an order or interaction.",
                months=form.months.data), "success")
        return redirect(url_for("privacy.index"))
    months = privacy.retention_months()
    per_page = current_app.config["PAGE_SIZE"]
    page = page_number()
    now = utcnow()
    contacts = privacy.due_for_review(months, now, limit=per_page + 1, offset=(page - 1) * per_page)
    return render_template(
        "privacy/index.html", form=form, months=months, contacts=contacts[:per_page], page=page,
        has_next=len(contacts) > per_page, due=privacy.due_for_review_count(months, now),
        blocked=privacy.blocked_count(), cutoff=privacy.retention_cutoff(months, now),
    )


@bp.route("/contacts/<int:contact_id>/privacy/export", methods=["GET", "POST"])
@access("admin")
def export(contact_id: int):
    """Explain and download everything held about one contact as a zip of JSON and CSV files."""
    contact = _contact_or_404(contact_id)
    form = ExportForm()
    if form.validate_on_submit():
        now = utcnow()
        data = privacy.export_contact(contact.id, actor_id=current_user.id, now=now)
        db.session.commit()
        return send_file(io.BytesIO(data), mimetype="application/zip", as_attachment=True,
                         download_name=privacy.export_filename(contact.id, now), max_age=0)
    return render_template("privacy/export.html", contact=contact, form=form)


@bp.route("/contacts/<int:contact_id>/privacy/erase", methods=["GET", "POST"])
@access("admin")
def erase(contact_id: int):
    """Confirm and erase one contact's personal data for good, keeping de-identified orders."""
    contact = _contact_or_404(contact_id)
    form = EraseForm()
    if contact.erased_at is None and form.validate_on_submit():
        if form.confirm.data.strip() not in (str(contact.id), "ERASE"):
            form.confirm.errors.append(_("Type %(id)s or ERASE; nothing was erased.", id=contact.id))
        else:
            result = privacy.erase_contact(contact, current_user.id, block_email=form.block_email.data)
            db.session.commit()
            words = {"id": contact.id, "interactions": result.interactions, "tasks": result.tasks}
            flash(_("Contact #%(id)s is erased: %(interactions)s interactions and %(tasks)s to-dos de-identified, "
                    "orders kept without a name; the email is blocked from coming back.", **words)
                  if result.email_blocked else
                  _("Contact #%(id)s is erased: %(interactions)s interactions and %(tasks)s to-dos de-identified, "
                    "orders kept without a name.", **words), "success")
            return redirect(record_url("contact", contact.id) or url_for("privacy.index"))
    return render_template("privacy/erase.html", contact=contact, form=form,
                           counts=privacy.record_counts(contact.id))
