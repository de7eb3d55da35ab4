"""Who may do what with contacts: viewers read, support and sales write, admins also merge and delete.
A refused request answers 403 and changes nothing."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from crm.extensions import db
from crm.models import Contact, Interaction
from crm.views.access import rule_for
from tests.conftest import soup, text_of
from tests.contact_helpers import NOW, hx, make_contact, make_interaction, make_user, sign_in


@pytest.fixture
def world(app):
    """A contact with one interaction by an admin, and a second contact to merge."""
    admin = make_user("admin")
    anna = make_contact(first_name="Anna", email="anna@example.com", tags=["vip"])
    ben = make_contact(first_name="Ben", email="ben@example.com")
    call = make_interaction(anna, NOW - timedelta(days=1), author=admin, subject="Original")
    db.session.commit()
    return {"anna": anna.id, "ben": ben.id, "call": call.id}


def fingerprint() -> tuple:
    """Return everything a refused request must leave as it was."""
    db.session.expire_all()
    tables = tuple(db.session.scalar(select(func.count()).select_from(table)) for table in db.metadata.sorted_tables)
    contacts = tuple(db.session.execute(select(Contact.id, Contact.first_name, Contact.email, Contact.owner_id)
                                        .order_by(Contact.id)).all())
    tags = tuple(sorted((c.id, t.name) for c in db.session.scalars(select(Contact)) for t in c.tags))
    subjects = tuple(db.session.scalars(select(Interaction.subject).order_by(Interaction.id)))
    return tables, contacts, tags, subjects


WRITES = [
    ("POST", "/contacts/bulk", {"action": "tag_add", "bulk_tag": "x", "scope": "all"}),
    ("POST", "/contacts/bulk", {"action": "export", "scope": "all"}),
    ("GET", "/contacts/new", None),
    ("POST", "/contacts/new", {"first_name": "Eve"}),
    ("GET", "/contacts/{anna}/edit", None),
    ("POST", "/contacts/{anna}/edit", {"first_name": "Changed", "email": "anna@example.com"}),
    ("POST", "/contacts/{anna}/interactions", {"kind": "call", "direction": "inbound", "subject": "New"}),
    ("GET", "/contacts/{anna}/interactions/{call}/edit", None),
    ("POST", "/contacts/{anna}/interactions/{call}/edit", {"kind": "note", "direction": "internal", "subject": "X"}),
    ("POST", "/contacts/{anna}/interactions/{call}/delete", {}),
    ("POST", "/contacts/{anna}/tags", {"tag": "new"}),
    ("POST", "/contacts/{anna}/tags/remove", {"tag": "vip"}),
]
ADMIN_ONLY = [
    ("GET", "/contacts/{anna}/merge", None),
    ("GET", "/contacts/{anna}/merge?other={ben}", None),
    ("POST", "/contacts/{anna}/merge", {"other": "{ben}"}),
    ("GET", "/contacts/{anna}/delete", None),
    ("POST", "/contacts/{anna}/delete", {}),
]


def send(client, method, url, data, ids, htmx=False):
    url = url.format(**ids)
    data = {k: v.format(**ids) if isinstance(v, str) else v for k, v in (data or {}).items()}
    headers = hx() if htmx else {}
    return client.get(url, headers=headers) if method == "GET" else client.post(url, data=data, headers=headers)


@pytest.mark.parametrize("method, url, data", WRITES + ADMIN_ONLY)
def test_a_viewer_is_refused_every_write_and_nothing_changes(client, world, method, url, data):
    sign_in(client, "viewer")
    before = fingerprint()
    for htmx in (False, True):
        assert send(client, method, url, data, world, htmx).status_code == 403
    assert fingerprint() == before


@pytest.mark.parametrize("role", ["support", "sales"])
@pytest.mark.parametrize("method, url, data", ADMIN_ONLY)
def test_support_and_sales_cannot_merge_or_delete(client, world, role, method, url, data):
    sign_in(client, role)
    before = fingerprint()
    assert send(client, method, url, data, world).status_code == 403
    assert fingerprint() == before


def test_a_refused_page_says_nothing_was_changed(client, world):
    sign_in(client, "support")
    page = soup(client.post(f"/contacts/{world['anna']}/delete"))
    assert "Nothing was changed" in text_of(page.select_one("main"))


@pytest.mark.parametrize("role", ["support", "sales"])
def test_support_and_sales_write(client, world, role):
    sign_in(client, role)
    assert client.post(f"/contacts/{world['anna']}/interactions", data={"kind": "call", "direction": "inbound"},
                       headers=hx()).status_code == 200
    assert client.post(f"/contacts/{world['anna']}/edit", data={"first_name": "Anne", "email": "anna@example.com"}
                       ).status_code == 302
    assert client.post(f"/contacts/{world['anna']}/tags", data={"tag": "b2b"}, headers=hx()).status_code == 200
    assert client.get("/contacts/new").status_code == 200


def test_viewers_read_the_list_the_page_and_the_timeline(client, world):
    sign_in(client, "viewer")
    assert client.get("/contacts").status_code == 200
    assert client.get(f"/contacts/{world['anna']}").status_code == 200
    assert client.get(f"/contacts/{world['anna']}/timeline").status_code == 200
    assert client.get(f"/contacts/{world['anna']}/interactions/{world['call']}").status_code == 200


def test_every_contacts_route_declares_read_for_reading_and_more_for_changing(app):
    seen = {}
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("contacts."):
            continue
        view = app.view_functions[rule.endpoint]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            seen[(rule.endpoint, method)] = rule_for(view, method)
    assert seen == {
        ("contacts.index", "GET"): "read",
        ("contacts.count", "GET"): "read",
        ("contacts.go", "GET"): "read",
        ("contacts.show", "GET"): "read",
        ("contacts.timeline", "GET"): "read",
        ("contacts.interaction", "GET"): "read",
        ("contacts.bulk", "POST"): "write",
        ("contacts.new", "GET"): "write",
        ("contacts.new", "POST"): "write",
        ("contacts.edit", "GET"): "write",
        ("contacts.edit", "POST"): "write",
        ("contacts.log", "POST"): "write",
        ("contacts.edit_interaction", "GET"): "write",
        ("contacts.edit_interaction", "POST"): "write",
        ("contacts.delete_interaction", "POST"): "write",
        ("contacts.add_tag", "POST"): "write",
        ("contacts.remove_tag", "POST"): "write",
        ("contacts.merge_contact", "GET"): "admin",
        ("contacts.merge_contact", "POST"): "admin",
        ("contacts.delete", "GET"): "admin",
        ("contacts.delete", "POST"): "admin",
    }


def test_the_contacts_area_is_in_the_navigation(client, world):
    sign_in(client, "viewer")
    nav = {text_of(a): a["href"] for a in soup(client.get("/")).select(".main-nav a")}
    assert nav["Contacts"] == "/contacts"
