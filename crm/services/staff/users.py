"""Users: creating them, checking sign-ins and session versions."""
from __future__ import annotations

import secrets

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from crm.extensions import db
from crm.models import ROLES, Setting, User, utcnow
from crm.services.shared.emails import email_problem, normalise_email
from crm.services.shared.errors import N_, Message, ValidationError
from crm.services.staff import api_tokens
from crm.services.trust import audit

MIN_PASSWORD_LENGTH = 10


def _too_short():
    return Message(N_("Use at least %(count)s characters."), count=MIN_PASSWORD_LENGTH)


def _role_choices():
    return Message(N_("Role must be one of %(roles)s."), roles=", ".join(ROLES))


def user_count() -> int:
    return db.session.scalar(select(func.count()).select_from(User)) or 0


SETUP_KEY = "setup.first_admin"


def claim_setup() -> bool:
    """Claim the first-run setup for this transaction; return False when someone else has it.

    The claim is a row with a fixed primary key: of several concurrent first-run requests the
    first insert wins, the others wait for it (PostgreSQL) and then fail on the key, so only one
    admin is ever created by /setup. The row goes with the transaction if the setup fails.
    """
    try:
        with db.session.begin_nested():
            db.session.add(Setting(key=SETUP_KEY, value=utcnow().isoformat()))
    except IntegrityError:
        return False
    return user_count() == 0


def by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalise_email(email)))


def create_user(email: str, name: str, role: str, password: str, *, actor_id: int | None = None) -> User:
    """Return a new user (flushed), or raise ValidationError naming each bad field."""
    email_n = normalise_email(email)
    errors: dict[str, str] = {}
    if not email_n:
        errors["email"] = N_("An email address is required.")
    elif reason := email_problem(email_n):
        errors["email"] = reason
    elif by_email(email_n):
        errors["email"] = Message(N_("A user with the email %(email)s already exists."), email=email_n)
    if not (name or "").strip():
        errors["name"] = N_("A name is required.")
    if role not in ROLES:
        errors["role"] = _role_choices()
    if len(password or "") < MIN_PASSWORD_LENGTH:
        errors["password"] = _too_short()
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


def end_sessions(user: User) -> None:
    """End every session cookie of the user (sign-out, password change, disable)."""
    user.session_version += 1


def change_password(user: User, new_password: str, *, actor_id: int | None = None,
                    action: str = "change_password") -> None:
    """Set a new password and end the user's other sessions and API tokens, or raise ValidationError."""
    if len(new_password or "") < MIN_PASSWORD_LENGTH:
        raise ValidationError(fields={"password": _too_short()})
    user.set_password(new_password)
    end_sessions(user)
    revoked = api_tokens.revoke_all(user)
    audit.record(action, "user", user.id, user_id=actor_id or user.id,
                 after={"api_tokens_revoked": revoked} if revoked else None)


# No 0/O, 1/l/I: a generated password is often read out or typed from a screen.
PASSWORD_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def generate_password() -> str:
    """Return a new random password of four groups of five characters (about 115 bits)."""
    return "-".join("".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(5)) for _ in range(4))


def list_users() -> list[User]:
    """Return every user, active ones first, then by name."""
    return list(db.session.scalars(select(User).order_by(User.active.desc(), func.lower(User.name), User.id)))


def active_admin_count() -> int:
    return db.session.scalar(
        select(func.count()).select_from(User).where(User.role == "admin", User.active.is_(True))
    ) or 0


def _is_last_active_admin(user: User) -> bool:
    return user.role == "admin" and user.active and active_admin_count() <= 1


def set_role(user: User, role: str, *, actor_id: int | None) -> bool:
    """Give a user another role; return whether it changed, or raise ValidationError.

    The last active admin keeps the admin role, so the shop cannot lock itself out.
    """
    if role not in ROLES:
        raise ValidationError(fields={"role": _role_choices()})
    if role == user.role:
        return False
    if _is_last_active_admin(user):
        raise ValidationError(fields={"role": Message(
            N_("%(name)s is the last active admin; make someone else admin first."), name=user.name)})
    before = user.role
    user.role = role
    audit.record("change_role", "user", user.id, user_id=actor_id, before={"role": before}, after={"role": role})
    return True


def set_active(user: User, active: bool, *, actor_id: int | None) -> bool:
    """Enable or disable a user; return whether it changed, or raise ValidationError.

    Disabling ends the user's sessions and revokes their API tokens for good, so enabling
    again revives neither old cookies (the session version moved on) nor old tokens.
    """
    if bool(active) == user.active:
        return False
    if not active and _is_last_active_admin(user):
        raise ValidationError(fields={"active": Message(
            N_("%(name)s is the last active admin and cannot be disabled."), name=user.name)})
    user.active = bool(active)
    end_sessions(user)
    revoked = api_tokens.revoke_all(user)
    after = {"active": bool(active)}
    if revoked:
        after["api_tokens_revoked"] = revoked
    audit.record("enable" if active else "disable", "user", user.id, user_id=actor_id,
                 before={"active": not active}, after=after)
    return True


def reset_password(user: User, new_password: str | None = None, *, actor_id: int | None) -> str:
    """Set a password an admin chose (or a generated one) and return it, to be shown once."""
    password = (new_password or "").strip() or generate_password()
    change_password(user, password, actor_id=actor_id, action="reset_password")
    return password


def change_own_password(user: User, current_password: str, new_password: str) -> None:
    """Change a user's own password after checking the current one, or raise ValidationError."""
    if not user.check_password(current_password or ""):
        raise ValidationError(fields={"current_password": N_("That is not your current password.")})
    change_password(user, new_password, actor_id=user.id)


def set_language(user: User, language: str | None, available: tuple[str, ...]) -> bool:
    """Set the language a user reads the CRM in (None: follow the browser, then the shop); audited.
    Return whether it changed, or raise ValidationError when the CRM has no such language."""
    language = (language or "").strip() or None
    if language is not None and language not in available:
        raise ValidationError(fields={"language": N_("Choose a language from the list.")})
    if language == user.language:
        return False
    before = user.language
    user.language = language
    audit.record("change_language", "user", user.id, user_id=user.id, before={"language": before},
                 after={"language": language})
    return True
