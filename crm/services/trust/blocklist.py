"""The erased-email block list: hashes of the addresses (and shop customer ids) of erased people
who asked not to come back, checked by imports, webhooks and the API before a contact is made."""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import exists, func, select

from crm.extensions import db
from crm.models import ErasedEmail, utcnow
from crm.services.shared.emails import normalise_email

BATCH = 500


def _in_batches(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), BATCH):
        yield items[start:start + BATCH]


def email_hash(email: str) -> str:
    """Return the sha256 of a normalised email: what the block list keeps instead of the address."""
    return hashlib.sha256((normalise_email(email) or "").encode()).hexdigest()


def is_blocked(email: str | None) -> bool:
    """Return whether an email was erased and blocked from coming back (imports, webhooks, API)."""
    if not normalise_email(email):
        return False
    return db.session.scalar(select(exists().where(ErasedEmail.email_hash == email_hash(email)))) or False


def blocked_among(emails: Iterable[str | None]) -> set[str]:
    """Return which of these emails (normalised) are blocked: one query per 500, for imports."""
    by_hash = {email_hash(email): normalise_email(email) for email in emails if normalise_email(email)}
    hashes = sorted(by_hash)
    blocked: set[str] = set()
    for chunk in _in_batches(hashes):
        blocked |= {by_hash[h] for h in db.session.scalars(select(ErasedEmail.email_hash).where(ErasedEmail.email_hash.in_(chunk)))}
    return blocked


CUSTOMER_ID_MARK = "id:"


def customer_id_hash(source: str, external_id: str) -> str:
    """Return the hash that blocks a shop's customer id (a body with that id and no email)."""
    # "id:" marks it (an email's hash is hex only), so blocked_count() still counts emails.
    return CUSTOMER_ID_MARK + hashlib.sha256(f"{source}:{external_id}".encode()).hexdigest()[:61]


def blocked_customer_ids(keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Return which (source, customer id) pairs belong to an erased, blocked person."""
    by_hash = {customer_id_hash(source, str(ext)): (source, str(ext)) for source, ext in keys if ext}
    blocked: set[tuple[str, str]] = set()
    for chunk in _in_batches(sorted(by_hash)):
        blocked |= {by_hash[h] for h in db.session.scalars(select(ErasedEmail.email_hash).where(ErasedEmail.email_hash.in_(chunk)))}
    return blocked


def blocked_count() -> int:
    """Return how many erased emails are blocked (the customer ids blocked beside them not counted)."""
    return db.session.scalar(select(func.count()).select_from(ErasedEmail)
                             .where(ErasedEmail.email_hash.not_like(CUSTOMER_ID_MARK + "%"))) or 0


def add_to_block_list(email: str, now: datetime | None = None) -> bool:
    """Add an email to the block list (as a hash); return False when it was already there."""
    if is_blocked(email):
        return False
    db.session.add(ErasedEmail(email_hash=email_hash(email), erased_at=now or utcnow()))
    db.session.flush()
    return True
