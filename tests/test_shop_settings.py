"""Settings → Shop and /setup: the shop's name, time zone, currency, language and hours, kept in the database."""
from __future__ import annotations

from datetime import datetime, timezone

from crm import create_app
from crm.extensions import db
from crm.models import Setting, User
from crm.services import shop
from tests.conftest import PASSWORD, soup, text_of

SHOP = {"shop_name": "Tea Tree", "timezone": "Europe/Amsterdam", "currency": "gbp", "language": "nl",
        "opens": "08:30", "closes": "18:00", "days": ["mon", "tue", "sat"]}


def errors_of(response):
    return {e["id"].removesuffix("-error"): text_of(e) for e in soup(response).select(".field-error")}


def test_setup_asks_about_the_shop_before_the_admin_and_stores_both(client):
    page = soup(client.get("/setup"))
    form = page.select_one("form#setup")
    assert form["data-guess-shop"] == "yes"  # the browser may fill in its guesses
    legends = [text_of(legend) for legend in form.select("fieldset > legend")]
    assert legends.index("Your shop") < legends.index("Your administrator account")
    response = client.post("/setup", data={**SHOP, "name": "Ada", "email": "ada@example.com",
                                           "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 302
    stored = db.session.get(Setting, "shop").value
    assert stored == {"name": "Tea Tree", "timezone": "Europe/Amsterdam", "currency": "GBP", "language": "nl",
                      "opens": "08:30", "closes": "18:00", "days": ["mon", "tue", "sat"]}
    page = soup(client.get("/"))
    assert "Tea Tree" in text_of(page.select_one("header")) and "Europe/Amsterdam" in text_of(page.select_one("footer"))


def test_setup_names_a_bad_shop_field_and_makes_no_account(client):
    response = client.post("/setup", data={**SHOP, "timezone": "Mars/Olympus", "currency": "euro", "days": [],
                                           "name": "Ada", "email": "ada@example.com",
                                           "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 200
    errors = errors_of(response)
    assert errors["timezone"].startswith("Choose a time zone") and "three-letter" in errors["currency"]
    assert "Tick at least one day" in text_of(soup(response).select_one("#days"))
    assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 0
    assert db.session.get(Setting, "shop") is None


def test_the_shop_page_saves_and_the_shop_time_zone_is_used_instead_of_the_config(client, auth, app):
    auth.as_role("admin")
    page = soup(client.get("/settings/shop"))
    assert page.select_one("#timezone option[selected]")["value"] == app.config["SHOP_TIMEZONE"]
    # An admin whose browser asks for English reads English, though the shop now speaks Dutch.
    response = client.post("/settings/shop", data=SHOP, follow_redirects=True, headers={"Accept-Language": "en"})
    assert "Shop settings saved." in text_of(soup(response).select_one(".flash-success"))
    from crm.services.shop.clock import shop_today

    assert str(shop.current().zone) == "Europe/Amsterdam"
    # 23:30 UTC on 1 June is already 2 June in Amsterdam.
    assert shop_today(datetime(2026, 6, 1, 23, 30, tzinfo=timezone.utc)).day == 2
    assert "Tea Tree" in text_of(soup(client.get("/settings/")).select_one("main"))
    # With no browser language and no choice of their own, people now read the shop's Dutch.
    assert text_of(soup(client.get("/settings/")).select_one("h1")) == "Instellingen"


def test_closing_before_opening_is_refused(client, auth):
    auth.as_role("admin")
    response = client.post("/settings/shop", data={**SHOP, "opens": "18:00", "closes": "09:00"})
    assert errors_of(response)["closes"] == "Closing time must be after opening time."


def test_only_admins_change_the_shop(client, auth):
    auth.as_role("sales")
    assert client.get("/settings/shop").status_code == 403
    assert client.post("/settings/shop", data=SHOP).status_code == 403


def test_setup_on_an_empty_database_builds_the_tables_first(tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'new.sqlite3'}", "TESTING": True,
                      "SECRET_KEY": "x", "WTF_CSRF_ENABLED": False})
    client = app.test_client()
    response = client.get("/setup")
    assert response.status_code == 200 and b"Your shop" in response.data
    with app.app_context():
        from crm.services.setup import schema

        assert schema.is_migrated()
        db.engine.dispose()
