"""Creating, editing and deleting contacts, with clear reasons when a field is refused."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from crm.extensions import db
from crm.models import AuditEntry, Contact, Interaction, Order
from tests.conftest import soup, text_of
from tests.contact_helpers import NOW, make_contact, make_interaction, make_order, make_user, make_task, sign_in


def contact_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Contact))


def error_of(page, field: str) -> str:
    return text_of(page.select_one(f"#{field}-error"))


def test_create_a_contact_with_a_phone_stored_in_e164(client):
    user = sign_in(client, "support")
    owner = make_user("sales", name="Sam Sales")
    form = soup(client.get("/contacts/new")).select_one("form.contact-form")
    assert form.select_one("input[name=first_name]").has_attr("autofocus")
    assert [o.get_text() for o in form.select("select[name=owner_id] option")] == ["Nobody", "Sam Sales", "Support"]
    response = client.post("/contacts/new", data={
        "first_name": "Anna", "last_name": "Schmidt", "email": " Anna@Example.COM ", "phone": "+49 151 1234 5678",
        "company": "Bäckerei Sonne", "country": "de", "owner_id": owner.id, "tags": "VIP, b2b", "consent": "y",
        "consent_source": "phone call", "stay_in_touch_days": "30", "birthday": "1990-04-02",
    })
    contact = db.session.scalar(select(Contact))
    assert response.status_code == 302 and response.headers["Location"] == f"/contacts/{contact.id}"
    assert (contact.email, contact.email_display, contact.phone) == ("anna@example.com", "Anna@Example.COM", "+4915112345678")
    assert (contact.country, contact.owner_id, contact.stay_in_touch_days) == ("DE", owner.id, 30)
    assert sorted(t.name for t in contact.tags) == ["b2b", "vip"]
    assert contact.consent and contact.consent_at is not None and contact.birthday.isoformat() == "1990-04-02"
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.entity == "contact"))
    assert (entry.action, entry.user_id) == ("create", user.id)


@pytest.mark.parametrize("data, field, reason", [
    ({"email": "not-an-email"}, "email", "An email address must have an @-sign."),
    ({"phone": "12"}, "phone", "Write the number with its country code"),
    ({"phone": "+49 123"}, "phone", "is not a valid phone number"),
    ({"country": "Germany"}, "country", "Use the two-letter country code (ISO 3166), e.g. DE."),
    ({"birthday": "02.04.1990"}, "birthday", "Use the form YYYY-MM-DD."),
    ({"stay_in_touch_days": "0"}, "stay_in_touch_days", "Give a number of days between 1 and 3650"),
    ({"first_name": "", "last_name": "", "email": "", "phone": ""}, "email", "Give at least a name, an email or a phone number."),
])
def test_a_refused_field_says_why_and_nothing_is_created(client, data, field, reason):
    sign_in(client, "support")
    response = client.post("/contacts/new", data={"first_name": "Anna", **data})
    assert response.status_code == 422
    page = soup(response)
    assert reason in error_of(page, field)
    assert page.select_one(f"#{field}")["aria-invalid"] == "true"
    assert contact_count() == 0


def test_a_duplicate_email_links_to_the_contact_who_has_it(client):
    sign_in(client, "support")
    anna = make_contact(first_name="Anna", last_name="Schmidt", email="anna@example.com")
    db.session.commit()
    page = soup(client.post("/contacts/new", data={"first_name": "Other", "email": "ANNA@example.com"}))
    assert error_of(page, "email") == f"Anna Schmidt (#{anna.id}) already has the email anna@example.com."
    link = page.select_one("#email-duplicate a")
    assert link["href"] == f"/contacts/{anna.id}" and text_of(link) == f"Open Anna Schmidt (#{anna.id})"
    assert page.select_one("input[name=first_name]")["value"] == "Other"  # what was typed stays
    assert contact_count() == 1


def test_edit_a_contact(client):
    user = sign_in(client, "sales")
    contact = make_contact(first_name="Anna", email="anna@example.com", phone="+4915112345678")
    db.session.commit()
    form = soup(client.get(f"/contacts/{contact.id}/edit")).select_one("form.contact-form")
    assert form.select_one("input[name=email]")["value"] == "anna@example.com"
    assert form.select_one("input[name=tags]") is None
    data = {field["name"]: field.get("value", "") for field in form.select("input[name]") if field.get("type") != "checkbox"}
    data.update({"company": "Tea Time Ltd", "phone": "+49 30 1234567", "do_not_contact": "y"})
    response = client.post(f"/contacts/{contact.id}/edit", data=data)
    assert response.status_code == 302, soup(response).select(".field-error")
    db.session.expire_all()
    saved = db.session.get(Contact, contact.id)
    assert saved.company == "Tea Time Ltd" and saved.do_not_contact and saved.first_name == "Anna"
    assert saved.phone == "+49301234567"
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "update"))
    assert entry.user_id == user.id and entry.after["company"] == "Tea Time Ltd"


def test_a_national_number_is_read_in_the_shop_region(client, app):
    app.config["PHONE_REGION"] = "DE"
    sign_in(client, "support")
    client.post("/contacts/new", data={"first_name": "Anna", "phone": "030 1234567"})
    assert db.session.scalar(select(Contact.phone)) == "+49301234567"


def test_editing_to_another_contacts_email_links_to_it_and_offers_admins_a_merge(client):
    sign_in(client, "admin")
    anna = make_contact(first_name="Anna", last_name="A", email="anna@example.com")
    ben = make_contact(first_name="Ben", last_name="B", email="ben@example.com")
    db.session.commit()
    page = soup(client.post(f"/contacts/{ben.id}/edit", data={"first_name": "Ben", "email": "anna@example.com"}))
    links = {text_of(a): a["href"] for a in page.select("#email-duplicate a")}
    assert links == {f"Open Anna A (#{anna.id})": f"/contacts/{anna.id}",
                     "merge the two": f"/contacts/{ben.id}/merge?other={anna.id}"}
    db.session.expire_all()
    assert db.session.get(Contact, ben.id).email == "ben@example.com"


def test_keeping_ones_own_email_is_not_a_duplicate(client):
    sign_in(client, "support")
    contact = make_contact(first_name="Anna", email="anna@example.com")
    db.session.commit()
    response = client.post(f"/contacts/{contact.id}/edit", data={"first_name": "Anne", "email": "anna@example.com"})
    assert response.status_code == 302


def test_delete_asks_first_then_deletes_the_contact_and_its_history(client):
    user = sign_in(client, "admin")
    contact = make_contact(first_name="Anna", last_name="Gone")
    make_order(contact, NOW - timedelta(days=3))
    make_interaction(contact, NOW)
    make_task(contact, NOW)
    keep = make_contact()
    make_order(keep, NOW)
    db.session.commit()
    page = soup(client.get(f"/contacts/{contact.id}/delete"))
    assert text_of(page.select_one("h1")) == "Delete Anna Gone?"
    assert "1 orders" in [text_of(li) for li in page.select(".delete-counts li")]
    response = client.post(f"/contacts/{contact.id}/delete")
    assert response.status_code == 302 and response.headers["Location"] == "/contacts"
    db.session.expire_all()
    assert db.session.get(Contact, contact.id) is None
    assert db.session.scalar(select(func.count()).select_from(Order)) == 1
    assert db.session.scalar(select(func.count()).select_from(Interaction)) == 0
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "delete"))
    assert entry.user_id == user.id and entry.entity_id == contact.id and entry.before["last_name"] == "Gone"
