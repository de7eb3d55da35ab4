"""Contacts: the one place that validates, creates, updates and matches them."""
from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any

import phonenumbers
from flask import current_app, has_app_context
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from crm.extensions import db
from crm.models import Contact, ContactExternalId, Tag, User
from crm.services.orders import aggregates
from crm.services.shared import signals
from crm.services.shared.bounds import MAX_ID, is_country_code
from crm.services.shared.emails import email_problem, normalise_email
from crm.services.shared.errors import N_, Erased, Message, NotFound, ValidationError
from crm.services.shared.languages import normalise_language
from crm.services.trust import audit
from crm.services.trust.blocklist import is_blocked

# Fields a person (form or API) may set on a contact.
EDITABLE = (
    "email", "first_name", "last_name", "phone", "company", "title", "birthday", "address", "city",
    "country", "owner_id", "consent", "consent_source", "do_not_contact", "stay_in_touch_days", "language",
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
        raise ValueError(N_("Write the number with its country code, e.g. +49 30 1234567.")) from error
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        raise ValueError(Message(N_("%(number)s is not a valid phone number."), number=value))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=4096)
def display_phone(e164: str | None) -> str:
    """'+49 30 1234567' for '+49301234567': the stored E.164 number as people write it.

    Kept per process (the same numbers come back page after page; parsing one costs ~0.1 ms, a
    list of 50 contacts a few ms); the answer depends on the number alone."""
    if not e164:
        return ""
    try:
        return phonenumbers.format_number(phonenumbers.parse(e164, None), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:
        return e164


def writable_contact(contact_id: int) -> Contact:
    """Return the contact every write path (page, htmx, API) acts on, with its owner, tags and
    external ids loaded: NotFound when there is none, Erased when its personal data was erased
    (an erased contact is never edited back to life)."""
    if not 0 < contact_id <= MAX_ID:
        raise NotFound(f"There is no contact #{contact_id}.")
    contact = db.session.scalars(
        select(Contact).where(Contact.id == contact_id)
        .options(joinedload(Contact.owner), selectinload(Contact.tags), selectinload(Contact.external_ids))
    ).unique().one_or_none()
    if contact is None:
        raise NotFound(f"There is no contact #{contact_id}.")
    if contact.erased_at is not None:
        raise Erased(contact.id)
    return contact


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


OWNER_REFUSED = N_("Choose an active user who is not a viewer.")


def owner_problem(owner_id: int | None) -> str | None:
    """The one owner rule (form, API, bulk assign): a contact is owned by nobody or by an active
    user who is not a viewer. Return why `owner_id` cannot own contacts, or None."""
    if owner_id is None:
        return None
    owner = db.session.get(User, owner_id) if isinstance(owner_id, int) and 0 < owner_id <= MAX_ID else None
    if owner is None or not owner.active or owner.role == "viewer":
        return OWNER_REFUSED
    return None


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
            if reason := email_problem(email_n):
                errors["email"] = reason
            else:
                other = by_email(email_n)
                if other is not None and (contact is None or other.id != contact.id):
                    errors["email"] = Message(N_("%(name)s (#%(id)s) already has the email %(email)s."),
                                                      name=other.name, id=str(other.id), email=email_n)
        cleaned["email"], cleaned["email_display"] = email_n, display
    if "owner_id" in cleaned and (reason := owner_problem(cleaned["owner_id"])):
        errors["owner_id"] = reason
    if "phone" in cleaned:
        try:
            cleaned["phone"] = normalise_phone(cleaned["phone"])
        except ValueError as error:
            errors["phone"] = error.args[0] if error.args and isinstance(error.args[0], str) else str(error)
    if "country" in cleaned:
        country = (cleaned["country"] or "").upper() or None
        if country and not is_country_code(country):
            errors["country"] = N_("Use the two-letter country code (ISO 3166), e.g. DE.")
        cleaned["country"] = country
    if "language" in cleaned:
        try:
            cleaned["language"] = normalise_language(cleaned["language"])
        except ValueError as error:
            errors["language"] = str(error)
    if "birthday" in cleaned and isinstance(cleaned["birthday"], str):
        try:
            cleaned["birthday"] = date.fromisoformat(cleaned["birthday"]) if cleaned["birthday"] else None
        except ValueError:
            errors["birthday"] = N_("Use the form YYYY-MM-DD.")
    if isinstance(cleaned.get("birthday"), date) and not date(1900, 1, 1) <= cleaned["birthday"] <= date.today():
        errors["birthday"] = N_("Give a birthday from 1900-01-01 to today.")
    if "stay_in_touch_days" in cleaned and cleaned["stay_in_touch_days"] not in (None, ""):
        try:
            days = int(cleaned["stay_in_touch_days"])
            if not 1 <= days <= 3650:
                raise ValueError
            cleaned["stay_in_touch_days"] = days
        except (TypeError, ValueError):
            errors["stay_in_touch_days"] = N_("Give a number of days between 1 and 3650, or leave it empty.")
    elif "stay_in_touch_days" in cleaned:
        cleaned["stay_in_touch_days"] = None
    for name in ("first_name", "last_name"):
        if name in cleaned:
            cleaned[name] = cleaned[name] or ""
            if len(cleaned[name]) > 120:
                errors[name] = N_("Keep it under 120 characters.")
    final = {**{k: getattr(contact, k) for k in ("email", "first_name", "last_name", "phone")}, **cleaned} if contact else cleaned
    if require_identity and not (final.get("email") or final.get("first_name") or final.get("last_name") or final.get("phone")):
        errors.setdefault("email", N_("Give at least a name, an email or a phone number."))
    if errors:
        raise ValidationError(fields=errors)
    return cleaned


# Where a consent came from when the person recording it did not say.
CONSENT_VIA = {"manual": "contact form", "api": "API"}


def consent_fields(contact: Contact | None, consent: bool, source: str | None, now=None) -> dict[str, Any]:
    """The one consent rule, for the form, the API, imports and unsubscribing: return the consent
    columns to set (empty when nothing changes). A consent given or withdrawn always carries its
    source and the time it was recorded; a consent nobody can trace is worthless."""
    from crm.models import utcnow

    source = (source or "").strip()
    if not source:
        raise ValidationError(fields={"consent_source": N_("Say how the contact gave or withdrew consent.")})
    if len(source) > 200:
        raise ValidationError(fields={"consent_source": N_("Keep it under 200 characters.")})
    consent = bool(consent)
    if contact is not None and bool(contact.consent) == consent and contact.consent_source == source:
        return {}
    return {"consent": consent, "consent_at": now or utcnow(), "consent_source": source}


def _consent_change(contact: Contact | None, cleaned: dict[str, Any], via: str, now) -> dict[str, Any]:
    """Take the consent fields out of cleaned form or API values and return them through
    consent_fields; a source left as it was (or blank) on a changed consent becomes `via`."""
    if "consent" not in cleaned and "consent_source" not in cleaned:
        return {}
    was = bool(contact.consent) if contact is not None else False
    old_source = contact.consent_source if contact is not None else None
    consent = bool(cleaned.pop("consent", was))
    typed = cleaned.pop("consent_source", None) or None
    if consent == was:
        # Unchanged consent: a new source corrects how it was learned; a blank one changes nothing.
        if not typed or typed == old_source:
            return {}
        return {"consent_source": typed} if contact is None else consent_fields(contact, consent, typed, now)
    source = typed if typed and typed != old_source else via
    return consent_fields(contact, consent, source, now)


BLOCKED_EMAIL = N_("This address belongs to a person who was erased and asked not to be stored again.")


def _refuse_blocked_email(email: str | None) -> None:
    """Every path that creates a contact (form, API, webhook, import) honours the erasure block list."""
    if email and is_blocked(email):
        raise ValidationError(fields={"email": BLOCKED_EMAIL})


def create_contact(values: dict[str, Any], *, actor_id: int | None = None, source: str = "manual",
                   tags: list[str] | None = None, now=None) -> Contact:
    """Return a new contact (flushed) from validated values; stage, score and to-dos follow.
    A consent given without saying where is recorded as given through `source` (form or API)."""
    cleaned = clean(values)
    cleaned.update(_consent_change(None, cleaned, CONSENT_VIA.get(source, source), now))
    _refuse_blocked_email(cleaned.get("email"))
    contact = Contact(source=source, **cleaned)
    db.session.add(contact)
    if tags:
        contact.tags = tags_by_name(tags)
    db.session.flush()
    audit.record("create", "contact", contact.id, user_id=actor_id, after=audit.snapshot(contact, AUDITED))
    signals.after_contacts_changed([contact.id], now=now)
    return contact


def update_contact(contact: Contact, values: dict[str, Any], *, actor_id: int | None = None, via: str = "manual",
                   now=None) -> dict:
    """Apply validated changes to a contact and return {field: (before, after)} of what changed.
    `via` says where the change came from ("manual" for the form, "api"), the source of a consent
    given or withdrawn without saying where."""
    cleaned = clean(values, contact=contact)
    cleaned.update(_consent_change(contact, cleaned, CONSENT_VIA.get(via, via), now))
    if cleaned.get("email") and cleaned["email"] != contact.email:
        _refuse_blocked_email(cleaned["email"])
    before = audit.snapshot(contact, AUDITED)
    for name, value in cleaned.items():
        setattr(contact, name, value)
    db.session.flush()
    after = audit.snapshot(contact, AUDITED)
    changed = {k: (before[k], after[k]) for k in after if before.get(k) != after[k]}
    if changed:
        audit.record("update", "contact", contact.id, user_id=actor_id, before=before, after=after)
        signals.after_contacts_changed([contact.id], now=now)
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
        raise ValidationError(fields={"tag": N_("Type a tag name.")})
    if any(len(name) > 80 for name in cleaned):
        raise ValidationError(fields={"tag": N_("Keep a tag under 80 characters.")})
    return cleaned


def replace_tags(contact: Contact, names: list[str], *, actor_id: int | None = None, now=None) -> bool:
    """Give a contact exactly these tags (the API's PATCH); return whether they changed."""
    before = sorted(tag.name for tag in contact.tags)
    contact.tags = tags_by_name(names)
    after = sorted(tag.name for tag in contact.tags)
    if before == after:
        return False
    db.session.flush()
    audit.record("update", "contact", contact.id, user_id=actor_id, before={"tags": before}, after={"tags": after})
    signals.after_contacts_changed([contact.id], now=now)
    return True


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
        signals.after_contacts_changed([contact.id], now=now)
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
    signals.after_contacts_changed([contact.id], now=now)
    return True


def delete_contact(contact: Contact, *, actor_id: int | None = None) -> None:
    """Delete a contact with its orders, interactions and to-dos, keeping a full snapshot in the audit log."""
    audit.record("delete", "contact", contact.id, user_id=actor_id, before=full_snapshot(contact))
    contact_id = contact.id
    db.session.delete(contact)
    db.session.flush()
    aggregates.refresh([contact_id])  # its orders went with it: out of the dashboard's summaries
