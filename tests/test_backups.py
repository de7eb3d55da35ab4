"""`crm backup` and `crm restore`: an online copy of the live SQLite file, and a restore that checks first."""
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.models import Contact, Interaction
from crm.services.shop import backups

CONTACT_EMAILS = select(Contact.email).order_by(Contact.id)


@pytest.fixture
def sqlite_only(app):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("a SQLite file backup; PostgreSQL gets the pg_dump command")
    return backups.sqlite_file(db.engine.url)


@pytest.fixture
def postgres_only(app):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")


def _add_contact(email):
    db.session.add(Contact(email=email, first_name=email.split("@")[0]))
    db.session.commit()


def _emails():
    db.session.expire_all()
    return list(db.session.scalars(CONTACT_EMAILS))


def _revision(path):
    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    finally:
        connection.close()


def test_backup_writes_a_consistent_copy_and_prints_its_path(runner, sqlite_only, tmp_path):
    _add_contact("kept@example.com")
    target = tmp_path / "nightly.sqlite3"
    result = runner.invoke(args=["backup", str(target)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(target)
    copy = sqlite3.connect(target)
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one self-contained file
    assert [row[0] for row in copy.execute("SELECT email FROM contacts")] == ["kept@example.com"]
    copy.close()
    assert not Path(str(target) + "-wal").exists()


def test_backup_goes_to_the_instance_backups_folder_by_default(app, runner, sqlite_only, tmp_path, monkeypatch):
    monkeypatch.setattr(app, "instance_path", str(tmp_path))
    result = runner.invoke(args=["backup"])
    assert result.exit_code == 0, result.output
    made = Path(result.output.strip())
    assert made.parent == tmp_path / "backups" and made.name.startswith("crm-") and made.suffix == ".sqlite3"
    assert made.is_file()
    into_dir = runner.invoke(args=["backup", str(tmp_path)])
    assert Path(into_dir.output.strip()).parent == tmp_path


def test_backup_never_overwrites_a_file(runner, sqlite_only, tmp_path):
    target = tmp_path / "exists.sqlite3"
    target.write_text("precious")
    result = runner.invoke(args=["backup", str(target)])
    assert result.exit_code != 0 and "already exists" in result.output
    assert target.read_text() == "precious"


def test_backup_while_the_app_writes_is_a_consistent_snapshot(app, sqlite_only, tmp_path):
    _add_contact("busy@example.com")
    contact_id = db.session.scalar(select(Contact.id))
    db.session.commit()  # end this session's transaction: on SQLite it holds the write lock
    stop = threading.Event()
    written = []

    def keep_writing():
        with app.app_context():
            while not stop.is_set():
                db.session.add(Interaction(contact_id=contact_id, kind="note", subject=f"n{len(written)}"))
                db.session.commit()
                written.append(1)
            db.session.remove()

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        for _ in range(2000):
            if len(written) >= 20 or not writer.is_alive():
                break
            stop.wait(0.01)
        copies = [backups.backup_sqlite(sqlite_only, tmp_path / f"copy-{n}.sqlite3") for n in range(3)]
    finally:
        stop.set()
        writer.join()
    counts = []
    for copy in copies:
        connection = sqlite3.connect(copy)
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        counts.append(connection.execute("SELECT count(*) FROM interactions").fetchone()[0])
        connection.close()
    assert 20 <= counts[0] <= counts[1] <= counts[2] <= len(written)


def test_restore_replaces_the_database_and_keeps_the_previous_one(runner, sqlite_only, tmp_path):
    _add_contact("before@example.com")
    backup = tmp_path / "snapshot.sqlite3"
    assert runner.invoke(args=["backup", str(backup)]).exit_code == 0
    _add_contact("after@example.com")
    result = runner.invoke(args=["restore", str(backup), "--yes"])
    assert result.exit_code == 0, result.output
    assert _emails() == ["before@example.com"]
    kept = Path(str(sqlite_only) + ".before-restore")
    assert str(kept) in result.output
    old = sqlite3.connect(kept)
    assert [row[0] for row in old.execute("SELECT email FROM contacts ORDER BY id")] == ["before@example.com", "after@example.com"]
    old.close()
    # The app carries on writing to the restored database.
    _add_contact("later@example.com")
    assert _emails() == ["before@example.com", "later@example.com"]


def test_restore_asks_before_replacing(runner, sqlite_only, tmp_path):
    _add_contact("before@example.com")
    backup = tmp_path / "snapshot.sqlite3"
    runner.invoke(args=["backup", str(backup)])
    _add_contact("after@example.com")
    result = runner.invoke(args=["restore", str(backup)], input="n\n")
    assert result.exit_code != 0 and "Replace the database" in result.output
    assert _emails() == ["before@example.com", "after@example.com"]


def _not_a_crm(path):
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE recipes (id INTEGER PRIMARY KEY, name TEXT)")
    connection.commit()
    connection.close()


def _future_schema(path, live):
    backups.backup_sqlite(live, path)
    connection = sqlite3.connect(path)
    connection.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    connection.commit()
    connection.close()


@pytest.mark.parametrize("make,reason", [
    (lambda path, live: path.write_text("email,name\na@example.com,A\n"), "not a SQLite database"),
    (lambda path, live: _not_a_crm(path), "not a CRM one"),
    (_future_schema, "does not know"),
    (lambda path, live: path.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200), "cannot be read"),
])
def test_restore_refuses_a_file_that_is_not_a_known_crm_database(runner, sqlite_only, tmp_path, make, reason):
    _add_contact("live@example.com")
    kept = Path(str(sqlite_only) + ".before-restore")
    kept.unlink(missing_ok=True)
    bad = tmp_path / "bad.sqlite3"
    make(bad, sqlite_only)
    result = runner.invoke(args=["restore", str(bad), "--yes"])
    assert result.exit_code != 0
    assert reason in result.output and "nothing was restored" in result.output
    assert _emails() == ["live@example.com"]
    assert not kept.exists()


def test_restore_of_a_missing_file_is_refused(runner, sqlite_only, tmp_path):
    result = runner.invoke(args=["restore", str(tmp_path / "nope.sqlite3"), "--yes"])
    assert result.exit_code != 0 and "is not a file" in result.output


def test_the_known_schema_versions_come_from_the_migrations(app):
    known, head = backups.migration_revisions(app.extensions["migrate"].directory)
    assert "0001" in known and head in known


def test_check_backup_names_the_schema_version(app, sqlite_only, tmp_path):
    copy = backups.backup_sqlite(sqlite_only, tmp_path / "ok.sqlite3")
    known, head = backups.migration_revisions(app.extensions["migrate"].directory)
    assert backups.check_backup(copy, known) == _revision(copy) == head


def test_pg_dump_command_names_host_and_database_but_never_the_password():
    command = backups.pg_dump_command("postgresql+psycopg://shop:s3cret@db.internal:5433/crm", "crm.dump")
    assert command[:1] == ["pg_dump"] and command[-1] == "crm"
    assert ["--host", "db.internal"] == command[command.index("--host"):command.index("--host") + 2]
    assert "5433" in command and "shop" in command and "crm.dump" in command
    assert not any("s3cret" in part for part in command)


def test_backup_on_postgresql_prints_the_pg_dump_command(runner, postgres_only):
    result = runner.invoke(args=["backup", "tonight.dump"])
    assert result.exit_code == 0, result.output
    command = result.output.strip().splitlines()[-1]
    assert command.startswith("pg_dump ") and "tonight.dump" in command and db.engine.url.database in command
    if db.engine.url.password:
        assert db.engine.url.password not in result.output


def test_restore_on_postgresql_points_to_pg_restore(runner, postgres_only, tmp_path):
    file = tmp_path / "x.dump"
    file.write_bytes(b"PGDMP")
    result = runner.invoke(args=["restore", str(file), "--yes"])
    assert result.exit_code != 0 and "pg_restore" in result.output


@pytest.mark.parametrize("make,reason", [
    (lambda path: path.write_text("email,name\na@example.com,A\n"), "not a SQLite database"),
    (_not_a_crm, "not a CRM one"),
    (lambda path: path.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200), "cannot be read"),
])
def test_check_backup_explains_what_is_wrong_with_a_file(app, tmp_path, make, reason):
    bad = tmp_path / "bad.sqlite3"
    make(bad)
    known, _head = backups.migration_revisions(app.extensions["migrate"].directory)
    with pytest.raises(backups.BackupError) as caught:
        backups.check_backup(bad, known)
    assert reason in str(caught.value)
