"""Backups: a consistent copy of the live SQLite database, and a restore that checks the file first."""
from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import make_url

SQLITE_HEADER = b"SQLite format 3\x00"
# Tables a CRM database has whatever its schema revision.
CORE_TABLES = {"alembic_version", "contacts", "users", "orders", "interactions"}


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message says why and what to do."""


def sqlite_file(url) -> Path | None:
    """Return the file of a SQLite database URL, or None for PostgreSQL or an in-memory database."""
    url = make_url(str(url))
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def backup_name(now: datetime) -> str:
    return f"crm-{now:%Y%m%d-%H%M%S}.sqlite3"


def default_backup_path(instance_path: str | Path, now: datetime) -> Path:
    return Path(instance_path) / "backups" / backup_name(now)


def _copy(source: sqlite3.Connection, target: Path) -> None:
    destination = sqlite3.connect(target)
    try:
        # One step: the copy is a single read transaction, a consistent snapshot, while
        # WAL lets the running app keep writing.
        source.backup(destination)
        destination.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
    finally:
        destination.close()


def backup_sqlite(live: Path, target: Path) -> Path:
    """Copy a live SQLite database to `target` with the online backup API and return the path."""
    if not live.is_file():
        raise BackupError(f"There is no database file at {live}.")
    if target.exists():
        raise BackupError(f"{target} already exists; choose another name.")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(live)
    try:
        _copy(source, partial)
    finally:
        source.close()
    partial.replace(target)  # a half-written file never carries the final name
    return target


def pg_dump_command(url, target: str) -> list[str]:
    """Return the pg_dump arguments that back up a PostgreSQL URL (never with its password)."""
    url = make_url(str(url))
    command = ["pg_dump", "--format=custom", "--no-owner"]
    if url.host:
        command += ["--host", url.host]
    if url.port:
        command += ["--port", str(url.port)]
    if url.username:
        command += ["--username", url.username]
    return command + ["--file", target, url.database or ""]


def migration_revisions(migrations_dir: str | Path) -> tuple[set[str], str | None]:
    """Return every schema revision the migrations know, and the newest (head) one."""
    from alembic.script import ScriptDirectory  # here: Alembic is 0.6 s of every process's start-up

    script = ScriptDirectory(str(migrations_dir))
    return {revision.revision for revision in script.walk_revisions()}, script.get_current_head()


def _open_read_only(path: Path) -> sqlite3.Connection:
    # immutable=1 reads the file as it is: no -wal or -shm is made beside a backup.
    return sqlite3.connect(f"file:{path.resolve()}?mode=ro&immutable=1", uri=True)


def check_backup(path: Path, known_revisions: set[str]) -> str:
    """Return the schema revision of a CRM backup file, or raise BackupError saying what is wrong."""
    if not path.is_file():
        raise BackupError(f"{path} is not a file.")
    with path.open("rb") as file:
        if file.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise BackupError(f"{path} is not a SQLite database; nothing was restored.")
    try:
        connection = _open_read_only(path)
        try:
            if connection.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise BackupError(f"{path} is damaged (SQLite's check failed); nothing was restored.")
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not CORE_TABLES <= tables:
                raise BackupError(f"{path} is a SQLite database but not a CRM one "
                                  f"(it lacks {', '.join(sorted(CORE_TABLES - tables))}); nothing was restored.")
            revisions = [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        raise BackupError(f"{path} cannot be read as a SQLite database ({error}); nothing was restored.") from error
    if len(revisions) != 1:
        raise BackupError(f"{path} has no single schema version; nothing was restored.")
    if revisions[0] not in known_revisions:
        raise BackupError(f"{path} has schema version {revisions[0]}, which this version of the CRM does not know "
                          "(it was made by a newer one?); nothing was restored.")
    return revisions[0]


def check_live_database(live: Path) -> None:
    """Raise BackupError unless the live file is a CRM database (an empty file or another
    program's database would make a "backup" that restores nothing)."""
    if not live.is_file():
        raise BackupError(f"There is no database file at {live}; nothing was backed up.")
    with live.open("rb") as file:
        if file.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise BackupError(f"{live} is not a SQLite database, so not a CRM database; nothing was backed up.")
    try:
        # Not immutable: the live database's newest pages may still be in its -wal file.
        connection = sqlite3.connect(f"{live.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        raise BackupError(f"{live} cannot be read as a SQLite database ({error}); nothing was backed up.") from error
    if not CORE_TABLES <= tables:
        raise BackupError(f"{live} is not a CRM database (it lacks {', '.join(sorted(CORE_TABLES - tables))}): "
                          "run `crm db upgrade` first; nothing was backed up.")


def restore_sqlite(backup: Path, live: Path) -> Path | None:
    """Replace the live database's content with a checked backup; return where the old one was kept.

    The previous database is first copied to `<live>.before-restore`. The content is
    written with the backup API into the live file, so the app's -wal and -shm files stay
    consistent with it instead of being left over from the old database.
    """
    kept = None
    if live.is_file():
        kept = live.with_name(live.name + ".before-restore")
        kept.unlink(missing_ok=True)
        backup_sqlite(live, kept)
    source = _open_read_only(backup)
    try:
        destination = sqlite3.connect(live)
        try:
            source.backup(destination)
        finally:
            destination.close()
    finally:
        source.close()
    return kept


BACKUP_PATTERN = "crm-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]-[0-9][0-9][0-9][0-9][0-9][0-9].sqlite3"


def prune_backups(folder: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` dated backups (crm-YYYYmmdd-HHMMSS.sqlite3) in a folder;
    return the deleted ones. Files named otherwise are never touched."""
    dated = sorted(Path(folder).glob(BACKUP_PATTERN), key=lambda path: path.name)
    doomed = dated[:-keep] if keep > 0 else dated
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed
