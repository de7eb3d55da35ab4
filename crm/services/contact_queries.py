"""Finding contacts for the JSON API: text search and a stage filter, one keyset page at a time.

Kept small on purpose: the contacts list page has its own search service, and the two are to
become one.
"""
from __future__ import annotations

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import selectinload

from crm.extensions import db
from crm.models import Contact, ContactExternalId
from crm.services.order_queries import like_pattern


def search_contacts(q: str | None = None, *, stage: str | None = None, after_id: int | None = None,
                    limit: int = 50) -> list[Contact]:
    """Return up to `limit` contacts in id order after `after_id`, with tags and external ids loaded.

    `q` matches the name, email, phone, company (anywhere, any case) or a shop's customer id (exactly).
    Erased contacts are left out.
    """
    query = (select(Contact).where(Contact.erased_at.is_(None)).order_by(Contact.id).limit(limit)
             .options(selectinload(Contact.tags), selectinload(Contact.external_ids)))
    q = (q or "").strip()
    if q:
        pattern = like_pattern(q)
        full_name = func.coalesce(Contact.first_name, "") + " " + func.coalesce(Contact.last_name, "")
        digits = "".join(ch for ch in q if ch.isdigit() or ch == "+")
        matches = [
            full_name.ilike(pattern, escape="\\"), Contact.email.ilike(pattern, escape="\\"),
            Contact.company.ilike(pattern, escape="\\"),
            exists().where(ContactExternalId.contact_id == Contact.id, ContactExternalId.external_id == q),
        ]
        if len(digits) >= 3:  # phones are stored as E.164: match the digits the person typed
            matches.append(Contact.phone.like(like_pattern(digits), escape="\\"))
        query = query.where(or_(*matches))
    if stage:
        query = query.where(Contact.stage == stage)
    if after_id is not None:
        query = query.where(Contact.id > after_id)
    return list(db.session.scalars(query))
