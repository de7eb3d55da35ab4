"""Contact rules that live once in the service, whichever door the change comes through:
who may own a contact, and replacing a contact's tags."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.models import AuditEntry
from crm.services.people import contacts
from crm.services.shared.errors import ValidationError
from tests.contact_helpers import make_contact, make_user


@pytest.mark.parametrize("who", ["inactive", "viewer", "unknown"])
def test_only_an_active_non_viewer_may_own_a_contact_on_every_path(app, who):
    user = {"inactive": lambda: make_user("sales", "gone@example.com", active=False),
            "viewer": lambda: make_user("viewer"), "unknown": lambda: None}[who]()
    owner_id = user.id if user else 424242
    with pytest.raises(ValidationError) as refused:
        contacts.create_contact({"first_name": "Ada", "owner_id": owner_id})
    assert refused.value.fields["owner_id"] == contacts.OWNER_REFUSED
    contact = make_contact()
    with pytest.raises(ValidationError):
        contacts.update_contact(contact, {"owner_id": owner_id})
    assert contacts.owner_problem(make_user("sales").id) is None and contacts.owner_problem(None) is None


def test_replacing_tags_is_audited_once_and_only_when_they_change(app):
    contact = make_contact(tags=["vip", "b2b"])
    assert contacts.replace_tags(contact, ["B2B ", "wholesale"], actor_id=None)
    assert sorted(t.name for t in contact.tags) == ["b2b", "wholesale"]
    assert not contacts.replace_tags(contact, ["wholesale", "b2b"], actor_id=None)
    (entry,) = db.session.scalars(select(AuditEntry).where(AuditEntry.entity_id == contact.id))
    assert (entry.before, entry.after) == ({"tags": ["b2b", "vip"]}, {"tags": ["b2b", "wholesale"]})


def test_the_api_refuses_a_viewer_as_owner_like_the_form(client):
    from crm.services.staff import api_tokens

    _token, secret = api_tokens.create_token(make_user("admin"), "shop")
    viewer = make_user("viewer")
    db.session.commit()
    response = client.post("/api/v1/contacts", json={"first_name": "Ada", "owner_id": viewer.id},
                           headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 422 and response.json["error"]["fields"]["owner_id"] == contacts.OWNER_REFUSED


def test_overdue_is_the_service_rule_the_rows_and_lists_share(app):
    from datetime import date, datetime, timezone

    from crm.models import Task
    from crm.services.people import tasks

    today = date(2026, 3, 2)
    due = Task(status="open", due_at=datetime(2026, 3, 1, 23, 0, tzinfo=timezone.utc))
    assert tasks.is_overdue(due, today)
    assert not tasks.is_overdue(Task(status="done", due_at=due.due_at), today)
    assert not tasks.is_overdue(Task(status="open", due_at=datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)), today)


@pytest.mark.parametrize("p_alive,lost", [(None, False), (0.2, True), (0.5, True), (0.51, False)])
def test_likely_lost_is_decided_by_the_figures_not_the_template(p_alive, lost):
    from crm.services.insight.figures import CustomerFigures

    figures = CustomerFigures.__new__(CustomerFigures)
    figures.p_alive = p_alive
    assert figures.likely_lost is lost
