"""The errors services raise: bad input (with a reason per field), a missing record, an erased contact."""
from __future__ import annotations

from crm.services.shared.said import N_, Said  # noqa: F401  (N_ marks a message for `make translations`)


def Message(template: str, **values) -> Said:  # noqa: N802 (reads like the sentence it makes)
    """A message with values: English as it is (a str), shown in the reader's language by the view
    (crm.views.said renders its key and values through the reader's catalogue)."""
    return Said(template, values)


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
        super().__init__(Message(N_("Contact #%(id)s was erased; nothing can be added to it or changed."), id=str(contact_id)))
        self.contact_id = contact_id
