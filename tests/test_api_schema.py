"""The OpenAPI document tells the truth: schemathesis calls every operation with data made from it.

Every response must be documented (status, content type, body schema) and no request may cause
a server error. Examples are bounded (max_examples per operation) and derandomised, so the run is
repeatable and takes seconds.
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from crm.extensions import db
from crm.models import Task, utcnow
from crm.services.orders import recording as orders
from crm.services.orders import single as order_input
from crm.services.people import contacts
from crm.services.segments import store as segments
from crm.services.staff import api_tokens
from crm.views.api_spec import spec
from tests.conftest import make_user

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 25
# Each operation once with the ids of seeded records, and those with ids once more with generated ones.
OPERATIONS = [(op.label, ids) for op in (r.ok() for r in schemathesis.openapi.from_dict(spec()).get_all_operations())
              for ids in (("existing", "generated") if "{" in op.path else ("existing",))]


@pytest.fixture
def app_config():
    # Not RATELIMIT_ENABLED=False: Flask-Limiter keeps that on the shared extension for later apps.
    return {"API_RATE_LIMIT": "100000 per minute"}


@pytest.fixture
def seeded(app):
    """An admin's token and a few records, so generated ids and bodies meet real data."""
    admin = make_user("admin")
    anna = contacts.create_contact({"first_name": "Anna", "email": "anna@example.nl"})
    contacts.create_contact({"first_name": "Bo", "phone": "+31 20 555 0101"})
    orders.record_order(order_input.api_order_record(
        {"order_id": "S-1", "email": "anna@example.nl", "placed_at": "2026-01-02", "total": "12.50"}))
    db.session.add(Task(contact_id=anna.id, kind="call", title="Call Anna", due_at=utcnow(), status="open"))
    segment = segments.create({"name": "Everyone in stage awareness", "definition": {
        "match": "all", "conditions": [{"field": "stage", "op": "=", "value": "awareness"}]}})
    from crm.services.campaigns import store as campaigns

    campaign = campaigns.create({"name": "News", "segment_id": str(segment.id), "template_key": "stay_in_touch"}, None)
    _row, token = api_tokens.create_token(admin, "schemathesis")
    db.session.commit()
    return {"token": token, "contact_id": anna.id, "task_id": db.session.scalar(db.select(Task.id)),
            "segment_id": segment.id, "campaign_id": campaign.id}


@pytest.mark.parametrize("label,ids", OPERATIONS)
def test_every_operation_answers_as_documented(app, client, seeded, label, ids):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operation = schema.find_operation_by_label(label)
    assert operation is not None, label
    known = {"contact_id": seeded["contact_id"], "task_id": seeded["task_id"], "segment_id": seeded["segment_id"],
             "campaign_id": seeded["campaign_id"]}
    path_parameters = {name: known[name] for name in known if "{" + name + "}" in operation.path}
    headers = {"Authorization": f"Bearer {seeded['token']}"}

    @given(case=operation.as_strategy(path_parameters=path_parameters if ids == "existing" else None))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def call(case):
        # The suite's client: each request loads its user afresh (the app context is shared).
        response = case.call(headers=headers, session=client)
        case.validate_response(response, checks=CHECKS, headers=headers)
        db.session.rollback()  # a failed request must not leave its half-done work in the shared session

    call()


def test_every_documented_operation_is_a_real_route(app):
    routes = {(method, rule.rule) for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    for path, item in spec()["paths"].items():
        for method in (m for m in item if m != "parameters"):
            flask_path = "/api/v1" + path.replace("{", "<int:").replace("}", ">")
            assert (method.upper(), flask_path) in routes, (method, path)
