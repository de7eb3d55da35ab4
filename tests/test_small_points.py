"""The first hour's smaller points: phones as people write them, an API 422 that names the fields,
the admin signed in at setup, and a done to-do's outcome on the contact page's timeline at once."""
from __future__ import annotations

from datetime import timedelta

from crm.extensions import db
from crm.models import Contact, Task, User, utcnow
from crm.services.people.contacts import display_phone
from tests.conftest import PASSWORD, soup, text_of
from tests.test_api import Api, token_for


def test_a_phone_is_formatted_once_per_process_for_every_page_that_shows_it(monkeypatch):
    """The contact list shows 50 phones a page, page after page: each number is parsed once."""
    import phonenumbers

    parsed = []
    original = phonenumbers.parse
    monkeypatch.setattr(phonenumbers, "parse", lambda *args: parsed.append(args) or original(*args))
    number = "+31201234567"
    assert [display_phone(number) for _ in range(3)] == ["+31 20 123 4567"] * 3
    assert len(parsed) <= 1  # none when an earlier test already showed it


def test_phones_show_as_people_write_them(client, auth):
    assert display_phone("+493012345678") == "+49 30 12345678"
    assert display_phone(None) == "" and display_phone("nonsense") == "nonsense"
    auth.as_role("admin")
    db.session.add(Contact(email="anna@example.com", first_name="Anna", phone="+493012345678"))
    db.session.commit()
    link = soup(client.get("/contacts")).select_one("a.phone")
    assert (text_of(link), link["href"]) == ("+49 30 12345678", "tel:+493012345678")


def test_an_api_422_names_the_fields_instead_of_pointing_at_a_form(client):
    response = Api(client, token_for("sales")).post("/contacts", {"first_name": "A", "phone": "12"})
    assert response.status_code == 422
    message = response.json["error"]["message"]
    assert "highlighted" not in message and message.startswith("Some fields are invalid: phone: ")


def test_the_admin_made_at_setup_has_signed_in(client):
    client.post("/setup", data={"name": "Ada", "email": "ada@example.com", "password": PASSWORD, "confirm": PASSWORD})
    admin = db.session.query(User).one()
    assert admin.last_login_at is not None
    assert "never" not in text_of(soup(client.get("/settings/users")).select_one(f"#user-{admin.id}") or
                                  soup(client.get("/settings/users")).select_one("main"))


def test_marking_done_on_the_contact_page_puts_the_outcome_on_its_timeline(client, auth):
    auth.as_role("support")
    user = db.session.query(User).filter_by(role="support").one()
    contact = Contact(email="anna@example.com", first_name="Anna")
    db.session.add(contact)
    db.session.flush()
    task = Task(contact_id=contact.id, kind="call", title="Call Anna", due_at=utcnow() - timedelta(hours=1),
                assignee_id=user.id)
    db.session.add(task)
    db.session.commit()
    headers = {"HX-Request": "true", "HX-Current-URL": f"http://localhost/contacts/{contact.id}"}
    page = soup(client.post(f"/tasks/{task.id}/complete", data={"outcome": "All well"}, headers=headers))
    oob = page.select_one("[hx-swap-oob='afterbegin:#timeline']")
    assert oob is not None and "All well" in text_of(oob)
    # From /tasks there is no timeline to add to.
    other = Task(contact_id=contact.id, kind="call", title="Again", due_at=utcnow(), assignee_id=user.id)
    db.session.add(other)
    db.session.commit()
    page = soup(client.post(f"/tasks/{other.id}/complete", data={"outcome": "Fine"},
                            headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/tasks"}))
    assert page.select_one("[hx-swap-oob]") is None
