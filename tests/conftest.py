"""Fixtures: an app on a migrated database (SQLite by default, PostgreSQL with
TEST_DATABASE_URL), emptied after every test, a client, a CLI runner and users."""
from __future__ import annotations

import os

import pytest
from flask import g
from flask.testing import FlaskClient
from sqlalchemy import create_engine, make_url, text

from crm import create_app
from crm.extensions import db
from tests.helpers import PASSWORD, count_queries, make_user, soup, text_of  # noqa: F401  (shared with the modules)



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
    yield own.render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{own.database}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def _migrated(database_url):
    """Build the schema once per run, through the migrations, as a shop's install would."""
    from flask_migrate import upgrade

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True})
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            db.session.commit()
        upgrade()
    return database_url


def _empty_all_tables():
    tables = [t for t in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in tables)
        db.session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            db.session.execute(table.delete())
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
    }
    config.update(app_config)
    app = create_app(config)
    with app.app_context():
        _empty_all_tables()
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
