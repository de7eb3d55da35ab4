"""The migrations build exactly the models' schema, and SQLite is set up for concurrent use."""
import threading
from datetime import datetime, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select, text

from crm.extensions import db
from crm.models import Contact, search_index


def test_migrations_and_models_agree(app):
    # The options `crm db migrate` compares with: the search index, which each database builds its
    # own way in migration 0003_search, is left out (crm/models/search_index.py).
    opts = dict(app.extensions["migrate"].configure_args)
    assert opts["include_object"] is search_index.include_object
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts=opts)
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_the_search_index_and_its_triggers_exist(app):
    """A batch migration that rebuilds contacts on SQLite would drop the triggers silently."""
    inspector = db.inspect(db.session.connection())
    if db.engine.dialect.name == "sqlite":
        triggers = set(db.session.scalars(text(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'contacts'")))
        assert set(search_index.FTS_TRIGGERS) <= triggers
        assert search_index.FTS_TABLE in inspector.get_table_names()
    else:
        indexes = {index["name"] for index in inspector.get_indexes("contacts")}
        assert set(search_index.TRIGRAM_INDEXES) | {search_index.LAST_ORDER_SORT_INDEX} <= indexes


def test_the_order_lines_copies_triggers_exist(app):
    """Migration 0018_line_mirror: the lines' copies of their order's contact, date and status are
    kept by triggers (tests/test_order_line_mirror.py checks what they do); a batch migration
    that rebuilds order_lines or orders on SQLite would drop them silently."""
    if db.engine.dialect.name == "sqlite":
        triggers = set(db.session.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))
        expected = {"order_lines_mirror_insert", "order_lines_mirror_update", "orders_lines_mirror_update"}
    else:
        triggers = set(db.session.scalars(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")))
        expected = {"order_lines_mirror", "orders_lines_mirror"}
    assert expected <= triggers


def test_every_table_of_the_data_model_exists(app):
    expected = {
        "users", "contacts", "tags", "contact_tags", "contact_external_ids", "orders", "order_lines",
        "interactions", "tasks", "stage_changes", "score_history", "audit_entries",
        "webhook_deliveries", "import_runs", "import_rejections", "settings", "api_tokens",
    }
    inspector = db.inspect(db.engine)
    assert expected <= set(inspector.get_table_names())


def test_sqlite_runs_in_wal_with_foreign_keys_and_a_busy_timeout(app):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert db.session.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
    # Read through a memory map (SQLITE_MMAP_BYTES): a big index's pages without a read call each.
    assert db.session.execute(text("PRAGMA mmap_size")).scalar() == app.config["SQLITE_MMAP_BYTES"]


def test_foreign_keys_are_enforced(app):
    from sqlalchemy.exc import IntegrityError

    from crm.models import Order

    db.session.add(Order(contact_id=999_999, source="x", external_id="1", number="#1",
                         placed_at=datetime(2025, 1, 1, tzinfo=timezone.utc)))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_concurrent_writers_wait_instead_of_failing(app):
    """Eight threads each write 25 contacts in small transactions: no error, no lost row."""
    errors = []

    def writer(n):
        try:
            with app.app_context():
                for i in range(25):
                    db.session.add(Contact(email=f"w{n}-{i}@example.com", first_name="W", last_name=str(n)))
                    # Read then write in one transaction: the pattern that fails
                    # with "database is locked" when transactions begin deferred.
                    db.session.execute(select(func.count()).select_from(Contact)).scalar()
                    db.session.commit()
                db.session.remove()
        except Exception as error:  # collected and asserted below
            errors.append(repr(error))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert db.session.scalar(select(func.count()).select_from(Contact)) == 200
