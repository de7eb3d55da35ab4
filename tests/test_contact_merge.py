"""Merging two contacts: everything moves to the one that stays, nothing is lost, all is audited."""
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from crm.extensions import db
from crm.models import (
    AuditEntry,
    Contact,
    ContactExternalId,
    Interaction,
    Order,
    ScoreHistory,
    StageChange,
    Task,
    contact_tags,
)
from crm.services.people import merge
from crm.services.shared import signals
from crm.services.shared.errors import ValidationError
from tests.conftest import soup, text_of
from tests.contact_helpers import (
    NOW,
    hx,
    link_external_id,
    make_contact,
    make_interaction,
    make_order,
    make_score,
    make_stage_change,
    make_task,
    make_user,
    sign_in,
)


def rows(model, **where) -> int:
    query = select(func.count()).select_from(model)
    for name, value in where.items():
        query = query.where(getattr(model, name) == value)
    return db.session.scalar(query)


@pytest.fixture
def pair(app):
    """Two records of one person: the survivor (older, no phone) and a duplicate from the shop."""
    owner = make_user("sales", name="Sam Sales")
    survivor = make_contact(first_name="Anna", last_name="Schmidt", email="anna@example.com", phone=None,
                            company="Bäckerei Sonne", city=None, created_at=NOW - timedelta(days=100),
                            tags=["vip"])
    loser = make_contact(first_name="Anne", last_name="Schmidt", email="a.schmidt@shop.example", phone="+4915112345678",
                         company="Other GmbH", city="Berlin", owner_id=owner.id, created_at=NOW - timedelta(days=300),
                         consent=True, consent_at=NOW - timedelta(days=300), consent_source="checkout",
                         do_not_contact=True, tags=["vip", "b2b"])
    make_order(survivor, NOW - timedelta(days=50), total="30.00")
    make_order(loser, NOW - timedelta(days=10), total="70.00")
    make_order(loser, NOW - timedelta(days=200), total="15.00", status="refunded", refunded=Decimal("15.00"))
    make_interaction(loser, NOW - timedelta(days=5), subject="Loser call")
    make_interaction(survivor, NOW - timedelta(days=1), subject="Survivor call")
    make_task(survivor, NOW - timedelta(days=3), rule_key="satisfaction:order-1", title="Survivor's follow-up")
    make_task(loser, NOW - timedelta(days=4), rule_key="satisfaction:order-1", title="Loser's follow-up")
    make_task(loser, NOW - timedelta(days=6), rule_key="satisfaction:order-1~x", status="done", title="Old done")
    make_task(loser, NOW - timedelta(days=2), rule_key="birthday:2026", title="Birthday greeting")
    make_task(loser, NOW - timedelta(days=2), rule_key=None, title="Hand-made to-do")
    make_stage_change(loser, NOW - timedelta(days=10), to_stage="conversion")
    make_score(loser, NOW - timedelta(days=10), score=30)
    link_external_id(survivor, "woocommerce", "77")
    link_external_id(loser, "shopify", "7001")
    db.session.commit()
    return survivor, loser


def test_the_plan_says_what_will_move_fill_and_close(pair):
    survivor, loser = pair
    plan = merge.plan(survivor, loser)
    assert plan.moves == {"orders": 2, "interactions": 1, "to-dos": 4, "stage changes": 1, "score history": 1,
                          "external ids": 1}
    assert plan.tags == ["b2b"]
    assert plan.fills["phone"] == (None, "+4915112345678") and plan.fills["city"] == (None, "Berlin")
    assert plan.fills["consent"] == (False, True) and plan.fills["do_not_contact"] == (False, True)
    assert plan.kept["company"] == ("Bäckerei Sonne", "Other GmbH")
    assert plan.kept["email"] == ("anna@example.com", "a.schmidt@shop.example")
    assert [t.title for t in plan.duplicate_tasks] == ["Loser's follow-up"]
    assert rows(Order, contact_id=loser.id) == 2  # planning changes nothing


def test_merge_moves_everything_and_loses_nothing(pair):
    survivor, loser = pair
    survivor_id, loser_id, owner_id = survivor.id, loser.id, loser.owner_id
    totals = {model: rows(model) for model in (Order, Interaction, Task, StageChange, ScoreHistory, ContactExternalId)}
    told = []

    def listen(_sender, *, ids, now=None):
        told.append(sorted(ids))

    admin = make_user("admin")
    # The real engine reacts to the merge; this receiver only watches what it was told.
    with signals.contacts_changed.connected_to(listen):
        merge.merge(survivor, loser, actor_id=admin.id, now=NOW)
    db.session.commit()
    db.session.expire_all()

    assert db.session.get(Contact, loser_id) is None
    for model, total in totals.items():
        # Nothing deleted and everything moved; the engine may add a stage change or a score.
        assert rows(model) >= total if model in (StageChange, ScoreHistory) else rows(model) == total, model
        assert rows(model, contact_id=survivor_id) == rows(model), model
    kept = db.session.get(Contact, survivor_id)
    assert sorted(t.name for t in kept.tags) == ["b2b", "vip"]
    assert db.session.scalar(select(func.count()).select_from(contact_tags)) == 2
    assert sorted(f"{e.source}:{e.external_id}" for e in kept.external_ids) == ["shopify:7001", "woocommerce:77"]
    # The survivor keeps its own details and fills its blanks from the duplicate.
    assert (kept.first_name, kept.email, kept.company) == ("Anna", "anna@example.com", "Bäckerei Sonne")
    assert (kept.phone, kept.city, kept.owner_id) == ("+4915112345678", "Berlin", owner_id)
    assert kept.consent and kept.consent_source == "checkout" and kept.do_not_contact
    assert kept.created_at == NOW - timedelta(days=300)
    # Figures are refreshed from the moved orders: the refunded one does not count.
    assert (kept.order_count, kept.total_spent) == (2, Decimal("100.00"))
    assert kept.last_order_at == NOW - timedelta(days=10)
    assert told == [[survivor_id]]
    # ... and the engine re-derived the merged contact from the facts it now has.
    assert (kept.stage, kept.stage_reason) == ("retention", "repeat customer: 2 paid orders, the latest on 20 February 2026")
    assert {line["rule"] for line in kept.score_breakdown} >= {"reachable", "consent", "company", "do_not_contact"}


def test_a_duplicate_rule_to_do_is_closed_with_its_reason_not_lost(pair):
    survivor, loser = pair
    # A do-not-contact flag would (rightly) close every rule to-do after the merge; keep it out.
    loser.do_not_contact = False
    merge.merge(survivor, loser, now=NOW)
    db.session.commit()
    tasks = {t.title: t for t in db.session.scalars(select(Task))}
    survivors_own, duplicate = tasks["Survivor's follow-up"], tasks["Loser's follow-up"]
    assert (survivors_own.status, survivors_own.rule_key) == ("open", "satisfaction:order-1")
    assert duplicate.status == "closed" and duplicate.closed_at == NOW
    assert duplicate.rule_key == f"satisfaction:order-1~merged-{loser.id}"
    assert "Duplicate after merging" in duplicate.close_reason
    # Moved across with its key; the engine then closes it, as neither contact has a birthday on file.
    birthday = tasks["Birthday greeting"]
    assert (birthday.contact_id, birthday.rule_key) == (survivor.id, "birthday:2026")
    assert tasks["Old done"].status == "done" and tasks["Hand-made to-do"].status == "open"


def test_the_audit_log_keeps_both_contacts_whole(pair):
    survivor, loser = pair
    admin = make_user("admin")
    loser_id, loser_email = loser.id, loser.email
    merge.merge(survivor, loser, actor_id=admin.id, now=NOW)
    db.session.commit()
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "merge"))
    assert entry.entity_id == survivor.id and entry.user_id == admin.id
    assert entry.before["loser"]["email"] == loser_email and entry.before["loser"]["tags"] == ["b2b", "vip"]
    assert entry.before["loser"]["external_ids"] == ["shopify:7001"]
    assert entry.before["survivor"]["phone"] is None and entry.after["survivor"]["phone"] == "+4915112345678"
    assert entry.after["merged_contact_id"] == loser_id and entry.after["moved"]["orders"] == 2
    assert len(entry.after["closed_duplicate_tasks"]) == 1
    gone = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "merged_into"))
    assert gone.entity_id == loser_id and gone.after == {"survivor_id": survivor.id}


def test_a_survivor_without_an_email_takes_the_duplicates(app):
    survivor = make_contact(first_name="Anna", email=None)
    loser = make_contact(email="anna@example.com", email_display="Anna@Example.com")
    db.session.commit()
    merge.merge(survivor, loser)
    db.session.commit()
    kept = db.session.get(Contact, survivor.id)
    assert (kept.email, kept.email_display) == ("anna@example.com", "Anna@Example.com")


def test_a_contact_cannot_be_merged_with_itself(app):
    contact = make_contact()
    with pytest.raises(ValidationError):
        merge.plan(contact, contact)


# ---------------------------------------------------------------------------
# The pages

def test_the_merge_page_finds_candidates_as_you_type(client, pair):
    survivor, loser = pair
    sign_in(client, "admin")
    page = soup(client.get(f"/contacts/{survivor.id}/merge"))
    search = page.select_one("form#merge-search")
    assert search["hx-target"] == "#merge-candidates" and "input changed" in search["hx-trigger"]
    fragment = soup(client.get(f"/contacts/{survivor.id}/merge?q=schmidt", headers=hx()))
    assert fragment.find("html") is None
    links = fragment.select("#merge-candidates a")
    assert [a["href"] for a in links] == [f"/contacts/{survivor.id}/merge?other={loser.id}"]  # not itself


def test_a_nul_character_in_the_search_finds_nobody_instead_of_failing(client, pair):
    # PostgreSQL refuses a NUL in a query's text; the search reads the text without it (both databases).
    survivor, loser = pair
    sign_in(client, "admin")
    empty = client.get(f"/contacts/{survivor.id}/merge?q=%00", headers=hx())
    assert empty.status_code == 200 and not soup(empty).select("#merge-candidates a")
    found = soup(client.get(f"/contacts/{survivor.id}/merge?q=schm%00idt", headers=hx()))
    assert [a["href"] for a in found.select("#merge-candidates a")] == [f"/contacts/{survivor.id}/merge?other={loser.id}"]
    assert client.get("/contacts?q=%00").status_code == 200


def test_the_confirmation_page_shows_what_will_move(client, pair):
    survivor, loser = pair
    sign_in(client, "admin")
    page = soup(client.get(f"/contacts/{survivor.id}/merge?other={loser.id}"))
    assert text_of(page.select_one("h1")) == "Merge Anne Schmidt into Anna Schmidt?"
    moves = {text_of(row.select_one("th")): text_of(row.select_one("td")) for row in page.select(".merge-moves tr")}
    assert moves["Orders"] == "2" and moves["Interactions"] == "1" and moves["To-dos"] == "4" and moves["Tags"] == "b2b"
    assert any("phone" in text_of(li) for li in page.select(".merge-fills li"))
    assert [text_of(li) for li in page.select(".merge-duplicates li")] == ["Loser's follow-up (open)"]
    form = page.select_one("main form[method=post]")
    assert form.select_one("input[name=other]")["value"] == str(loser.id)
    assert rows(Contact) == 2


def test_confirming_merges_and_goes_to_the_contact_that_stays(client, pair):
    survivor, loser = pair
    sign_in(client, "admin")
    response = client.post(f"/contacts/{survivor.id}/merge", data={"other": loser.id}, follow_redirects=True)
    assert response.request.path == f"/contacts/{survivor.id}"
    assert "Merged Anne Schmidt" in text_of(soup(response).select_one(".flash-success"))
    assert rows(Contact) == 1 and rows(Order, contact_id=survivor.id) == 3


def test_merging_a_contact_into_itself_is_refused_on_the_page(client, pair):
    survivor, _loser = pair
    sign_in(client, "admin")
    response = client.post(f"/contacts/{survivor.id}/merge", data={"other": survivor.id}, follow_redirects=True)
    assert "cannot be merged with itself" in text_of(soup(response).select_one(".flash-error"))
    assert rows(Contact) == 2
