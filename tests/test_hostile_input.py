"""Stored markup shows as text on every page: no script or event handler comes from the data.

The pages are every GET route in app.url_map (filled with the ids of records holding the
hostile text), as a full page and as the htmx fragment, so pages other areas add are checked too.
"""
import pytest
from bs4 import BeautifulSoup

from crm.extensions import db
from crm.models import Contact, Task
from crm.services.people import contacts, interactions
from tests.conftest import PASSWORD, soup
from tests.routes import app_routes, make_role_users, seed_records, url_for_rule

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"onmouseover="alert(2)'
TAG = "<img src=x onerror=alert(3)>"
LINK = "javascript:alert(4)"


@pytest.fixture
def hostile(app):
    """Records whose every free-text field carries markup, reachable from the routes' ids."""
    users = make_role_users()
    users["admin"].name = f"Admin {SCRIPT}"
    ids = seed_records(first_name=SCRIPT, last_name=ATTRIBUTE, company=TAG, title=LINK, city=ATTRIBUTE,
                       email_display=f"{TAG}@example.com", consent_source=SCRIPT)
    contact = db.session.get(Contact, ids["contact"])
    interactions.log_interaction(contact, {"kind": "note", "subject": SCRIPT, "body": f"{TAG}\n{ATTRIBUTE}",
                                           "outcome": LINK, "channel": SCRIPT}, author_id=users["admin"].id)
    contacts.update_contact(contact, {"company": f"{SCRIPT} Ltd", "address": TAG}, actor_id=users["admin"].id)
    db.session.get(Task, ids["task"]).title = f"Call {SCRIPT}"
    db.session.commit()
    return ids


def _problems(html: str) -> list[str]:
    page = BeautifulSoup(html, "html.parser")
    problems = [f"inline script: {tag}" for tag in page.find_all("script") if not tag.get("src")]
    for tag in page.find_all(True):
        for name, value in tag.attrs.items():
            if name.lower().startswith("on"):
                problems.append(f"event handler attribute {name} on <{tag.name}>")
            if name.lower() in ("href", "src", "action", "formaction") and str(value).strip().lower().startswith("javascript:"):
                problems.append(f"javascript: URL in {name} on <{tag.name}>")
    return problems


def test_every_html_page_shows_stored_markup_as_text(app, client, hostile):
    client.post("/login", data={"email": "admin@example.com", "password": PASSWORD})
    checked, problems = [], []
    for rule, _method in app_routes(app, methods=("GET",)):
        url = url_for_rule(rule, hostile)
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(url, headers=headers)
            body = response.get_data(as_text=True)  # a streamed download runs to its end, as in a browser
            response.close()
            assert response.status_code < 500, f"{url}: {response.status_code}"
            if response.mimetype != "text/html" or response.status_code != 200:
                continue
            checked.append(url)
            problems += [f"{url} {headers or ''}: {p}" for p in _problems(body)]
    assert problems == []
    assert {"/", "/settings/audit", "/settings/privacy", "/settings/users"} <= set(checked)


def test_the_pages_that_show_the_text_show_it_literally(client, hostile):
    client.post("/login", data={"email": "admin@example.com", "password": PASSWORD})
    audit_text = soup(client.get("/settings/audit")).get_text()
    assert SCRIPT in audit_text and TAG in audit_text and ATTRIBUTE in audit_text
    assert SCRIPT in soup(client.get(f"/contacts/{hostile['contact']}/privacy/erase")).select_one("h1").get_text()
    assert f"Admin {SCRIPT}" in soup(client.get("/settings/users")).select_one("#users").get_text()


def test_the_check_itself_catches_unescaped_markup():
    assert _problems(f"<p>{SCRIPT}</p>") and _problems(f"<p>{TAG}</p>")
    assert _problems(f'<a href="{LINK}">x</a>') and _problems(f'<p title="{ATTRIBUTE}">x</p>')
    assert _problems('<script src="/static/app.js"></script><p>&lt;script&gt;</p>') == []
