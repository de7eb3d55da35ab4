"""Property test: for random small shops and random definitions, a segment's SQL finds exactly
the contacts a plain-Python reading of the same definition finds (SQLite and PostgreSQL)."""
from __future__ import annotations

import os
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from crm.extensions import db
from crm.models import (
    HEALTHS,
    ORDER_STATUSES,
    PAID_STATUSES,
    STAGES,
    Contact,
    Interaction,
    Order,
    OrderLine,
    Tag,
    Task,
    User,
)
from crm.services.insight.rfm_names import SEGMENTS
from crm.services.segments import store
from crm.services.segments.definition import (
    FIELDS,
    OPERATORS,
    SET_OPS,
    TASK_RULES,
    EventOptions,
    Group,
    parse,
    to_json,
)

# Examples are cheap on SQLite; PostgreSQL's round trips make each one dearer.
EXAMPLES = 80 if os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql") else 150
ZONE = "America/New_York"
TODAY = date(2026, 6, 15)
NOW = datetime(2026, 6, 15, 16, 0, tzinfo=timezone.utc)
TAGS = ("vip", "b2b", "sencha")
SKUS = ("S1", "S2")
PRODUCTS = ("Sencha tea", "Gyokuro", "sencha cup")
KINDS = ("call", "email", "testimonial")
RULES = TASK_RULES[:3]
TEXTS = {"first_name": ("ann", "Bob", ""), "last_name": ("Lee", "lee", ""), "company": ("Acme", None, "acme tea"),
         "city": ("Gent", "gent", "Paris", None), "country": ("BE", "FR", None)}
TEXT_VALUES = ("ann", "Bob", "Lee", "lee", "Acme", "Gent", "gent", "Paris", "BE", "FR", "a", "e", "x@example.com")


@pytest.fixture
def app_config():
    return {"SHOP_TIMEZONE": ZONE}


# -- random shops ---------------------------------------------------------------------------

moments = st.integers(min_value=-400 * 24, max_value=30 * 24).map(lambda hours: NOW + timedelta(hours=hours, minutes=7))
maybe = lambda strategy: st.one_of(st.none(), strategy)  # noqa: E731

contacts = st.fixed_dictionaries({
    **{name: st.sampled_from(values) for name, values in TEXTS.items()},
    "has_email": st.booleans(),
    "tags": st.sets(st.sampled_from(TAGS)),
    "owner": st.sampled_from((None, 0, 1)),
    "stage": st.sampled_from(STAGES), "health": maybe(st.sampled_from(HEALTHS)),
    "lead_score": st.sampled_from((0, 10, 50, 70, 100)), "rfm_segment": maybe(st.sampled_from(SEGMENTS[:3])),
    "p_alive": maybe(st.sampled_from((0.1, 0.5, 0.9))),
    "predicted_value_12m": maybe(st.sampled_from((Decimal("0.00"), Decimal("99.99"), Decimal("200.00")))),
    "expected_orders_90d": maybe(st.sampled_from((0.0, 0.5, 2.0))),
    "order_count": st.sampled_from((0, 1, 3)), "total_spent": st.sampled_from((Decimal("0.00"), Decimal("50.50"), Decimal("200.00"))),
    "first_order_at": maybe(moments), "last_order_at": maybe(moments), "created_at": moments,
    "consent": st.booleans(), "do_not_contact": st.booleans(), "erased": st.sampled_from((False, False, True)),
    "orders": st.lists(st.tuples(st.sampled_from(ORDER_STATUSES), moments,
                                 st.lists(st.tuples(maybe(st.sampled_from(SKUS)), st.sampled_from(PRODUCTS)), max_size=2)),
                       max_size=3),
    "interactions": st.lists(st.tuples(st.sampled_from(KINDS), moments), max_size=2),
    "tasks": st.dictionaries(st.sampled_from(RULES), st.sampled_from(("open", "done")), max_size=2),
})
shops = st.lists(contacts, max_size=6)


def _build(shop: list[dict]) -> list[dict]:
    """Store a shop; return each contact's facts as plain Python, for the evaluator."""
    for model in (OrderLine, Order, Interaction, Task, Contact, Tag, User):
        db.session.execute(delete(model))
    users = [User(email=f"u{i}@example.com", name=f"U{i}", role="sales", password_hash="x") for i in range(2)]
    tags = {name: Tag(name=name) for name in TAGS}
    db.session.add_all([*users, *tags.values()])
    db.session.flush()
    facts = []
    for index, spec in enumerate(shop):
        contact = Contact(
            email=f"c{index}@example.com" if spec["has_email"] else None,
            **{name: spec[name] for name in (*TEXTS, "stage", "health", "lead_score", "rfm_segment", "p_alive",
                                              "predicted_value_12m", "expected_orders_90d", "order_count",
                                              "total_spent", "first_order_at", "last_order_at", "created_at",
                                              "consent", "do_not_contact")},
            owner_id=users[spec["owner"]].id if spec["owner"] is not None else None,
            erased_at=NOW if spec["erased"] else None,
            tags=[tags[name] for name in sorted(spec["tags"])],
        )
        db.session.add(contact)
        db.session.flush()
        for number, (status, placed_at, lines) in enumerate(spec["orders"]):
            db.session.add(Order(contact_id=contact.id, source="test", external_id=f"{contact.id}-{number}",
                                 number=str(number), placed_at=placed_at, status=status,
                                 lines=[OrderLine(sku=sku, name=name) for sku, name in lines]))
        for kind, occurred_at in spec["interactions"]:
            db.session.add(Interaction(contact_id=contact.id, kind=kind, occurred_at=occurred_at))
        for rule, status in spec["tasks"].items():
            db.session.add(Task(contact_id=contact.id, kind=rule, rule_key=f"{rule}:x", title=rule, status=status))
        facts.append({**spec, "id": contact.id, "email": contact.email,
                      "owner_id": contact.owner_id})
    db.session.commit()
    return facts


# -- random definitions ---------------------------------------------------------------------

days = st.integers(min_value=1, max_value=400)
dates = st.integers(min_value=-400, max_value=30).map(lambda n: (TODAY + timedelta(days=n)).isoformat())


def _values(name: str, op: str):
    field = FIELDS[name]
    if op in SET_OPS:
        return st.none()
    if op in ("within_last_days", "not_within_last_days"):
        return days
    if field.kind == "date":
        return st.lists(dates, min_size=2, max_size=2).map(sorted) if op == "between" else dates
    single = {
        "text": st.sampled_from(TEXT_VALUES), "tag": st.sampled_from((*TAGS, "VIP", "none")),
        "owner": st.sampled_from((1, 2, 3)), "choice": st.sampled_from(field.choices) if field.choices else st.none(),
        "bool": st.booleans(),
        "number": st.sampled_from((0, 0.5, 10, 50, 70, 1, 3)),
        "money": st.sampled_from((0, "50.50", 99.99, "200", 100)),
    }[field.kind]
    if op == "in":
        return st.lists(single, min_size=1, max_size=3)
    if op == "between":
        return st.lists(single, min_size=2, max_size=2).map(lambda pair: sorted(pair, key=lambda v: Decimal(str(v))))
    return single


def _event_values(name: str):
    if name == "ordered":
        return st.fixed_dictionaries({}, optional={
            "sku": st.sampled_from(SKUS), "product": st.sampled_from(("sencha", "Gyokuro", "cup")),
            "min_count": st.integers(1, 3), "within_days": days})
    if name == "interaction":
        return st.fixed_dictionaries({}, optional={"kind": st.sampled_from(KINDS), "min_count": st.integers(1, 2),
                                                   "between": st.lists(dates, min_size=2, max_size=2).map(sorted)})
    return st.fixed_dictionaries({}, optional={"rule": st.sampled_from(RULES), "status": st.sampled_from(("open", "done"))})


@st.composite
def conditions(draw):
    name = draw(st.sampled_from(sorted(FIELDS)))
    field = FIELDS[name]
    op = draw(st.sampled_from(field.operators))
    if field.kind == "event":
        return {"field": name, "op": op, "value": draw(_event_values(name))}
    value = draw(_values(name, op))
    return {"field": name, "op": op} if op in SET_OPS else {"field": name, "op": op, "value": value}


groups = st.fixed_dictionaries({"match": st.sampled_from(("all", "any")),
                                "conditions": st.lists(conditions(), max_size=3)})
definitions = st.fixed_dictionaries({"match": st.sampled_from(("all", "any")),
                                     "conditions": st.lists(st.one_of(conditions(), groups), max_size=4)})


# -- the plain-Python reading ---------------------------------------------------------------

def _day(moment: datetime | None) -> date | None:
    return moment.astimezone(ZoneInfo(ZONE)).date() if moment is not None else None


def _in_window(moment: datetime, options: EventOptions) -> bool:
    day = _day(moment)
    if options.within_days is not None:
        return day >= TODAY - timedelta(days=options.within_days - 1)
    if options.between is not None:
        return options.between[0] <= day <= options.between[1]
    return True


def _event(contact: dict, name: str, options: EventOptions) -> bool:
    if name == "ordered":
        found = [o for o in contact["orders"] if o[0] in PAID_STATUSES and _in_window(o[1], options)
                 and (options.sku is None and options.product is None
                      or any((options.sku is None or sku == options.sku)
                             and (options.product is None or options.product.lower() in line.lower())
                             for sku, line in o[2]))]
        return len(found) >= options.min_count
    if name == "interaction":
        found = [i for i in contact["interactions"] if _in_window(i[1], options)
                 and (options.kind is None or i[0] == options.kind)]
        return len(found) >= options.min_count
    return any((options.rule is None or rule == options.rule) and (options.status is None or status == options.status)
               for rule, status in contact["tasks"].items())


def _value_of(contact: dict, name: str):
    if name == "email_status":
        if contact["email"] is None:
            return "missing"
        return "do_not_contact" if contact["do_not_contact"] else "subscribed" if contact["consent"] else "not_subscribed"
    column = FIELDS[name].column
    return contact["owner_id"] if column == "owner_id" else contact[column]


def _holds(contact: dict, item) -> bool:
    if isinstance(item, Group):
        results = [_holds(contact, sub) for sub in item.conditions]
        return all(results) if item.match == "all" else any(results)
    field, op, value = FIELDS[item.field], item.op, item.value
    if field.kind == "event":
        found = _event(contact, item.field, value)
        return found if op == "has" else not found
    if field.kind == "tag":
        tags = contact["tags"]
        return {"=": lambda: value in tags, "!=": lambda: value not in tags, "in": lambda: bool(tags & set(value)),
                "is_set": lambda: bool(tags), "is_not_set": lambda: not tags}[op]()
    actual = _value_of(contact, item.field)
    if op in SET_OPS:
        is_set = actual is not None and actual != ""
        return is_set if op == "is_set" else not is_set
    if op == "!=":
        return actual is None or actual != value
    if field.kind == "date":
        day = _day(actual)
        if op == "within_last_days":
            return day is not None and day >= TODAY - timedelta(days=value - 1)
        if op == "not_within_last_days":
            return day is None or day < TODAY - timedelta(days=value - 1)
        if day is None:
            return False
        return {"=": lambda: day == value, "before": lambda: day < value, "after": lambda: day > value,
                "between": lambda: value[0] <= day <= value[1]}[op]()
    if actual is None:
        return False
    if op == "contains":
        return value.lower() in actual.lower()
    if op == "in":
        return actual in value
    if op == "between":
        return value[0] <= actual <= value[1]
    return {"=": actual == value, "<": actual < value, "<=": actual <= value, ">": actual > value,
            ">=": actual >= value}[op]


def members_by_python(facts: list[dict], definition: Group) -> set[int]:
    return {c["id"] for c in facts if not c["erased"] and _holds(c, definition)}


# -- the property ---------------------------------------------------------------------------

@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                HealthCheck.too_slow])
@pytest.mark.slow
@given(shop=shops, raw=st.lists(definitions, min_size=1, max_size=4))
def test_a_segments_members_are_the_contacts_its_definition_describes(app, shop, raw):
    facts = _build(shop)
    for each in raw:
        definition = parse(each)
        assert parse(to_json(definition)) == definition
        found = set(db.session.scalars(store.member_ids(definition, TODAY)))
        assert found == members_by_python(facts, definition), to_json(definition)
        assert store.count(definition, TODAY) == len(found)
        # Checked contact by contact (a walked page of the contact list): the same members.
        walked = select(Contact.id).where(store.condition(definition, TODAY, per_contact=True))
        assert set(db.session.scalars(walked)) == found, to_json(definition)


bought = st.fixed_dictionaries({"match": st.sampled_from(("all", "any")), "conditions": st.lists(
    st.builds(lambda op, value: {"field": "ordered", "op": op, "value": value},
              st.sampled_from(("has", "has_not")), _event_values("ordered")), min_size=1, max_size=2)})


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                HealthCheck.too_slow])
@pytest.mark.slow
@given(shop=shops, raw=st.lists(bought, min_size=1, max_size=3))
def test_a_product_or_sku_checked_contact_by_contact_finds_the_same_members(app, shop, raw):
    """The contact list walks a segment contact by contact (`per_contact`: a product or sku looked
    up in each order's lines) where a count gathers the product's orders first: the same members."""
    facts = _build(shop)
    for each in raw:
        definition = parse(each)
        expected = members_by_python(facts, definition)
        walked = select(Contact.id).where(store.condition(definition, TODAY, per_contact=True))
        assert set(db.session.scalars(walked)) == expected, to_json(definition)
        assert set(db.session.scalars(store.member_ids(definition, TODAY))) == expected, to_json(definition)


def test_the_generators_reach_every_field_and_operator():
    """The strategies above draw from the field and operator lists themselves, so a field or
    operator added later is tested without changes here."""
    assert {f.kind for f in FIELDS.values()} == set(OPERATORS)
    assert all(field.operators for field in FIELDS.values())


filters = st.builds(
    dict,
    stage=maybe(st.sampled_from(STAGES)), health=maybe(st.sampled_from(HEALTHS)),
    tag=st.lists(st.sampled_from(TAGS), max_size=2), score_min=maybe(st.sampled_from(("0", "50", "70"))),
    score_max=maybe(st.sampled_from(("10", "70"))), todo=maybe(st.sampled_from(("yes", "no"))),
    owner=maybe(st.sampled_from(("none", 0, 1))),  # 0 and 1: the shop's two users
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow])
@given(shop=shops, arguments=filters)
def test_the_contact_lists_filters_saved_as_a_segment_find_the_same_contacts(app, shop, arguments):
    """The filters and the segment built from them are two spellings of one rule: they must agree."""
    from werkzeug.datastructures import MultiDict

    from crm.services.people import queries as contact_queries

    facts = _build(shop)
    if isinstance(arguments["owner"], int):
        arguments["owner"] = str(sorted(db.session.scalars(select(User.id)))[arguments["owner"]])
    pairs = [(name, value) for name, value in arguments.items() if value is not None and name != "tag"]
    pairs += [("tag", tag) for tag in arguments["tag"]]
    chosen = contact_queries.ContactFilters.from_args(MultiDict(pairs))
    erased = {c["id"] for c in facts if c["erased"]}
    listed = set(db.session.scalars(contact_queries.matching_ids(chosen))) - erased
    definition = parse(store.from_filters(chosen))
    assert set(db.session.scalars(store.member_ids(definition, TODAY))) == listed, to_json(definition)
