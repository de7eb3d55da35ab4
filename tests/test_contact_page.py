"""The contact page: everything about a person, their timeline, to-dos and tags."""
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from crm.extensions import db
from crm.models import AuditEntry, Contact
from tests.conftest import soup, text_of
from tests.contact_helpers import (
    NOW, hx, link_external_id, make_contact, make_interaction, make_order, make_stage_change, make_user,
    make_task, sign_in,
)


def facts(page) -> dict[str, str]:
    return {text_of(dt): text_of(dt.find_next_sibling("dd")) for dt in page.select("dl.facts dt")}


def test_the_header_shows_who_they_are_their_stage_with_its_reason_and_their_score(client):
    sign_in(client, "viewer")
    owner = make_user("sales", name="Sam Sales")
    contact = make_contact(
        first_name="Anna", last_name="Schmidt", email="anna@example.com", email_display="Anna@Example.com",
        phone="+4915112345678", company="Bäckerei Sonne", title="Buyer", stage="retention",
        stage_reason="First paid order 45 days ago", health="at_risk", lead_score=64, owner_id=owner.id,
        consent=True, consent_at=NOW - timedelta(days=10), consent_source="checkout box", do_not_contact=True,
        score_breakdown=[{"rule": "Recent engagement", "points": 20, "why": "Called 3 days ago"},
                         {"rule": "Unsubscribed", "points": -5, "why": "Left the newsletter"}],
        tags=["vip", "b2b"],
    )
    link_external_id(contact, "shopify", "7001")
    link_external_id(contact, "woocommerce", "42")
    db.session.commit()
    page = soup(client.get(f"/contacts/{contact.id}"))
    assert text_of(page.select_one("h1")) == "Anna Schmidt"
    assert text_of(page.select_one(".contact-sub")) == "Buyer · Bäckerei Sonne"
    header = page.select_one(".contact-header")
    assert header.select_one(".badge.stage-retention") and header.select_one(".badge.health-at_risk")
    assert text_of(header.select_one(".badge.dnc")) == "Do not contact"
    assert text_of(page.select_one(".stage-reason")) == "First paid order 45 days ago"
    score = page.select_one("section.lead-score")
    assert text_of(score.select_one("strong.score")) == "64"
    breakdown = [(row["data-rule"], [text_of(td) for td in row.select("td")]) for row in score.select("tr[data-rule]")]
    assert breakdown == [("Recent engagement", ["+20", "Called 3 days ago"]),
                         ("Unsubscribed", ["-5", "Left the newsletter"])]
    shown = facts(page)
    assert shown["Email"] == "Anna@Example.com" and shown["Phone"] == "+49 1511 2345678"  # stored E.164, shown as people write it
    assert shown["Owner"] == "Sam Sales" and shown["Company"] == "Bäckerei Sonne"
    assert shown["Consent"].startswith("Yes, since") and "(checkout box)" in shown["Consent"]
    assert shown["Do not contact"].startswith("Yes")
    assert [text_of(t) for t in page.select("#contact-tags .badge.tag")] == ["b2b", "vip"]
    assert [text_of(li) for li in page.select(".external-ids li")] == ["shopify 7001", "woocommerce 42"]


def test_the_timeline_shows_orders_calls_to_dos_and_stage_changes_newest_first(client):
    sign_in(client, "viewer")
    support = make_user("support", name="Sue Support")
    contact = make_contact()
    make_stage_change(contact, NOW - timedelta(days=9), to_stage="conversion", from_stage="consideration",
                      reason="First paid order")
    make_order(contact, NOW - timedelta(days=8), total="49.90", lines=2)
    make_interaction(contact, NOW - timedelta(days=2), kind="complaint", subject="Lid broken", body="Parcel was damaged",
                     sentiment="negative", outcome="Sent a new lid", author=support, direction="inbound", channel="phone")
    make_task(contact, NOW - timedelta(days=1), title="Satisfaction call")
    db.session.commit()
    page = soup(client.get(f"/contacts/{contact.id}"))
    items = page.select("#timeline > li.tl")
    assert [item["class"][1] for item in items] == ["tl-task", "tl-interaction", "tl-order", "tl-stage"]
    task, complaint, order, stage = items
    assert text_of(task.select_one(".tl-title")) == "Satisfaction call"
    assert text_of(complaint.select_one(".tl-title")) == "Lid broken"
    assert text_of(complaint.select_one(".tl-body")) == "Parcel was damaged"
    assert complaint.select_one(".badge.sentiment-negative") and "by Sue Support" in text_of(complaint)
    assert "Outcome: Sent a new lid" in text_of(complaint)
    assert text_of(order.select_one(".tl-title")).startswith("Order #") and "€49.90" in text_of(order)
    assert len(order.select(".order-lines li")) == 2
    assert "First paid order" in text_of(stage) and stage.select_one(".stage-conversion")
    assert page.select_one(".tl-more") is None
    assert "ago" in text_of(items[0].select_one("time"))


def test_the_timeline_loads_older_items_when_its_end_scrolls_into_view(client):
    sign_in(client, "viewer")
    contact = make_contact()
    for hours in range(45):
        make_interaction(contact, NOW - timedelta(hours=hours), subject=f"Call {hours:02d}")
    db.session.commit()
    page = soup(client.get(f"/contacts/{contact.id}"))
    assert len(page.select("#timeline > li.tl")) == 20
    more = page.select_one("#timeline > li:last-child")
    assert "tl-more" in more["class"] and more["hx-trigger"] == "revealed" and more["hx-swap"] == "outerHTML"
    subjects = [text_of(t) for t in page.select("#timeline .tl-title")]
    while more is not None:
        fragment = soup(client.get(more["hx-get"], headers=hx()))
        assert fragment.find("html") is None
        subjects += [text_of(t) for t in fragment.select(".tl-title")]
        more = fragment.select_one("li.tl-more")
    assert subjects == [f"Call {hours:02d}" for hours in range(45)]


def test_open_to_dos_are_listed_soonest_first(client):
    sign_in(client, "viewer")
    contact = make_contact()
    make_task(contact, NOW, title="Later", due_at=NOW + timedelta(days=5))
    make_task(contact, NOW, title="Sooner", due_at=NOW + timedelta(days=1))
    make_task(contact, NOW, title="Done already", status="done")
    db.session.commit()
    page = soup(client.get(f"/contacts/{contact.id}"))
    assert [text_of(a) for a in page.select("section.contact-tasks tr.task a.title")] == ["Sooner", "Later"]


def test_an_empty_contact_page_says_there_is_no_history(client):
    sign_in(client, "viewer")
    contact = make_contact()
    db.session.commit()
    page = soup(client.get(f"/contacts/{contact.id}"))
    assert text_of(page.select_one("#timeline .timeline-empty")) == "No orders, calls or notes yet."


def test_a_missing_contact_is_404(client):
    sign_in(client, "viewer")
    assert client.get("/contacts/999").status_code == 404
    assert client.get("/contacts/999/timeline").status_code == 404


def test_viewers_see_no_log_form_and_no_edit_buttons(client):
    sign_in(client, "viewer")
    contact = make_contact()
    make_interaction(contact, NOW)
    db.session.commit()
    page = soup(client.get(f"/contacts/{contact.id}"))
    assert page.find("form", id="log-form") is None
    assert page.select(".tl-actions") == [] and page.select(".tag-add") == [] and page.select(".tag-remove") == []
    assert [text_of(a) for a in page.select(".header-actions a")] == []


def test_support_sees_edit_but_not_merge_or_delete(client):
    sign_in(client, "support")
    contact = make_contact()
    db.session.commit()
    page = soup(client.get(f"/contacts/{contact.id}"))
    assert [text_of(a) for a in page.select(".header-actions a")] == ["Edit", "Add order", "Email…"]


def test_admins_see_merge_and_delete(client):
    sign_in(client, "admin")
    contact = make_contact()
    db.session.commit()
    page = soup(client.get(f"/contacts/{contact.id}"))
    assert [text_of(a) for a in page.select(".header-actions a")] == [
        "Edit", "Add order", "Email…", "Merge…", "Delete…", "Export data", "Erase…"]
    links = {text_of(a): a["href"] for a in page.select(".header-actions a")}
    assert links["Add order"] == f"/contacts/{contact.id}/orders/new"
    assert links["Export data"] == f"/contacts/{contact.id}/privacy/export"
    assert links["Erase…"] == f"/contacts/{contact.id}/privacy/erase"
    for label in ("Add order", "Export data", "Erase…"):
        assert client.get(links[label]).status_code == 200, label


def test_an_erased_contact_offers_no_second_erasure(client):
    sign_in(client, "admin")
    contact = make_contact(erased_at=NOW)
    db.session.commit()
    page = soup(client.get(f"/contacts/{contact.id}"))
    assert "Erase…" not in [text_of(a) for a in page.select(".header-actions a")]


# ---------------------------------------------------------------------------
# Tags, inline

def test_add_tags_inline_returns_the_tag_list(client):
    user = sign_in(client, "support")
    contact = make_contact(tags=["vip"])
    db.session.commit()
    response = client.post(f"/contacts/{contact.id}/tags", data={"tag": "B2B, newsletter"}, headers=hx())
    fragment = soup(response)
    assert fragment.find("html") is None
    assert fragment.select_one("div#contact-tags") is not None
    assert [text_of(t) for t in fragment.select(".badge.tag")] == ["b2b", "newsletter", "vip"]
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "tag"))
    assert entry.user_id == user.id and entry.after == {"tags": ["b2b", "newsletter", "vip"]}


def test_remove_a_tag_inline(client):
    sign_in(client, "sales")
    contact = make_contact(tags=["vip", "b2b"])
    db.session.commit()
    fragment = soup(client.post(f"/contacts/{contact.id}/tags/remove", data={"tag": "vip"}, headers=hx()))
    assert [text_of(t) for t in fragment.select(".badge.tag")] == ["b2b"]
    assert [t.name for t in db.session.get(Contact, contact.id).tags] == ["b2b"]
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "untag")).before == {"tags": ["b2b", "vip"]}


def test_an_empty_tag_shows_the_reason_in_the_fragment(client):
    sign_in(client, "support")
    contact = make_contact()
    db.session.commit()
    fragment = soup(client.post(f"/contacts/{contact.id}/tags", data={"tag": "   "}, headers=hx()))
    assert text_of(fragment.select_one("#tag-error")) == "Type a tag name."
    assert fragment.select_one("input[name=tag]")["aria-invalid"] == "true"


def test_tag_forms_post_with_htmx_and_swap_the_tag_block(client):
    sign_in(client, "support")
    contact = make_contact(tags=["vip"])
    db.session.commit()
    page = soup(client.get(f"/contacts/{contact.id}"))
    for form in page.select("#contact-tags form"):
        assert form["hx-target"] == "#contact-tags" and form["hx-swap"] == "outerHTML"
        assert form["hx-post"] == form["action"]


def test_money_and_orders_in_the_facts(client):
    sign_in(client, "viewer")
    contact = make_contact(order_count=3, total_spent=Decimal("120.00"), last_order_at=NOW - timedelta(days=3))
    db.session.commit()
    assert facts(soup(client.get(f"/contacts/{contact.id}")))["Orders"].startswith("3 · €120.00 · last")
