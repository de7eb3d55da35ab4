"""A segment query that runs past SEGMENT_QUERY_LIMIT_MS is stopped: 422 in the API, a message in
the builder and on the segment's page, nothing saved, and the request goes on working."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import insert

from crm.extensions import db
from crm.models import Contact, Interaction, Segment, utcnow
from tests.conftest import soup, text_of
from tests.routes import make_role_users, token_for

# Fifty interaction conditions, each correlated to every contact: far more work than a millisecond.
HEAVY = {"match": "any", "conditions": [
    {"field": "interaction", "op": "has", "value": {"kind": "call", "min_count": n + 2}} for n in range(50)]}


@pytest.fixture
def app_config():
    return {"SEGMENT_QUERY_LIMIT_MS": 1, "API_RATE_LIMIT": "100000 per minute"}


@pytest.fixture
def big(app):
    now = utcnow()
    db.session.execute(insert(Contact), [{"first_name": f"C{i}", "last_name": "", "created_at": now,
                                          "updated_at": now} for i in range(3000)])
    ids = [row[0] for row in db.session.execute(db.select(Contact.id))]
    db.session.execute(insert(Interaction), [{"contact_id": i, "kind": "call", "occurred_at": now, "created_at": now,
                                              "updated_at": now} for i in ids for _ in range(3)])
    make_role_users()
    db.session.commit()


def test_a_slow_preview_is_stopped_with_a_422(client, big):
    response = client.post("/api/v1/segments/preview", data=json.dumps({"definition": HEAVY}),
                           content_type="application/json", headers={"Authorization": f"Bearer {token_for('sales')}"})
    assert response.status_code == 422
    assert "took longer than" in response.get_json()["error"]["fields"]["definition"]
    # The transaction is still usable after the stopped query.
    listed = client.get("/api/v1/contacts?limit=1", headers={"Authorization": f"Bearer {token_for('sales')}"})
    assert listed.status_code == 200


def test_a_slow_segment_is_not_saved_through_the_api(client, big):
    response = client.post("/api/v1/segments", data=json.dumps({"name": "Heavy", "definition": HEAVY}),
                           content_type="application/json", headers={"Authorization": f"Bearer {token_for('sales')}"})
    assert response.status_code == 422
    assert db.session.query(Segment).count() == 0


def test_the_builder_says_the_segment_is_too_slow(client, big):
    client.post("/login", data={"email": "sales@example.com", "password": "correct horse battery"})
    data = {"match": "any", "rows": "50"}
    for n, condition in enumerate(HEAVY["conditions"]):
        data.update({f"field-{n}": "interaction", f"op-{n}": "has", f"kind-{n}": "call",
                     f"min_count-{n}": str(n + 2), f"group-{n}": "0"})
    answer = client.post("/segments/builder", data=data, headers={"HX-Request": "true", "HX-Target": "builder-preview"})
    assert answer.status_code == 200
    assert "took longer than" in text_of(soup(answer).select_one("#builder-preview"))
