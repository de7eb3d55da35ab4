"""Every route × every role × GET/POST: the declared rule is what happens, and a refusal changes nothing.

The routes come from app.url_map, so a route another area adds is in the matrix the day it
lands; one that declares no rule fails here (and the central hook refuses it with 403).
"""
from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from crm import create_app
from crm.extensions import db
from crm.views.access import access, rule_for
from tests.conftest import PASSWORD
from tests.routes import ROLES, app_routes, make_role_users, seed_records, token_for, url_for_rule


# GET and POST for pages; the API's PUT, PATCH and DELETE are held to the same rules.
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _collect_routes():
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "collect", "TESTING": True})
    return [(rule.rule, rule.endpoint, method) for rule, method in app_routes(app, methods=METHODS)]


def pytest_generate_tests(metafunc):
    if "route" in metafunc.fixturenames:
        routes = _collect_routes()
        metafunc.parametrize("route", routes, ids=[f"{method} {path}" for path, _endpoint, method in routes])


def fingerprint(ignore: tuple[str, ...] = ()) -> str:
    """Return a hash of every row of every table: equal before and after means nothing changed."""
    digest = hashlib.sha256()
    db.session.expire_all()
    for table in db.metadata.sorted_tables:
        if table.name in ignore:
            continue
        order = list(table.primary_key.columns) or list(table.columns)
        for row in db.session.execute(select(table).order_by(*order)):
            digest.update(repr((table.name, tuple(row))).encode())
    return digest.hexdigest()


def expected_outcome(rule: str | None, role: str) -> str:
    """Return "allowed", "sign-in" or "forbidden" for a declared rule and a role."""
    if rule is None:
        return "undeclared"
    if rule == "public":
        return "allowed"
    if role == "anonymous":
        return "sign-in"
    if rule == "read":
        return "allowed"
    if rule == "write":
        return "forbidden" if role == "viewer" else "allowed"
    if rule == "admin":
        return "allowed" if role == "admin" else "forbidden"
    return "undeclared"


def client_as(app, role: str):
    client = app.test_client()
    if role != "anonymous":
        response = client.post("/login", data={"email": f"{role}@example.com", "password": PASSWORD})
        assert response.status_code == 302, f"{role} could not sign in"
    return client


def check_route(app, path_rule: str, endpoint: str, method: str, ids: dict[str, int]) -> list[str]:
    """Return what is wrong with one route for every role (an empty list when all is as declared)."""
    rule = next(r for r in app.url_map.iter_rules(endpoint) if r.rule == path_rule)
    declared = rule_for(app.view_functions[endpoint], method)
    if declared is None:
        return [f"{method} {path_rule} ({endpoint}) declares no access rule: add @access(...)"]
    url = url_for_rule(rule, ids)
    narrowed_to = getattr(app.view_functions[endpoint], "narrowed_to", None)
    # A webhook receiver writes its refusal to the deliveries log (and only there) by design.
    ignore = ("webhook_deliveries",) if path_rule.startswith("/webhooks/") else ()
    if path_rule.startswith("/api/"):
        ignore = ("api_tokens",)  # a token's last-used time is noted even when its role is refused
    is_api = url.startswith("/api/")
    problems = []
    for role in ROLES:
        client = app.test_client() if is_api else client_as(app, role)
        headers = {"Authorization": f"Bearer {token_for(role)}"} if is_api and role != "anonymous" else {}
        before = fingerprint(ignore)
        response = client.open(url, method=method, headers=headers, data=None if method == "GET" else {})
        status = response.status_code
        location = response.headers.get("Location", "")
        response.get_data()  # run a streamed body to its end inside the request, as a browser would
        response.close()
        outcome = expected_outcome(declared, role)
        where = f"{method} {url} as {role} (rule {declared!r})"
        if status >= 500:
            problems.append(f"{where}: server error {status}")
        elif outcome == "allowed" and status in (401, 403) and narrowed_to:
            # The view lets in only some of the rule's users ("its author or an admin", "signed
            # webhooks"): refusing the others is fine, as long as nothing changed (checked below).
            outcome = "narrowed"
        elif outcome == "allowed" and (status in (401, 403) or (declared != "public" and location.startswith("/login"))):
            problems.append(f"{where}: refused with {status} but the rule lets {role} in")
        elif outcome == "sign-in" and is_api and status != 401:
            problems.append(f"{where}: {status} instead of 401 for a request without a token")
        elif outcome == "sign-in" and not is_api and not (status == 302 and location.startswith("/login")):
            problems.append(f"{where}: {status} instead of a redirect to /login")
        elif outcome == "forbidden" and status != 403:
            problems.append(f"{where}: {status} instead of 403")
        if outcome != "allowed" and fingerprint(ignore) != before:
            problems.append(f"{where}: refused, yet the database changed")
    return problems


@pytest.fixture
def records(app):
    make_role_users()
    return seed_records()


def test_route_obeys_its_declared_rule_for_every_role(app, client, records, route):
    path_rule, endpoint, method = route
    assert check_route(app, path_rule, endpoint, method, records) == []


def test_the_matrix_notices_a_route_without_a_rule(app, client, records):
    app.add_url_rule("/contacts/<int:contact_id>/undeclared", "undeclared", lambda contact_id: "secret", methods=["GET", "POST"])
    problems = check_route(app, "/contacts/<int:contact_id>/undeclared", "undeclared", "POST", records)
    assert problems and "declares no access rule" in problems[0]
    # And the central hook refuses it meanwhile, whatever the role.
    assert client_as(app, "admin").get(f"/contacts/{records['contact']}/undeclared").status_code == 403


def test_the_matrix_notices_a_refused_write_that_changed_data(app, client, records):
    from itertools import count

    from flask import request

    from crm.models import Contact

    writes = count()

    def write_before_the_access_check():  # a bug the matrix must catch
        if request.endpoint == "leaky":
            db.session.get(Contact, records["contact"]).company = f"changed {next(writes)}"
            db.session.commit()

    app.add_url_rule("/contacts/<int:contact_id>/leaky", "leaky", access("admin")(lambda contact_id: "ok"), methods=["POST"])
    app.before_request_funcs.setdefault(None, []).insert(0, write_before_the_access_check)
    problems = check_route(app, "/contacts/<int:contact_id>/leaky", "leaky", "POST", records)
    assert any("viewer" in p and "the database changed" in p for p in problems)


def test_the_matrix_covers_api_routes_with_tokens(app, client, records):
    app.add_url_rule("/api/v1/matrix-ping", "matrix_ping", access("read", post="write")(lambda: {"ok": True}),
                     methods=["GET", "POST"])
    assert check_route(app, "/api/v1/matrix-ping", "matrix_ping", "GET", records) == []
    assert check_route(app, "/api/v1/matrix-ping", "matrix_ping", "POST", records) == []


def test_url_parameters_get_real_ids(app, records):
    from tests.routes import UNKNOWN_ID, kind_of

    app.add_url_rule("/contacts/<int:id>/orders/<int:order_id>/x", "x", lambda **kw: "")
    app.add_url_rule("/things/<int:thing_id>", "y", lambda **kw: "")
    rule_x = next(app.url_map.iter_rules("x"))
    assert kind_of(rule_x, "id") == "contact" and kind_of(rule_x, "order_id") == "order"
    assert url_for_rule(rule_x, records) == f"/contacts/{records['contact']}/orders/{records['order']}/x"
    assert url_for_rule(next(app.url_map.iter_rules("y")), records) == f"/things/{UNKNOWN_ID}"
