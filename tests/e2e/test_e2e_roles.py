"""In the browser: a viewer reads everything and is offered nothing to change; an action their
role does not allow says so and changes nothing."""
import re

import pytest
from playwright.sync_api import expect

from crm.extensions import db
from crm.models import Interaction, User
from crm.services.staff import users
from tests.e2e.browser import fill_form, flashes, same_document, sign_in, submit
from tests.e2e.shop import count

pytestmark = pytest.mark.e2e

WRITE_BUTTONS = re.compile(r"^(New contact|Edit|Merge…|Delete…|Save|Add|Mark done|Snooze|Dismiss|Reassign|"
                           r"Upload and preview|Run the import|New order|Add an order)$")


def test_a_viewer_reads_every_page_without_write_controls(page, seeded):
    sign_in(page, seeded.users["viewer"].email)
    main = page.locator("main")
    for path, shows in (
        ("/contacts", seeded.customer.name),
        (f"/contacts/{seeded.customer.id}", "Asked when the Sencha is back in stock"),
        ("/tasks", seeded.task.title),
        ("/leads", seeded.lead.name),
        ("/orders", "#1007"),
        ("/imports", "Nothing imported yet."),
        ("/", "Where customers are on the journey"),
    ):
        page.goto(path)
        expect(main, f"{path} shows its content").to_contain_text(shows)
        expect(main.locator("form[method=post i]"), f"{path} has no form that changes anything").to_have_count(0)
        expect(main.get_by_role("button", name=WRITE_BUTTONS), f"{path} offers no write button").to_have_count(0)
        expect(main.get_by_role("link", name=WRITE_BUTTONS), f"{path} links to no write page").to_have_count(0)


def test_an_action_the_role_no_longer_allows_says_so_and_changes_nothing(page, seeded, browser_console):
    sign_in(page, seeded.users["sales"].email)
    page.goto(f"/contacts/{seeded.customer.id}")
    form = page.locator("#log-form")
    expect(form).to_be_visible()

    # While the page is open, an admin makes the salesperson a viewer.
    users.set_role(db.session.get(User, seeded.users["sales"].id), "viewer", actor_id=seeded.users["admin"].id)
    db.session.commit()
    before = count(Interaction)
    browser_console.expect_error(rf"status of 403 .*/contacts/{seeded.customer.id}/interactions\)$")
    browser_console.expect_error(rf"Response Status Error Code 403 from /contacts/{seeded.customer.id}/interactions")
    with same_document(page):
        fill_form(form, {"Kind": "Note", "Subject": "Should not be saved"})
        submit(form, "Save")
        expect(flashes(page).filter(has_text="Your role")).to_have_text("Your role cannot do that; nothing was changed.")
    expect(page.locator("#timeline")).not_to_contain_text("Should not be saved")
    assert count(Interaction) == before

    # The page's Edit button is stale too; following it explains the refusal.
    browser_console.expect_error(rf"status of 403 .*/contacts/{seeded.customer.id}/edit\)$")
    page.locator(".header-actions").get_by_role("button", name="Edit").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect(page.locator("main")).to_contain_text("Your role (Viewer) cannot do this. Nothing was changed.")
