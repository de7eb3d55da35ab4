"""The JSON API, version 1: contacts, orders, interactions and to-dos for other systems.

Authentication is a bearer token (see crm/views/__init__.py); the token acts as its user, so
roles apply: a viewer's token reads, support and sales write, an admin does everything the API
offers. Every error is {"error": {"code", "message", "fields"}}. The OpenAPI document at
/api/v1/openapi.json (crm/views/api_spec.py) describes exactly this module.
"""
from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, current_app, jsonify, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import HTTPException

from crm.database import take_write_lock, writes_later
from crm.extensions import csrf, db
from crm.models import STAGES, TASK_STATUSES, Contact, Interaction, Order, Task
from crm.services import shop
from crm.services.email import outbox as email_outbox
from crm.services.email import suppression
from crm.services.email import templates as email_templates
from crm.services.orders import recording as order_service
from crm.services.orders.single import api_order_record
from crm.services.people import contacts as contact_service
from crm.services.people import interactions, tasks
from crm.services.people import queries as contact_queries
from crm.services.segments import definition as segment_definition
from crm.services.segments import store as segments
from crm.services.shared.bounds import MAX_INT, BadJson, check_moment, parse_id, parse_json
from crm.services.shared.errors import N_, Message, NotFound, ValidationError
from crm.services.shared.said import Said
from crm.views.access import access
from crm.views.api_errors import api_error, api_error_response, in_reader_language
from crm.views.api_spec import spec
from crm.views.import_text import outcome_words

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # bearer tokens, never cookies, so there is nothing for CSRF to protect

DEFAULT_LIMIT, MAX_LIMIT = 50, 200
MAX_BODY = 1024 * 1024
# What a client may set on a contact, with the JSON types each accepts.
CONTACT_FIELDS: dict[str, tuple[type, ...]] = {
    "email": (str,), "first_name": (str,), "last_name": (str,), "phone": (str,), "company": (str,),
    "title": (str,), "birthday": (str,), "address": (str,), "city": (str,), "country": (str,),
    "owner_id": (int,), "consent": (bool,), "do_not_contact": (bool,), "stay_in_touch_days": (int,), "language": (str,),
    "tags": (list,),
}
INTERACTION_FIELDS: dict[str, tuple[type, ...]] = {
    "kind": (str,), "direction": (str,), "channel": (str,), "subject": (str,), "body": (str,),
    "outcome": (str,), "sentiment": (str,), "occurred_at": (str,),
}
TASK_CHANGE_FIELDS: dict[str, tuple[type, ...]] = {
    "status": (str,), "outcome": (str,), "reason": (str,), "snoozed_until": (str,), "assignee_id": (int,),
}
# Longest text each contact field can store (the service checks names, email and phone itself).
CONTACT_LENGTHS = {"company": 200, "title": 200, "address": 400, "city": 120, "email": 320, "phone": 40,
                   "birthday": 10, "country": 2}


class Refused(Exception):
    """Answer the request with an API error (status, message, per-field reasons)."""

    def __init__(self, status: int, message: str, fields: dict | None = None, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.fields, self.extra = status, message, fields or {}, extra


# The API's rate limit is the application limit in crm/extensions.py: one budget, one key.


@bp.errorhandler(Refused)
def _refused(error: Refused):
    db.session.rollback()
    return api_error(error.status, error.message, error.fields, **error.extra)


@bp.errorhandler(ValidationError)
def _invalid(error: ValidationError):
    db.session.rollback()
    message = error.message
    if error.fields and message == ValidationError().message:
        # The form's words ("the highlighted fields") mean nothing to an API client: name them.
        message = _("Some fields are invalid: %(reasons)s", reasons="; ".join(
            f"{name}: {in_reader_language(reason)}" for name, reason in error.fields.items()))
    return api_error(422, message, error.fields)


@bp.errorhandler(HTTPException)
def _http(error: HTTPException):
    db.session.rollback()
    return api_error_response(error)


# -- reading requests --------------------------------------------------------------------------

def _json_body(*, invalid_status: int = 400) -> dict[str, Any]:
    """The request's JSON object, or a 413/415/400 refusal."""
    if (request.content_length or 0) > current_app.config.get("API_MAX_BODY", MAX_BODY):
        raise Refused(413, N_("The body is too large for the API."))
    if not request.is_json:
        raise Refused(415, N_("Send a JSON body with Content-Type: application/json."))
    data = request.get_data()
    if len(data) > current_app.config.get("API_MAX_BODY", MAX_BODY):
        raise Refused(413, N_("The body is too large for the API."))
    try:
        body = parse_json(data)
    except BadJson as error:
        # A segment definition is refused with 422 (issue 17: hostile definitions), other bodies with 400.
        why = error.args[0] if error.args else str(error)  # a Said: said in the client's language
        raise Refused(invalid_status, why, {"body": why} if invalid_status == 422 else None) from None
    if not isinstance(body, dict):
        raise Refused(400, N_("The body must be a JSON object."))
    if where := _unstorable_text(body):
        raise ValidationError(fields={where: N_("Text must not contain NUL characters or unpaired surrogates.")})
    return body


def _unstorable_text(value: Any, where: str = "") -> str | None:
    """The path of the first string a database cannot store (NUL, lone surrogate), or None."""
    if isinstance(value, str):
        if "\x00" in value:
            return where or "body"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where or "body"
        return None
    if isinstance(value, dict):
        items = ((f"{where}.{key}" if where else str(key), item) for key, item in value.items())
    elif isinstance(value, list):
        items = ((f"{where}[{i}]", item) for i, item in enumerate(value))
    else:
        return None
    for path, item in items:
        if found := _unstorable_text(item, path):
            return found
    return None


def _typed(body: dict[str, Any], allowed: dict[str, tuple[type, ...]], *, nullable: tuple[str, ...] = (),
           lengths: dict[str, int] | None = None) -> dict:
    """The body's fields after checking names, JSON types and sizes (ValidationError names each bad one)."""
    errors = {}
    for name, value in body.items():
        if name not in allowed:
            errors[name] = N_("Unknown or read-only field.")
        elif value is None:
            if name not in nullable:
                errors[name] = N_("Must not be null.")
        elif isinstance(value, bool) and bool not in allowed[name]:
            errors[name] = Message(N_("Must be %(type)s."), type=_type_name(allowed[name]))
        elif not isinstance(value, allowed[name]):
            errors[name] = Message(N_("Must be %(type)s."), type=_type_name(allowed[name]))
        elif isinstance(value, int) and not isinstance(value, bool) and not -MAX_INT <= value <= MAX_INT:
            errors[name] = N_("Out of range.")
        elif isinstance(value, str) and lengths and name in lengths and len(value) > lengths[name]:
            errors[name] = Message(N_("At most %(count)s characters."), count=lengths[name])
    if errors:
        raise ValidationError(fields=errors)
    return dict(body)


def _type_name(types: tuple[type, ...]) -> str:
    return Said({str: N_("a string"), int: N_("an integer"), bool: N_("true or false"), list: N_("a list"),
                 dict: N_("an object")}[types[0]])


def _limit() -> int:
    text = request.args.get("limit")
    if text is None:
        return DEFAULT_LIMIT
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(fields={"limit": Message(N_("Give a whole number from 1 to %(high)s."), high=MAX_LIMIT)})
    return limit


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode().rstrip("=")


def _cursor() -> int | None:
    text = request.args.get("cursor")
    if not text:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        after = value["after"]
        if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= MAX_INT:
            raise ValueError
        return after
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise ValidationError(fields={"cursor": N_("Not a cursor this API gave out; start again without it.")}) from None


def _int_arg(name: str) -> int | None:
    text = request.args.get(name)
    if text in (None, ""):
        return None
    value = parse_id(text)
    if value is None:
        raise ValidationError(fields={name: Message(N_("Give an id (a whole number from 1 to %(high)s)."), high=MAX_INT)})
    return value


def _page(items: list, limit: int, serialise) -> dict:
    return {"items": [serialise(item) for item in items],
            "next": encode_cursor(items[-1].id) if len(items) == limit else None}


def _time(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if value else None


def _parse_time(name: str, text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
        value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise ValidationError(fields={name: N_("Use an ISO 8601 time such as 2026-05-03T14:30:00Z.")}) from None
    try:
        return check_moment(value)
    except ValueError as error:
        raise ValidationError(fields={name: Message("%(why)s.", why=error.args[0])}) from None


# -- serialisers -------------------------------------------------------------------------------

def _breakdown(items: Any) -> list[dict]:
    """The stored score breakdown as [{"rule", "points", "why"}], whatever shape the engine stored."""
    lines = []
    for item in items or []:
        if isinstance(item, dict):
            rule, points, why = item.get("rule", ""), item.get("points", 0), item.get("why", "")
        elif isinstance(item, (list, tuple)) and len(item) >= 2:
            rule, points, why = item[0], item[1], item[2] if len(item) > 2 else ""
        else:
            continue
        try:
            points = int(points)
        except (TypeError, ValueError):
            points = 0
        lines.append({"rule": str(rule), "points": points, "why": str(why)})
    return lines


def contact_json(contact: Contact, email_status: str | None = None) -> dict[str, Any]:
    """Return a contact as the API shows it (the one serialiser)."""
    if email_status is None:
        email_status = suppression.status_of(contact, True).status
    return {
        "id": contact.id,
        "email": contact.email,
        "email_display": contact.email_display,
        "first_name": contact.first_name or "",
        "last_name": contact.last_name or "",
        "phone": contact.phone,
        "company": contact.company,
        "title": contact.title,
        "birthday": contact.birthday.isoformat() if contact.birthday else None,
        "address": contact.address,
        "city": contact.city,
        "country": contact.country,
        "source": contact.source,
        "owner_id": contact.owner_id,
        "consent": bool(contact.consent),
        "do_not_contact": bool(contact.do_not_contact),
        "email_status": email_status,
        "stay_in_touch_days": contact.stay_in_touch_days,
        "language": contact.language,
        "tags": [tag.name for tag in contact.tags],
        "stage": contact.stage,
        "stage_reason": contact.stage_reason or "",
        "stage_pinned": bool(contact.stage_pinned),
        "health": contact.health,
        "lead_score": contact.lead_score or 0,
        "score_breakdown": _breakdown(contact.score_breakdown),
        "order_count": contact.order_count or 0,
        "total_spent": str(contact.total_spent if contact.total_spent is not None else "0.00"),
        "first_order_at": _time(contact.first_order_at),
        "last_order_at": _time(contact.last_order_at),
        "last_interaction_at": _time(contact.last_interaction_at),
        "external_ids": [{"source": e.source, "id": e.external_id} for e in contact.external_ids],
        "created_at": _time(contact.created_at),
        "updated_at": _time(contact.updated_at),
    }


def order_json(order: Order, result: str | None = None) -> dict[str, Any]:
    data = {
        "id": order.id, "contact_id": order.contact_id, "source": order.source, "external_id": order.external_id,
        "number": order.number, "placed_at": _time(order.placed_at), "status": order.status,
        "currency": order.currency,
        **{name: str(getattr(order, name)) for name in ("subtotal", "discount", "shipping", "tax", "total", "refunded")},
        "lines": [{"sku": line.sku, "name": line.name, "quantity": line.quantity, "unit_price": str(line.unit_price)}
                  for line in order.lines],
    }
    if result is not None:
        data["result"] = result
    return data


def interaction_json(interaction: Interaction) -> dict[str, Any]:
    return {
        "id": interaction.id, "contact_id": interaction.contact_id, "author_id": interaction.author_id,
        "kind": interaction.kind, "direction": interaction.direction, "channel": interaction.channel,
        "subject": interaction.subject or "", "body": interaction.body or "", "outcome": interaction.outcome,
        "sentiment": interaction.sentiment, "occurred_at": _time(interaction.occurred_at),
        "task_id": interaction.task_id,
    }


def task_json(task: Task) -> dict[str, Any]:
    return {
        "id": task.id, "contact_id": task.contact_id, "kind": task.kind, "title": task.title,
        "reason": task.reason or "", "due_at": _time(task.due_at), "status": task.status,
        "assignee_id": task.assignee_id, "snoozed_until": _time(task.snoozed_until),
        "created_at": _time(task.created_at), "closed_at": _time(task.closed_at),
        "close_reason": task.close_reason, "outcome": task.outcome,
    }


# -- contacts ----------------------------------------------------------------------------------

def _contact_or_404(contact_id: int) -> Contact:
    if contact_id > MAX_INT:
        raise Refused(404, Message(N_("No contact #%(id)s."), id=str(contact_id)))
    contact = db.session.scalar(select(Contact).where(Contact.id == contact_id, Contact.erased_at.is_(None))
                                .options(selectinload(Contact.tags), selectinload(Contact.external_ids)))
    if contact is None:
        raise Refused(404, Message(N_("No contact #%(id)s."), id=str(contact_id)))
    return contact


def _contact_values(body: dict[str, Any]) -> tuple[dict[str, Any], list[str] | None]:
    """Split a contact body into service values and tags (the service checks the owner)."""
    values = _typed(body, CONTACT_FIELDS, lengths=CONTACT_LENGTHS,
                    nullable=tuple(n for n in CONTACT_FIELDS if n not in ("tags", "consent", "do_not_contact")))
    tags = values.pop("tags", None)
    if tags is not None and (len(tags) > 50 or not all(isinstance(t, str) and 0 < len(t.strip()) <= 80 for t in tags)):
        raise ValidationError(fields={"tags": N_("Give at most 50 tags, each a name of 1 to 80 characters.")})
    for name in ("first_name", "last_name"):
        if name in values and values[name] is None:
            values[name] = ""
    return values, tags


def _refuse_duplicate_email(email: Any, contact_id: int | None = None) -> None:
    if not isinstance(email, str):
        return
    other = contact_service.by_email(email)
    if other is not None and other.id != contact_id:
        raise Refused(409, Message(N_("Contact #%(id)s already has the email %(email)s."), id=str(other.id),
                                   email=other.email),
                      {"email": Message(N_("Already used by contact #%(id)s."), id=str(other.id))}, existing_id=other.id)


@bp.route("/contacts", methods=["GET", "POST"])
@access("read", post="write")
def contacts():
    """GET: search contacts, a page at a time. POST: create a contact."""
    if request.method == "POST":
        values, tags = _contact_values(_json_body())
        _refuse_duplicate_email(values.get("email"))
        contact = contact_service.create_contact(values, actor_id=current_user.id, source="api", tags=tags)
        db.session.commit()
        response = jsonify(contact_json(_contact_or_404(contact.id)))
        response.status_code = 201
        response.headers["Location"] = url_for("api.contact", contact_id=contact.id)
        return response
    stage = request.args.get("stage") or None
    if stage is not None and stage not in STAGES:
        raise ValidationError(fields={"stage": Message(N_("Use one of %(choices)s."), choices=", ".join(STAGES))})
    q = request.args.get("q", "")
    if len(q) > 200 or "\x00" in q:
        raise ValidationError(fields={"q": N_("Give a search of at most 200 characters.")})
    limit, after = _limit(), _cursor()
    found = contact_queries.search_contacts(q, stage=stage, after_id=after, limit=limit)
    statuses = suppression.email_statuses(found)  # one query for the page, not one per contact
    return jsonify(_page(found, limit, lambda c: contact_json(c, statuses[c.id])))


@bp.route("/contacts/<int:contact_id>", methods=["GET", "PATCH"])
@access("read", patch="write")
def contact(contact_id: int):
    """GET: one contact. PATCH: change some of its fields (and tags)."""
    if request.method == "PATCH":
        found = contact_service.writable_contact(contact_id)
        values, tags = _contact_values(_json_body())
        _refuse_duplicate_email(values.get("email"), found.id)
        contact_service.update_contact(found, values, actor_id=current_user.id, via="api")
        if tags is not None:
            contact_service.replace_tags(found, tags, actor_id=current_user.id)
        db.session.commit()
    return jsonify(contact_json(_contact_or_404(contact_id)))


@bp.route("/contacts/<int:contact_id>/interactions", methods=["POST"])
@access("write")
def contact_interactions(contact_id: int):
    """Log an interaction (a call, an email, a note ...) with a contact."""
    found = contact_service.writable_contact(contact_id)
    values = _typed(_json_body(), INTERACTION_FIELDS, nullable=("channel", "outcome", "sentiment", "occurred_at"),
                    lengths={"body": 20000})
    if isinstance(values.get("occurred_at"), str):
        values["occurred_at"] = _parse_time("occurred_at", values["occurred_at"])
    interaction = interactions.log_interaction(found, values, author_id=current_user.id)
    db.session.commit()
    response = jsonify(interaction_json(interaction))
    response.status_code = 201
    return response


# -- email -------------------------------------------------------------------------------------

EMAIL_FIELDS: dict[str, tuple[type, ...]] = {"template": (str,), "subject": (str,), "body": (str,)}


def email_json(message) -> dict[str, Any]:
    data = {
        "id": message.id, "contact_id": message.contact_id, "template": message.template_key,
        "status": message.status, "reason": message.reason, "smtp_answer": message.smtp_answer,
        "subject": message.subject, "message_id": message.message_id, "attempts": message.attempts,
        "created_at": _time(message.created_at), "finished_at": _time(message.finished_at),
    }
    if message.reason and message.status == "suppressed":
        data["reason_text"] = suppression.REASONS.get(message.reason, message.reason)
    return data


@bp.route("/contacts/<int:contact_id>/emails", methods=["POST"])
@access("write")
def contact_emails(contact_id: int):
    """Queue an email to a contact from a template (or a personal subject and body): 202."""
    found = _contact_or_404(contact_id)
    values = _typed(_json_body(), EMAIL_FIELDS, lengths={"subject": 300, "body": 50000, "template": 60})
    bad = {name: N_("Contains characters that cannot be stored.") for name in values if _unstorable_text(values[name])}
    if bad:
        raise ValidationError(fields=bad)
    key = values.get("template") or ("personal" if "body" in values else None)
    if key is None:
        raise ValidationError(fields={"template": N_("Name a template, or give a subject and body.")})
    try:
        email_templates.get(key)
    except NotFound:
        raise ValidationError(fields={"template": Message(N_("There is no template %(key)s; use one of %(choices)s."),
                                      key=repr(key), choices=", ".join(email_templates.DEFAULTS))}) from None
    message = email_outbox.queue_message(found, key, subject=values.get("subject"), body=values.get("body"),
                                         actor_id=current_user.id)
    db.session.commit()
    response = jsonify(email_json(message))
    response.status_code = 202
    response.headers["Location"] = url_for("api.email", message_id=message.id)
    return response


@bp.route("/emails/<int:message_id>")
@access("read")
def email(message_id: int):
    """One message's status and the server's answer."""
    from crm.models import EmailMessage

    message = db.session.get(EmailMessage, message_id) if message_id <= MAX_INT else None
    if message is None:
        raise Refused(404, Message(N_("There is no email #%(id)s."), id=str(message_id)))
    return jsonify(email_json(message))


# -- newsletters and flows ---------------------------------------------------------------------

def campaign_json(campaign) -> dict[str, Any]:
    from crm.services.campaigns import figures

    return {"id": campaign.id, "name": campaign.name, "status": campaign.status, "segment_id": campaign.segment_id,
            "template": campaign.template_key, "subject": campaign.subject, "scheduled_at": _time(campaign.scheduled_at),
            "started_at": _time(campaign.started_at), "finished_at": _time(campaign.finished_at),
            "figures": figures.campaign(campaign.id).as_json()}


@bp.route("/campaigns")
@access("read")
def campaigns():
    """Every newsletter with its figures."""
    from crm.services.campaigns import store

    return jsonify({"items": [campaign_json(c) for c in store.all_campaigns()[:200]]})


@bp.route("/campaigns/<int:campaign_id>")
@access("read")
def campaign(campaign_id: int):
    """One newsletter with its figures."""
    from crm.models import Campaign

    found = db.session.get(Campaign, campaign_id) if campaign_id <= MAX_INT else None
    if found is None:
        raise Refused(404, Message(N_("There is no newsletter #%(id)s."), id=str(campaign_id)))
    return jsonify(campaign_json(found))


@bp.route("/flows")
@access("read")
def flows():
    """Each rule's flow and what its emails earned."""
    from crm.services.campaigns import figures
    from crm.services.flows import config as flow_config

    return jsonify({"items": [{"rule": rule, "action": flow.action, "segment_id": flow.segment_id,
                               "figures": figures.flow(rule).as_json()}
                              for rule, flow in flow_config.flows().items()]})


# -- orders ------------------------------------------------------------------------------------

@bp.route("/orders", methods=["POST"])
@access("write")
@writes_later
def orders():
    """Record an order: 201 when new, 200 when that source's order id was already recorded.

    On SQLite the token's user is signed in and the body read before the write lock is taken
    (`writes_later`), so the other worker's writes wait only for the recording itself.
    """
    record = api_order_record(_json_body(), default_currency=shop.current().currency)
    actor_id = current_user.id
    take_write_lock(db.session)
    outcome = order_service.record_order(record, actor_id=actor_id)
    if outcome.result == "rejected":
        raise ValidationError(fields={outcome.field or "body": outcome_words(outcome.reason) or N_("The order was refused.")})
    # The answer is read before the commit (in the same transaction: what was just written), so
    # the commit expiring every object does not cost the order, its lines and the user read again.
    order = db.session.scalar(select(Order).where(Order.id == outcome.order_id).options(selectinload(Order.lines)))
    answer = order_json(order, outcome.result)
    db.session.commit()
    response = jsonify(answer)
    response.status_code = 201 if outcome.result == "created" else 200
    return response


# -- to-dos ------------------------------------------------------------------------------------

@bp.route("/tasks", methods=["GET"])
@access("read")
def task_list():
    """List to-dos, a page at a time, optionally of one status or one contact."""
    status = request.args.get("status") or None
    if status is not None and status not in TASK_STATUSES:
        raise ValidationError(fields={"status": Message(N_("Use one of %(choices)s."), choices=", ".join(TASK_STATUSES))})
    contact_id = _int_arg("contact_id")
    limit, after = _limit(), _cursor()
    query = select(Task).order_by(Task.id).limit(limit)
    if status:
        query = query.where(Task.status == status)
    if contact_id is not None:
        query = query.where(Task.contact_id == contact_id)
    if after is not None:
        query = query.where(Task.id > after)
    return jsonify(_page(list(db.session.scalars(query)), limit, task_json))


@bp.route("/tasks/<int:task_id>", methods=["PATCH"])
@access("write")
def task(task_id: int):
    """Work a to-do: done with an outcome, dismissed with a reason, snoozed, or reassigned."""
    found = db.session.get(Task, task_id) if task_id <= MAX_INT else None
    if found is None:
        raise Refused(404, Message(N_("No to-do #%(id)s."), id=str(task_id)))
    change = _typed(_json_body(), TASK_CHANGE_FIELDS, nullable=("snoozed_until", "assignee_id"))
    if not change:
        raise ValidationError(fields={"status": N_("Say what to change: status, snoozed_until or assignee_id.")})
    status = change.get("status")
    errors = {}
    if status not in (None, "done", "dismissed"):
        errors["status"] = N_("Set status to done (with an outcome) or dismissed (with a reason).")
    if "outcome" in change and status != "done":
        errors["outcome"] = N_("An outcome goes with status done.")
    if "reason" in change and status != "dismissed":
        errors["reason"] = N_("A reason goes with status dismissed.")
    if errors:
        raise ValidationError(fields=errors)
    try:
        if "assignee_id" in change:
            tasks.reassign_task(found, change["assignee_id"], actor_id=current_user.id)
        if "snoozed_until" in change:
            until = change["snoozed_until"]
            try:
                tasks.snooze_task(found, _parse_time("snoozed_until", until) if until else None, actor_id=current_user.id)
            except ValidationError as error:
                # The service names its field "until", as the page form does; the API calls it snoozed_until.
                fields = {("snoozed_until" if k == "until" else k): v for k, v in error.fields.items()}
                raise type(error)(error.message, fields=fields) from None
        if status == "done":
            tasks.complete_task(found, change.get("outcome", ""), actor_id=current_user.id)
        elif status == "dismissed":
            tasks.dismiss_task(found, change.get("reason", ""), actor_id=current_user.id)
    except tasks.TaskNotOpen as error:
        raise Refused(409, error.message, error.fields) from None
    db.session.commit()
    return jsonify(task_json(db.session.get(Task, task_id)))


# -- segments --------------------------------------------------------------------------------

SEGMENT_FIELDS: dict[str, tuple[type, ...]] = {"name": (str,), "description": (str,), "definition": (dict,)}


def segment_json(segment, count: int | None = None) -> dict[str, Any]:
    data = {"id": segment.id, "name": segment.name, "description": segment.description or "",
            "definition": segment.definition, "created_at": _time(segment.created_at),
            "updated_at": _time(segment.updated_at)}
    if count is not None:
        data["count"] = count
    return data


def _definition(raw: Any):
    """The checked definition, or a 422 naming each faulty condition as definition.<position>."""
    try:
        return segment_definition.parse(raw)
    except segment_definition.DefinitionError as error:
        raise ValidationError(error.message, {
            "definition" if position == "definition" else f"definition.{position}": reason
            for position, reason in error.fields.items()}) from None


def _segment_values(body: dict[str, Any]) -> dict[str, Any]:
    values = _typed(body, SEGMENT_FIELDS, nullable=("description",), lengths={"name": 120, "description": 1000})
    if "definition" in values:
        values["definition"] = segment_definition.to_json(_definition(values["definition"]))
    return values


def _segment_or_404(segment_id: int):
    found = segments.get(segment_id) if segment_id <= MAX_INT else None
    if found is None:
        raise Refused(404, Message(N_("No segment #%(id)s."), id=str(segment_id)))
    return found


@bp.route("/segments", methods=["GET", "POST"])
@access("read", post="write")
def segment_list():
    """GET: the saved segments, a page at a time. POST: save a segment; 201 with its id and count."""
    if request.method == "POST":
        values = _segment_values(_json_body(invalid_status=422))
        missing = {name: N_("Required.") for name in ("name", "definition") if name not in values}
        if missing:
            raise ValidationError(fields=missing)
        segment = segments.create(values, actor_id=current_user.id)
        size = segments.count(_definition(segment.definition))  # past the time limit: 422, nothing saved
        db.session.commit()
        response = jsonify(segment_json(segment, size))
        response.status_code = 201
        response.headers["Location"] = url_for("api.segment", segment_id=segment.id)
        return response
    limit, after = _limit(), _cursor()
    return jsonify(_page(segments.page_after(after_id=after, limit=limit), limit, segment_json))


@bp.route("/segments/preview", methods=["POST"])
@access("write")
def segment_preview():
    """Count a definition and show its first members, saving nothing."""
    body = _typed(_json_body(invalid_status=422), {"definition": (dict,)})
    if "definition" not in body:
        raise ValidationError(fields={"definition": N_("Required.")})
    definition = _definition(body["definition"])
    sample = segments.members_after(definition, limit=segments.SAMPLE_SIZE)
    return jsonify({"count": segments.count(definition), "sample": [contact_json(c) for c in sample]})


@bp.route("/segments/<int:segment_id>", methods=["GET", "PATCH", "DELETE"])
@access("read", patch="write", delete="admin")
def segment(segment_id: int):
    """GET: a segment with its count. PATCH: change its name, description or definition. DELETE: remove it."""
    found = _segment_or_404(segment_id)
    if request.method == "DELETE":
        segments.remove(found, actor_id=current_user.id)
        db.session.commit()
        return "", 204
    if request.method == "PATCH":
        segments.update(found, _segment_values(_json_body(invalid_status=422)), actor_id=current_user.id)
    size = segments.count(_definition(found.definition))  # past the time limit: 422, nothing changed
    db.session.commit()
    return jsonify(segment_json(found, size))


@bp.route("/segments/<int:segment_id>/contacts", methods=["GET"])
@access("read")
def segment_contacts(segment_id: int):
    """The segment's members, a page at a time (ordered by id), as the contact list API gives them."""
    found = _segment_or_404(segment_id)
    limit, after = _limit(), _cursor()
    members = segments.members_after(_definition(found.definition), after_id=after, limit=limit)
    return jsonify(_page(members, limit, contact_json))


# -- the description ---------------------------------------------------------------------------

@bp.route("/openapi.json")
@access("public")
def openapi():
    """The OpenAPI 3 description of this API."""
    return jsonify(spec(server_url=request.host_url.rstrip("/") + bp.url_prefix))
