"""Privacy: consent, exporting everything held about a contact, erasing it, and retention.

These are the requests a shop actually receives under the GDPR: "what do you hold about
me?" (export), "forget me" (erase, also Shopify's customers/redact webhook), "stop
emailing me" (consent, do-not-contact), and the shop's own duty not to keep personal
data for ever (the retention review).
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app, has_app_context
from sqlalchemy import exists, func, or_, select

from crm.extensions import db
from crm.models import (
    AuditEntry,
    Contact,
    ContactExternalId,
    ErasedEmail,
    ImportRejection,
    ImportRun,
    Interaction,
    Order,
    OrderLine,
    ScoreHistory,
    Setting,
    StageChange,
    Task,
    WebhookDelivery,
    utcnow,
)
from crm.services import shop as shop_settings
from crm.services.people import contacts as contact_service
from crm.services.shared import signals
from crm.services.shared.csv_safe import csv_text
from crm.services.shared.errors import NotFound, ValidationError
from crm.services.trust import audit
from crm.services.trust.blocklist import (  # noqa: F401  (the block list, re-exported)
    CUSTOMER_ID_MARK,
    add_to_block_list,
    blocked_among,
    blocked_count,
    blocked_customer_ids,
    customer_id_hash,
    email_hash,
    is_blocked,
)

ERASED = "[erased]"
# Contact fields that identify a person; erasing blanks them.
PERSONAL_FIELDS = (
    "email", "email_display", "first_name", "last_name", "phone", "company", "title", "birthday",
    "address", "city", "consent_source",
)
# Keys whose values are scrubbed wherever they appear in stored JSON (audit before/after,
# rejected import rows): the personal fields, free text, and what sources call them.
PERSONAL_KEYS = frozenset(PERSONAL_FIELDS) | {
    "name", "subject", "body", "outcome", "external_id", "note", "notes", "full_name",
    "first name", "last name", "billing", "shipping_address", "billing_address", "customer",
    "default_address", "addresses", "zip", "postcode", "address1", "address2", "street",
}
RETENTION_SETTING = "privacy.retention_months"
BATCH = 500


# --- consent and do-not-contact -------------------------------------------------------------

def set_consent(contact: Contact, consent: bool, source: str, actor_id: int | None,
                now: datetime | None = None) -> bool:
    """Record a marketing opt-in or opt-out with when and how; return whether it changed.

    `source` says how the shop learned it ("checkout checkbox", "phone call with Ada",
    "unsubscribe link"); contacts.consent_fields, the one consent rule, requires it.
    """
    change = contact_service.consent_fields(contact, consent, source, now)
    if not change:
        return False
    before = audit.snapshot(contact, ("consent", "consent_at", "consent_source"))
    for name, value in change.items():
        setattr(contact, name, value)
    from crm.services.email import suppression

    suppression.record_consent(contact, contact.consent, contact.consent_source, actor_id, now)
    audit.record("consent", "contact", contact.id, user_id=actor_id, before=before,
                 after=audit.snapshot(contact, ("consent", "consent_at", "consent_source")))
    signals.after_contacts_changed([contact.id], now=now)
    return True


def set_do_not_contact(contact: Contact, do_not_contact: bool, actor_id: int | None,
                       now: datetime | None = None) -> bool:
    """Mark a contact as not to be contacted (rules then make no to-dos); return whether it changed."""
    if contact.do_not_contact == bool(do_not_contact):
        return False
    contact.do_not_contact = bool(do_not_contact)
    audit.record("do_not_contact", "contact", contact.id, user_id=actor_id,
                 before={"do_not_contact": not contact.do_not_contact},
                 after={"do_not_contact": contact.do_not_contact})
    signals.after_contacts_changed([contact.id], now=now)
    return True


# --- export ---------------------------------------------------------------------------------

def _columns(model) -> list[str]:
    return [column.key for column in sa.inspect(model).column_attrs]


def _rows(model, records: Iterable[Any]) -> list[dict[str, Any]]:
    names = _columns(model)
    return [audit.snapshot(record, names) for record in records]


def _in_batches(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), BATCH):
        yield ids[start:start + BATCH]


def _related_ids(contact_id: int) -> dict[str, list[int]]:
    """Return the ids of a contact's interactions, tasks and orders (audit entries name them)."""
    return {
        "interaction": list(db.session.scalars(select(Interaction.id).where(Interaction.contact_id == contact_id))),
        "task": list(db.session.scalars(select(Task.id).where(Task.contact_id == contact_id))),
        "order": list(db.session.scalars(select(Order.id).where(Order.contact_id == contact_id))),
    }


def _merge_entries(contact_id: int) -> list[AuditEntry]:
    """Return the merge entries of a contact and of every contact merged into it, however deep."""
    entries, frontier, seen = [], {contact_id}, {contact_id}
    while frontier:
        found = list(db.session.scalars(select(AuditEntry).where(
            AuditEntry.entity == "contact", AuditEntry.action == "merge", AuditEntry.entity_id.in_(sorted(frontier)))))
        entries += found
        merged = {entry.after.get("merged_contact_id") for entry in found if isinstance(entry.after, dict)}
        frontier = {cid for cid in merged if isinstance(cid, int)} - seen
        seen |= frontier
    return entries


def _merged_ids(contact_id: int) -> set[int]:
    """Return the ids of the contacts merged into this one (they live on in the audit log)."""
    return {entry.after["merged_contact_id"] for entry in _merge_entries(contact_id)
            if isinstance(entry.after, dict) and isinstance(entry.after.get("merged_contact_id"), int)}


def _audit_about(contact_id: int, related: dict[str, list[int]]) -> list[AuditEntry]:
    """Return the audit entries about a contact (and the contacts merged into it) and about its
    interactions, tasks and orders."""
    ids = sorted({contact_id} | _merged_ids(contact_id))
    found = {entry.id: entry for entry in db.session.scalars(
        select(AuditEntry).where(AuditEntry.entity == "contact", AuditEntry.entity_id.in_(ids))
    )}
    for entity, ids in related.items():
        for chunk in _in_batches(ids):
            for entry in db.session.scalars(
                select(AuditEntry).where(AuditEntry.entity == entity, AuditEntry.entity_id.in_(chunk))
            ):
                found[entry.id] = entry
    return sorted(found.values(), key=lambda entry: (entry.at, entry.id))


def contact_data(contact_id: int) -> dict[str, Any]:
    """Return everything held about one contact as JSON-ready data, or raise NotFound."""
    contact = db.session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"There is no contact #{contact_id}.")
    related = _related_ids(contact_id)
    orders = list(db.session.scalars(
        select(Order).where(Order.contact_id == contact_id).order_by(Order.placed_at, Order.id)
    ))
    lines = list(db.session.scalars(
        select(OrderLine).join(Order).where(Order.contact_id == contact_id).order_by(OrderLine.order_id, OrderLine.id)
    ))
    by_order: dict[int, list[dict]] = {}
    for line in _rows(OrderLine, lines):
        by_order.setdefault(line["order_id"], []).append(line)
    order_rows = [{**row, "lines": by_order.get(row["id"], [])} for row in _rows(Order, orders)]

    def history(model, order_by):
        return _rows(model, db.session.scalars(select(model).where(model.contact_id == contact_id).order_by(*order_by)))

    return {
        "contact": _rows(Contact, [contact])[0],
        "external_ids": _rows(ContactExternalId, contact.external_ids),
        "tags": [tag.name for tag in contact.tags],
        "orders": order_rows,
        "interactions": history(Interaction, (Interaction.occurred_at, Interaction.id)),
        "tasks": history(Task, (Task.created_at, Task.id)),
        "stage_changes": history(StageChange, (StageChange.changed_at, StageChange.id)),
        "score_history": history(ScoreHistory, (ScoreHistory.computed_at, ScoreHistory.id)),
        "audit_entries": _rows(AuditEntry, _audit_about(contact_id, related)),
        # What arrived from outside naming the person: kept webhook bodies and rejected import rows.
        "webhook_deliveries": _rows(WebhookDelivery, _deliveries_quoting(contact)),
        "import_rejections": _rows(ImportRejection, _rejections_quoting(contact)),
    }


def _needles(contact: Contact) -> list[str]:
    return sorted({value.lower() for value in (contact.email, contact.email_display) if value})


def _deliveries_quoting(contact: Contact) -> list[WebhookDelivery]:
    needles = _needles(contact)
    if not needles:
        return []
    return list(db.session.scalars(select(WebhookDelivery).where(or_(*[
        func.lower(WebhookDelivery.payload).contains(needle, autoescape=True) for needle in needles
    ])).order_by(WebhookDelivery.id)))


def _rejections_quoting(contact: Contact) -> list[ImportRejection]:
    needles = _needles(contact)
    if not needles:
        return []
    return list(db.session.scalars(select(ImportRejection).where(or_(*[
        func.lower(sa.cast(ImportRejection.raw, sa.Text)).contains(needle, autoescape=True) for needle in needles
    ])).order_by(ImportRejection.id)))


def _table_csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    def cell(value):
        return json.dumps(value, ensure_ascii=False, sort_keys=True) if isinstance(value, (dict, list)) else value

    return csv_text(([cell(row.get(name)) for name in columns] for row in rows), header=columns)


README = """Everything {shop} holds about contact #{id}, exported {at} (UTC).

data.json         all of it in one JSON document
contact.csv       the profile, one field per row (field, value)
*.csv             one file per kind of record: external ids, tags, orders, order lines,
                  interactions, to-dos, journey stage changes, lead score history, the
                  audit log entries about this contact (who changed what, and when), and the
                  webhook deliveries and rejected import rows that carry their email

Times are in UTC (ISO 8601). Amounts are in each order's currency.
"""


def export_contact(contact_id: int, *, actor_id: int | None = None, now: datetime | None = None) -> bytes:
    """Return a zip of everything held about one contact (JSON and CSV), and audit the export.

    Raises NotFound for an unknown id. The audit entry ("export") is flushed; the caller commits.
    """
    now = now or utcnow()
    data = contact_data(contact_id)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        shop = shop_settings.current().name if has_app_context() else "the shop"
        archive.writestr("README.txt", README.format(shop=shop, id=contact_id, at=now.isoformat(timespec="seconds")))
        archive.writestr("data.json", json.dumps({"exported_at": now.isoformat(), **data}, ensure_ascii=False, indent=2))
        archive.writestr("contact.csv", csv_text(data["contact"].items(), header=["field", "value"]))
        archive.writestr("tags.csv", csv_text(([name] for name in data["tags"]), header=["tag"]))
        order_columns = _columns(Order)
        line_columns = _columns(OrderLine)
        archive.writestr("orders.csv", _table_csv(data["orders"], order_columns))
        archive.writestr("order_lines.csv", _table_csv([line for order in data["orders"] for line in order["lines"]], line_columns))
        for name, model in (("external_ids", ContactExternalId), ("interactions", Interaction), ("tasks", Task),
                            ("stage_changes", StageChange), ("score_history", ScoreHistory),
                            ("audit_entries", AuditEntry), ("webhook_deliveries", WebhookDelivery),
                            ("import_rejections", ImportRejection)):
            archive.writestr(f"{name}.csv", _table_csv(data[name], _columns(model)))
    audit.record("export", "contact", contact_id, user_id=actor_id)
    db.session.flush()
    return buffer.getvalue()


def export_filename(contact_id: int, now: datetime | None = None) -> str:
    return f"contact-{contact_id}-export-{(now or utcnow()):%Y%m%d-%H%M%S}.zip"


# --- erase ----------------------------------------------------------------------------------

@dataclass
class Erasure:
    """What an erasure did, in counts (it never says what the data was)."""

    contact_id: int
    already_erased: bool = False
    interactions: int = 0
    tasks: int = 0
    audit_entries: int = 0
    other_records: int = 0
    email_blocked: bool = False


def _identifying_words(contact: Contact) -> list[str]:
    """Return the strings that identify a contact inside free text, longest first."""
    full = f"{contact.first_name or ''} {contact.last_name or ''}".strip()
    words = {full, contact.first_name, contact.last_name, contact.email, contact.email_display, contact.phone,
             contact.company, contact.address}
    words |= {external.external_id for external in contact.external_ids if len(external.external_id or "") >= 4}
    # The contacts merged into this one: their email, name and phone live on in the merge entry.
    for entry in _merge_entries(contact.id):
        loser = (entry.before or {}).get("loser") if isinstance(entry.before, dict) else None
        if isinstance(loser, dict):
            name = f"{loser.get('first_name') or ''} {loser.get('last_name') or ''}".strip()
            words |= {name, *(loser.get(key) for key in ("first_name", "last_name", "email", "email_display",
                                                         "phone", "company", "address"))}
    return sorted({w.strip() for w in words if isinstance(w, str) and len(w.strip()) >= 2}, key=len, reverse=True)


_SEPARATORS = r"[\s\-./()]*"


def _phone_patterns(words: list[str]) -> list[str]:
    """A phone as people type it: with spaces, dashes, dots or brackets between the digits, with
    the country code or a leading 0 instead (+49 30 1234567, 030-1234567, (030) 123 45 67)."""
    import phonenumbers

    patterns = []
    for word in words:
        if not word.startswith("+"):
            continue
        try:
            number = phonenumbers.parse(word)
        except phonenumbers.NumberParseException:
            continue
        national = str(number.national_number)
        if len(national) < 6:
            continue
        digits = _SEPARATORS.join(national)
        prefix = rf"(?:\+{_SEPARATORS}{number.country_code}{_SEPARATORS}(?:\(0\){_SEPARATORS})?|0{_SEPARATORS}|00{number.country_code}{_SEPARATORS})?"
        patterns.append(rf"(?<!\d){prefix}{digits}(?!\d)")
    return patterns


def _scrubber(words: list[str]):
    """Return a function that replaces every identifying word in a text with [erased]."""
    if not words:
        return lambda text: text
    pattern = re.compile("|".join([*_phone_patterns(words), *(rf"(?<!\w){re.escape(word)}(?!\w)" for word in words)]),
                         re.IGNORECASE)
    return lambda text: pattern.sub(ERASED, text) if isinstance(text, str) else text


def scrub_json(value: Any, scrub) -> Any:
    """Return stored JSON with personal keys' values replaced and identifying words removed."""
    if isinstance(value, dict):
        return {
            key: (ERASED if value[key] not in (None, "", [], {}) else value[key])
            if str(key).lower() in PERSONAL_KEYS else scrub_json(value[key], scrub)
            for key in value
        }
    if isinstance(value, list):
        return [scrub_json(item, scrub) for item in value]
    return scrub(value)


def _scrub_audit(contact: Contact, related: dict[str, list[int]], scrub) -> int:
    """Scrub the before/after of audit entries about the contact, its records, or naming its email."""
    entries = {entry.id: entry for entry in _audit_about(contact.id, related)}
    # Entries about other records that quote the contact (a merge, an import): one pass over the log.
    quoting = [func.lower(sa.cast(column, sa.Text)).contains(needle.lower(), autoescape=True)
               for needle in sorted({contact.email, contact.phone} - {None, ""})
               for column in (AuditEntry.before, AuditEntry.after)]
    if quoting:
        for entry in db.session.scalars(select(AuditEntry).where(or_(*quoting))):
            entries[entry.id] = entry
    changed = 0
    for entry in entries.values():
        before, after = scrub_json(entry.before, scrub), scrub_json(entry.after, scrub)
        if before != entry.before or after != entry.after:
            entry.before, entry.after = before, after
            changed += 1
    return changed


def _scrub_incoming(contact: Contact, scrub) -> int:
    """Scrub stored webhook payloads and rejected import rows that carry the contact's email."""
    if not contact.email:
        return 0
    needle = contact.email.lower()
    changed = 0
    for delivery in db.session.scalars(
        select(WebhookDelivery).where(func.lower(WebhookDelivery.payload).contains(needle, autoescape=True))
    ):
        # A payload is kept only to replay it; an erased customer's is not replayed.
        delivery.payload = None
        delivery.error = scrub(delivery.error)
        changed += 1
    for rejection in db.session.scalars(
        select(ImportRejection).where(func.lower(sa.cast(ImportRejection.raw, sa.Text)).contains(needle, autoescape=True))
    ):
        rejection.raw = scrub_json(rejection.raw, scrub)
        rejection.reason = scrub(rejection.reason)
        changed += 1
    return changed


def _scrub_filenames(contact: Contact) -> int:
    """Rename import runs whose file is named after the person (ada_lovelace.csv), in the runs
    list and in the audit log: the file name is the last place the name would otherwise stay."""
    first, last = (contact.first_name or "").strip(), (contact.last_name or "").strip()
    local = (contact.email or "").split("@")[0]
    parts = [p for p in (first, last, local if len(local) >= 4 else "") if len(p) >= 2]
    if not parts:
        return 0
    pattern = re.compile("|".join(rf"(?<![^\W_]){re.escape(p)}(?![^\W_])" for p in sorted(parts, key=len, reverse=True)),
                         re.IGNORECASE)

    def names_person(filename: str) -> bool:
        found = {m.group(0).lower() for m in pattern.finditer(filename or "")}
        return (bool(first and last) and {first.lower(), last.lower()} <= found) or (local.lower() in found and len(local) >= 4)

    needle = (last or local).lower()
    changed = 0
    for run in db.session.scalars(select(ImportRun).where(func.lower(ImportRun.filename).contains(needle, autoescape=True))):
        if not names_person(run.filename):
            continue
        old, run.filename = run.filename, pattern.sub("erased", run.filename)
        for entry in db.session.scalars(select(AuditEntry).where(AuditEntry.entity == "import_run",
                                                                 AuditEntry.entity_id == run.id)):
            if isinstance(entry.after, dict) and entry.after.get("filename") == old:
                entry.after = {**entry.after, "filename": run.filename}
        changed += 1
    return changed


def erase_contact(contact: Contact, actor_id: int | None, block_email: bool = False,
                  now: datetime | None = None) -> Erasure:
    """Anonymise a contact for good and return what was done, in counts.

    Blanks the personal fields and external ids, removes tags, replaces the free text of
    interactions and the contact's name inside to-dos, stage reasons, earlier audit entries,
    stored webhook payloads and rejected import rows. Orders and their lines stay, without a
    person attached, so revenue and product figures do not change. Irreversible. With
    `block_email` the email's hash goes on the block list so imports and webhooks skip it.
    The audit entry says that an erasure happened, never what was erased. The caller commits.
    """
    now = now or utcnow()
    if contact.erased_at is not None:
        return Erasure(contact_id=contact.id, already_erased=True)
    result = Erasure(contact_id=contact.id)
    scrub = _scrubber(_identifying_words(contact))
    related = _related_ids(contact.id)
    if block_email and contact.email:
        add_to_block_list(contact.email, now)
        result.email_blocked = True
    if block_email:
        # The shop's customer ids too: a customers/create with the same id and no email stays out.
        for link in contact.external_ids:
            digest = customer_id_hash(link.source, link.external_id)
            if not db.session.scalar(select(exists().where(ErasedEmail.email_hash == digest))):
                db.session.add(ErasedEmail(email_hash=digest, erased_at=now))

    from crm.services.email import outbox, suppression

    # An unsubscribed or bounced address stays suppressed, as a hash only, so no import brings it back.
    suppression.forget_addresses(contact)
    outbox.erase_contact(contact.id)
    # Scrub what quotes the contact before the fields that identify it are gone.
    result.audit_entries = _scrub_audit(contact, related, scrub)
    result.other_records = _scrub_incoming(contact, scrub) + _scrub_filenames(contact)
    for interaction in db.session.scalars(select(Interaction).where(Interaction.contact_id == contact.id)):
        interaction.subject = ERASED if interaction.subject else ""
        interaction.body = ERASED if interaction.body else ""
        interaction.outcome = ERASED if interaction.outcome else None
        result.interactions += 1
    for task in db.session.scalars(select(Task).where(Task.contact_id == contact.id)):
        task.title, task.reason = scrub(task.title), scrub(task.reason)
        task.close_reason = scrub(task.close_reason)
        task.said = task.close_reason_said = None  # the words' values may name the person (a typed reason)
        task.outcome = ERASED if task.outcome else None
        if task.status == "open":
            task.status, task.closed_at, task.close_reason = "closed", now, "The contact's personal data was erased."
        result.tasks += 1
    for change in db.session.scalars(select(StageChange).where(StageChange.contact_id == contact.id)):
        change.reason, change.reason_said = scrub(change.reason), None
    for score in db.session.scalars(select(ScoreHistory).where(ScoreHistory.contact_id == contact.id)):
        score.breakdown = scrub_json(score.breakdown, scrub)
    contact.stage_reason, contact.stage_reason_said = scrub(contact.stage_reason), None
    contact.score_breakdown = scrub_json(contact.score_breakdown, scrub)

    for name in PERSONAL_FIELDS:
        setattr(contact, name, "" if name in ("first_name", "last_name") else None)
    contact.external_ids.clear()
    contact.tags = []
    contact.consent = False
    contact.consent_at = now
    contact.do_not_contact = True
    contact.stay_in_touch_days = None
    contact.erased_at = now
    db.session.flush()
    audit.record("erase", "contact", contact.id, user_id=actor_id, after={
        "erased": True, "email_blocked": result.email_blocked, "interactions": result.interactions,
        "tasks": result.tasks, "audit_entries_scrubbed": result.audit_entries,
    })
    signals.after_contacts_changed([contact.id], now=now)
    return result


# --- retention ------------------------------------------------------------------------------

def retention_months() -> int:
    """Return how many months without an order or interaction put a contact up for review."""
    stored = db.session.get(Setting, RETENTION_SETTING)
    if stored is not None and isinstance(stored.value, int) and stored.value > 0:
        return stored.value
    return int(current_app.config.get("RETENTION_MONTHS", 36))


def set_retention_months(months: int, *, actor_id: int | None) -> None:
    """Store the retention period (1 to 240 months), or raise ValidationError."""
    try:
        months = int(months)
    except (TypeError, ValueError):
        months = 0
    if not 1 <= months <= 240:
        raise ValidationError(fields={"months": "Give a number of months between 1 and 240."})
    before = retention_months()
    stored = db.session.get(Setting, RETENTION_SETTING)
    if stored is None:
        db.session.add(Setting(key=RETENTION_SETTING, value=months))
    else:
        stored.value = months
    audit.record("update", "setting", None, user_id=actor_id,
                 before={RETENTION_SETTING: before}, after={RETENTION_SETTING: months})
    db.session.flush()


def retention_cutoff(months: int, now: datetime | None = None) -> datetime:
    return (now or utcnow()) - timedelta(days=round(months * 30.44))


def _due_for_review(cutoff: datetime):
    recent_order = exists().where(Order.contact_id == Contact.id, Order.placed_at >= cutoff)
    recent_interaction = exists().where(Interaction.contact_id == Contact.id, Interaction.occurred_at >= cutoff)
    return (Contact.erased_at.is_(None), Contact.created_at < cutoff, ~recent_order, ~recent_interaction)


def due_for_review(months: int, now: datetime | None = None, *, limit: int = 50, offset: int = 0) -> list[Contact]:
    """Return contacts known longer than `months` with no order or interaction in that time,
    quietest first (one query; the composite (contact, time) indexes answer the NOT EXISTS)."""
    cutoff = retention_cutoff(months, now)
    last_seen = func.coalesce(Contact.last_order_at, Contact.last_interaction_at, Contact.created_at)
    return list(db.session.scalars(
        select(Contact).where(*_due_for_review(cutoff)).order_by(last_seen, Contact.id).offset(offset).limit(limit)
    ))


def due_for_review_count(months: int, now: datetime | None = None) -> int:
    cutoff = retention_cutoff(months, now)
    return db.session.scalar(select(func.count()).select_from(Contact).where(*_due_for_review(cutoff))) or 0


def record_counts(contact_id: int) -> dict[str, int]:
    """Return how many orders, interactions and to-dos a contact has (shown before erasing)."""
    def count(model):
        return db.session.scalar(select(func.count()).select_from(model).where(model.contact_id == contact_id)) or 0

    return {"orders": count(Order), "interactions": count(Interaction), "tasks": count(Task)}
