"""Browser-test fixtures: a live server on the test database, headless Chromium, pages.

The live server is the real app (CSRF on, sessions, CSP) on a free loopback port, serving
the session's migrated database (a temporary SQLite file, or TEST_DATABASE_URL). Each test
gets the root `app` fixture, so the tables are emptied before and after it, and a fresh
browser context (no cookies). A test fails when the browser console logged an error (CSP
violations show there) or the server raised; a failed test leaves a screenshot and the
page's HTML in test-results/.
"""
from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest
from flask import got_request_exception
from werkzeug.serving import make_server

from crm import create_app
from crm.extensions import limiter
from crm.services import shop
from tests.e2e.browser import sign_in
from tests.e2e.shop import ensure_user, seed_shop

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling Google from a machine
# that has no network, which slows every test down.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
RESULTS = "test-results"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    # Keep each phase's report on the test item, so the page fixture can tell a failure.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


class LiveServer:
    """The app served by werkzeug on 127.0.0.1 in a background thread."""

    def __init__(self, app):
        self.app = app
        self.errors: list[BaseException] = []
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="live-server", daemon=True)
        got_request_exception.connect(self._record_error, app)

    def _record_error(self, _sender, exception, **_extra):
        self.errors.append(exception)

    def start(self) -> "LiveServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._server.server_close()


@pytest.fixture(scope="session")
def live_server(_migrated, tmp_path_factory):
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": _migrated,
        "SECRET_KEY": "e2e-secret",
        "WTF_CSRF_ENABLED": True,  # real forms, real tokens
        "SESSION_COOKIE_SECURE": False,
        "JOBS_SQLITE_PATH": str(tmp_path_factory.mktemp("queue") / "jobs.sqlite3"),
    })
    # Uploads waiting for their import (instance/uploads) go to a temporary folder, not the checkout.
    app.instance_path = str(tmp_path_factory.mktemp("instance"))
    server = LiveServer(app).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        # A missing browser is a failure, not a skip: `make test-e2e` installs it first.
        pytest.fail(f"no Chromium at {CHROMIUM}: run .ci/ensure-chromium (apt-get install chromium) "
                    "or set CHROMIUM_PATH")
    from playwright import sync_api
    playwright = sync_api.sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    except Exception as error:  # a broken install says why
        playwright.stop()
        pytest.fail(f"Chromium at {CHROMIUM} would not start: {error}")
    yield chromium
    chromium.close()
    playwright.stop()


def _artefact_name(item) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", item.name)[:150]


class BrowserConsole:
    """The errors the browser logged during a test, and those the test said to expect."""

    def __init__(self):
        self.errors: list[str] = []
        self._expected: list[re.Pattern] = []

    def expect_error(self, pattern: str) -> None:
        """Let errors matching this regular expression pass, e.g. the 404 a test asks for."""
        self._expected.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self._expected)]


@pytest.fixture
def browser_console():
    return BrowserConsole()


@pytest.fixture
def page(request, browser, live_server, app, browser_console):
    """Return a page in a fresh browser context on the live server (relative URLs work).

    Depends on the root `app` fixture: the database is empty at the start, and the test
    can create data through the services in its app context.
    """
    limiter.reset()
    live_server.errors.clear()
    with live_server.app.app_context():
        shop.forget()  # the live server's few-second copy of the shop's settings: an earlier test's shop is gone
    folder = Path(request.config.rootpath) / RESULTS
    for stale in folder.glob(_artefact_name(request.node) + ".*"):
        stale.unlink()  # left by an earlier failed run of this test
    context = browser.new_context(base_url=live_server.url, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.on("console", lambda message: browser_console.errors.append(
        f"console: {message.text} ({message.location.get('url')})") if message.type == "error" else None)
    page.on("pageerror", lambda error: browser_console.errors.append(f"page error: {error}"))
    yield page

    report = getattr(request.node, "rep_call", None)
    problems = browser_console.unexpected() + [f"server: {e!r}" for e in live_server.errors]
    if report is not None and report.failed:
        _keep_artefacts(folder, _artefact_name(request.node), page, problems)
    context.close()
    if report is not None and report.passed and problems:
        pytest.fail("the browser console or the server reported errors:\n" + "\n".join(problems), pytrace=False)


def _keep_artefacts(folder: Path, name: str, page, problems: list[str]) -> None:
    """Save the screenshot, the HTML and the console of a failed test's page."""
    folder.mkdir(exist_ok=True)
    notes = list(problems)
    try:
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
        (folder / f"{name}.html").write_text(page.content(), encoding="utf-8")
    except Exception as error:  # the page may have crashed; the report matters more
        notes.append(f"could not save the page: {error}")
    if notes:
        (folder / f"{name}.txt").write_text("\n".join(notes) + "\n", encoding="utf-8")


@pytest.fixture
def seeded(app):
    """Return a small shop (users of every role, contacts at several stages, orders,
    interactions, an open to-do) created through the services and committed."""
    return seed_shop()


@pytest.fixture
def worker(app, live_server, tmp_path):
    """Run a real `crm worker` on the test's database and queue (the live server queues there too,
    the last app created in this process having configured the queue) until the test ends."""
    import signal
    import subprocess

    from tests.conftest import CRM_COMMAND, ROOT, worker_environment

    env = worker_environment(app)
    env["CRM_INSTANCE_PATH"] = live_server.app.instance_path
    env["CRM_IMPORT_BATCH_SIZE"] = "20"  # small batches, so a browser sees the bar move
    log = open(tmp_path / "worker.log", "w")
    process = subprocess.Popen([CRM_COMMAND, "worker"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    yield process
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture
def logged_in_page(page):
    """Return a page signed in as the admin (admin@example.com), showing the dashboard."""
    ensure_user("admin")
    sign_in(page, "admin@example.com")
    return page
