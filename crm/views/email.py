"""Email pages: settings, templates (editor with live preview), the composer, sent messages,
and the public unsubscribe page."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from crm.extensions import csrf, db
from crm.models import Contact, EmailMessage, Task
from crm.services import contact_queries, shop
from crm.services.email import mailbox, outbox, sending, suppression, templates, tokens
from crm.services.email import settings as email_settings
from crm.services.errors import NotFound, ValidationError
from crm.views.access import access

bp = Blueprint("email", __name__)


@bp.app_template_global()
def task_email_kinds() -> frozenset[str]:
    """The to-do kinds that have an email template ("Send the email" on the to-do)."""
    return frozenset(templates.TASK_TEMPLATES)

# The preview and message frames show the rendered email, whose CSS is inline by design.
FRAME_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"


def _frame(html: str):
    response = make_response(html)
    response.headers["Content-Security-Policy"] = FRAME_POLICY
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


def _template_or_404(key: str) -> templates.Template:
    try:
        return templates.get(key)
    except NotFound:
        abort(404)


# --- settings ---------------------------------------------------------------------------------

@bp.route("/settings/email", methods=["GET", "POST"])
@access("admin")
def settings_page():
    """Show and save the SMTP and sender settings."""
    errors, form = {}, None
    if request.method == "POST":
        try:
            email_settings.save(request.form.to_dict(), current_user.id)
            db.session.commit()
            flash("Email settings saved.", "success")
            return redirect(url_for("email.settings_page"))
        except ValidationError as error:
            db.session.rollback()
            errors, form = error.fields, request.form
    current = email_settings.effective()
    return render_template("email/settings.html", current=current, errors=errors, form=form,
                           environment=email_settings.ENVIRONMENT, test_result=None), (422 if errors else 200)


@bp.route("/settings/email/test", methods=["POST"])
@access("admin")
def send_test():
    """Send a test message and show the server's exact answer."""
    to = (request.form.get("to") or current_user.email or "").strip()
    accepted, answer = sending.send_test(to)
    return render_template("email/settings.html", current=email_settings.effective(), errors={}, form=None,
                           environment=email_settings.ENVIRONMENT, test_result=(accepted, answer, to))


@bp.route("/settings/email/bounces/check", methods=["POST"])
@access("admin")
def check_bounces():
    """Read the bounce mailbox now (what the worker does every few minutes) and show the server's answer."""
    result = mailbox.check()
    return render_template("email/settings.html", current=email_settings.effective(), errors={}, form=None,
                           environment=email_settings.ENVIRONMENT, test_result=None, mailbox_result=result)


# --- templates ----------------------------------------------------------------------------------

@bp.route("/settings/email/templates")
@access("read")
def template_list():
    """List the templates, customised or default."""
    return render_template("email/templates.html", templates=templates.all_templates())


def _preview_contact() -> Contact | None:
    contact_id = request.values.get("contact_id", type=int)
    contact = db.session.get(Contact, contact_id) if contact_id else None
    if contact is None or contact.erased_at is not None:
        return None
    return contact


@bp.route("/settings/email/templates/<key>", methods=["GET", "POST"])
@access("read", post="admin")
def template_edit(key: str):
    """Edit a template beside its live preview; refused with the line and reason when it does not compile."""
    template = _template_or_404(key)
    errors, subject, body = {}, template.subject, template.body
    if request.method == "POST":
        subject, body = request.form.get("subject", ""), request.form.get("body", "")
        try:
            if request.form.get("action") == "reset":
                templates.reset(key, current_user.id)
                flash(f"“{template.name}” is back to the shipped default.", "success")
            else:
                templates.save(key, subject, body, current_user.id, outbox.shop_context(email_settings.effective()))
                flash(f"Template “{template.name}” saved.", "success")
            db.session.commit()
            return redirect(url_for("email.template_edit", key=key))
        except ValidationError as error:
            db.session.rollback()
            errors = error.fields
    return render_template("email/template_edit.html", template=template, subject=subject, body=body, errors=errors,
                           variables=outbox.render.VARIABLES, contact=_preview_contact(),
                           marketing=template.marketing), (422 if errors else 200)


@bp.route("/email/contact-options")
@access("read")
def contact_options():
    """The contacts matching a search, as <option>s for the preview picker."""
    q = (request.args.get("q") or "").strip()
    contacts = contact_queries.search_contacts(q, limit=10) if q else []
    return render_template("email/_contact_options.html", contacts=contacts)


@bp.route("/email/preview", methods=["POST"])
@access("read")
def preview():
    """Render a subject and body for a contact (or the sample contact) into the preview frame."""
    key = request.form.get("template") or "personal"
    _template_or_404(key)
    contact = _preview_contact()
    subject, body = request.form.get("subject", ""), request.form.get("body", "")
    if contact is None:
        sample = Contact(id=0, first_name="Ada", last_name="Lovelace", email="ada@example.com", consent=True,
                         order_count=2, total_spent=84.5)
        contact = sample
    draft = outbox.draft(contact, key, subject, body, sender_name=current_user.name)
    return _frame(render_template("email/_preview_frame.html", draft=draft, contact=contact))


# --- composing and sending ---------------------------------------------------------------------

def _contact_or_404(contact_id: int) -> Contact:
    contact = db.session.get(Contact, contact_id)
    if contact is None:
        abort(404)
    return contact


def _task_for(contact: Contact) -> Task | None:
    task_id = request.values.get("task", type=int)
    if not task_id:
        return None
    task = db.session.get(Task, task_id)
    if task is None or task.contact_id != contact.id:
        abort(404)
    return task


@bp.route("/contacts/<int:contact_id>/email", methods=["GET", "POST"])
@access("write")
def compose(contact_id: int):
    """The composer: a template chosen, editable, previewed; sending queues the message."""
    contact = _contact_or_404(contact_id)
    task = _task_for(contact)
    default_key = templates.TASK_TEMPLATES.get(task.kind, "personal") if task else "personal"
    key = request.values.get("template") or default_key
    template = _template_or_404(key)
    errors = {}
    # "Use this template" starts again from the chosen template; otherwise the edited text is kept.
    edited = request.method == "POST" and request.form.get("action") != "choose"
    subject = request.form.get("subject", template.subject) if edited else template.subject
    body = request.form.get("body", template.body) if edited else template.body
    if request.method == "POST" and request.form.get("action") == "send":
        try:
            if task is not None and task.status != "open":
                raise ValidationError(fields={"form": f"This to-do is already {task.status}."})
            message = outbox.queue_message(contact, key, subject=subject, body=body, actor_id=current_user.id, task=task)
            db.session.commit()
            if message.status == "queued":
                flash(f"Email “{message.subject}” queued for {message.to_address}."
                      + (" The to-do is done: email sent." if task else ""), "success")
            else:
                flash(f"Not sent: {suppression.REASONS[message.reason]}", "warning")
            return redirect(url_for("contacts.show", contact_id=contact.id))
        except ValidationError as error:
            db.session.rollback()
            errors = error.fields
    draft = outbox.draft(contact, key, subject, body, sender_name=current_user.name)
    return render_template("email/compose.html", contact=contact, task=task, draft=draft, key=key, errors=errors,
                           all_templates=templates.all_templates(), history=suppression.history(contact.id),
                           messages=outbox.for_contact(contact.id)), (422 if errors else 200)


@bp.route("/emails/<int:message_id>")
@access("read")
def message(message_id: int):
    """One stored message: status, the server's answer, times, both parts."""
    email = db.get_or_404(EmailMessage, message_id)
    contact = db.session.get(Contact, email.contact_id) if email.contact_id else None
    return render_template("email/message.html", email=email, contact=contact,
                           reason=suppression.REASONS.get(email.reason or "") or sending.FAILURES.get(email.reason or "", email.reason))


@bp.route("/emails/<int:message_id>/html")
@access("read")
def message_html(message_id: int):
    """The message's HTML part, for the frame on the message page."""
    return _frame(db.get_or_404(EmailMessage, message_id).html_body)


@bp.route("/emails/by-interaction/<int:interaction_id>")
@access("read")
def by_interaction(interaction_id: int):
    """Open the message a timeline entry stands for."""
    email = outbox.by_interaction(interaction_id)
    if email is None:
        abort(404)
    return redirect(url_for("email.message", message_id=email.id))


# --- unsubscribe (public) ------------------------------------------------------------------------

@bp.route("/u/<token>", methods=["GET", "POST"])
@access("public")
@csrf.exempt
def unsubscribe(token: str):
    """GET shows a button and changes nothing; POST (a person or a mail provider's one-click) unsubscribes."""
    found = tokens.read(current_app.secret_key, token)
    contact = db.session.get(Contact, found.contact_id) if found else None
    shop_name = shop.current().name
    if contact is None or contact.erased_at is not None:
        return render_template("email/unsubscribe.html", invalid=True, shop_name=shop_name), 404
    done = False
    if request.method == "POST":
        message_id = found.message_id if found.message_id and db.session.get(EmailMessage, found.message_id) else None
        how = "one-click unsubscribe" if request.form.get("List-Unsubscribe") == "One-Click" else "unsubscribe link"
        suppression.unsubscribe(contact, message_id=message_id, how=how)
        db.session.commit()
        done = True
    return render_template("email/unsubscribe.html", invalid=False, done=done, shop_name=shop_name,
                           already=not contact.consent and suppression.suppressed(contact.email) is not None)
