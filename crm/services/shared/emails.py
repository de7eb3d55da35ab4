"""The one email rule: forms, the API, imports, webhooks and users all check and match
addresses here. Pure: no Flask, no database."""
from __future__ import annotations

from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

from crm.services.shared.said import N_

MAX_LENGTH = 320


def normalise_email(text: str | None) -> str | None:
    """Strip and lower-case an email address (the form it is matched by); None for None or blank."""
    if text is None:
        return None
    text = str(text).strip().lower()
    return text or None


# Our own words for why an address is refused (email-validator's text is English only): each is a
# msgid the pages, the API and the import pages show in the reader's language. The first whose
# test matches email-validator's message wins; anything else is NOT_VALID.
NO_AT_SIGN = N_("An email address must have an @-sign.")
NOTHING_BEFORE_AT = N_("There must be something before the @-sign.")
NOTHING_AFTER_AT = N_("There must be something after the @-sign.")
TOO_LONG = N_("The email address is too long.")
NO_PERIOD = N_("The part after the @-sign needs a period, as in example.com.")
NO_DOMAIN = N_("The part after the @-sign is not a domain an email can be sent to.")
BAD_CHARACTERS_BEFORE = N_("The part before the @-sign contains characters an email address cannot have.")
BAD_CHARACTERS_AFTER = N_("The part after the @-sign contains characters an email address cannot have.")
PERIODS = N_("An email address cannot start or end with a period, or have two periods in a row.")
SPACES_OR_NAME = N_("Give only the address, without a name, spaces or angle brackets.")
NOT_VALID = N_("This is not a valid email address.")
_REASONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("must have an @-sign", "at-sign", "commercial at"), NO_AT_SIGN),
    (("something before the @-sign",), NOTHING_BEFORE_AT),
    (("something after the @-sign",), NOTHING_AFTER_AT),
    (("too long", "so many characters"), TOO_LONG),
    (("It should have a period",), NO_PERIOD),
    (("top-level domain", "special-use or reserved"), NO_DOMAIN),
    (("period",), PERIODS),
    (("display name", "angle bracket", "anything after the email address"), SPACES_OR_NAME),
    (("before the @-sign",), BAD_CHARACTERS_BEFORE),
    (("after the @-sign",), BAD_CHARACTERS_AFTER),
)
REASONS = (*(reason for _tests, reason in _REASONS), NOT_VALID)


def _reason(library_text: str) -> str:
    for tests, reason in _REASONS:
        if any(test in library_text for test in tests):
            return reason
    return NOT_VALID


@lru_cache(maxsize=16384)  # an export names the same customers again and again
def email_problem(text: str) -> str | None:
    """Return why an address is not a valid email, or None when it is: one of REASONS, English
    marked for translation (email-validator's own words are English only).
    Deliverability is not checked: the CRM never looks anything up on the network."""
    if len(text) > MAX_LENGTH:
        return TOO_LONG
    try:
        validate_email(text, check_deliverability=False)
    except EmailNotValidError as error:
        return _reason(str(error))
    return None


def is_valid_email(text: str | None) -> bool:
    """True for an address the forms would accept too."""
    return bool(text) and email_problem(text) is None
