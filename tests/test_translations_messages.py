"""The words services and libraries write, in the reader's language: a segment definition's
mistakes and its summary, the import summary's currency and passed to-do lines, the parsers' and
email-validator's reasons, the schedules' descriptions, interaction kinds inside reasons, the bounce
mailbox's answer and WTForms' own messages. Stored data stays language-neutral (English text with
its key and values, codes); each reader sees Dutch or English."""
from __future__ import annotations

import pytest

from crm.extensions import db
from crm.models import ImportRun, Segment
from crm.services.shared.errors import N_
from crm.services.shared.said import from_json, said
from tests.helpers import dutch, sign_in, soup, text_of


# -- 1. segment definitions ----------------------------------------------------------------------

def test_a_segment_definitions_mistakes_are_dutch_for_a_dutch_reader(client):
    dutch(client)
    form = {"name": "Gent", "description": "", "match": "all", "rows": "2",
            "field-0": "lead_score", "op-0": ">", "value-0": "veel", "group-0": "0",
            "field-1": "created_at", "op-1": "after", "value-1": "2026-02-30", "group-1": "0"}
    answer = soup(client.post("/segments/builder", data=form, headers={"HX-Request": "true", "HX-Target": "builder-rows"}))
    assert text_of(answer.select_one("#row-error-0")) == "Geef een getal op."
    assert text_of(answer.select_one("#row-error-1")) == "Geef een bestaande datum als JJJJ-MM-DD."
    # English readers keep the English.
    english = soup(client.post("/segments/builder", data=form,
                               headers={"HX-Request": "true", "HX-Target": "builder-rows", "Accept-Language": "en"}))
    assert text_of(english.select_one("#row-error-0")) == "Geef een getal op."  # the user's own choice wins
    sign_in(client, "sales")
    english = soup(client.post("/segments/builder", data=form,
                               headers={"HX-Request": "true", "HX-Target": "builder-rows", "Accept-Language": "en"}))
    assert text_of(english.select_one("#row-error-0")) == "Give a number."


def test_a_definitions_mistakes_with_values_are_dutch_in_the_api(in_dutch):
    from crm.services.segments.definition import DefinitionError, parse
    from crm.views.forms import translated

    with pytest.raises(DefinitionError) as refused:
        parse({"match": "all", "conditions": [{"field": "colour", "op": "=", "value": "red"},
                                              {"field": "lead_score", "op": "contains", "value": "5"},
                                              {"field": "created_at", "op": "=", "value": "1800-01-01"}]})
    reasons = [translated(reason) for _where, reason in refused.value.problems]
    assert reasons[0] == "Onbekend veld “colour”."
    assert reasons[1].startswith("“contains” past niet bij het veld “Leadscore”; gebruik een van: =, !=")
    assert reasons[2] == "Geef een datum tussen de jaren 1900 en 2999."
    assert translated(refused.value.message) == "De definitie van het segment bevat fouten."
    # The English the API and the tests have always read is still there, as the message key's English.
    assert refused.value.problems[0][1] == "Unknown field “colour”."


def test_a_segments_summary_is_dutch_for_a_dutch_reader(client):
    definition = {"match": "all", "conditions": [
        {"field": "city", "op": "=", "value": "Gent"},
        {"field": "stage", "op": "in", "value": ["retention", "advocacy"]},
        {"match": "any", "conditions": [{"field": "email_consent", "op": "=", "value": True},
                                        {"field": "last_order_at", "op": "within_last_days", "value": 30}]},
        {"field": "interaction", "op": "has", "value": {"kind": "call", "min_count": 2}},
    ]}
    segment = Segment(name="Vaste klanten", description="", definition=definition)
    db.session.add(segment)
    db.session.commit()
    dutch(client)
    lines = [text_of(li) for li in soup(client.get(f"/segments/{segment.id}")).select(".segment-summary li")]
    assert lines == [
        "Plaats is Gent",
        "en Fase in de klantreis is een van Klantbehoud, Ambassadeur",
        "en (Akkoord met e-mail is ja of Laatste bestelling in de laatste 30 dagen)",
        "en Contactmoment heeft van soort gesprek, minstens 2 keer",
    ], lines


# -- 2. the import summary ---------------------------------------------------------------------

def test_the_import_summarys_currency_and_passed_to_do_lines_are_dutch(in_dutch):
    from crm.views.import_text import summary_lines

    run = ImportRun(kind="orders", dry_run=False, counts={
        "read": 3, "orders_created": 3, "contacts_created": 3, "rejected": 0, "tasks_created": 1,
        "tasks_passed": 2, "tasks_passed_by": {"Send birthday greetings": 2}, "currencies": {"USD": 3}})
    lines = summary_lines(run)
    assert lines[-2] == ("1 taak aangemaakt; 2 andere niet, omdat de gelegenheden al voorbij waren vóór de import "
                         "(bestellingen uit het verleden maken alleen taken zolang er nog tijd is om iets te doen): "
                         "2 × feliciteer met de verjaardag"), lines[-2]
    assert lines[-1].startswith("Valuta: 3 in USD — niet de valuta van de winkel (EUR).")
    assert lines[-1].endswith("zet de valuta dan op USD bij Instellingen → Winkel, zodat totalen met het juiste "
                              "teken worden getoond.")


def test_the_import_summary_stays_english_for_an_english_reader(app):
    from crm.views.import_text import summary_lines

    run = ImportRun(kind="orders", dry_run=False, counts={
        "read": 3, "orders_created": 3, "contacts_created": 3, "rejected": 0, "tasks_created": 1,
        "tasks_passed": 2, "tasks_passed_by": {"Send birthday greetings": 2}, "currencies": {"USD": 3}})
    with app.test_request_context(headers={"Accept-Language": "en"}):
        to_dos, currency = summary_lines(run)[-2:]
    assert to_dos == ("1 to-do made; 2 more were not, because the occasions had passed before the import (orders "
                      "from the past make to-dos only while there is still time to act): 2 × send birthday greetings")
    assert currency.startswith("Currency: 3 in USD — not the shop's currency (EUR).")


# -- 3. parsers' and email-validator's reasons ---------------------------------------------------

def test_bad_amounts_dates_and_emails_in_rejection_reasons_are_dutch(in_dutch):
    from crm.views.import_text import reason_text

    assert reason_text("total: 'ten euros' is not an amount") == "total: 'ten euros' is geen bedrag"
    assert reason_text("placed_at: 'gisteren' is not a date or timestamp") == \
        "placed_at: 'gisteren' is geen datum of tijdstip"
    assert reason_text("placed_at: 9999-12-31 is outside the dates this CRM accepts (1970-01-01 to 2036-05-03)") == \
        "placed_at: 9999-12-31 valt buiten de datums die dit CRM aanneemt (1970-01-01 tot 2036-05-03)"
    assert reason_text("total: empty amount") == "total: leeg bedrag"
    assert reason_text("Email: 'nope' is not a valid email address (An email address must have an @-sign.)") == \
        "Email: 'nope' is geen geldig e-mailadres (Een e-mailadres moet een @-teken bevatten.)"


def test_a_file_without_the_columns_it_needs_is_refused_in_dutch_on_the_preview(in_dutch):
    """The reader refuses the header of a file that is not what was chosen; the preview says why in
    the reader's language (the columns it found stay as written)."""
    import io

    from crm.services.orders.importing.registry import preview
    from crm.views.import_text import reason_text

    refused = preview("shopify-orders", io.BytesIO(b"Order,Amount\n1,10\n"))
    assert [r.line for r in refused] == [1]
    assert reason_text(refused[0].reason) == (
        "kopregel: kolom(men) Name, Created at, Total, Financial Status ontbreken - is dit een "
        "bestellingenexport uit Shopify? (gevonden: 'Order', 'Amount')")


def test_a_real_import_rejection_reads_dutch_on_the_run_page(client, app, tmp_path, monkeypatch):
    from crm.services.orders.importing import run as importing

    monkeypatch.setattr(app, "instance_path", str(tmp_path / "instance"))
    path = tmp_path / "bad.csv"
    path.write_text("order_id,email,placed_at,total\nB1,ada@example.com,2026-01-05,tien euro\n"
                    "B2,nope,2026-13-45,5.00\n")
    run = importing.run_import("orders", path, path.name)
    assert run.counts["rejected"] == 2
    dutch(client)
    page = text_of(soup(client.get(f"/imports/{run.id}")))
    assert "'tien euro' is geen bedrag" in page
    assert "is geen geldig e-mailadres (Een e-mailadres moet een @-teken bevatten.)" in page
    assert "'2026-13-45' is geen geldige datum of tijd" in page


def test_email_validators_reasons_are_our_own_translated_words(client, in_dutch):
    from flask_babel import gettext

    from crm.services.shared.emails import REASONS, email_problem

    cases = {"nope": "Een e-mailadres moet een @-teken bevatten.", "@example.com": "Vóór het @-teken moet iets staan.",
             "ada@": "Na het @-teken moet iets staan.", "ada@localhost": "Het deel na het @-teken heeft een punt nodig, zoals in example.com.",
             "a..b@example.com": "Een e-mailadres kan niet met een punt beginnen of eindigen, en geen twee punten achter elkaar hebben.",
             "a b@example.com": "Het deel vóór het @-teken bevat tekens die een e-mailadres niet kan hebben."}
    for address, words in cases.items():
        problem = email_problem(address)
        assert problem in REASONS, (address, problem)
        assert gettext(problem) == words, address


def test_a_contact_forms_bad_email_is_refused_in_dutch(client):
    from tests.contact_helpers import make_contact

    contact = make_contact(first_name="Anna")
    db.session.commit()
    dutch(client)
    response = client.post(f"/contacts/{contact.id}/edit", data={"first_name": "Anna", "email": "geen-adres"})
    assert "Een e-mailadres moet een @-teken bevatten." in response.get_data(as_text=True)


def test_an_api_orders_bad_amount_is_said_in_the_clients_language_with_an_english_code(client):
    from tests.test_api import token_for

    body = {"order_id": "A1", "email": "ada@example.com", "placed_at": "2026-01-05", "total": "tien euro",
            "lines": [{"name": "Thee", "quantity": 1, "unit_price": "gratis"}]}
    headers = {"Authorization": f"Bearer {token_for('sales')}"}
    dutch_answer = client.post("/api/v1/orders", json=body, headers={**headers, "Accept-Language": "nl"})
    error = dutch_answer.get_json()["error"]
    assert dutch_answer.status_code == 422 and error["code"] == "invalid"
    assert error["fields"]["lines[0].unit_price"] == "Geen prijs: 'gratis' is geen bedrag."
    body["lines"] = []
    dutch_answer = client.post("/api/v1/orders", json=body, headers={**headers, "Accept-Language": "nl"})
    assert dutch_answer.get_json()["error"]["fields"]["total"] == "'tien euro' is geen bedrag"
    english = client.post("/api/v1/orders", json=body, headers={**headers, "Accept-Language": "en"})
    assert english.get_json()["error"]["fields"]["total"] == "'tien euro' is not an amount"


# -- 4. the schedules --------------------------------------------------------------------------

def test_the_schedules_say_when_they_run_in_dutch(client):
    dutch(client)
    page = soup(client.get("/settings/rules/"))
    assert text_of(page.select("#schedule-schedule-backup td")[1]) == "dagelijks om 02:45"
    assert text_of(page.select("#schedule-schedule-nightly_refresh td")[1]) == "dagelijks op de tijd die hieronder is ingesteld"


# -- 5. interaction kinds inside reasons ----------------------------------------------------------

def test_an_interaction_kind_inside_a_reason_is_the_readers_word(in_dutch):
    from crm.views.said import in_reader_language

    assert in_reader_language(said(N_("negative %(kind)s"), kind="call")) == "gesprek (negatief)"
    assert in_reader_language(said(N_("asked by %(kind)s %(ago)s; no outcome recorded yet"), kind="email",
                                   ago=said(N_("today")))) == "vroeg via e-mail vandaag; nog geen uitkomst vastgelegd"
    # A reason stored before keeps the code as its value: it reads the same.
    stored = from_json({"k": "inbound %(kind)s on %(date)s", "v": {"kind": "chat", "date": {"day": "2026-05-03"}}})
    assert in_reader_language(stored) == "binnengekomen chat op 3 mei 2026"
    assert str(stored) == "inbound chat on 3 May 2026"


# -- 6. the bounce mailbox -----------------------------------------------------------------------

def test_the_bounce_mailbox_check_speaks_dutch(client, monkeypatch):
    from crm.services.email import bounces, mailbox

    checks = iter([
        mailbox.MailboxCheck(True, "LOGIN completed", read=3, other=1, failed=1,
                             bounced=[bounces.BounceResult(message_id=1, address="eve@example.org", kind="hard")]),
        mailbox.MailboxCheck(False, said(N_("The bounce mailbox at %(where)s refused the sign-in: %(error)s"),
                                         where="imap.example.com:993", error="[AUTHENTICATIONFAILED]")),
    ])
    monkeypatch.setattr(mailbox, "check", lambda: next(checks))
    dutch(client)
    answer = text_of(soup(client.post("/settings/email/bounces/check")).select_one(".mailbox-answer"))
    assert answer == ("3 nieuwe berichten gelezen; 1 bounce van ons gemarkeerd; 1 in de mailbox gelaten (geen bounce "
                      "van ons); 1 kon niet worden gelezen en blijft ongelezen.")
    answer = text_of(soup(client.post("/settings/email/bounces/check")).select_one(".mailbox-answer"))
    assert answer == "De bounce-mailbox op imap.example.com:993 weigerde de aanmelding: [AUTHENTICATIONFAILED]"


def test_the_bounce_mailbox_summary_keeps_its_english_for_the_job():
    from crm.services.email import mailbox

    check = mailbox.MailboxCheck(True, "OK", read=2, other=2)
    assert check.summary() == "Read 2 new messages; 0 bounces of ours marked; 2 left in the mailbox (not bounces of ours)."


# -- 7. WTForms' own messages --------------------------------------------------------------------

def test_wtforms_own_messages_are_dutch_for_a_dutch_user(client):
    dutch(client)
    page = soup(client.post("/settings/privacy", data={"months": ""}))
    assert "Dit veld is vereist." in [text_of(e) for e in page.select(".error, small")]


def test_wtforms_messages_follow_the_page_language(app):
    from flask_babel import refresh
    from flask_wtf import FlaskForm
    from werkzeug.datastructures import MultiDict
    from wtforms import IntegerField, StringField
    from wtforms.validators import InputRequired, Length, Optional

    class Form(FlaskForm):
        class Meta:
            csrf = False

        number = IntegerField(validators=[Optional()])
        name = StringField(validators=[InputRequired(), Length(max=3)])

    data = MultiDict({"number": "veel", "name": "Annemarie"})
    with app.test_request_context(headers={"Accept-Language": "nl"}):
        refresh()  # the app chooses the language per request (crm.views.languages); so does the test
        form = Form(formdata=data)
        assert not form.validate()
        assert form.errors == {"number": ["Ongeldig getal."],
                               "name": ["Veld mag niet langer zijn dan 3 karakters."]}, form.errors
    with app.test_request_context(headers={"Accept-Language": "en"}):
        refresh()
        form = Form(formdata=data)
        assert not form.validate()
        assert form.errors["number"] == ["Not a valid integer value."]
