"""Every route declares who may use it, and the rule is enforced."""
from crm.views.access import RULES, rule_for
from tests.conftest import make_user, soup


def test_every_route_declares_an_access_rule(app):
    undeclared = [
        rule.rule for rule in app.url_map.iter_rules()
        if rule.endpoint != "static" and rule_for(app.view_functions[rule.endpoint], "GET") is None
    ]
    assert undeclared == []


def test_declared_rules_are_known(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert rule_for(view, method) in RULES


def test_a_route_without_a_rule_is_refused(app, client, auth):
    app.add_url_rule("/undeclared", "undeclared", lambda: "secret")
    make_user("admin")
    auth.login()
    assert client.get("/undeclared").status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in(client):
    make_user("admin")
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=/")


def test_an_expired_login_during_an_htmx_request_redirects_the_page(client):
    make_user("admin")
    response = client.get("/", headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert response.headers["HX-Redirect"].startswith("/login")


def test_api_requests_without_a_token_get_json_401(client):
    client.application.add_url_rule("/api/v1/ping", "ping", __import__("crm.views.access", fromlist=["access"]).access("read")(lambda: {"ok": True}))
    response = client.get("/api/v1/ping")
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"


def test_error_pages_render_in_the_layout(client, auth):
    make_user("viewer")
    auth.login("viewer@example.com")
    response = client.get("/no-such-page")
    assert response.status_code == 404
    page = soup(response)
    assert page.select_one("h1").get_text() == "Not found"
    assert page.select_one("header nav") is not None


def test_navigation_shows_only_areas_the_role_may_open(client, auth):
    make_user("viewer")
    auth.login("viewer@example.com")
    labels = [a.get_text() for a in soup(client.get("/")).select(".main-nav a")]
    assert "Dashboard" in labels
