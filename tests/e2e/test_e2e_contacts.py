"""In the browser: find a contact as you type, log a call on their page, and edit their details."""
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from crm.models import Contact, Interaction
from tests.e2e.browser import field_error, fill_form, flashes, labelled, same_document, sign_in, submit, type_slowly
from tests.e2e.shop import count, db_rows

pytestmark = pytest.mark.e2e


def test_live_search_narrows_the_list_as_you_type_and_opens_the_contact(logged_in_page, seeded):
    page = logged_in_page
    page.goto("/contacts")
    results = page.locator("#contact-results")
    search = page.get_by_label("Search contacts")
    expect(results).to_contain_text(seeded.lead.name)

    with same_document(page):
        type_slowly(search, "de vr")
        expect(results.locator(".result-count")).to_contain_text("1 contact matches")
        expect(results.locator("tbody tr")).to_have_count(1)
        expect(results).to_contain_text(seeded.customer.name)
        # The URL follows the search (hx-push-url), so the list can be bookmarked or reloaded.
        expect(page).to_have_url(re.compile(r"/contacts\?(.*&)?q=de(\+|%20)vr(&|$)"))

        type_slowly(search, "rossi")
        expect(results.locator("tbody tr")).to_have_count(1)
        expect(results).to_contain_text(seeded.subscriber.name)
        expect(page).to_have_url(re.compile(r"[?&]q=rossi(&|$)"))

        # Back returns to the earlier search, the whole page intact (not just the list).
        page.go_back()
        expect(page).to_have_url(re.compile(r"[?&]q=de(\+|%20)vr(&|$)"))
        expect(results).to_contain_text(seeded.customer.name)
        expect(results.locator("tbody tr")).to_have_count(1)
        expect(page.get_by_role("heading", name="Contacts", exact=True)).to_be_visible()
        expect(search).to_have_value("de vr")

    results.get_by_role("link", name=seeded.customer.name).click()
    expect(page).to_have_url(re.compile(rf"/contacts/{seeded.customer.id}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(seeded.customer.name)


def test_a_logged_call_goes_on_top_of_the_timeline_and_the_form_empties(page, seeded):
    sign_in(page, seeded.users["support"].email)
    page.goto(f"/contacts/{seeded.customer.id}")
    form = page.locator("#log-form")
    subject = labelled(form, "Subject")
    newest = page.locator("#timeline > li").first
    expect(subject).to_be_focused()  # Kind is already "Call": the cursor waits in Subject

    with same_document(page):
        fill_form(form, {"Kind": "Call", "Direction": "Outbound", "Channel": "phone",
                         "Subject": "Told her the Sencha is back", "Outcome": "Ordering tomorrow"})
        submit(form, "Save")
        expect(newest).to_contain_text("Told her the Sencha is back")
        expect(newest).to_contain_text("Outcome: Ordering tomorrow")
        expect(newest).to_contain_text(f"by {seeded.users['support'].name}")
        expect(subject).to_have_value("")
        expect(labelled(form, "Outcome")).to_have_value("")
        expect(subject).to_be_focused()  # the fresh form is ready for the next one

        # The keyboard alone: Enter in a one-line field saves the fresh form.
        subject.fill("Sent the tracking link")
        subject.press("Enter")
        expect(newest).to_contain_text("Sent the tracking link")
        expect(subject).to_have_value("")

    assert db_rows(select(Interaction.subject, Interaction.kind).where(
        Interaction.contact_id == seeded.customer.id, Interaction.subject.in_(
            ["Told her the Sencha is back", "Sent the tracking link"])).order_by(Interaction.id)) == [
        ("Told her the Sencha is back", "call"), ("Sent the tracking link", "call")]


def test_editing_explains_a_refused_field_and_saves_once_it_is_fixed(logged_in_page, seeded, browser_console):
    page = logged_in_page
    browser_console.expect_error(rf"status of 422 .*/contacts/{seeded.lead.id}/edit\)$")  # the refused form
    page.goto(f"/contacts/{seeded.lead.id}")
    page.locator(".header-actions").get_by_role("button", name="Edit").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Edit {seeded.lead.name}")

    # Anna already has this email: the error says so and links to her.
    fill_form(page, {"Email": seeded.customer.email, "Phone": "12"})
    submit(page, "Save")
    expect(field_error(page, "Email")).to_have_text(
        f"{seeded.customer.name} (#{seeded.customer.id}) already has the email {seeded.customer.email.lower()}.")
    expect(field_error(page, "Phone")).to_have_text("Write the number with its country code, e.g. +49 30 1234567.")
    expect(page.locator("#email-duplicate").get_by_role(
        "link", name=f"Open {seeded.customer.name} (#{seeded.customer.id})")).to_have_attribute(
        "href", f"/contacts/{seeded.customer.id}")
    assert db_rows(select(Contact.email, Contact.phone).where(Contact.id == seeded.lead.id)) == [
        ("bjorn@example.se", None)]

    fill_form(page, {"Email": "bjorn.aberg@kontor.example", "Phone": "+46 8 123 456 78"})
    submit(page, "Save")
    expect(page).to_have_url(re.compile(rf"/contacts/{seeded.lead.id}$"))
    expect(flashes(page)).to_have_text("Saved.")
    expect(page.locator(".contact-facts")).to_contain_text("bjorn.aberg@kontor.example")
    assert db_rows(select(Contact.email, Contact.phone).where(Contact.id == seeded.lead.id)) == [
        ("bjorn.aberg@kontor.example", "+46812345678")]
    assert count(Contact) == 3
