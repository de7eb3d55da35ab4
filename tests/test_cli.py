"""The `crm` command: every command documented, users, demo data and tokens."""
from sqlalchemy import func, select

from crm.cli import main
from crm.extensions import db
from crm.models import Contact, Interaction, Order, User


def test_every_command_has_one_line_of_help(runner):
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    commands = result.output.split("Commands:")[1].strip().splitlines()
    names = {line.split()[0] for line in commands}
    assert {"run", "db", "create-user", "demo", "api-token"} <= names
    for line in commands:
        assert len(line.split()) > 1, f"command without help: {line}"


def test_create_user_with_password_option(runner):
    result = runner.invoke(args=["create-user", "--email", "S@Example.com", "--name", "Sam", "--role", "sales", "--password", "long enough pass"])
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User))
    assert (user.email, user.role) == ("s@example.com", "sales")


def test_create_user_prompts_for_the_password(runner):
    result = runner.invoke(args=["create-user", "--email", "p@example.com", "--name", "P"], input="long enough pass\nlong enough pass\n")
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(User)).check_password("long enough pass")


def test_create_user_reports_bad_fields(runner):
    result = runner.invoke(args=["create-user", "--email", "bad", "--name", "P", "--password", "short"])
    assert result.exit_code == 1
    assert "email:" in result.output and "password:" in result.output
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def _counts():
    return tuple(db.session.scalar(select(func.count()).select_from(m)) for m in (Contact, Order, Interaction))


def test_demo_is_deterministic_for_a_seed(runner, app):
    from datetime import date

    from crm.services.shop import demo

    demo.generate(contacts=60, seed=7, today=date(2026, 6, 1))
    db.session.commit()
    first = _counts()
    emails = list(db.session.scalars(select(Contact.email).order_by(Contact.id)))
    totals = list(db.session.scalars(select(Order.total).order_by(Order.id)))
    from tests.conftest import _empty_all_tables

    _empty_all_tables()
    demo.generate(contacts=60, seed=7, today=date(2026, 6, 1))
    db.session.commit()
    assert _counts() == first
    assert list(db.session.scalars(select(Contact.email).order_by(Contact.id))) == emails
    assert list(db.session.scalars(select(Order.total).order_by(Order.id))) == totals


def test_demo_command_fills_an_empty_database_only(runner):
    result = runner.invoke(args=["demo", "--contacts", "40", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert _counts()[0] == 40 and _counts()[1] > 0
    again = runner.invoke(args=["demo", "--contacts", "40"])
    assert again.exit_code != 0 and "already has contacts" in again.output
    assert _counts()[0] == 40


def test_api_token_create_prints_the_token_last_and_stores_its_hash(runner):
    from tests.conftest import make_user

    make_user("sales")
    result = runner.invoke(args=["api-token", "create", "--user", "sales@example.com", "--name", "Zapier"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("crm_") and len(token) > 30
    from crm.models import ApiToken

    stored = db.session.scalar(select(ApiToken))
    assert stored.token_hash != token and token not in stored.token_hash
    from crm.services.staff import api_tokens

    assert api_tokens.authenticate(token).email == "sales@example.com"


def test_starting_the_app_leaves_alembic_unloaded_until_a_migration_runs(app, runner):
    """Alembic is a good part of every process's start-up; only `crm db …` and the first run need it."""
    import subprocess
    import sys

    from tests.helpers import ROOT

    started = subprocess.run(
        [sys.executable, "-c", "import sys; from crm import create_app; "
         "create_app({'SQLALCHEMY_DATABASE_URI': 'sqlite://', 'SECRET_KEY': 'x'}); "
         "print(sorted(name for name in sys.modules if name.split('.')[0] in ('alembic', 'flask_migrate')))"],
        cwd=ROOT, capture_output=True, text=True, check=True)
    assert started.stdout.strip() == "[]"
    # Bound on first use, with the project's options.
    result = runner.invoke(args=["db", "current"])
    assert result.exit_code == 0, result.output
    assert "Context impl" in result.output  # Alembic ran, on the app's database
    assert app.extensions["migrate"].migrate.alembic_ctx_kwargs["render_as_batch"] is True
