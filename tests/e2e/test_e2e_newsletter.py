"""In the browser: write a newsletter to a segment, see who gets it, preview it, send a test to
yourself, send it; it arrives at a real SMTP server, and a click on its link moves its figures."""
import re
from dataclasses import asdict

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from crm.extensions import db
from crm.models import Campaign, Contact
from crm.services import shop
from crm.services.campaigns import sending as campaign_sending
from crm.services.email import sending
from crm.services.email import settings as email_settings
from crm.services.flows import config as flow_config
from crm.services.segments import store as segments
from tests.e2e.browser import fill_form, flashes, sign_in, submit
from tests.smtp_server import SMTPServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def app_config():
    # The worker's part runs in this process: sign links with the live server's key.
    return {"SECRET_KEY": "e2e-secret"}


@pytest.fixture
def smtp():
    with SMTPServer() as server:
        yield server


def test_write_preview_test_send_and_click_a_newsletter(page, seeded, smtp, live_server, browser_console):
    # The shop's name as Settings → Shop has it (the live server drops its few-second copy).
    shop.save({**asdict(shop.current()), "name": "Tea House"}, None)
    with live_server.app.app_context():
        shop.forget()
    email_settings.save({"smtp_host": "127.0.0.1", "smtp_port": str(smtp.port), "smtp_security": "none",
                         "from_name": "Tea House", "from_address": "hello@teahouse.example",
                         "public_url": live_server.url, "per_minute": "600"}, None)
    flow_config.save_pacing({"cap": "2", "period_days": "7", "window_start": "00:00", "window_end": "23:59"}, None)
    anna = db.session.get(Contact, seeded.customer.id)
    anna.consent = True
    segments.create({"name": "Customers", "definition": {"match": "all", "conditions": [
        {"field": "order_count", "op": ">=", "value": 1}]}}, actor_id=None)
    db.session.commit()

    sign_in(page, seeded.users["admin"].email)
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

    submit(page, "Send the newsletter")
    expect(flashes(page)).to_contain_text("Sending")
    # The worker's part, in this process: queue the members, then deliver.
    campaign_id = db.session.scalar(select(Campaign.id))
    campaign_sending.send(campaign_id)
    sending.deliver_due()
    db.session.commit()
    [received] = smtp.messages
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
