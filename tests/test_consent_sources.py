"""Consent is always recorded with its source and time, whichever way it arrives: the contact
form, the API, an import or an unsubscribe, all through contacts.consent_fields."""
from __future__ import annotations

import io
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.models import Contact
from crm.services.orders.importing import run as importing
from crm.services.people import contacts
from crm.services.shared.errors import ValidationError
from crm.services.staff import api_tokens
from crm.services.trust import privacy
from tests.contact_helpers import make_contact, make_user, sign_in


def _only_contact() -> Contact:
    db.session.expire_all()
    return db.session.scalar(select(Contact))


def test_the_form_records_where_consent_was_given_when_nobody_says(client):
    sign_in(client, "admin")
    client.post("/contacts/new", data={"first_name": "Ada", "email": "ada@example.com", "consent": "y"})
    contact = _only_contact()
    assert (contact.consent, contact.consent_source) == (True, "contact form") and contact.consent_at


def test_the_form_keeps_a_typed_source_and_records_a_withdrawal(client):
    sign_in(client, "admin")
    client.post("/contacts/new", data={"first_name": "Ada", "email": "ada@example.com", "consent": "y",
                                       "consent_source": "phone call"})
    contact = _only_contact()
    assert contact.consent_source == "phone call"
    client.post(f"/contacts/{contact.id}/edit", data={"first_name": "Ada", "email": "ada@example.com",
                                                      "consent_source": "phone call"})
    contact = _only_contact()
    assert (contact.consent, contact.consent_source) == (False, "contact form")


def test_the_api_records_consent_given_and_withdrawn_as_from_the_api(client):
    _token, secret = api_tokens.create_token(make_user("admin"), "shop")
    db.session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    created = client.post("/api/v1/contacts", json={"email": "ada@example.com", "consent": True}, headers=headers)
    assert created.status_code == 201
    contact = _only_contact()
    given_at = contact.consent_at
    assert (contact.consent, contact.consent_source) == (True, "API") and given_at
    client.patch(f"/api/v1/contacts/{contact.id}", json={"consent": False}, headers=headers)
    contact = _only_contact()
    assert (contact.consent, contact.consent_source) == (False, "API") and contact.consent_at >= given_at


def test_an_import_records_its_source(app):
    data = io.BytesIO(b"First Name,Last Name,Email,Accepts Email Marketing\nAda,Lovelace,ada@example.com,yes\n")
    importing.run_import("shopify-customers", data, "customers_export.csv", fmt="csv")
    contact = _only_contact()
    assert (contact.consent, contact.consent_source) == (True, "shopify import") and contact.consent_at


def test_an_unsubscribe_goes_through_the_same_rule(app):
    contact = make_contact(consent=True, consent_source="checkout")
    when = datetime(2026, 4, 1, 9, 0, tzinfo=timezone.utc)
    assert privacy.set_consent(contact, False, "unsubscribe link", None, now=when)
    assert (contact.consent, contact.consent_source, contact.consent_at) == (False, "unsubscribe link", when)
    with pytest.raises(ValidationError):
        contacts.consent_fields(contact, True, "  ")
