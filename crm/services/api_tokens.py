"""API tokens: shown once when made, stored only as a hash, acting as their user."""
from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select

from crm.extensions import db
from crm.models import ApiToken, User, utcnow
from crm.services import audit
from crm.services.errors import ValidationError

PREFIX = "crm_"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(user: User, name: str, *, actor_id: int | None = None) -> tuple[ApiToken, str]:
    """Return the stored token row and the plain token, which is never stored."""
    name = (name or "").strip()
    if not name:
        raise ValidationError(fields={"name": "Give the token a name, such as the system that will use it."})
    plain = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, token_hash=_hash(plain), prefix=plain[:10])
    db.session.add(token)
    db.session.flush()
    audit.record("create", "api_token", token.id, user_id=actor_id or user.id,
                 after={"name": name, "user": user.email})
    return token, plain


def authenticate(plain: str) -> User | None:
    """Return the active user behind a live token, or None."""
    if not plain.startswith(PREFIX):
        return None
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash(plain)))
    if token is None or token.revoked_at is not None or not token.user.active:
        return None
    return token.user


def revoke(token: ApiToken, *, actor_id: int | None = None) -> None:
    token.revoked_at = utcnow()
    audit.record("revoke", "api_token", token.id, user_id=actor_id)
