"""Newsletters (/campaigns): write to a segment from a template, see the audience, preview for any
member, send now or schedule, watch the progress."""
from __future__ import annotations

from datetime import datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from crm.extensions import db
from crm.models import Contact
from crm.services.campaigns import figures, store
from crm.services.segments import store as segments
from crm.services.shared.errors import NotFound, ValidationError
from crm.services.shop.clock import shop_zone
from crm.views.access import access
from crm.views.email import _frame
from crm.views.forms import translated

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")

_STATUS_WORDS = {"draft": _l("draft"), "scheduled": _l("scheduled"), "sending": _l("sending"), "sent": _l("sent"),
                 "cancelled": _l("cancelled")}
# Why members are left out (the words of store.EXCLUDED), for the catalogue; the page translates them.
EXCLUDED_WORDS = (_l("no marketing consent"), _l("unsubscribed"), _l("bounced"), _l("no email address"),
                  _l("do not contact"), _l("erased"), _l("over the cap on marketing email"))


@bp.app_template_global("campaign_status")
def campaign_status(status: str) -> str:
    """A newsletter's status in the reader's language."""
    return str(_STATUS_WORDS.get(status, status))


def _campaign_or_404(campaign_id: int):
    try:
        return store.get(campaign_id)
    except NotFound:
        abort(404)


def _words(error: ValidationError) -> dict[str, str]:
    """A refusal's reasons per field, in the reader's language."""
    return {name: translated(reason) for name, reason in error.fields.items()}


def _form_page(campaign=None, errors=None, form=None, status=200):
    return render_template("campaigns/edit.html", campaign=campaign, errors=errors or {}, form=form or {},
                           templates=store.marketing_templates(), segments=segments.all_segments()), status


@bp.route("/")
@access("read")
def index():
    """Every newsletter, newest first, with where it stands."""
    campaigns = store.all_campaigns()
    return render_template("campaigns/index.html", campaigns=campaigns,
                           progress={c.id: store.progress(c) for c in campaigns if c.status in ("sending", "sent")})


@bp.route("/new", methods=["GET", "POST"])
@access("admin")
def new():
    """Write a newsletter: a name, a segment and a template (the subject and body start from it)."""
    if request.method == "GET":
        return _form_page(form=request.args)
    try:
        campaign = store.create(request.form.to_dict(), current_user.id)
    except ValidationError as error:
        db.session.rollback()
        return _form_page(errors=_words(error), form=request.form, status=422)
    db.session.commit()
    return redirect(url_for("campaigns.show", campaign_id=campaign.id))


@bp.route("/<int:campaign_id>/edit", methods=["GET", "POST"])
@access("admin")
def edit(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    if request.method == "GET":
        return _form_page(campaign, form={"name": campaign.name, "segment_id": campaign.segment_id,
                                          "template_key": campaign.template_key, "subject": campaign.subject,
                                          "body": campaign.body})
    try:
        store.update(campaign, request.form.to_dict(), current_user.id)
    except ValidationError as error:
        db.session.rollback()
        if not error.fields:
            flash(translated(error.message), "error")
            return redirect(url_for("campaigns.show", campaign_id=campaign_id))
        return _form_page(campaign, errors=_words(error), form=request.form, status=422)
    db.session.commit()
    flash(_("Newsletter saved."), "success")
    return redirect(url_for("campaigns.show", campaign_id=campaign.id))


@bp.route("/<int:campaign_id>")
@access("read")
def show(campaign_id: int):
    """The newsletter: its audience (who will receive it, who is excluded and why), preview, send."""
    campaign = _campaign_or_404(campaign_id)
    sending = campaign.status in ("sending", "sent")
    audience = None if sending else store.audience(campaign)
    members = store.sample_members(campaign)
    return render_template("campaigns/show.html", campaign=campaign, audience=audience, members=members,
                           progress=store.progress(campaign) if sending else None,
                           excluded=store.excluded_reasons(campaign) if sending else [],
                           earned=figures.campaign(campaign.id) if sending else None)


@bp.route("/<int:campaign_id>/preview")
@access("read")
def preview(campaign_id: int):
    """The message as one member would get it (a framed page of its own)."""
    campaign = _campaign_or_404(campaign_id)
    contact_id = request.args.get("contact", "")
    contact = db.session.get(Contact, int(contact_id)) if contact_id.isdigit() and len(contact_id) < 12 else None
    if contact is None or contact.erased_at is not None:
        abort(404)
    draft = store.preview(campaign, contact)
    return _frame(render_template("email/_preview_frame.html", draft=draft, contact=contact))


@bp.route("/<int:campaign_id>/test", methods=["POST"])
@access("admin")
def send_test(campaign_id: int):
    """Send the newsletter, as a chosen member would get it, to yourself (marked as a test)."""
    from crm.services.email import sending

    campaign = _campaign_or_404(campaign_id)
    contact_id = request.form.get("contact", "")
    contact = db.session.get(Contact, int(contact_id)) if contact_id.isdigit() and len(contact_id) < 12 else None
    if contact is None or contact.erased_at is not None:
        members = store.sample_members(campaign, limit=1)
        contact = members[0] if members else None
    if contact is None:
        flash(_("The segment has no members to write the test for."), "error")
        return redirect(url_for("campaigns.show", campaign_id=campaign_id))
    draft = store.preview(campaign, contact)
    if draft.rendered is None:
        flash(_("The message cannot be rendered: %(problem)s", problem=draft.problem), "error")
        return redirect(url_for("campaigns.show", campaign_id=campaign_id))
    accepted, answer = sending.send_test(current_user.email, rendered=draft.rendered)
    flash(_("Test sent to %(address)s (as %(name)s would get it): %(answer)s", address=current_user.email,
            name=contact.name, answer=answer) if accepted
          else _("The test was not sent: %(answer)s", answer=answer), "success" if accepted else "error")
    return redirect(url_for("campaigns.show", campaign_id=campaign_id))


@bp.route("/<int:campaign_id>/send", methods=["POST"])
@access("admin")
def send(campaign_id: int):
    """Send now, or schedule for a moment (shop's time zone); the worker does the sending."""
    campaign = _campaign_or_404(campaign_id)
    when = None
    raw = request.form.get("scheduled_at", "").strip()
    if request.form.get("when") == "later":
        try:
            when = datetime.fromisoformat(raw).replace(tzinfo=shop_zone())
        except ValueError:
            flash(_("Send at: give a date and time such as 2026-12-24 10:00."), "error")
            return redirect(url_for("campaigns.show", campaign_id=campaign_id))
    try:
        store.schedule(campaign, when, current_user.id)
    except ValidationError as error:
        db.session.rollback()
        flash(" ".join([translated(error.message)] if not error.fields else [
            _("Send at: %(reason)s", reason=translated(r)) for r in error.fields.values()]), "error")
        return redirect(url_for("campaigns.show", campaign_id=campaign_id))
    db.session.commit()
    flash(_("Scheduled: the worker sends it then.") if when
          else _("Sending: the worker queues it now; this page shows how far it got."), "success")
    return redirect(url_for("campaigns.show", campaign_id=campaign_id))


@bp.route("/<int:campaign_id>/cancel", methods=["POST"])
@access("admin")
def cancel(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    try:
        store.cancel(campaign, current_user.id)
    except ValidationError as error:
        flash(translated(error.message), "error")
        return redirect(url_for("campaigns.show", campaign_id=campaign_id))
    db.session.commit()
    flash(_("Cancelled: it will not be sent."), "success")
    return redirect(url_for("campaigns.show", campaign_id=campaign_id))
