"""In the browser: working a to-do on /tasks, and what that leaves on the contact's timeline."""
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from crm.models import Interaction, Task
from tests.e2e.browser import fill_form, same_document, sign_in, submit
from tests.e2e.shop import db_rows

pytestmark = pytest.mark.e2e


def test_completing_a_to_do_with_its_outcome_puts_the_outcome_on_the_timeline(page, seeded):
    sign_in(page, seeded.users["sales"].email)
    page.goto("/tasks")
    row = page.locator(f"#task-{seeded.task.id}")
    expect(row).to_contain_text(seeded.task.title)
    expect(row.locator(".contact")).to_have_text(seeded.customer.name)

    with same_document(page):
        row.get_by_text("Done", exact=True).click()
        fill_form(row, {"Outcome": "Loves the Sencha, wants the 100g tin", "Sentiment": "Positive"})
        submit(row, "Mark done")
        expect(row.get_by_role("status")).to_have_text("Done: Loves the Sencha, wants the 100g tin")
        expect(row.get_by_role("button", name="Mark done")).to_have_count(0)
    assert db_rows(select(Task.status, Task.outcome).where(Task.id == seeded.task.id)) == [
        ("done", "Loves the Sencha, wants the 100g tin")]

    row.get_by_role("link", name=seeded.customer.name).click()
    expect(page).to_have_url(re.compile(rf"/contacts/{seeded.customer.id}$"))
    logged = page.locator("#timeline > li.tl-interaction").first
    expect(logged).to_contain_text(seeded.task.title)
    expect(logged).to_contain_text("Outcome: Loves the Sencha, wants the 100g tin")
    expect(logged.locator(".badge.sentiment-positive")).to_be_visible()
    expect(page.locator(".contact-tasks")).not_to_contain_text(seeded.task.title)
    assert db_rows(select(Interaction.kind, Interaction.author_id).where(Interaction.task_id == seeded.task.id)) == [
        ("call", seeded.users["sales"].id)]

    # Off the open list for good.
    page.goto("/tasks")
    expect(page.get_by_role("heading", name="To-dos", exact=True)).to_be_visible()
    expect(page.locator(f"#task-{seeded.task.id}")).to_have_count(0)


def test_a_to_do_added_on_the_contact_page_joins_the_open_list_without_a_reload(page, seeded):
    sign_in(page, seeded.users["support"].email)
    page.goto(f"/contacts/{seeded.customer.id}")
    open_list = page.locator(".contact-tasks")
    expect(open_list).not_to_contain_text("Send the spring catalogue")

    with same_document(page):
        new = page.locator("section.new-task")
        new.get_by_text("Add a to-do", exact=True).click()
        submit(new, "Add")
        expect(page.locator("section.new-task .field-error")).to_contain_text("Say what needs doing.")
        fill_form(page.locator("section.new-task"), {"What needs doing": "Send the spring catalogue"})
        submit(page.locator("section.new-task"), "Add")
        expect(page.locator("section.new-task").get_by_role("status")).to_contain_text(
            "To-do added: Send the spring catalogue")
        expect(open_list.locator("tr.task", has_text="Send the spring catalogue")).to_have_count(1)
    assert db_rows(select(Task.title, Task.assignee_id).where(Task.title == "Send the spring catalogue")) == [
        ("Send the spring catalogue", seeded.users["support"].id)]
