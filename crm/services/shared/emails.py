"""The one email rule: forms, the API, imports, webhooks and users all check and match
addresses here. Pure: no Flask, no database."""
from __future__ import annotations

from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

MAX_LENGTH = 320


def normalise_email(text: str | None) -> str | None:
    """Strip and lower-case an email address (the form it is matched by); None for None or blank."""
    if text is None:
        return None
    text = str(text).strip().lower()
    return text or None


@lru_cache(maxsize=16384)  # an export names the same customers again and again
def email_problem(text: str) -> str | None:
    """Return why an address is not a valid email (email-validator's reason), or None when it is.
    Deliverability is not checked: the CRM never looks anything up on the network."""
    if len(text) > MAX_LENGTH:
        return f"An email address is at most {MAX_LENGTH} characters long."
    try:
        validate_email(text, check_deliverability=False)
    except EmailNotValidError as error:
        return str(error)
    return None


def is_valid_email(text: str | None) -> bool:
    """True for an address the forms would accept too."""
    return bool(text) and email_problem(text) is None
