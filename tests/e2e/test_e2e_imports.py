"""In the browser: import a Shopify orders export through /imports — upload, preview, run, summary."""
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from crm.models import Contact, Order
from tests.e2e.browser import fill_form, flashes, submit, table_rows
from tests.e2e.shop import count, db_rows
from tests.helpers import FIXTURES

pytestmark = pytest.mark.e2e


SHOPIFY_ORDERS = FIXTURES / "shopify" / "orders_export.csv"
# Order #1004 (line 8 of the file) has neither a valid total nor a valid email.
REASON_1004 = ("Total: 'ten euros' is not an amount; "
               "Email: 'not-an-email' is not a valid email address (An email address must have an @-sign.)")


def test_a_shopify_orders_export_is_previewed_then_imported_with_the_bad_row_explained(logged_in_page, worker):
    page = logged_in_page
    page.goto("/imports")
    upload = page.locator("#upload")
    fill_form(upload, {"What the file holds": "Shopify orders export (CSV)"})
    upload.get_by_label("File", exact=True).set_input_files(SHOPIFY_ORDERS)
    submit(upload, "Upload and preview")

    # The preview reads the file as the import will, and stores nothing yet.
    expect(page.get_by_role("heading", level=1)).to_have_text("Preview: orders_export.csv")
    previewed = table_rows(page.locator("#records table"))
    assert [row["Order"] for row in previewed] == ["#1001", "#1002", "#1003"]
    assert table_rows(page.locator("#rejected table")) == [{"Line": "8", "Reason": REASON_1004}]
    assert count(Order) == 0

    submit(page, "Run the import")
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Import #\d+$"))
    expect(flashes(page)).to_have_text("The import is queued; this page follows it.")
    # The worker imports it; the page follows and shows the summary when it is done.
    summary = page.locator(".import-summary li")
    expect(summary).to_contain_text(["orders: 3 created, 0 updated, 0 unchanged", "contacts: 2 created",
                                     "1 row rejected"], timeout=30_000)
    assert table_rows(page.locator("#rejections table")) == [{"Line": "8", "Reason": REASON_1004}]
    assert sorted(db_rows(select(Order.number))) == [("#1001",), ("#1002",), ("#1003",)]
    assert count(Contact) == 2

    # The run is in the history.
    page.get_by_role("navigation", name="breadcrumb").get_by_role("link", name="Imports").click()
    expect(page.locator("#history tbody tr")).to_have_count(1)
    expect(page.locator("#history tbody tr")).to_contain_text("orders_export.csv")
