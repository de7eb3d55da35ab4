"""Who may receive an email, and the suppression list (unsubscribed and bounced addresses).

One rule for every path (the composer, the to-do button, the API, the worker's re-check, later
flows): `eligibility(contact, marketing)`. An address on the list stays suppressed even if the
contact's consent box is ticked again; erasing a contact keeps only the address's hash.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from crm.extensions import db
from crm.models import ConsentEvent, Contact, EmailSuppression, utcnow
from crm.services.shared import signals
from crm.services.staff.users import normalise_email
from crm.services.trust import audit
from crm.services.trust.blocklist import email_hash

REASONS = {
    "ok": "Can receive email.",
    "no_address": "The contact has no email address.",
    "erased": "The contact's personal data was erased.",
    "do_not_contact": "The contact is marked do not contact.",
    "bounced": "Mail to this address bounced; it is suppressed.",
    "unsubscribed": "The contact unsubscribed from marketing email.",
    "no_consent": "The contact has not given marketing consent (personal and order messages only).",
}


@dataclass(frozen=True)
class Eligibility:
    status: str  # a key of REASONS

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def reason(self) -> str:
        return REASONS[self.status]


def suppressed(email: str | None) -> EmailSuppression | None:
    """Return the suppression row for an address, or None."""
    if not normalise_email(email):
        return None
    return db.session.scalar(select(EmailSuppression).where(EmailSuppression.email_hash == email_hash(email)))


def suppressed_among(emails: Iterable[str | None]) -> dict[str, str]:
    """Return {normalised email: reason} for the suppressed ones (batched, for imports and lists)."""
    by_hash = {email_hash(e): normalise_email(e) for e in emails if normalise_email(e)}
    found: dict[str, str] = {}
    hashes = sorted(by_hash)
    for start in range(0, len(hashes), 500):
        rows = db.session.execute(select(EmailSuppression.email_hash, EmailSuppression.reason)
                                  .where(EmailSuppression.email_hash.in_(hashes[start:start + 500])))
        found.update({by_hash[h]: reason for h, reason in rows})
    return found


def status_of(contact: Contact, marketing: bool, suppression_reason: str | None = None, *, looked_up: bool = False) -> Eligibility:
    """Return whether this contact may receive a (marketing) email, and the first reason why not."""
    if contact.erased_at is not None:
        return Eligibility("erased")
    if not contact.email:
        return Eligibility("no_address")
    if contact.do_not_contact:
        return Eligibility("do_not_contact")
    if not looked_up:
        row = suppressed(contact.email)
        suppression_reason = row.reason if row is not None else None
    if suppression_reason == "bounced":
        return Eligibility("bounced")
    if marketing and suppression_reason == "unsubscribed":
        return Eligibility("unsubscribed")
    if marketing and not contact.consent:
        return Eligibility("no_consent")
    return Eligibility("ok")


def eligibility(contact: Contact, marketing: bool) -> Eligibility:
    return status_of(contact, marketing)


def email_statuses(contacts: list[Contact]) -> dict[int, str]:
    """Return each contact's email status for marketing (one query for the lot)."""
    reasons = suppressed_among(c.email for c in contacts)
    return {c.id: status_of(c, True, reasons.get(c.email or ""), looked_up=True).status for c in contacts}


def suppress(email: str, reason: str, detail: str, *, contact_id: int | None, message_id: int | None,
             now: datetime | None = None) -> EmailSuppression:
    """Put an address on the suppression list (a bounce outranks an unsubscribe); return the row."""
    row = suppressed(email)
    if row is None:
        row = EmailSuppression(email_hash=email_hash(email), email=normalise_email(email), reason=reason,
                               detail=detail[:500], contact_id=contact_id, message_id=message_id, created_at=now or utcnow())
        db.session.add(row)
    elif reason == "bounced" and row.reason != "bounced":
        row.reason, row.detail, row.message_id = reason, detail[:500], message_id
    db.session.flush()
    return row


def unsubscribe(contact: Contact, *, message_id: int | None, how: str, now: datetime | None = None) -> bool:
    """Withdraw a contact's marketing consent from an unsubscribe link; return False when already done.

    Clears the consent, suppresses the address, writes the consent history (when, how, which
    message), a note on the timeline and the audit log. Idempotent: a second POST changes nothing.
    """
    from crm.services.people import interactions

    now = now or utcnow()
    if contact.erased_at is not None or not contact.email:
        return False
    already = suppressed(contact.email)
    if already is not None and not contact.consent:
        return False
    source = f"{how} (message #{message_id})" if message_id else how
    suppress(contact.email, "unsubscribed", source, contact_id=contact.id, message_id=message_id, now=now)
    before = audit.snapshot(contact, ("consent", "consent_at", "consent_source"))
    contact.consent, contact.consent_at, contact.consent_source = False, now, source[:200]
    db.session.add(ConsentEvent(contact_id=contact.id, consent=False, source=source[:200], message_id=message_id, at=now))
    audit.record("unsubscribe", "contact", contact.id, before=before,
                 after={**audit.snapshot(contact, ("consent", "consent_at", "consent_source")), "message_id": message_id})
    interactions.log_interaction(contact, {"kind": "note", "direction": "internal", "channel": "unsubscribe link",
                                           "subject": "Unsubscribed from marketing email",
                                           "body": f"Through the link in message #{message_id}." if message_id else ""},
                                 author_id=None, now=now)
    signals.after_contacts_changed([contact.id], now=now)
    return True


def record_consent(contact: Contact, consent: bool, source: str, actor_id: int | None, now: datetime | None = None) -> None:
    """Add a line to the consent history (called wherever consent is given or withdrawn)."""
    db.session.add(ConsentEvent(contact_id=contact.id, consent=consent, source=source[:200], actor_id=actor_id, at=now or utcnow()))


def history(contact_id: int) -> list[ConsentEvent]:
    return list(db.session.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == contact_id)
                                   .order_by(ConsentEvent.at.desc(), ConsentEvent.id.desc())))


def forget_addresses(contact: Contact) -> None:
    """On erasure: keep only the hash of a suppressed address, never the address or the link to the person."""
    for row in db.session.scalars(select(EmailSuppression).where(EmailSuppression.contact_id == contact.id)):
        row.email, row.contact_id, row.detail = None, None, ""
    if contact.email:
        row = suppressed(contact.email)
        if row is not None:
            row.email, row.contact_id, row.detail = None, None, ""
