"""The rules' words in the reader's language: stored as a key and values beside the English."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from crm.extensions import db
from crm.models import Contact, Task
from crm.services.shared.said import N_, Day, Money, Np_, Said, from_json, revive, said, said_plural
from tests.engine_data import T0, buy, days, refresh
from tests.helpers import sign_in, soup, text_of


def test_a_said_sentence_is_its_english_words_and_keeps_its_key_and_values():
    orders = said_plural(Np_(3, "%(num)s paid order", "%(num)s paid orders"), 3)
    sentence = said(N_("repeat customer: %(orders)s, the latest on %(date)s"), orders=orders,
                    date=Day(date(2026, 5, 3)))
    assert sentence == "repeat customer: 3 paid orders, the latest on 3 May 2026"
    assert said(N_("spent %(spent)s"), spent=Money(Decimal("2851.7"), "EUR")) == "spent €2,851.70"
    stored = sentence.to_json()
    assert stored["k"] == "repeat customer: %(orders)s, the latest on %(date)s"
    assert stored["v"]["date"] == {"day": "2026-05-03"}
    again = from_json(stored)
    assert isinstance(again, Said) and again == sentence and again.to_json() == stored


def test_words_that_no_longer_match_their_key_stay_as_stored():
    stored = said(N_("first order on %(date)s"), date=Day(date(2026, 5, 3))).to_json()
    assert isinstance(revive("first order on 3 May 2026", stored), Said)
    typed = revive("signed the contract on the phone", stored)
    assert typed == "signed the contract on the phone" and not isinstance(typed, Said)
    assert from_json({"k": "x %(a)s", "v": {"a": {"nonsense": 1}}}) is None


def test_nested_sentences_and_amounts_survive_the_round_trip():
    sentence = said(N_("%(why)s; spent %(spent)s in total, above the shop median of %(median)s"),
                    why=said(N_("last order %(ago)s"), ago=said(N_("today"))),
                    spent=Money(Decimal("120.00"), "EUR"), median=Money(Decimal("80.00"), "GBP"))
    assert str(from_json(sentence.to_json())) == str(sentence) == \
        "last order today; spent €120.00 in total, above the shop median of £80.00"


def _customer_with_two_orders():
    contact_id = buy("1001", "anna@example.com", T0)
    buy("1002", "anna@example.com", T0 + days(20))
    refresh(T0 + days(200))
    return contact_id


def test_a_dutch_reader_sees_the_stage_reason_and_to_dos_in_dutch(client):
    contact_id = _customer_with_two_orders()
    contact = db.session.get(Contact, contact_id)
    assert contact.stage_reason == "repeat customer: 2 paid orders, the latest on 22 March 2026"
    user = sign_in(client, "sales")
    user.language = "nl"
    db.session.commit()
    page = soup(client.get(f"/contacts/{contact_id}"))
    assert "terugkerende klant: 2 betaalde bestellingen, de laatste op 22 mrt 2026" in text_of(page)
    tasks = db.session.query(Task).filter_by(contact_id=contact_id).all()
    assert tasks, "the rules made to-dos"
    titles = {t.title for t in tasks}
    listing = text_of(soup(client.get("/tasks?view=all&status=any")))
    dutch = {"Satisfaction call about the first order": "Tevredenheidsgesprek over de eerste bestelling",
             "Ask for a testimonial": "Vraag om een review", "Send a satisfaction survey": "Stuur een tevredenheidsenquête",
             "Replenishment reminder": "Herinnering om bij te bestellen"}
    for title in titles & dutch.keys():
        assert dutch[title] in listing and title not in listing


def test_an_english_reader_sees_the_rules_own_words(client):
    contact_id = _customer_with_two_orders()
    sign_in(client, "sales")
    page = text_of(soup(client.get(f"/contacts/{contact_id}", headers={"Accept-Language": "en"})))
    assert "repeat customer: 2 paid orders, the latest on 22 March 2026" in page


def test_the_api_keeps_the_english_words(client):
    contact_id = _customer_with_two_orders()
    contact = db.session.get(Contact, contact_id)
    lines = contact.score_breakdown
    assert lines and all(isinstance(line["why"], str) and line.get("said") for line in lines)


def test_every_stored_key_says_the_same_as_its_english_words(app):
    from sqlalchemy import select

    from crm.models import StageChange
    from tests.engine_data import log

    contact_id = _customer_with_two_orders()
    log(contact_id, "complaint", T0 + days(195))
    refresh(T0 + days(210))
    db.session.expire_all()
    checked = 0
    for task in db.session.scalars(select(Task)):
        for name in ("title", "reason"):
            assert str(from_json(task.said[name])) == getattr(task, name)
            checked += 1
        if task.close_reason:
            assert str(from_json(task.close_reason_said)) == task.close_reason
    for change in db.session.scalars(select(StageChange)):
        assert str(from_json(change.reason_said)) == change.reason
        checked += 1
    contact = db.session.get(Contact, contact_id)
    assert str(from_json(contact.stage_reason_said)) == contact.stage_reason
    for line in contact.score_breakdown:
        assert str(from_json(line["said"])) == line["why"]
    assert checked > 5
