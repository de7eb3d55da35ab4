"""The list and the contact page cost a fixed number of queries, however much data there is."""
from datetime import timedelta

import pytest

from crm.extensions import db
from tests.contact_helpers import (
    NOW, hx, make_contact, make_interaction, make_order, make_stage_change, make_user, make_task, sign_in,
)


def add_contacts(count: int, owners, start: int = 0) -> None:
    """Add contacts that each have an owner, tags and an open to-do, so every lazy load would show."""
    for number in range(start, start + count):
        contact = make_contact(first_name=f"P{number:03d}", company="Acme", owner_id=owners[number % len(owners)].id,
                               tags=[f"tag{number % 4}", "all"], lead_score=number % 100)
        make_task(contact, NOW)
    db.session.commit()


def statements_for(client, count_queries, url, headers=None) -> list[str]:
    db.session.expire_all()
    with count_queries() as statements:
        response = client.get(url, headers=headers or {})
    assert response.status_code == 200
    return statements


@pytest.mark.parametrize("url, headers", [
    ("/contacts", None),
    ("/contacts?q=acme&sort=score&todo=yes", None),
    ("/contacts?tag=all&sort=last_order", hx()),
])
def test_the_list_costs_the_same_queries_for_3_or_60_contacts(client, count_queries, url, headers):
    sign_in(client, "admin")
    owners = [make_user("sales", email=f"s{i}@example.com") for i in range(5)]
    add_contacts(3, owners)
    few = statements_for(client, count_queries, url, headers)
    add_contacts(57, owners, start=3)
    many = statements_for(client, count_queries, url, headers)
    assert len(few) == len(many), "\n".join(many)
    assert len(many) <= 8


def add_history(contact, count: int, author, start: int = 0) -> None:
    """Add `count` timeline items, all four kinds in turn, spread over time."""
    for number in range(start, start + count):
        when = NOW - timedelta(hours=number)
        kind = number % 4
        if kind == 0:
            make_interaction(contact, when, author=author)
        elif kind == 1:
            make_order(contact, when, lines=2)
        elif kind == 2:
            make_task(contact, when, assignee_id=author.id)
        else:
            make_stage_change(contact, when, changed_by_id=author.id)
    db.session.commit()


def test_the_contact_page_costs_the_same_queries_for_3_or_60_timeline_items(client, count_queries):
    author = sign_in(client, "admin")
    contact = make_contact(tags=["vip", "b2b"])
    add_history(contact, 4, author)
    few = statements_for(client, count_queries, f"/contacts/{contact.id}")
    add_history(contact, 56, author, start=4)
    many = statements_for(client, count_queries, f"/contacts/{contact.id}")
    assert len(few) == len(many), "\n".join(many)
    # 16: the user, the contact with tags and ids, five for the timeline, tag names, and one each for
    # the partials: open to-dos, who they can go to, stage history, score trend, the monthly
    # totals of the customer-value sparkline and the predictions' status.
    assert len(many) <= 16


def test_a_timeline_page_costs_the_same_queries_whatever_its_length(client, count_queries):
    author = sign_in(client, "admin")
    contact = make_contact()
    add_history(contact, 4, author)
    few = statements_for(client, count_queries, f"/contacts/{contact.id}/timeline", hx())
    add_history(contact, 56, author, start=4)
    many = statements_for(client, count_queries, f"/contacts/{contact.id}/timeline", hx())
    assert len(few) == len(many), "\n".join(many)
    assert len(many) <= 8
