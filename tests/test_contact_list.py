"""The contact list: live search, filters, pages, and bulk actions on rows or on every match."""
import csv
import io
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select

from crm.extensions import db
from crm.models import AuditEntry, Contact, contact_tags
from tests.conftest import soup, text_of
from tests.contact_helpers import NOW, hx, make_contact, make_user, make_task, sign_in


def names_on(page) -> list[str]:
    return [text_of(a) for a in page.select("#contact-results td.name > a")]


def test_the_list_shows_each_contact_with_its_stage_score_and_tags(client):
    sign_in(client, "viewer")
    make_contact(first_name="Anna", last_name="Schmidt", stage="retention", health="at_risk", lead_score=72,
                 total_spent=Decimal("120.50"), tags=["vip"], phone="+4915112345678")
    db.session.commit()
    page = soup(client.get("/contacts"))
    row = page.select_one("#contact-results tbody tr")
    assert text_of(row.select_one("td.name a")) == "Anna Schmidt"
    assert row.select_one(".stage-retention") is not None and row.select_one(".health-at_risk") is not None
    assert "72" in [text_of(td) for td in row.select("td.num")]
    assert [text_of(t) for t in row.select(".badge.tag")] == ["vip"]
    assert row.select_one("a[href='tel:+4915112345678']") is not None
    assert text_of(page.select_one(".result-count")) == "1 contact"


def test_the_search_box_searches_as_you_type_and_keeps_the_url_in_step(client):
    sign_in(client, "viewer")
    form = soup(client.get("/contacts")).select_one("form#contact-search")
    assert form["hx-get"] == "/contacts" and form["hx-target"] == "#contact-results"
    assert "input changed delay:200ms" in form["hx-trigger"] and "search" in form["hx-trigger"]
    assert form["hx-push-url"] == "true"
    assert form.select_one("input[type=search][name=q]").has_attr("autofocus")


def test_an_htmx_search_gets_only_the_results_part(client):
    sign_in(client, "viewer")
    make_contact(first_name="Anna", last_name="Schmidt")
    make_contact(first_name="Ben", last_name="Meyer")
    db.session.commit()
    response = client.get("/contacts?q=schmidt", headers=hx())
    page = soup(response)
    assert page.find("html") is None and page.find("form", id="contact-search") is None
    top = [node for node in page.contents if getattr(node, "name", None)]
    assert [node.get("id") for node in top] == ["contact-results"]
    assert names_on(page) == ["Anna Schmidt"]
    assert text_of(page.select_one(".result-count")).startswith("1 contact matches")


def test_a_boosted_htmx_request_gets_the_whole_page(client):
    sign_in(client, "viewer")
    page = soup(client.get("/contacts", headers=hx(**{"HX-Boosted": "true"})))
    assert page.find("html") is not None


def test_no_match_says_so_and_offers_to_clear_the_filters(client):
    sign_in(client, "viewer")
    make_contact(first_name="Anna")
    db.session.commit()
    page = soup(client.get("/contacts?q=nobody&stage=advocacy"))
    empty = page.select_one("#contact-results .empty-state")
    assert " ".join(empty.get_text().split()) == "No contacts match — clear filters."
    assert empty.select_one("a")["href"] == "/contacts"
    assert page.select("#contact-results tbody tr") == []


def test_filters_and_sort_from_the_url_are_shown_selected(client):
    sign_in(client, "viewer")
    make_contact(first_name="Anna", last_name="A", stage="retention", lead_score=60, tags=["vip"])
    make_contact(first_name="Ben", last_name="B", stage="retention", lead_score=20, tags=["vip"])
    make_contact(first_name="Cem", last_name="C", stage="awareness", lead_score=90)
    db.session.commit()
    page = soup(client.get("/contacts?stage=retention&tag=vip&score_min=50&sort=score"))
    assert names_on(page) == ["Anna A"]
    assert page.select_one("select[name=stage] option[selected]")["value"] == "retention"
    assert page.select_one("select[name=tag] option[selected]")["value"] == "vip"
    assert page.select_one("select[name=sort] option[selected]")["value"] == "score"
    assert page.select_one("input[name=score_min]")["value"] == "50"


def test_the_open_to_do_filter_and_badge(client):
    sign_in(client, "viewer")
    busy = make_contact(first_name="Busy")
    make_task(busy, NOW)
    make_contact(first_name="Idle")
    db.session.commit()
    page = soup(client.get("/contacts?todo=yes"))
    assert [name.split()[0] for name in names_on(page)] == ["Busy"]
    assert text_of(page.select_one("td.name .badge.todo")) == "1 to-do"


def test_fifty_a_page_with_links_to_the_next_and_previous_pages(client):
    sign_in(client, "viewer")
    for number in range(53):
        make_contact(first_name=f"P{number:02d}", last_name="Same")
    db.session.commit()
    first = soup(client.get("/contacts"))
    assert len(names_on(first)) == 50
    assert text_of(first.select_one(".result-count")) == "53 contacts"
    assert first.select_one("a[rel=prev]") is None
    next_link = first.select_one("a[rel=next]")
    assert next_link["hx-get"] == next_link["href"] and next_link["hx-push-url"] == "true"
    second = soup(client.get(next_link["href"], headers=hx()))
    assert names_on(second) == ["P50 Same", "P51 Same", "P52 Same"]
    assert second.select_one("a[rel=next]") is None
    back = soup(client.get(second.select_one("a[rel=prev]")["href"], headers=hx()))
    assert names_on(back) == names_on(first)


def test_page_links_keep_the_filters(client):
    sign_in(client, "viewer")
    for _ in range(51):
        make_contact(company="Acme")
    make_contact(company="Other")
    db.session.commit()
    link = soup(client.get("/contacts?q=acme&sort=newest")).select_one("a[rel=next]")["href"]
    assert "q=acme" in link and "sort=newest" in link
    assert len(names_on(soup(client.get(link)))) == 1


# ---------------------------------------------------------------------------
# Bulk actions

def tags_of(contact_id: int) -> list[str]:
    contact = db.session.get(Contact, contact_id)
    db.session.refresh(contact)
    return sorted(t.name for t in contact.tags)


def test_add_a_tag_to_the_ticked_rows(client):
    sign_in(client, "support")
    anna, ben, cem = make_contact(), make_contact(), make_contact()
    db.session.commit()
    response = client.post("/contacts/bulk", data={"action": "tag_add", "bulk_tag": " VIP ", "scope": "selected",
                                                   "ids": [anna.id, cem.id]}, follow_redirects=True)
    assert "Tagged 2 contacts “vip”." in text_of(soup(response).select_one(".flash-success"))
    assert (tags_of(anna.id), tags_of(ben.id), tags_of(cem.id)) == (["vip"], [], ["vip"])
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "bulk_tag"))
    assert entry.after["count"] == 2 and sorted(entry.after["contact_ids"]) == sorted([anna.id, cem.id])


def test_add_a_tag_to_every_contact_the_filters_match_not_just_one_page(client):
    sign_in(client, "support")
    for _ in range(60):
        make_contact(stage="retention")
    make_contact(stage="awareness", tags=["vip"])
    already = make_contact(stage="retention", tags=["vip"])
    db.session.commit()
    response = client.post("/contacts/bulk", data={"action": "tag_add", "bulk_tag": "vip", "scope": "all",
                                                   "stage": "retention"})
    assert response.status_code == 302 and response.headers["Location"] == "/contacts?stage=retention"
    assert "Tagged 60 contacts" in text_of(soup(client.get(response.headers["Location"])).select_one(".flash-success"))
    tagged = db.session.scalar(select(func.count()).select_from(contact_tags))
    assert tagged == 62  # 60 new; the two that had it keep it once
    assert tags_of(already.id) == ["vip"]


def test_tag_everyone_with_one_tag_using_another_tag_as_the_filter(client):
    sign_in(client, "support")
    vip = make_contact(tags=["vip"])
    plain = make_contact()
    db.session.commit()
    client.post("/contacts/bulk", data={"action": "tag_add", "bulk_tag": "b2b", "scope": "all", "tag": "vip"})
    assert (tags_of(vip.id), tags_of(plain.id)) == (["b2b", "vip"], [])


def test_remove_a_tag_from_the_ticked_rows(client):
    sign_in(client, "sales")
    anna = make_contact(tags=["vip", "b2b"])
    ben = make_contact(tags=["vip"])
    db.session.commit()
    client.post("/contacts/bulk", data={"action": "tag_remove", "bulk_tag": "vip", "scope": "selected", "ids": [anna.id]})
    assert (tags_of(anna.id), tags_of(ben.id)) == (["b2b"], ["vip"])


def test_assign_an_owner_to_every_match_and_then_to_nobody(client):
    sign_in(client, "admin")
    sales = make_user("sales", name="Sam Sales")
    mine = [make_contact(company="Acme") for _ in range(3)]
    other = make_contact(company="Other")
    db.session.commit()
    client.post("/contacts/bulk", data={"action": "owner", "owner_id": sales.id, "scope": "all", "q": "acme"})
    owners = dict(db.session.execute(select(Contact.id, Contact.owner_id)).all())
    assert [owners[c.id] for c in mine] == [sales.id] * 3 and owners[other.id] is None
    client.post("/contacts/bulk", data={"action": "owner", "owner_id": "", "scope": "selected", "ids": [mine[0].id]})
    assert db.session.get(Contact, mine[0].id).owner_id is None


def test_a_viewer_cannot_be_made_owner(client):
    sign_in(client, "admin")
    viewer = make_user("viewer")
    contact = make_contact()
    db.session.commit()
    response = client.post("/contacts/bulk", data={"action": "owner", "owner_id": viewer.id, "scope": "selected",
                                                   "ids": [contact.id]}, follow_redirects=True)
    assert "not a viewer" in text_of(soup(response).select_one(".flash-error"))
    assert db.session.get(Contact, contact.id).owner_id is None


def test_a_bulk_action_with_no_ticked_row_asks_for_one(client):
    sign_in(client, "support")
    make_contact()
    db.session.commit()
    response = client.post("/contacts/bulk", data={"action": "tag_add", "bulk_tag": "vip", "scope": "selected"},
                           follow_redirects=True)
    assert "Tick the contacts first" in text_of(soup(response).select_one(".flash-warning"))
    assert db.session.scalar(select(func.count()).select_from(contact_tags)) == 0


def test_an_empty_tag_name_is_refused(client):
    sign_in(client, "support")
    contact = make_contact()
    db.session.commit()
    response = client.post("/contacts/bulk", data={"action": "tag_add", "bulk_tag": "  ", "scope": "selected",
                                                   "ids": [contact.id]}, follow_redirects=True)
    assert text_of(soup(response).select_one(".flash-error")) == "Type a tag name."


def read_csv(response) -> list[dict]:
    text = b"".join(response.response).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def test_export_streams_every_filtered_contact_as_csv_in_the_list_order(client):
    sign_in(client, "support")
    for number in range(70):
        make_contact(first_name=f"P{number:02d}", company="Acme", lead_score=number)
    make_contact(company="Other")
    db.session.commit()
    response = client.post("/contacts/bulk", data={"action": "export", "scope": "all", "q": "acme", "sort": "score"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.is_streamed
    assert response.headers["Content-Disposition"].startswith('attachment; filename="contacts-')
    rows = read_csv(response)
    assert len(rows) == 70
    assert [row["first_name"] for row in rows[:3]] == ["P69", "P68", "P67"]
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "export")).after["count"] == 70


def test_export_of_the_ticked_rows_only(client):
    sign_in(client, "support")
    anna, _ben = make_contact(first_name="Anna", tags=["vip", "b2b"]), make_contact(first_name="Ben")
    db.session.commit()
    rows = read_csv(client.post("/contacts/bulk", data={"action": "export", "scope": "selected", "ids": [anna.id]}))
    assert [(row["first_name"], row["tags"]) for row in rows] == [("Anna", "b2b, vip")]


def test_export_neutralises_cells_a_spreadsheet_would_run_as_formulas(client):
    sign_in(client, "support")
    make_contact(first_name="=HYPERLINK(\"http://evil\")", last_name="+1", company="@SUM(A1)", title="-2",
                 city="Berlin", phone="+4915112345678")
    db.session.commit()
    (row,) = read_csv(client.post("/contacts/bulk", data={"action": "export", "scope": "all"}))
    assert row["first_name"] == "'=HYPERLINK(\"http://evil\")"
    assert (row["last_name"], row["company"], row["title"], row["city"]) == ("'+1", "'@SUM(A1)", "'-2", "Berlin")
    assert row["phone"] == "'+4915112345678"


def test_viewers_see_no_bulk_actions_and_are_refused_them(client):
    sign_in(client, "viewer")
    contact = make_contact()
    db.session.commit()
    page = soup(client.get("/contacts"))
    assert page.find("form", id="bulk-form") is None and page.select("input[name=ids]") == []
    for action in ("tag_add", "tag_remove", "owner", "export"):
        response = client.post("/contacts/bulk", data={"action": action, "bulk_tag": "vip", "scope": "all"})
        assert response.status_code == 403
    assert tags_of(contact.id) == []
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_the_last_order_column_says_how_long_ago(client):
    sign_in(client, "viewer")
    make_contact(last_order_at=NOW - timedelta(days=400))
    make_contact(last_order_at=None)
    db.session.commit()
    cells = [text_of(row.select("td")[-3]) for row in soup(client.get("/contacts?sort=last_order")).select("tbody tr")]
    assert cells[0].endswith("ago") and cells[1] == "never"


def test_an_owner_id_too_big_for_the_column_is_ignored_not_a_server_error(client):
    from tests.conftest import make_user

    make_user("viewer")
    client.post("/login", data={"email": "viewer@example.com", "password": "correct horse battery"})
    for path in ("/contacts", "/leads/", "/tasks"):
        response = client.get(path, query_string={"owner": "109445769156552736", "assignee": "109445769156552736"})
        assert response.status_code == 200, path
