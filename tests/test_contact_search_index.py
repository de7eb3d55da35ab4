"""Search through the index (FTS5 trigrams on SQLite, pg_trgm on PostgreSQL): the same answers as the
scan it replaced, the index kept in step by every kind of write, and the query plans that use it."""
import random

import pytest
from sqlalchemy import delete, insert, select, text, update

from crm.extensions import db
from crm.models import Contact, ContactExternalId
from crm.services.people import queries as contact_queries
from crm.services.people.queries import ContactFilters, search_condition
from tests.contact_helpers import make_contact

# Pieces that meet at the edges of what the index does: ASCII and non-ASCII case, ß, accents,
# digits (phones), LIKE wildcards and FTS5 syntax (quotes, braces, colons, AND/OR/NOT).
PIECES = ["an", "An", "AN", "na", "ann", "Anna", "é", "É", "éa", "ß", "ss", "Straße", "ø", "xy", "Ẑ",
          "123", "0151", "49", "4915", "%", "_", '"', "{", ":", "*", "AND", "OR", "NOT", "-", "@", ".", "de", " "]


def random_text(rng, most=4):
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, most))).strip()


def ids(query, *, indexed):
    return set(db.session.scalars(select(Contact.id).where(search_condition(query, indexed=indexed))))


@pytest.fixture
def crowd(app):
    rng = random.Random(15)
    for number in range(60):
        make_contact(first_name=random_text(rng), last_name=random_text(rng),
                     email=f"{random_text(rng, 3).replace(' ', '').lower()}{number}@x{rng.choice(PIECES[:6])}.de",
                     company=random_text(rng) or None,
                     phone=rng.choice([None, "+4915112345678", "+4930123456", "+491512", "+12025550123"]))
    db.session.add(ContactExternalId(contact_id=make_contact(first_name="Ext").id, source="shopify",
                                     external_id="anna 123"))
    db.session.commit()


def test_the_index_finds_exactly_what_the_scan_finds(crowd):
    rng = random.Random(1515)
    queries = ["anna", "ANNA", "éa", "ÉA", "straße", "STRASSE", "0151 2345", "+49 151-2345", "49151 2345",
               "4915", "0049 30", "an an", "ann 123", "anna 123", '"an"', "{ann}", "ann:", "ann*", "ann OR",
               "%an", "_an", "x.de", "@xa", "12", "an", "É"]
    queries += [random_text(rng, 5) for _ in range(300)]
    if db.engine.dialect.name == "sqlite":  # PostgreSQL refuses a NUL in any text, searched or stored
        queries += ["nna\x00x", "\x00ann", "Ann\x00"]
    found_something = 0
    for query in queries:
        expected = ids(query, indexed=False)
        assert ids(query, indexed=True) == expected, repr(query)
        found_something += bool(expected)
    assert found_something > 50  # the comparison is not between two empty answers


def search(query):
    return [c.first_name for c in db.session.scalars(contact_queries.ordered(ContactFilters(q=query)))]


def test_every_kind_of_write_keeps_the_index_in_step(app):
    anna = make_contact(first_name="Annabel", last_name="Quist", phone="+4915112345678")
    db.session.commit()
    assert search("annab") == ["Annabel"]
    # Through the ORM: a new name, a new phone.
    anna.first_name, anna.phone = "Roswitha", "+4930999888"
    db.session.commit()
    assert search("annab") == [] and search("roswi") == ["Roswitha"]
    assert search("0151 1234") == [] and search("030 999 888") == ["Roswitha"]
    # Set-based writes (imports, merges, erasure) go round the ORM.
    db.session.execute(insert(Contact).values(first_name="Core", last_name="Inserted", email="core@bulk.example"))
    db.session.execute(update(Contact).where(Contact.id == anna.id).values(company="Zebra Teas"))
    db.session.commit()
    assert search("bulk.ex") == ["Core"] and search("zebra") == ["Roswitha"]
    db.session.execute(delete(Contact).where(Contact.email == "core@bulk.example"))
    db.session.commit()
    assert search("bulk.ex") == []
    if db.engine.dialect.name == "sqlite":
        indexed = db.session.scalar(text("SELECT count(*) FROM contact_search"))
        assert indexed == db.session.scalar(select(db.func.count()).select_from(Contact)) == 1


def _plan(statement) -> str:
    sql = str(statement.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True}))
    if db.engine.dialect.name == "sqlite":
        return "\n".join(str(row[-1]) for row in db.session.execute(text("EXPLAIN QUERY PLAN " + sql)))
    # A handful of rows in a test: PostgreSQL would rightly read them all. Ask what it can do.
    db.session.execute(text("SET LOCAL enable_seqscan = off"))
    db.session.execute(text("SET LOCAL enable_sort = off"))
    return "\n".join(row[0] for row in db.session.execute(text("EXPLAIN " + sql)))


@pytest.mark.parametrize("query", ["schmidt", "anna schmidt", "0151 2345", "ann 1234"])
def test_a_search_of_three_characters_or_more_reads_the_index(app, query):
    make_contact(first_name="Anna", last_name="Schmidt", phone="+4915123456789")
    db.session.commit()
    plan = _plan(contact_queries.ordered(ContactFilters(q=query)).limit(51))
    if db.engine.dialect.name == "sqlite":
        assert "contact_search VIRTUAL TABLE INDEX" in plan, plan
        assert "SCAN contacts" not in plan, plan
    else:
        assert "_trgm" in plan, plan


def test_a_fragment_of_two_characters_is_scanned_as_before(app):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("which plan PostgreSQL picks for two letters is its own business")
    plan = _plan(contact_queries.ordered(ContactFilters(q="an")).limit(51))
    assert "contact_search" not in plan, plan


def test_sorting_by_last_order_reads_an_index(app):
    plan = _plan(contact_queries.ordered(ContactFilters(sort="last_order")).limit(51))
    if db.engine.dialect.name == "sqlite":
        assert "ix_contacts_last_order_at" in plan and "TEMP B-TREE" not in plan, plan
    else:
        assert "ix_contacts_last_order_sort" in plan and "Sort" not in plan, plan
