"""Email pages and API: settings (env wins, password never shown, masked in the audit log), the
template editor (refused with line and reason, audited), preview, composer, to-do sending, the
unsubscribe page, the timeline, erasure and imports."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.models import AuditEntry, Contact, EmailMessage, EmailSuppression, EmailTemplate, Task
from crm.services.email import outbox, sending, suppression
from crm.services.trust import privacy
from tests.conftest import soup, text_of
from tests.contact_helpers import make_contact, sign_in
from tests.test_api import Api, token_for


@pytest.fixture
def app_config(smtp):
    # `smtp` (tests/conftest.py): the module's real SMTP server, emptied before each test.
    return smtp.settings()


def _deliver():
    counts = sending.deliver_due()
    db.session.commit()
    return counts


# -- settings --------------------------------------------------------------------------------------

SETTINGS_FORM = {"smtp_host": "mail.teahouse.example", "smtp_port": "587", "smtp_security": "starttls",
                 "smtp_username": "crm", "smtp_password": "s3cret-pass", "from_name": "Tea House",
                 "from_address": "hello@teahouse.example", "reply_to": "", "public_url": "https://crm.teahouse.example",
                 "shop_address": "1 Leaf Lane", "per_minute": "30"}


def test_settings_store_the_password_without_showing_it_and_mask_it_in_the_audit_log(app, client):
    app.config.pop("EMAIL_SMTP_HOST"), app.config.pop("EMAIL_SMTP_PORT")
    sign_in(client, "admin")
    response = client.post("/settings/email", data=SETTINGS_FORM)
    assert response.status_code == 302
    page = client.get("/settings/email").get_data(as_text=True)
    assert "s3cret-pass" not in page and "stored; leave empty to keep it" in page
    # Saving again with an empty password keeps the stored one.
    client.post("/settings/email", data={**SETTINGS_FORM, "smtp_password": "", "per_minute": "40"})
    from crm.services.email import settings as email_settings

    current = email_settings.effective()
    assert current.smtp_password == "s3cret-pass" and current.per_minute == 40 and current.smtp_port == 587
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.entity == "email_settings")).all()
    assert len(entries) == 2
    assert all("s3cret" not in str(e.before) + str(e.after) for e in entries)
    assert entries[0].after["smtp_password"] == "******** (changed)"


def test_settings_refuse_bad_fields_naming_each(app, client):
    sign_in(client, "admin")
    response = client.post("/settings/email", data={**SETTINGS_FORM, "from_name": "Tea\r\nBcc: x@evil.example",
                                                    "from_address": "not an address", "smtp_port": "99999"})
    assert response.status_code == 422
    errors = {e["id"]: text_of(e) for e in soup(response).select(".field-error")}
    assert errors == {"f-from_name-error": "Keep it on one line.",
                      "f-from_address-error": "Give an email address such as hello@shop.example.",
                      "f-smtp_port-error": "Give a port from 1 to 65535."}


def test_environment_variables_win_over_the_page(app, client, monkeypatch):
    monkeypatch.setenv("CRM_SMTP_HOST", "relay.env.example")
    monkeypatch.setenv("CRM_MAIL_FROM", "Env Shop <env@shop.example>")
    sign_in(client, "admin")
    client.post("/settings/email", data=SETTINGS_FORM)
    from crm.services.email import settings as email_settings

    current = email_settings.effective()
    assert current.smtp_host == "relay.env.example" and current.from_address == "env@shop.example"
    assert current.from_name == "Env Shop"
    page = soup(client.get("/settings/email"))
    assert page.select_one("#f-smtp_host").has_attr("disabled")
    assert "CRM_SMTP_HOST" in text_of(page.select_one(".email-settings"))


def test_the_test_button_shows_the_servers_exact_answer(app, client, smtp):
    sign_in(client, "admin")
    response = client.post("/settings/email/test", data={"to": "owner@teahouse.example"})
    assert "The server answered: 250 2.0.0 Message accepted for delivery" in text_of(soup(response).select_one(".test-answer"))
    smtp.answers["nobody@teahouse.example"] = "550 5.1.1 No such user"
    response = client.post("/settings/email/test", data={"to": "nobody@teahouse.example"})
    assert "Not sent. The server answered: 550 5.1.1 No such user" in text_of(soup(response).select_one(".test-answer"))


def test_only_admins_change_settings_and_templates(app, client):
    sign_in(client, "sales")
    assert client.get("/settings/email").status_code == 403
    assert client.get("/settings/email/templates/winback").status_code == 200
    assert client.post("/settings/email/templates/winback", data={"subject": "x", "body": "y"}).status_code == 403


# -- templates -----------------------------------------------------------------------------------

def test_a_template_that_does_not_compile_is_refused_with_line_and_reason(app, client):
    sign_in(client, "admin")
    response = client.post("/settings/email/templates/winback", data={
        "subject": "Hi", "body": "Hello\n\n{% if contact.first_name %}\nno end"})
    assert response.status_code == 422
    assert text_of(soup(response).select_one("#f-body-error")).startswith("Line 4: Unexpected end of template")
    response = client.post("/settings/email/templates/winback", data={"subject": "Hi", "body": "Hello\n{{ contact.shoe_size }}"})
    assert text_of(soup(response).select_one("#f-body-error")) == "Line 2: 'dict object' has no attribute 'shoe_size'"
    response = client.post("/settings/email/templates/winback", data={"subject": "{{ ''.__class__ }}", "body": "Hi"})
    assert "not allowed" in text_of(soup(response).select_one("#f-subject-error"))
    assert db.session.query(EmailTemplate).count() == 0


def test_saving_a_template_is_audited_and_used_for_the_next_message(app, client, smtp):
    sign_in(client, "admin")
    response = client.post("/settings/email/templates/winback", data={
        "subject": "Come back, {{ contact.first_name }}", "body": "We saved you a cup, {{ contact.first_name }}."})
    assert response.status_code == 302
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.entity == "email_template"))
    assert entry.after["subject"] == "Come back, {{ contact.first_name }}"
    contact = make_contact(first_name="Mia", consent=True)
    outbox.queue_message(contact, "winback")
    db.session.commit()
    _deliver()
    assert smtp.messages[0].message["Subject"] == "Come back, Mia"
    # Reset goes back to the shipped default.
    client.post("/settings/email/templates/winback", data={"action": "reset"})
    assert db.session.query(EmailTemplate).count() == 0


def test_preview_renders_for_a_real_contact_picked_by_search(app, client):
    sign_in(client, "support")
    contact = make_contact(first_name="Zoe", last_name="Quill", email="zoe@example.com", consent=True)
    db.session.commit()
    options = client.get("/email/contact-options?q=quill")
    assert f'value="{contact.id}"' in options.get_data(as_text=True)
    response = client.post("/email/preview", data={"template": "birthday", "contact_id": contact.id,
                                                   "subject": "Happy day, {{ contact.first_name }}",
                                                   "body": "Dear **{{ contact.first_name }}**"})
    page = soup(response)
    assert text_of(page.select_one(".subject")) == "Happy day, Zoe"
    assert "<strong>Zoe</strong>" in str(page.select_one(".html-part"))
    assert "Dear **Zoe**" in text_of(page.select_one(".text-part"))
    assert "unsafe-inline" in response.headers["Content-Security-Policy"]
    bad = client.post("/email/preview", data={"template": "birthday", "subject": "x", "body": "{{ x.__init__ }}"})
    assert "cannot be rendered" in text_of(soup(bad).select_one(".problem"))


# -- composing, to-dos, timeline ---------------------------------------------------------------------

def test_the_composer_sends_and_the_timeline_opens_the_message(app, client, smtp):
    sign_in(client, "support")
    contact = make_contact(first_name="Lea", email="lea@example.com", consent=False)
    db.session.commit()
    page = soup(client.get(f"/contacts/{contact.id}/email?template=welcome"))
    assert "no_consent" in page.select_one(".eligibility")["class"]
    assert page.select_one("button.send").has_attr("disabled")
    response = client.post(f"/contacts/{contact.id}/email", data={
        "template": "personal", "subject": "Your question", "body": "Hi {{ contact.first_name }}, yes we ship to Iceland.",
        "action": "send"})
    assert response.status_code == 302
    _deliver()
    assert smtp.messages[0].message.get_body(("plain",)).get_content().startswith("Hi Lea, yes we ship to Iceland.")
    show = soup(client.get(f"/contacts/{contact.id}"))
    link = show.select_one("#timeline a.email-link")
    assert text_of(link) == "Your question"
    message_page = client.get(link["href"], follow_redirects=True)
    assert text_of(soup(message_page).select_one(".status")) == "sent"
    assert "250 2.0.0" in text_of(soup(message_page).select_one(".smtp-answer"))


def test_send_the_email_from_a_rule_todo_completes_it(app, client, smtp):
    user = sign_in(client, "sales")
    contact = make_contact(first_name="Tom", consent=True)
    task = Task(contact_id=contact.id, kind="testimonial_request", rule_key="testimonial:1", title="Ask Tom for a testimonial",
                assignee_id=user.id)
    db.session.add(task)
    db.session.commit()
    row = soup(client.get("/tasks")).select_one(f"#task-{task.id} a.send-email")
    assert row is not None
    composer = soup(client.get(row["href"]))
    assert composer.select_one("#f-template option[selected]")["value"] == "testimonial_request"
    response = client.post(row["href"].split("?")[0], data={"task": task.id, "template": "testimonial_request",
                                                           "subject": composer.select_one("#f-subject")["value"],
                                                           "body": composer.select_one("#f-body").get_text(), "action": "send"})
    assert response.status_code == 302
    db.session.refresh(task)
    assert task.status == "done" and task.outcome == "email sent"
    _deliver()
    assert len(smtp.messages) == 1


# -- unsubscribe ---------------------------------------------------------------------------------------

def test_unsubscribe_page_get_changes_nothing_and_a_forged_token_is_refused(app, client):
    contact = make_contact(consent=True)
    message = outbox.queue_message(contact, "survey")
    db.session.commit()
    path = message.unsubscribe_url.removeprefix("http://localhost")
    page = soup(client.get(path))
    assert "Tea House" in text_of(page.select_one("h1")) and page.select_one("button.unsubscribe-button")
    db.session.refresh(contact)
    assert contact.consent is True
    assert client.get(path[:-2] + "xx").status_code == 404
    assert client.post(path[:-2] + "xx").status_code == 404
    # A person clicking the button: no sign-in, no CSRF token (the app runs with CSRF on here too).
    app.config["WTF_CSRF_ENABLED"] = True
    response = client.post(path)
    assert response.status_code == 200 and "You are unsubscribed" in response.get_data(as_text=True)
    db.session.refresh(contact)
    assert contact.consent is False and contact.consent_source.startswith("unsubscribe link")
    assert client.post(path).status_code == 200  # twice is harmless
    assert db.session.query(EmailSuppression).count() == 1


def test_the_shop_name_saved_in_settings_shows_on_the_unsubscribe_page_and_in_messages(app, client, smtp):
    from dataclasses import asdict

    from crm.services import shop

    shop.save({**asdict(shop.current()), "name": "Theehuis Utrecht"}, None)
    contact = make_contact(first_name="Noor", consent=True)
    message = outbox.queue_message(contact, "testimonial_request")
    db.session.commit()
    page = soup(client.get(message.unsubscribe_url.removeprefix("http://localhost")))
    assert text_of(page.select_one("h1")) == "Theehuis Utrecht"
    _deliver()
    [received] = smtp.messages
    text = received.message.get_body(("plain",)).get_content()
    assert "Theehuis Utrecht" in text and "Tea House" not in text
    assert received.message["Subject"] == "Would you share a few words about Theehuis Utrecht?"
    # The testimonial link's public page names the shop the same way.
    answer_path = re.search(r"https?://[^/\s]+(/a/[^\s)\]]+)", text).group(1)
    assert text_of(soup(client.get(answer_path)).select_one("h1")) == "Theehuis Utrecht"


def test_erasing_keeps_only_the_hash_and_an_import_cannot_reconsent(app):
    from crm.services.orders import recording as order_service

    contact = make_contact(email="gone@example.com", consent=True)
    message = outbox.queue_message(contact, "survey")
    db.session.commit()
    suppression.unsubscribe(contact, message_id=message.id, how="unsubscribe link")
    privacy.erase_contact(contact, None)
    db.session.commit()
    row = db.session.query(EmailSuppression).one()
    assert row.email is None and row.contact_id is None and row.email_hash == privacy.email_hash("gone@example.com")
    assert db.session.get(EmailMessage, message.id).to_address == ""
    # The same address comes back in a shop import, with a ticked consent box.
    from crm.services.orders.importing.records import CustomerRecord

    ids, created = order_service.resolve_contacts([CustomerRecord(line=2, source="shopify", email="gone@example.com",
                                                                  consent=True, first_name="G")], now=message.created_at)
    again = db.session.get(Contact, ids[0])
    assert again.id != contact.id and again.consent is False
    assert suppression.eligibility(again, True).status == "unsubscribed"


# -- API -------------------------------------------------------------------------------------------

def test_api_queues_reports_and_explains_suppression(app, client, smtp):
    api = Api(client, token_for("sales"))
    contact = make_contact(first_name="Ina", consent=True)
    dnc = make_contact(do_not_contact=True)
    db.session.commit()
    response = api.post(f"/contacts/{contact.id}/emails", {"template": "testimonial_request"})
    assert response.status_code == 202 and response.json["status"] == "queued"
    message_id = response.json["id"]
    _deliver()
    detail = api.get(f"/emails/{message_id}").json
    assert detail["status"] == "sent" and detail["smtp_answer"].startswith("250")
    personal = api.post(f"/contacts/{contact.id}/emails", {"subject": "Hello", "body": "Hi {{ contact.first_name }}"})
    assert personal.status_code == 202 and personal.json["template"] == "personal"
    refused = api.post(f"/contacts/{dnc.id}/emails", {"template": "winback"})
    assert refused.status_code == 202 and refused.json["status"] == "suppressed" and refused.json["reason"] == "do_not_contact"
    assert api.get(f"/contacts/{dnc.id}").json["email_status"] == "do_not_contact"
    assert api.get(f"/contacts/{contact.id}").json["email_status"] == "ok"
    assert {c["id"]: c["email_status"] for c in api.get("/contacts").json["items"]} == {contact.id: "ok", dnc.id: "do_not_contact"}
    bad = api.post(f"/contacts/{contact.id}/emails", {"template": "nope"})
    assert bad.status_code == 422 and "template" in bad.json["error"]["fields"]
    sandbox = api.post(f"/contacts/{contact.id}/emails", {"subject": "x", "body": "{{ ''.__class__.__mro__ }}"})
    assert sandbox.status_code == 422 and "not allowed" in sandbox.json["error"]["fields"]["body"]
    assert api.get("/emails/999999").status_code == 404


def test_choosing_another_template_in_the_composer_starts_from_it(app, client):
    sign_in(client, "support")
    contact = make_contact(consent=True)
    db.session.commit()
    page = soup(client.post(f"/contacts/{contact.id}/email", data={
        "template": "birthday", "subject": "old subject", "body": "old body", "action": "choose"}))
    assert page.select_one("#f-subject")["value"] == "Happy birthday, {{ contact.first_name }}!"
    assert "old body" not in page.select_one("#f-body").get_text()
