"""Composing and queueing: every message is a stored row (rendered subject and bodies,
Message-ID, status) before anything talks to a mail server.

`queue_message` is the one entry point: the contact page's composer, a to-do's "Send the
email", the API and (later) flows and newsletters call it. It renders, checks who may receive
it (a message that may not go is stored as `suppressed` with the reason), logs the outbound
email on the timeline, completes the to-do it answers, and hands the id to the sender.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import func, insert, inspect, select, update
from sqlalchemy.orm import make_transient_to_detached, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from crm.extensions import db
from crm.models import Contact, EmailMessage, Interaction, Order, Task, User, utcnow
from crm.models.order import PAID_STATUSES
from crm.services.email import answer_links, clicks, render, suppression, templates, tokens
from crm.services.email.settings import EmailSettings, effective
from crm.services.shared import signals
from crm.services.shared.errors import ValidationError
from crm.services.trust import audit


# Marketing footers made (per language and settings), with a marker where the unsubscribe link goes.
_FOOTERS: dict[tuple, tuple[str, str]] = {}
_FOOTER_LINK = "https://crm.invalid/u/FOOTERLINK"


@dataclass
class Draft:
    """What the composer shows: the rendered message and whether it may go."""

    template: templates.Template
    subject: str
    body: str
    rendered: render.Rendered | None
    eligibility: suppression.Eligibility
    problem: str | None = None


def shop_context(settings: EmailSettings) -> dict[str, Any]:
    return {"name": settings.shop_name, "url": settings.public_url, "address": settings.shop_address}


def last_order(contact_id: int) -> Order | None:
    return db.session.scalar(select(Order).where(Order.contact_id == contact_id, Order.status.in_(PAID_STATUSES))
                             .order_by(Order.placed_at.desc()).limit(1))


def _footer(settings: EmailSettings, marketing: bool, unsubscribe_url: str | None) -> tuple[str, str]:
    """The fixed end of every message, in the language of the locale in force (see `_render_for`)."""
    lines_text = [settings.shop_name]
    lines_html = [escape(settings.shop_name)]
    if settings.shop_address:
        lines_text.append(settings.shop_address)
        lines_html.append(escape(settings.shop_address).replace("\n", "<br>"))
    if marketing and unsubscribe_url:
        lines_text.append(_("Unsubscribe: %(url)s", url=unsubscribe_url))
        lines_html.append(_('<a href="%(url)s">Unsubscribe</a> from these emails.', url=escape(unsubscribe_url)))
    return "\n".join(lines_text), "<br>".join(lines_html)


def _render_for(contact: Contact, subject: str, body: str, settings: EmailSettings, marketing: bool,
                unsubscribe_url: str | None, sender_name: str, order: Order | None,
                message_id: int | None = None, language: str = "en") -> render.Rendered:
    """Render one message in a language: the footer's words, dates and amounts follow it."""
    secret = current_app.secret_key
    if render.uses("links", subject, body):
        survey = answer_links.make(secret, contact.id or 0, message_id, "survey")
        testimonial = answer_links.make(secret, contact.id or 0, message_id, "testimonial")
        links = answer_links.links_with(settings.public_url, survey, testimonial)
    else:  # the template never reads them: the same message without signing two tokens
        links, survey, testimonial = {"scores": [], "testimonial": ""}, None, None
    context = render.context_for(contact, order, shop_context(settings), sender_name, links)
    footer_text, footer_html = _footer_in(language, settings, marketing, unsubscribe_url)
    unsubscribe_token = unsubscribe_url.rpartition("/u/")[2] if unsubscribe_url else None
    return render.render(subject, body, context, footer_text=footer_text, footer_html=footer_html, language=language,
                         tokens=(unsubscribe_token, survey, testimonial))


def _footer_in(language: str, settings: EmailSettings, marketing: bool, unsubscribe_url: str | None) -> tuple[str, str]:
    """The footer in a language (the words are looked up once per language and settings)."""
    if not (marketing and unsubscribe_url):
        with force_locale(language):
            return _footer(settings, marketing, unsubscribe_url)
    key = (current_app.import_name, language, settings.shop_name, settings.shop_address)
    made = _FOOTERS.get(key)
    if made is None:
        if len(_FOOTERS) > 64:
            _FOOTERS.clear()
        with force_locale(language):
            made = _FOOTERS[key] = _footer(settings, True, _FOOTER_LINK)
    text, html = made
    marker = _FOOTER_LINK
    if text.count(marker) != 1 or html.count(escape(marker)) != 1:
        with force_locale(language):
            return _footer(settings, marketing, unsubscribe_url)
    return text.replace(marker, unsubscribe_url), html.replace(escape(marker), escape(unsubscribe_url))


def draft(contact: Contact, template_key: str, subject: str | None = None, body: str | None = None,
          sender_name: str = "", language: str | None = None) -> Draft:
    """Return the composer's view of a message for a contact: rendered, or the template problem.

    The template is the contact's language's (else the shop's, else English) unless a language is given.
    """
    settings = effective()
    template = templates.get(template_key, language or templates.language_for(contact))
    subject = template.subject if subject is None else subject
    body = template.body if body is None else body
    eligibility = suppression.eligibility(contact, template.marketing)
    preview_url = tokens.url(settings.public_url, current_app.secret_key, contact.id, None) if template.marketing else None
    try:
        rendered = _render_for(contact, subject, body, settings, template.marketing, preview_url, sender_name,
                               last_order(contact.id), language=template.language)
        problem = None
    except render.TemplateProblem as error:
        rendered, problem = None, str(error)
    return Draft(template, subject, body, rendered, eligibility, problem)


def _message_id(settings: EmailSettings) -> str:
    return f"<crm.{secrets.token_hex(12)}@{settings.sender_domain}>"


def queue_message(contact: Contact, template_key: str, *, subject: str | None = None, body: str | None = None,
                  actor_id: int | None = None, task: Task | None = None, now: datetime | None = None,
                  settings: EmailSettings | None = None) -> EmailMessage:
    """Render and store one message for a contact, queued or suppressed with the reason (flushed).

    Raises ValidationError when the subject or body does not render. A to-do, when given, is
    completed with the outcome "email sent" once the message is queued.
    """
    [message] = queue_messages([contact], template_key, subject=subject, body=body, actor_id=actor_id,
                               task=task, now=now, settings=settings)
    return message


def _last_orders(contact_ids: list[int]) -> dict[int, Order]:
    """Each contact's latest paid order, with its lines (two queries per 500 contacts)."""
    found: dict[int, Order] = {}
    for start in range(0, len(contact_ids), 500):
        chunk = contact_ids[start:start + 500]
        latest = (select(Order.contact_id, func.max(Order.placed_at).label("placed_at"))
                  .where(Order.contact_id.in_(chunk), Order.status.in_(PAID_STATUSES))
                  .group_by(Order.contact_id).subquery())
        rows = db.session.scalars(select(Order).join(latest, (Order.contact_id == latest.c.contact_id)
                                                     & (Order.placed_at == latest.c.placed_at))
                                  .options(selectinload(Order.lines)))
        for order in rows:
            found.setdefault(order.contact_id, order)
    return found


def _refresh(contacts: list[Contact]) -> None:
    """Read the contacts a commit expired again in one query per 1,000 (not one each when first touched)."""
    stale = [state.identity[0] for state in map(inspect, contacts) if state.expired_attributes and state.identity]
    for start in range(0, len(stale), 1000):
        db.session.scalars(select(Contact).where(Contact.id.in_(stale[start:start + 1000]))).all()


@dataclass(frozen=True)
class Queued:
    """One message `queue_many` stored: its row's id, contact, status and (when suppressed) why."""

    id: int
    contact_id: int
    status: str
    reason: str | None


def queue_messages(contacts: list[Contact], template_key: str, *, subject: str | None = None, body: str | None = None,
                   actor_id: int | None = None, task: Task | None = None, now: datetime | None = None,
                   settings: EmailSettings | None = None) -> list[EmailMessage]:
    """Render and store one message per contact, each queued or suppressed with the reason; return
    the stored messages (in the contacts' order). See `queue_many`."""
    messages = []
    for values in _store(contacts, template_key, subject=subject, body=body, actor_id=actor_id, task=task, now=now,
                         settings=settings):
        # The row as stored, in the session as if just read back (a column not given is read when used).
        message = EmailMessage(**values)
        make_transient_to_detached(message)
        db.session.add(message)
        messages.append(message)
    return messages


def queue_many(contacts: list[Contact], template_key: str, *, subject: str | None = None, body: str | None = None,
               actor_id: int | None = None, task: Task | None = None, now: datetime | None = None,
               settings: EmailSettings | None = None) -> list[Queued]:
    """Like `queue_messages`, for many: return what became of each message, not the rows (see `_store`)."""
    return [Queued(row["id"], row["contact_id"], row["status"], row["reason"])
            for row in _store(contacts, template_key, subject=subject, body=body, actor_id=actor_id, task=task,
                              now=now, settings=settings)]


def _store(contacts: list[Contact], template_key: str, *, subject: str | None, body: str | None,
           actor_id: int | None, task: Task | None, now: datetime | None,
           settings: EmailSettings | None) -> list[dict[str, Any]]:
    """Render and store one message per contact, each queued or suppressed with the reason.

    The one path every sender takes (composer, to-do, API, flows and newsletters): the template is
    checked once, suppressions and last orders are read in bulk, every message is logged on its
    contact's timeline, the engine re-derives the contacts once, and the send jobs go to the worker
    when the caller commits. Each contact gets the template in their language (else the shop's,
    else English) unless the subject or body is given; the footer is always in their language.

    The rows (messages, timeline entries, audit entries) are written set-based: one INSERT of the
    messages (their ids sign the links), one UPDATE with what was rendered, one INSERT each of the
    timeline and audit entries. A to-do, when given, is completed as before (one message).
    """
    now = now or utcnow()
    settings = settings or effective()
    template = templates.get(template_key)
    given = subject is not None or body is not None
    words: dict[str, tuple[str, str]] = {}  # language -> (subject, body)

    def words_in(language: str) -> tuple[str, str]:
        if language not in words:
            found = templates.get(template_key, language)
            pair = (found.subject if subject is None else subject, found.body if body is None else body)
            if not str(pair[0]).strip():
                raise ValidationError(fields={"subject": "Give the message a subject."})
            if (pair[0], pair[1]) != (found.subject, found.body):  # the stored ones were checked at save
                pair = templates.clean(pair[0], pair[1], shop_context(settings))
            words[language] = pair
        return words[language]

    if not contacts:
        return []
    _refresh(contacts)
    shop_language = templates.shop_language()
    languages = {contact.id: templates.supported(contact.language) or shop_language for contact in contacts}
    if given:
        words_in(template.language)  # checked before anything is stored
    for language in set(languages.values()):
        words_in(language)
    marketing = template.marketing
    sender = db.session.get(User, actor_id) if actor_id else None
    sender_name = sender.name if sender else ""
    suppressed = suppression.suppressed_among(c.email for c in contacts if c.email)
    orders = _last_orders([c.id for c in contacts])
    stored = [{
        "contact_id": contact.id, "template_key": template.key, "task_id": task.id if task else None,
        "created_by_id": actor_id, "marketing": marketing, "to_address": contact.email or "",
        "to_name": render.one_line(contact.name if contact.email else ""), "subject": "", "html_body": "",
        "text_body": "", "message_id": _message_id(settings), "status": "queued", "attempts": 0, "created_at": now,
        "next_attempt_at": now} for contact in contacts]
    ids = list(db.session.scalars(insert(EmailMessage).returning(EmailMessage.id, sort_by_parameter_order=True), stored))
    secret = current_app.secret_key
    track = tracking_clicks()
    rows: list[dict[str, Any]] = []
    for contact, message_id in zip(contacts, ids):
        unsubscribe_url = tokens.url(settings.public_url, secret, contact.id, message_id) if marketing else None
        language = languages[contact.id]
        subject_in, body_in = words_in(language)
        try:
            rendered = _render_for(contact, subject_in, body_in, settings, marketing, unsubscribe_url,
                                   sender_name, orders.get(contact.id), message_id, language)
        except render.TemplateProblem as error:
            raise ValidationError(fields={"subject" if error.part == "Subject" else "body": str(error)}) from None
        html, text = rendered.html, rendered.text
        if marketing and track:
            html, text = clicks.rewrite(html, text, settings.public_url, secret, message_id)
        row = {"id": message_id, "subject": rendered.subject, "html_body": html, "text_body": text,
               "unsubscribe_url": unsubscribe_url, "status": "queued", "reason": None, "finished_at": None,
               "next_attempt_at": now}
        eligibility = suppression.status_of(contact, marketing, suppressed.get(contact.email or ""), looked_up=True)
        if not eligibility.ok:
            row.update(status="suppressed", reason=eligibility.status, finished_at=now, next_attempt_at=None)
        rows.append(row)
    db.session.execute(update(EmailMessage), rows)  # what was rendered, before anything reads the messages
    for contact, row in zip(contacts, rows):
        row["contact_id"] = contact.id
    _log_all(contacts, rows, actor_id, task, now)
    audit.record_all([{"action": "queue" if row["status"] == "queued" else "suppress", "entity": "email_message",
                       "entity_id": row["id"], "user_id": actor_id,
                       "after": {"contact_id": row["contact_id"], "template": template.key, "status": row["status"],
                                 "reason": row["reason"], "subject": row["subject"]}} for row in rows])
    queued = [row["id"] for row in rows if row["status"] == "queued"]
    if queued:
        from crm.services.email.jobs import queue_delivery

        queue_delivery(queued)  # the worker gets them when the caller commits
    for values, row in zip(stored, rows):
        values.update(row, smtp_answer=None, attempt_started_at=None, handed_over_at=None, bounce=None, bounced_at=None)
        values.setdefault("interaction_id", None)
    return stored


def tracking_clicks() -> bool:
    """Whether links in marketing email go through the click redirect (Settings → Rules, on by default)."""
    from crm.models import Setting

    row = db.session.get(Setting, "attribution")
    value = row.value if row is not None and isinstance(row.value, dict) else {}
    return bool(value.get("track_clicks", True))


def outcome_text(message: EmailMessage) -> str:
    """Return the words the timeline shows for a message's state."""
    if message.status == "suppressed":
        return f"not sent: {suppression.REASONS.get(message.reason or '', message.reason)}"
    if message.status == "failed":
        return f"failed: {message.smtp_answer or message.reason or 'unknown'}"[:300]
    if message.status == "sent":
        return "email sent"
    return "email queued"


def _log_all(contacts: list[Contact], rows: list[dict[str, Any]], actor_id: int | None, task: Task | None,
             now: datetime) -> None:
    """Put each message on its contact's timeline as an outbound email (a to-do's completion when it
    answers one), and set each row's `interaction_id`."""
    from crm.services.people import tasks as task_service

    entries: list[dict[str, Any]] = []  # the rows, beside the timeline entries inserted for them
    inserts: list[dict[str, Any]] = []
    changed: list[int] = []
    touched: list[Contact] = []
    for contact, row in zip(contacts, rows):
        if contact.erased_at is not None or not contact.email:
            continue
        if task is not None and row["status"] == "queued":
            # Completing the to-do logs its interaction (and re-derives the contact); this is that entry.
            interaction = task_service.complete_task(task, "email sent", actor_id, now=now)
            interaction.channel, interaction.subject, interaction.body = "crm email", row["subject"][:300], row["text_body"]
            interaction.kind, interaction.direction = "email", "outbound"
            db.session.flush()
            row["interaction_id"] = interaction.id
            continue
        entries.append(row)
        inserts.append({"contact_id": contact.id, "author_id": actor_id, "kind": "email", "direction": "outbound",
                        "channel": "crm email", "subject": row["subject"][:300], "body": row["text_body"],
                        "outcome": _outcome(row["status"], row["reason"]), "sentiment": None, "task_id": None,
                        "occurred_at": now, "created_at": now, "updated_at": now})
        changed.append(contact.id)
        if contact.last_interaction_at is None or now > contact.last_interaction_at:
            touched.append(contact)
    if touched:  # one executemany (updated_at follows, as on any change); the loaded contacts say so too
        db.session.execute(update(Contact), [{"id": contact.id, "last_interaction_at": now} for contact in touched])
        for contact in touched:
            set_committed_value(contact, "last_interaction_at", now)
            db.session.expire(contact, ["updated_at"])
    if inserts:
        interaction_ids = db.session.scalars(insert(Interaction).returning(Interaction.id, sort_by_parameter_order=True),
                                             inserts)
        for row, interaction_id in zip(entries, interaction_ids):
            row["interaction_id"] = interaction_id
    linked = [{"id": row["id"], "interaction_id": row["interaction_id"]} for row in rows if row.get("interaction_id")]
    if linked:
        db.session.execute(update(EmailMessage), linked)
    signals.after_contacts_changed(changed, now=now)


def _outcome(status: str, reason: str | None) -> str:
    """What the timeline says of a message just stored (see `outcome_text`)."""
    if status == "suppressed":
        return f"not sent: {suppression.REASONS.get(reason or '', reason)}"
    return "email queued"


def refresh_timeline(message: EmailMessage) -> None:
    """Bring the timeline entry's outcome in line with the message's status."""
    if message.interaction_id is None:
        return
    interaction = db.session.get(Interaction, message.interaction_id)
    if interaction is not None:
        interaction.outcome = outcome_text(message)


def for_contact(contact_id: int, limit: int = 20) -> list[EmailMessage]:
    return list(db.session.scalars(select(EmailMessage).where(EmailMessage.contact_id == contact_id)
                                   .order_by(EmailMessage.created_at.desc(), EmailMessage.id.desc()).limit(limit)))


def by_interaction(interaction_id: int) -> EmailMessage | None:
    return db.session.scalar(select(EmailMessage).where(EmailMessage.interaction_id == interaction_id))


def erase_contact(contact_id: int) -> int:
    """Blank the address and rendered content of an erased contact's messages; return how many."""
    count = 0
    for message in db.session.scalars(select(EmailMessage).where(EmailMessage.contact_id == contact_id)):
        message.to_address, message.to_name = "", ""
        message.subject, message.html_body, message.text_body, message.unsubscribe_url = "[erased]", "", "", None
        if message.status in ("queued", "sending"):
            message.status, message.reason, message.next_attempt_at = "suppressed", "erased", None
        count += 1
    return count
