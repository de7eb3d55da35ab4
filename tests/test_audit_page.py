"""The audit log page: who did what to which record and when, filtered, paginated, as readable diffs."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event

from crm.extensions import db
from crm.services.trust import audit
from crm.views.access import access
from tests.conftest import make_user, soup, text_of


def _entry(action, entity, entity_id, user=None, at=None, before=None, after=None):
    entry = audit.record(action, entity, entity_id, user_id=user.id if user else None, before=before, after=after)
    if at is not None:
        entry.at = at
    db.session.commit()
    return entry


def _shown(response):
    return [
        {
            "who": text_of(li.select_one(".audit-who")),
            "action": text_of(li.select_one(".audit-action")),
            "record": text_of(li.select_one(".audit-record")),
            "diff": [tuple(text_of(cell) for cell in row.select("th, td")) for row in li.select(".audit-diff tbody tr")],
        }
        for li in soup(response).select("li.audit-entry")
    ]


@pytest.fixture
def admin(auth):
    auth.as_role("admin")
    from crm.services.staff import users

    return users.by_email("admin@example.com")


def test_each_entry_says_who_did_what_to_which_record_with_a_diff(client, admin):
    _entry("update", "contact", 7, admin, before={"company": "Old Tea", "first_name": "Ada", "consent": False},
           after={"company": "New Tea", "first_name": "Ada", "consent": True})
    shown = _shown(client.get("/settings/audit"))
    update = next(e for e in shown if e["action"] == "update")
    assert update["who"] == "Admin" and update["record"] == "contact #7"
    # Only what changed, one row per field, in words.
    assert update["diff"] == [("company", "Old Tea", "New Tea"), ("consent", "no", "yes")]


def test_an_entry_made_by_a_rule_says_so(client, admin):
    _entry("create", "task", 3, None, after={"title": "Call back"})
    first = _shown(client.get("/settings/audit?entity=task"))[0]
    assert first["who"] == "a rule or the system" and first["diff"] == [("title", "—", "Call back")]


def test_record_links_go_to_the_record_page_when_that_area_exists(app, client, auth):
    app.add_url_rule("/contacts/<int:contact_id>", "contacts.detail", access("read")(lambda contact_id: "contact"))
    auth.as_role("admin")
    _entry("update", "contact", 7, before={"city": "A"}, after={"city": "B"})
    link = soup(client.get("/settings/audit")).select_one(".audit-record a")
    assert link["href"] == "/contacts/7"


def test_filters_by_user_action_record_and_dates(client, admin):
    sales = make_user("sales")
    day = datetime(2026, 3, 10, 12, tzinfo=timezone.utc)
    _entry("update", "contact", 1, sales, at=day - timedelta(days=5), before={"city": "A"}, after={"city": "B"})
    _entry("erase", "contact", 2, admin, at=day, after={"erased": True})
    _entry("create", "interaction", 9, sales, at=day + timedelta(days=5), after={"kind": "call"})

    def records(query):  # making the users wrote entries too; leave those out
        return [e["record"] for e in _shown(client.get("/settings/audit", query_string=query))
                if not e["record"].startswith("user")]

    assert records({"user": sales.id}) == ["interaction #9", "contact #1"]
    assert records({"action": "erase"}) == ["contact #2"]
    assert records({"entity": "contact"}) == ["contact #2", "contact #1"]
    assert records({"entity": "contact", "entity_id": 1}) == ["contact #1"]
    assert records({"since": "2026-03-10", "until": "2026-03-10"}) == ["contact #2"]
    assert records({"since": "2026-03-11"}) == ["interaction #9"]


@pytest.mark.parametrize("app_config", [{"SHOP_TIMEZONE": "Pacific/Auckland"}])
def test_the_date_range_is_the_shops_days(client, admin, app_config):
    # 11:30 UTC on 9 March is already 10 March in Auckland (UTC+13).
    _entry("erase", "contact", 2, admin, at=datetime(2026, 3, 9, 11, 30, tzinfo=timezone.utc))
    shown = _shown(client.get("/settings/audit", query_string={"action": "erase", "since": "2026-03-10", "until": "2026-03-10"}))
    assert [e["record"] for e in shown] == ["contact #2"]


def test_a_bad_filter_value_is_explained_and_ignored(client, admin):
    _entry("erase", "contact", 2, admin)
    response = client.get("/settings/audit", query_string={"since": "yesterday", "entity_id": "abc", "action": "nope"})
    assert response.status_code == 200
    errors = {e["id"].removesuffix("-error") for e in soup(response).select(".field-error")}
    assert {"since", "entity_id", "action"} <= errors
    assert any(e["action"] == "erase" for e in _shown(response))


@pytest.mark.parametrize("app_config", [{"PAGE_SIZE": 3}])
def test_the_log_is_paginated_newest_first_keeping_the_filter(client, admin, app_config):
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for number in range(1, 8):
        _entry("update", "contact", number, admin, at=start + timedelta(hours=number), before={"x": 0}, after={"x": number})
    first = client.get("/settings/audit?entity=contact")
    assert [e["record"] for e in _shown(first)] == ["contact #7", "contact #6", "contact #5"]
    older = soup(first).select_one("a[rel=next]")["href"]
    assert "entity=contact" in older and "page=2" in older
    last = client.get("/settings/audit?entity=contact&page=3")
    assert [e["record"] for e in _shown(last)] == ["contact #1"]
    assert soup(last).select_one("a[rel=next]") is None and soup(last).select_one("a[rel=prev]") is not None


def test_an_htmx_filter_request_gets_only_the_entries(client, admin):
    _entry("erase", "contact", 2, admin)
    response = client.get("/settings/audit?action=erase", headers={"HX-Request": "true"})
    page = soup(response)
    assert page.select_one("header") is None and page.select_one("li.audit-entry") is not None


def test_the_page_takes_a_fixed_number_of_queries_however_many_users_and_entries(client, admin):
    def queries_for_page():
        statements = []

        def count(*_args):
            statements.append(1)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            assert client.get("/settings/audit").status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        return len(statements)

    _entry("update", "contact", 1, admin, before={"a": 1}, after={"a": 2})
    few = queries_for_page()
    for number in range(30):
        author = make_user("support", email=f"s{number}@example.com") if number % 10 == 0 else admin
        _entry("update", "contact", number, author, before={"a": 1}, after={"a": number})
    assert queries_for_page() == few


def test_non_admins_cannot_read_the_log(client, auth):
    auth.as_role("sales")
    assert client.get("/settings/audit").status_code == 403


def test_settings_lists_the_audit_log_users_and_privacy_for_admins(client, admin):
    links = {text_of(a): a["href"] for a in soup(client.get("/settings/")).select("article h2 a")}
    assert links["Audit log"] == "/settings/audit"
    assert links["Users"] == "/settings/users" and links["Privacy"] == "/settings/privacy"
