"""The JSON API: tokens and roles, contacts, orders, interactions, to-dos, and every error status."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, func, select

from crm.extensions import db
from crm.models import ApiToken, AuditEntry, Contact, Interaction, Order, Task, utcnow
from crm.services.people import contacts
from crm.services.staff import api_tokens
from tests.conftest import make_user, soup, text_of


class Api:
    """Calls the API with a bearer token."""

    def __init__(self, client, token=None):
        self.client, self.token = client, token

    def _headers(self, extra=None):
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**headers, **(extra or {})}

    def get(self, path, **kwargs):
        return self.client.get(f"/api/v1{path}", headers=self._headers(kwargs.pop("headers", None)), **kwargs)

    def send(self, method, path, body=None, **kwargs):
        return self.client.open(f"/api/v1{path}", method=method, json=body,
                                headers=self._headers(kwargs.pop("headers", None)), **kwargs)

    def post(self, path, body=None, **kwargs):
        return self.send("POST", path, body, **kwargs)

    def patch(self, path, body=None, **kwargs):
        return self.send("PATCH", path, body, **kwargs)


def token_for(role):
    from crm.services.staff import users

    user = users.by_email(f"{role}@example.com") or make_user(role)
    _row, plain = api_tokens.create_token(user, f"{role} token")
    db.session.commit()
    return plain


@pytest.fixture
def api(client):
    return Api(client, token_for("sales"))


@pytest.fixture
def viewer_api(client):
    return Api(client, token_for("viewer"))


def count(model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def a_contact(**values):
    contact = contacts.create_contact({"first_name": "Anna", "last_name": "de Vries", "email": "anna@example.nl", **values})
    db.session.commit()
    return contact


def error_of(response):
    assert set(response.json) == {"error"}, response.json
    return response.json["error"]


# -- tokens and roles ----------------------------------------------------------------------------

def test_no_token_bad_token_and_revoked_token_get_401(client, app):
    assert error_of(Api(client).get("/contacts"))["code"] == "unauthorized"
    assert Api(client, "crm_not-a-token").get("/contacts").status_code == 401
    plain = token_for("sales")
    token = db.session.scalar(select(ApiToken))
    api_tokens.revoke(token)
    db.session.commit()
    response = Api(client, plain).get("/contacts")
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_session_cookie_does_not_open_the_api(client, auth):
    auth.as_role("admin")
    assert client.get("/api/v1/contacts").status_code == 401


def test_a_viewer_token_reads_but_cannot_write(viewer_api):
    a_contact()
    assert viewer_api.get("/contacts").status_code == 200
    refused = viewer_api.post("/contacts", {"email": "new@example.com"})
    assert refused.status_code == 403 and error_of(refused)["code"] == "forbidden"
    assert viewer_api.post("/orders", {"order_id": "1", "email": "x@example.com", "placed_at": "2026-01-01", "total": 1}).status_code == 403
    assert viewer_api.patch("/contacts/1", {"first_name": "X"}).status_code == 403
    assert (count(Contact), count(Order)) == (1, 0)
    assert db.session.scalar(select(Contact.first_name)) == "Anna"


def test_last_used_is_noted_at_most_once_a_minute(api):
    token = db.session.scalar(select(ApiToken))
    assert token.last_used_at is None
    db.session.commit()
    api.get("/contacts")
    db.session.expire_all()
    first = db.session.scalar(select(ApiToken.last_used_at))
    assert first is not None and (utcnow() - first) < timedelta(minutes=1)
    db.session.commit()
    api.get("/contacts")
    db.session.expire_all()
    assert db.session.scalar(select(ApiToken.last_used_at)) == first


@pytest.mark.parametrize("app_config", [{"API_RATE_LIMIT": "3 per minute"}])
def test_too_many_requests_get_429_with_retry_after(api, app_config):
    codes = [api.get("/contacts").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    response = api.get("/contacts")
    assert error_of(response)["code"] == "rate_limited" and "Retry-After" in response.headers


# -- contacts ------------------------------------------------------------------------------------

def test_list_contacts_with_search_stage_and_pages(api):
    anna = a_contact(company="Tea House BV")
    contacts.link_external_id(anna, "shopify", "7001234567890")
    for n in range(4):
        contacts.create_contact({"first_name": f"Person {n}", "email": f"p{n}@example.com"})
    db.session.commit()
    page = api.get("/contacts?limit=2").json
    assert [c["email"] for c in page["items"]] == ["anna@example.nl", "p0@example.com"] and page["next"]
    second = api.get(f"/contacts?limit=2&cursor={page['next']}").json
    assert [c["email"] for c in second["items"]] == ["p1@example.com", "p2@example.com"]
    last = api.get(f"/contacts?limit=2&cursor={second['next']}").json
    assert [c["email"] for c in last["items"]] == ["p3@example.com"] and last["next"] is None
    for q in ("de vries", "ANNA@", "tea house", "7001234567890"):
        assert [c["id"] for c in api.get("/contacts", query_string={"q": q}).json["items"]] == [anna.id], q
    assert api.get("/contacts?q=100%25").json["items"] == []  # a % is a character, not a wildcard
    assert len(api.get("/contacts?stage=awareness").json["items"]) == 5
    assert api.get("/contacts?stage=retention").json["items"] == []


@pytest.mark.parametrize("query,field", [("limit=0", "limit"), ("limit=201", "limit"), ("limit=x", "limit"),
                                         ("cursor=nonsense", "cursor"), ("stage=loyal", "stage")])
def test_bad_list_parameters_get_422_naming_the_parameter(api, query, field):
    response = api.get(f"/contacts?{query}")
    assert response.status_code == 422 and field in error_of(response)["fields"]


def test_one_contact_in_full(api):
    anna = a_contact(phone="+31 20 555 0101")
    anna.score_breakdown = [{"rule": "consent", "points": 10, "why": "agreed to hear from us"}]
    db.session.commit()
    body = api.get(f"/contacts/{anna.id}").json
    assert body["email"] == "anna@example.nl" and body["phone"] == "+31205550101"
    assert body["total_spent"] == "0.00" and body["order_count"] == 0 and body["stage"] == "awareness"
    assert body["score_breakdown"] == [{"rule": "consent", "points": 10, "why": "agreed to hear from us"}]
    assert body["created_at"].endswith("Z")
    missing = api.get("/contacts/999999")
    assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"


def test_create_a_contact(api):
    response = api.post("/contacts", {"email": "Chloe@Example.fr", "first_name": "Chloé", "tags": ["Lead", "wholesale"],
                                      "consent": True})
    assert response.status_code == 201
    body = response.json
    assert (body["email"], body["email_display"], body["tags"], body["consent"]) == (
        "chloe@example.fr", "Chloe@Example.fr", ["lead", "wholesale"], True)
    assert response.headers["Location"].endswith(f"/api/v1/contacts/{body['id']}")
    contact = db.session.get(Contact, body["id"])
    assert contact.source == "api"
    assert db.session.scalar(select(AuditEntry.user_id).where(AuditEntry.entity == "contact")) is not None


def test_creating_a_duplicate_email_is_409_naming_the_existing_contact(api):
    anna = a_contact()
    response = api.post("/contacts", {"email": " ANNA@example.nl "})
    error = error_of(response)
    assert response.status_code == 409 and error["existing_id"] == anna.id and f"#{anna.id}" in error["message"]
    assert count(Contact) == 1


@pytest.mark.parametrize("body,field", [
    ({}, "email"), ({"email": "not an email"}, "email"), ({"first_name": 5}, "first_name"),
    ({"first_name": "A", "phone": "12"}, "phone"), ({"first_name": "A", "stage": "advocacy"}, "stage"),
    ({"first_name": "A", "owner_id": 424242}, "owner_id"), ({"first_name": "A", "consent": "yes"}, "consent"),
    ({"first_name": "A", "company": "x" * 201}, "company"), ({"first_name": "A\u0000"}, "first_name"),
    ({"first_name": "A", "tags": [""]}, "tags"), ({"first_name": "A", "owner_id": True}, "owner_id"),
])
def test_invalid_contacts_get_422_with_field_errors(api, body, field):
    response = api.post("/contacts", body)
    assert response.status_code == 422, response.json
    assert field in error_of(response)["fields"]
    assert count(Contact) == 0


def test_malformed_or_non_json_bodies(api):
    malformed = api.client.post("/api/v1/contacts", data="{nope", headers={**api._headers(), "Content-Type": "application/json"})
    assert malformed.status_code == 400 and error_of(malformed)["code"] == "bad_request"
    not_json = api.client.post("/api/v1/contacts", data={"email": "a@example.com"}, headers=api._headers())
    assert not_json.status_code == 415 and error_of(not_json)["code"] == "unsupported_media_type"
    array = api.post("/contacts", [1, 2])
    assert array.status_code == 400
    assert count(Contact) == 0


@pytest.mark.parametrize("app_config", [{"API_MAX_BODY": 100}])
def test_a_body_too_large_is_413(api, app_config):
    response = api.post("/contacts", {"first_name": "A" * 200})
    assert response.status_code == 413 and error_of(response)["code"] == "too_large"


def test_patch_a_contact(api):
    anna = a_contact()
    response = api.patch(f"/contacts/{anna.id}", {"last_name": "Jansen", "tags": ["vip"], "city": "Utrecht"})
    assert response.status_code == 200
    assert (response.json["last_name"], response.json["tags"], response.json["city"]) == ("Jansen", ["vip"], "Utrecht")
    other = contacts.create_contact({"email": "bo@example.com"})
    db.session.commit()
    conflict = api.patch(f"/contacts/{anna.id}", {"email": "bo@example.com"})
    assert conflict.status_code == 409 and error_of(conflict)["existing_id"] == other.id
    assert api.patch(f"/contacts/{anna.id}", {"email": None, "first_name": None, "last_name": None}).status_code == 422
    assert api.patch("/contacts/999999", {"city": "X"}).status_code == 404
    assert db.session.get(Contact, anna.id).email == "anna@example.nl"


# -- orders --------------------------------------------------------------------------------------

ORDER = {"order_id": "POS-1", "source": "pos", "email": "Anna@Example.nl", "first_name": "Anna", "placed_at": "2026-04-01T10:00:00+02:00",
         "total": "30.00", "currency": "eur", "status": "completed",
         "lines": [{"sku": "TEA-1", "name": "Sencha", "quantity": 2, "unit_price": "12.50"}, {"name": "Bag", "unit_price": 5}]}


def test_post_an_order_then_the_same_order_again(api):
    anna = a_contact()
    created = api.post("/orders", ORDER)
    assert created.status_code == 201, created.json
    body = created.json
    assert (body["result"], body["contact_id"], body["status"], body["currency"], body["total"], body["subtotal"]) == (
        "created", anna.id, "fulfilled", "EUR", "30.00", "30.00")
    assert body["placed_at"] == "2026-04-01T08:00:00Z"
    assert [(l["sku"], l["quantity"], l["unit_price"]) for l in body["lines"]] == [("TEA-1", 2, "12.50"), (None, 1, "5.00")]
    assert db.session.get(Contact, anna.id).order_count == 1
    again = api.post("/orders", ORDER)
    assert again.status_code == 200 and again.json["result"] == "unchanged"
    changed = api.post("/orders", {**ORDER, "status": "refunded"})
    assert changed.status_code == 200 and changed.json["result"] == "updated"
    assert count(Order) == 1 and db.session.get(Contact, anna.id).order_count == 0


def test_before_any_full_run_only_the_first_order_reads_every_customers_orders(api, count_queries):
    """The rules' shop context (medians, RFM edges) is kept by the first write that needs it, as
    `crm refresh` keeps it: a shop loaded or imported before its first refresh spent seconds a
    write at a million orders reading every customer's paid orders again (issue 15)."""
    from crm.models import Setting
    from crm.services.rules import engine

    anna = a_contact()
    db.session.execute(delete(Setting))  # as a shop loaded straight into the database
    db.session.commit()

    def whole_shop(statement):  # every customer's paid orders, not the written contact's
        return "GROUP BY orders.contact_id" in statement and "orders.contact_id IN" not in statement

    with count_queries() as first:
        assert api.post("/orders", ORDER).status_code == 201
    assert any(whole_shop(statement) for statement in first)
    assert db.session.get(Setting, engine.SHOP_CONTEXT_KEY).value["median_spend"] == "30.00"
    with count_queries() as second:
        assert api.post("/orders", {**ORDER, "order_id": "A-2"}).status_code == 201
    assert not any(whole_shop(statement) for statement in second), second
    assert db.session.get(Contact, anna.id).order_count == 2


def test_an_order_for_a_new_customer_makes_the_contact(api):
    response = api.post("/orders", {"order_id": 77, "customer_id": 12, "first_name": "Bo", "placed_at": "2026-04-01", "total": 9.5})
    assert response.status_code == 201 and response.json["source"] == "api"
    contact = db.session.get(Contact, response.json["contact_id"])
    assert contact.first_name == "Bo" and [(e.source, e.external_id) for e in contact.external_ids] == [("api", "12")]


@pytest.mark.parametrize("change,field", [
    ({"total": "ten euros"}, "total"), ({"placed_at": None}, "placed_at"), ({"placed_at": "soon"}, "placed_at"),
    ({"email": "nope", "customer_id": None}, "email"), ({"email": None}, "email"), ({"status": "lost"}, "status"),
    ({"currency": "euro"}, "currency"), ({"lines": [{"name": "x", "unit_price": "-1"}]}, "lines[0].unit_price"),
    ({"lines": [{"name": "x", "quantity": 0, "unit_price": 1}]}, "lines[0].quantity"), ({"lines": "many"}, "lines"),
    ({"colour": "red"}, "colour"), ({"order_id": "x" * 121}, "order_id"), ({"source": ""}, "source"),
    ({"total": {"amount": 1}}, "total"),
])
def test_invalid_orders_get_422_naming_the_field(api, change, field):
    body = {**ORDER, **change}
    body = {k: v for k, v in body.items() if v is not None}
    response = api.post("/orders", body)
    assert response.status_code == 422, response.json
    assert field in error_of(response)["fields"], error_of(response)
    assert count(Order) == 0


# -- interactions and to-dos ---------------------------------------------------------------------

def test_log_an_interaction(api):
    anna = a_contact()
    response = api.post(f"/contacts/{anna.id}/interactions",
                        {"kind": "call", "direction": "inbound", "subject": "Wholesale", "outcome": "Sends a quote",
                         "occurred_at": "2026-01-05T09:30:00Z"})
    assert response.status_code == 201
    assert (response.json["kind"], response.json["occurred_at"]) == ("call", "2026-01-05T09:30:00Z")
    assert db.session.get(Contact, anna.id).last_interaction_at == datetime(2026, 1, 5, 9, 30, tzinfo=timezone.utc)
    assert api.post(f"/contacts/{anna.id}/interactions", {"kind": "telepathy"}).status_code == 422
    future = (utcnow() + timedelta(days=2)).isoformat()
    assert "occurred_at" in error_of(api.post(f"/contacts/{anna.id}/interactions", {"kind": "note", "occurred_at": future}))["fields"]
    assert api.post("/contacts/999999/interactions", {"kind": "note"}).status_code == 404
    assert count(Interaction) == 1


def a_task(contact, **values):
    values = {"kind": "call", "status": "open", **values}
    task = Task(contact_id=contact.id, title="Call after the first order", due_at=utcnow(), **values)
    db.session.add(task)
    db.session.commit()
    return task


def test_list_tasks_by_status_and_contact(api):
    anna, bo = a_contact(), contacts.create_contact({"email": "bo@example.com"})
    db.session.commit()
    first, second = a_task(anna), a_task(bo)
    a_task(anna, status="done")
    assert [t["id"] for t in api.get("/tasks?status=open").json["items"]] == [first.id, second.id]
    assert [t["id"] for t in api.get(f"/tasks?status=open&contact_id={anna.id}").json["items"]] == [first.id]
    assert api.get("/tasks?status=later").status_code == 422
    assert api.get("/tasks?contact_id=abc").status_code == 422


def test_complete_a_task_records_the_outcome_as_an_interaction(api):
    task = a_task(a_contact())
    response = api.patch(f"/tasks/{task.id}", {"status": "done", "outcome": "Happy with the tea"})
    assert response.status_code == 200 and response.json["status"] == "done"
    interaction = db.session.scalar(select(Interaction))
    assert (interaction.task_id, interaction.kind, interaction.outcome) == (task.id, "call", "Happy with the tea")
    again = api.patch(f"/tasks/{task.id}", {"status": "dismissed", "reason": "late"})
    assert again.status_code == 409 and error_of(again)["code"] == "conflict"


def test_dismiss_snooze_and_reassign_a_task(api):
    task = a_task(a_contact(), kind="testimonial_request")
    support = make_user("support")
    viewer = make_user("viewer")
    until = (utcnow() + timedelta(days=3)).replace(microsecond=0)
    response = api.patch(f"/tasks/{task.id}", {"snoozed_until": until.isoformat(), "assignee_id": support.id})
    assert response.status_code == 200
    assert (response.json["assignee_id"], response.json["snoozed_until"]) == (support.id, until.isoformat().replace("+00:00", "Z"))
    assert "assignee_id" in error_of(api.patch(f"/tasks/{task.id}", {"assignee_id": viewer.id}))["fields"]
    assert "snoozed_until" in error_of(api.patch(f"/tasks/{task.id}", {"snoozed_until": "2001-01-01T00:00:00Z"}))["fields"]
    assert "reason" in error_of(api.patch(f"/tasks/{task.id}", {"status": "dismissed"}))["fields"]
    assert "outcome" in error_of(api.patch(f"/tasks/{task.id}", {"outcome": "x"}))["fields"]
    assert api.patch(f"/tasks/{task.id}", {}).status_code == 422
    dismissed = api.patch(f"/tasks/{task.id}", {"status": "dismissed", "reason": "Customer asked not to be called"})
    assert dismissed.status_code == 200 and dismissed.json["close_reason"] == "Customer asked not to be called"
    assert api.patch("/tasks/999999", {"status": "dismissed", "reason": "x"}).status_code == 404
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.entity == "task")) == 3


def test_unknown_routes_and_methods_answer_json(api):
    assert error_of(api.get("/nothing-here"))["code"] == "not_found"
    response = api.send("DELETE", "/contacts")
    assert response.status_code == 405 and error_of(response)["code"] == "method_not_allowed"


def test_the_openapi_document_is_served(client, app):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.json
    assert spec["openapi"].startswith("3.") and spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert set(spec["paths"]) == {"/contacts", "/contacts/{contact_id}", "/contacts/{contact_id}/interactions",
                                  "/contacts/{contact_id}/emails", "/emails/{message_id}",
                                  "/orders", "/tasks", "/tasks/{task_id}", "/segments", "/segments/preview",
                                  "/segments/{segment_id}", "/segments/{segment_id}/contacts",
                                  "/campaigns", "/campaigns/{campaign_id}", "/flows"}


# -- the tokens page -----------------------------------------------------------------------------

def test_the_tokens_page_creates_a_token_shown_once_and_revokes_it(client, auth):
    auth.as_role("support")
    page = soup(client.post("/settings/tokens/", data={"name": "The till"}))
    plain = page.select_one("#new-token").get_text()
    assert plain.startswith("crm_")
    assert Api(client, plain).get("/contacts").status_code == 200
    listed = soup(client.get("/settings/tokens/"))
    assert listed.select_one("#new-token") is None and plain not in str(listed)
    row = listed.select_one("table.tokens tbody tr")
    assert "The till" in text_of(row)
    token_id = int(row["id"].removeprefix("token-"))
    client.post(f"/settings/tokens/{token_id}/revoke")
    assert Api(client, plain).get("/contacts").status_code == 401


def test_people_see_their_own_tokens_and_admins_see_all(client, auth):
    token_for("sales")
    auth.as_role("support")
    assert soup(client.get("/settings/tokens/")).select("table.tokens tbody tr") == []
    sales_token = db.session.scalar(select(ApiToken))
    assert client.post(f"/settings/tokens/{sales_token.id}/revoke").status_code == 404
    assert db.session.get(ApiToken, sales_token.id).revoked_at is None
    auth.logout()
    auth.as_role("admin")
    assert len(soup(client.get("/settings/tokens/")).select("table.tokens tbody tr")) == 1
    client.post(f"/settings/tokens/{sales_token.id}/revoke")
    db.session.expire_all()
    assert db.session.get(ApiToken, sales_token.id).revoked_at is not None


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_api_writes_need_no_csrf_token(api, app_config):
    assert api.post("/contacts", {"first_name": "Ada"}).status_code == 201


def test_messages_follow_accept_language_while_codes_stay_english(api):
    from crm.extensions import db as database
    from crm.models import User

    for user in database.session.scalars(select(User)):
        user.language = "nl"  # a user's own choice is for the pages, not the API
    database.session.commit()
    english = error_of(api.post("/contacts", {"first_name": "A", "phone": "12"}))
    assert english["code"] == "invalid" and english["message"].startswith("Some fields are invalid: phone: ")
    dutch = error_of(api.post("/contacts", {"first_name": "A", "phone": "12"}, headers={"Accept-Language": "nl"}))
    assert dutch["code"] == "invalid" and list(dutch["fields"]) == ["phone"]
    assert dutch["message"].startswith("Sommige velden zijn ongeldig: phone: ")
