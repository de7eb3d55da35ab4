"""One email rule: an address the contact form refuses is refused by imports, webhooks and the
API too (each saying why), so no imported contact carries an email nobody could save again."""
from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import func, select

from crm.extensions import db
from crm.models import Contact, Order, Setting
from crm.services.orders import webhooks
from crm.services.orders.importing import is_valid_email
from crm.services.orders.importing import run as importing
from crm.services.people import contacts
from crm.services.shared.errors import ValidationError
from crm.services.staff import api_tokens
from tests.contact_helpers import make_user

# Addresses the old import regex let through and email-validator (the forms' rule) refuses.
BAD = ["anna..b@example.com", "anna@exa_mple.com", ".anna@example.com"]


@pytest.mark.parametrize("address", BAD)
def test_the_rule_refuses_what_the_form_refuses(app, address):
    assert not is_valid_email(address)
    with pytest.raises(ValidationError) as refused:
        contacts.create_contact({"email": address, "first_name": "Anna"})
    assert "email" in refused.value.fields


def test_a_csv_import_rejects_each_bad_address_with_its_line_and_reason(app):
    rows = ["order_id,email,placed_at,total"] + [f"{n},{a},2026-03-01,10.00" for n, a in enumerate(BAD, 1)]
    rows.append("9,anna@example.com,2026-03-01,12.00")
    data = io.BytesIO("\n".join(rows).encode())
    run = importing.run_import("orders", data, "orders.csv", fmt="csv")
    rejected = {r.line: r.reason for r in run.rejections}
    assert sorted(rejected) == [2, 3, 4]
    for line, address in zip((2, 3, 4), BAD):
        assert address in rejected[line] and "not a valid email address" in rejected[line]
    assert db.session.scalar(select(func.count()).select_from(Order)) == 1
    assert db.session.scalar(select(Contact.email)) == "anna@example.com"


def test_a_webhook_order_with_a_bad_address_is_refused(client):
    db.session.add(Setting(key="webhooks.shopify_secret", value="s"))
    db.session.commit()
    order = {"id": 77, "name": "#77", "email": BAD[0], "created_at": "2026-05-01T10:00:00+02:00",
             "financial_status": "paid", "currency": "EUR", "total_price": "10.00",
             "line_items": [{"name": "Tea", "quantity": 1, "price": "10.00"}]}
    body = json.dumps(order).encode()
    response = client.post("/webhooks/shopify", data=body, headers={
        "X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": "d-1", "Content-Type": "application/json",
        "X-Shopify-Hmac-Sha256": webhooks.sign("s", body)})
    assert response.status_code == 400 and "not a valid email address" in response.json["message"]
    assert db.session.scalar(select(func.count()).select_from(Contact)) == 0


def test_an_api_order_with_a_bad_address_is_422_naming_the_email(client):
    _token, secret = api_tokens.create_token(make_user("admin"), "shop")
    db.session.commit()
    response = client.post("/api/v1/orders", headers={"Authorization": f"Bearer {secret}"}, json={
        "order_id": "1", "email": BAD[1], "placed_at": "2026-01-01", "total": 1})
    assert response.status_code == 422
    assert "not a valid email address" in response.json["error"]["fields"]["email"]
    assert db.session.scalar(select(func.count()).select_from(Contact)) == 0
