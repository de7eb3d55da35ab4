"""In the browser, a Dutch user: the main workflows in Dutch, with Dutch amounts and dates.

The user chose Dutch on /account (users.language = 'nl') while the browser asks for English.
Controls are found by name and id, not by their (translated) labels.
"""
import re
from datetime import timedelta

import pytest
from babel.dates import format_date
from playwright.sync_api import expect
from sqlalchemy import select

from crm.extensions import db
from crm.models import Task, User
from crm.services.orders import recording as orders_service
from tests.conftest import PASSWORD
from tests.e2e.browser import same_document, type_slowly
from tests.e2e.shop import _paid_order, db_rows

pytestmark = pytest.mark.e2e

MONEY_1282_50 = re.compile(r"€\s1\.282,50")  # € 1.282,50: Dutch separators, the sign before the amount


@pytest.fixture
def dutch_shop(seeded):
    """The seeded shop with a large order this month, and the sales user reading Dutch."""
    big = _paid_order(seeded.customer, 1010, seeded.now - timedelta(days=3), [("HAMPER", "Gift hamper", 1, "1234.50")])
    orders_service.record_orders([big], actor_id=seeded.users["admin"].id, now=seeded.now,
                                 contact_ids=[seeded.customer.id])
    db.session.get(User, seeded.users["sales"].id).language = "nl"
    db.session.commit()
    return seeded


def sign_in_dutch(page, email):
    page.goto("/login")  # no user yet: the sign-in page follows the browser (English)
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    expect(page.get_by_role("button", name="Uitloggen")).to_be_visible()


def test_a_dutch_user_works_in_dutch(page, dutch_shop):
    shop = dutch_shop
    sign_in_dutch(page, shop.users["sales"].email)

    # The dashboard: Dutch words, Dutch amounts, Dutch dates.
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    expect(page.locator("header .main-nav")).to_contain_text("Contacten")
    expect(page.locator("header .main-nav")).to_contain_text("Taken")
    expect(page.locator("header .role")).to_have_text("Verkoop")
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    stats = page.locator(".stat-grid")
    expect(stats).to_contain_text(MONEY_1282_50)
    today = format_date(shop.now, "medium", locale="nl")  # "5 dec 2026" (CLDR's Dutch medium date)
    assert re.fullmatch(r"\d{1,2} [a-z]{3}\.? \d{4}", today)
    expect(stats).to_contain_text(f"omzet in de 30 dagen tot {today} (2 bestellingen)")
    expect(page.locator(".period-shown")).to_contain_text("U ziet de laatste 12 maanden")
    expect(page.locator("footer")).to_contain_text("tijden in")

    # Live search on /contacts narrows the list as one types.
    page.goto("/contacts")
    expect(page.locator("header .main-nav a[aria-current=page]")).to_have_text("Contacten")
    expect(page.locator("#header-search")).to_have_attribute("placeholder", re.compile("^Zoek een contact"))
    results = page.locator("#contact-results")
    expect(results).to_contain_text(shop.lead.name)
    with same_document(page):
        type_slowly(page.locator("main input[name=q]"), "de vr")
        expect(results.locator("tbody tr")).to_have_count(1)
        expect(results).to_contain_text(shop.customer.name)
    expect(results.locator("thead")).to_contain_text("Fase")

    # Log a call on the contact's page; the page shows the orders in euros the Dutch way.
    page.goto(f"/contacts/{shop.customer.id}")
    expect(page.locator("main")).to_contain_text(re.compile(r"€\s1\.234,50"))
    form = page.locator("#log-form")
    with same_document(page):
        form.locator("[name=kind]").select_option("call")
        form.locator("[name=subject]").fill("Bedankt voor de bestelling")
        form.locator("button[type=submit]").click()
        expect(page.locator("#timeline > li").first).to_contain_text("Bedankt voor de bestelling")
        expect(form.locator("[name=subject]")).to_have_value("")

    # Complete the to-do on /tasks.
    page.goto("/tasks")
    row = page.locator(f"#task-{shop.task.id}")
    expect(row).to_contain_text(shop.task.title)
    with same_document(page):
        row.locator("details.task-action > summary").first.click()  # "Done": its form loads on opening
        expect(row.locator("form.complete [name=outcome]")).to_be_visible()
        row.locator("form.complete [name=outcome]").fill("Blij met de sencha")
        row.locator("form.complete [name=sentiment]").select_option("positive")
        row.locator("form.complete button[type=submit]").click()
        expect(row.get_by_role("status")).to_contain_text("Blij met de sencha")
    expect(row.get_by_role("status")).to_contain_text("Afgerond: Blij met de sencha")
    assert db_rows(select(Task.status, Task.outcome).where(Task.id == shop.task.id)) == [("done", "Blij met de sencha")]

    # Back on the dashboard, still in Dutch.
    page.locator("header .main-nav a").first.click()
    expect(page.locator("section.stat-grid")).to_have_attribute("aria-label", "De winkel in cijfers")
