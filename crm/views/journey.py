"""The journey on a contact: the stage with its reason, pinning it by hand, and its history."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from crm.extensions import db, htmx
from crm.models import STAGES, Contact
from crm.services.people import contacts, stage_pins
from crm.services.shared.errors import ValidationError
from crm.views.access import access
from crm.views.formatting import stage_name
from crm.views.forms import translated

bp = Blueprint("journey", __name__)


@bp.app_template_global()
def stage_history(contact) -> list[stage_pins.StagePeriod]:
    """Return a contact's stage changes with the time in each stage, for journey/_stage_history.html."""
    return stage_pins.stage_history(contact.id)


@bp.app_context_processor
def _stage_names():
    return {"journey_stages": STAGES}


@bp.route("/contacts/<int:contact_id>/stage", methods=["GET", "POST"])
@access("read", post="write")
def stage(contact_id: int):
    """Show a contact's stage; pin it by hand with a reason, or unpin it (the form swaps itself)."""
    contact = contacts.writable_contact(contact_id) if request.method == "POST" else db.get_or_404(Contact, contact_id)
    errors, notice = {}, None
    if request.method == "POST":
        try:
            if request.form.get("action") == "unpin":
                stage_pins.unpin_stage(contact, current_user.id)
                notice = _("Unpinned; the rules now keep it at %(stage)s.", stage=stage_name(contact.stage).lower())
            else:
                stage_pins.pin_stage(contact, request.form.get("stage", ""), request.form.get("reason", ""), current_user.id)
                notice = _("Pinned at %(stage)s.", stage=stage_name(contact.stage).lower())
        except ValidationError as error:
            errors = {name: translated(reason) for name, reason in error.fields.items()}
        else:
            db.session.commit()
        if not htmx.fragment:
            flash(" ".join(errors.values()) if errors else notice, "error" if errors else "success")
            return redirect(request.referrer or url_for("journey.stage", contact_id=contact.id))
    context = {"contact": contact, "stage_errors": errors, "stage_notice": notice,
               "stage_values": request.form if errors else {}}
    if htmx.fragment:
        # The history on the page gains the change too, swapped out of band.
        return render_template("journey/_stage_controls.html", **context) + (
            render_template("journey/_stage_history.html", contact=contact, stage_history_oob=True)
            if request.method == "POST" and not errors else "")
    return render_template("journey/stage.html", **context)
