"""People join and the work follows: a new or re-enabled user of a role gets that role's waiting rule to-dos."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from crm.extensions import db
from crm.models import Contact, Task, User
from crm.services.people import tasks as task_service
from crm.services.staff import users
from tests.conftest import PASSWORD, make_user, soup, text_of

NOW = datetime(2026, 5, 4, 9, tzinfo=timezone.utc)


def rule_tasks(admin, n_sales=4, n_support=2, unassigned=1):
    contact = Contact(email="anna@example.com", first_name="Anna")
    db.session.add(contact)
    db.session.flush()
    made = []
    for i in range(n_sales):  # win-back and hot-lead to-dos go to sales
        made.append(Task(contact_id=contact.id, kind="winback", rule_key=f"winback:2026-01-{i + 1:02d}",
                         title="Win back", due_at=NOW - timedelta(days=i), assignee_id=admin.id))
    for i in range(n_support):  # satisfaction calls go to support
        made.append(Task(contact_id=contact.id, kind="followup_call", rule_key=f"followup:first_order:2026-02-{i + 1:02d}",
                         title="Call", due_at=NOW, assignee_id=admin.id))
    for i in range(unassigned):
        made.append(Task(contact_id=contact.id, kind="hot_lead", rule_key=f"hot_lead:2026-03-{i + 1:02d}",
                         title="Hot lead", due_at=NOW, assignee_id=None))
    made.append(Task(contact_id=contact.id, kind="call", title="By hand", due_at=NOW, assignee_id=admin.id))
    db.session.add_all(made)
    db.session.commit()


def held_by(user_id):
    return sorted(db.session.scalars(select(Task.kind).where(Task.assignee_id == user_id)))


def test_a_new_sales_user_takes_the_sales_rule_to_dos_the_admin_held(client, auth):
    admin = make_user("admin")
    rule_tasks(admin)
    auth.login()
    page = soup(client.post("/settings/users", data={"email": "sam@example.com", "name": "Sam", "role": "sales",
                                                     "password": PASSWORD, "confirm": PASSWORD}))
    assert "5 open sales to-dos that nobody of the role held were handed to Sam." in text_of(page.select_one(".flash-info"))
    sam = users.by_email("sam@example.com")
    assert held_by(sam.id) == ["hot_lead", "winback", "winback", "winback", "winback"]
    assert held_by(admin.id) == ["call", "followup_call", "followup_call"]  # support's, and the hand-made one


def test_two_sales_people_share_and_a_re_enabled_one_gets_a_fair_part(app):
    admin = make_user("admin")
    rule_tasks(admin, n_sales=6, unassigned=0)
    first = make_user("sales", email="a@example.com")
    assert task_service.balance_role_tasks(first) == 6
    second = users.create_user("b@example.com", "B", "sales", PASSWORD)
    users.set_active(second, False, actor_id=None)
    db.session.commit()
    # Nothing waits for the role any more: B coming back takes nothing from A.
    users.set_active(second, True, actor_id=None)
    assert task_service.balance_role_tasks(second) == 0
    for task in db.session.scalars(select(Task).where(Task.kind == "winback")).all()[:4]:
        task.assignee_id = admin.id  # the admin stood in for four of them meanwhile
    db.session.commit()
    assert task_service.balance_role_tasks(second) == 4 - 1  # A holds 2: B gets 3, A gets 1 back to 3 each
    assert len(held_by(first.id)) == len(held_by(second.id)) == 3


def test_a_viewer_or_a_disabled_user_takes_nothing(app):
    admin = make_user("admin")
    rule_tasks(admin)
    assert task_service.balance_role_tasks(make_user("viewer")) == 0
    support = make_user("support")
    support.active = False
    assert task_service.balance_role_tasks(support) == 0


def test_the_first_admin_takes_the_demo_s_unassigned_to_dos(client):
    contact = Contact(email="anna@example.com", first_name="Anna")
    db.session.add(contact)
    db.session.flush()
    db.session.add(Task(contact_id=contact.id, kind="winback", rule_key="winback:2026-01-01", title="Win back",
                        due_at=NOW, assignee_id=None))
    db.session.commit()
    client.post("/setup", data={"name": "Ada", "email": "ada@example.com", "password": PASSWORD, "confirm": PASSWORD})
    admin = db.session.scalar(select(User))
    assert held_by(admin.id) == ["winback"]
