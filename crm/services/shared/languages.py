"""The languages a shop, a person or a contact may have, and how a language is written (its ISO 639-1 code)."""
from __future__ import annotations

LANGUAGES = {"en": "English", "de": "Deutsch", "nl": "Nederlands", "fr": "Français", "es": "Español",
             "it": "Italiano", "pt": "Português", "da": "Dansk", "sv": "Svenska", "pl": "Polski"}


def normalise_language(value: object) -> str | None:
    """Return the language code of "nl", "nl-NL", "NL_be" (None for empty), or raise ValueError saying
    which codes are known."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or len(value) > 35:
        raise ValueError("Give a language code such as en or nl.")
    code = value.strip().replace("_", "-").split("-")[0].lower()
    if code not in LANGUAGES:
        raise ValueError(f"Give one of these language codes: {', '.join(LANGUAGES)}.")
    return code


def language_or_none(value: object) -> str | None:
    """The language code of a locale a shop platform sent, or None when it names none we know."""
    try:
        return normalise_language(value)
    except ValueError:
        return None
