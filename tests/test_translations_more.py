"""More words staff read, in the reader's language: the jobs page (results, errors and phases kept
as message keys and values), the users service's refusals, order quantities and the range checks,
the CSRF refusals and other error pages, the segment builder's choice values, and an interaction
kind's English word for English readers."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from flask_babel import force_locale

from crm.extensions import db
from crm.models import JobRun
from crm.services.shared.errors import N_
from crm.services.shared.said import said
from tests.helpers import dutch, sign_in, soup, text_of


@pytest.fixture
def in_english(app):
    with app.test_request_context(headers={"Accept-Language": "en"}), force_locale("en"):
        yield


def run_here(job, *args) -> JobRun:
    """Run a job in this process the way the worker does (its row recorded), and return the row."""
    from crm.services.jobs import core

    task = SimpleNamespace(id=f"test-{job.name}-{len(args)}-{args}", retries=0)
    core._execute_in_app(job, task, args, {})
    db.session.expire_all()
    return db.session.scalar(db.select(JobRun).where(JobRun.task_id == task.id))


# -- 1. the jobs page ----------------------------------------------------------------------------

def test_job_results_errors_and_phases_are_dutch_on_the_jobs_page(client, app, tmp_path, monkeypatch):
    from crm.services.jobs import maintenance, runs
    from crm.services.orders.importing import jobs as import_jobs
    from crm.services.rules import engine
    from crm.services.shop import backups

    monkeypatch.setattr(app, "instance_path", str(tmp_path / "instance"))
    monkeypatch.setattr(backups, "sqlite_file", lambda _url: tmp_path / "crm.sqlite3")
    monkeypatch.setattr(backups, "backup_sqlite", lambda _live, _to: Path("crm-20260103-024500.sqlite3"))
    monkeypatch.setattr(backups, "prune_backups", lambda _folder, _keep: ["a", "b"])
    backup = run_here(maintenance.daily_backup)
    cleanup = run_here(maintenance.cleanup)
    gone = run_here(import_jobs.import_file, 987654)
    # The English stays in the columns (the CLI, the logs, older readers): the key is beside it.
    assert backup.result == "Saved crm-20260103-024500.sqlite3; removed 2 older."
    assert cleanup.result == "Removed 0 leftover uploads and 0 old job records."
    assert gone.status == "failed" and gone.error == "Not done: import #987654 no longer exists"
    # A refresh on its way, in one of its steps.
    refresh = runs.record_queued("test-refresh", "engine.refresh", [], {})
    runs.mark_running("test-refresh", "engine.refresh", [], {}, periodic=False)
    runs.set_progress(refresh.id, 3, 10, engine.REFRESH_STEPS[1][0])
    db.session.commit()

    dutch(client)
    page = soup(client.get("/settings/jobs/"))
    outcome = {run.id: text_of(page.select_one(f"#job-{run.id} .job-outcome")) for run in (backup, cleanup, gone)}
    assert outcome[backup.id] == "crm-20260103-024500.sqlite3 opgeslagen; 2 oudere verwijderd."
    assert outcome[cleanup.id] == "0 achtergebleven uploads en 0 oude taakregistraties verwijderd."
    assert outcome[gone.id] == "Niet gedaan: import #987654 bestaat niet meer"
    assert text_of(page.select_one(f"#job-{refresh.id} .job-progress")) == "3 / 10 Voorspellen wie opnieuw koopt"

    sign_in(client, "admin", email="english@example.com")
    page = soup(client.get("/settings/jobs/", headers={"Accept-Language": "en"}))
    assert text_of(page.select_one(f"#job-{backup.id} .job-outcome")) == backup.result
    assert text_of(page.select_one(f"#job-{refresh.id} .job-progress")) == "3 / 10 Predicting who buys again"


def test_the_refresh_and_prediction_results_are_dutch_with_dutch_numbers(in_dutch):
    from datetime import UTC, datetime

    from crm.services.insight.predict import PredictionRun
    from crm.services.jobs.maintenance import _said
    from crm.services.rules.engine import RefreshSummary
    from crm.services.shared.said import from_json
    from crm.views.said import in_reader_language

    predictions = PredictionRun(as_of=datetime(2026, 5, 3, tzinfo=UTC), customers=1234)
    summary = RefreshSummary(contacts=1234, stage_changes=5, tasks_created=2, notes=[predictions.headline()])
    result = _said(summary)
    assert str(result) == ("Refreshed 1,234 contacts: 5 stage changes, 0 health changes, 0 scores changed, "
                           "2 to-dos created, 0 closed as moot. RFM segments for 1,234 customers.")
    stored = from_json(result.to_json())  # as the jobs page reads it back
    assert in_reader_language(stored) == (
        "Ververst: 1.234 contacten: 5 fasewijzigingen, 0 statuswijzigingen, 0 scores gewijzigd, 2 taken aangemaakt, "
        "0 gesloten omdat ze niet meer nodig waren. RFM-segmenten voor 1.234 klanten.")


def test_a_long_job_result_cut_to_its_column_is_still_shown_in_dutch(client):
    from crm.services.jobs import runs
    from crm.services.shared.said import sentences

    long = sentences(said(N_("Saved %(file)s."), file="x" * 400))
    run = runs.record_queued("test-long", "schedule.backup", [], {})
    runs.mark_finished(run.id, "done", result=long)
    db.session.commit()
    db.session.expire_all()
    assert len(db.session.scalar(db.select(JobRun.result).where(JobRun.id == run.id))) == 300
    dutch(client)
    outcome = text_of(soup(client.get("/settings/jobs/")).select_one(f"#job-{run.id} .job-outcome"))
    assert outcome == "x" * 400 + " opgeslagen."


def test_the_schedules_panel_and_a_refused_retry_are_dutch(client):
    from crm.services.jobs import runs

    run = runs.record_queued("test-done", "schedule.cleanup", [], {}, periodic=True)
    runs.mark_finished(run.id, "done")
    db.session.commit()
    dutch(client)
    answer = client.post(f"/settings/jobs/{run.id}/retry", follow_redirects=True)
    assert "Alleen een mislukte, onderbroken of overgeslagen taak kan opnieuw worden geprobeerd." in \
        text_of(soup(answer))
    answer = client.post("/settings/jobs/schedules", data={"refresh_time": "25:00", "backups_keep": "0"},
                         follow_redirects=True)
    assert "Geef een tijdstip als UU:MM, bijvoorbeeld 03:15." in text_of(soup(answer))


# -- 2. the users service ------------------------------------------------------------------------

def test_the_users_services_refusals_are_dutch_on_the_users_page(client):
    admin = dutch(client)
    page = soup(client.post("/settings/users", data={"name": "Bea", "email": admin.email, "role": "sales",
                                                      "password": "kort"}))
    words = text_of(page)
    assert f"Er bestaat al een gebruiker met het e-mailadres {admin.email}." in words
    assert "Gebruik minstens 10 tekens." in words
    answer = soup(client.post(f"/settings/users/{admin.id}/active", data={"active": "0"}, follow_redirects=True))
    assert f"{admin.name} is de laatste actieve beheerder en kan niet worden uitgeschakeld." in text_of(answer)


def test_the_users_services_other_refusals_have_dutch(in_dutch):
    from crm.services.shared.errors import ValidationError
    from crm.services.staff import users
    from crm.views.forms import translated

    with pytest.raises(ValidationError) as refused:
        users.create_user("", "", "boss", "x")
    reasons = {name: translated(reason) for name, reason in refused.value.fields.items()}
    assert reasons == {"email": "Een e-mailadres is verplicht.", "name": "Een naam is verplicht.",
                       "role": "De rol moet een van deze zijn: admin, sales, support, viewer.",
                       "password": "Gebruik minstens 10 tekens."}, reasons
    # The service's English is unchanged (the CLI prints it).
    assert refused.value.fields["email"] == "An email address is required."


# -- 3. quantities and ranges ----------------------------------------------------------------------

def test_an_orders_quantity_and_negative_amount_reasons_are_dutch(app, in_dutch):
    from datetime import UTC, datetime
    from decimal import Decimal

    from crm.services.orders.importing.records import CustomerRecord, LineRecord, OrderRecord
    from crm.services.orders.recording import order_problem
    from crm.services.shared.bounds import MAX_QUANTITY
    from crm.views.import_text import outcome_words, reason_text

    now = datetime(2026, 5, 3, tzinfo=UTC)
    zero = Decimal("0.00")
    record = OrderRecord(line=2, source="api", external_id="Q1", number="Q1", placed_at=now, status="paid",
                         currency="EUR", subtotal=zero, discount=zero, shipping=zero, tax=zero, total=Decimal("5.00"),
                         refunded=zero, customer=CustomerRecord(line=2, source="api", email="ada@example.com"),
                         lines=[LineRecord(sku=None, name="Thee", quantity=MAX_QUANTITY + 1, unit_price=Decimal("1"))])
    field, reason = order_problem(record, now)
    assert (field, reason) == ("lines[0].quantity", "lines[0].quantity: must be a whole number from 0 to 1000000")
    assert outcome_words(reason) == "lines[0].quantity: moet een geheel getal van 0 tot 1000000 zijn"
    record.lines, record.total = [], Decimal("-5.00")
    field, reason = order_problem(record, now)
    assert reason_text(f"{reason}; email: missing") == (
        "total: -5.00 is negatief; leg een terugbetaling vast als het terugbetaalde bedrag van de bestelling "
        "(of de status terugbetaald), niet als een negatief bedrag; email: ontbreekt")


def test_the_range_checks_speak_the_readers_language(in_dutch):
    from datetime import UTC, datetime

    from crm.services.shared import bounds
    from crm.views.forms import translated

    for call, dutch_words in (
        (lambda: bounds.check_int("7"), "is geen geheel getal"),
        (lambda: bounds.check_int(12, low=1, high=10), "moet een geheel getal van 1 tot 10 zijn"),
        (lambda: bounds.check_moment(datetime(1900, 1, 1, tzinfo=UTC)), "1900-01-01 valt buiten de datums"),
        (lambda: bounds.parse_json(b"{\"a\": [[[1]]]}", max_depth=2), "De JSON is dieper genest dan 2 niveaus."),
    ):
        with pytest.raises(ValueError) as refused:
            call()
        assert translated(refused.value.args[0]).startswith(dutch_words), refused.value


def test_the_apis_bad_json_and_out_of_range_times_are_said_in_dutch(client):
    from tests.contact_helpers import make_contact
    from tests.test_api import token_for

    headers = {"Authorization": f"Bearer {token_for('sales')}", "Accept-Language": "nl"}
    answer = client.post("/api/v1/orders", data=b"{\"order_id\": ", headers={**headers, "Content-Type": "application/json"})
    assert answer.status_code == 400
    assert answer.get_json()["error"]["message"].startswith("De body is geen geldige JSON: ")
    contact = make_contact(first_name="Anna")
    db.session.commit()
    answer = client.post(f"/api/v1/contacts/{contact.id}/interactions", headers=headers,
                         json={"kind": "call", "body": "Gebeld", "occurred_at": "1900-01-01T10:00:00Z"})
    assert answer.status_code == 422
    assert answer.get_json()["error"]["fields"]["occurred_at"].startswith("1900-01-01 valt buiten de datums die dit CRM")
    answer = client.get("/api/v1/contacts?limit=0", headers=headers)
    assert answer.get_json()["error"]["fields"]["limit"] == "Geef een geheel getal van 1 tot 200."


# -- 4. CSRF and the other error pages -------------------------------------------------------------

@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_a_csrf_refusal_is_dutch_for_a_dutch_user(client):
    dutch(client)
    answer = client.post("/settings/privacy", data={"months": "12"})
    assert answer.status_code == 400
    page = soup(answer)
    assert text_of(page.select_one("h1")) == "Ongeldig verzoek"
    assert "laad de pagina opnieuw en probeer het nog eens" in text_of(page.select_one("article p"))
    assert "CSRF" not in text_of(page.select_one("article"))


def test_every_csrf_refusal_and_the_libraries_descriptions_have_dutch_words(in_dutch):
    from flask_wtf.csrf import CSRFError
    from werkzeug.exceptions import BadRequest, MethodNotAllowed

    from crm.views.api_errors import http_error_name, http_error_words

    expired = CSRFError("The CSRF token has expired.")
    assert http_error_words(expired) == ("De beveiligingscode van het formulier is verlopen: laad de pagina opnieuw "
                                         "en probeer het nog eens.")
    for text in ("The CSRF token is missing.", "The CSRF session token is missing.", "The CSRF token is invalid.",
                 "The CSRF tokens do not match."):
        assert "beveiligingscode" in http_error_words(CSRFError(text))
    assert http_error_name(MethodNotAllowed()) == "Hier niet toegestaan"
    assert http_error_words(MethodNotAllowed()) == "Dit adres neemt dit soort verzoek niet aan."
    assert http_error_words(BadRequest("Kies wat er met de contacten moet gebeuren.")) == \
        "Kies wat er met de contacten moet gebeuren."  # a view's own words, already the reader's


# -- 5. the segment builder's choice values ----------------------------------------------------------

def test_the_builders_stage_health_and_rfm_options_show_labels_with_codes_as_values(client):
    dutch(client)
    form = {"name": "", "description": "", "match": "all", "rows": "3",
            "field-0": "stage", "op-0": "=", "value-0": "retention", "group-0": "0",
            "field-1": "health", "op-1": "=", "value-1": "at_risk", "group-1": "0",
            "field-2": "rfm_segment", "op-2": "=", "value-2": "champions", "group-2": "0"}
    answer = soup(client.post("/segments/builder", data=form, headers={"HX-Request": "true", "HX-Target": "builder-rows"}))
    for i, code in enumerate(("retention", "at_risk", "champions")):
        chosen = answer.select_one(f"select[name=value-{i}] option[selected]")
        assert chosen["value"] == code
        assert text_of(chosen) != code and not text_of(chosen).islower(), text_of(chosen)
    stage = {option["value"]: text_of(option) for option in answer.select("select[name=value-0] option")}
    assert stage["retention"] == "Klantbehoud" and stage["advocacy"] == "Ambassadeur"


# -- 6. kinds inside reasons for English readers ---------------------------------------------------

def test_an_english_reader_sees_the_kinds_english_word_not_its_code(in_english):
    from crm.services.shared.said import from_json
    from crm.views.said import in_reader_language

    assert in_reader_language(said(N_("negative %(kind)s"), kind="sms")) == "negative text message"
    assert in_reader_language(said(N_("negative %(kind)s"), kind="call")) == "negative call"
    stored = from_json({"k": "asked by %(kind)s %(ago)s; no outcome recorded yet",
                        "v": {"kind": "social", "ago": {"said": {"k": "today"}}}})
    assert in_reader_language(stored) == "asked by social media message today; no outcome recorded yet"
    assert str(stored) == "asked by social today; no outcome recorded yet"  # the stored English is unchanged


# -- 7. what else a page or the API said in English ------------------------------------------------

def test_a_pinned_stage_and_its_refusals_read_dutch(client):
    from tests.engine_data import T0, buy, days, refresh

    cid = buy("1", "anna@example.com", T0)
    refresh(T0 + days(40))
    dutch(client, "support")
    answer = soup(client.post(f"/contacts/{cid}/stage", data={"action": "pin", "stage": "advocacy", "reason": ""},
                              headers={"HX-Request": "true"}))
    assert "Zeg waarom de fase met de hand wordt vastgezet." in text_of(answer)
    answer = soup(client.post(f"/contacts/{cid}/stage", data={"action": "pin", "stage": "advocacy",
                                                               "reason": "Schreef over ons"},
                              headers={"HX-Request": "true"}))
    assert text_of(answer.select_one(".stage-reason")) == "met de hand vastgezet: Schreef over ons"
    page = text_of(soup(client.get(f"/contacts/{cid}")))
    assert "met de hand vastgezet: Schreef over ons" in page


def test_a_newsletters_refusals_and_an_uploads_refusal_read_dutch(client):
    dutch(client)
    refused = client.post("/campaigns/new", data={"name": "", "segment_id": "", "template_key": "stay_in_touch"})
    words = text_of(soup(refused))
    assert "Geef de nieuwsbrief een naam." in words and "Kies het segment waar hij naartoe gaat." in words


def test_the_apis_missing_token_message_follows_accept_language(client):
    answer = client.get("/api/v1/contacts", headers={"Accept-Language": "nl"})
    assert answer.status_code == 401
    assert answer.get_json()["error"]["message"] == "Een geldig API-token is vereist."
    assert client.get("/api/v1/contacts").get_json()["error"]["message"] == "A valid API token is required."


def test_an_import_refusal_reads_dutch(in_dutch):
    from crm.services.orders.importing import run as importing
    from crm.views.forms import translated

    with pytest.raises(importing.ImportRefused) as refused:
        importing.resolve_format("orders", "orders.csv", "xml")
    assert translated(refused.value.args[0]).startswith("Een orders-import leest ")
    assert translated(refused.value.args[0]).endswith(", niet xml.")
    with pytest.raises(importing.ImportRefused) as refused:
        importing.resolve_format("orders", "orders.xlsx", None)
    assert translated(refused.value.args[0]) == ("Het formaat van het bestand is niet uit de naam op te maken; kies "
                                                 "csv, tsv, json of ndjson.")


def test_why_predictions_are_missing_reads_dutch_on_the_dashboard(client):
    from crm.services.insight import predict
    from tests.engine_data import T0, buy, days

    for i in range(3):
        buy(str(i), f"klant{i}@example.com", T0 + days(i))
    result = predict.run(T0 + days(30))
    db.session.commit()
    assert result.message.startswith("No predictions yet (0 of 3 customers bought again): Only 3 customers have")
    dutch(client)
    missing = text_of(soup(client.get("/")).select_one(".prediction-missing"))
    assert missing.startswith("Geen aankoopvoorspellingen. Nog geen voorspellingen (0 van de 3 klanten kochten "
                              "opnieuw): Slechts 3 klanten hebben tot nu toe iets gekocht; voorspellingen hebben er "
                              "minstens 20 nodig."), missing
