"""In the browser: the first-run setup, signing in and out, and a refused password."""
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from crm.models import Contact, User
from tests.conftest import PASSWORD
from tests.e2e.browser import Dashboard, SetupPage, field_error, fill_form, flashes, sign_in, sign_out, submit
from tests.e2e.shop import count, db_rows, ensure_user

pytestmark = pytest.mark.e2e


def test_first_visit_creates_the_admin_and_loads_the_demo_shop(page, live_server, browser_console):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/setup$"))

    SetupPage(page).create_admin("Ada Lovelace", "Ada@Shop.example", demo=True)

    expect(page).to_have_url(live_server.url + "/")
    expect(flashes(page)).to_have_text("Welcome! Your admin account is ready. The demo shop is loaded.")
    expect(page.locator(".site-header .who")).to_contain_text("Ada Lovelace")
    assert db_rows(select(User.email, User.role)) == [("ada@shop.example", "admin")]
    dashboard = Dashboard(page)
    contacts = count(Contact)
    assert contacts > 50
    assert dashboard.figures()["contacts"] == str(contacts)
    assert sum(dashboard.stage_counts().values()) == contacts
    # The setup page is gone once an account exists.
    browser_console.expect_error(r"status of 404 .*/setup\)$")
    assert page.goto("/setup").status == 404


def test_setup_explains_a_password_that_is_too_short(page):
    setup = SetupPage(page).open()
    setup.create_admin("Ada", "ada@shop.example", password="short")
    expect(field_error(page, "Password")).to_contain_text("at least 10")
    assert count(User) == 0


def test_sign_in_and_out(page):
    sales = ensure_user("sales")
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))

    sign_in(page, "SALES@example.com ")
    Dashboard(page).open()
    expect(page.locator(".site-header .who")).to_contain_text(sales.name)

    sign_out(page)
    expect(flashes(page)).to_have_text("You are signed out.")
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_sign_in_returns_to_the_page_that_asked_for_it(page, live_server):
    ensure_user("viewer")
    page.goto("/settings")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    fill_form(page, {"Email": "viewer@example.com", "Password": PASSWORD})
    submit(page, "Sign in")
    expect(page).to_have_url(live_server.url + "/settings/")


def test_a_wrong_password_shows_the_reason_under_the_field(page):
    ensure_user("admin")
    page.goto("/login")
    fill_form(page, {"Email": "admin@example.com", "Password": "not the password"})
    submit(page, "Sign in")

    expect(field_error(page, "Password")).to_have_text("That email and password do not match an active account.")
    expect(page.get_by_label("Password", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
