"""The segments API: save, read, change, delete, list members and preview; bad and hostile
definitions get a 422 naming the condition's position, never a 500."""
from __future__ import annotations

import json
import time

import pytest

from crm.extensions import db
from crm.models import Segment
from crm.services.people import contacts
from tests.routes import make_role_users, token_for


@pytest.fixture
def app_config():
    return {"API_RATE_LIMIT": "100000 per minute"}


@pytest.fixture
def api(app, client):
    make_role_users()
    for name, city, score in (("Anna", "Gent", 80), ("Bo", "Gent", 10), ("Cas", "Paris", 90)):
        contact = contacts.create_contact({"first_name": name, "city": city, "email": f"{name.lower()}@example.com"})
        contact.lead_score = score
    db.session.commit()

    def call(method, path, body=None, role="sales", raw=None):
        headers = {"Authorization": f"Bearer {token_for(role)}"}
        data = raw if raw is not None else json.dumps(body) if body is not None else None
        return client.open("/api/v1" + path, method=method, data=data, headers=headers,
                           content_type="application/json" if data is not None else None)

    return call


GENT = {"match": "all", "conditions": [{"field": "city", "op": "=", "value": "Gent"},
                                       {"field": "lead_score", "op": ">=", "value": 50}]}


def test_a_saved_segment_answers_with_its_id_and_count_and_lists_its_members(api):
    created = api("POST", "/segments", {"name": "Keen in Gent", "definition": GENT})
    assert created.status_code == 201
    body = created.get_json()
    assert body["count"] == 1 and body["id"]
    assert api("GET", f"/segments/{body['id']}", role="viewer").get_json()["count"] == 1
    members = api("GET", f"/segments/{body['id']}/contacts", role="viewer").get_json()
    assert [c["first_name"] for c in members["items"]] == ["Anna"] and members["next"] is None
    listed = api("GET", "/segments", role="viewer").get_json()
    assert [s["name"] for s in listed["items"]] == ["Keen in Gent"]


def test_changing_a_definition_changes_the_count(api):
    segment_id = api("POST", "/segments", {"name": "Gent", "definition": GENT}).get_json()["id"]
    changed = api("PATCH", f"/segments/{segment_id}", {"definition": {
        "match": "any", "conditions": [{"field": "city", "op": "=", "value": "Paris"},
                                       {"field": "first_name", "op": "contains", "value": "ANN"}]}})
    assert changed.status_code == 200 and changed.get_json()["count"] == 2


def test_only_admins_delete_a_segment(api):
    segment_id = api("POST", "/segments", {"name": "Gent", "definition": GENT}).get_json()["id"]
    assert api("DELETE", f"/segments/{segment_id}", role="sales").status_code == 403
    assert api("DELETE", f"/segments/{segment_id}", role="admin").status_code == 204
    assert api("GET", f"/segments/{segment_id}").status_code == 404


def test_a_viewer_cannot_build_a_segment(api):
    assert api("POST", "/segments", {"name": "x", "definition": GENT}, role="viewer").status_code == 403


def test_a_preview_counts_and_samples_without_saving(api):
    response = api("POST", "/segments/preview", {"definition": GENT})
    assert response.status_code == 200
    assert response.get_json()["count"] == 1
    assert [c["first_name"] for c in response.get_json()["sample"]] == ["Anna"]
    assert db.session.query(Segment).count() == 0


@pytest.mark.parametrize("condition,position,reason", [
    ({"field": "colour", "op": "=", "value": "red"}, "definition.conditions[1]", "Unknown field"),
    ({"field": "lead_score", "op": ">", "value": "high"}, "definition.conditions[1]", "Give a number"),
    ({"field": "lead_score", "op": "contains", "value": "5"}, "definition.conditions[1]", "does not apply"),
    ({"field": "stage", "op": "=", "value": "asleep"}, "definition.conditions[1]", "Use one of"),
    ({"field": "last_order_at", "op": "before", "value": "0000-01-01"}, "definition.conditions[1]", "real date"),
    ({"field": "last_order_at", "op": "before", "value": "0001-01-01"}, "definition.conditions[1]", "between the years"),
    ({"field": "ordered", "op": "has", "value": {"colour": 1}}, "definition.conditions[1]", "Unknown option"),
    ({"match": "all", "conditions": [{"match": "any", "conditions": []}]}, "definition.conditions[1].conditions[0]",
     "one level deep"),
])
def test_a_bad_condition_is_refused_with_its_position_and_a_plain_reason(api, condition, position, reason):
    definition = {"match": "all", "conditions": [{"field": "city", "op": "=", "value": "Gent"}, condition]}
    response = api("POST", "/segments", {"name": "Bad", "definition": definition})
    assert response.status_code == 422
    fields = response.get_json()["error"]["fields"]
    assert reason in fields[position], fields


@pytest.mark.parametrize("raw", [
    '{"definition": {"match": "all", "conditions": [{"field": "p_alive", "op": ">", "value": NaN}]}}',
    '{"definition": {"match": "all", "conditions": [{"field": "p_alive", "op": ">", "value": Infinity}]}}',
    '{"definition": ' + '{"match": "all", "conditions": [' * 30 + ']}' * 30 + '}',
    '{"definition": ' + '[' * 100_000 + ']' * 100_000 + '}',
    json.dumps({"definition": {"match": "any", "conditions": [{"field": "city", "op": "=", "value": "x"}] * 10_000}}),
    json.dumps({"definition": {"match": "any", "conditions": [{"field": "city", "op": "in",
                                                               "value": [str(i) for i in range(100_000)]}]}}),
    json.dumps({"definition": {"match": "any", "conditions": [{"field": "city", "op": "=", "value": "x" * 10_000}]}}),
    json.dumps({"definition": {"match": "any", "conditions": [{"field": "lead_score", "op": ">", "value": 10**400}]}}),
    json.dumps({"definition": {"match": "any", "conditions": [{"field": "ordered", "op": "has",
                                                               "value": {"within_days": 10**9}}]}}),
    json.dumps({"definition": {"match": "any", "conditions": [{"field": ["x"], "op": {}, "value": None}]}}),
    json.dumps({"definition": {"match": "any", "conditions": "everyone"}}),
    json.dumps({"definition": []}),
])
def test_hostile_definitions_get_a_422_quickly(api, raw):
    started = time.perf_counter()
    response = api("POST", "/segments/preview", raw=raw)
    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    assert response.get_json()["error"]["fields"]
    assert time.perf_counter() - started < 2


def test_sql_in_a_value_is_only_a_value(api):
    definition = {"match": "any", "conditions": [
        {"field": "city", "op": "=", "value": "Gent'; DROP TABLE contacts; --"},
        {"field": "first_name", "op": "contains", "value": "%' OR 1=1 --"}]}
    response = api("POST", "/segments/preview", {"definition": definition})
    assert response.status_code == 200 and response.get_json()["count"] == 0
    assert api("GET", "/contacts").get_json()["items"]


def test_the_openapi_document_lists_the_fields_and_operators(client):
    document = client.get("/api/v1/openapi.json").get_json()
    definition = document["components"]["schemas"]["SegmentDefinition"]
    assert "`ordered`" in definition["description"] and "`within_last_days`" in definition["description"]
    assert "lead_score" in document["components"]["schemas"]["SegmentCondition"]["properties"]["field"]["enum"]
    assert {"/segments", "/segments/preview", "/segments/{segment_id}",
            "/segments/{segment_id}/contacts"} <= set(document["paths"])
