"""Email pages: settings, templates (editor with live preview), the composer, sent messages,
and the public unsubscribe page."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from crm.extensions import csrf, db
from crm.models import Contact, EmailMessage, Task
from crm.services import shop
from crm.services.email import mailbox, outbox, sending, suppression, templates, tokens
from crm.services.email import settings as email_settings
from crm.services.people import queries as contact_queries
from crm.services.shared.errors import NotFound, ValidationError
from crm.services.shop import LANGUAGES as LANGUAGE_NAMES
from crm.views.access import access

bp = Blueprint("email", __name__)


@bp.app_template_global()
def task_email_kinds() -> frozenset[str]:
    """The to-do kinds that have an email template ("Send the email" on the to-do)."""
    return frozenset(templates.TASK_TEMPLATES)

# The templates' names as the CRM's pages show them (the service keeps the English ones).
TEMPLATE_NAMES = {
    "followup_first_order": _l("After the first order"), "testimonial_request": _l("Testimonial request"),
    "winback": _l("Win-back"), "birthday": _l("Birthday greeting"), "abandoned_cart": _l("Abandoned cart"),
    "replenishment": _l("Replenishment reminder"), "survey": _l("Survey"), "stay_in_touch": _l("Stay in touch"),
    "welcome": _l("Welcome"), "order_thanks": _l("Thanks for the order"), "personal": _l("Personal message"),
}
# What each template variable holds, for the editor's list.
VARIABLE_WORDS = {
    "contact.first_name": _l("first name"), "contact.last_name": _l("last name"), "contact.name": _l("full name"),
    "contact.email": _l("email address"), "contact.company": _l("company"), "contact.city": _l("city"),
    "contact.country": _l("country code"), "contact.birthday": _l("birthday (a date)"),
    "contact.order_count": _l("paid orders"), "contact.total_spent": _l("total spent"),
    "order.number": _l("the last order's number"), "order.placed_at": _l("when it was placed"),
    "order.total": _l("its total"), "order.currency": _l("its currency"),
    "order.lines": _l("its lines, each with name, sku, quantity, unit_price"),
    "shop.name": _l("the shop's name"), "shop.url": _l("the shop's public address"), "shop.address": _l("postal address"),
    "sender.name": _l("the person sending"),
    "links.scores": _l("eleven one-click answer links, 0 to 10 (a survey)"),
    "links.testimonial": _l("a link to leave a testimonial"),
}


# Why a message did not go, or failed (suppression and sending keys), in the reader's language.
REASON_WORDS = {
    "ok": _l("Can receive email."),
    "no_address": _l("The contact has no email address."),
    "erased": _l("The contact's personal data was erased."),
    "do_not_contact": _l("The contact is marked do not contact."),
    "bounced": _l("Mail to this address bounced; it is suppressed."),
    "unsubscribed": _l("The contact unsubscribed from marketing email."),
    "no_consent": _l("The contact has not given marketing consent (personal and order messages only)."),
    "rejected": _l("The server refused the message."),
    "temporary": _l("The server kept answering with a temporary error."),
    "interrupted": _l("The worker stopped while handing it over; it was not sent again."),
    "bad_address": _l("The address cannot be used in an email header."),
}
_STATUS_WORDS = {"queued": _l("queued"), "sending": _l("sending"), "sent": _l("sent"), "failed": _l("failed"),
                 "suppressed": _l("suppressed")}
_TASK_STATUS_WORDS = {"done": _l("done"), "dismissed": _l("dismissed"), "open": _l("open"), "closed": _l("closed")}


@bp.app_template_global("email_reason")
def reason_words(reason: str | None) -> str:
    """The words for a suppression or failure key (the key itself when unknown)."""
    if not reason:
        return ""
    if reason in REASON_WORDS:
        return str(REASON_WORDS[reason])
    return suppression.REASONS.get(reason) or sending.FAILURES.get(reason, reason)


@bp.app_template_global("email_status")
def status_words(status: str) -> str:
    """A message's status in the reader's language."""
    return str(_STATUS_WORDS.get(status, status))


def _status_word(status: str) -> str:
    return str(_TASK_STATUS_WORDS.get(status, status))


def _template_errors(fields: dict[str, str]) -> dict[str, str]:
    """The template checks' reasons in the reader's language (a compile error keeps Jinja's own words)."""
    words = {
        "Keep the subject on one line.": _l("Keep the subject on one line."),
        f"Keep the subject under {templates.SUBJECT_LIMIT} characters.":
            _l("Keep the subject under %(limit)s characters.", limit=templates.SUBJECT_LIMIT),
        "Write the message.": _l("Write the message."),
        f"Keep the message under {templates.BODY_LIMIT:,} characters.":
            _l("Keep the message under %(limit)s characters.", limit="{:,}".format(templates.BODY_LIMIT)),
        "Give the message a subject.": _l("Give the message a subject."),
    }
    translated = {}
    for field, text in fields.items():
        if text.startswith("Line ") and ": " in text:
            line, reason = text.split(": ", 1)
            translated[field] = _("Line %(line)s: %(reason)s", line=line.removeprefix("Line "), reason=reason)
        else:
            translated[field] = str(words.get(text, text))
    return translated


@bp.app_template_global("current_language")
def current_language() -> str:
    """The language the page is written in, for <html lang>."""
    locale = get_locale()
    return locale.language if locale is not None else "en"


@bp.app_template_filter("template_name")
def template_name(template: templates.Template) -> str:
    """A template's name in the reader's language."""
    return str(TEMPLATE_NAMES.get(template.key, template.name))


@bp.app_template_filter("language_name")
def language_name(code: str) -> str:
    """A language in its own words ("Nederlands"), as a language picker shows it."""
    return LANGUAGE_NAMES.get(code, code)


# The preview and message frames show the rendered email, whose CSS is inline by design.
FRAME_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"


def _frame(html: str):
    response = make_response(html)
    response.headers["Content-Security-Policy"] = FRAME_POLICY
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


def _template_or_404(key: str, language: str | None = None) -> templates.Template:
    try:
        return templates.get(key, language)
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
            flash(_("Email settings saved."), "success")
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
    """List the templates, customised or default, with the languages each is written in."""
    return render_template("email/templates.html", templates=templates.all_templates(),
                           languages=templates.LANGUAGES, customised=templates.customised_languages())


def _preview_contact() -> Contact | None:
    contact_id = request.values.get("contact_id", type=int)
    contact = db.session.get(Contact, contact_id) if contact_id else None
    if contact is None or contact.erased_at is not None:
        return None
    return contact


@bp.route("/settings/email/templates/<key>", methods=["GET", "POST"])
@access("read", post="admin")
def template_edit(key: str):
    """Edit a template's version in one language (?language=nl; default the shop's) beside its live preview;
    refused with the line and reason when it does not compile."""
    template = _template_or_404(key, request.values.get("language"))
    language = template.language
    errors, subject, body = {}, template.subject, template.body
    if request.method == "POST":
        subject, body = request.form.get("subject", ""), request.form.get("body", "")
        name = template_name(template)
        try:
            if request.form.get("action") == "reset":
                templates.reset(key, current_user.id, language)
                flash(_("“%(name)s” (%(language)s) is back to the shipped default.", name=name,
                        language=language_name(language)), "success")
            else:
                templates.save(key, subject, body, current_user.id, outbox.shop_context(email_settings.effective()),
                               language)
                flash(_("Template “%(name)s” (%(language)s) saved.", name=name, language=language_name(language)),
                      "success")
            db.session.commit()
            return redirect(url_for("email.template_edit", key=key, language=language))
        except ValidationError as error:
            db.session.rollback()
            errors = _template_errors(error.fields)
    variables = {name: VARIABLE_WORDS.get(name, what) for name, what in outbox.render.VARIABLES.items()}
    return render_template("email/template_edit.html", template=template, subject=subject, body=body, errors=errors,
                           variables=variables, contact=_preview_contact(), marketing=template.marketing,
                           language=language, versions=templates.versions(key)), (422 if errors else 200)


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
    language = templates.supported(request.form.get("language"))
    contact = _preview_contact()
    subject, body = request.form.get("subject", ""), request.form.get("body", "")
    if contact is None:
        sample = Contact(id=0, first_name="Ada", last_name="Lovelace", email="ada@example.com", consent=True,
                         order_count=2, total_spent=84.5, language=language)
        contact = sample
    draft = outbox.draft(contact, key, subject, body, sender_name=current_user.name, language=language)
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
    template = _template_or_404(key, templates.language_for(contact))
    errors = {}
    # "Use this template" starts again from the chosen template; otherwise the edited text is kept.
    edited = request.method == "POST" and request.form.get("action") != "choose"
    subject = request.form.get("subject", template.subject) if edited else template.subject
    body = request.form.get("body", template.body) if edited else template.body
    if request.method == "POST" and request.form.get("action") == "send":
        try:
            if task is not None and task.status != "open":
                raise ValidationError(fields={"form": _("This to-do is already %(status)s.", status=_status_word(task.status))})
            message = outbox.queue_message(contact, key, subject=subject, body=body, actor_id=current_user.id, task=task)
            db.session.commit()
            if message.status == "queued":
                if task:
                    flash(_("Email “%(subject)s” queued for %(address)s. The to-do is done: email sent.",
                            subject=message.subject, address=message.to_address), "success")
                else:
                    flash(_("Email “%(subject)s” queued for %(address)s.", subject=message.subject,
                            address=message.to_address), "success")
            else:
                flash(_("Not sent: %(reason)s", reason=reason_words(message.reason)), "warning")
            return redirect(url_for("contacts.show", contact_id=contact.id))
        except ValidationError as error:
            db.session.rollback()
            errors = _template_errors(error.fields)
    draft = outbox.draft(contact, key, subject, body, sender_name=current_user.name)
    return render_template("email/compose.html", contact=contact, task=task, draft=draft, key=key, errors=errors,
                           all_templates=templates.all_templates(templates.language_for(contact)), history=suppression.history(contact.id),
                           messages=outbox.for_contact(contact.id)), (422 if errors else 200)


@bp.route("/emails/<int:message_id>")
@access("read")
def message(message_id: int):
    """One stored message: status, the server's answer, times, both parts."""
    email = db.get_or_404(EmailMessage, message_id)
    contact = db.session.get(Contact, email.contact_id) if email.contact_id else None
    return render_template("email/message.html", email=email, contact=contact, reason=reason_words(email.reason))


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
    # The shop's customer reads this page: in the contact's language, else the shop's (not the browser's).
    with force_locale(templates.language_for(contact)):
        if contact is None or contact.erased_at is not None:
            return render_template("email/unsubscribe.html", invalid=True, shop_name=shop_name), 404
        return _unsubscribe(contact, found, shop_name)


def _unsubscribe(contact: Contact, found, shop_name: str):
    done = False
    if request.method == "POST":
        message_id = found.message_id if found.message_id and db.session.get(EmailMessage, found.message_id) else None
        how = "one-click unsubscribe" if request.form.get("List-Unsubscribe") == "One-Click" else "unsubscribe link"
        suppression.unsubscribe(contact, message_id=message_id, how=how)
        db.session.commit()
        done = True
    return render_template("email/unsubscribe.html", invalid=False, done=done, shop_name=shop_name,
                           already=not contact.consent and suppression.suppressed(contact.email) is not None)
