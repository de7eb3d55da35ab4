"""API tokens: shown once when made, stored only as a hash, acting as their user."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from flask import current_app, g, has_app_context, has_request_context
from sqlalchemy import or_, select, update
from sqlalchemy.exc import OperationalError

from crm.database import read_only, write_intent
from crm.extensions import db
from crm.models import ApiToken, User, utcnow
from crm.services.shared.errors import ValidationError
from crm.services.trust import audit

PREFIX = "crm_"
# last_used_at is a hint for people, so it is written at most this often per token.
LAST_USED_EVERY = timedelta(minutes=1)
# When this process last noted each token's use (by digest), so the other 59 seconds' requests
# of a busy client skip the UPDATE that would change nothing.
_noted: dict[str, datetime] = {}


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


def authenticate(plain: str, *, now: datetime | None = None) -> User | None:
    """Return the active user behind a live token, or None; note when the token was last used.

    A token this process noted less than a minute ago needs no note, so it is read once, with its
    user, in the request's own transaction; otherwise it is first looked up on a connection of its
    own (an unknown or revoked token never writes anything) and its use noted.
    """
    if not plain.startswith(PREFIX) or len(plain) > 200:
        return None
    digest = _hash(plain)
    now = now or utcnow()
    if not _noted_recently(digest, now):
        if not _live(digest):
            return None
        _note_use(digest, now)
    user = db.session.scalar(select(User).join(ApiToken, ApiToken.user_id == User.id)
                             .where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None)))
    if user is None or not user.active:
        return None
    return user


def is_live(plain: str) -> bool:
    """Return whether a plain token is a live (not revoked) token: a read, never a write."""
    if not plain.startswith(PREFIX) or len(plain) > 200:
        return False
    return _live(_hash(plain))


def _live(digest: str) -> bool:
    """Look the token up on a connection of its own, in a read transaction, before the request's
    own transaction begins (so a GET stays a deferred transaction on SQLite); once a request (the
    rate limiter's key asks first, then the sign-in)."""
    answers = g.setdefault("_live_tokens", {}) if has_request_context() else {}
    if digest in answers:
        return answers[digest]
    with read_only(), db.engine.connect() as connection:
        found = connection.execute(select(ApiToken.id).where(ApiToken.token_hash == digest,
                                                             ApiToken.revoked_at.is_(None))).first()
        connection.rollback()
    answers[digest] = found is not None
    return found is not None


def revoke(token: ApiToken, *, actor_id: int | None = None) -> None:
    token.revoked_at = utcnow()
    audit.record("revoke", "api_token", token.id, user_id=actor_id)


def revoke_all(user: User) -> int:
    """Revoke every live token of the user for good; return how many were live."""
    now = utcnow()
    live = list(db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))))
    for token in live:
        token.revoked_at = now
    return len(live)


def _noted_recently(digest: str, now: datetime) -> bool:
    noted = _noted.get(digest)
    return noted is not None and timedelta(0) <= now - noted < LAST_USED_EVERY


def _note_use(digest: str, now: datetime) -> None:
    """Set last_used_at (at most once a minute) in a short transaction of its own, or skip it.

    It runs before the request's own transaction begins, on a separate connection, so a GET
    stays a read-only (deferred) transaction on SQLite. It never waits: when another writer
    holds SQLite's lock, the hint is skipped and written on a later request.
    """
    if _noted_recently(digest, now):
        return  # this process wrote it less than a minute ago: no statement, no connection
    statement = (
        update(ApiToken)
        .where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None),
               or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - LAST_USED_EVERY))
        .values(last_used_at=now)
    )
    engine = db.engine
    sqlite = engine.dialect.name == "sqlite"
    intent = write_intent.set(True)
    try:
        with engine.connect() as connection:
            raw = connection.connection.dbapi_connection
            if sqlite:
                raw.execute("PRAGMA busy_timeout=0")
            try:
                connection.execute(statement)
                connection.commit()
                if len(_noted) >= 10_000:
                    _noted.clear()
                _noted[digest] = now
            except OperationalError:
                connection.rollback()
            finally:
                if sqlite:
                    timeout = current_app.config.get("SQLITE_BUSY_TIMEOUT_MS", 30_000) if has_app_context() else 30_000
                    raw.execute(f"PRAGMA busy_timeout={int(timeout)}")
    finally:
        write_intent.reset(intent)
