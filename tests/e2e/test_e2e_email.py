"""In the browser: edit a template with its live preview, send it from a testimonial to-do, and
follow the unsubscribe link in the message a real SMTP server received."""
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from crm.extensions import db
from crm.models import Contact, EmailMessage, Task
from crm.services.email import sending
from tests.e2e.browser import fill_form, flashes, sign_in, sign_out, submit, type_slowly
from tests.e2e.shop import db_rows

pytestmark = pytest.mark.e2e


def test_edit_preview_send_from_a_testimonial_to_do_and_unsubscribe(page, seeded, smtp, live_server, browser_console):
    browser_console.expect_error(r"status of 422 .*/settings/email/templates/testimonial_request")  # the refused save
    smtp.save_settings(public_url=live_server.url, per_minute="60")
    anna_id = seeded.customer.id
    todo = Task(contact_id=anna_id, kind="testimonial_request", rule_key="testimonial:e2e", title="Ask Anna for a testimonial",
                reason="repeat customer with no testimonial yet", assignee_id=seeded.users["sales"].id)
    db.session.add(todo)
    db.session.flush()
    todo_id = todo.id
    db.session.commit()  # and no transaction left open while the browser writes

    # An admin edits the template; the preview follows the typing, for a contact found by search.
    sign_in(page, seeded.users["admin"].email)
    page.goto("/settings/email/templates/testimonial_request")
    preview = page.frame_locator("#preview-frame")
    expect(preview.locator(".subject")).to_have_text("Would you share a few words about My shop?")
    fill_form(page, {"Subject": "A few words for {{ shop.name }}, {{ contact.first_name }}?"})
    expect(preview.locator(".subject")).to_have_text("A few words for My shop, Ada?")
    type_slowly(page.get_by_label("Preview for a contact"), "de Vries")
    expect(preview.locator(".subject")).to_have_text("A few words for My shop, Anna?")
    body = page.get_by_label("Body (Markdown)")
    body.fill("Dear {{ contact.first_name }},\n\n**Thank you** for {{ contact.order_count }} orders.\n\n{{ contact.shoe }}")
    expect(preview.locator(".problem")).to_contain_text("has no attribute 'shoe'")
    submit(page, "Save")
    expect(page.locator("#f-body-error")).to_have_text("Line 5: 'dict object' has no attribute 'shoe'")
    page.get_by_label("Body (Markdown)").fill("Dear {{ contact.first_name }},\n\n**Thank you** for {{ contact.order_count }} orders.")
    expect(preview.locator(".html-part strong")).to_have_text("Thank you")
    submit(page, "Save")
    expect(flashes(page)).to_contain_text("saved")

    # Sales works the to-do: "Send the email" opens the composer with that rule's template.
    sign_out(page)
    sign_in(page, seeded.users["sales"].email)
    page.goto("/tasks")
    page.locator(f"#task-{todo_id}").get_by_role("button", name="Send the email").click()
    expect(page.locator(".eligibility")).to_have_text("Can receive this email.")
    submit(page, "Send the email")
    expect(page).to_have_url(re.compile(rf"/contacts/{anna_id}$"))
    expect(flashes(page)).to_contain_text("The to-do is done: email sent.")
    assert db_rows(select(Task.status, Task.outcome).where(Task.id == todo_id)) == [("done", "email sent")]
    timeline_entry = page.locator("#timeline a.email-link").first
    expect(timeline_entry).to_have_text("A few words for My shop, Anna?")

    # The worker's part, through the real SMTP server.
    sending.deliver_due()
    db.session.commit()
    [received] = smtp.messages
    html = received.message.get_body(("html",)).get_content()
    assert "<strong>Thank you</strong> for 3 orders." in html
    link = re.search(r'<a href="([^"]+/u/[^"]+)"[^>]*>Unsubscribe</a>', html).group(1)
    assert received.message["List-Unsubscribe"].strip() == f"<{link}>"

    # The timeline entry opens the message as sent, with the server's answer.
    timeline_entry.click()
    expect(page.locator(".status")).to_have_text("sent")
    expect(page.locator(".smtp-answer")).to_contain_text("250 2.0.0 Message accepted for delivery")

    # The customer follows the footer link in a browser with no session: the page asks first.
    page.context.clear_cookies()
    page.goto(link)
    expect(page.get_by_role("heading", name="My shop")).to_be_visible()
    assert db_rows(select(Contact.consent).where(Contact.id == anna_id)) == [(True,)]
    submit(page, "Unsubscribe")
    expect(page.get_by_role("status")).to_have_text("You are unsubscribed. My shop will send you no more marketing email.")
    assert db_rows(select(Contact.consent).where(Contact.id == anna_id)) == [(False,)]
    assert db_rows(select(EmailMessage.status)) == [("sent",)]
