"""The shell of the UI: headers, vendored assets, flash messages."""

import pytest

from tests.conftest import make_user, soup
from tests.helpers import ROOT

STATIC = ROOT / "crm" / "static"


def test_security_headers_on_every_response(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_pages_load_only_vendored_assets(client, auth):
    make_user("admin")
    auth.login()
    page = soup(client.get("/"))
    sources = [s["src"] for s in page.select("script[src]")] + [l["href"] for l in page.select("link[rel=stylesheet]")]
    assert sources and all(src.startswith("/static/") for src in sources)
    assert any("htmx-2.0.11" in src for src in sources)
    assert not page.select("script:not([src])"), "inline scripts break the CSP"
    for src in sources:
        assert (STATIC / src.removeprefix("/static/")).is_file()


def test_logout_is_a_post_form_with_csrf(client, auth):
    make_user("admin")
    auth.login()
    form = soup(client.get("/")).select_one("form[action='/logout']")
    assert form["method"] == "post"
    assert form.select_one("input[name=csrf_token]") is not None


def test_flash_messages_show_after_sign_out(client, auth):
    make_user("admin")
    auth.login()
    response = client.post("/logout", follow_redirects=True)
    assert "signed out" in soup(response).select_one(".flash").get_text()


@pytest.mark.parametrize(("path", "part"), [
    ("/contacts?q=anna", "#contact-results"),
    ("/leads/?stage=awareness", "#lead-count"),
    ("/tasks?view=all&status=open", "#task-list"),
    ("/orders?q=1001", "table, .empty, p"),
    ("/settings/audit", "li, p, table"),
])
def test_back_to_a_pushed_url_gets_the_whole_page_not_the_swapped_part(client, auth, path, part):
    # A search pushes its URL (hx-push-url); Back then asks for that URL as a history restore,
    # and htmx replaces the whole <body> with the answer, so it must be the whole page.
    auth.as_role("admin")
    swapped_part = soup(client.get(path, headers={"HX-Request": "true"}))
    assert swapped_part.select_one(part) is not None
    assert swapped_part.select_one("header.site-header") is None

    restored = soup(client.get(path, headers={"HX-Request": "true", "HX-History-Restore-Request": "true",
                                              "HX-Current-URL": "http://localhost/contacts/1"}))
    assert restored.select_one("header.site-header nav") is not None
    assert restored.select_one("main h1") is not None
