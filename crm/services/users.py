"""Users: creating them, checking sign-ins and session versions."""
from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select

from crm.extensions import db
from crm.models import ROLES, User, utcnow
from crm.services import audit
from crm.services.errors import ValidationError

MIN_PASSWORD_LENGTH = 10


def normalise_email(value: str | None) -> str | None:
    """Return an email trimmed and lower-cased for matching, or None when empty."""
    value = (value or "").strip()
    return value.lower() or None


def check_email_syntax(value: str) -> str | None:
    """Return why an address is not a valid email, or None when it is."""
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        return str(error)
    return None


def user_count() -> int:
    return db.session.scalar(select(func.count()).select_from(User)) or 0


def by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalise_email(email)))


def create_user(email: str, name: str, role: str, password: str, *, actor_id: int | None = None) -> User:
    """Return a new user (flushed), or raise ValidationError naming each bad field."""
    email_n = normalise_email(email)
    errors: dict[str, str] = {}
    if not email_n:
        errors["email"] = "An email address is required."
    elif reason := check_email_syntax(email_n):
        errors["email"] = reason
    elif by_email(email_n):
        errors["email"] = f"A user with the email {email_n} already exists."
    if not (name or "").strip():
        errors["name"] = "A name is required."
    if role not in ROLES:
        errors["role"] = f"Role must be one of {', '.join(ROLES)}."
    if len(password or "") < MIN_PASSWORD_LENGTH:
        errors["password"] = f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if errors:
        raise ValidationError(fields=errors)
    user = User(email=email_n, name=name.strip(), role=role, active=True)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    audit.record("create", "user", user.id, user_id=actor_id or user.id,
                 after={"email": user.email, "name": user.name, "role": user.role})
    return user


def authenticate(email: str, password: str) -> User | None:
    """Return the active user with this email and password, or None."""
    user = by_email(email or "")
    if user is None or not user.active or not user.check_password(password or ""):
        return None
    user.last_login_at = utcnow()
    return user


def user_for_session(session_id: str) -> User | None:
    """Return the user a session cookie names, if the session is still valid.

    The cookie holds "<id>:<session_version>"; a password change or a disable
    bumps the version, which ends every other session at once.
    """
    try:
        user_id, version = (int(part) for part in session_id.split(":", 1))
    except (ValueError, AttributeError):
        return None
    user = db.session.get(User, user_id)
    if user is None or not user.active or user.session_version != version:
        return None
    return user


def change_password(user: User, new_password: str, *, actor_id: int | None = None) -> None:
    """Set a new password and end the user's other sessions, or raise ValidationError."""
    if len(new_password or "") < MIN_PASSWORD_LENGTH:
        raise ValidationError(fields={"password": f"Use at least {MIN_PASSWORD_LENGTH} characters."})
    user.set_password(new_password)
    user.session_version += 1
    audit.record("change_password", "user", user.id, user_id=actor_id or user.id)
