"""Clear errors before setup: every `crm` command on a database that was never migrated answers in one line."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from crm.cli import BEFORE_MIGRATION, main

# The least each command needs to get as far as the database.
ARGUMENTS = {
    "api-token create": ["--user", "a@example.com", "--name", "Zapier"],
    "create-user": ["--email", "a@example.com", "--name", "A", "--role", "admin", "--password", "long enough pw"],
    "demo": [],
    "email bounces": ["{file}"],
    "email send": [],
    "email test": ["someone@example.com"],
    "flows run": [],
    "import": ["orders", "{file}"],
    "predict": [],
    "privacy erase": ["1", "--yes"],
    "privacy export": ["1"],
    "refresh": [],
    "rebuild-summaries": [],
    "worker": ["--burst"],
    "backup": [],
}


def listed(args):
    """Return the command names a help page lists."""
    output = CliRunner().invoke(main, [*args, "--help"]).output
    section = output.split("Commands:", 1)[1]
    return [line.split()[0] for line in section.splitlines() if line.startswith("  ") and line.strip()]


def every_command():
    """Yield the name of every command `crm --help` lists (subcommands of groups spelt out)."""
    for name in listed([]):
        output = CliRunner().invoke(main, [name, "--help"]).output
        if "Commands:" in output:
            yield from (f"{name} {sub}" for sub in listed([name]))
        else:
            yield name


def test_every_listed_command_is_covered():
    runnable = {name for name in every_command() if name.split()[0] not in BEFORE_MIGRATION - {"backup"}}
    assert runnable == set(ARGUMENTS), "give the new command's arguments here"


@pytest.mark.parametrize("name", sorted(ARGUMENTS))
def test_a_command_on_an_unmigrated_database_says_run_db_upgrade_in_one_line(name, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    monkeypatch.setenv("CRM_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SECRET_KEY", "x")
    orders = tmp_path / "orders.csv"
    orders.write_text("order_id,email,placed_at,total\n1,a@example.com,2026-01-01,10\n")
    args = [*name.split(), *(a.replace("{file}", str(orders)) for a in ARGUMENTS[name])]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "run `crm db upgrade` first" in lines[0]
    if name == "backup":
        assert "is not a CRM database" in lines[0] and "nothing was backed up" in lines[0]


def test_help_lists_only_the_crm_s_commands():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for internal in ("shell", "routes", "limiter", "--env-file", "--app"):
        assert internal not in result.output
    for own in ("import", "refresh", "backup", "worker", "db ", "run "):
        assert own in result.output
    assert "Create API tokens (revoke them on Settings → API tokens)." in result.output
