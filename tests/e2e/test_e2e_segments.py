"""In the browser: build a segment condition by condition with a live count, see a mistake beside
its row, save it, and open its members in the contact list."""
import re

import pytest
from playwright.sync_api import expect

from crm.models import Segment
from tests.e2e.browser import same_document, sign_in, type_slowly, wait_for_htmx
from tests.e2e.shop import count

pytestmark = pytest.mark.e2e


def test_building_and_saving_a_segment_with_a_live_count(page, seeded):
    sign_in(page, seeded.users["sales"].email)
    page.goto("/segments/new")
    preview = page.locator("#builder-preview")
    with same_document(page):
        page.locator("select[name=field-0]").select_option("city")
        wait_for_htmx(page)
        expect(page.locator("select[name=op-0]")).to_have_value("=")
        type_slowly(page.locator("input[name=value-0]"), "Amsterdam")
        expect(preview.locator(".segment-count")).to_have_text("1")
        expect(preview).to_contain_text(seeded.customer.name)

        page.get_by_role("button", name="Add a condition").click()
        expect(page.locator(".builder-row")).to_have_count(2)
        wait_for_htmx(page)  # the new row's controls are live once htmx has settled them
        page.locator("select[name=field-1]").select_option("lead_score")
        expect(page.locator("select[name=op-1] option[value='>=']")).to_have_count(1)  # the row came back
        wait_for_htmx(page)
        page.locator("select[name=op-1]").select_option(">=")
        wait_for_htmx(page)
        type_slowly(page.locator("input[name=value-1]"), "lots")
        expect(page.locator("#row-error-1")).to_contain_text("Give a number")
        expect(page.locator("#row-error-0")).to_have_text("")

        page.locator("select[name=field-1]").select_option("ordered")
        expect(page.locator("select[name=op-1] option[value=has]")).to_have_count(1)
        wait_for_htmx(page)
        page.locator("select[name=op-1]").select_option("has")
        wait_for_htmx(page)
        type_slowly(page.locator("input[name=product-1]"), "sencha")
        expect(page.locator("#row-error-1")).to_have_text("")
        expect(preview.locator(".segment-count")).to_have_text("1")

        page.get_by_role("button", name="Remove this condition").first.click()
        expect(page.locator(".builder-row")).to_have_count(1)
        expect(page.locator("select[name=field-0]")).to_have_value("ordered")

    page.get_by_label("Name").fill("Sencha buyers")
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sencha buyers")
    expect(page.locator("#segment-size")).to_have_text("1")
    assert count(Segment) == 1

    page.get_by_role("button", name="See the contacts").click()
    expect(page).to_have_url(re.compile(r"/contacts\?segment=\d+$"))
    expect(page.locator("#contact-results tbody tr")).to_have_count(1)
    expect(page.locator("#contact-results")).to_contain_text(seeded.customer.name)
    # The rows come without the count; htmx loads it in place right after.
    expect(page.locator("#contact-results .result-count #result-total")).to_have_text("1 contact matches")
