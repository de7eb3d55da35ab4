"""In the browser: a big Shopify export imports in the background worker while the page shows a
progress bar that moves, another page of the app loads normally meanwhile, and the summary appears."""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from crm.models import Order
from tests.e2e.browser import fill_form, submit
from tests.e2e.shop import count
from tests.job_files import shopify_orders

pytestmark = pytest.mark.e2e

ORDERS = 8000  # long enough for the page (polling each second) to see the bar move twice on a quiet machine


def test_an_upload_imports_in_the_background_with_a_moving_progress_bar(logged_in_page, worker, tmp_path):
    page = logged_in_page
    export = shopify_orders(tmp_path / "big_orders_export.csv", ORDERS, bad_every=100, customers=700)
    page.goto("/imports")
    upload = page.locator("#upload")
    fill_form(upload, {"What the file holds": "Shopify orders export (CSV)"})
    upload.get_by_label("File", exact=True).set_input_files(export)
    submit(upload, "Upload and preview")
    expect(page.get_by_role("heading", level=1)).to_have_text("Preview: big_orders_export.csv")
    submit(page, "Run the import")
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Import #\d+$"))

    # The progress box polls; the bar's value grows while the worker records the batches.
    bar = page.locator("#import-progress-bar")
    seen: list[int] = []
    other = page.context.new_page()
    other_loaded = False
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and page.locator("#import-progress").count():
        value = _bar_value(bar)
        if value is not None and (not seen or int(value) != seen[-1]):
            seen.append(int(value))
        if not other_loaded and seen and 0 < seen[-1] < ORDERS:
            # Meanwhile the rest of the app answers as usual.
            response = other.goto("/contacts")
            assert response.status == 200
            expect(other.get_by_role("heading", level=1)).to_have_text("Contacts")
            other_loaded = True
        page.wait_for_timeout(200)
    moving = [v for v in seen if 0 < v < ORDERS]
    assert len(moving) >= 2 and moving == sorted(moving), seen
    assert other_loaded
    expect(page.locator(".import-counts")).to_have_count(0, timeout=30_000)

    summary = page.locator(".import-summary li")
    expect(summary).to_contain_text([f"orders: {ORDERS - ORDERS // 100} created, 0 updated, 0 unchanged",
                                     f"{ORDERS // 100} rows rejected"], timeout=30_000)
    assert count(Order) == ORDERS - ORDERS // 100
    other.close()


def _bar_value(bar) -> str | None:
    """The bar's value, or None when there is no bar: also when it goes between looking and reading, as
    the page reloads itself the moment its poll sees the run end (HX-Refresh)."""
    if not bar.count():
        return None
    try:
        return bar.get_attribute("value", timeout=1_000)
    except PlaywrightTimeoutError:
        return None
