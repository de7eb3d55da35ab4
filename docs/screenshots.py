"""Take the README's screenshots: docs/img/dashboard.png and docs/img/contact.png.

    .venv/bin/python docs/screenshots.py            # needs the test extras (Playwright) and Chromium

It makes a fresh SQLite database in a temporary folder, serves the app on 127.0.0.1, goes through
the real first run (/setup, with the demo shop ticked) in headless Chromium, refreshes the rules
and predictions as the nightly job would, and photographs the dashboard and the page of a customer
with a few orders. Nothing outside the temporary folder and docs/img/ is touched.
Chromium is /usr/bin/chromium (`bash .ci/ensure-chromium`), or CHROMIUM_PATH.
"""
from __future__ import annotations

import os
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
VIEWPORT = {"width": 1440, "height": 1000}
EMAIL, PASSWORD = "anna@example.com", "a long demo password"


def main(out: Path = ROOT / "docs" / "img") -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from flask_migrate import upgrade
    from playwright.sync_api import expect, sync_playwright
    from sqlalchemy import func, select
    from werkzeug.serving import make_server

    from crm import create_app
    from crm.extensions import db
    from crm.models import Contact, Order
    from crm.services.jobs.maintenance import refresh_everyone_now

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="crm-screenshots-") as tmp:
        app = create_app({
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/crm.sqlite3",
            "SECRET_KEY": "screenshots",
            "SESSION_COOKIE_SECURE": False,
            "JOBS_SQLITE_PATH": f"{tmp}/jobs.sqlite3",
        })
        app.instance_path = tmp
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
        server = make_server("127.0.0.1", 0, app, threaded=True)
        url = f"http://127.0.0.1:{server.server_port}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        playwright = sync_playwright().start()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(base_url=url, viewport=VIEWPORT, device_scale_factor=1, locale="en-GB")
            page.set_default_timeout(120_000)  # the demo shop is made while the setup form posts
            # The first run, as a shop owner sees it.
            page.goto("/setup")
            for label, value in {"Shop name": "Linden & Thread", "Currency": "EUR", "Your name": "Anna Berg",
                                 "Email": EMAIL, "Password": PASSWORD, "Repeat the password": PASSWORD}.items():
                page.get_by_label(label, exact=True).fill(value)
            page.locator("select[name=timezone]").select_option("Europe/Berlin")
            page.get_by_label("Fill the CRM with a demo shop so I can look around", exact=True).check()
            page.get_by_role("button", name="Set up the shop and create the admin account", exact=True).click()
            expect(page.get_by_role("button", name="Sign out")).to_be_visible()

            # What the nightly refresh would have done by the next morning: rules and predictions.
            with app.app_context():
                refresh_everyone_now()
                orders = (select(Order.contact_id).group_by(Order.contact_id)
                          .order_by(func.count().desc(), Order.contact_id).limit(1))
                customer_id = db.session.scalar(orders)
                assert db.session.get(Contact, customer_id) is not None

            page.goto("/")
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(out / "dashboard.png"))
            page.goto(f"/contacts/{customer_id}")
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(out / "contact.png"))
        finally:
            browser.close()
            playwright.stop()
            server.shutdown()
    for name in ("dashboard.png", "contact.png"):
        print(out / name)


if __name__ == "__main__":
    main()
