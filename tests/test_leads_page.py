"""/leads: contacts ranked by lead score with reasons, trend, last touch and next to-do; filters; bounded queries."""
from __future__ import annotations

from datetime import timedelta

import pytest

from crm.extensions import db
from crm.models import Contact, ScoreHistory, Tag, Task, utcnow
from crm.services.people import leads
from tests.conftest import make_user, soup, text_of
from tests.engine_data import QueryCounter


def lead(name, score, stage="consideration", breakdown=None, owner=None, tags=(), **fields):
    contact = Contact(email=f"{name.lower()}@example.com", first_name=name, lead_score=score, stage=stage,
                      score_breakdown=breakdown if breakdown is not None else [
                          {"rule": "reachable", "points": score, "why": "has an email address"}],
                      owner_id=owner.id if owner else None, **fields)
    contact.tags = [db.session.query(Tag).filter_by(name=t).one_or_none() or Tag(name=t) for t in tags]
    db.session.add(contact)
    db.session.commit()
    return contact


def scored(contact, score, days_ago):
    db.session.add(ScoreHistory(contact_id=contact.id, score=score, breakdown=[],
                                computed_at=utcnow() - timedelta(days=days_ago)))
    db.session.commit()


def rows(response):
    return soup(response).select("tr.lead")


def names(response):
    return [text_of(row.select_one("td.name")).split(" ")[0] for row in rows(response)]


def test_leads_are_ranked_by_score_with_reasons_trend_last_touch_and_next_to_do(client, auth):
    auth.as_role("viewer")
    owner = make_user("sales", name="Sam Sales")
    breakdown = [
        {"rule": "reachable", "points": 10, "why": "has an email address"},
        {"rule": "cart", "points": 15, "why": "abandoned a cart 2 days ago"},
        {"rule": "complaint", "points": -20, "why": "complaint on 3 May 2026 not resolved"},
        {"rule": "consent", "points": 5, "why": "agreed to hear from the shop"},
        {"rule": "engagement", "points": 40, "why": "3 meetings"},
    ]
    hot = lead("Hanna", 50, stage="consideration", breakdown=breakdown, owner=owner,
               last_interaction_at=utcnow() - timedelta(days=3), last_order_at=utcnow() - timedelta(days=9))
    scored(hot, 10, 40)
    scored(hot, 35, 10)
    lead("Cold", 5)
    middle = lead("Mia", 20, stage="retention", health="at_risk")
    scored(middle, 20, 8)
    db.session.add_all([
        Task(contact_id=hot.id, kind="call", title="Later call", due_at=utcnow() + timedelta(days=5)),
        Task(contact_id=hot.id, kind="call", title="First call", due_at=utcnow() + timedelta(days=1)),
        Task(contact_id=hot.id, kind="call", title="Done call", due_at=utcnow(), status="done"),
    ])
    db.session.commit()

    response = client.get("/leads/")
    assert response.status_code == 200
    assert names(response) == ["Hanna", "Mia", "Cold"]
    first = rows(response)[0]
    assert text_of(first.select_one("td.score")) == "50"
    assert [text_of(li) for li in first.select("ul.reasons li")] == [
        "+40 3 meetings", "-20 complaint on 3 May 2026 not resolved",
        "+15 abandoned a cart 2 days ago"]
    assert text_of(first.select_one("td.trend-7")) == "+15"
    assert text_of(first.select_one("td.trend-30")) == "+40"
    assert text_of(first.select_one("td.stage .badge")) == "Consideration"
    assert text_of(first.select_one("td.owner")) == "Sam Sales"
    assert text_of(first.select_one("td.last-touch")) == "3 days ago"
    assert text_of(first.select_one("td.next-task")).startswith("First call")
    second = rows(response)[1]
    assert text_of(second.select_one("td.trend-7")) == "±0"
    assert text_of(second.select_one("td.trend-30")) == "—"  # no score that far back
    assert "at risk" in text_of(second.select_one("td.stage"))
    assert text_of(second.select_one("td.last-touch")) == "never"


def test_leads_filter_by_stage_owner_and_tag(client, auth):
    auth.as_role("sales")
    owner = make_user("sales", "owner@example.com", name="Olga")
    lead("Ann", 30, stage="consideration", owner=owner, tags=["wholesale"])
    lead("Bob", 20, stage="retention", tags=["wholesale", "vip"])
    lead("Cid", 10, stage="consideration")
    assert names(client.get("/leads/?stage=consideration")) == ["Ann", "Cid"]
    assert names(client.get(f"/leads/?owner={owner.id}")) == ["Ann"]
    assert names(client.get("/leads/?owner=none")) == ["Bob", "Cid"]
    assert names(client.get("/leads/?tag=wholesale")) == ["Ann", "Bob"]
    assert names(client.get("/leads/?tag=wholesale&stage=retention")) == ["Bob"]
    assert names(client.get("/leads/?stage=nonsense&owner=abc")) == ["Ann", "Bob", "Cid"]
    page = soup(client.get("/leads/?tag=vip"))
    assert page.select_one("#filter-tag option[selected]")["value"] == "vip"
    assert [o["value"] for o in page.select("#filter-owner option")][:2] == ["", "none"]


def test_erased_contacts_are_not_leads(client, auth):
    auth.as_role("sales")
    lead("Gone", 90, erased_at=utcnow())
    lead("Here", 10)
    assert names(client.get("/leads/")) == ["Here"]


@pytest.mark.parametrize("app_config", [{"PAGE_SIZE": 2}])
def test_leads_are_paginated_keeping_the_filters(client, auth, app_config):
    auth.as_role("sales")
    for n in range(5):
        lead(f"L{n}", 50 - n)
    first = client.get("/leads/?stage=consideration")
    assert names(first) == ["L0", "L1"]
    following = soup(first).select_one("a[rel=next]")["href"]
    assert "stage=consideration" in following and "page=2" in following
    assert names(client.get(following)) == ["L2", "L3"]
    assert names(client.get("/leads/?page=3")) == ["L4"]
    assert names(client.get("/leads/?page=99")) == ["L4"]


def test_a_filter_change_from_htmx_gets_only_the_list(client, auth):
    auth.as_role("sales")
    lead("Ann", 30)
    page = soup(client.get("/leads/?stage=consideration", headers={"HX-Request": "true"}))
    assert page.select_one("header") is None and page.select_one("form") is None
    assert [text_of(r.select_one("td.name")) for r in page.select("tr.lead")] == ["Ann"]


def test_the_leads_page_takes_the_same_queries_for_3_or_60_leads(client, auth):
    auth.as_role("sales")
    owners = [make_user("sales", f"o{n}@example.com") for n in range(2)]
    counts = []
    for total in (3, 60):
        db.session.execute(Task.__table__.delete())
        db.session.execute(ScoreHistory.__table__.delete())
        db.session.execute(Contact.__table__.delete())
        db.session.commit()
        for n in range(total):
            contact = lead(f"P{n}", n, owner=owners[n % 2], tags=["vip"] if n % 3 else [])
            db.session.add(Task(contact_id=contact.id, kind="call", title="Call", due_at=utcnow()))
            db.session.add(ScoreHistory(contact_id=contact.id, score=n, breakdown=[],
                                        computed_at=utcnow() - timedelta(days=20)))
        db.session.commit()
        with QueryCounter() as queries:
            assert client.get("/leads/").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_top_reasons_leave_out_the_cap_line():
    breakdown = [{"rule": "a", "points": 60, "why": "a"}, {"rule": "b", "points": 50, "why": "b"},
                 {"rule": "cap", "points": -10, "why": "capped at 100"}]
    assert [line["rule"] for line in leads.top_reasons(breakdown)] == ["a", "b"]
