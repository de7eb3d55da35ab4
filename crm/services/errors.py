"""The errors services raise: bad input (with a reason per field), a missing record, an erased contact."""
from __future__ import annotations


def N_(text: str) -> str:
    """Mark a message for the translation catalogue (`make translations` extracts N_) and return it as it
    is: services stay free of Flask-Babel, and the view that shows the message translates it."""
    return text


class Message(str):
    """A message with values, read in English as it is; a view translates `template` and fills in `values`."""

    template: str
    values: dict

    def __new__(cls, template: str, **values) -> Message:
        message = super().__new__(cls, template % values if values else template)
        message.template, message.values = template, values
        return message


class ValidationError(Exception):
    """Bad input: `fields` maps each field name to the reason it was refused."""

    def __init__(self, message: str = N_("Please correct the highlighted fields."), fields: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class NotFound(Exception):
    """A record a service was asked to act on does not exist."""


class Erased(Exception):
    """A contact whose personal data was erased: its row stays for the books, nothing is written to it."""

    def __init__(self, contact_id: int):
        super().__init__(f"Contact #{contact_id} was erased; nothing can be added to it or changed.")
        self.contact_id = contact_id
