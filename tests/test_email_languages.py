"""Email in the contact's language (issue 20): each template exists per language, a message uses the
contact's, else the shop's, else English; the fixed parts (footer, unsubscribe and answer pages)
follow. Sent through a real SMTP server (aiosmtpd on 127.0.0.1)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.models import AuditEntry, EmailTemplate
from crm.services.email import outbox, sending, templates
from tests.conftest import soup, text_of
from tests.contact_helpers import make_contact, make_order, sign_in


@pytest.fixture
def app_config(smtp):
    # `smtp` (tests/conftest.py): the module's real SMTP server, emptied before each test.
    return smtp.settings()


def _send_to(smtp, contact, key="testimonial_request"):
    outbox.queue_message(contact, key)
    db.session.commit()
    assert sending.deliver_due() == {"sent": 1}
    db.session.commit()
    [received] = smtp.messages
    mail = received.message
    return mail, mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()


def test_a_dutch_contact_gets_the_testimonial_request_in_dutch_with_a_dutch_footer(app, smtp, client):
    contact = make_contact(first_name="Femke", email="femke@example.nl", consent=True, language="nl", order_count=3)
    mail, text, html = _send_to(smtp, contact)
    assert mail["Subject"] == "Wilt u iets vertellen over Tea House?"
    assert "Beste Femke," in text and "U heeft nu al 3 keer bij ons besteld" in text
    unsubscribe = mail["List-Unsubscribe"].strip().strip("<>")
    assert f"Afmelden: {unsubscribe}" in text and "Unsubscribe" not in text
    assert "Afmelden</a> voor deze e-mails." in html and '<html lang="nl">' in html
    assert "Hartelijke groet" in text

    # The page the footer link opens is Dutch too, whatever the browser asks for.
    path = unsubscribe.removeprefix("http://localhost")
    page = client.get(path, headers={"Accept-Language": "en"})
    assert "Wilt u geen marketingmails meer ontvangen van Tea House?" in text_of(soup(page))
    assert text_of(soup(page).select_one("button")) == "Afmelden"
    done = client.post(path)
    assert "U bent afgemeld." in text_of(soup(done))


def test_an_english_contact_gets_english_even_in_a_dutch_shop(app, smtp):
    app.config["SHOP_LANGUAGE"] = "nl"
    contact = make_contact(first_name="Ada", email="ada@example.com", consent=True, language="en")
    mail, text, html = _send_to(smtp, contact)
    assert mail["Subject"] == "Would you share a few words about Tea House?"
    assert "Hello Ada," in text and "Unsubscribe: http://localhost/u/" in text and "Afmelden" not in text
    assert '<html lang="en">' in html


@pytest.mark.parametrize(("shop_language", "subject", "footer"), [
    ("nl", "Wilt u iets vertellen over Tea House?", "Afmelden: "),
    ("en", "Would you share a few words about Tea House?", "Unsubscribe: "),
    ("de", "Would you share a few words about Tea House?", "Unsubscribe: "),  # no German templates: English
])
def test_a_contact_without_a_language_gets_the_shops(app, smtp, shop_language, subject, footer):
    app.config["SHOP_LANGUAGE"] = shop_language
    contact = make_contact(first_name="Sam", email="sam@example.com", consent=True, language=None)
    mail, text, _html = _send_to(smtp, contact)
    assert mail["Subject"] == subject
    assert footer in text


def test_dates_and_amounts_in_a_dutch_email_are_written_the_dutch_way(app, smtp):
    contact = make_contact(first_name="Joost", email="joost@example.nl", consent=True, language="nl")
    make_order(contact, datetime(2026, 3, 5, 10, 0, tzinfo=timezone.utc), total="1234.50", currency="EUR")
    db.session.commit()
    _mail, text, _html = _send_to(smtp, contact, "winback")
    assert "sinds uw laatste bestelling op 5 maart 2026" in text
    outbox.queue_message(contact, "order_thanks")
    db.session.commit()
    sending.deliver_due()
    thanks = smtp.messages[-1].message.get_body(("plain",)).get_content()
    assert "van €\xa01.234,50" in thanks


def test_each_language_of_a_template_is_edited_on_its_own_and_used_for_its_contacts(app, client, smtp):
    sign_in(client, "admin")
    listing = soup(client.get("/settings/email/templates"))
    row = listing.select_one("#template-winback")
    assert [text_of(a) for a in row.select(".template-languages a")] == ["English", "Nederlands"]

    page = soup(client.get("/settings/email/templates/winback?language=nl"))
    assert page.select_one("#f-subject")["value"] == "We missen u, {{ contact.first_name }}"
    assert page.select_one("input[name=language]")["value"] == "nl"
    response = client.post("/settings/email/templates/winback?language=nl", data={
        "language": "nl", "subject": "Lang niet gezien, {{ contact.first_name }}!", "body": "Kom eens langs."})
    assert response.status_code == 302 and "language=nl" in response.headers["Location"]
    assert db.session.scalar(select(EmailTemplate.language).where(EmailTemplate.key == "winback")) == "nl"
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.entity == "email_template"))
    assert db.session.get(EmailTemplate, entry.entity_id).language == "nl"  # the audited row is the Dutch one
    assert entry.after["subject"] == "Lang niet gezien, {{ contact.first_name }}!"

    # The English version is untouched, and each contact gets their own language's.
    english = soup(client.get("/settings/email/templates/winback?language=en"))
    assert english.select_one("#f-subject")["value"] == "We miss you, {{ contact.first_name }}"
    row = soup(client.get("/settings/email/templates")).select_one("#template-winback")
    assert "(customised)" in text_of(row.select_one(".template-languages"))
    dutch = make_contact(first_name="Femke", email="femke@example.nl", consent=True, language="nl")
    english_contact = make_contact(first_name="Ada", email="ada@example.com", consent=True, language="en")
    outbox.queue_messages([dutch, english_contact], "winback")
    db.session.commit()
    sending.deliver_due()
    subjects = {m.rcpt_tos[0]: m.message["Subject"] for m in smtp.messages}
    assert subjects == {"femke@example.nl": "Lang niet gezien, Femke!", "ada@example.com": "We miss you, Ada"}

    # Reset brings back the shipped Dutch text, and only for Dutch.
    client.post("/settings/email/templates/winback?language=nl", data={"language": "nl", "action": "reset"})
    assert templates.get("winback", "nl").subject == "We missen u, {{ contact.first_name }}"
    assert not templates.get("winback", "nl").customised


def test_the_composer_starts_from_the_contacts_language(app, client):
    sign_in(client, "admin")
    contact = make_contact(first_name="Femke", email="femke@example.nl", consent=True, language="nl")
    db.session.commit()
    page = soup(client.get(f"/contacts/{contact.id}/email?template=birthday"))
    assert page.select_one("#f-subject")["value"] == "Gefeliciteerd met uw verjaardag, {{ contact.first_name }}!"
    assert "Nederlands" in text_of(page.select_one(".template-language"))


def test_the_survey_answer_page_follows_the_contact_not_the_browser(app, client, smtp):
    contact = make_contact(first_name="Femke", email="femke@example.nl", consent=True, language="nl")
    _mail, text, _html = _send_to(smtp, contact, "survey")
    assert "van 0 (helemaal niet) tot 10 (zeer waarschijnlijk)" in text
    link = next(word for word in text.split("(") if word.startswith("http://localhost/a/"))
    path = link.split(")")[0].removeprefix("http://localhost")
    page = soup(client.get(path, headers={"Accept-Language": "en"}))
    assert "Hoe waarschijnlijk is het dat u Tea House aanbeveelt" in text_of(page.select_one("legend"))
    assert text_of(page.select_one("button")) == "Mijn antwoord versturen"
    assert page.select_one("html")["lang"] == "nl"
