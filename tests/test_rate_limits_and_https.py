"""Rate limits on the API (one budget per token, shared between workers through Redis),
and HTTPS protections: HSTS and Secure cookies, directly and behind a proxy."""
import socket
import uuid

import pytest

from crm import create_app
from crm.extensions import db
from crm.views.access import access
from tests.conftest import PASSWORD, make_user


@pytest.fixture
def app_config():
    return {"API_RATE_LIMIT": "3 per minute"}


def _add_probe(app):
    """A tiny API route, as the API blueprint's routes will be: the limit covers it without opting in."""
    app.add_url_rule("/api/v1/probe", "probe", access("public")(lambda: {"ok": True}), methods=["GET", "POST"])


def test_the_api_answers_429_with_retry_after_and_a_json_body(app, client):
    _add_probe(app)
    statuses = [client.get("/api/v1/probe").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    response = client.get("/api/v1/probe")
    assert response.status_code == 429
    assert response.is_json and response.json["error"]["code"] == "rate_limited"
    assert "3 per 1 minute" in response.json["error"]["message"]
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert response.headers["X-RateLimit-Limit"] == "3"


def test_every_api_route_shares_one_budget_and_pages_are_not_counted(app, client):
    _add_probe(app)
    app.add_url_rule("/api/v1/other", "other_probe", access("public")(lambda: {"ok": True}))
    make_user("admin")
    assert [client.get("/api/v1/probe").status_code, client.post("/api/v1/probe").status_code,
            client.get("/api/v1/other").status_code] == [200, 200, 200]
    assert client.get("/api/v1/other").status_code == 429
    # The web pages are not under the API's limit.
    assert all(client.get("/login").status_code == 200 for _ in range(5))


def test_each_token_has_its_own_budget(app, client):
    from crm.services.staff import api_tokens
    from tests.conftest import make_user

    _add_probe(app)
    user = make_user("sales")
    plains = [api_tokens.create_token(user, name)[1] for name in ("first", "second")]
    db.session.commit()
    first = {"Authorization": f"Bearer {plains[0]}"}
    second = {"Authorization": f"Bearer {plains[1]}"}
    assert [client.get("/api/v1/probe", headers=first).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert client.get("/api/v1/probe", headers=second).status_code == 200


def test_requests_without_a_valid_token_count_too(app, client):
    app.add_url_rule("/api/v1/private", "private_probe", access("read")(lambda: {"ok": True}))
    statuses = [client.get("/api/v1/private", headers={"Authorization": "Bearer crm_guess"}).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


def _redis_reachable(host="127.0.0.1", port=6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def test_workers_share_one_count_through_redis(_migrated):
    """Two app instances (as two gunicorn workers would be) spend the same budget."""
    # A missing Redis is a failure, not a skip: the suite's services are part of the setup.
    assert _redis_reachable(), "Redis is not running on 127.0.0.1:6379 (the test setup starts it)"
    import redis

    prefix = f"crm-test-{uuid.uuid4().hex}"
    config = {"SQLALCHEMY_DATABASE_URI": _migrated, "TESTING": True, "SECRET_KEY": "x",
              "API_RATE_LIMIT": "3 per minute", "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379",
              "RATELIMIT_KEY_PREFIX": prefix}
    try:
        first = create_app(config)
        _add_probe(first)
        assert [first.test_client().get("/api/v1/probe").status_code for _ in range(2)] == [200, 200]
        second = create_app(config)  # a fresh worker: with memory:// its count would start at zero
        _add_probe(second)
        assert [second.test_client().get("/api/v1/probe").status_code for _ in range(2)] == [200, 429]
    finally:
        connection = redis.Redis(host="127.0.0.1", port=6379)
        keys = list(connection.scan_iter(f"*{prefix}*"))
        if keys:
            connection.delete(*keys)


def test_an_unreachable_redis_falls_back_to_counting_in_memory(_migrated):
    from crm.extensions import limiter

    config = {"SQLALCHEMY_DATABASE_URI": _migrated, "TESTING": True, "SECRET_KEY": "x",
              "API_RATE_LIMIT": "2 per minute", "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:1"}
    try:
        app = create_app(config)
        _add_probe(app)
        client = app.test_client()
        assert [client.get("/api/v1/probe").status_code for _ in range(3)] == [200, 200, 429]
    finally:
        limiter._storage_dead = False  # the limiter object outlives this app; the next app's storage is fine


def _login(client, **kwargs):
    return client.post("/login", data={"email": "admin@example.com", "password": PASSWORD}, **kwargs)


def test_over_https_responses_carry_hsts_and_the_cookie_is_secure(client):
    make_user("admin")
    response = _login(client, base_url="https://localhost")
    assert "Secure" in response.headers["Set-Cookie"]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_over_plain_http_there_is_no_hsts_and_a_forwarded_header_is_not_trusted(client):
    make_user("admin")
    response = _login(client, headers={"X-Forwarded-Proto": "https"})
    assert "Secure" not in response.headers["Set-Cookie"]
    assert "Strict-Transport-Security" not in response.headers


@pytest.mark.parametrize("app_config", [{"PROXY_FIX": 1}])
def test_behind_a_proxy_that_terminates_https_hsts_and_secure_cookies_follow(client, app_config):
    make_user("admin")
    response = _login(client, headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    assert "Secure" in response.headers["Set-Cookie"]
    assert "Strict-Transport-Security" in response.headers
    # The redirect after sign-in stays on https.
    assert client.get("/", headers={"X-Forwarded-Proto": "https"}).status_code == 200
    plain = _login(client.application.test_client())
    assert "Strict-Transport-Security" not in plain.headers


@pytest.mark.parametrize("app_config", [{"PROXY_FIX": 1}])
def test_behind_a_proxy_the_rate_limit_counts_the_real_client_address(app, client, app_config):
    make_user("admin")
    for _ in range(10):
        client.post("/login", data={"email": "admin@example.com", "password": "wrong password!"},
                    headers={"X-Forwarded-For": "203.0.113.7"})
    blocked = client.post("/login", data={"email": "admin@example.com", "password": "wrong password!"},
                          headers={"X-Forwarded-For": "203.0.113.7"})
    # Another address is not limited (another account, as the first one is now limited by itself).
    other = client.post("/login", data={"email": "someone@example.com", "password": "wrong password!"},
                        headers={"X-Forwarded-For": "198.51.100.4"})
    assert (blocked.status_code, other.status_code) == (429, 200)
