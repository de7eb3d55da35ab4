"""Many to-dos at once on /tasks: done, dismiss, reassign, snooze for ticked rows or all matching."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from crm.extensions import db
from crm.models import AuditEntry, Contact, Interaction, Task
from crm.services.people import tasks as task_service
from crm.services.shared.errors import ValidationError
from tests.conftest import make_user, soup

NOW = datetime(2026, 5, 4, 9, tzinfo=timezone.utc)


@pytest.fixture
def shop(app):
    admin, sales = make_user("admin"), make_user("sales")
    contacts = [Contact(email=f"c{i}@example.com", first_name=f"C{i}") for i in range(5)]
    db.session.add_all(contacts)
    db.session.flush()
    tasks = [Task(contact_id=c.id, kind="testimonial_request" if i < 3 else "call", title=f"To-do {i}",
                  due_at=NOW - timedelta(days=i), assignee_id=admin.id, rule_key=f"testimonial:{i}" if i < 3 else None)
             for i, c in enumerate(contacts)]
    db.session.add_all(tasks)
    db.session.commit()
    return admin, sales, tasks


def statuses():
    return dict(db.session.execute(select(Task.title, Task.status)).all())


def test_dismissing_ticked_to_dos_dismisses_only_those_with_the_reason_and_audits_each(shop):
    admin, _sales, tasks = shop
    result = task_service.bulk_act("dismiss", [tasks[0].id, tasks[1].id], "old history", admin.id, NOW)
    db.session.commit()
    assert str(result) == "2 to-dos dismissed."
    assert statuses() == {"To-do 0": "dismissed", "To-do 1": "dismissed", "To-do 2": "open",
                          "To-do 3": "open", "To-do 4": "open"}
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "dismiss")) == 2


def test_all_matching_the_filters_takes_only_open_ones_of_that_kind(shop):
    admin, _sales, tasks = shop
    task_service.dismiss_task(tasks[0], "done elsewhere", admin.id, NOW)
    ids = task_service.bulk_task_ids(filters=task_service.TaskFilters(status=None, kind="testimonial_request"))
    assert ids == [tasks[1].id, tasks[2].id]


def test_a_bad_value_changes_nothing_and_names_the_field(shop):
    admin, _sales, tasks = shop
    with pytest.raises(ValidationError) as error:
        task_service.bulk_act("dismiss", [t.id for t in tasks], "  ", admin.id, NOW)
    assert "reason" in error.value.fields
    with pytest.raises(ValidationError):
        task_service.bulk_act("dismiss", [], "x", admin.id, NOW)
    assert set(statuses().values()) == {"open"}


def test_bulk_done_logs_each_outcome_and_bulk_reassign_hands_them_over(shop):
    admin, sales, tasks = shop
    result = task_service.bulk_act("complete", [tasks[3].id, tasks[4].id], "Called", admin.id, NOW)
    assert (result.changed, result.skipped) == (2, 0)
    assert db.session.scalar(select(func.count()).select_from(Interaction)) == 2
    result = task_service.bulk_act("reassign", [t.id for t in tasks], sales.id, admin.id, NOW)
    assert str(result) == "3 to-dos reassigned; 2 were no longer open."
    assert {t.assignee_id for t in tasks[:3]} == {sales.id}


def test_the_page_dismisses_all_matching_the_filters(shop, auth, client):
    auth.login()
    page = soup(client.get("/tasks?view=all&kind=testimonial_request"))
    form = page.select_one("form#bulk-tasks")
    assert form is not None and "All 3 open to-dos matching the filters" in form.get_text(" ")
    assert len(page.select("input[name=task_id][form=bulk-tasks]")) == 3
    response = client.post("/tasks/bulk", data={"action": "dismiss", "scope": "matching", "view": "all",
                                                "kind": "testimonial_request", "reason": "imported history",
                                                "back": "/tasks?view=all"})
    assert response.status_code == 302 and response.headers["Location"] == "/tasks?view=all"
    assert list(statuses().values()).count("dismissed") == 3
    assert "3 to-dos dismissed." in client.get("/tasks?view=all").get_data(as_text=True)


def test_the_page_snoozes_ticked_rows_and_refuses_without_a_day(shop, auth, client):
    _admin, _sales, tasks = shop
    auth.login()
    client.post("/tasks/bulk", data={"action": "snooze", "scope": "ticked", "task_id": [tasks[4].id]})
    assert "Pick the day" in client.get("/tasks").get_data(as_text=True)
    client.post("/tasks/bulk", data={"action": "snooze", "scope": "ticked", "task_id": [tasks[4].id],
                                     "until": (date.today() + timedelta(days=10)).isoformat()})
    db.session.expire_all()
    assert db.session.get(Task, tasks[4].id).snoozed_until.date() == date.today() + timedelta(days=10)


def test_a_viewer_cannot_act_in_bulk(shop, auth, client):
    _admin, _sales, tasks = shop
    auth.as_role("viewer")
    response = client.post("/tasks/bulk", data={"action": "dismiss", "scope": "matching", "reason": "x"})
    assert response.status_code == 403
    assert set(statuses().values()) == {"open"}
