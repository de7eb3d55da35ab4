"""Each contact's language: set by a person or the API, taken from the shop platform, checked once."""
from __future__ import annotations

import pytest

from crm.extensions import db
from crm.models import Contact
from crm.services.orders import recording as orders
from crm.services.orders.importing.shopify import parse_shopify_order_json
from crm.services.shared.languages import normalise_language
from tests.test_api import Api, error_of, token_for
from tests.test_import_readers import SHOPIFY_ORDER_JSON


@pytest.mark.parametrize("given,code", [("nl", "nl"), ("nl-NL", "nl"), ("NL_be", "nl"), ("en-US", "en"), ("", None),
                                        (None, None)])
def test_a_language_is_kept_as_its_two_letter_code(given, code):
    assert normalise_language(given) == code


@pytest.mark.parametrize("given", ["klingon", "x" * 40, 5])
def test_an_unknown_language_is_refused_saying_which_are_known(given):
    with pytest.raises(ValueError, match="language code"):
        normalise_language(given)


@pytest.fixture(name="api")
def _api(client):
    return Api(client, token_for("sales"))


def test_the_api_sets_and_shows_a_contacts_language(api):
    made = api.post("/contacts", {"email": "lotte@example.nl", "language": "nl-NL"})
    assert made.status_code == 201, made.json
    assert made.json["language"] == "nl"
    refused = api.patch(f"/contacts/{made.json['id']}", {"language": "klingon"})
    assert refused.status_code == 422 and list(error_of(refused)["fields"]) == ["language"]
    assert api.patch(f"/contacts/{made.json['id']}", {"language": None}).json["language"] is None


def test_a_shopify_order_brings_the_language_the_customer_shopped_in(app):
    record = parse_shopify_order_json({**SHOPIFY_ORDER_JSON, "customer_locale": "nl-NL"})
    assert record.customer.language == "nl"
    outcome = orders.record_order(record)
    db.session.commit()
    assert db.session.get(Contact, outcome.contact_id).language == "nl"
    unknown = parse_shopify_order_json({**SHOPIFY_ORDER_JSON, "customer_locale": "tlh"})
    assert unknown.customer.language is None


def test_a_person_sets_a_contacts_language_on_the_contact_form(client):
    from tests.contact_helpers import make_contact
    from tests.helpers import sign_in, soup

    sign_in(client, "support")
    contact = make_contact(first_name="Lotte", email="lotte@example.nl")
    db.session.commit()
    form = soup(client.get(f"/contacts/{contact.id}/edit")).select_one("form.contact-form")
    assert form.select_one("select[name=language] option[selected]")["value"] == ""
    response = client.post(f"/contacts/{contact.id}/edit",
                           data={"first_name": "Lotte", "email": "lotte@example.nl", "language": "nl"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Contact, contact.id).language == "nl"
    form = soup(client.get(f"/contacts/{contact.id}/edit")).select_one("form.contact-form")
    assert form.select_one("select[name=language] option[selected]")["value"] == "nl"
    refused = client.post(f"/contacts/{contact.id}/edit",
                          data={"first_name": "Lotte", "email": "lotte@example.nl", "language": "tlh"})
    assert refused.status_code in (200, 422) and db.session.get(Contact, contact.id).language == "nl"
