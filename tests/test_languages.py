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


def test_a_page_looks_its_translations_up_once_and_follows_a_forced_language(app, monkeypatch):
    """The templates' and the code's strings come from translations kept for the request
    (Flask-Babel's own look-up costs ~40 µs a string: a to-do list translates hundreds), yet a
    language forced for an email in the middle of a page, or chosen anew, is followed at once."""
    from flask import render_template_string
    from flask_babel import Domain, force_locale, lazy_gettext, refresh

    looked_up = []
    original = Domain.get_translations
    monkeypatch.setattr(Domain, "get_translations", lambda self: looked_up.append(1) or original(self))
    strings = "{% for _i in range(20) %}{{ _('Contacts') }} {% endfor %}"
    with app.test_request_context(headers={"Accept-Language": "nl"}):
        assert render_template_string(strings).split() == ["Contacten"] * 20
        assert [str(lazy_gettext("Contacts")) for _ in range(20)] == ["Contacten"] * 20
        assert len(looked_up) == 1
        with force_locale("en"):
            assert render_template_string(strings).split() == ["Contacts"] * 20
            assert str(lazy_gettext("Contacts")) == "Contacts"
        assert render_template_string(strings).split() == ["Contacten"] * 20
        refresh()
        with force_locale("en"):
            refresh()  # as a request does first; the forced language stays
            assert render_template_string("{{ _('Contacts') }}") == "Contacts"
        assert len(looked_up) <= 5
