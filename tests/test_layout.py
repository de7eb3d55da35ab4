"""The shell of the UI: headers, vendored assets, flash messages."""
from pathlib import Path

from tests.conftest import make_user, soup

STATIC = Path(__file__).resolve().parents[1] / "crm" / "static"


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
