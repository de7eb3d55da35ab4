"""What many test modules share: the sample files, one user factory (with a cheap password
hash), one sign-in, one query counter and the HTML helpers."""
from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

from bs4 import BeautifulSoup
from sqlalchemy import event, select
from werkzeug.security import generate_password_hash

from crm.extensions import db
from crm.models import User

# The repository; no test reads anything outside it.
ROOT = Path(__file__).resolve().parent.parent
# The Shopify and WooCommerce sample files (tests/fixtures/README.md).
FIXTURES = ROOT / "tests" / "fixtures"

PASSWORD = "correct horse battery"
# One iteration: signing in stays a real password check without costing a second per user.
CHEAP_PASSWORD_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1")


def make_user(role: str = "admin", email: str | None = None, name: str | None = None,
              password: str = PASSWORD, active: bool = True) -> User:
    """Return the user with this email (made, committed, if needed) of this role; the password
    hash is cheap, so `password` still signs in through the login form."""
    email = email or f"{role}@example.com"
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        password_hash = CHEAP_PASSWORD_HASH if password == PASSWORD else \
            generate_password_hash(password, method="pbkdf2:sha256:1")
        user = User(email=email, name=name or role.title(), role=role, active=active, password_hash=password_hash)
        db.session.add(user)
        db.session.commit()
    return user


def sign_in(client, role: str = "admin", email: str | None = None) -> User:
    """Sign the client in as a user of this role (made if needed) without the login form."""
    user = make_user(role, email)
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
    return user


# Statements that only open or close a transaction; what a page costs is the rest.
_TRANSACTION_STATEMENTS = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PRAGMA")


@contextmanager
def count_queries():
    """Collect the SQL statements run inside the block (transaction control left out):
    `with count_queries() as statements: ...` then `len(statements)`."""
    statements: list[str] = []

    def _before(_connection, _cursor, statement, _parameters, _context, _executemany):
        if not statement.lstrip().upper().startswith(_TRANSACTION_STATEMENTS):
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", _before)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", _before)


def soup(response) -> BeautifulSoup:
    """Parse an HTML response."""
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def text_of(node) -> str:
    return re.sub(r"\s+", " ", node.get_text(" ")).strip() if node is not None else ""


def dutch(client, role: str = "admin") -> User:
    """Sign the client in as a user of this role who reads Dutch (their own choice on /account)."""
    user = sign_in(client, role)
    user.language = "nl"
    db.session.commit()
    return user


def summary_lines(run) -> list[str]:
    """A run's summary as `crm import` prints it (English)."""
    from flask_babel import force_locale

    from crm.views.import_text import summary_lines as lines

    with force_locale("en"):
        return lines(run)
