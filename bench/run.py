"""The shop-scale benchmark: every timing next to the floor it cannot beat, measured in the same run.

    python -m bench.run                      # small scale: ~2,000 contacts, 20,000 orders
    python -m bench.run --scale full         # 100,000 contacts, 1,000,000 orders, 300,000 interactions
    python -m bench.run --only latency,throughput --json out.json

Measurements (names for --only): import, import-orders (the generic orders CSV), refresh, predict,
latency, throughput, segment, model. A command or page that does not exist yet is reported as "not
available"; the run goes on. Each result carries its target (from the issues) and whether it was
met. Results are printed as a table and written to bench/results/latest.json. SQLite only.
"""
from __future__ import annotations

import argparse
import functools
import http.client
import json
import os
import platform
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np

from bench import floors
from bench.floor_app import replay
from bench.generate import (
    BENCH_USER,
    BUSY_CONTACT_ID,
    SCALES,
    Scale,
    contact,
    load_database,
    migrate,
    scale_from,
    write_generic_csv,
    write_shopify_csv,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
RESULTS = ROOT / "bench" / "results"
MEASUREMENTS = ("import", "import-orders", "refresh", "predict", "latency", "throughput", "segment", "model")
IMPORTS = {"import", "import-orders"}  # measurements that need only the files and an empty database
# The worktree's own `crm`, whatever the virtualenv has installed in editable mode.
CLI = "import sys; from crm.cli import main; sys.exit(main(prog_name='crm'))"

# Pages timed in-process: (label, URL). Query parameters follow the contacts list's form;
# adjust them here if the list's parameter names change.
# Every page is reported by its p95 (the targets are p95s), its p50 in the notes.
PAGES = (
    ("dashboard", "/"),
    ("contacts", "/contacts"),
    ("contacts, filtered by stage", "/contacts?stage=retention"),
    ("contacts, sorted by score", "/contacts?sort=score"),
    ("contacts, stage filter by score", "/contacts?stage=retention&sort=score"),
    ("contact, ~300 timeline events", f"/contacts/{BUSY_CONTACT_ID}"),
    ("leads", "/leads"),
    ("to-dos, mine", "/tasks"),
    ("to-dos, all", "/tasks?view=all"),
    ("orders", "/orders"),
)
# Searches, timed like the pages: a name, a name and a first name, a fragment of an email, a
# phone typed the national way, and two letters (too short for the trigram index: the scan, as
# before it).
SEARCHES = (
    ("search by name", "/contacts?q=schmidt"),
    ("search by two words", "/contacts?q=anna+schmidt"),
    ("search by email fragment", "/contacts?q=jansen.12"),
    ("search by phone fragment", "/contacts?q=0151+2345"),
    ("search by two letters (scan)", "/contacts?q=ro"),
)
THROUGHPUT_PAGES = (("dashboard", "/"), ("contacts", "/contacts"))
API_ORDERS = "/api/v1/orders"
# The segment measured: an `ordered` condition and two field conditions (counted at the shop's end date).
SEGMENT = {"match": "all", "conditions": [
    {"field": "ordered", "op": "has", "value": {"product": "Sencha", "within_days": 365}},
    {"field": "stage", "op": "=", "value": "retention"},
    {"field": "lead_score", "op": ">=", "value": 30},
]}


@dataclass(frozen=True)
class Target:
    """What an issue asks of a measurement: an absolute bound in the result's unit (at most; at
    least for a rate) and/or a bound on the ratio to the floor. Absolute bounds are meant for the
    full scale on 2 cores."""

    issue: int
    at_most: float | None = None  # for req/s: at least
    ratio: float | None = None

    def text(self, unit: str) -> str:
        parts = []
        if self.at_most is not None:
            bound = f"{self.at_most:,.0f}" if self.at_most >= 100 else f"{self.at_most:.3g}"
            parts.append(f"{'≥' if unit == 'req/s' else '≤'} {bound} {unit}")
        if self.ratio is not None:
            parts.append(f"≤ {self.ratio:g}×")
        return f"{' and '.join(parts)} (#{self.issue})"

    def met(self, value: float | None, ratio: float | None, unit: str) -> bool | None:
        if value is None:
            return None
        checks = []
        if self.at_most is not None:
            checks.append(value >= self.at_most if unit == "req/s" else value <= self.at_most)
        if self.ratio is not None and ratio is not None:
            checks.append(ratio <= self.ratio)
        return all(checks) if checks else None


PAGE_TARGET = Target(15, 25, 3)  # every staff page: p95 ≤ 25 ms, and ≤ 3× its raw-SQL floor
SEARCH_TARGET = Target(15, 25, 3)
TARGETS = {  # by result name; pages not listed here get PAGE_TARGET
    "crm refresh": Target(15, 15),
    "import shopify-orders": Target(15, None, 2),  # and ≥ 15,000 lines a second: see measure_import
    "GET / under gunicorn -w 2": Target(15, 200),
    "POST /api/v1/orders under gunicorn -w 2": Target(15, 400, 5),
    "segment count": Target(17, 150),
    "segment builder count": Target(17, 150),
    "model check page": Target(16, 30),
    "crm predict --holdout-weeks": Target(16, 30),
}


@dataclass
class Result:
    name: str
    status: str  # "ok", "not available" or "error"
    value: float | None = None
    floor: float | None = None
    unit: str = ""
    notes: str = ""
    details: dict = field(default_factory=dict)
    target: Target | None = None

    @property
    def met(self) -> bool | None:
        return self.target.met(self.value, self.ratio, self.unit) if self.target and self.status == "ok" else None

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.floor:
            return None
        # For rates (requests/s) more is better: the ratio still says "times slower than the floor".
        return self.floor / self.value if self.unit == "req/s" else self.value / self.floor

    def as_json(self) -> dict:
        return {**asdict(self), "ratio": self.ratio, "target": self.target.text(self.unit) if self.target else None,
                "met": self.met}


@dataclass
class Run:
    """What the measurements share: the scale, the files, the options."""

    scale: Scale
    folder: Path
    requests: int
    load_requests: int
    page_seconds: float
    load_seconds: float
    client: str
    say: Callable[[str], None]
    results: list[Result] = field(default_factory=list)
    _commands: dict | None = None

    @property
    def csv(self) -> Path:
        return self.folder / "orders.csv"

    @property
    def generic_csv(self) -> Path:
        return self.folder / "generic-orders.csv"

    @property
    def pristine(self) -> Path:
        return self.folder / "shop.sqlite3"

    @property
    def empty(self) -> Path:
        return self.folder / "empty.sqlite3"

    def work(self, name: str) -> Path:
        (self.folder / "run").mkdir(exist_ok=True)
        return self.folder / "run" / name

    def add(self, result: Result) -> Result:
        if result.target is None:
            result.target = TARGETS.get(result.name)
        self.results.append(result)
        self.say(f"  {format_row(result)}")
        return result

    def commands(self) -> dict[str, set[str]]:
        """Return the `crm` commands that exist, {name: subcommands}."""
        if self._commands is None:
            import click

            from crm import create_app

            app = create_app({"SQLALCHEMY_DATABASE_URI": sqlite_url(self.empty), "SECRET_KEY": "bench"})
            self._commands = {name: set(getattr(command, "commands", {}) or ())
                              for name, command in app.cli.commands.items() if isinstance(command, click.Command)}
        return self._commands

    def has_command(self, name: str, sub: str | None = None) -> bool:
        commands = self.commands()
        return name in commands and (sub is None or sub in commands[name])


def sqlite_url(path: Path) -> str:
    return "sqlite:///" + str(path)


def copy_database(source: Path, target: Path) -> Path:
    """Copy a SQLite database consistently (WAL included) over `target`."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    with sqlite3.connect(source) as origin, sqlite3.connect(target) as copy:
        origin.backup(copy)
    return target


# ---------------------------------------------------------------------------------------------
# Preparing the data


def prepare(run: Run, need_csv: bool, need_database: bool, need_generic: bool = False) -> None:
    """Generate the CSV and the loaded database once per scale; later runs reuse them."""
    run.folder.mkdir(parents=True, exist_ok=True)
    if not run.empty.exists():
        _dispose(migrate(sqlite_url(run.empty)))
    if need_csv and not (run.folder / "orders.done").exists():
        started = time.perf_counter()
        rows = write_shopify_csv(run.scale, run.csv, progress=run.say)
        (run.folder / "orders.done").write_text(str(rows))
        run.add(Result("generate Shopify orders CSV", "ok", time.perf_counter() - started, unit="s",
                       notes=f"{rows:,} rows, {run.csv.stat().st_size / 1e6:.0f} MB (setup, no floor)"))
    if need_generic and not (run.folder / "generic-orders.done").exists():
        started = time.perf_counter()
        rows = write_generic_csv(run.scale, run.generic_csv, progress=run.say)
        (run.folder / "generic-orders.done").write_text(str(rows))
        run.add(Result("generate generic orders CSV", "ok", time.perf_counter() - started, unit="s",
                       notes=f"{rows:,} orders, {run.generic_csv.stat().st_size / 1e6:.0f} MB (setup, no floor)"))
    if need_database and not (run.folder / "shop.done").exists():
        copy_database(run.empty, run.pristine)
        app = _app(run.pristine)
        loaded = load_database(app, run.scale, progress=run.say)
        _dispose(app)
        with sqlite3.connect(run.pristine) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (run.folder / "shop.done").write_text(json.dumps(asdict(loaded)))
        run.add(Result("load the shop into SQLite", "ok", loaded.seconds, unit="s",
                       notes=f"{loaded.contacts:,} contacts, {loaded.orders:,} orders, {loaded.order_lines:,} lines, "
                             f"{loaded.interactions:,} interactions (setup, no floor)"))


def _dispose(app) -> None:
    """Close the app's database connections, so the file can be copied."""
    from crm.extensions import db

    with app.app_context():
        db.engine.dispose()


def _app(path: Path, **config):
    from crm import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": sqlite_url(path), "SECRET_KEY": "bench", **config})


# ---------------------------------------------------------------------------------------------
# Commands run as a shop runs them: a child process, timed, with its peak memory


@dataclass
class Child:
    seconds: float
    peak_mb: float
    returncode: int
    output: str


def run_child(args: list[str], env: dict[str, str] | None = None) -> Child:
    """Run a process, and return its wall time, peak resident memory and output."""
    with open(os.devnull, "rb") as nothing:
        started = time.perf_counter()
        process = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {})}, stdin=nothing,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        output = process.stdout.read().decode("utf-8", "replace")
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        process.stdout.close()
    return Child(seconds, usage.ru_maxrss / 1024, process.returncode, output)


def crm_command(database: Path, *args: str) -> Child:
    return run_child([sys.executable, "-c", CLI, *args],
                     {"DATABASE_URL": sqlite_url(database), "SECRET_KEY": "bench", "FLASK_APP": ""})


def floor_command(*args: str) -> tuple[Child, dict]:
    child = run_child([sys.executable, "-m", "bench.floors", *args])
    if child.returncode != 0:
        raise RuntimeError(f"the floor failed: {tail(child.output)}")
    return child, json.loads(child.output.strip().splitlines()[-1])


def tail(text: str, lines: int = 3) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def count_rows(database: Path, table: str) -> int:
    with sqlite3.connect(database) as connection:
        return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def measure_import(run: Run) -> None:
    floor_db = copy_database(run.empty, run.work("floor-import.sqlite3"))
    floor, counts = floor_command("import", str(run.csv), str(floor_db))
    name = "import shopify-orders"
    if not run.has_command("import"):
        run.add(Result(name, "not available", floor=floor.seconds, unit="s",
                       notes="`crm import shopify-orders` does not exist yet; floor measured"))
        run.add(Result("import peak memory", "not available", floor=floor.peak_mb, unit="MB"))
        return
    target = copy_database(run.empty, run.work("import.sqlite3"))
    child = crm_command(target, "import", "shopify-orders", str(run.csv))
    if child.returncode != 0:
        run.add(Result(name, "error", child.seconds, floor.seconds, "s",
                       f"exit {child.returncode}: {tail(child.output)}"))
        return
    imported = count_rows(target, "orders")
    status = "ok" if imported == counts["orders"] else "error"
    lines = int((run.folder / "orders.done").read_text() or 0)
    run.add(Result(name, status, child.seconds, floor.seconds, "s",
                   f"{imported:,} of {counts['orders']:,} orders, {lines / child.seconds:,.0f} lines a second "
                   f"(target ≥ 15,000); {tail(child.output, 1)}",
                   {"floor_counts": counts, "orders_imported": imported, "lines": lines},
                   Target(15, lines / 15_000, 2)))
    run.add(Result("import peak memory", "ok", child.peak_mb, floor.peak_mb, "MB", "max RSS of the process"))


def measure_generic_import(run: Run) -> None:
    """`crm import orders FILE.csv` (one row an order, a customer id and an email each) against its floor."""
    floor_db = copy_database(run.empty, run.work("floor-import-orders.sqlite3"))
    floor, counts = floor_command("import-orders", str(run.generic_csv), str(floor_db))
    name = "import orders (generic CSV)"
    target = copy_database(run.empty, run.work("import-orders.sqlite3"))
    child = crm_command(target, "import", "orders", str(run.generic_csv))
    if child.returncode != 0:
        run.add(Result(name, "error", child.seconds, floor.seconds, "s",
                       f"exit {child.returncode}: {tail(child.output)}"))
        return
    imported = count_rows(target, "orders")
    status = "ok" if imported == counts["orders"] else "error"
    run.add(Result(name, status, child.seconds, floor.seconds, "s",
                   f"{imported:,} of {counts['orders']:,} orders, {imported / child.seconds:,.0f} orders/s "
                   f"(floor {counts['orders'] / floor.seconds:,.0f}/s), start-up included; {tail(child.output, 1)}",
                   {"floor_counts": counts, "orders_imported": imported,
                    "orders_per_second": imported / child.seconds}))
    run.add(Result("import orders peak memory", "ok", child.peak_mb, floor.peak_mb, "MB", "max RSS of the process"))


def measure_command(run: Run, command: str, floor_args: list[str], database: Path) -> None:
    floor, counts = floor_command(command, str(database), *floor_args)
    name = f"crm {command}"
    if not run.has_command(command):
        run.add(Result(name, "not available", floor=floor.seconds, unit="s",
                       notes=f"`crm {command}` does not exist yet; floor measured ({floor_note(command)})"))
        return
    child = crm_command(database, command)
    status = "ok" if child.returncode == 0 else "error"
    run.add(Result(name, status, child.seconds, floor.seconds, "s",
                   f"{'exit ' + str(child.returncode) + ': ' if status == 'error' else ''}{tail(child.output, 1)}",
                   {"peak_mb": child.peak_mb, "floor_peak_mb": floor.peak_mb, "floor_counts": counts}))


def floor_note(command: str) -> str:
    return {"refresh": "two grouped reads, one UPDATE per contact",
            "predict": "one grouped read, BG/NBD with fixed parameters, one UPDATE per customer"}[command]


# ---------------------------------------------------------------------------------------------
# Page latency, in-process


class CapturedSql:
    """Records the statements an engine runs while active."""

    def __init__(self, engine):
        self.engine = engine
        self.statements: list[tuple[str, tuple]] = []
        self.active = False

    def __enter__(self):
        from sqlalchemy import event

        self.statements.clear()
        self.active = True
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_exc):
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._record)
        self.active = False

    def _record(self, _connection, _cursor, statement, parameters, _context, executemany):
        if not executemany:
            self.statements.append((statement, tuple(parameters or ())))


def resolve(app, url: str) -> str | None:
    """Return the URL the app serves for `url` (after a slash redirect), or None without a route."""
    from werkzeug.exceptions import MethodNotAllowed, NotFound
    from werkzeug.routing import RequestRedirect

    parts = urllib.parse.urlsplit(url)
    try:
        app.url_map.bind("localhost").match(parts.path, method="GET")
    except RequestRedirect as redirect:
        path = urllib.parse.urlsplit(redirect.new_url).path
        return path + (f"?{parts.query}" if parts.query else "")
    except (NotFound, MethodNotAllowed):
        return None
    return url


def page_or_report(run: Run, app, url: str, unavailable: Result, label: str) -> str | None:
    """Return the URL to request for a page, or report it as not available and return None."""
    served = resolve(app, url)
    if served is None:
        unavailable.notes = f"{label}: no such page yet"
        run.add(unavailable)
    return served


def percentiles(samples: list[float]) -> tuple[float, float]:
    """Return the 50th and 95th percentiles, in milliseconds."""
    p50, p95 = np.percentile(np.array(samples) * 1000, [50, 95])
    return float(p50), float(p95)


def sign_in_test_client(app):
    client = app.test_client()
    response = client.post("/login", data={"email": BENCH_USER[0], "password": BENCH_USER[2]})
    if response.status_code != 302:
        raise RuntimeError(f"could not sign in (HTTP {response.status_code})")
    return client


def prepare_summaries(run: Run, database: Path, keep: bool) -> None:
    """Bring the copied shop to the newest schema and build the dashboard's summary tables, as
    `crm db upgrade` and `crm rebuild-summaries` (or the nightly refresh) do on a live shop. With
    `keep` false, remove them instead: the dashboard then counts from the orders, as before them."""
    from flask_migrate import upgrade

    from crm.extensions import db
    from crm.models import SummaryState
    from crm.services.insight import summaries

    app = _app(database)
    with app.app_context():
        upgrade()
        started = time.perf_counter()
        if keep:
            drift = summaries.rebuild(medians=True)
            notes = f"{drift.said()} (setup, no floor)"
        else:
            db.session.execute(SummaryState.__table__.delete())
            notes = "summaries removed: the dashboard counts from the orders (--summaries off)"
        db.session.commit()
        run.add(Result("crm rebuild-summaries", "ok", time.perf_counter() - started, unit="s", notes=notes))
    _dispose(app)


def measure_latency(run: Run, database: Path) -> dict[str, list]:
    """Time each page, and its floor; return the SQL each page ran (for the throughput floor)."""
    from crm.extensions import db

    app = _app(database, WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=False)
    captured_by_page: dict[str, list] = {}
    with app.app_context():
        engine = db.engine
    client = sign_in_test_client(app)
    connection = floors.connect(str(database))
    pages = [(label, url, "page") for label, url in PAGES] + [(label, url, "search") for label, url in SEARCHES]
    for label, url, headline in pages:
        name = f"GET {url}"
        served = page_or_report(run, app, url, Result(name, "not available", unit="ms"), label)
        if served is None:
            continue
        warm = [client.get(served) for _ in range(max(3, min(run.requests // 10, 20)))]
        if warm[-1].status_code != 200:
            run.add(Result(name, "error", unit="ms", notes=f"{label}: HTTP {warm[-1].status_code}"))
            continue
        with CapturedSql(engine) as captured:
            client.get(served)
        statements = list(captured.statements)
        captured_by_page[url] = statements
        failures = []
        timings = _timed(lambda: failures.append(client.get(served).status_code != 200), run, warm=False)
        floor_timings = _timed(lambda: replay(connection, statements), run)
        p50, p95 = percentiles(timings)
        f50, f95 = percentiles(floor_timings)
        run.add(Result(name, "error" if any(failures) else "ok", p95, f95, "ms",
                       f"{label}; p95, p50 {p50:.1f} ms vs {f50:.1f} ms ({p50 / f50:.1f}×); "
                       f"{len(statements)} SQL statements; {len(timings)} requests"
                       + (f"; {sum(failures)} non-200 answers" if any(failures) else ""),
                       {"p50": p50, "floor_p50": f50, "p95": p95, "floor_p95": f95, "headline": "p95",
                        "statements": len(statements), "requests": len(timings)},
                       target=SEARCH_TARGET if headline == "search" else PAGE_TARGET))
    connection.close()
    return captured_by_page


# ---------------------------------------------------------------------------------------------
# A segment: its count, and the contact list's first page of 50 of its members


def _timed(action, run: Run, warm: bool = True) -> list[float]:
    """Time `action` run.requests times after a warm-up, stopping early (after at least 10, or
    run.requests if fewer) once run.page_seconds have passed: a 2-second page is not timed 200 times."""
    if warm:
        for _ in range(max(3, min(run.requests // 10, 20))):
            started = time.perf_counter()
            action()
            if time.perf_counter() - started > 1:
                break
    timings: list[float] = []
    deadline = time.monotonic() + run.page_seconds
    for _ in range(run.requests):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
        if len(timings) >= 10 and time.monotonic() > deadline:
            break
    return timings


def _app_and_floor(run: Run, name: str, app_timings: list[float], floor_timings: list[float], notes: str,
                   details: dict | None = None, target: Target | None = None) -> Result:
    """Report a timed in-process measurement by its p95 beside its floor's p95 (the targets are p95s)."""
    p50, p95 = percentiles(app_timings)
    f50, f95 = percentiles(floor_timings)
    return run.add(Result(name, "ok", p95, f95, "ms",
                          f"{notes}; p95, p50 {p50:.1f} ms vs {f50:.1f} ms ({p50 / f50:.1f}×); "
                          f"{len(app_timings)} requests",
                          {"p50": p50, "floor_p50": f50, "p95": p95, "floor_p95": f95, "requests": len(app_timings),
                           **(details or {})}, target))


def builder_form(definition: dict) -> dict[str, str]:
    """Return the segment builder's form fields for a definition (as the page posts them)."""
    from crm.views import segment_builder

    builder = segment_builder.from_definition(definition)
    form = {"match": builder.match, "rows": str(len(builder.rows))}
    for index, row in enumerate(builder.rows):
        form.update({f"field-{index}": row.field, f"shown-{index}": row.field, f"op-{index}": row.op,
                     f"value-{index}": row.value, f"value2-{index}": row.value2, f"group-{index}": str(row.group)})
        form.update({f"{key}-{index}": value for key, value in row.options.items()})
    for group, match in builder.group_matches.items():
        form[f"gmatch-{group}"] = match
    return form


def measure_segment(run: Run, database: Path) -> None:
    """Time a segment as issue 17 asks: its count (the service, and the builder's live count as
    you build: POST /segments/builder), its first page of 50 (GET /contacts?segment=<id>) and its
    own page (GET /segments/<id>: size, spend, first members), each against its floor: the same
    SQL replayed on a plain sqlite3 connection (no template)."""
    try:
        from crm.services.segments import store
        from crm.services.segments.definition import parse
    except ImportError:
        run.add(Result("segment count", "not available", unit="ms", notes="segments do not exist yet"))
        return
    from crm.extensions import db

    # The app stops a segment query after SEGMENT_QUERY_LIMIT_MS (5 s by default); the bench
    # wants the time it takes, however long.
    app = _app(database, WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=False, SEGMENT_QUERY_LIMIT_MS=3_600_000)
    with app.app_context():
        engine = db.engine
        existing = db.session.scalar(db.select(db.metadata.tables["segments"].c.id).where(
            db.metadata.tables["segments"].c.name == "bench"))
        segment = store.get(existing) if existing else store.create({"name": "bench", "definition": SEGMENT})
        db.session.commit()
        segment_id, definition = segment.id, parse(SEGMENT)
        count = lambda: store.count(definition, run.scale.end)  # noqa: E731
        size = count()
        with CapturedSql(engine) as captured:
            count()
        count_sql = list(captured.statements)
        timings = _timed(count, run)
    connection = floors.connect(str(database))
    _app_and_floor(run, "segment count", timings, _timed(lambda: replay(connection, count_sql), run),
                   f"{size:,} members (counted at the shop's end day)", {"members": size})
    client = sign_in_test_client(app)

    def page(name: str, url: str, note: str, method: str = "GET", data: dict | None = None,
             expect: str | None = None, target: Target | None = None) -> None:
        def answer():
            if method == "POST":
                return client.post(url, data=data, headers={"HX-Request": "true", "HX-Target": "builder-preview"})
            return client.get(url)

        response = answer()
        if response.status_code != 200 or (expect and expect not in response.get_data(as_text=True)):
            run.add(Result(name, "error", unit="ms", notes=f"HTTP {response.status_code}"
                           + (f"; the answer lacks {expect!r}" if response.status_code == 200 else "")))
            return
        with CapturedSql(engine) as captured:
            answer()
        statements = list(captured.statements)
        timings = _timed(answer, run)
        floor_timings = _timed(lambda: replay(connection, statements), run)
        _app_and_floor(run, name, timings, floor_timings, f"{note}; {len(statements)} SQL statements",
                       {"statements": len(statements)}, target or PAGE_TARGET)

    page("segment builder count", "/segments/builder", "the builder's live count and first rows (htmx), counted today",
         "POST", builder_form(SEGMENT), target=TARGETS["segment builder count"])
    page(f"GET /contacts?segment={segment_id}", f"/contacts?segment={segment_id}", "a segment's first page of 50",
         target=Target(17, 50, 3))
    page(f"GET /segments/{segment_id}", f"/segments/{segment_id}",
         "a segment's page: size today and over 90 days, spend, first members, the builder")
    connection.close()


# ---------------------------------------------------------------------------------------------
# The model check (issue 16): the page, and the same figures from `crm predict --holdout-weeks`


MODEL_CHECK_REQUESTS = 3


def measure_model(run: Run, database: Path) -> None:
    """Time GET /insight/model?as_of=<the shop's end> (in-process, a few requests; the value is
    the slowest) and `crm predict --as-of <end> --holdout-weeks N --json` (a child process), each
    against the floor: one read of the purchase days, one unpenalised BG/NBD fit, the holdout
    predictions (`bench.floors model_check`, a child process)."""
    end = datetime.combine(run.scale.end, datetime.min.time()).replace(hour=12)
    floor, counts = floor_command("model_check", str(database), end.strftime(floors.TIME_FORMAT))
    weeks = counts.get("holdout_weeks")
    app = _app(database, WTF_CSRF_ENABLED=False, RATELIMIT_ENABLED=False)
    url = f"/insight/model?as_of={run.scale.end.isoformat()}"
    name = "model check page"
    served = page_or_report(run, app, url, Result(name, "not available", floor=floor.seconds, unit="s"), "model check")
    if served is not None:
        client = sign_in_test_client(app)
        timings, statuses = [], []
        for _ in range(MODEL_CHECK_REQUESTS):
            started = time.perf_counter()
            response = client.get(served)
            timings.append(time.perf_counter() - started)
            statuses.append(response.status_code)
        page_text = response.get_data(as_text=True)
        failed = [code for code in statuses if code != 200]
        run.add(Result(name, "error" if failed else "ok", max(timings), floor.seconds, "s",
                       f"GET {url}: slowest of {len(timings)} ({', '.join(f'{t:.1f}' for t in timings)} s)"
                       + (f"; HTTP {failed[0]}" if failed else "")
                       + ("" if failed or "log-likelihood" in page_text.lower() else "; no fitted model shown"),
                       {"timings": timings, "floor_counts": counts}))
    name = "crm predict --holdout-weeks"
    if not run.has_command("predict"):
        run.add(Result(name, "not available", floor=floor.seconds, unit="s"))
        return
    args = ["predict", "--as-of", run.scale.end.isoformat(), "--json"] + (["--holdout-weeks", str(weeks)] if weeks else [])
    child = crm_command(database, *args)
    status = "ok" if child.returncode == 0 else "error"
    try:
        figures = json.loads(child.output.strip().splitlines()[-1])
        summary = (f"{figures.get('customers', 0):,} customers, {figures.get('holdout_weeks')} weeks held out; "
                   f"holdout repeat purchases predicted {figures['holdout_repeat_purchases']['predicted']:,.0f}, "
                   f"actual {figures['holdout_repeat_purchases']['actual']:,} (floor: {counts.get('predicted', 0):,.0f} "
                   f"of {counts.get('actual', 0):,})")
    except (ValueError, KeyError, IndexError, TypeError):
        figures, summary = {}, tail(child.output, 1)
    run.add(Result(name, status, child.seconds, floor.seconds, "s",
                   f"{'exit ' + str(child.returncode) + ': ' if status == 'error' else ''}{summary}",
                   {"peak_mb": child.peak_mb, "floor_peak_mb": floor.peak_mb, "floor_counts": counts}))


# ---------------------------------------------------------------------------------------------
# Throughput under gunicorn


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Gunicorn:
    """gunicorn with two workers on a loopback port, stopped on exit."""

    WORKERS = 2

    def __init__(self, app_spec: str, env: dict[str, str]):
        self.port = free_port()
        # Files, not pipes: a worker logging many errors must not block on a full pipe.
        self.log = tempfile.TemporaryFile()
        self.ready = tempfile.NamedTemporaryFile(prefix="gunicorn-ready-", delete=False)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", str(self.WORKERS), "-b", f"127.0.0.1:{self.port}",
             "--chdir", str(ROOT), "-c", str(ROOT / "bench" / "gunicorn_ready.py"), "--log-level", "warning",
             "--timeout", "120", app_spec],
            cwd=ROOT, env={**os.environ, **env, "BENCH_READY_FILE": self.ready.name},
            stdout=subprocess.DEVNULL, stderr=self.log)

    def _log_tail(self) -> str:
        self.log.seek(0)
        return tail(self.log.read().decode("utf-8", "replace"), 5)

    def __enter__(self) -> "Gunicorn":
        """Wait until every worker has loaded the app (up to 3 minutes: a shared, busy machine)."""
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self._log_tail()}")
            if len(Path(self.ready.name).read_text().split()) >= self.WORKERS:
                return self
            time.sleep(0.05)
        self.__exit__()
        raise RuntimeError("gunicorn's workers did not start within 3 minutes")

    def __exit__(self, *_exc):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        self.ready.close()
        Path(self.ready.name).unlink(missing_ok=True)


def sign_in_over_http(port: int) -> str:
    """Sign in through the real form (with its CSRF token); return the Cookie header."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/login")
    response = connection.getresponse()
    page = response.read().decode()
    cookie = (response.getheader("Set-Cookie") or "").split(";")[0]
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"', page)
    form = {"email": BENCH_USER[0], "password": BENCH_USER[2]}
    if token:
        form["csrf_token"] = token.group(1) or token.group(2)
    connection.request("POST", "/login", urllib.parse.urlencode(form),
                       {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
    response = connection.getresponse()
    response.read()
    connection.close()
    if response.status != 302:
        raise RuntimeError(f"could not sign in over HTTP (HTTP {response.status})")
    return (response.getheader("Set-Cookie") or cookie).split(";")[0]


@dataclass
class Load:
    requests: int
    seconds: float
    errors: list[str]
    p50: float
    p95: float
    client: str

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def python_load(port: int, method: str, path: str, headers: dict, body=None, *, clients: int = 16,
                max_requests: int, max_seconds: float, ok=(200,)) -> Load:
    """Send requests from `clients` threads with keep-alive connections until either bound."""
    lock = threading.Lock()
    issued = [0]
    timings: list[float] = []
    errors: list[str] = []
    deadline = time.monotonic() + max_seconds

    def client_loop():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        while True:
            with lock:
                if issued[0] >= max_requests or time.monotonic() >= deadline:
                    break
                issued[0] += 1
                number = issued[0]
            payload = body(number) if callable(body) else body
            started = time.perf_counter()
            try:
                connection.request(method, path, payload, headers)
                response = connection.getresponse()
                response.read()
                mine.append(time.perf_counter() - started)
                if response.status not in ok:
                    with lock:
                        errors.append(f"HTTP {response.status}")
                if response.will_close:
                    connection.close()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                with lock:
                    errors.append(repr(error))
        connection.close()
        with lock:
            timings.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    p50, p95 = percentiles(timings) if timings else (0.0, 0.0)
    return Load(len(timings), seconds, errors, p50, p95, f"python, {clients} threads")


def wrk_load(port: int, path: str, headers: dict, *, clients: int = 16, max_seconds: float) -> Load:
    """Load a GET page with wrk (two threads, `clients` connections) for `max_seconds`."""
    args = ["wrk", "-t2", f"-c{clients}", f"-d{max(1, int(max_seconds))}s", "--latency", "--timeout", "30s"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    output = subprocess.run([*args, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True,
                            check=True).stdout
    requests, seconds = re.search(r"(\d+) requests in ([\d.]+)(m?s)", output).group(1, 2)
    unit = re.search(r"\d+ requests in [\d.]+(m?s)", output).group(1)
    errors = []
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        errors.append(f"{match.group(1)} non-2xx answers")
    if match := re.search(r"Socket errors: (.*)", output):
        errors.append(f"socket errors: {match.group(1)}")
    p50 = _wrk_ms(re.search(r"50%\s+([\d.]+\w+)", output).group(1))
    p90 = _wrk_ms(re.search(r"90%\s+([\d.]+\w+)", output).group(1))
    return Load(int(requests), float(seconds) / (1000 if unit == "ms" else 1), errors, p50, p90,
                f"wrk, {clients} connections (p90 shown as p95: wrk reports 50/75/90/99)")


def _wrk_ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def get_load(run: Run, port: int, path: str, headers: dict) -> Load:
    if run.client == "wrk" or (run.client == "auto" and shutil.which("wrk")):
        return wrk_load(port, path, headers, max_seconds=run.load_seconds)
    return python_load(port, "GET", path, headers, max_requests=run.load_requests, max_seconds=run.load_seconds)


def load_result(name: str, load: Load, floor: Load | None, notes: str) -> Result:
    errors = load.errors + ([f"floor: {e}" for e in floor.errors] if floor else [])
    return Result(name, "error" if errors else "ok", load.rate, floor.rate if floor else None, "req/s",
                  f"{notes}; {load.requests:,} requests in {load.seconds:.1f} s, p50 {load.p50:.0f} ms, "
                  f"p95 {load.p95:.0f} ms; {load.client}" + (f"; ERRORS: {', '.join(errors[:3])}" if errors else ""),
                  {"requests": load.requests, "seconds": load.seconds, "p50_ms": load.p50, "p95_ms": load.p95,
                   "errors": len(errors), "floor_rate": floor.rate if floor else None})


def measure_throughput(run: Run, database: Path, captured: dict[str, list]) -> None:
    app = _app(database)
    env = {"DATABASE_URL": sqlite_url(database), "SECRET_KEY": "bench", "CRM_RATELIMIT_ENABLED": "false"}
    for label, url in THROUGHPUT_PAGES:
        name = f"GET {url} under gunicorn -w 2"
        served = page_or_report(run, app, url, Result(name, "not available", unit="req/s"), label)
        if served is None:
            continue
        with Gunicorn("crm:create_app()", env) as server:
            cookie = sign_in_over_http(server.port)
            load = get_load(run, server.port, served, {"Cookie": cookie})
        floor = None
        if url in captured:
            statements = run.work(f"floor-{label}.json")
            statements.write_text(json.dumps(captured[url]))
            floor_env = {"BENCH_DATABASE": str(database), "BENCH_FLOOR_SQL": str(statements)}
            with Gunicorn("bench.floor_app:app", floor_env) as server:
                floor = get_load(run, server.port, "/", {})
        run.add(load_result(name, load, floor, f"{label}, 16 concurrent clients"))
    measure_api_orders(run, app, database, env)


def api_order(email: str, number: int) -> bytes:
    """Return the JSON body of a new order for the customer with this email (POST /api/v1/orders)."""
    return json.dumps({
        "source": "bench", "order_id": f"bench-{os.getpid()}-{number}", "number": f"B-{number}",
        "email": email, "status": "paid", "currency": "EUR",
        "placed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "total": "27.40",
        "lines": [{"sku": "TEA-00-100", "name": "Darjeeling First Flush 100g", "quantity": 2, "unit_price": "13.70"}],
    }).encode()


def measure_api_orders(run: Run, app, database: Path, env: dict) -> None:
    name = f"POST {API_ORDERS} under gunicorn -w 2"
    from werkzeug.exceptions import MethodNotAllowed, NotFound

    try:
        app.url_map.bind("localhost").match(API_ORDERS, method="POST")
    except (NotFound, MethodNotAllowed):
        run.add(Result(name, "not available", unit="req/s", notes="the order API does not exist yet"))
        return
    from crm.extensions import db
    from crm.services.staff import api_tokens, users

    with app.app_context():
        _token, plain = api_tokens.create_token(users.by_email(BENCH_USER[0]), "benchmark")
        db.session.commit()
    headers = {"Authorization": f"Bearer {plain}", "Content-Type": "application/json"}
    body = functools.partial(api_order, contact(run.scale, BUSY_CONTACT_ID).email)
    with Gunicorn("crm:create_app()", env) as server:
        load = python_load(server.port, "POST", API_ORDERS, headers, body, max_requests=run.load_requests,
                           max_seconds=run.load_seconds, ok=(200, 201))
    floor_env = {"BENCH_DATABASE": str(database), "BENCH_FLOOR_SQL": os.devnull}
    with Gunicorn("bench.floor_app:app", floor_env) as server:
        floor = python_load(server.port, "POST", "/", {"Content-Type": "application/json"}, body,
                            max_requests=run.load_requests, max_seconds=run.load_seconds, ok=(201,))
    run.add(load_result(name, load, floor, "a new order per request, 16 concurrent clients"))


# ---------------------------------------------------------------------------------------------
# Reporting


def machine() -> dict:
    memory = ""
    try:
        with open("/proc/meminfo") as info:
            kb = int(re.search(r"MemTotal:\s+(\d+)", info.read()).group(1))
            memory = f"{kb / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = re.search(r"model name\s*:\s*(.*)", info.read()).group(1).strip()
    except (OSError, AttributeError):
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "memory": memory, "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "system": f"{platform.system()} {platform.release()}"}


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "ms":
        return f"{value:.2f} ms"
    return f"{value:,.0f} {unit}"


def format_row(result: Result) -> str:
    ratio = f"{result.ratio:.1f}×" if result.ratio is not None else ""
    value = _number(result.value, result.unit) if result.status != "not available" else "not available"
    target = result.target.text(result.unit) if result.target else ""
    met = {True: "met", False: "MISSED", None: ""}[result.met]
    return (f"{result.name:<42} {value:>16} {_number(result.floor, result.unit):>14} {ratio:>7} {target:>26} "
            f"{met:>6}  {result.notes}")


def table(results: list[Result]) -> str:
    header = f"{'measurement':<42} {'value':>16} {'floor':>14} {'ratio':>7} {'target':>26} {'met':>6}  notes"
    return "\n".join([header, "-" * len(header)] + [format_row(r) for r in results])


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--contacts", type=int)
    parser.add_argument("--orders", type=int)
    parser.add_argument("--interactions", type=int)
    parser.add_argument("--end", type=date.fromisoformat,
                        help="last day of the generated three years (default 2026-11-01)")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(MEASUREMENTS)}")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--workdir", type=Path, help="where data is generated (default bench/data/<scale>)")
    parser.add_argument("--fresh", action="store_true", help="generate the data again even if it exists")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page (default 200)")
    parser.add_argument("--page-seconds", type=float,
                        help="stop timing a page (and its floor) after this long, once 10 requests are in "
                             "(default 30 at full scale, else 15)")
    parser.add_argument("--load-requests", type=int, help="most requests per throughput run")
    parser.add_argument("--load-seconds", type=float, help="longest throughput run, in seconds")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator for GET pages (auto: wrk when installed)")
    parser.add_argument("--no-latest", action="store_true", help="do not write bench/results/latest.json")
    parser.add_argument("--summaries", choices=("on", "off"), default="on",
                        help="off: time the dashboard without its summary tables (counted from the orders)")
    args = parser.parse_args(argv)
    only = set((args.only or ",".join(MEASUREMENTS)).split(","))
    if unknown := only - set(MEASUREMENTS):
        parser.error(f"unknown measurement(s): {', '.join(sorted(unknown))}")
    args.only = only
    return args


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark and return the report written to JSON."""
    args = parse(argv)
    scale = scale_from(args.scale, args.contacts, args.orders, args.interactions, end=args.end)
    folder = args.workdir or DATA / scale.key()
    if args.fresh and folder.exists():
        shutil.rmtree(folder)
    full = args.scale == "full"
    run = Run(scale, folder, args.requests, args.load_requests or (20_000 if full else 3_000),
              args.page_seconds or (30.0 if full else 15.0), args.load_seconds or (30.0 if full else 10.0), args.client,
              say=lambda message: print(message, file=sys.stderr, flush=True))
    started = datetime.now(timezone.utc)
    run.say(f"bench: {scale.contacts:,} contacts, {scale.orders:,} orders, {scale.interactions:,} interactions in {folder}")
    prepare(run, need_csv="import" in args.only, need_database=bool(args.only - IMPORTS),
            need_generic="import-orders" in args.only)

    steps = []
    if "import" in args.only:
        steps.append(("import", lambda: measure_import(run)))
    if "import-orders" in args.only:
        steps.append(("import-orders", lambda: measure_generic_import(run)))
    shop = run.work("shop.sqlite3")
    if args.only - IMPORTS:
        copy_database(run.pristine, shop)
        prepare_summaries(run, shop, keep=args.summaries == "on")
    end = datetime.combine(scale.end, datetime.min.time()).strftime(floors.TIME_FORMAT)
    if "refresh" in args.only:
        steps.append(("refresh", lambda: measure_command(run, "refresh", [], shop)))
    if "predict" in args.only:
        steps.append(("predict", lambda: measure_command(run, "predict", [end], shop)))
    if "segment" in args.only:
        steps.append(("segment", lambda: measure_segment(run, shop)))
    if "model" in args.only:
        steps.append(("model", lambda: measure_model(run, shop)))
    captured: dict[str, list] = {}
    if "latency" in args.only or "throughput" in args.only:
        steps.append(("latency", lambda: captured.update(measure_latency(run, shop))))
    if "throughput" in args.only:
        steps.append(("throughput", lambda: measure_throughput(run, shop, captured)))
    for name, step in steps:
        run.say(f"{name} …")
        try:
            step()
        except Exception as error:  # one broken measurement must not hide the others
            run.add(Result(name, "error", notes=f"{type(error).__name__}: {error}"))

    report = {"started_at": started.isoformat(timespec="seconds"), "scale": {**asdict(scale), "end": scale.end.isoformat(),
              "name": args.scale}, "machine": machine(), "results": [r.as_json() for r in run.results]}
    print(table(run.results))
    targets = ([] if args.no_latest else [RESULTS / "latest.json"]) + ([args.json] if args.json else [])
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


if __name__ == "__main__":
    main()
