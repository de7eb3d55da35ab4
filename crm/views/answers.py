"""The public page a survey or testimonial link opens (signed token, no sign-in). GET shows the
score chosen and a comment box and records nothing (mail scanners prefetch links); POST records."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask_babel import force_locale
from flask_babel import gettext as _

from crm.extensions import csrf, db
from crm.models import Contact, EmailMessage
from crm.services import shop
from crm.services.email import answer_links, clicks, templates
from crm.services.flows import answers
from crm.services.shared.errors import ValidationError
from crm.views.access import access

bp = Blueprint("answers", __name__)


@bp.route("/a/<token>", methods=["GET", "POST"])
@access("public")
@csrf.exempt
def answer(token: str):
    found = answer_links.read(current_app.secret_key, token)
    contact = db.session.get(Contact, found.contact_id) if found else None
    # The shop's customer reads this page: in the contact's language, else the shop's (not the browser's).
    with force_locale(templates.language_for(contact)):
        return _answer(found, contact)


def _answer(found, contact: Contact | None):
    shop_name = shop.current().name
    if contact is None or contact.erased_at is not None:
        return render_template("answers/page.html", invalid=True, shop_name=shop_name), 404
    raw = (request.form if request.method == "POST" else request.args).get("score", "")
    score = int(raw) if raw.isdigit() and len(raw) <= 2 else None
    comment = request.form.get("comment", "") if request.method == "POST" else ""
    errors, done = {}, False
    if request.method == "POST":
        message_id = found.message_id if found.message_id and db.session.get(EmailMessage, found.message_id) else None
        try:
            answers.record(contact, found.kind, score, comment, message_id)
            db.session.commit()
            done = True
        except ValidationError as error:
            db.session.rollback()
            errors = {field: _error_words(field, text) for field, text in error.fields.items()}
    return render_template("answers/page.html", invalid=False, done=done, kind=found.kind, score=score,
                           comment=comment, errors=errors, shop_name=shop_name), (422 if errors else 200)


@bp.route("/r/<token>")
@access("public")
def click(token: str):
    """A link in a marketing email: record the click and go on to the address the token signs."""
    from flask import abort, redirect

    from crm.models import EmailClick

    found = clicks.read(current_app.secret_key, token)
    if found is None:
        abort(404)
    message_id, url = found
    if db.session.get(EmailMessage, message_id) is not None:
        db.session.add(EmailClick(message_id=message_id, url=url[:2000]))
        db.session.commit()
    return redirect(url, code=302)


def _error_words(field: str, text: str) -> str:
    """An answer's problem in the page's language (the service words it in English)."""
    if field == "score":
        return _("Choose a number from 0 to 10.")
    if field == "comment" and text.startswith("Keep"):
        return _("Keep it under %(limit)s characters.", limit="{:,}".format(answers.COMMENT_LIMIT))
    if field == "comment":
        return _("Write a few words.")
    return text
