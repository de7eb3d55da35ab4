"""Contacts: the one place that validates, creates, updates and matches them."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import phonenumbers
from flask import current_app, has_app_context
from sqlalchemy import select

from crm.extensions import db
from crm.models import Contact, ContactExternalId, Tag
from crm.services.bounds import is_country_code
from crm.services import audit, engine_hooks
from crm.services.errors import ValidationError
from crm.services.users import check_email_syntax, normalise_email

# Fields a person (form or API) may set on a contact.
EDITABLE = (
    "email", "first_name", "last_name", "phone", "company", "title", "birthday", "address", "city",
    "country", "owner_id", "consent", "consent_source", "do_not_contact", "stay_in_touch_days",
)
AUDITED = EDITABLE + ("email_display",)


def default_region() -> str | None:
    """Return the region phone numbers without a +country prefix are read in (setting PHONE_REGION)."""
    if has_app_context():
        return current_app.config.get("PHONE_REGION") or None
    return None


def normalise_phone(value: str | None, region: str | None = None) -> str | None:
    """Return a phone number in E.164, or raise ValueError saying why it is not one."""
    value = (value or "").strip().lstrip("'")
    if not value:
        return None
    try:
        number = phonenumbers.parse(value, region or default_region())
    except phonenumbers.NumberParseException as error:
        raise ValueError("Write the number with its country code, e.g. +49 30 1234567.") from error
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        raise ValueError(f"{value} is not a valid phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def display_phone(e164: str | None) -> str:
    """'+49 30 1234567' for '+49301234567': the stored E.164 number as people write it."""
    if not e164:
        return ""
    try:
        return phonenumbers.format_number(phonenumbers.parse(e164, None), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:
        return e164


def by_email(email: str | None) -> Contact | None:
    email_n = normalise_email(email)
    if not email_n:
        return None
    return db.session.scalar(select(Contact).where(Contact.email == email_n))


def by_external_id(source: str, external_id: str | None) -> Contact | None:
    if not external_id:
        return None
    return db.session.scalar(
        select(Contact).join(ContactExternalId)
        .where(ContactExternalId.source == source, ContactExternalId.external_id == str(external_id))
    )


def clean(values: dict[str, Any], *, contact: Contact | None = None, require_identity: bool = True) -> dict[str, Any]:
    """Return validated, normalised contact fields, or raise ValidationError naming each bad one.

    A duplicate email names the contact that already has it (the form links to it). With
    `require_identity`, the result must leave the contact with a name, an email or a phone.
    """
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    for name, value in values.items():
        if name not in EDITABLE:
            continue
        if isinstance(value, str):
            value = value.strip()
        cleaned[name] = value
    if "email" in cleaned:
        display = cleaned["email"] or None
        email_n = normalise_email(display)
        if email_n:
            if reason := check_email_syntax(email_n):
                errors["email"] = reason
            else:
                other = by_email(email_n)
                if other is not None and (contact is None or other.id != contact.id):
                    errors["email"] = f"{other.name} (#{other.id}) already has the email {email_n}."
        cleaned["email"], cleaned["email_display"] = email_n, display
    if "phone" in cleaned:
        try:
            cleaned["phone"] = normalise_phone(cleaned["phone"])
        except ValueError as error:
            errors["phone"] = str(error)
    if "country" in cleaned:
        country = (cleaned["country"] or "").upper() or None
        if country and not is_country_code(country):
            errors["country"] = "Use the two-letter country code (ISO 3166), e.g. DE."
        cleaned["country"] = country
    if "birthday" in cleaned and isinstance(cleaned["birthday"], str):
        try:
            cleaned["birthday"] = date.fromisoformat(cleaned["birthday"]) if cleaned["birthday"] else None
        except ValueError:
            errors["birthday"] = "Use the form YYYY-MM-DD."
    if isinstance(cleaned.get("birthday"), date) and not date(1900, 1, 1) <= cleaned["birthday"] <= date.today():
        errors["birthday"] = "Give a birthday from 1900-01-01 to today."
    if "stay_in_touch_days" in cleaned and cleaned["stay_in_touch_days"] not in (None, ""):
        try:
            days = int(cleaned["stay_in_touch_days"])
            if not 1 <= days <= 3650:
                raise ValueError
            cleaned["stay_in_touch_days"] = days
        except (TypeError, ValueError):
            errors["stay_in_touch_days"] = "Give a number of days between 1 and 3650, or leave it empty."
    elif "stay_in_touch_days" in cleaned:
        cleaned["stay_in_touch_days"] = None
    for name in ("first_name", "last_name"):
        if name in cleaned:
            cleaned[name] = cleaned[name] or ""
            if len(cleaned[name]) > 120:
                errors[name] = "Keep it under 120 characters."
    final = {**{k: getattr(contact, k) for k in ("email", "first_name", "last_name", "phone")}, **cleaned} if contact else cleaned
    if require_identity and not (final.get("email") or final.get("first_name") or final.get("last_name") or final.get("phone")):
        errors.setdefault("email", "Give at least a name, an email or a phone number.")
    if errors:
        raise ValidationError(fields=errors)
    return cleaned


@dataclass
class ContactChange:
    contact: Contact
    created: bool
    changed: dict[str, Any] = field(default_factory=dict)


BLOCKED_EMAIL = "This address belongs to a person who was erased and asked not to be stored again."


def _refuse_blocked_email(email: str | None) -> None:
    """Every path that creates a contact (form, API, webhook, import) honours the erasure block list."""
    from crm.services import privacy

    if email and privacy.is_blocked(email):
        raise ValidationError(fields={"email": BLOCKED_EMAIL})


def create_contact(values: dict[str, Any], *, actor_id: int | None = None, source: str = "manual",
                   tags: list[str] | None = None, now=None) -> Contact:
    """Return a new contact (flushed) from validated values; stage, score and to-dos follow."""
    cleaned = clean(values)
    _refuse_blocked_email(cleaned.get("email"))
    contact = Contact(source=source, **cleaned)
    if contact.consent and contact.consent_at is None:
        from crm.models import utcnow

        contact.consent_at = now or utcnow()
    db.session.add(contact)
    if tags:
        contact.tags = tags_by_name(tags)
    db.session.flush()
    audit.record("create", "contact", contact.id, user_id=actor_id, after=audit.snapshot(contact, AUDITED))
    engine_hooks.after_contacts_changed([contact.id], now=now)
    return contact


def update_contact(contact: Contact, values: dict[str, Any], *, actor_id: int | None = None, now=None) -> dict:
    """Apply validated changes to a contact and return {field: (before, after)} of what changed."""
    cleaned = clean(values, contact=contact)
    if cleaned.get("email") and cleaned["email"] != contact.email:
        _refuse_blocked_email(cleaned["email"])
    before = audit.snapshot(contact, AUDITED)
    if cleaned.get("consent") and not contact.consent:
        from crm.models import utcnow

        contact.consent_at = now or utcnow()
    for name, value in cleaned.items():
        setattr(contact, name, value)
    db.session.flush()
    after = audit.snapshot(contact, AUDITED)
    changed = {k: (before[k], after[k]) for k in after if before.get(k) != after[k]}
    if changed:
        audit.record("update", "contact", contact.id, user_id=actor_id, before=before, after=after)
        engine_hooks.after_contacts_changed([contact.id], now=now)
    return changed


def tags_by_name(names: list[str]) -> list[Tag]:
    """Return Tag rows for these names (trimmed, lower-cased), creating the missing ones."""
    wanted = sorted({n.strip().lower()[:80] for n in names if n and n.strip()})
    if not wanted:
        return []
    existing = {t.name: t for t in db.session.scalars(select(Tag).where(Tag.name.in_(wanted)))}
    for name in wanted:
        if name not in existing:
            existing[name] = Tag(name=name)
            db.session.add(existing[name])
    return [existing[name] for name in wanted]


def link_external_id(contact: Contact, source: str, external_id: str | None) -> None:
    """Record that `source` knows this contact as `external_id` (once)."""
    if not external_id:
        return
    external_id = str(external_id)
    if any(e.source == source and e.external_id == external_id for e in contact.external_ids):
        return
    if by_external_id(source, external_id) is None:
        contact.external_ids.append(ContactExternalId(source=source, external_id=external_id))


def find_or_create(source: str, external_id: str | None, email: str | None, defaults: dict[str, Any],
                   *, actor_id: int | None = None, now=None) -> ContactChange:
    """Return the contact a source's customer is: by its customer id, else by normalised email,
    else a new contact made from `defaults`. Blank fields of a found contact are filled in."""
    contact = by_external_id(source, external_id) or by_email(email)
    if contact is None:
        values = {k: v for k, v in defaults.items() if k in EDITABLE and v not in (None, "")}
        if email:
            values["email"] = email
        try:
            contact = create_contact(values, actor_id=actor_id, source=source, now=now)
        except ValidationError as error:
            # A bad phone from a shop export must not lose the order: keep what is valid.
            values = {k: v for k, v in values.items() if k not in error.fields or k == "email"}
            contact = create_contact(values, actor_id=actor_id, source=source, now=now)
        link_external_id(contact, source, external_id)
        return ContactChange(contact, created=True)
    fill = {k: v for k, v in defaults.items()
            if k in EDITABLE and v not in (None, "") and getattr(contact, k) in (None, "")}
    changed = {}
    if fill:
        try:
            changed = update_contact(contact, fill, actor_id=actor_id, now=now)
        except ValidationError as error:
            fill = {k: v for k, v in fill.items() if k not in error.fields}
            changed = update_contact(contact, fill, actor_id=actor_id, now=now) if fill else {}
    link_external_id(contact, source, external_id)
    return ContactChange(contact, created=False, changed=changed)


# Audit snapshots of a whole contact (delete, merge) keep the derived figures too.
SNAPSHOT = ("id", "source", "created_at", *AUDITED, "consent_at", "stage", "stage_reason", "health", "lead_score",
            "order_count", "total_spent", "first_order_at", "last_order_at", "last_interaction_at")


def full_snapshot(contact: Contact) -> dict[str, Any]:
    """Return a contact's fields, tags and external ids as JSON-ready values for the audit log."""
    return {
        **audit.snapshot(contact, SNAPSHOT),
        "tags": sorted(t.name for t in contact.tags),
        "external_ids": sorted(f"{e.source}:{e.external_id}" for e in contact.external_ids),
    }


def clean_tag_names(names: list[str] | str) -> list[str]:
    """Return tag names trimmed and lower-cased (a string may hold several, comma-separated),
    or raise ValidationError on the field "tag"."""
    if isinstance(names, str):
        names = names.split(",")
    cleaned = sorted({n.strip().lower() for n in names if n and n.strip()})
    if not cleaned:
        raise ValidationError(fields={"tag": "Type a tag name."})
    if any(len(name) > 80 for name in cleaned):
        raise ValidationError(fields={"tag": "Keep a tag under 80 characters."})
    return cleaned


def add_tags(contact: Contact, names: list[str] | str, *, actor_id: int | None = None, now=None) -> list[str]:
    """Tag a contact and return the names it did not have yet."""
    wanted = tags_by_name(clean_tag_names(names))
    before = sorted(t.name for t in contact.tags)
    new = [tag for tag in wanted if tag.name not in before]
    if new:
        contact.tags = sorted([*contact.tags, *new], key=lambda tag: tag.name)
        db.session.flush()
        audit.record("tag", "contact", contact.id, user_id=actor_id, before={"tags": before},
                     after={"tags": sorted(t.name for t in contact.tags)})
        engine_hooks.after_contacts_changed([contact.id], now=now)
    return [tag.name for tag in new]


def remove_tag(contact: Contact, name: str, *, actor_id: int | None = None, now=None) -> bool:
    """Take a tag off a contact; return whether it had it."""
    before = sorted(t.name for t in contact.tags)
    name = (name or "").strip().lower()
    if name not in before:
        return False
    contact.tags = [tag for tag in contact.tags if tag.name != name]
    db.session.flush()
    audit.record("untag", "contact", contact.id, user_id=actor_id, before={"tags": before},
                 after={"tags": sorted(t.name for t in contact.tags)})
    engine_hooks.after_contacts_changed([contact.id], now=now)
    return True


def delete_contact(contact: Contact, *, actor_id: int | None = None) -> None:
    """Delete a contact with its orders, interactions and to-dos, keeping a full snapshot in the audit log."""
    audit.record("delete", "contact", contact.id, user_id=actor_id, before=full_snapshot(contact))
    db.session.delete(contact)
    db.session.flush()
