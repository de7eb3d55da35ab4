"""Privacy: consent, export, erase (page, command, service), the block list and the retention review."""
import csv
import io
import json
import zipfile
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from crm.extensions import db
from crm.models import (
    AuditEntry,
    Contact,
    ContactExternalId,
    ErasedEmail,
    ImportRejection,
    Interaction,
    Order,
    OrderLine,
    Setting,
    Task,
    WebhookDelivery,
    contact_tags,
    utcnow,
)
from crm.services.people import contacts, interactions
from crm.services.shared.errors import NotFound, ValidationError
from crm.services.trust import audit, privacy
from tests.conftest import make_user, soup, text_of
from tests.routes import seed_records

PERSONAL = ("Ada", "Lovelace", "ada@example.com", "Analytical Engines", "+4930123456", "gid-7001")


@pytest.fixture
def ids(app):
    return seed_records()


@pytest.fixture
def contact(ids):
    return db.session.get(Contact, ids["contact"])


def _all_text() -> str:
    """Return every value of every table as one text, to search for leftovers of a person."""
    parts = []
    for table in db.metadata.sorted_tables:
        # Hashes are hex: "ada" turns up in them by chance, and they hold no contact's data.
        columns = [column for column in table.columns if not column.name.endswith("_hash")]
        for row in db.session.execute(select(*columns)):
            parts.append(repr(tuple(row)))
    return "\n".join(parts).lower()


# --- consent ---

def test_consent_records_when_and_how_and_is_audited(contact):
    when = datetime(2026, 5, 1, 9, tzinfo=timezone.utc)
    assert privacy.set_consent(contact, True, "checkout checkbox", None, now=when) is True
    db.session.commit()
    assert (contact.consent, contact.consent_at, contact.consent_source) == (True, when, "checkout checkbox")
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "consent"))
    assert entry.after == {"consent": True, "consent_at": when.isoformat(), "consent_source": "checkout checkbox"}
    assert privacy.set_consent(contact, True, "checkout checkbox", None) is False
    privacy.set_consent(contact, False, "unsubscribe link", None, now=when + timedelta(days=3))
    assert (contact.consent, contact.consent_source) == (False, "unsubscribe link")


def test_consent_needs_a_source(contact):
    with pytest.raises(ValidationError) as caught:
        privacy.set_consent(contact, True, "  ", None)
    assert "consent_source" in caught.value.fields
    assert contact.consent is False


def test_do_not_contact_is_audited(contact):
    assert privacy.set_do_not_contact(contact, True, None) is True
    assert privacy.set_do_not_contact(contact, True, None) is False
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "do_not_contact"))
    assert entry.after == {"do_not_contact": True}


# --- export ---

def _zip(data: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(data))


def test_export_holds_everything_about_the_contact_as_json_and_csv(contact, ids):
    archive = _zip(privacy.export_contact(contact.id))
    names = set(archive.namelist())
    assert {"README.txt", "data.json", "contact.csv", "orders.csv", "order_lines.csv", "interactions.csv", "tasks.csv",
            "stage_changes.csv", "score_history.csv", "audit_entries.csv", "external_ids.csv", "tags.csv"} <= names
    data = json.loads(archive.read("data.json"))
    assert data["contact"]["email"] == "ada@example.com" and data["contact"]["last_name"] == "Lovelace"
    assert data["external_ids"][0]["external_id"] == "gid-7001" and data["tags"] == ["vip"]
    assert data["orders"][0]["total"] == "42.50" and data["orders"][0]["lines"][0]["sku"] == "TEA-1"
    assert data["interactions"][0]["body"] == "Wants a gift wrap"
    assert data["tasks"][0]["title"] == "Call Ada back"
    assert data["stage_changes"][0]["to_stage"] == "conversion" and data["score_history"][0]["score"] == 40
    assert any(entry["action"] == "create" for entry in data["audit_entries"])
    profile = dict(csv.reader(io.StringIO(archive.read("contact.csv").decode())))
    assert profile["email"] == "ada@example.com"
    lines = list(csv.DictReader(io.StringIO(archive.read("order_lines.csv").decode())))
    assert lines[0]["name"] == "Sencha" and lines[0]["quantity"] == "2"


def test_export_is_audited_and_an_unknown_contact_is_not_found(contact):
    admin = make_user("admin")
    privacy.export_contact(contact.id, actor_id=admin.id)
    db.session.commit()
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "export"))
    assert (entry.entity, entry.entity_id, entry.user_id) == ("contact", contact.id, admin.id)
    with pytest.raises(NotFound):
        privacy.export_contact(987654)


def test_export_csv_cells_cannot_run_as_formulas(contact):
    contact.company = '=HYPERLINK("http://evil.example","click")'
    db.session.commit()
    profile = dict(csv.reader(io.StringIO(_zip(privacy.export_contact(contact.id)).read("contact.csv").decode())))
    assert profile["company"].startswith("'=")


def test_export_page_downloads_the_zip_and_records_who(client, auth, contact):
    auth.as_role("admin")
    page = soup(client.get(f"/contacts/{contact.id}/privacy/export"))
    assert page.select_one("form[method=post] button") is not None
    response = client.post(f"/contacts/{contact.id}/privacy/export")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert f"contact-{contact.id}-export-" in response.headers["Content-Disposition"]
    assert json.loads(_zip(response.data).read("data.json"))["contact"]["id"] == contact.id
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "export"))
    assert entry.user_id is not None and entry.entity_id == contact.id


def test_export_page_for_an_unknown_contact_is_404(client, auth):
    auth.as_role("admin")
    assert client.get("/contacts/987654/privacy/export").status_code == 404


def test_export_command_writes_the_zip_and_prints_its_path(runner, contact, tmp_path):
    result = runner.invoke(args=["privacy", "export", str(contact.id), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    path = result.output.strip().splitlines()[-1]
    assert path.startswith(str(tmp_path)) and path.endswith(".zip")
    assert json.loads(_zip(open(path, "rb").read()).read("data.json"))["contact"]["id"] == contact.id
    missing = runner.invoke(args=["privacy", "export", "987654", "--out", str(tmp_path)])
    assert missing.exit_code != 0 and "no contact #987654" in missing.output


# --- erase ---

def test_erasing_removes_the_person_everywhere_and_keeps_the_orders(contact, ids):
    admin = make_user("admin")
    contacts.update_contact(contact, {"city": "London"}, actor_id=admin.id)  # an audit entry quoting them
    interactions.log_interaction(contact, {"kind": "email", "subject": "Hello Ada", "body": "Dear Ada Lovelace",
                                           "outcome": "Ada will call"}, author_id=admin.id)
    other = contacts.create_contact({"email": "grace@example.com", "first_name": "Grace"})
    audit.record("merge", "contact", other.id, before={"merged": {"email": "ada@example.com", "note": "Ada's dup"}})
    db.session.add(WebhookDelivery(source="shopify", delivery_id="d-2", topic="customers/update", status="processed",
                                   payload='{"email": "Ada@Example.com", "first_name": "Ada"}'))
    run = db.session.get(ImportRejection, ids["rejection"])
    run.raw = {"Email": "ada@example.com", "Name": "#1003"}
    db.session.commit()
    revenue_before = db.session.scalar(select(func.sum(Order.total)))
    lines_before = db.session.scalar(select(func.count()).select_from(OrderLine))

    result = privacy.erase_contact(contact, admin.id, block_email=False)
    db.session.commit()

    db.session.expire_all()
    contact = db.session.get(Contact, ids["contact"])
    assert contact.erased_at is not None and contact.do_not_contact and not contact.consent
    assert (contact.email, contact.first_name, contact.last_name, contact.phone, contact.company) == (None, "", "", None, None)
    assert contact.name == f"Contact #{contact.id}"
    assert db.session.scalar(select(func.count()).select_from(ContactExternalId)) == 0
    assert db.session.scalar(select(func.count()).select_from(contact_tags)) == 0
    assert {(i.subject, i.body) for i in db.session.scalars(select(Interaction))} == {("[erased]", "[erased]")}
    task = db.session.get(Task, ids["task"])
    assert task.title == "Call [erased] back" and task.status == "closed"
    # Shop statistics stay right.
    assert db.session.scalar(select(func.sum(Order.total))) == revenue_before == Decimal("42.50")
    assert db.session.scalar(select(func.count()).select_from(OrderLine)) == lines_before
    assert db.session.get(Order, ids["order"]).contact_id == contact.id
    # Nothing that identifies the person is left in any table, audit log included.
    leftovers = _all_text()
    for value in PERSONAL:
        assert value.lower() not in leftovers, value
    assert "grace@example.com" in leftovers  # other people are untouched
    erase_entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "erase"))
    assert erase_entry.user_id == admin.id and erase_entry.after["erased"] is True
    # The engine may have added rule to-dos (e.g. a follow-up call) beside the one made by hand.
    tasks_of_contact = db.session.scalar(select(func.count()).select_from(Task).where(Task.contact_id == contact.id))
    assert result.interactions == 2 and result.tasks == tasks_of_contact >= 1 and result.audit_entries >= 3


def test_an_erased_email_can_be_blocked_from_coming_back(contact):
    assert privacy.is_blocked("ada@example.com") is False
    result = privacy.erase_contact(contact, None, block_email=True)
    db.session.commit()
    assert result.email_blocked
    assert privacy.is_blocked(" ADA@example.com ") and not privacy.is_blocked("grace@example.com")
    assert not privacy.is_blocked("") and not privacy.is_blocked(None)
    stored = db.session.scalar(select(ErasedEmail))
    assert "ada" not in stored.email_hash and len(stored.email_hash) == 64
    assert privacy.blocked_count() == 1
    assert privacy.blocked_among(["ADA@example.com", "grace@example.com", None, ""]) == {"ada@example.com"}


def test_erasing_without_blocking_keeps_the_email_importable(contact):
    privacy.erase_contact(contact, None)
    db.session.commit()
    assert not privacy.is_blocked("ada@example.com") and privacy.blocked_count() == 0


def test_erasing_twice_changes_nothing_more(contact):
    privacy.erase_contact(contact, None)
    db.session.commit()
    again = privacy.erase_contact(contact, None, block_email=True)
    assert again.already_erased and privacy.blocked_count() == 0
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "erase")) == 1


def test_erase_page_needs_the_id_or_erase_typed(client, auth, contact):
    auth.as_role("admin")
    page = soup(client.get(f"/contacts/{contact.id}/privacy/erase"))
    assert "cannot be undone" in text_of(page.select_one("main"))
    response = client.post(f"/contacts/{contact.id}/privacy/erase", data={"confirm": "yes please"})
    assert "nothing was erased" in text_of(soup(response).select_one(".field-error"))
    db.session.expire_all()
    assert db.session.get(Contact, contact.id).erased_at is None
    response = client.post(f"/contacts/{contact.id}/privacy/erase", data={"confirm": "ERASE", "block_email": "y"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Contact, contact.id).erased_at is not None and privacy.is_blocked("ada@example.com")
    flash = text_of(soup(client.get(response.headers["Location"])).select_one(".flash"))
    assert "is erased" in flash and "blocked" in flash
    assert "is erased" in text_of(soup(client.get(f"/contacts/{contact.id}/privacy/erase")).select_one("h1"))


def test_erase_page_accepts_the_contact_number(client, auth, contact):
    auth.as_role("admin")
    client.post(f"/contacts/{contact.id}/privacy/erase", data={"confirm": f" {contact.id} "})
    db.session.expire_all()
    assert db.session.get(Contact, contact.id).erased_at is not None and not privacy.is_blocked("ada@example.com")


def test_erase_command_refuses_without_yes(runner, contact):
    result = runner.invoke(args=["privacy", "erase", str(contact.id)])
    assert result.exit_code != 0 and "--yes" in result.output
    db.session.expire_all()
    assert db.session.get(Contact, contact.id).email == "ada@example.com"


def test_erase_command_with_yes_erases_and_can_block(runner, contact):
    result = runner.invoke(args=["privacy", "erase", str(contact.id), "--yes", "--block-email"])
    assert result.exit_code == 0, result.output
    assert f"Erased contact #{contact.id}" in result.output and "blocked" in result.output
    db.session.expire_all()
    assert db.session.get(Contact, contact.id).erased_at is not None and privacy.is_blocked("ada@example.com")
    assert runner.invoke(args=["privacy", "erase", "987654", "--yes"]).exit_code != 0


def test_privacy_commands_are_listed_with_help(runner):
    result = runner.invoke(args=["privacy", "--help"])
    assert result.exit_code == 0 and "export" in result.output and "erase" in result.output


# --- retention ---

def _contact(email, created_days_ago, *, order_days_ago=None, interaction_days_ago=None, erased=False):
    now = utcnow()
    contact = Contact(email=email, first_name=email.split("@")[0], created_at=now - timedelta(days=created_days_ago),
                      erased_at=now if erased else None)
    db.session.add(contact)
    db.session.flush()
    if order_days_ago is not None:
        db.session.add(Order(contact_id=contact.id, source="manual", external_id=email, number=email,
                             placed_at=now - timedelta(days=order_days_ago), status="cancelled", total=Decimal("5")))
    if interaction_days_ago is not None:
        db.session.add(Interaction(contact_id=contact.id, kind="note", occurred_at=now - timedelta(days=interaction_days_ago)))
    db.session.commit()
    return contact


def test_contacts_quiet_for_the_retention_period_are_due_for_review(app):
    quiet = _contact("quiet@example.com", 2000, order_days_ago=1500)
    _contact("ordered@example.com", 2000, order_days_ago=30)  # any order counts, even a cancelled one
    _contact("talked@example.com", 2000, interaction_days_ago=30)
    _contact("new@example.com", 20)
    _contact("gone@example.com", 2000, erased=True)
    assert privacy.retention_months() == 36
    assert [c.email for c in privacy.due_for_review(36)] == [quiet.email]
    assert privacy.due_for_review_count(36) == 1
    assert {c.email for c in privacy.due_for_review(12)} == {"quiet@example.com"}
    assert privacy.due_for_review_count(1) == 3  # new@ is only 20 days old


@pytest.mark.parametrize("app_config", [{"RETENTION_MONTHS": 12}])
def test_the_retention_period_comes_from_config_then_the_setting(app, app_config):
    assert privacy.retention_months() == 12
    privacy.set_retention_months(24, actor_id=None)
    db.session.commit()
    assert privacy.retention_months() == 24 and db.session.get(Setting, privacy.RETENTION_SETTING).value == 24
    with pytest.raises(ValidationError):
        privacy.set_retention_months(0, actor_id=None)


def test_privacy_page_lists_contacts_for_review_with_links(client, auth):
    auth.as_role("admin")
    quiet = _contact("quiet@example.com", 2000)
    _contact("new@example.com", 20)
    privacy.add_to_block_list("someone@example.com")
    db.session.commit()
    page = soup(client.get("/settings/privacy"))
    rows = page.select("#review tbody tr")
    assert len(rows) == 1 and "quiet" in text_of(rows[0])
    hrefs = {a["href"] for a in rows[0].select("a")}
    assert {f"/contacts/{quiet.id}/privacy/export", f"/contacts/{quiet.id}/privacy/erase"} <= hrefs
    assert text_of(page.select_one("#blocked-count")) == "1" and text_of(page.select_one("#due-count")) == "1"
    assert page.select_one("input[name=months]")["value"] == "36"


def test_privacy_page_changes_the_retention_period(client, auth):
    auth.as_role("admin")
    response = client.post("/settings/privacy", data={"months": "0"})
    assert soup(response).select_one(".field-error") is not None
    response = client.post("/settings/privacy", data={"months": "18"}, follow_redirects=True)
    assert "18 months" in text_of(soup(response).select_one(".flash"))
    assert privacy.retention_months() == 18


def test_privacy_pages_are_for_admins_only(client, auth, contact):
    auth.as_role("sales")
    for url in ("/settings/privacy", f"/contacts/{contact.id}/privacy/export", f"/contacts/{contact.id}/privacy/erase"):
        assert client.get(url).status_code == 403
    assert client.post(f"/contacts/{contact.id}/privacy/erase", data={"confirm": "ERASE"}).status_code == 403
    db.session.expire_all()
    assert db.session.get(Contact, contact.id).erased_at is None
