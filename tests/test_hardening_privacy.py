"""Privacy gaps an attack found (issue 12, finding 7): what the export left out, what an erasure
left behind, and the ways around the email block."""
from __future__ import annotations

import io
import json
import zipfile

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.models import (
    Contact,
    ImportRejection,
    ImportRun,
    Setting,
    Task,
    WebhookDelivery,
    utcnow,
)
from crm.services.orders import webhooks
from crm.services.people import contacts, merge
from crm.services.staff import api_tokens
from crm.services.trust import audit, privacy
from tests.conftest import make_user
from tests.routes import seed_records
from tests.test_privacy import _all_text

SECRET = "shpss_test_secret"


@pytest.fixture
def app_config():
    return {"API_RATE_LIMIT": "1000000 per minute"}


@pytest.fixture
def contact(app):
    return db.session.get(Contact, seed_records()["contact"])


def _shopify(client, topic, payload, delivery):
    body = json.dumps(payload).encode()
    return client.post("/webhooks/shopify", data=body, headers={
        "X-Shopify-Topic": topic, "X-Shopify-Webhook-Id": delivery, "Content-Type": "application/json",
        "X-Shopify-Hmac-Sha256": webhooks.sign(SECRET, body)})


def test_the_export_holds_the_webhook_bodies_and_rejected_rows_that_carry_the_person(contact):
    db.session.add(WebhookDelivery(source="woocommerce", delivery_id="w-9", topic="order.created", status="failed",
                                   payload='{"billing": {"email": "ADA@example.com", "phone": "+4930123456"}}'))
    run = db.session.scalar(select(ImportRun))
    db.session.add(ImportRejection(run_id=run.id, line=7, reason="total: missing",
                                   raw={"Email": "ada@example.com", "Name": "#1003"}))
    db.session.commit()
    archive = zipfile.ZipFile(io.BytesIO(privacy.export_contact(contact.id)))
    data = json.loads(archive.read("data.json"))
    assert [d["delivery_id"] for d in data["webhook_deliveries"]] == ["w-9"]
    assert [r["line"] for r in data["import_rejections"]] == [7]
    assert "w-9" in archive.read("webhook_deliveries.csv").decode()
    assert "#1003" in archive.read("import_rejections.csv").decode()


def test_an_erasure_leaves_nothing_of_a_merged_contact_a_typed_phone_or_a_file_name(contact):
    admin = make_user("admin")
    twin = contacts.create_contact({"email": "ada.l@example.org", "first_name": "Augusta", "last_name": "King",
                                    "phone": "+4930999888"}, actor_id=admin.id)
    db.session.commit()
    merge.merge(contact, twin, actor_id=admin.id)
    task = db.session.scalar(select(Task).where(Task.contact_id == contact.id))
    task.reason = "Call her on +49 30 123456 or (030) 12 34 56, or Augusta on 030-999 888"
    run = ImportRun(kind="orders", filename="ada_lovelace.csv", status="finished", counts={}, started_at=utcnow())
    db.session.add(run)
    db.session.flush()
    audit.record("import", "import_run", run.id, after={"kind": "orders", "filename": "ada_lovelace.csv"})
    db.session.commit()

    privacy.erase_contact(contact, admin.id, block_email=True)
    db.session.commit()
    leftovers = _all_text()
    for value in ("ada.l@example.org", "augusta", "+4930999888", "123456", "12 34 56", "999 888",
                  "ada_lovelace", "lovelace"):
        assert value not in leftovers, value
    assert db.session.get(ImportRun, run.id).filename == "erased_erased.csv"


def _token(role="sales"):
    user = make_user(role)
    _row, plain = api_tokens.create_token(user, "t")
    db.session.commit()
    return {"Authorization": f"Bearer {plain}"}


def test_the_email_block_holds_for_the_api_and_the_new_contact_form(client, auth, contact):
    privacy.erase_contact(contact, None, block_email=True)
    db.session.commit()
    response = client.post("/api/v1/contacts", json={"email": "Ada@Example.com"}, headers=_token())
    assert response.status_code == 422 and "email" in response.get_json()["error"]["fields"]
    auth.as_role("support")
    response = client.post("/contacts/new", data={"first_name": "Ada", "email": "ada@example.com"})
    assert response.status_code == 422
    assert db.session.scalar(select(Contact).where(Contact.email == "ada@example.com")) is None


def test_a_shopify_customer_with_the_erased_customer_id_and_no_email_stays_out(client, app):
    db.session.add(Setting(key="webhooks.shopify_secret", value=SECRET))
    db.session.commit()
    _shopify(client, "customers/create", {"id": 7009, "email": "jon@example.com", "first_name": "Jon"}, "c-1")
    jon = db.session.scalar(select(Contact).where(Contact.email == "jon@example.com"))
    privacy.erase_contact(jon, None, block_email=True)
    db.session.commit()
    response = _shopify(client, "customers/create", {"id": 7009, "first_name": "Jon", "last_name": "Snow",
                                                     "phone": "+4930555111"}, "c-2")
    assert response.status_code == 200
    assert db.session.scalar(select(Contact).where(Contact.first_name == "Jon")) is None
    # Neither the refusal nor the stored delivery keeps the person's data in clear text.
    response = _shopify(client, "customers/create", {"id": 1, "email": "JON@example.com", "first_name": "Jon"}, "c-3")
    assert "jon@example.com" not in response.get_data(as_text=True).lower()
    stored = db.session.scalar(select(WebhookDelivery).where(WebhookDelivery.delivery_id == "c-3"))
    assert stored.payload is None and "jon@example.com" not in (stored.error or "").lower()


def test_a_refused_reimport_keeps_no_blocked_email_in_its_rejections(app, contact, tmp_path):
    from crm.services.orders.importing import run as importing

    privacy.erase_contact(contact, None, block_email=True)
    db.session.commit()
    path = tmp_path / "again.csv"
    path.write_text("order_id,email,placed_at,total\nA-9,ada@example.com,2026-01-02,5\n")
    importing.run_import("orders", str(path), "again.csv")
    rejection = db.session.scalar(select(ImportRejection).where(ImportRejection.line == 2))
    assert "blocked" in rejection.reason and "ada@example.com" not in rejection.reason
    assert "ada@example.com" not in json.dumps(rejection.raw).lower()
