"""Webhooks: the receiving endpoints for Shopify and WooCommerce, and the admin's delivery log."""
from __future__ import annotations

import json
import re

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.exc import IntegrityError
from wtforms import BooleanField, PasswordField
from wtforms.validators import Length, Optional

from crm.extensions import csrf, db
from crm.models import WebhookDelivery
from crm.services.orders import webhooks
from crm.views import limits
from crm.views.access import access, narrowed
from crm.views.params import id_arg

bp = Blueprint("webhooks", __name__)

PAGE = 50
# The body WooCommerce posts, unsigned, when a webhook is saved in its admin.
WOO_PING = re.compile(rb"webhook_id=\d{1,20}")


DELIVERY_ID_HEADERS = {"shopify": "X-Shopify-Webhook-Id", "woocommerce": "X-WC-Webhook-Delivery-ID"}


def _delivery_id(source: str) -> str | None:
    return request.headers.get(DELIVERY_ID_HEADERS[source])


def _receive(source: str, receive, *, body: bytes, signature: str | None):
    """Run `receive()`, commit what the delivery changed and answer the shop with a small JSON body.

    Refused (unsigned or forged) requests count per address (WEBHOOK_REFUSAL_LIMIT); past the
    limit only they get 429. A correctly signed delivery is never limited by them, even from the
    same address (several shops behind one proxy).
    """
    if not webhooks.is_signed(source, body, signature) and \
            not limits.within("WEBHOOK_REFUSAL_LIMIT", "webhook-refused", limits.address()):
        limits.refuse("WEBHOOK_REFUSAL_LIMIT")
    for attempt in (1, 2):
        try:
            answer = receive()
            db.session.commit()
            break
        except IntegrityError:
            # Another request wrote the same row at the same moment (this delivery, or the same order).
            db.session.rollback()
            if webhooks.already_received(source, _delivery_id(source)):
                return jsonify(status="duplicate", message="Already received; nothing changed."), 200
            if attempt == 2:
                return jsonify(status="conflict", message="Another delivery changed the same record; send it again."), 409
    if answer.status == 401:
        limits.count("WEBHOOK_REFUSAL_LIMIT", "webhook-refused", limits.address())
    delivery = answer.delivery
    response = jsonify(status=delivery.status if delivery is not None else None, message=answer.message)
    response.status_code = answer.status
    return response


def receiver(view):
    """Make a view a webhook endpoint: public (the signature is the check), without CSRF (shops send
    no token); refused requests are limited per address in `_receive`."""
    view = csrf.exempt(view)
    return narrowed("requests signed with the shop's webhook secret")(access("public")(view))


@bp.route("/webhooks/shopify", methods=["POST"])
@receiver
def shopify():
    """Receive a Shopify webhook (orders, customers and the privacy topics)."""
    headers = request.headers
    body, signature = request.get_data(), headers.get("X-Shopify-Hmac-Sha256")
    return _receive("shopify", lambda: webhooks.receive(
        "shopify", body=body, signature=signature,
        topic=headers.get("X-Shopify-Topic"), delivery_id=_delivery_id("shopify"),
    ), body=body, signature=signature)


@bp.route("/webhooks/woocommerce", methods=["POST"])
@receiver
def woocommerce():
    """Receive a WooCommerce webhook (orders and customers), or the ping sent when one is saved."""
    headers = request.headers
    body = request.get_data()
    signature, topic = headers.get("X-WC-Webhook-Signature"), headers.get("X-WC-Webhook-Topic")
    if not signature and not topic and WOO_PING.fullmatch(body.strip()):
        # Unsigned by design, so limited per address on its own (WEBHOOK_PING_RATE_LIMIT):
        # past the limit nothing more is stored.
        if not limits.count("WEBHOOK_PING_RATE_LIMIT", "webhook-ping", limits.address()):
            limits.refuse("WEBHOOK_PING_RATE_LIMIT")
        return _receive("woocommerce", lambda: webhooks.record_ping("woocommerce", body.strip()),
                        body=body, signature="unsigned ping")
    return _receive("woocommerce", lambda: webhooks.receive(
        "woocommerce", body=body, signature=signature, topic=topic, delivery_id=_delivery_id("woocommerce"),
    ), body=body, signature=signature)


class SecretsForm(FlaskForm):
    shopify_secret = PasswordField(_l("New Shopify secret"), validators=[Optional(), Length(max=500)])
    clear_shopify = BooleanField(_l("Remove the Shopify secret"))
    woocommerce_secret = PasswordField(_l("New WooCommerce secret"), validators=[Optional(), Length(max=500)])
    clear_woocommerce = BooleanField(_l("Remove the WooCommerce secret"))


_STATUS_WORDS = {"processed": _l("processed"), "ignored": _l("ignored"), "failed": _l("failed"),
                 "rejected": _l("rejected")}


@bp.app_template_global("delivery_status")
def delivery_status(status: str) -> str:
    """A webhook delivery's status in the reader's language."""
    return str(_STATUS_WORDS.get(status, status))


@bp.route("/settings/webhooks", methods=["GET", "POST"])
@access("admin")
def deliveries():
    """Show the webhook secrets (set or not, never their value) and every delivery received."""
    form = SecretsForm()
    if form.validate_on_submit():
        changed = []
        for source in webhooks.SOURCES:
            value, clear = form[f"{source}_secret"].data, form[f"clear_{source}"].data
            if clear or value:
                webhooks.set_secret(source, None if clear else value, actor_id=current_user.id)
                changed.append(source.title() if source == "shopify" else "WooCommerce")
        db.session.commit()
        if len(changed) == 2:
            flash(_("Saved the %(first)s and %(second)s secret.", first=changed[0], second=changed[1]), "success")
        elif changed:
            flash(_("Saved the %(shop)s secret.", shop=changed[0]), "success")
        else:
            flash(_("Nothing to change."), "success")
        return redirect(url_for("webhooks.deliveries"))
    status = request.args.get("status") or None
    if status not in (None, *webhooks.STATUSES):
        abort(404)
    before = id_arg("before")
    rows = webhooks.deliveries(status, before_id=before, limit=PAGE + 1)
    return render_template(
        "webhooks/deliveries.html", form=form, rows=rows[:PAGE], status=status, statuses=webhooks.STATUSES,
        older=rows[PAGE - 1].id if len(rows) > PAGE else None,
        sources=[(source, webhooks.secret_origin(source), url_for(f"webhooks.{source}", _external=True))
                 for source in webhooks.SOURCES],
    )


@bp.route("/settings/webhooks/<int:delivery_id>")
@access("admin")
def delivery(delivery_id: int):
    """Show one delivery with its payload (refused ones have none)."""
    row = db.get_or_404(WebhookDelivery, delivery_id)
    payload = row.payload
    if payload:
        try:
            payload = json.dumps(json.loads(payload), indent=2, ensure_ascii=False)
        except ValueError:
            pass
    return render_template("webhooks/delivery.html", delivery=row, payload=payload)


@bp.route("/settings/webhooks/<int:delivery_id>/replay", methods=["POST"])
@access("admin")
def replay(delivery_id: int):
    """Process a failed delivery again from its stored payload."""
    row = db.get_or_404(WebhookDelivery, delivery_id)
    answer = webhooks.replay(row, actor_id=current_user.id)
    db.session.commit()
    category = "success" if row.status == "processed" else "error" if row.status == "failed" else "info"
    flash(_("Delivery #%(id)s: %(status)s. %(message)s", id=row.id, status=delivery_status(row.status),
            message=answer.message), category)
    return redirect(url_for("webhooks.delivery", delivery_id=row.id))
