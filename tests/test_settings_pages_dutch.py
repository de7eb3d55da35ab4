"""The settings, email, newsletter and user pages in Dutch for a Dutch user (issue 20), and the
language picker on /account."""
from __future__ import annotations

import pytest

from crm.extensions import db
from crm.models import User
from tests.helpers import sign_in, soup, text_of


@pytest.fixture
def dutch_admin(client):
    user = sign_in(client, "admin")
    user.language = "nl"
    db.session.commit()
    return user


@pytest.mark.parametrize(("path", "heading", "also"), [
    ("/settings/", "Instellingen", "Naam, tijdzone, valuta, standaardtaal en openingstijden."),
    ("/settings/shop", "Winkel", "De winkelinstellingen opslaan"),
    ("/settings/users", "Gebruikers", "Gebruiker toevoegen"),
    ("/settings/email", "E-mail", "Een testbericht versturen"),
    ("/settings/email/templates", "E-mailsjablonen", "Verzoek om een review"),
    ("/settings/email/templates/survey", "Enquête", "Variabelen die u kunt gebruiken"),
    ("/settings/webhooks", "Webhooks", "Geheimen opslaan"),
    ("/settings/privacy", "Privacy", "Geen enkel contact hoeft beoordeeld te worden."),
    ("/settings/jobs/", "Achtergrondtaken", "Nog geen achtergrondtaken."),
    ("/settings/rules/", "Regels voor klantreis, score en taken", "E-mails die de regels versturen"),
    ("/settings/audit", "Logboek", "Filteren"),
    ("/settings/tokens/", "API-tokens", "Een token maken"),
    ("/campaigns/", "Nieuwsbrieven", "Nog geen nieuwsbrieven."),
    ("/account", "Uw account", "Uw wachtwoord wijzigen"),
])
def test_a_dutch_user_reads_the_page_in_dutch(client, dutch_admin, path, heading, also):
    response = client.get(path, headers={"Accept-Language": "en"})
    assert response.status_code == 200, path
    page = soup(response)
    assert text_of(page.select_one("h1")).startswith(heading)
    assert also in text_of(page)


def test_choosing_a_language_on_the_account_page(client):
    user = sign_in(client, "support")
    page = soup(client.get("/account", headers={"Accept-Language": "en"}))
    options = {o["value"]: text_of(o) for o in page.select("select[name=lang-language] option")}
    assert options == {"": "The browser's language", "en": "English", "nl": "Nederlands"}

    token = page.select_one(".language-form input[name=lang-csrf_token]")
    data = {"lang-language": "nl"} | ({"lang-csrf_token": token["value"]} if token else {})
    response = client.post("/account", data=data, headers={"Accept-Language": "en"}, follow_redirects=True)
    assert db.session.get(User, user.id).language == "nl"
    assert "Uw taal is opgeslagen." in text_of(soup(response).select_one(".flash"))
    assert text_of(soup(response).select_one("h1")) == "Uw account"

    refused = client.post("/account", data={"lang-language": "xx"}, headers={"Accept-Language": "en"})
    assert refused.status_code == 422 and db.session.get(User, user.id).language == "nl"

    client.post("/account", data={"lang-language": ""})
    assert db.session.get(User, user.id).language is None  # back to following the browser
    english = soup(client.get("/account", headers={"Accept-Language": "en"}))
    assert text_of(english.select_one("h1")) == "Your account"


def test_a_refused_template_says_why_in_dutch(client, dutch_admin):
    response = client.post("/settings/email/templates/winback?language=nl",
                           data={"language": "nl", "subject": "Hallo", "body": "  "})
    assert response.status_code == 422
    page = soup(response)
    assert text_of(page.select_one("#f-body-error")) == "Schrijf het bericht."
    assert "Niet opgeslagen: het sjabloon bevat een fout." in text_of(page)
