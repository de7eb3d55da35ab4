"""In the browser: build a segment, write a newsletter to it, see who gets it, preview it, send a
test to yourself, schedule it a little ahead; the real worker sends it when its time comes, it
arrives at a real SMTP server, and a click on its link moves its figures."""
import re
import time
from dataclasses import asdict
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from crm.extensions import db
from crm.models import Campaign
from crm.services import shop
from crm.services.flows import config as flow_config
from tests.e2e.browser import fill_form, flashes, same_document, sign_in, submit, type_slowly, wait_for_htmx

pytestmark = pytest.mark.e2e


@pytest.fixture
def app_config():
    # The worker (a real `crm worker`, given this app's key) signs links as the live server does.
    return {"SECRET_KEY": "e2e-secret"}


def _a_little_ahead() -> datetime:
    """A whole minute 15 to 75 s from now (the form takes minutes, in the shop's zone: UTC here)."""
    return (datetime.now(timezone.utc) + timedelta(seconds=75)).replace(second=0, microsecond=0)


def test_build_write_preview_test_schedule_and_click_a_newsletter(page, seeded, smtp, live_server, worker,
                                                                   browser_console):
    # The shop's name as Settings → Shop has it (the live server drops its few-second copy).
    shop.save({**asdict(shop.current()), "name": "Tea House"}, None)
    with live_server.app.app_context():
        shop.forget()
    smtp.save_settings(public_url=live_server.url, per_minute="600")
    flow_config.save_pacing({"cap": "2", "period_days": "7", "window_start": "00:00", "window_end": "23:59"}, None)
    db.session.commit()
    sign_in(page, seeded.users["admin"].email)

    # The segment, in the builder: customers with at least one order (only Anna).
    page.goto("/segments/new")
    with same_document(page):
        page.locator("select[name=field-0]").select_option("order_count")
        wait_for_htmx(page)
        page.locator("select[name=op-0]").select_option(">=")
        wait_for_htmx(page)
        type_slowly(page.locator("input[name=value-0]"), "1")
        expect(page.locator("#builder-preview .segment-count")).to_have_text("1")
    page.get_by_label("Name").fill("Customers")
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Customers")

    page.goto("/campaigns/")
    page.get_by_role("button", name="Write a newsletter").click()
    fill_form(page, {"Name": "Spring teas", "Segment": "Customers", "Template": "Stay in touch"})
    page.get_by_label("Subject (empty: the template's)").fill("Spring at {{ shop.name }}")
    page.get_by_label("Message (Markdown with the template variables; empty: the template's)").fill(
        "Hello {{ contact.first_name }}, see [the new teas](https://shop.example/spring).")
    submit(page, "Save the newsletter")
    expect(page.locator(".receive")).to_contain_text("1 of 1 members will receive it")
    expect(page.frame_locator("iframe[name=campaign-preview]").locator(".subject")).to_have_text("Spring at Tea House")

    submit(page, "Send me a test")
    expect(flashes(page)).to_contain_text("Test sent to admin@example.com")
    assert [m.message["Subject"] for m in smtp.messages] == ["[Test] Spring at Tea House"]
    smtp.messages.clear()

    # Schedule it a little ahead; the worker sends nothing before then.
    when = _a_little_ahead()
    page.get_by_label("Send at (shop's time)").check()
    page.get_by_label("Send at", exact=True).fill(when.strftime("%Y-%m-%dT%H:%M"))
    submit(page, "Send the newsletter")
    expect(flashes(page)).to_contain_text("Scheduled: the worker sends it then.")
    expect(page.locator(".receive")).to_contain_text("it is sent")
    campaign_id = db.session.scalar(select(Campaign.id))
    db.session.rollback()  # hold no read lock on the database while the worker writes
    time.sleep(max(0.0, (when - datetime.now(timezone.utc)).total_seconds() - 5))
    assert smtp.messages == []  # not before its time

    deadline = time.monotonic() + 60
    while not smtp.messages and time.monotonic() < deadline:
        time.sleep(0.5)
    [received] = smtp.messages
    assert datetime.now(timezone.utc) >= when
    assert [r.lower() for r in received.rcpt_tos] == [seeded.customer.email.lower()]
    assert received.message["Subject"] == "Spring at Tea House"
    html = received.message.get_body(("html",)).get_content()
    link = re.search(r'href="([^"]+/r/[^"]+)"', html).group(1)
    page.goto(f"/campaigns/{campaign_id}")
    expect(page.locator(".earned")).to_contain_text("1 sent")
    expect(page.locator(".earned")).to_contain_text("0 clicked")
    # The customer clicks (no session): the signed redirect leads to the shop's page (not followed here: no network).
    context = page.context.browser.new_context()
    answer = context.request.get(link, max_redirects=0)
    assert answer.status == 302 and answer.headers["location"] == "https://shop.example/spring"
    context.close()
    page.reload()
    expect(page.locator(".earned")).to_contain_text("1 clicked")
