"""The rules' words in the reader's language.

The engine stores each reason, to-do title and score line in English *and* as a message key with
its values (crm.services.shared.said). When a contact, a to-do or a stage change is loaded, its
English words become ``Said`` strings again (still the same English text, so everything that
reads them as text is unchanged); when a template prints one, Jinja's ``finalize`` renders it
through the reader's catalogue, with dates, amounts and plurals of their locale. Words a person
typed (a pin's reason, a to-do made by hand) have no key and are printed as typed.
"""
from __future__ import annotations

from typing import Any

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from flask import Flask
from flask_babel import get_locale, get_translations
from sqlalchemy import event
from sqlalchemy.orm.attributes import set_committed_value

from crm.models import Contact, JobRun, StageChange, Task
from crm.services.shared.said import Day, Money, Number, Ordinal, Said, from_json, revive
from crm.services.shared.wording import INTERACTION_WORDS

DATE_PATTERN = "d MMM y"  # 5 dec. 2026; English keeps the rules' own "5 December 2026"


def in_reader_language(value: Said) -> str:
    """The sentence in the language of this request (English as the rules wrote it)."""
    locale = get_locale()
    if locale is None or locale.language == "en":
        return _english(value) if _names_a_kind(value) else str(value)
    try:
        return _render(value, get_translations(), locale)
    except (KeyError, ValueError, TypeError):  # a catalogue entry whose placeholders do not fit
        return str(value)


def _names_a_kind(value: Said) -> bool:
    return any((name == "kind" and isinstance(item, str) and item in INTERACTION_WORDS)
               or (isinstance(item, Said) and _names_a_kind(item)) for name, item in value.values.items())


def _english(value: Said) -> str:
    """The rules' English with an interaction kind's English word in place of its code ("negative
    text message", not "negative sms"); everything else as the rules wrote it."""
    template = value.key if value.count is None else value.key[0] if abs(value.count) == 1 else value.key[1]
    values = {}
    for name, item in value.values.items():
        if name == "kind" and isinstance(item, str) and item in INTERACTION_WORDS:
            values[name] = INTERACTION_WORDS[item]
        elif isinstance(item, Said):
            values[name] = _english(item)
        else:
            values[name] = str(item)
    return template % values if values else template


def _render(value: Said, translations, locale) -> str:
    if value.count is None:
        template = translations.gettext(value.key)
    else:
        template = translations.ngettext(value.key[0], value.key[1], value.count)
    if not value.values:
        return template
    values = {name: _value(item, translations, locale, name) for name, item in value.values.items()}
    if value.count is not None:
        values["num"] = format_decimal(value.count, locale=locale)
    return template % values


def _value(item: Any, translations, locale, name: str | None = None) -> str:
    if name == "kind" and isinstance(item, str) and item in INTERACTION_WORDS:
        # An interaction kind's code ("call") inside a sentence: the reader's word for it.
        return translations.gettext(INTERACTION_WORDS[item])
    if isinstance(item, Said):
        return _render(item, translations, locale)
    if isinstance(item, Day):
        return format_date(item.value, DATE_PATTERN, locale=locale)
    if isinstance(item, Money):
        return format_currency(item.amount, item.currency.upper(), locale=locale)
    if isinstance(item, Ordinal):
        return f"{item.value}e" if locale.language == "nl" else f"{item.value}."
    if isinstance(item, Number):
        return format_decimal(item.value, locale=locale)
    if isinstance(item, int) and not isinstance(item, bool):
        return format_decimal(item, locale=locale)
    return str(item)


def finalize(value: Any) -> Any:
    """Jinja's hook on every printed expression: a Said in the reader's language, all else as is."""
    return in_reader_language(value) if isinstance(value, Said) else value


# -- loading: English text + stored key and values -> Said ----------------------------------------


def _revive(target, name: str, data) -> None:
    text = target.__dict__.get(name)
    if data and isinstance(text, str) and not isinstance(text, Said):
        value = revive(text, data)
        if value is not text:
            set_committed_value(target, name, value)


def _task_loaded(target: Task, *_args) -> None:
    said = target.__dict__.get("said")
    if said:
        _revive(target, "title", said.get("title"))
        _revive(target, "reason", said.get("reason"))
    _revive(target, "close_reason", target.__dict__.get("close_reason_said"))


def _contact_loaded(target: Contact, *_args) -> None:
    _revive(target, "stage_reason", target.__dict__.get("stage_reason_said"))
    for line in target.__dict__.get("score_breakdown") or ():
        if isinstance(line, dict) and line.get("said") and isinstance(line.get("why"), str):
            line["why"] = revive(line["why"], line["said"])


def _stage_change_loaded(target: StageChange, *_args) -> None:
    _revive(target, "reason", target.__dict__.get("reason_said"))


def _job_run_loaded(target: JobRun, *_args) -> None:
    """A job's result and error in the reader's words (stored cut to their column's length: the
    sentence is revived when the stored text is its beginning)."""
    said = target.__dict__.get("said")
    if not isinstance(said, dict):
        return
    for name in ("result", "error"):
        text = target.__dict__.get(name)
        restored = from_json(said.get(name))
        if not isinstance(text, str) or isinstance(text, Said) or restored is None:
            continue
        whole = str(restored)
        if whole == text or (text.endswith("…") and whole.startswith(text[:-1])):
            set_committed_value(target, name, restored)


def revive_line(line: dict) -> dict:
    """A score line (from a query that did not load the contact) with its words revived."""
    if isinstance(line, dict) and line.get("said") and isinstance(line.get("why"), str):
        return {**line, "why": revive(line["why"], line["said"])}
    return line


_LISTENERS = ((Task, _task_loaded), (Contact, _contact_loaded), (StageChange, _stage_change_loaded),
              (JobRun, _job_run_loaded))


def init_app(app: Flask) -> None:
    app.jinja_env.finalize = finalize
    for model, listener in _LISTENERS:
        for name in ("load", "refresh"):
            if not event.contains(model, name, listener):
                event.listen(model, name, listener)
