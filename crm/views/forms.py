"""Helpers shared by the web forms."""
from __future__ import annotations

from flask_babel import gettext
from flask_wtf import FlaskForm
from wtforms.fields.choices import SelectChoice

from crm.services.shared.errors import ValidationError
from crm.services.shared.said import Said


def translated(message: str | None) -> str | None:
    """Return a service's message (marked with N_, or a Message with values) in the reader's language."""
    if not message:
        return message
    if isinstance(message, Said):
        from crm.views.said import in_reader_language

        return in_reader_language(message)
    return gettext(message)


def apply_errors(form: FlaskForm, error: ValidationError) -> None:
    """Put a service's per-field reasons on the form's fields (unknown fields go on the form)."""
    for name, reason in error.fields.items():
        field = getattr(form, name, None)
        if field is not None and hasattr(field, "errors"):
            field.errors = list(field.errors) + [translated(reason)]
        else:
            form.form_errors.append(translated(reason))
    if not error.fields:
        form.form_errors.append(translated(error.message))


def page_number(limit: int = 100_000) -> int:
    """Return the ?page= of a paginated list: 1 for anything that is not a sensible page number."""
    from crm.views.params import page_arg

    return page_arg("page", limit)


def choices(pairs) -> list:
    """Return select options from (value, label) pairs, as WTForms 3.3 takes them."""
    return [SelectChoice(value, label) for value, label in pairs]
