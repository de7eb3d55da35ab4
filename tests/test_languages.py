"""Which language a person reads the CRM in: their own choice, else the browser, else the shop."""
from crm.extensions import db
from tests.helpers import sign_in, soup


def navigation(client, **headers):
    page = soup(client.get("/", headers=headers))
    return [a.get_text(strip=True) for a in page.select("nav a")]


def test_the_browser_language_picks_dutch(client):
    sign_in(client, "admin")
    assert "Contacten" in navigation(client, **{"Accept-Language": "nl-NL,nl;q=0.9,en;q=0.5"})
    assert "Contacts" in navigation(client, **{"Accept-Language": "en-GB"})


def test_a_language_the_crm_lacks_falls_back_to_the_shop_then_english(client):
    sign_in(client, "admin")
    assert "Contacts" in navigation(client, **{"Accept-Language": "ja"})


def test_the_users_own_choice_wins_over_the_browser(client):
    user = sign_in(client, "admin")
    user.language = "nl"
    db.session.commit()
    assert "Contacten" in navigation(client, **{"Accept-Language": "en"})
