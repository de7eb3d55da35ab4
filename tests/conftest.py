"""Fixtures: an app on a migrated database (SQLite by default, PostgreSQL with
TEST_DATABASE_URL), emptied after every test, a client, a CLI runner and users."""
from __future__ import annotations

import os
import tempfile

import pytest
from flask import g
from flask.testing import FlaskClient
from sqlalchemy import create_engine, make_url, text

from crm import create_app
from crm.extensions import db
from tests.helpers import PASSWORD, count_queries, make_user, soup, text_of  # noqa: F401  (shared with the modules)



def _compile_each_url_builder_once():
    """Every test makes its own app, and Werkzeug writes, parses and compiles two URL-builder functions
    for each of the app's routes as it adds them: nine tenths of create_app. A builder is a function of
    its route alone (the rule, its parsed parts, its defaults; converters are read through `self` when
    called), so the suite compiles each route's once and hands every later app the same function."""
    from werkzeug.routing.rules import Rule

    compile_builder = getattr(Rule, "_compile_builder", None)
    if compile_builder is None:  # a Werkzeug that builds URLs another way: each app compiles its own
        return
    built = {}

    def _compile_builder(self, append_unknown=True):
        try:
            key = (self.rule, tuple(self._trace), tuple(sorted((self.defaults or {}).items())), append_unknown)
            if key not in built:
                built[key] = compile_builder(self, append_unknown)
            return built[key]
        except TypeError:  # a default that cannot be a key: build it as Werkzeug would
            return compile_builder(self, append_unknown)

    Rule._compile_builder = _compile_builder


_compile_each_url_builder_once()


def _temporary_files_in_memory():
    """Each test makes its own files (a SQLite database, a job queue, exports) and throws them away.
    On a disk every commit, WAL switch and close waits for fsync (a third of a small test's time);
    in a memory file system (/dev/shm, where Linux has one) it does not. TMPDIR set by the caller wins."""
    if os.environ.get("TMPDIR"):
        return
    memory = "/dev/shm"
    if os.path.isdir(memory) and os.access(memory, os.W_OK | os.X_OK):
        tempfile.tempdir = memory
        os.environ["TMPDIR"] = memory  # the commands and workers the tests start write there too


_temporary_files_in_memory()


def pytest_collection_modifyitems(config, items):
    """The longest tests (marked slow) first: on two cores, a 30-second test that starts last leaves
    the other worker idle for its length; started first, the short ones fill in around it.

    On the PostgreSQL run, a test that touches no database (a reader, a model, a file import into
    its own SQLite file) would only repeat itself: it runs once, in the SQLite suite, and says so."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: the rest keep their order
    if not os.environ.get("TEST_DATABASE_URL"):
        return
    repeat = pytest.mark.skip(reason="touches no database (no app fixture): it runs in the SQLite suite")
    for item in items:
        if not {"_migrated", "database_url"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(repeat)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        yield "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.sqlite3")
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        yield url
        return
    # Under pytest-xdist each worker empties its tables after every test: give it a database of its own.
    server = make_url(url)
    own = server.set(database=f"{server.database}_{worker}")
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{own.database}"'))
        connection.execute(text(f'CREATE DATABASE "{own.database}"'))
        # A throwaway database: a commit need not wait for the server's log to reach the disk.
        connection.execute(text(f'ALTER DATABASE "{own.database}" SET synchronous_commit TO off'))
    yield own.render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{own.database}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def _migrated(database_url, tmp_path_factory):
    """Build the schema once per run, through the migrations, as a shop's install would."""
    from flask_migrate import upgrade

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True,
                      "JOBS_SQLITE_PATH": str(tmp_path_factory.mktemp("queue") / "jobs.sqlite3")})
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            db.session.commit()
        upgrade()
    return database_url


def _empty_all_tables():
    tables = [t for t in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        # DELETE in dependency order and the sequences back to 1: what TRUNCATE … RESTART IDENTITY
        # does, at about 2 ms instead of 120 (TRUNCATE makes new files for every table), twice a test.
        connection = db.session.connection()
        connection.exec_driver_sql("; ".join(f'DELETE FROM "{t.name}"' for t in tables))
        sequences = connection.exec_driver_sql(
            "SELECT quote_ident(sequencename) FROM pg_sequences WHERE schemaname = current_schema()").scalars().all()
        if sequences:
            connection.exec_driver_sql("SELECT " + ", ".join(f"setval('{name}', 1, false)" for name in sequences))
    else:
        for table in tables:
            db.session.execute(table.delete())
        # The planner's statistics of a test that ran ANALYZE (crm refresh, a big import) describe its
        # handful of rows and would steer the next test's plans: forget them, as a new database has none.
        for (name,) in db.session.execute(text("SELECT name FROM sqlite_master WHERE name LIKE 'sqlite_stat%'")):
            db.session.execute(text(f"DELETE FROM {name}"))
    db.session.commit()


@pytest.fixture
def app_config():
    """Override per test module to change the app's configuration."""
    return {}


@pytest.fixture
def app(_migrated, app_config, tmp_path):
    config = {
        "SQLALCHEMY_DATABASE_URI": _migrated,
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "WTF_CSRF_ENABLED": False,
        "SERVER_NAME": "localhost",
        # Each test its own job queue, so nothing queued by one test runs in another.
        "JOBS_SQLITE_PATH": str(tmp_path / "jobs.sqlite3"),
        # `crm worker --burst` runs what the test queued, not the nightly jobs whose time it may be.
        "JOBS_BURST_SCHEDULES": False,
    }
    config.update(app_config)
    app = create_app(config)
    with app.app_context():
        _empty_all_tables()
        from crm.services import shop

        shop.forget()  # the app read the shop settings before the tables were emptied
        shop.current()
        db.session.rollback()  # end the read, so no lock is held while the test runs
        yield app
        db.session.rollback()
        _empty_all_tables()
        db.session.remove()
        db.engine.dispose()  # each test's app has its own pool; hand its connections back now


class Client(FlaskClient):
    """A test client whose requests share the test's app context and database
    session (so tests can look at what a request wrote), but not the user that
    Flask-Login caches on `g`: each request loads its user afresh, as in production."""

    def open(self, *args, **kwargs):
        g.pop("_login_user", None)
        return super().open(*args, **kwargs)


@pytest.fixture
def client(app):
    app.test_client_class = Client
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def worker_environment(app) -> dict[str, str]:
    """Return the environment a `crm` subprocess needs to use this test's database and queue."""
    import json

    env = {key: value for key, value in os.environ.items() if not key.startswith("CRM_")}
    env["DATABASE_URL"] = app.config["SQLALCHEMY_DATABASE_URI"]
    env["SECRET_KEY"] = app.config["SECRET_KEY"]
    env["CRM_INSTANCE_PATH"] = os.path.abspath(app.instance_path)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    for key in ("JOBS_SQLITE_PATH", "JOBS_QUEUE_NAME", "REDIS_URL", "SHOP_TIMEZONE", "SHOP_CURRENCY",
                "JOBS_EXTRA_MODULES", "JOBS_STALE_AFTER", "IMPORT_BATCH_SIZE",
                "JOBS_BURST_SCHEDULES", "JOBS_FIGURES_DELAY"):
        value = app.config.get(key)
        if value is not None:
            env["CRM_" + key] = value if isinstance(value, str) else json.dumps(value)
    return env


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRM_COMMAND = os.path.join(os.path.dirname(os.path.abspath(__import__("sys").executable)), "crm")


@pytest.fixture
def run_worker(app):
    """Run `crm worker --burst` (or other `crm worker` arguments) as a real subprocess against the
    test's database and queue; return its CompletedProcess. Commits the test's session first and
    expires it after, so the test sees what the worker wrote."""
    import subprocess

    def run(*args, timeout=120, check=True):
        db.session.commit()
        result = subprocess.run([CRM_COMMAND, "worker", *(args or ("--burst",))], env=worker_environment(app),
                                cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        db.session.expire_all()
        if check and result.returncode != 0:
            raise AssertionError(f"crm worker exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    return run


@pytest.fixture(scope="module")
def smtp_server():
    """A real SMTP server (aiosmtpd on 127.0.0.1, tests/smtp_server.py) for the test module."""
    from tests.smtp_server import SMTPServer

    with SMTPServer() as server:
        yield server


@pytest.fixture
def smtp(smtp_server):
    """The module's SMTP server with its mailbox and refusals emptied before each test."""
    smtp_server.messages.clear()
    smtp_server.answers.clear()
    smtp_server.handler.on_data = None
    return smtp_server


@pytest.fixture
def users_by_role(app):
    return {role: make_user(role) for role in ("admin", "sales", "support", "viewer")}


class Auth:
    def __init__(self, client):
        self.client = client

    def login(self, email="admin@example.com", password=PASSWORD):
        return self.client.post("/login", data={"email": email, "password": password})

    def as_role(self, role):
        """Sign in through the login form as a user of this role, creating them if needed."""
        make_user(role)
        response = self.login(f"{role}@example.com")
        assert response.status_code == 302, response.get_data(as_text=True)
        return self.client

    def logout(self):
        return self.client.post("/logout")


@pytest.fixture
def auth(client):
    return Auth(client)


@pytest.fixture(name="count_queries")
def count_queries_fixture(app):
    """The count_queries context manager, for tests that bound the queries of a page."""
    return count_queries


@pytest.fixture
def in_dutch(app):
    """A request whose reader reads Dutch: gettext, Babel's formats and Said strings answer in Dutch."""
    from flask_babel import force_locale

    with app.test_request_context(headers={"Accept-Language": "nl"}), force_locale("nl"):
        yield
