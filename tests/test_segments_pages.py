"""The segment pages: build with a live count, save, see a segment's size, history and spend,
list and act on its members from the contact list, duplicate, delete; the filters as a segment."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from crm.extensions import db
from crm.models import Segment, SegmentSize
from crm.services.people import contacts
from crm.services.segments import store as segments
from tests.conftest import soup, text_of

GENT = {"match": "all", "conditions": [{"field": "city", "op": "=", "value": "Gent"}]}


@pytest.fixture
def shop(app):
    made = {}
    for name, city, spent in (("Anna", "Gent", "120.00"), ("Bo", "Gent", "0.00"), ("Cas", "Paris", "30.00")):
        contact = contacts.create_contact({"first_name": name, "last_name": "Test", "city": city})
        contact.total_spent = Decimal(spent)
        contact.order_count = 1 if spent != "0.00" else 0
        made[name] = contact
    db.session.commit()
    return made


def _form(**rows):
    data = {"name": "Gent people", "description": "Everyone in Gent", "match": "all", "rows": "1",
            "field-0": "city", "op-0": "=", "value-0": "Gent", "group-0": "0"}
    data.update(rows)
    return data


def test_the_builder_counts_as_conditions_change(auth, shop):
    client = auth.as_role("support")
    page = client.get("/segments/new")
    assert page.status_code == 200 and soup(page).select_one("#segment-builder")
    answer = client.post("/segments/builder", data=_form(), headers={"HX-Request": "true", "HX-Target": "builder-preview"})
    assert text_of(soup(answer).select_one(".segment-count")) == "2"
    assert "Anna Test" in text_of(soup(answer).select_one(".segment-sample"))


def test_adding_removing_and_changing_rows_in_place(auth, shop):
    client = auth.as_role("sales")
    headers = {"HX-Request": "true", "HX-Target": "builder-rows"}
    added = soup(client.post("/segments/builder", data={**_form(), "add": "row"}, headers=headers))
    assert len(added.select(".builder-row")) == 2
    grouped = soup(client.post("/segments/builder", data={**_form(), "add": "group"}, headers=headers))
    assert grouped.select_one("select[name=gmatch-1]") and grouped.select_one(".builder-row.in-group")
    removed = soup(client.post("/segments/builder", data={**_form(), "remove": "0"}, headers=headers))
    assert not removed.select(".builder-row") and text_of(removed.select_one(".segment-count")) == "3"
    # A new field brings its own operators: a date offers "before", not "contains".
    changed = soup(client.post("/segments/builder", data=_form(**{"field-0": "last_order_at"}), headers=headers))
    operators = [o["value"] for o in changed.select("select[name=op-0] option")]
    assert "before" in operators and "contains" not in operators


def test_a_mistake_shows_beside_its_row(auth, shop):
    client = auth.as_role("support")
    data = _form(**{"rows": "2", "field-1": "lead_score", "op-1": ">", "value-1": "lots", "group-1": "0"})
    answer = soup(client.post("/segments/builder", data=data, headers={"HX-Request": "true", "HX-Target": "builder-preview"}))
    assert "Give a number" in text_of(answer.select_one("#row-error-1"))
    assert text_of(answer.select_one("#row-error-0")) == ""
    saved = client.post("/segments", data=data)
    assert saved.status_code == 422
    assert "Give a number" in text_of(soup(saved).select_one("#row-error-1"))
    assert db.session.query(Segment).count() == 0


def test_saving_a_segment_and_its_page(auth, shop):
    client = auth.as_role("support")
    response = client.post("/segments", data=_form())
    assert response.status_code == 302
    segment = db.session.query(Segment).one()
    assert segment.definition == GENT and segment.description == "Everyone in Gent"
    db.session.add(SegmentSize(segment_id=segment.id, day=segments.today() - timedelta(days=3), size=7))
    db.session.commit()
    page = soup(client.get(f"/segments/{segment.id}"))
    assert text_of(page.select_one("#segment-size")) == "2"
    assert "120.00" in text_of(page.select_one("#segment-spend"))
    assert "7" in text_of(page.select_one("#segment-history"))
    assert "City is Gent" in text_of(page.select_one(".segment-summary"))


def test_a_duplicate_name_is_refused_beside_the_name(auth, shop):
    segments.create({"name": "Gent people", "definition": GENT})
    db.session.commit()
    response = auth.as_role("support").post("/segments", data=_form())
    assert response.status_code == 422 and "already has this name" in response.get_data(as_text=True)


def test_every_role_sees_segments_but_viewers_do_not_build(auth, shop):
    segment = segments.create({"name": "Gent", "definition": GENT})
    db.session.commit()
    client = auth.as_role("viewer")
    assert client.get("/segments").status_code == 200
    page = client.get(f"/segments/{segment.id}")
    assert page.status_code == 200 and not soup(page).select_one("#segment-builder")
    assert client.get("/segments/new").status_code == 403
    assert client.post("/segments", data=_form()).status_code == 403


def test_duplicate_and_admin_only_delete(auth, shop):
    segment = segments.create({"name": "Gent", "definition": GENT})
    db.session.commit()
    client = auth.as_role("sales")
    assert client.post(f"/segments/{segment.id}/duplicate").status_code == 302
    assert {s.name for s in db.session.query(Segment)} == {"Gent", "Copy of Gent"}
    assert client.post(f"/segments/{segment.id}/delete").status_code == 403
    auth.logout()
    assert auth.as_role("admin").post(f"/segments/{segment.id}/delete").status_code == 302
    assert {s.name for s in db.session.query(Segment)} == {"Copy of Gent"}


def test_the_contact_list_lists_sorts_and_exports_a_segment(auth, shop):
    segment = segments.create({"name": "Gent", "definition": GENT})
    db.session.commit()
    client = auth.as_role("sales")
    page = soup(client.get(f"/contacts?segment={segment.id}&sort=spent"))
    names = [text_of(a) for a in page.select("td.name > a")]
    assert names == ["Anna Test", "Bo Test"]
    assert "Gent" in text_of(page.select_one(".segment-banner"))
    export = client.post("/contacts/bulk", data={"segment": segment.id, "scope": "all", "action": "export"})
    body = export.get_data(as_text=True)
    assert export.headers["X-Contact-Count"] == "2" and "Anna" in body and "Cas" not in body
    tagged = client.post("/contacts/bulk", data={"segment": segment.id, "scope": "all", "action": "tag_add",
                                                 "bulk_tag": "gent"})
    assert tagged.status_code == 302
    assert sorted(c.first_name for c in shop.values() if any(t.name == "gent" for t in c.tags)) == ["Anna", "Bo"]


def test_the_filters_become_a_segment(auth, shop):
    shop["Anna"].lead_score = 80
    db.session.commit()
    client = auth.as_role("support")
    listing = soup(client.get("/contacts?score_min=50&stage=awareness"))
    link = listing.select_one("a.save-segment")["href"]
    builder = soup(client.get(link))
    assert builder.select_one("select[name=field-0] option[selected]")["value"] == "stage"
    assert builder.select_one("select[name=field-1] option[selected]")["value"] == "lead_score"
    assert text_of(builder.select_one(".segment-count")) == "1"


def test_sizes_are_recorded_per_shop_day_and_by_the_refresh(app, runner, shop):
    segment = segments.create({"name": "Gent", "definition": GENT})
    db.session.commit()
    day = date(2026, 3, 1)
    assert segments.record_segment_sizes(day) == 1
    assert segments.record_segment_sizes(day) == 1  # twice on a day keeps one figure
    db.session.commit()
    assert [(s.day, s.size) for s in db.session.query(SegmentSize)] == [(day, 2)]
    result = runner.invoke(args=["refresh"])
    assert result.exit_code == 0, result.output
    assert db.session.query(SegmentSize).filter_by(segment_id=segment.id, day=segments.today()).one().size == 2


def test_a_segments_contact_list_costs_the_same_queries_at_any_size(auth, shop, count_queries):
    segment = segments.create({"name": "Gent", "definition": {"match": "all", "conditions": [
        {"field": "city", "op": "=", "value": "Gent"},
        {"field": "ordered", "op": "has_not", "value": {"within_days": 30}}]}})
    db.session.commit()
    client = auth.as_role("sales")
    client.get(f"/contacts?segment={segment.id}")

    def statements() -> int:
        db.session.expire_all()  # as in a real request, nothing is loaded yet
        with count_queries() as seen:
            assert client.get(f"/contacts?segment={segment.id}").status_code == 200
        return len(seen)

    few = statements()
    for n in range(30):
        contacts.create_contact({"first_name": f"More{n}", "city": "Gent"})
    db.session.commit()
    assert statements() == few


def test_a_segments_page_reads_its_members_twice_not_five_times(auth, shop, count_queries):
    """Size, spend, first members and the builder's count and first rows come from two passes
    over the segment (spend with the count; the first members), not one pass each."""
    segment = segments.create({"name": "Gent", "definition": GENT})
    db.session.commit()
    client = auth.as_role("sales")
    db.session.expire_all()
    with count_queries() as seen:
        page = client.get(f"/segments/{segment.id}")
    assert page.status_code == 200
    assert text_of(soup(page).select_one("#segment-size")) == "2"
    assert text_of(soup(page).select_one(".segment-count")) == "2"
    assert "Anna Test" in text_of(soup(page).select_one(".segment-sample"))
    assert len([sql for sql in seen if "contacts.city" in sql]) == 2


def test_a_stored_definition_that_no_longer_parses_lists_nobody_instead_of_failing(auth, shop):
    segment = segments.create({"name": "Old", "definition": GENT})
    db.session.commit()
    segment.definition = {"match": "all", "conditions": [{"field": "gone", "op": "=", "value": 1}]}
    db.session.commit()
    page = auth.as_role("sales").get(f"/contacts?segment={segment.id}")
    assert page.status_code == 200 and not soup(page).select("td.name")


def test_choosing_another_kind_of_field_clears_the_old_value(auth, shop):
    client = auth.as_role("sales")
    answer = soup(client.post("/segments/builder", data=_form(**{"field-0": "lead_score", "shown-0": "city"}),
                              headers={"HX-Request": "true", "HX-Target": "builder-rows"}))
    assert answer.select_one("input[name=value-0]")["value"] == ""
    assert text_of(answer.select_one("#row-error-0")) == "Give a number."
    kept = soup(client.post("/segments/builder", data=_form(**{"field-0": "company", "shown-0": "city"}),
                            headers={"HX-Request": "true", "HX-Target": "builder-rows"}))
    assert kept.select_one("input[name=value-0]")["value"] == "Gent"


def test_changing_a_segment_on_its_page(auth, shop):
    segment = segments.create({"name": "Gent", "definition": GENT})
    db.session.commit()
    client = auth.as_role("support")
    response = client.post(f"/segments/{segment.id}", data=_form(**{"name": "Paris", "value-0": "Paris"}))
    assert response.status_code == 302
    db.session.expire_all()
    assert segment.name == "Paris" and segment.definition["conditions"][0]["value"] == "Paris"
    refused = client.post(f"/segments/{segment.id}", data=_form(**{"name": ""}))
    assert refused.status_code == 422 and "Give a name" in refused.get_data(as_text=True)


def _tea_shop() -> int:
    """Twelve contacts, every fourth without the tea and every third in another stage; return the
    id of the segment "bought Sencha in the last year and in retention"."""
    from crm.models import Order, OrderLine

    now = datetime.now(timezone.utc)
    for n in range(12):
        person = contacts.create_contact({"first_name": f"P{n % 5}", "last_name": f"Tea{n % 4}"})
        person.stage = "awareness" if n % 3 == 0 else "retention"
        person.lead_score, person.total_spent = (n * 7) % 40, Decimal(n % 6)
        person.last_order_at = None if n % 5 == 0 else now - timedelta(days=n % 7)
        db.session.flush()
        product = "Gyokuro" if n % 4 == 0 else "Sencha leaves"
        db.session.add(Order(contact_id=person.id, source="test", external_id=f"o{n}", number=str(n),
                             placed_at=now - timedelta(days=3), status="paid",
                             lines=[OrderLine(sku="S", name=product)]))
    segment = segments.create({"name": "Tea", "definition": {"match": "all", "conditions": [
        {"field": "ordered", "op": "has", "value": {"product": "sencha", "within_days": 365}},
        {"field": "stage", "op": "=", "value": "retention"}]}})
    db.session.commit()
    return segment.id


def _pages(filters, *, counted: bool) -> list[list[int]]:
    """Every page of 2 forward from the first, then back again from the last."""
    from crm.services.people import queries

    forward, cursor = [], None
    while True:
        page = queries.page(filters, after=cursor, size=2, counted=counted)
        forward.append([c.id for c in page.contacts])
        assert (page.total is None) != counted
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    backward, cursor = [], page.prev_cursor
    while cursor is not None:
        page = queries.page(filters, before=cursor, size=2, counted=counted)
        backward.append([c.id for c in page.contacts])
        cursor = page.prev_cursor
    return forward + backward


@pytest.mark.parametrize("sort", ["name", "score", "last_order", "spent", "newest"])
def test_a_segments_list_walked_without_its_count_pages_as_the_counted_list_does(app, monkeypatch, sort):
    """A segment's list is not counted before its rows: the contacts are walked in the sort order,
    a window at a time (falling back to finding every member when a window holds too few). Every
    page, forward and back, is the counted list's, whatever the window."""
    from crm.services.people import queries

    filters = queries.ContactFilters(segment=_tea_shop(), sort=sort)
    expected = _pages(filters, counted=True)
    assert len(expected) == 5 and sum(len(page) for page in expected[:3]) == 6  # 6 members: 3 pages, back over 2
    for windows in ((1,), (1, 3), (3, 5), (2_000,), ()):
        monkeypatch.setattr(queries, "WALK_WINDOWS", windows)
        assert _pages(filters, counted=False) == expected, windows


def test_a_segments_list_shows_its_rows_first_and_loads_its_count(auth, shop):
    segment = segments.create({"name": "Gent", "definition": GENT})
    db.session.commit()
    client = auth.as_role("sales")
    page = soup(client.get(f"/contacts?segment={segment.id}"))
    assert [text_of(a) for a in page.select("td.name > a")] == ["Anna Test", "Bo Test"]
    counting = page.select_one(".result-count #result-total")
    assert counting["hx-trigger"] == "load" and counting["hx-swap"] == "outerHTML"
    assert "contacts match" not in text_of(page.select_one(".result-count"))
    loaded = soup(client.get(counting["hx-get"], headers={"HX-Request": "true"}))
    assert text_of(loaded.select_one("#result-total")) == "2 contacts match"
    # Without JavaScript, a link lists the segment counted.
    counted = soup(client.get(counting.select_one("noscript a")["href"]))
    assert text_of(counted.select_one("#result-total")) == "2 contacts match"
    assert [text_of(a) for a in counted.select("td.name > a")] == ["Anna Test", "Bo Test"]
