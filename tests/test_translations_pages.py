"""The contact, order, import, segment and to-do pages in the reader's language: a Dutch user reads
Dutch (labels, buttons, flashes, form errors, the reasons services give), an English user the
English the pages have always had."""
from __future__ import annotations

import io

import pytest

from crm.extensions import db
from crm.models import Segment
from tests.contact_helpers import NOW, make_contact, make_order, make_task
from tests.helpers import sign_in, soup, text_of


def dutch(client, role: str = "admin"):
    user = sign_in(client, role)
    user.language = "nl"
    db.session.commit()
    return user


@pytest.fixture(autouse=True)
def _instance_in_tmp(app, tmp_path, monkeypatch):
    monkeypatch.setattr(app, "instance_path", str(tmp_path / "instance"))


def test_the_contact_list_in_dutch_and_in_english(client):
    make_contact(first_name="Anna", last_name="de Vries", stage="consideration")
    db.session.commit()
    dutch(client)
    page = soup(client.get("/contacts", headers={"Accept-Language": "en"}))
    assert text_of(page.select_one("h1")) == "Contacten"
    assert "Nieuw contact" in text_of(page.select_one(".page-head"))
    assert [text_of(th) for th in page.select("table.contacts th")][1:4] == ["Naam", "Telefoon", "Bedrijf"]
    assert text_of(page.select_one(".result-count")).startswith("1 contact")
    assert text_of(page.select_one("td .badge.stage-consideration")) == "Overweging"
    assert page.select_one("form#contact-search input[name=q]")["placeholder"] == "Naam, e-mail, telefoon of bedrijf"

    sign_in(client, "sales")  # a user without a language, reading in English
    page = soup(client.get("/contacts", headers={"Accept-Language": "en"}))
    assert text_of(page.select_one("h1")) == "Contacts"
    assert text_of(page.select_one("td .badge.stage-consideration")) == "Consideration"


def test_a_contact_page_in_dutch(client):
    contact = make_contact(first_name="Anna", last_name="de Vries", email="anna@example.com")
    make_order(contact, NOW, total="12.50")
    db.session.commit()
    dutch(client)
    page = soup(client.get(f"/contacts/{contact.id}"))
    facts = [text_of(dt) for dt in page.select("dl.facts dt")]
    assert facts[:4] == ["E-mail", "Telefoon", "Bedrijf", "Eigenaar"]
    assert "Niemand" in text_of(page.select_one("dl.facts"))
    assert "Contactmoment vastleggen" in text_of(page.select_one(".log-card h2"))
    assert "Tijdlijn" in [text_of(h) for h in page.select("h2")]
    assert any(text_of(o).startswith("Bestelling ") for o in page.select(".tl-order .tl-title"))
    assert [text_of(o) for o in page.select("select[name=direction] option")] == ["Inkomend", "Uitgaand", "Intern"]


def test_the_new_contact_form_refuses_in_dutch(client):
    dutch(client, "support")
    taken = make_contact(first_name="Bram", email="bram@example.com")
    db.session.commit()
    response = client.post("/contacts/new", data={"email": "bram@example.com", "country": "Nederland",
                                                   "birthday": "gisteren"})
    assert response.status_code == 422
    page = soup(response)
    assert text_of(page.select_one("label[for=first_name]")).startswith("Voornaam")
    errors = text_of(page.select_one("form.contact-form"))
    assert f"{taken.name} (#{taken.id}) heeft het e-mailadres bram@example.com al." in errors
    assert "Gebruik de landcode van twee letters" in errors and "Gebruik de vorm JJJJ-MM-DD." in errors
    assert text_of(page.select_one(".form-actions button")) == "Contact aanmaken"

    client.post("/logout")
    sign_in(client, "sales")
    english = soup(client.post("/contacts/new", data={"email": "bram@example.com"}))
    assert "already has the email bram@example.com" in text_of(english.select_one("form.contact-form"))


def test_a_flash_after_saving_is_dutch(client):
    dutch(client, "support")
    response = client.post("/contacts/new", data={"first_name": "Cor"}, follow_redirects=True)
    assert "Cor staat in het CRM." in text_of(soup(response).select_one(".flash-success"))


def test_the_orders_list_and_an_order_in_dutch(client):
    contact = make_contact(first_name="Anna")
    order = make_order(contact, NOW, total="20.00", status="partially_refunded")
    db.session.commit()
    dutch(client, "viewer")
    page = soup(client.get("/orders"))
    assert text_of(page.select_one("h1")) == "Bestellingen"
    assert [text_of(th) for th in page.select("table.orders th")] == [
        "Bestelling", "Geplaatst", "Klant", "Status", "Totaal", "Bron"]
    assert text_of(page.select_one("td .badge")) == "deels terugbetaald"
    shown = soup(client.get(f"/orders/{order.id}"))
    assert text_of(shown.select_one("h1")).startswith("Bestelling ")
    assert "Subtotaal" in text_of(shown.select_one("tfoot"))


def test_a_typed_in_order_refused_in_dutch(client):
    contact = make_contact(first_name="Eva")
    db.session.commit()
    dutch(client, "sales")
    response = client.post(f"/contacts/{contact.id}/orders/new", data={
        "placed_at": "2026-05-02T15:30", "status": "paid", "currency": "EUR"})
    assert response.status_code == 400
    assert "Voeg minstens één artikel toe." in text_of(soup(response).select_one(".flash-error"))


def test_the_imports_page_and_a_refused_file_in_dutch(client):
    dutch(client, "support")
    page = soup(client.get("/imports/"))
    assert text_of(page.select_one("h1")) == "Imports"
    assert text_of(page.select_one("#upload h2")) == "Een bestand importeren"
    assert "Nog niets geïmporteerd." in text_of(page.select_one("#history"))
    assert "Bestellingenexport uit Shopify (CSV)" in [text_of(o) for o in page.select("select[name=kind] option")]
    refused = client.post("/imports/", content_type="multipart/form-data", data={
        "kind": "shopify-orders", "fmt": "", "file": (io.BytesIO(b"PK\x03\x04\x14\x00 a zip"), "orders.csv")})
    assert refused.status_code == 400
    assert "sla het op als CSV (UTF-8)" in text_of(soup(refused).select_one(".field-error"))


def test_rejection_reasons_read_in_dutch(app):
    from flask_babel import force_locale

    from crm.views.import_text import reason_text

    with app.test_request_context(), force_locale("nl"):
        assert reason_text("total: missing; email: 'x' is not a valid email address (no @)") == \
            "total: ontbreekt; email: 'x' is geen geldig e-mailadres (no @)"
        assert reason_text("something new") == "something new"
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert reason_text("total: missing") == "total: missing"


def test_the_segments_pages_in_dutch(client):
    db.session.add(Segment(name="Vaste klanten", description="", definition={"match": "all", "conditions": []}))
    db.session.commit()
    dutch(client)
    page = soup(client.get("/segments"))
    assert text_of(page.select_one("h1")) == "Segmenten"
    assert [text_of(th) for th in page.select("table.segments th")][:3] == ["Naam", "Omschrijving", "Laatst vastgelegde grootte"]
    builder = soup(client.get("/segments/new"))
    assert text_of(builder.select_one("h1")) == "Nieuw segment"
    assert "Leadscore" in [text_of(o) for o in builder.select("select[name^=field-] option")]
    refused = soup(client.post("/segments", data={"name": "", "rows": "0", "match": "all"}))
    assert "Geef een naam van 1 tot 120 tekens." in text_of(refused.select_one("#segment-builder"))


def test_the_to_dos_in_dutch_and_in_english(client):
    contact = make_contact(first_name="Anna")
    user = dutch(client, "sales")
    make_task(contact, NOW).assignee_id = user.id
    db.session.commit()
    page = soup(client.get("/tasks?view=all"))
    assert text_of(page.select_one("h1")) == "Taken"
    assert [text_of(th) for th in page.select("table.tasks th")][-5:] == [
        "Te doen op", "Taak", "Contact", "Uitvoerder", "Acties"]
    assert text_of(page.select_one("#task-count")) == "1 taak"
    assert "Afgerond" in [text_of(s) for s in page.select("details.task-action summary")]

    sign_in(client, "support")
    page = soup(client.get("/tasks?view=all", headers={"Accept-Language": "en"}))
    assert text_of(page.select_one("h1")) == "To-dos" and text_of(page.select_one("#task-count")) == "1 to-do"
