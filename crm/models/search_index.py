"""The contact search index, which lives outside the models because each database builds it its own way.

SQLite: an FTS5 table with the trigram tokenizer (`contact_search`, rowid = contacts.id), kept
current by triggers on contacts, so every writer (forms, API, imports, merges, erasure, raw SQL)
keeps it in step. The phone column holds the phone's digits only (separators removed: a
run of digits stays a run, so the index finds every phone the LIKE on the stored phone finds).

PostgreSQL: pg_trgm GIN indexes on the searched columns, used by the same ILIKE the search has
always run, and an index in the "last order" sort's own order (NULLs last).

Both are made by migration 0007_search.py (revision 0003_search); the models cannot declare them, so the schema comparison
(Alembic autogenerate and tests/test_schema.py) leaves them out through `include_object`.
"""
from __future__ import annotations

FTS_TABLE = "contact_search"
# The columns the search reads, in the FTS table and (as GIN trigram indexes) on PostgreSQL.
TEXT_COLUMNS = ("first_name", "last_name", "email", "company")
PHONE_COLUMN = "phone"
FTS_TRIGGERS = ("contacts_search_insert", "contacts_search_delete", "contacts_search_update")
TRIGRAM_INDEXES = tuple(f"ix_contacts_{column}_trgm" for column in TEXT_COLUMNS + (PHONE_COLUMN,))
LAST_ORDER_SORT_INDEX = "ix_contacts_last_order_sort"
# FTS5 keeps its data in shadow tables named after the virtual table.
FTS_SHADOW_SUFFIXES = ("", "_data", "_idx", "_content", "_docsize", "_config")
NOT_IN_MODELS = frozenset({FTS_TABLE + suffix for suffix in FTS_SHADOW_SUFFIXES}
                          | set(TRIGRAM_INDEXES) | {LAST_ORDER_SORT_INDEX})


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's filter: compare everything but the search index's tables and indexes."""
    return name not in NOT_IN_MODELS
