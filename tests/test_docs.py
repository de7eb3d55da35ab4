"""The documentation tells the truth: every `crm` command, every setting and every environment
variable the code reads is documented in README.md or docs/, and the configuration tables name
each setting once and only settings that exist."""
from __future__ import annotations

import re

import click
import pytest

from crm.config import DEFAULTS
from tests.helpers import ROOT

DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NAME = r"[A-Z][A-Z0-9_]+"
# Settings that are not the shop's to set: the test suite's switch, and the database URL the CRM
# derives from DATABASE_URL (documented under that name).
NOT_SETTINGS = {"TESTING", "SQLALCHEMY_DATABASE_URI"}


def _docs() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in DOC_FILES)


def _code(*patterns: str) -> str:
    return "\n".join(path.read_text(encoding="utf-8") for pattern in patterns for path in sorted(ROOT.glob(pattern)))


def _mentioned(name: str, text: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_-]){re.escape(name)}(?![A-Za-z0-9_-])", text) is not None


def _command_paths(command: click.Command, path: str) -> list[str]:
    paths = [path]
    if isinstance(command, click.Group) and command.callback is not None \
            and (command.callback.__module__ or "").startswith("crm."):
        for name, sub in sorted(command.commands.items()):
            paths += _command_paths(sub, f"{path} {name}")
    return paths


def commands(app) -> list[str]:
    """Every `crm` command and subcommand the CRM defines (a third-party group, such as
    Flask-Migrate's `db`, by its name only)."""
    paths: list[str] = []
    for name, command in sorted(app.cli.commands.items()):
        paths += _command_paths(command, f"crm {name}")
    return paths


def settings() -> set[str]:
    """Every setting: crm/config.py's defaults and every key the code reads from the config."""
    code = _code("crm/**/*.py")
    read = re.findall(rf'config(?:\.get\(|\[|\.setdefault\()\s*"({NAME})"', code)
    # Keys looked up through a table, e.g. webhooks.CONFIG_KEYS = {"shopify": "SHOPIFY_WEBHOOK_SECRET"}.
    tables = re.findall(r"CONFIG_KEYS\s*=\s*\{([^}]*)\}", code)
    looked_up = re.findall(rf'"({NAME})"', " ".join(tables))
    return (set(DEFAULTS) | set(read) | set(looked_up)) - NOT_SETTINGS


def environment_variables() -> set[str]:
    """Every CRM_* variable named in the code, the Makefile or CI, and every one the code reads."""
    code = _code("crm/**/*.py", "Makefile", ".ci/*")
    named = set(re.findall(r"\bCRM_[A-Z][A-Z0-9_]*", code))
    read = re.findall(rf'(?:environ(?:\.get\(|\[)|getenv\()\s*"({NAME})"', _code("crm/**/*.py"))
    return named | set(read)


def test_the_helpers_find_what_they_should(app):
    assert {"crm demo", "crm privacy erase", "crm api-token create", "crm db"} <= set(commands(app))
    assert {"SHOP_TIMEZONE", "API_MAX_BODY", "PHONE_REGION", "SHOPIFY_WEBHOOK_SECRET"} <= settings()
    assert {"SECRET_KEY", "DATABASE_URL", "CRM_SHOP_TIMEZONE"} <= environment_variables()


def test_every_crm_command_is_documented(app):
    docs = _docs()
    missing = [path for path in commands(app) if not _mentioned(path, docs)]
    assert not missing, f"undocumented commands (add them to README.md or docs/): {missing}"


def test_every_setting_is_documented():
    docs = _docs()
    missing = sorted(name for name in settings() if not _mentioned(name, docs))
    assert not missing, f"undocumented settings (add a row to the configuration table): {missing}"


def test_every_environment_variable_is_documented():
    docs = _docs()
    missing = sorted(name for name in environment_variables() if not _mentioned(name, docs))
    assert not missing, f"undocumented environment variables: {missing}"


def _configuration_rows() -> list[tuple[str, list[str]]]:
    """(file, setting names) for each row of a table whose header starts with `setting`."""
    rows = []
    for path in DOC_FILES:
        in_table = False
        for line in path.read_text(encoding="utf-8").splitlines():
            if re.match(r"\|\s*setting\s*\|", line, re.IGNORECASE):
                in_table = True
                continue
            if not line.startswith("|"):
                in_table = False
            elif in_table and not re.match(r"\|\s*-", line):
                first_cell = line.split("|")[1]
                rows.append((path.name, re.findall(rf"`({NAME})`", first_cell)))
    return rows


def test_configuration_tables_name_each_setting_once_and_only_real_ones():
    rows = _configuration_rows()
    assert rows, "no configuration table (a table whose first column is `setting`)"
    named = [name for _file, names in rows for name in names]
    twice = sorted({n for n in named if named.count(n) > 1})
    known = settings() | environment_variables() | {"DATABASE_URL", "SECRET_KEY"}
    orphans = sorted(set(named) - known)
    assert (twice, orphans) == ([], []), f"listed twice: {twice}; rows for settings the code does not have: {orphans}"


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: p.name)
def test_links_between_the_docs_lead_somewhere(path):
    text = path.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(((?!https?:|#|mailto:)[^)#\s]+)", text):
        assert (path.parent / target).exists(), f"{path.name} links to {target}, which is not there"
