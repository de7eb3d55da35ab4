"""The one error a service raises for bad input, with a reason per field."""
from __future__ import annotations


class ValidationError(Exception):
    """Bad input: `fields` maps each field name to the reason it was refused."""

    def __init__(self, message: str = "Please correct the highlighted fields.", fields: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class NotFound(Exception):
    """A record a service was asked to act on does not exist."""
