"""To-dos: the services that work them, my list and all to-dos, in place with htmx, and who may act."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.models import AuditEntry, Contact, Interaction, Task, utcnow
from crm.services.people import tasks as task_service
from crm.services.shared.errors import ValidationError
from tests.conftest import make_user, soup, text_of
from tests.engine_data import QueryCounter, count

NOW = datetime(2026, 5, 4, 9, tzinfo=timezone.utc)


@pytest.fixture
def sales(app):
    return make_user("sales")


@pytest.fixture
def anna(app):
    contact = Contact(email="anna@example.com", first_name="Anna", last_name="Schmidt")
    db.session.add(contact)
    db.session.commit()
    return contact


def add_task(contact, assignee=None, due=NOW, kind="call", title="Call Anna back", **fields):
    task = Task(contact_id=contact.id, kind=kind, title=title, due_at=due,
                assignee_id=assignee.id if assignee else None, created_at=due - timedelta(days=1), **fields)
    db.session.add(task)
    db.session.commit()
    return task


# -- the services --------------------------------------------------------------------------------


def test_completing_a_call_logs_the_call_with_its_outcome_on_the_timeline(sales, anna):
    task = add_task(anna, sales)
    interaction = task_service.complete_task(task, "  Happy with the order ", sales.id, now=NOW, sentiment="positive")
    db.session.commit()
    assert (task.status, task.outcome, task.closed_at) == ("done", "Happy with the order", NOW)
    assert (interaction.kind, interaction.direction, interaction.task_id) == ("call", "outbound", task.id)
    assert (interaction.outcome, interaction.sentiment, interaction.subject) == (
        "Happy with the order", "positive", "Call Anna back")
    assert (interaction.author_id, interaction.occurred_at) == (sales.id, NOW)
    assert db.session.get(Contact, anna.id).last_interaction_at == NOW
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.entity == "task"))
    assert (entry.action, entry.after["status"]) == ("complete", "done")


@pytest.mark.parametrize("kind, logged, direction", [
    ("testimonial_request", "email", "outbound"), ("hot_lead", "call", "outbound"), ("winback", "note", "internal"),
])
def test_the_interaction_kind_follows_the_to_do(sales, anna, kind, logged, direction):
    task = add_task(anna, sales, kind=kind, rule_key=f"{kind}:x")
    interaction = task_service.complete_task(task, "Done", sales.id, now=NOW)
    assert (interaction.kind, interaction.direction) == (logged, direction)


def test_a_completed_stay_in_touch_to_do_stays_done_not_moot(sales, anna):
    anna.stay_in_touch_days = 30
    db.session.commit()
    task = add_task(anna, sales, kind="stay_in_touch", rule_key="stay_in_touch:never")
    task_service.complete_task(task, "Caught up", sales.id, now=NOW)
    db.session.commit()
    assert task.status == "done" and task.close_reason is None


def test_completing_needs_an_outcome_and_an_open_to_do(sales, anna):
    task = add_task(anna, sales)
    with pytest.raises(ValidationError) as refused:
        task_service.complete_task(task, "   ", sales.id, now=NOW)
    assert "outcome" in refused.value.fields
    with pytest.raises(ValidationError) as refused:
        task_service.complete_task(task, "ok", sales.id, now=NOW, sentiment="ecstatic")
    assert "sentiment" in refused.value.fields
    assert task.status == "open" and count(Interaction) == 0
    task_service.dismiss_task(task, "Duplicate", sales.id, now=NOW)
    with pytest.raises(ValidationError) as refused:
        task_service.complete_task(task, "ok", sales.id, now=NOW)
    assert refused.value.fields["outcome"] == "This to-do is already dismissed."


def test_dismissing_needs_a_reason(sales, anna):
    task = add_task(anna, sales)
    with pytest.raises(ValidationError) as refused:
        task_service.dismiss_task(task, "", sales.id, now=NOW)
    assert "reason" in refused.value.fields and task.status == "open"
    task_service.dismiss_task(task, "They called us first", sales.id, now=NOW)
    assert (task.status, task.close_reason, task.closed_at) == ("dismissed", "They called us first", NOW)


def test_snoozing_moves_the_to_do_to_the_start_of_a_later_shop_day(app, sales, anna):
    app.config["SHOP_TIMEZONE"] = "Europe/Berlin"
    task = add_task(anna, sales)
    for bad in (date(2026, 5, 3), date(2026, 5, 4), "soon"):
        with pytest.raises(ValidationError) as refused:
            task_service.snooze_task(task, bad, sales.id, now=NOW)
        assert "until" in refused.value.fields
    task_service.snooze_task(task, date(2026, 5, 8), sales.id, now=NOW)
    start = datetime(2026, 5, 8, tzinfo=ZoneInfo("Europe/Berlin"))
    assert task.snoozed_until == start and task.due_at == start
    assert task_service.my_tasks(sales.id, NOW).count == 0
    assert [t.id for t in task_service.my_tasks(sales.id, start).today] == [task.id]


def test_reassigning_needs_someone_who_can_work_to_dos(sales, anna):
    viewer, support = make_user("viewer"), make_user("support")
    task = add_task(anna, sales)
    for bad in (987654, viewer.id, "abc", None):
        with pytest.raises(ValidationError) as refused:
            task_service.reassign_task(task, bad, sales.id, now=NOW)
        assert "assignee_id" in refused.value.fields
    assert task_service.reassign_task(task, support.id, sales.id, now=NOW) == support
    assert task.assignee_id == support.id


def test_a_to_do_made_by_hand(sales, anna):
    task = task_service.create_task(anna, {"title": "Send the price list"}, sales.id, now=NOW)
    assert (task.kind, task.assignee_id, task.due_at, task.rule_key, task.status) == ("call", sales.id, NOW, None, "open")
    with pytest.raises(ValidationError) as refused:
        task_service.create_task(anna, {"title": "", "kind": "carrier pigeon", "due_at": "2026-05-01",
                                        "assignee_id": 987654}, sales.id, now=NOW)
    assert set(refused.value.fields) == {"title", "kind", "due_at", "assignee_id"}


# -- my list and all to-dos --------------------------------------------------------------------------


def _shop_day_start(zone: str) -> datetime:
    today = utcnow().astimezone(ZoneInfo(zone)).date()
    return datetime.combine(today, datetime.min.time(), tzinfo=ZoneInfo(zone))


@pytest.mark.parametrize("app_config", [{"SHOP_TIMEZONE": "Pacific/Auckland"}])
def test_my_list_groups_overdue_today_and_upcoming_in_the_shops_days(client, auth, anna, app_config):
    auth.as_role("sales")
    from crm.services.staff import users

    sales = users.by_email("sales@example.com")
    other = make_user("support")
    start = _shop_day_start("Pacific/Auckland")
    add_task(anna, sales, due=start - timedelta(hours=1), title="Overdue call")
    add_task(anna, sales, due=start + timedelta(hours=1), title="Call today")
    add_task(anna, sales, due=start + timedelta(days=1, hours=1), title="Call tomorrow")
    add_task(anna, sales, due=start, title="Snoozed call", snoozed_until=utcnow() + timedelta(days=2))
    add_task(anna, other, due=start, title="Someone else's call")
    add_task(anna, sales, due=start, title="Done already", status="done")
    page = soup(client.get("/tasks"))
    groups = {g["id"]: [text_of(a) for a in g.select("a.title")] for g in page.select("section.task-group")}
    assert groups == {"tasks-overdue": ["Overdue call"], "tasks-today": ["Call today"],
                      "tasks-upcoming": ["Call tomorrow"]}
    assert page.select_one("tr.overdue a.title").get_text() == "Overdue call"


def test_all_to_dos_filter_by_status_kind_assignee_and_due_days(client, auth, anna):
    auth.as_role("sales")
    support = make_user("support")
    add_task(anna, None, due=datetime(2026, 5, 1, 12, tzinfo=timezone.utc), title="Unassigned call")
    add_task(anna, support, due=datetime(2026, 5, 2, 12, tzinfo=timezone.utc), title="Survey",
             kind="survey", rule_key="survey:order_count:3")
    add_task(anna, support, due=datetime(2026, 5, 3, 12, tzinfo=timezone.utc), title="Done call", status="done")

    def titles(**query):
        page = soup(client.get("/tasks", query_string={"view": "all", **query}))
        return [text_of(a) for a in page.select("#task-list a.title")]

    assert titles() == ["Unassigned call", "Survey"]
    assert titles(status="any") == ["Unassigned call", "Survey", "Done call"]
    assert titles(status="done") == ["Done call"]
    assert titles(kind="survey") == ["Survey"]
    assert titles(assignee="none") == ["Unassigned call"]
    assert titles(assignee=support.id, status="any") == ["Survey", "Done call"]
    assert titles(due_from="2026-05-02", due_to="2026-05-03", status="any") == ["Survey", "Done call"]
    response = client.get("/tasks", query_string={"view": "all", "due_from": "May", "kind": "nope"})
    errors = {e["id"] for e in soup(response).select(".field-error")}
    assert errors == {"due_from-error", "kind-error"}


@pytest.mark.parametrize("app_config", [{"PAGE_SIZE": 2}])
def test_all_to_dos_are_paged_by_keyset_keeping_the_filters(client, auth, anna, app_config):
    auth.as_role("sales")
    for n in range(5):
        add_task(anna, None, due=NOW + timedelta(days=n), title=f"Call {n}")
    add_task(anna, None, due=NOW, title="A meeting", kind="meeting")

    def titles(page):
        return [text_of(a) for a in page.select("a.title")]

    first = soup(client.get("/tasks?view=all&kind=call"))
    assert titles(first) == ["Call 0", "Call 1"] and first.select_one("a[rel=prev]") is None
    assert text_of(first.select_one("#task-count")) == "5 to-dos"
    following = first.select_one("a[rel=next]")["href"]
    assert "kind=call" in following and "after=" in following
    second = soup(client.get(following))
    assert titles(second) == ["Call 2", "Call 3"]
    last = soup(client.get(second.select_one("a[rel=next]")["href"]))
    assert titles(last) == ["Call 4"] and last.select_one("a[rel=next]") is None
    back = soup(client.get(last.select_one("a[rel=prev]")["href"]))
    assert titles(back) == ["Call 2", "Call 3"]
    assert titles(soup(client.get(back.select_one("a[rel=prev]")["href"]))) == ["Call 0", "Call 1"]
    # A cursor that is not one of ours gives the first page, not an error.
    assert titles(soup(client.get("/tasks?view=all&kind=call&after=2026-13-99-x"))) == ["Call 0", "Call 1"]


@pytest.mark.parametrize("app_config", [{"PAGE_SIZE": 2}])
def test_my_to_dos_are_paged_too_with_the_count_of_all(client, auth, anna, app_config):
    auth.as_role("sales")
    sales = make_user("sales")
    for n in range(3):
        add_task(anna, sales, due=NOW + timedelta(days=10 + n), title=f"Call {n}")
    first = soup(client.get("/tasks"))
    assert [text_of(a) for a in first.select("a.title")] == ["Call 0", "Call 1"]
    assert "All 3 open to-dos on my list" in text_of(first.select_one("fieldset.bulk-scope"))
    second = soup(client.get(first.select_one("a[rel=next]")["href"]))
    assert [text_of(a) for a in second.select("a.title")] == ["Call 2"]
    assert second.select_one("a[rel=next]") is None


def test_rows_on_the_list_fetch_their_forms_when_opened(client, auth, anna):
    auth.as_role("sales")
    task = add_task(anna, None)
    row = soup(client.get("/tasks?view=all")).select_one(f"#task-{task.id}")
    assert row.select_one("form") is None, "a long list carries no forms"
    complete = row.select_one("details.task-action[hx-get]")
    assert complete["hx-get"].startswith(f"/tasks/{task.id}/complete") and text_of(complete.select_one("summary")) == "Done"
    fetched = soup(client.get(f"/tasks/{task.id}/complete", headers={"HX-Request": "true"}))
    assert fetched.select_one(f"form.complete[hx-post='/tasks/{task.id}/complete'] input[name=outcome]") is not None
    fetched = soup(client.get(f"/tasks/{task.id}/reassign", headers={"HX-Request": "true"}))
    assert [o.get_text() for o in fetched.select("select[name=assignee_id] option")] == ["Sales (sales)"]
    # Without htmx the link goes to the to-do's own page, which has every form.
    response = client.get(f"/tasks/{task.id}/snooze")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/tasks/{task.id}")
    detail = soup(client.get(f"/tasks/{task.id}"))
    assert {f["class"][0] for f in detail.select("form[hx-post]")} == {"complete", "snooze", "reassign", "dismiss"}


def test_a_viewer_cannot_fetch_an_action_form(client, auth, anna):
    task = add_task(anna, None)
    auth.as_role("viewer")
    assert client.get(f"/tasks/{task.id}/complete", headers={"HX-Request": "true"}).status_code == 403


def test_a_filter_change_from_htmx_gets_only_the_list(client, auth, anna):
    auth.as_role("sales")
    add_task(anna, None)
    page = soup(client.get("/tasks?view=all", headers={"HX-Request": "true"}))
    assert page.select_one("header") is None and page.select_one("div#task-list tr.task") is not None


# -- working a to-do in place ----------------------------------------------------------------------


def _row(response):
    assert response.status_code == 200
    page = soup(response)
    assert page.select_one("header") is None, "an htmx answer is the row alone"
    return page.select_one("tr.task")


def test_completing_in_place_swaps_the_row_for_its_done_state(client, auth, anna):
    auth.as_role("sales")
    task = add_task(anna, None)
    row = _row(client.post(f"/tasks/{task.id}/complete", data={"outcome": "Ordered again", "sentiment": "positive"},
                           headers={"HX-Request": "true"}))
    assert row["id"] == f"task-{task.id}" and "task-done" in row["class"]
    assert text_of(row.select_one(".confirmation")) == "Done: Ordered again"
    assert row.select_one("form") is None
    logged = db.session.scalar(select(Interaction).where(Interaction.task_id == task.id))
    assert (logged.kind, logged.outcome, logged.sentiment) == ("call", "Ordered again", "positive")


def test_a_missing_outcome_comes_back_on_the_row_with_the_form_open(client, auth, anna):
    auth.as_role("sales")
    task = add_task(anna, None)
    row = _row(client.post(f"/tasks/{task.id}/complete", data={"outcome": " "}, headers={"HX-Request": "true"}))
    assert row.select_one("details[open] form.complete") is not None
    assert text_of(row.select_one(f"#task-{task.id}-outcome-error")) == "Say how it went."
    assert row.select_one(f"#task-{task.id}-outcome")["aria-invalid"] == "true"
    db.session.refresh(task)
    assert task.status == "open" and count(Interaction) == 0


def test_snooze_reassign_and_dismiss_in_place(client, auth, anna):
    auth.as_role("sales")
    support = make_user("support")
    task = add_task(anna, None)
    hx = {"HX-Request": "true"}

    past = (utcnow() - timedelta(days=2)).date().isoformat()
    row = _row(client.post(f"/tasks/{task.id}/snooze", data={"until": past}, headers=hx))
    assert text_of(row.select_one(f"#task-{task.id}-until-error")) == "Pick a day after today."
    later = (utcnow() + timedelta(days=3)).date()
    row = _row(client.post(f"/tasks/{task.id}/snooze", data={"until": later.isoformat()}, headers=hx))
    assert text_of(row.select_one(".confirmation")).startswith("Snoozed until")
    assert "snoozed until" in text_of(row.select_one(".snoozed"))

    row = _row(client.post(f"/tasks/{task.id}/reassign", data={"assignee_id": "987654"}, headers=hx))
    assert text_of(row.select_one(f"#task-{task.id}-assignee_id-error")) == "Choose someone from the list."
    row = _row(client.post(f"/tasks/{task.id}/reassign", data={"assignee_id": str(support.id)}, headers=hx))
    assert text_of(row.select_one(".confirmation")) == "Now with Support"
    assert text_of(row.select_one("td.assignee")) == "Support"

    row = _row(client.post(f"/tasks/{task.id}/dismiss", data={"reason": ""}, headers=hx))
    assert text_of(row.select_one(f"#task-{task.id}-reason-error")) == "Say why it will not be done."
    row = _row(client.post(f"/tasks/{task.id}/dismiss", data={"reason": "Moved away"}, headers=hx))
    assert text_of(row.select_one(".confirmation")) == "Dismissed: Moved away"
    db.session.refresh(task)
    assert (task.status, task.assignee_id, task.close_reason) == ("dismissed", support.id, "Moved away")
    actions = list(db.session.scalars(select(AuditEntry.action).where(AuditEntry.entity == "task")
                                      .order_by(AuditEntry.id)))
    assert actions == ["snooze", "reassign", "dismiss"]


def test_without_htmx_an_action_redirects_with_a_flash(client, auth, anna):
    auth.as_role("sales")
    task = add_task(anna, None)
    response = client.post(f"/tasks/{task.id}/complete", data={"outcome": "Left a message"}, follow_redirects=True)
    assert text_of(soup(response).select_one(".flash-success")) == "Done: Left a message"


def test_viewers_read_to_dos_but_cannot_change_them(client, auth, anna):
    auth.as_role("viewer")
    task = add_task(anna, None)
    page = soup(client.get("/tasks"))
    assert [text_of(a) for a in page.select("a.title")] == ["Call Anna back"]  # "all" is their view
    assert page.select_one("tr.task form") is None
    for action, data in (("complete", {"outcome": "x"}), ("snooze", {"until": "2099-01-01"}),
                         ("reassign", {"assignee_id": "1"}), ("dismiss", {"reason": "x"})):
        assert client.post(f"/tasks/{task.id}/{action}", data=data, headers={"HX-Request": "true"}).status_code == 403
    assert client.post(f"/contacts/{anna.id}/tasks", data={"title": "x"}).status_code == 403
    db.session.refresh(task)
    assert (task.status, task.assignee_id, task.snoozed_until) == ("open", None, None)
    assert count(Task) == 1 and count(Interaction) == 0


def test_a_to_do_added_from_the_contact_page_in_place(client, auth, anna):
    auth.as_role("support")
    response = client.post(f"/contacts/{anna.id}/tasks", data={"title": ""}, headers={"HX-Request": "true"})
    section = soup(response).select_one("section.new-task")
    assert text_of(section.select_one(f"#new-task-{anna.id}-title-error")) == "Say what needs doing."
    assert count(Task) == 0
    tomorrow = (utcnow() + timedelta(days=1)).date()
    response = client.post(f"/contacts/{anna.id}/tasks", data={"title": "Send samples", "kind": "email",
                                                               "due_at": tomorrow.isoformat()},
                           headers={"HX-Request": "true"})
    section = soup(response).select_one("section.new-task")
    assert text_of(section.select_one(".confirmation")).startswith("To-do added: Send samples")
    # The open to-dos list above the form is sent along and replaces the one on the page.
    listing = soup(response).select_one(f"section#contact-tasks-{anna.id}")
    assert listing["hx-swap-oob"] == "true"
    assert [text_of(a) for a in listing.select("tr.task a.title")] == ["Send samples"]
    task = db.session.scalar(select(Task))
    assert (task.kind, task.title, task.assignee.role) == ("email", "Send samples", "support")


def test_the_to_do_page_of_one_to_do(client, auth, anna):
    auth.as_role("viewer")
    task = add_task(anna, None, title="Call about the gift box")
    page = soup(client.get(f"/tasks/{task.id}"))
    assert text_of(page.select_one("h1")) == "Call about the gift box"
    assert client.get("/tasks/987654").status_code == 404


def _queries(client, url):
    with QueryCounter() as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("url", ["/tasks?view=all", "/tasks?view=mine"])
def test_the_lists_take_the_same_queries_for_3_or_60_to_dos(client, auth, anna, url):
    auth.as_role("sales")
    from crm.services.staff import users

    me = users.by_email("sales@example.com")
    others = [make_user("support", f"s{n}@example.com") for n in range(3)]
    counts = []
    for total in (3, 60):
        db.session.execute(Task.__table__.delete())
        for n in range(total):
            people = [me, *others]
            db.session.add(Task(contact_id=anna.id, kind="call", title=f"Call {n}", assignee_id=people[n % 4].id if
                                "mine" not in url else me.id, due_at=NOW + timedelta(hours=n)))
        db.session.commit()
        counts.append(_queries(client, url))
    assert counts[0] == counts[1]


def test_the_lists_run_the_same_queries_for_3_or_60_to_dos(client, auth, anna):
    from tests.helpers import count_queries

    auth.as_role("sales")
    sales = make_user("sales")

    def queries(url):
        db.session.expire_all()
        with count_queries() as statements:
            assert client.get(url).status_code == 200
        return len(statements)

    for n in range(3):
        add_task(anna, sales, due=NOW + timedelta(days=n))
    few = (queries("/tasks"), queries("/tasks?view=all"))
    for n in range(57):
        add_task(anna, sales, due=NOW + timedelta(days=5, minutes=n))
    assert (queries("/tasks"), queries("/tasks?view=all")) == few
    assert len(soup(client.get("/tasks?view=all")).select("tr.task")) == 50
