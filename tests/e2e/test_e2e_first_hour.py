"""In the browser: what a new shop owner meets in the first hour.

A year of history imported makes only current to-dos; a call is logged in three actions from
any page; a pile of to-dos goes in one bulk dismiss; no page scrolls sideways on a phone; and
/setup asks about the shop first, guessing from the browser.
"""
import csv
import re
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from crm.models import Interaction, Setting, Task
from tests.conftest import PASSWORD
from tests.e2e.browser import fill_form, flashes, sign_in, submit
from tests.e2e.shop import count, db_rows, db_scalar

pytestmark = pytest.mark.e2e


def write_year_of_orders(path, now, customers=24):
    """Two paid orders per customer, the second i*15+8 days ago: a year of history."""
    with open(path, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["order_id", "email", "placed_at", "total", "status"])
        for i in range(customers):
            second = now - timedelta(days=i * 15 + 8)
            for n, placed in enumerate((second - timedelta(days=40), second)):
                out.writerow([f"{i}-{n}", f"c{i}@example.com", placed.strftime("%Y-%m-%dT%H:%M:%SZ"), "40.00", "paid"])
    return path


def test_importing_a_year_of_history_makes_only_current_to_dos(logged_in_page, tmp_path, run_worker):
    page = logged_in_page
    now = datetime.now(timezone.utc)
    path = write_year_of_orders(tmp_path / "year.csv", now)
    page.goto("/imports")
    upload = page.locator("#upload")
    fill_form(upload, {"What the file holds": "Orders from any CSV, TSV, JSON or NDJSON file"})
    upload.get_by_label("File", exact=True).set_input_files(path)
    submit(upload, "Upload and preview")
    submit(page, "Run the import")
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Import #\d+$"))
    run_worker()  # the import, then the refresh it queued
    # The page reloads itself when its progress poll sees the run end; reloading before that
    # would race the poll's own reload (net::ERR_ABORTED). Wait for it, then read the page as it is now.
    expect(page.locator(".import-summary")).to_be_visible(timeout=15_000)
    page.reload()
    summary = page.locator(".import-summary li")
    expect(summary.first).to_have_text("48 records read")
    todo_line = summary.filter(has_text="to-do")
    expect(todo_line).to_contain_text("had passed before the import")
    made = int(re.match(r"(\d+) to-dos? made", todo_line.inner_text()).group(1))
    # The result offers the next step.
    page.get_by_role("navigation", name="Next steps").get_by_role("link", name="Open the to-dos").click()
    page.goto("/tasks?view=all")
    expect(page.locator("#task-count")).to_have_text(f"{made} to-do{'' if made == 1 else 's'}")
    dues = [due for (due,) in db_rows(select(Task.due_at).where(Task.status == "open"))]
    assert dues and len(dues) == made
    # None months overdue: every one is inside its rule's window (at most 19 days, a replenishment).
    assert all(now - due.replace(tzinfo=timezone.utc) <= timedelta(days=19, hours=1) for due in dues)


def test_a_call_is_found_and_logged_in_three_actions(page, seeded):
    sign_in(page, seeded.users["support"].email)
    page.goto("/leads")
    actions = []
    page.keyboard.press("/")
    actions.append("press /: the header search")
    expect(page.locator("#header-search")).to_be_focused()
    page.keyboard.type("Anna de")
    page.keyboard.press("Enter")
    actions.append("type the name, Enter: her page opens")
    expect(page).to_have_url(re.compile(rf"/contacts/{seeded.customer.id}$"))
    subject = page.get_by_label("Subject", exact=True)
    expect(subject).to_be_focused()  # Kind is already "Call": the cursor waits in the first empty field
    page.keyboard.type("Asked when the matcha is back")
    page.keyboard.press("Enter")
    actions.append("type the subject, Enter: saved")
    expect(page.locator("#timeline > li.tl-interaction").first).to_contain_text("Asked when the matcha is back")
    assert len(actions) <= 3, actions
    assert db_rows(select(Interaction.kind).where(Interaction.subject == "Asked when the matcha is back")) == [("call",)]


def test_enter_with_no_match_lands_on_the_list_with_the_words(page, seeded):
    sign_in(page, seeded.users["support"].email)
    page.locator("#header-search").fill("nobody-like-this")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/contacts\?q=nobody-like-this$"))
    expect(flashes(page)).to_contain_text("No contact matches")


def test_a_bulk_dismiss_clears_the_ticked_to_dos(page, seeded):
    sign_in(page, seeded.users["admin"].email)
    page.goto("/tasks?view=all")
    open_before = count(Task, Task.status == "open")
    assert open_before >= 2
    boxes = page.locator("#task-list input[name=task_id]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    form = page.locator("#bulk-tasks")
    form.get_by_label("Reason (dismiss) / outcome (done)").fill("Old history, nothing to do")
    form.get_by_role("button", name="Apply").click()
    expect(flashes(page)).to_have_text("2 to-dos dismissed.")
    assert count(Task, Task.status == "open") == open_before - 2
    assert count(Task, Task.close_reason == "Old history, nothing to do") == 2


def _pages(app, seeded):
    """Every page a person opens: each GET route without arguments, and the seeded objects' pages."""
    skip = ("/api", "/static", "/logout", "/updating", "/contacts/go", "/login", "/setup", "/healthz")
    urls = set()
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.arguments or rule.rule.startswith(skip) or rule.rule.endswith(
                (".csv", ".json", ".zip", ".js")):
            continue
        urls.add(rule.rule)
    contact = seeded.customer.id
    urls |= {f"/contacts/{contact}", f"/contacts/{contact}/edit", f"/tasks/{seeded.task.id}", "/tasks?view=all"}
    order_id = db_scalar(select(Task.id).limit(1))  # any id; the order page is picked below
    from crm.models import Order

    order_id = db_scalar(select(Order.id).where(Order.contact_id == contact).limit(1))
    urls.add(f"/orders/{order_id}")
    return sorted(urls)


def test_no_page_scrolls_sideways_on_a_390_pixel_phone(page, seeded, live_server, browser_console):
    # A page outside the base layout (an email preview frame) lets the browser ask for /favicon.ico.
    browser_console.expect_error(r"status of 404 .*/favicon\.ico\)$")
    sign_in(page, seeded.users["admin"].email)
    page.set_viewport_size({"width": 390, "height": 844})
    too_wide = []
    for url in _pages(live_server.app, seeded):
        response = page.goto(url)
        if response is None or response.status >= 400 or "text/html" not in (response.headers.get("content-type") or ""):
            continue
        sizes = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        if sizes[0] > sizes[1]:
            widest = page.evaluate("""() => [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
                .filter(e => { for (let p = e.parentElement; p; p = p.parentElement) {
                    if (getComputedStyle(p).overflowX !== 'visible') return false; } return true; })
                .slice(0, 3).map(e => e.tagName + '.' + e.className + '#' + e.id)""")
            too_wide.append(f"{url}: {sizes[0]} px wide ({', '.join(widest)})")
    assert too_wide == [], "\n".join(too_wide)
    # The contact list fits a laptop screen too.
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/contacts")
    assert page.evaluate("() => document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    assert page.locator("table.contacts").bounding_box()["width"] <= 1280
    page.set_viewport_size({"width": 390, "height": 844})
    # The navigation stays compact: the header is not a wall of links.
    page.goto("/")
    assert page.locator("header.site-header").bounding_box()["height"] <= 150


def test_setup_asks_about_the_shop_first_with_the_browser_s_guesses(browser, live_server, app):
    context = browser.new_context(base_url=live_server.url, locale="nl-NL", timezone_id="Europe/Amsterdam")
    page = context.new_page()
    try:
        page.goto("/")
        expect(page).to_have_url(re.compile(r"/setup$"))
        form = page.locator("form#setup")
        expect(form.locator("#timezone")).to_have_value("Europe/Amsterdam")
        expect(form.locator("#language")).to_have_value("nl")
        expect(form.locator("#currency")).to_have_value("EUR")
        expect(page.locator("#guessed")).to_be_visible()
        # A Dutch browser gets /setup in Dutch (it follows the browser: there is no user yet).
        fill_form(form, {"Naam van de winkel": "Theehuis Noord", "Uw naam": "Ada", "E-mail": "ada@example.com",
                         "Wachtwoord": PASSWORD, "Herhaal het wachtwoord": PASSWORD})
        submit(form, "Stel de winkel in en maak het beheerdersaccount aan")
        expect(page.get_by_role("button", name="Uitloggen")).to_be_visible()
        expect(page.locator("header .brand")).to_contain_text("Theehuis Noord")
        expect(page.locator("footer")).to_contain_text("Europe/Amsterdam")
        stored = db_scalar(select(Setting.value).where(Setting.key == "shop"))
        assert (stored["name"], stored["timezone"], stored["currency"], stored["language"]) == (
            "Theehuis Noord", "Europe/Amsterdam", "EUR", "nl")
    finally:
        context.close()
