"""Finding contacts: search, each filter, each sort, keyset pages, and the timeline."""
from datetime import timedelta
from decimal import Decimal

import pytest
from werkzeug.datastructures import MultiDict

from crm.extensions import db
from crm.models import Interaction, Order, StageChange, Task
from crm.services.people import queries as contact_queries
from crm.services.people.queries import ContactFilters
from tests.contact_helpers import (
    NOW,
    make_contact,
    make_interaction,
    make_order,
    make_stage_change,
    make_task,
    make_user,
)


def found(**args) -> list[str]:
    """Return the first names of every contact the list would show for these arguments."""
    filters = ContactFilters.from_args(MultiDict(args))
    return [c.first_name for c in db.session.scalars(contact_queries.ordered(filters, user_id=args.get("_me")))]


@pytest.fixture
def people(app):
    anna = make_contact(first_name="Anna", last_name="Schmidt", email="anna@teahouse.de", company="Bäckerei Sonne",
                        phone="+4915112345678")
    ben = make_contact(first_name="Ben", last_name="Meyer", email="ben.m@example.com", company="Northwind Cafés",
                       phone="+4930123456")
    clara = make_contact(first_name="Clara", last_name="Schmidtke", email="clara@example.org", company=None)
    db.session.commit()
    return anna, ben, clara


def test_search_matches_first_name_last_name_email_and_company_in_any_case(people):
    assert found(q="anna") == ["Anna"]
    assert found(q="SCHMIDT") == ["Anna", "Clara"]
    assert found(q="teahouse") == ["Anna"]
    assert found(q="northwind") == ["Ben"]


def test_every_word_of_a_search_must_match_somewhere(people):
    assert found(q="anna schmidt") == ["Anna"]
    assert found(q="schmidt sonne") == ["Anna"]
    assert found(q="anna meyer") == []


@pytest.mark.parametrize("typed", ["+49 151 1234 5678", "0151 12345678", "015112345678", "4915112345678",
                                   "0049-151-1234-5678", "(0151) 123 456 78", "12345678"])
def test_phone_search_matches_however_the_number_is_typed(people, typed):
    assert found(q=typed) == ["Anna"]


def test_search_treats_like_wildcards_as_plain_text(people):
    assert found(q="%") == []
    assert found(q="_") == []


@pytest.fixture
def segments(app):
    sales = make_user("sales")
    support = make_user("support")
    make_contact(first_name="Ava", stage="awareness", health=None, lead_score=10, tags=["newsletter"])
    make_contact(first_name="Cal", stage="conversion", health="active", lead_score=55, owner_id=sales.id,
                 tags=["vip", "newsletter"])
    make_contact(first_name="Ria", stage="retention", health="at_risk", lead_score=70, owner_id=support.id,
                 tags=["vip"])
    lapsed = make_contact(first_name="Lou", stage="retention", health="lapsed", lead_score=90)
    make_task(lapsed, NOW, status="open")
    ria_done = make_contact(first_name="Dot", stage="advocacy", health="active", lead_score=100)
    make_task(ria_done, NOW, status="done")
    db.session.commit()
    return sales, support


@pytest.mark.parametrize("args, names", [
    ({"stage": "retention"}, ["Lou", "Ria"]),
    ({"health": "active"}, ["Cal", "Dot"]),
    ({"health": "lapsed"}, ["Lou"]),
    ({"tag": "vip"}, ["Cal", "Ria"]),
    ({"tag": "VIP "}, ["Cal", "Ria"]),
    ({"score_min": "55"}, ["Cal", "Dot", "Lou", "Ria"]),
    ({"score_max": "55"}, ["Ava", "Cal"]),
    ({"score_min": "50", "score_max": "80"}, ["Cal", "Ria"]),
    ({"todo": "yes"}, ["Lou"]),
    ({"todo": "no"}, ["Ava", "Cal", "Dot", "Ria"]),
    ({"owner": "none"}, ["Ava", "Dot", "Lou"]),
    ({"stage": "retention", "health": "at_risk", "tag": "vip"}, ["Ria"]),
    ({"stage": "nonsense", "health": "bad", "todo": "maybe", "owner": "x'--"}, ["Ava", "Cal", "Dot", "Lou", "Ria"]),
])
def test_each_filter_narrows_the_list(segments, args, names):
    assert sorted(found(**args)) == names


def test_owner_filter_by_user_and_by_me(segments):
    sales, support = segments
    assert found(owner=str(sales.id)) == ["Cal"]
    assert found(owner="me", _me=support.id) == ["Ria"]
    assert found(owner="me") == []


def test_several_tags_must_all_be_there(segments):
    assert found(tag=["vip", "newsletter"]) == ["Cal"]


@pytest.fixture
def ranked(app):
    rows = [
        # first name, last name, score, spent, last order (days ago), created (days ago)
        ("Ann", "Zeller", 30, "10.00", 5, 1),
        ("Bob", "Adams", 80, "250.00", None, 2),
        ("Cem", "Adams", 80, "99.50", 1, 3),
        ("Dan", "Moser", 5, "0.00", None, 4),
        ("Eve", "Berg", 55, "1200.00", 30, 5),
    ]
    for first, last, score, spent, ordered_days, created_days in rows:
        make_contact(first_name=first, last_name=last, lead_score=score, total_spent=Decimal(spent),
                     last_order_at=NOW - timedelta(days=ordered_days) if ordered_days is not None else None,
                     created_at=NOW - timedelta(days=created_days))
    db.session.commit()


@pytest.mark.parametrize("sort, names", [
    ("name", ["Bob", "Cem", "Eve", "Dan", "Ann"]),
    ("score", ["Cem", "Bob", "Eve", "Ann", "Dan"]),  # ties: the newer id first
    ("spent", ["Eve", "Bob", "Cem", "Ann", "Dan"]),
    ("last_order", ["Cem", "Ann", "Eve", "Dan", "Bob"]),  # never ordered: last
    ("newest", ["Ann", "Bob", "Cem", "Dan", "Eve"]),
    ("unknown", ["Bob", "Cem", "Eve", "Dan", "Ann"]),
])
def test_each_sort_orders_the_list(ranked, sort, names):
    assert found(sort=sort) == names


@pytest.mark.parametrize("query", ["", "acme"])  # a search reads few matches without the sort index
@pytest.mark.parametrize("sort", sorted(contact_queries.SORTS))
def test_keyset_pages_walk_every_contact_once_forwards_and_back(app, sort, query):
    # Ties and missing values on every sort column: pages must still neither skip nor repeat.
    for number in range(23):
        make_contact(first_name=f"P{number:02d}", last_name=["Kim", "Lee", ""][number % 3], company="Acme",
                     lead_score=[10, 50][number % 2], total_spent=Decimal([0, 5][number % 2]),
                     last_order_at=None if number % 4 == 0 else NOW - timedelta(days=number % 3),
                     created_at=NOW - timedelta(days=number % 5))
    make_contact(company="Other")
    db.session.commit()
    filters = ContactFilters(sort=sort, q=query)
    everyone = [c.id for c in db.session.scalars(contact_queries.ordered(filters))]
    pages, cursor = [], None
    while True:
        page = contact_queries.page(filters, after=cursor, size=5)
        pages.append([c.id for c in page.contacts])
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert [i for p in pages for i in p] == everyone
    assert [len(p) for p in pages] == ([5, 5, 5, 5, 3] if query else [5, 5, 5, 5, 4])
    # Going back from the last page gives the pages before it, in the same order.
    back = contact_queries.page(filters, before=contact_queries.page(filters, after=cursor, size=5).prev_cursor, size=5)
    assert [c.id for c in back.contacts] == pages[-2]
    assert back.prev_cursor is not None and back.next_cursor is not None


def test_the_first_page_has_no_previous_and_the_last_no_next(app):
    for _ in range(3):
        make_contact()
    db.session.commit()
    page = contact_queries.page(ContactFilters(), size=5)
    assert page.prev_cursor is None and page.next_cursor is None and page.total == 3


@pytest.mark.parametrize("cursor", ["garbage", "W10", "WyJhIiwxXQ", "eyJhIjoxfQ", "!!!"])
def test_a_broken_cursor_shows_the_first_page(app, cursor):
    for _ in range(3):
        make_contact()
    db.session.commit()
    assert len(contact_queries.page(ContactFilters(sort="score"), after=cursor).contacts) == 3


def test_the_count_stops_at_the_cap(app):
    for _ in range(8):
        make_contact(company="Acme")
    db.session.commit()
    assert contact_queries.count(ContactFilters(q="acme"), cap=5) == 6
    assert contact_queries.count(ContactFilters(q="acme")) == 8
    assert contact_queries.count(ContactFilters()) == 8


def test_filters_survive_a_round_trip_through_the_query_string(app):
    filters = ContactFilters.from_args(MultiDict([
        ("q", " anna "), ("stage", "retention"), ("tag", "vip"), ("tag", "b2b"), ("score_min", "150"),
        ("todo", "yes"), ("owner", "me"), ("sort", "spent"),
    ]))
    assert filters.q == "anna" and filters.score_min == 100 and filters.tags == ("b2b", "vip")
    assert ContactFilters.from_args(MultiDict(filters.to_args())) == filters


# ---------------------------------------------------------------------------
# The timeline

def test_the_timeline_merges_orders_interactions_to_dos_and_stage_changes_newest_first(app):
    contact = make_contact()
    other = make_contact()
    order = make_order(contact, NOW - timedelta(days=3))
    call = make_interaction(contact, NOW - timedelta(days=1))
    task = make_task(contact, NOW - timedelta(days=2))
    change = make_stage_change(contact, NOW - timedelta(days=4))
    make_interaction(other, NOW)
    db.session.commit()
    page = contact_queries.timeline(contact.id)
    assert [(item.kind, item.id) for item in page.items] == [
        ("interaction", call.id), ("task", task.id), ("order", order.id), ("stage", change.id),
    ]
    assert page.next_cursor is None


def test_timeline_pages_cover_every_item_once_even_with_equal_times(app):
    contact = make_contact()
    same = NOW - timedelta(hours=5)
    made = []
    for number in range(9):
        when = same if number % 3 == 0 else NOW - timedelta(hours=number)
        made.append(("interaction", make_interaction(contact, when).id))
        made.append(("order", make_order(contact, when).id))
        made.append(("task", make_task(contact, when).id))
        made.append(("stage", make_stage_change(contact, when).id))
    db.session.commit()
    seen, cursor, pages = [], None, 0
    while True:
        page = contact_queries.timeline(contact.id, cursor=cursor, size=7)
        pages += 1
        seen += [(item.kind, item.id) for item in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen)) == 36
    assert pages == 6
    models = {"interaction": Interaction, "order": Order, "task": Task, "stage": StageChange}
    keys = [contact_queries.timeline_item(kind, db.session.get(models[kind], item_id)).key for kind, item_id in seen]
    assert keys == sorted(keys, reverse=True)
