"""Whether the database has the CRM's tables yet, and building them on a first run."""
from __future__ import annotations

from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError

from crm.extensions import db

UPGRADE_HINT = "The database has no CRM tables yet: run `crm db upgrade` first."


def is_migrated() -> bool:
    """Whether the database holds the CRM's schema (its users and settings tables)."""
    try:
        names = set(inspect(db.session.connection()).get_table_names())
    except SQLAlchemyError:
        db.session.rollback()
        return False
    return {"users", "settings", "alembic_version"} <= names


def is_empty() -> bool:
    """Whether the database has no tables at all (a fresh file, a new PostgreSQL database)."""
    try:
        return not inspect(db.session.connection()).get_table_names()
    except SQLAlchemyError:
        db.session.rollback()
        return False


def migrate_empty_database() -> str | None:
    """Build the schema when the database is empty and SQLite (the embedded default); return
    None when it is ready, else what a person must do (one sentence)."""
    if not is_empty():
        return ("This database has tables, but not the CRM's (or an older version of them): "
                "run `crm db upgrade`, or point DATABASE_URL at the CRM's database.")
    if db.engine.dialect.name != "sqlite":
        return "The database is empty: run `crm db upgrade` (or `make run`) once to create the CRM's tables."
    from flask_migrate import upgrade

    upgrade()
    db.session.remove()
    return None if is_migrated() else UPGRADE_HINT
