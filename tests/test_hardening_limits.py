"""Rate limits that an attack found loose or too strict (issue 12, findings 8 and 9)."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from crm.config import server_workers, warn_about_per_process_limits
from crm.extensions import db
from crm.models import Setting, WebhookDelivery
from crm.services.orders import webhooks
from crm.services.staff import api_tokens
from tests.conftest import PASSWORD, make_user

SECRET = "shpss_test_secret"


@pytest.fixture
def app_config():
    return {"API_RATE_LIMIT": "5 per minute", "LOGIN_RATE_LIMIT": "3 per minute",
            "LOGIN_ACCOUNT_RATE_LIMIT": "5 per 15 minutes", "WEBHOOK_PING_RATE_LIMIT": "4 per minute",
            "WEBHOOK_REFUSAL_LIMIT": "3 per minute"}


def _login(client, email, password, address):
    return client.post("/login", data={"email": email, "password": password},
                       environ_base={"REMOTE_ADDR": address})


# -- 8. unauthenticated traffic -------------------------------------------------------------------

def test_made_up_bearer_tokens_share_their_address_budget_and_never_write(app, client, count_queries):
    with count_queries() as statements:
        statuses = [client.get("/api/v1/contacts", headers={"Authorization": f"Bearer crm_made-up-{n}"}).status_code
                    for n in range(8)]
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429] * 3
    writes = [s for s in statements if s.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE"))]
    assert writes == []


def test_a_real_token_keeps_its_own_budget_beside_a_flooding_address(app, client):
    user = make_user("sales")
    _token, plain = api_tokens.create_token(user, "shop")
    db.session.commit()
    for n in range(6):
        client.get("/api/v1/contacts", headers={"Authorization": f"Bearer crm_made-up-{n}"})
    assert client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {plain}"}).status_code == 200


def test_the_api_is_limited_once_with_one_key(app, client):
    user = make_user("sales")
    _token, plain = api_tokens.create_token(user, "shop")
    db.session.commit()
    statuses = [client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {plain}"}).status_code
                for _ in range(6)]
    # One budget of five: two limits on two keys would have cut it at a different point or twice.
    assert statuses == [200] * 5 + [429]


def test_unsigned_woocommerce_pings_are_limited_per_address(client):
    statuses = [client.post("/webhooks/woocommerce", data=f"webhook_id={n}").status_code for n in range(7)]
    assert statuses[:4] == [200] * 4 and set(statuses[4:]) == {429}
    assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 4


# -- 9. rate-limit side effects -------------------------------------------------------------------

def test_the_right_password_is_not_locked_out_by_an_address_limit_alone(client):
    make_user("admin")
    for n in range(4):
        _login(client, f"typo{n}@example.com", "wrong password!", "192.0.2.10")
    assert _login(client, "someone@example.com", "wrong password!", "192.0.2.10").status_code == 429
    response = _login(client, "admin@example.com", PASSWORD, "192.0.2.10")
    assert response.status_code == 302


def test_an_account_is_limited_whatever_the_address(client):
    make_user("admin")
    statuses = [_login(client, "admin@example.com", "wrong password!", f"198.51.100.{n}").status_code
                for n in range(6)]
    assert statuses[:5] == [200] * 5 and statuses[5] == 429
    blocked = _login(client, "admin@example.com", PASSWORD, "203.0.113.1")
    assert blocked.status_code == 429 and "Retry-After" in blocked.headers


def test_signed_webhooks_are_never_limited_by_forged_ones_from_the_same_address(client):
    db.session.add(Setting(key="webhooks.shopify_secret", value=SECRET))
    db.session.commit()
    body = json.dumps({"id": 1, "email": "c@example.com", "first_name": "C"}).encode()
    headers = {"X-Shopify-Topic": "customers/create", "Content-Type": "application/json"}
    forged = [client.post("/webhooks/shopify", data=body, headers={**headers, "X-Shopify-Hmac-Sha256": "bad"}).status_code
              for _ in range(5)]
    assert forged[:3] == [401] * 3 and set(forged[3:]) == {429}
    genuine = client.post("/webhooks/shopify", data=body, headers={
        **headers, "X-Shopify-Webhook-Id": "g-1", "X-Shopify-Hmac-Sha256": webhooks.sign(SECRET, body)})
    assert genuine.status_code == 200


def test_per_process_counts_with_several_workers_are_said_loudly(app, capsys):
    assert server_workers(["/srv/.venv/bin/gunicorn", "-w", "2", "crm:create_app()"], {}) == 2
    assert server_workers(["crm", "run"], {}) == 1
    app.config["RATELIMIT_STORAGE_URI"] = "memory://"
    assert warn_about_per_process_limits(app, workers=2) is True
    assert "RATELIMIT_STORAGE_URI=redis://" in capsys.readouterr().err
    app.config["RATELIMIT_STORAGE_URI"] = "redis://127.0.0.1:6379"
    assert warn_about_per_process_limits(app, workers=2) is False
