"""Webhooks from Shopify and WooCommerce: verified, recorded once, and acted on.

Every request is kept as a `WebhookDelivery` an admin can read:
* refused (no secret configured, or a missing or wrong signature): status "rejected", with the
  reason and the delivery id it claimed, but no payload and no delivery id of its own, so that
  a forged request can neither plant data nor block the genuine delivery with the same id;
* a repeat of a delivery that was processed or ignored: nothing new is stored or changed;
* a body that is not JSON or not a valid order/customer: "failed", with the error and payload;
* a topic we do not act on: "ignored", kept with its payload;
* otherwise "processed". A failed delivery can be replayed from its stored payload.

Orders go through `orders.record_order` and customers through `orders.record_customers`, the
same paths as imports and the API. The service flushes; the view commits.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, has_app_context
from sqlalchemy import select

from crm.extensions import db
from crm.models import Contact, ContactExternalId, Setting, WebhookDelivery, utcnow
from crm.services.orders import recording as order_service
from crm.services.orders.importing.records import Rejected
from crm.services.orders.importing.shopify import parse_shopify_customer_json, parse_shopify_order_json
from crm.services.orders.importing.woocommerce import parse_woocommerce_customer, parse_woocommerce_order
from crm.services.people import tasks as task_service
from crm.services.shared.bounds import BadJson, parse_json
from crm.services.shared.emails import normalise_email
from crm.services.trust import audit, privacy

SOURCES = ("shopify", "woocommerce")
SETTING_KEYS = {"shopify": "webhooks.shopify_secret", "woocommerce": "webhooks.woocommerce_secret"}
CONFIG_KEYS = {"shopify": "SHOPIFY_WEBHOOK_SECRET", "woocommerce": "WOOCOMMERCE_WEBHOOK_SECRET"}
STATUSES = ("processed", "ignored", "failed", "rejected")
DATA_REQUEST_DAYS = 7


@dataclass
class Answer:
    """What to answer the shop: an HTTP status, a short message, and the delivery row (if kept)."""

    status: int
    message: str
    delivery: WebhookDelivery | None = None


# -- secrets -----------------------------------------------------------------------------------

def _config_secret(source: str) -> str | None:
    if not has_app_context():
        return None
    value = current_app.config.get(CONFIG_KEYS[source])
    # CRM_* variables are parsed as JSON when they can be, so a numeric secret arrives as an int.
    return str(value) if value not in (None, "") else None


def secret_origin(source: str) -> str | None:
    """Return where the source's secret comes from: "environment", "settings", or None (not set)."""
    if _config_secret(source):
        return "environment"
    setting = db.session.get(Setting, SETTING_KEYS[source])
    return "settings" if setting is not None and setting.value else None


def secret(source: str) -> str | None:
    """Return the secret that signs the source's webhooks (the environment wins over settings)."""
    configured = _config_secret(source)
    if configured:
        return configured
    setting = db.session.get(Setting, SETTING_KEYS[source])
    return str(setting.value) if setting is not None and setting.value else None


def set_secret(source: str, value: str | None, *, actor_id: int | None) -> None:
    """Store (or, with an empty value, remove) the source's secret; the audit log never sees it."""
    key = SETTING_KEYS[source]
    setting = db.session.get(Setting, key)
    value = (value or "").strip()
    if value:
        if setting is None:
            db.session.add(Setting(key=key, value=value))
        else:
            setting.value = value
    elif setting is not None:
        db.session.delete(setting)
    db.session.flush()
    audit.record("update", "setting", None, user_id=actor_id, after={"key": key, "set": bool(value)})


def sign(secret_value: str, body: bytes) -> str:
    """Return the base64 HMAC-SHA256 of a body, as Shopify and WooCommerce send it."""
    return base64.b64encode(hmac.new(secret_value.encode(), body, hashlib.sha256).digest()).decode()


def is_signed(source: str, body: bytes, signature: str | None) -> bool:
    """Return whether a request carries the right signature for the source's secret."""
    secret_value = secret(source)
    return bool(secret_value) and signature_valid(secret_value, body, signature)


def signature_valid(secret_value: str, body: bytes, signature: str | None) -> bool:
    if not signature:
        return False
    return hmac.compare_digest(sign(secret_value, body).encode(), signature.strip().encode("utf-8", "replace"))


# -- receiving ---------------------------------------------------------------------------------

def receive(source: str, *, body: bytes, signature: str | None, topic: str | None, delivery_id: str | None,
            now: datetime | None = None) -> Answer:
    """Verify, record and act on one delivery; return what to answer."""
    now = now or utcnow()
    topic = (topic or "").strip()[:80]
    delivery_id = (delivery_id or "").strip()[:120] or None
    secret_value = secret(source)
    if not secret_value:
        return _refuse(source, topic, delivery_id, now, f"no {source} webhook secret is configured")
    if not signature_valid(secret_value, body, signature):
        return _refuse(source, topic, delivery_id, now,
                       "no signature" if not signature else "the signature does not match the secret")
    delivery = None
    if delivery_id is not None:
        delivery = db.session.scalar(select(WebhookDelivery).where(
            WebhookDelivery.source == source, WebhookDelivery.delivery_id == delivery_id))
        if delivery is not None and delivery.status != "failed":
            return Answer(200, "Already received; nothing changed.", delivery)
    if delivery is None:
        # A failed delivery sent again with the same id is tried again on the same row.
        delivery = WebhookDelivery(source=source, delivery_id=delivery_id, status="failed", error="not processed yet")
        db.session.add(delivery)
    delivery.topic, delivery.received_at = topic, now
    # Kept as text for the log; a NUL byte cannot be stored in PostgreSQL text.
    delivery.payload = body.decode("utf-8", "replace").replace("\x00", "\ufffd")
    return process(delivery, now=now)


def record_ping(source: str, body: bytes, now: datetime | None = None) -> Answer:
    """Keep the unsigned ping WooCommerce sends when a webhook is saved; it carries no data."""
    delivery = WebhookDelivery(source=source, delivery_id=None, topic="ping", received_at=now or utcnow(),
                               status="ignored", payload=body.decode("utf-8", "replace")[:200].replace("\x00", ""))
    db.session.add(delivery)
    db.session.flush()
    return Answer(200, "Ping received.", delivery)


def _refuse(source: str, topic: str, delivery_id: str | None, now: datetime, reason: str) -> Answer:
    claimed = f" (delivery id {delivery_id})" if delivery_id else ""
    delivery = WebhookDelivery(source=source, delivery_id=None, topic=topic, received_at=now, status="rejected",
                               error=f"Refused: {reason}{claimed}. Nothing was stored.")
    db.session.add(delivery)
    db.session.flush()
    return Answer(401, f"Refused: {reason}.", delivery)


def process(delivery: WebhookDelivery, *, now: datetime | None = None) -> Answer:
    """Act on a stored delivery (a new one or a replay) and set its status and error."""
    now = now or utcnow()
    try:
        payload = parse_json(delivery.payload or "")
    except BadJson as error:
        return _finish(delivery, Answer(400, str(error)), "failed")
    handler = HANDLERS.get((delivery.source, delivery.topic))
    if handler is None:
        return _finish(delivery, Answer(202, f"Topic {delivery.topic or '(none)'!r} is not handled; recorded and ignored."),
                       "ignored")
    status, answer = handler(payload, delivery, now)
    return _finish(delivery, answer, status)


def _finish(delivery: WebhookDelivery, answer: Answer, status: str) -> Answer:
    delivery.status = status
    delivery.error = None if status == "processed" and answer.status == 200 else answer.message
    db.session.flush()
    answer.delivery = delivery
    return answer


def replay(delivery: WebhookDelivery, *, actor_id: int | None, now: datetime | None = None) -> Answer:
    """Process a failed delivery again from its stored payload."""
    if delivery.status != "failed" or delivery.payload is None:
        return Answer(409, "Only a failed delivery with a stored payload can be replayed.", delivery)
    answer = process(delivery, now=now)
    audit.record("replay", "webhook_delivery", delivery.id, user_id=actor_id,
                 after={"status": delivery.status, "error": delivery.error})
    return answer


# -- topics ------------------------------------------------------------------------------------

Handler = Callable[[object, WebhookDelivery, datetime], tuple[str, Answer]]


def _order(parse: Callable) -> Handler:
    def handle(payload, delivery, now):
        record = parse(payload)
        if isinstance(record, Rejected):
            return "failed", Answer(400, f"Not a valid order: {record.reason}")
        outcome = order_service.record_order(record, now=now)
        if outcome.result == "rejected" and outcome.reason == order_service.BLOCKED_REASON:
            delivery.payload = None  # the erased person's data is not kept, not even in the log
            return "ignored", Answer(200, f"Order {record.number} not recorded: {outcome.reason}.")
        if outcome.result == "rejected":
            return "ignored", Answer(200, f"Order {record.number} not recorded: {outcome.reason}.")
        return "processed", Answer(200, f"Order {record.number} {outcome.result}.")
    return handle


def _customer(parse: Callable) -> Handler:
    def handle(payload, delivery, now):
        record = parse(payload)
        if isinstance(record, Rejected):
            return "failed", Answer(400, f"Not a valid customer: {record.reason}")
        outcome = order_service.record_customers([record], now=now)[0]
        if outcome.result == "rejected" and outcome.reason == order_service.BLOCKED_REASON:
            delivery.payload = None  # the erased person's data is not kept, not even in the log
            return "ignored", Answer(200, f"Customer not recorded: {outcome.reason}.")
        if outcome.result == "rejected":
            return "ignored", Answer(200, f"Customer not recorded: {outcome.reason}.")
        return "processed", Answer(200, f"Contact #{outcome.contact_id} {outcome.result}.")
    return handle


def _privacy_customer(payload) -> tuple[dict, Contact | None]:
    """The customer a Shopify privacy webhook names, and our contact for them (by id, else email)."""
    customer = payload.get("customer") if isinstance(payload, dict) else None
    if not isinstance(customer, dict):
        raise ValueError("the body has no customer object")
    contact = None
    if customer.get("id") not in (None, ""):
        contact = db.session.scalar(select(Contact).join(ContactExternalId).where(
            ContactExternalId.source == "shopify", ContactExternalId.external_id == str(customer["id"])))
    email = normalise_email(customer.get("email") if isinstance(customer.get("email"), str) else None)
    if contact is None and email:
        contact = db.session.scalar(select(Contact).where(Contact.email == email))
    return customer, contact


def _shopify_redact(payload, delivery, now):
    try:
        customer, contact = _privacy_customer(payload)
    except ValueError as error:
        return "failed", Answer(400, f"Not a valid customers/redact body: {error}.")
    if contact is None:
        return "processed", Answer(200, f"No contact matches Shopify customer {customer.get('id')}; nothing to erase.")
    # Blocked from re-import, so an old export imported later cannot bring the customer back.
    privacy.erase_contact(contact, actor_id=None, block_email=True, now=now)
    return "processed", Answer(200, "Customer erased.")


def _shopify_data_request(payload, delivery, now):
    try:
        customer, contact = _privacy_customer(payload)
    except ValueError as error:
        return "failed", Answer(400, f"Not a valid customers/data_request body: {error}.")
    request_id = (payload.get("data_request") or {}).get("id") if isinstance(payload.get("data_request"), dict) else None
    shop = payload.get("shop_domain") or "the shop"
    if contact is None:
        return "processed", Answer(200, f"No contact matches Shopify customer {customer.get('id')}; "
                                        "the CRM holds no data to send.")
    orders = payload.get("orders_requested") or []
    task = task_service.create_rule_task(
        contact.id, "data_request", f"Send {contact.name} a copy of their data",
        reason=(f"Shopify data request{f' {request_id}' if request_id else ''} from {shop}: export the contact's "
                f"data and send it to the customer" + (f" (orders {', '.join(map(str, orders))[:200]})" if orders else "")
                + "."),
        due_at=now + timedelta(days=DATA_REQUEST_DAYS),
        rule_key=f"data_request:shopify:{request_id or delivery.delivery_id or delivery.id}",
    )
    return "processed", Answer(200, f"To-do #{task.id} created for an admin.")


HANDLERS: dict[tuple[str, str], Handler] = {
    ("shopify", "orders/create"): _order(parse_shopify_order_json),
    ("shopify", "orders/updated"): _order(parse_shopify_order_json),
    ("shopify", "orders/cancelled"): _order(parse_shopify_order_json),
    # These carry the same order resource, so they are one more chance to be up to date.
    ("shopify", "orders/paid"): _order(parse_shopify_order_json),
    ("shopify", "orders/fulfilled"): _order(parse_shopify_order_json),
    ("shopify", "orders/partially_fulfilled"): _order(parse_shopify_order_json),
    ("shopify", "customers/create"): _customer(parse_shopify_customer_json),
    ("shopify", "customers/update"): _customer(parse_shopify_customer_json),
    ("shopify", "customers/redact"): _shopify_redact,
    ("shopify", "customers/data_request"): _shopify_data_request,
    ("woocommerce", "order.created"): _order(parse_woocommerce_order),
    ("woocommerce", "order.updated"): _order(parse_woocommerce_order),
    ("woocommerce", "customer.created"): _customer(parse_woocommerce_customer),
    ("woocommerce", "customer.updated"): _customer(parse_woocommerce_customer),
}


# -- the log -----------------------------------------------------------------------------------

def already_received(source: str, delivery_id: str | None) -> bool:
    """Return whether a delivery with this id was processed or ignored before."""
    if not delivery_id:
        return False
    return db.session.scalar(select(WebhookDelivery.id).where(
        WebhookDelivery.source == source, WebhookDelivery.delivery_id == delivery_id[:120],
        WebhookDelivery.status != "failed")) is not None


def deliveries(status: str | None = None, *, before_id: int | None = None, limit: int = 50) -> list[WebhookDelivery]:
    """Return deliveries, newest first, optionally of one status, for a page of the log."""
    query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)
    if status:
        query = query.where(WebhookDelivery.status == status)
    if before_id:
        query = query.where(WebhookDelivery.id < before_id)
    return list(db.session.scalars(query))

