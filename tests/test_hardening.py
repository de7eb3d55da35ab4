"""What an outside attack and load test found (issue 12), each as the test that would have caught it.

Every test here failed before its fix. The rules are tested for the whole class: every date any
parser reads, every id in a route or a query string, every JSON body's nesting depth.
"""
from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from crm.extensions import db
from crm.models import ApiToken, Contact, ImportRejection, Order, Setting, WebhookDelivery
from crm.services.orders import recording as orders
from crm.services.orders import webhooks
from crm.services.orders.importing import parse_timestamp, read_generic_orders
from crm.services.shared import bounds
from crm.services.staff import api_tokens, users
from tests.conftest import PASSWORD, make_user
from tests.helpers import summary_lines
from tests.routes import app_routes, make_role_users, seed_records

SECRET = "shpss_test_secret"
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def app_config():
    return {"API_RATE_LIMIT": "1000000 per minute", "LOGIN_RATE_LIMIT": "1000 per minute"}


@pytest.fixture
def secrets(app):
    db.session.add(Setting(key="webhooks.shopify_secret", value=SECRET))
    db.session.commit()


def shopify(client, topic, payload, *, delivery="d-1"):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post("/webhooks/shopify", data=body, headers={
        "X-Shopify-Topic": topic, "X-Shopify-Webhook-Id": delivery, "Content-Type": "application/json",
        "X-Shopify-Hmac-Sha256": webhooks.sign(SECRET, body)})


def shopify_order(**changes):
    order = {
        "id": 5512349001, "name": "#1010", "email": "jon@example.com", "created_at": "2026-05-01T10:00:00+02:00",
        "financial_status": "paid", "currency": "EUR", "total_price": "49.90", "subtotal_price": "44.95",
        "customer": {"id": 7009, "email": "jon@example.com", "first_name": "Jon", "last_name": "Snow"},
        "line_items": [{"sku": "TEA-1", "name": "Lapsang", "quantity": 1, "price": "44.95"}],
    }
    order.update(changes)
    return order


def api_token(role="sales"):
    user = users.by_email(f"{role}@example.com") or make_user(role)
    _token, plain = api_tokens.create_token(user, "test")
    db.session.commit()
    return user, plain


def bearer(plain):
    return {"Authorization": f"Bearer {plain}"}


# -- 1. dates outside 1970 .. ten years ahead ------------------------------------------------------

@pytest.mark.parametrize("text", ["9999-12-31", "0001-01-01", "1969-12-31T23:59:59Z", "2999-01-01"])
def test_a_date_outside_the_window_is_refused_with_the_reason(text):
    with pytest.raises(ValueError, match="outside the dates this CRM accepts"):
        parse_timestamp(text)


@given(day=st.dates())
def test_every_date_parses_inside_the_window_or_is_refused_never_overflows(day):
    inside = date(1970, 1, 1) <= day <= bounds.latest_moment().date() - timedelta(days=1)
    try:
        parsed = parse_timestamp(day.isoformat())
    except ValueError:
        assert not inside
    else:
        assert bounds.EARLIEST <= parsed <= bounds.latest_moment()


@given(moment=st.datetimes(timezones=st.just(UTC)), days=st.integers(-10**6, 10**6))
def test_date_arithmetic_in_the_rules_never_overflows(moment, days):
    result = bounds.shifted(moment, timedelta(days=days))
    assert isinstance(result, datetime)


def test_an_import_with_a_9999_order_rejects_that_row_and_refresh_still_succeeds(app, runner, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("order_id,email,placed_at,total\nP-1,p@example.com,9999-12-31,5\nP-2,q@example.com,2026-01-02,7\n")
    result = runner.invoke(args=["import", "orders", str(path)])
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(func.count()).select_from(Order)) == 1
    reasons = [r.reason for r in db.session.scalars(select(ImportRejection))]
    assert any("9999-12-31" in r and "outside the dates" in r for r in reasons), reasons
    assert runner.invoke(args=["refresh"]).exit_code == 0


def test_refresh_survives_an_order_stored_at_the_end_of_the_calendar(app, runner):
    """An order stored before the rule existed (or written by hand) cannot make the rules overflow."""
    make_user("admin")
    record = next(iter(read_generic_orders(
        io.StringIO("order_id,email,placed_at,total\nP-1,p@example.com,2026-01-02,5\n"), "csv")))
    outcome = orders.record_order(record)
    db.session.commit()
    db.session.execute(Order.__table__.update().values(placed_at=datetime(9999, 12, 31, tzinfo=UTC)))
    db.session.execute(Contact.__table__.update().values(last_order_at=datetime(9999, 12, 31, tzinfo=UTC),
                                                        first_order_at=datetime(9999, 12, 31, tzinfo=UTC)))
    db.session.commit()
    result = runner.invoke(args=["refresh"])
    assert result.exit_code == 0, result.output
    assert outcome.contact_id


def test_the_api_refuses_a_9999_order_with_the_field_and_reason(client):
    _user, plain = api_token()
    response = client.post("/api/v1/orders", json={"order_id": "A-1", "email": "p@example.com",
                                                   "placed_at": "9999-12-31", "total": "5"}, headers=bearer(plain))
    assert response.status_code == 422
    assert "outside the dates" in json.dumps(response.get_json())
    assert db.session.scalar(select(func.count()).select_from(Order)) == 0


def test_a_webhook_with_a_9999_order_is_a_4xx_with_its_delivery_kept(client, secrets):
    response = shopify(client, "orders/create", shopify_order(created_at="9999-12-31T00:00:00Z"))
    assert 400 <= response.status_code < 500
    delivery = db.session.scalar(select(WebhookDelivery))
    assert delivery.status == "failed" and "outside the dates" in delivery.error
    assert db.session.scalar(select(func.count()).select_from(Order)) == 0


def test_an_interaction_or_snooze_far_out_is_refused(client):
    _user, plain = api_token("support")
    contact = client.post("/api/v1/contacts", json={"email": "c@example.com"}, headers=bearer(plain)).get_json()
    response = client.post(f"/api/v1/contacts/{contact['id']}/interactions",
                           json={"kind": "note", "subject": "x", "occurred_at": "0001-01-01T00:00:00Z"},
                           headers=bearer(plain))
    assert response.status_code == 422


# -- 2. open redirect after sign-in ----------------------------------------------------------------

@pytest.mark.parametrize("target", ["/.//evil.com", "/a/..//evil.com", "/././/evil.com", "/x/.././/evil.com",
                                    "//evil.com", "https://evil.com/", "/\\evil.com", "/%2F/evil.com",
                                    " //evil.com", "\t//evil.com"])
def test_next_after_sign_in_never_leaves_the_site(client, target):
    make_user("admin")
    response = client.post(f"/login?next={target}", data={"email": "admin@example.com", "password": PASSWORD})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert not location.lstrip().startswith("//")
    assert urlsplit(location).netloc in ("", "localhost"), location


def test_next_within_the_site_is_kept(client):
    make_user("admin")
    response = client.post("/login?next=/contacts?q=x", data={"email": "admin@example.com", "password": PASSWORD})
    assert response.headers["Location"].endswith("/contacts?q=x")


# -- 3. password change, reset and re-enabling end API tokens for good ----------------------------

def _api_status(client, plain):
    return client.get("/api/v1/contacts", headers=bearer(plain)).status_code


def test_a_password_change_revokes_the_users_api_tokens(client):
    user, plain = api_token()
    assert _api_status(client, plain) == 200
    users.change_own_password(user, PASSWORD, "another long password")
    db.session.commit()
    assert _api_status(client, plain) == 401


def test_a_password_reset_revokes_the_users_api_tokens(client):
    admin = make_user("admin")
    user, plain = api_token()
    users.reset_password(user, actor_id=admin.id)
    db.session.commit()
    assert _api_status(client, plain) == 401


def test_enabling_a_disabled_user_again_does_not_bring_old_tokens_back(client):
    admin = make_user("admin")
    user, plain = api_token()
    users.set_active(user, False, actor_id=admin.id)
    db.session.commit()
    assert _api_status(client, plain) == 401
    users.set_active(user, True, actor_id=admin.id)
    db.session.commit()
    assert _api_status(client, plain) == 401
    assert db.session.scalar(select(ApiToken.revoked_at)) is not None


# -- 11 (first half). logout ends the session on the server ---------------------------------------

def test_a_session_cookie_captured_before_logout_no_longer_works(app, client, auth):
    auth.as_role("admin")
    assert client.get("/contacts").status_code == 200
    captured = client.get_cookie("crm_session").value
    auth.logout()
    thief = app.test_client()
    thief.set_cookie("crm_session", captured, domain="localhost")
    response = thief.get("/contacts")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# -- 10. crafted input: ids, integers, nesting, surrogates ----------------------------------------

HUGE = [str(2**63), str(2**64 + 1), "9" * 40, str(2**31)]


def test_every_route_id_too_big_for_the_database_is_a_404(app, client):
    make_role_users()
    seed_records()
    client.post("/login", data={"email": "admin@example.com", "password": PASSWORD})
    checked = 0
    for rule, method in app_routes(app, methods=("GET", "POST")):
        if not any(type(c).__name__ == "IdConverter" for c in rule._converters.values()):
            continue
        for huge in HUGE:
            path = rule.rule
            for name, converter in rule._converters.items():
                path = path.replace(f"<int:{name}>", huge)
            if "<" in path:
                continue
            response = client.open(path, method=method)
            # 405 when another route of that path (a GET-only one) is the one left matching.
            assert response.status_code in (404, 405), f"{method} {path}: {response.status_code}"
            checked += 1
    assert checked > 40


@pytest.mark.parametrize("query", ["page", "before", "other", "user", "owner", "assignee", "cursor", "after"])
@pytest.mark.parametrize("value", HUGE + ["+", " ", "-1", "1e9", "١٢", "0x10"])
def test_every_query_id_or_page_out_of_range_is_never_a_server_error(app, client, query, value):
    make_role_users()
    ids = seed_records()
    client.post("/login", data={"email": "admin@example.com", "password": PASSWORD})
    for path in ("/contacts", "/orders", "/tasks", "/imports/", "/settings/webhooks", "/settings/audit", "/leads/",
                 f"/contacts/{ids['contact']}/merge"):
        response = client.get(path, query_string={query: value})
        assert response.status_code < 500, f"{path}?{query}={value}: {response.status_code}"


def test_the_audit_filter_with_a_blank_user_is_ignored(client, auth):
    auth.as_role("admin")
    assert client.get("/settings/audit?user=+").status_code == 200


@pytest.mark.parametrize("depth", [33, 1_000, 100_000])
def test_json_nested_deep_is_a_400_on_the_api_and_webhooks(client, secrets, depth):
    _user, plain = api_token()
    body = '{"a":' * depth + "1" + "}" * depth
    response = client.post("/api/v1/contacts", data=body, headers={**bearer(plain), "Content-Type": "application/json"})
    assert response.status_code == 400 and "deeper" in response.get_json()["error"]["message"]
    response = shopify(client, "orders/create", body.encode(), delivery=f"deep-{depth}")
    assert response.status_code == 400
    assert db.session.scalar(select(WebhookDelivery.status)) == "failed"


def test_a_huge_quantity_or_a_lone_surrogate_in_a_webhook_is_a_4xx(client, secrets):
    for n, quantity in enumerate((10**7, 2**63, 10**30)):
        order = shopify_order(line_items=[{"sku": "T", "name": "Tea", "quantity": quantity, "price": "1.00"}])
        response = shopify(client, "orders/create", order, delivery=f"q{n}")
        assert response.status_code == 400
        assert "quantity" in response.get_json()["message"] or "too long" in response.get_json()["message"]
    body = json.dumps(shopify_order(id=2, name="#\\ud800")).replace("\\\\ud800", "\\ud800").encode()
    response = shopify(client, "orders/create", body, delivery="s")
    assert response.status_code == 400 and "surrogate" in response.get_json()["message"]
    assert db.session.scalar(select(func.count()).select_from(Order)) == 0


@given(depth=st.integers(1, 3000))
@FAST
def test_parse_json_accepts_shallow_and_refuses_deep_never_recursion(depth):
    text = "[" * depth + "]" * depth
    if depth <= bounds.MAX_JSON_DEPTH:
        assert bounds.parse_json(text) is not None
    else:
        with pytest.raises(bounds.BadJson):
            bounds.parse_json(text)


@given(value=st.one_of(st.integers(-(2**80), 2**80), st.text(max_size=25),
                       st.integers(-(2**80), 2**80).map(str)))
def test_parse_id_returns_a_database_id_or_none(value):
    parsed = bounds.parse_id(value)
    assert parsed is None or 1 <= parsed <= bounds.MAX_ID


# -- also: negative totals, country codes ----------------------------------------------------------

def test_a_negative_total_is_refused_by_the_api_and_webhooks(client, secrets):
    _user, plain = api_token()
    response = client.post("/api/v1/orders", json={"order_id": "N-1", "email": "n@example.com",
                                                   "placed_at": "2026-01-02", "total": "-5"}, headers=bearer(plain))
    assert response.status_code == 422 and "negative" in json.dumps(response.get_json())
    shopify(client, "orders/create", shopify_order(total_price="-49.90"), delivery="neg")
    assert db.session.scalar(select(func.count()).select_from(Order)) == 0


def test_a_country_code_must_be_iso_3166(client):
    _user, plain = api_token()
    response = client.post("/api/v1/contacts", json={"email": "z@example.com", "country": "ZZ"}, headers=bearer(plain))
    assert response.status_code == 422 and "country" in response.get_json()["error"]["fields"]
    response = client.post("/api/v1/contacts", json={"email": "d@example.com", "country": "de"}, headers=bearer(plain))
    assert response.status_code == 201


# -- also: CSV export formula variants -------------------------------------------------------------

@pytest.mark.parametrize("text", ["＝1+1", "\u200b=1+1", "\ufeff=1+1", " =1+1", "\u00a0+1", "﹢1", "＠SUM(A1)",
                                  "－1+1", "\u2060@x", "\u3000=1"])
def test_csv_export_neutralises_formula_variants(text):
    from crm.services.shared.csv_safe import safe_cell

    assert safe_cell(text).startswith("'")


@given(text=st.text(max_size=8))
def test_a_safe_cell_never_reads_as_a_formula(text):
    import unicodedata

    from crm.services.shared.csv_safe import FORMULA_STARTS, safe_cell

    cell = safe_cell(text)
    visible = "".join(ch for ch in unicodedata.normalize("NFKC", cell)
                      if unicodedata.category(ch) not in ("Cf", "Zs", "Zl", "Zp", "Cc") or ch in "\t\r")
    assert cell.startswith("'") or not visible.startswith(FORMULA_STARTS)


# -- 6. uploads: memory, runaway quotes, stored rejections ----------------------------------------

def _import(tmp_path, name, content: bytes, kind="orders"):
    from crm.services.orders.importing import run as importing

    path = tmp_path / name
    path.write_bytes(content)
    return importing.run_import(kind, str(path), name)


def test_a_one_line_csv_is_refused_in_bounded_memory(app, tmp_path):
    import tracemalloc

    from crm.services.orders.importing import run as importing
    from crm.services.orders.importing.reading import MAX_LINE_CHARS

    path = tmp_path / "wide.csv"
    with open(path, "wb") as out:
        out.write(b"order_id,email,placed_at,total\nX-1,x@example.com,2026-01-02,")
        for _ in range(20):
            out.write(b"9" * MAX_LINE_CHARS)
        out.write(b"\nX-2,y@example.com,2026-01-02,5\n")
    tracemalloc.start()
    run = importing.run_import("orders", str(path), "wide.csv")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # A 20 MB line costs a few MB (a piece at a time), not 45 times the line.
    assert peak < 8 * MAX_LINE_CHARS, f"peak {peak / 1e6:.0f} MB for a 20 MB line"
    assert run.counts["orders_created"] == 1 and run.counts["rejected"] == 1
    reason = db.session.scalar(select(ImportRejection.reason))
    assert "line 2 is longer than" in reason


def test_an_unterminated_quote_is_reported_at_its_line_and_the_rest_is_read(app, tmp_path):
    rows = ["order_id,email,placed_at,total", 'Q-1,"q@example.com,2026-01-02,5']
    rows += [f"Q-{n},q{n}@example.com,2026-01-02,5" for n in range(2, 1200)]
    run = _import(tmp_path, "quote.csv", ("\n".join(rows) + "\n").encode())
    rejected = list(db.session.scalars(select(ImportRejection)))
    assert [(r.line, "quote" in r.reason) for r in rejected] == [(2, True)]
    assert run.counts["orders_created"] == 1198
    # Later rows keep their own physical line numbers.
    assert db.session.scalar(select(func.count()).select_from(Order).where(Order.external_id == "Q-1199")) == 1


def test_stored_rejections_are_capped_per_run_with_the_count_kept(app, tmp_path):
    from crm.services.orders.importing import run as importing

    run = _import(tmp_path, "numbers.json", json.dumps(list(range(3000))).encode())
    assert run.counts["rejected"] == 3000
    stored = db.session.scalar(select(func.count()).select_from(ImportRejection))
    assert stored == importing.MAX_STORED_REJECTIONS
    assert db.session.scalar(select(func.min(ImportRejection.line))) == 1
    assert any("only the first 1,000" in line for line in summary_lines(run))


# -- property: every JSON body route, every nesting depth; every route id --------------------------

def _json_routes(app):
    return [(rule.rule, method) for rule, method in app_routes(app, methods=("POST", "PATCH", "PUT"))
            if rule.rule.startswith(("/api/", "/webhooks/"))]


@given(depth=st.integers(1, 5000), data=st.data())
@FAST
def test_no_json_route_fails_on_any_nesting_depth(app, client, depth, data):
    if users.by_email("sales@example.com") is None:
        make_role_users()
    if db.session.get(Setting, "webhooks.shopify_secret") is None:
        db.session.add_all([Setting(key="webhooks.shopify_secret", value=SECRET),
                            Setting(key="webhooks.woocommerce_secret", value=SECRET)])
        db.session.commit()
    path_rule, method = data.draw(st.sampled_from(_json_routes(app)))
    path = path_rule
    for name in ("contact_id", "task_id", "id"):
        path = path.replace(f"<int:{name}>", "1")
    opener, closer = data.draw(st.sampled_from([('{"a":', "}"), ("[", "]")]))
    body = (opener * depth + "1" + closer * depth).encode()
    headers = {"Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
               "X-Shopify-Hmac-Sha256": webhooks.sign(SECRET, body), "X-WC-Webhook-Topic": "order.created",
               "X-WC-Webhook-Signature": webhooks.sign(SECRET, body)}
    if path.startswith("/api/"):
        headers["Authorization"] = f"Bearer {api_token('admin')[1]}"
    response = client.open(path, method=method, data=body, headers=headers)
    assert response.status_code < 500, (path, depth, response.status_code)
    if depth > bounds.MAX_JSON_DEPTH:
        # 422 where a route refuses every bad body so (segment definitions).
        assert response.status_code in (400, 404, 405, 422, 429), (path, depth, response.status_code)
        assert "deeper" in response.get_data(as_text=True) or response.status_code in (404, 405, 429)


@given(number=st.one_of(st.integers(2**31, 2**80), st.integers(-(2**80), -1)), data=st.data())
@FAST
def test_no_route_fails_on_any_integer_in_its_path(app, client, number, data):
    if users.by_email("admin@example.com") is None:
        make_role_users()
        client.post("/login", data={"email": "admin@example.com", "password": PASSWORD})
    rules = [(rule, method) for rule, method in app_routes(app, methods=("GET", "POST")) if rule._converters]
    rule, method = data.draw(st.sampled_from(rules))
    path = rule.rule
    for name, converter in rule._converters.items():
        path = path.replace(f"<int:{name}>", str(number)).replace(f"<{name}>", str(number))
    response = client.open(path, method=method)
    assert response.status_code < 500, (path, response.status_code)
