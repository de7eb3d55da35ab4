"""Sentences the rules write, kept as a key plus values so each reader sees them in their language.

A ``Said`` is the English sentence (it *is* a ``str``, so everything that stored or compared the
English words goes on working) that also carries the message key (an English msgid with
``%(name)s`` placeholders) and its values. ``to_json()`` is what the engine stores beside the
English text; the web layer renders it again through the reader's catalogue
(``crm.views.said``). Values are kept typed: a ``Day`` is rendered as a date of the reader's
locale, ``Money`` with their number format, a nested ``Said`` in their words, a ``Count`` with the
right plural.

This module is pure (no Flask, no database): the rules import it. ``N_`` only marks a msgid for
``pybabel extract`` (keyword ``N_``; ``Np_`` marks a singular and plural pair).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
CURRENCY_SIGNS = {"EUR": "€", "USD": "$", "GBP": "£", "CAD": "CA$", "AUD": "A$", "CHF": "CHF "}


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated when it is shown."""
    return message


def Np_(n: int, singular: str, plural: str) -> tuple[str, str]:  # noqa: N802 (a marker, like N_)
    """Mark a singular/plural pair for extraction."""
    return singular, plural


@dataclass(frozen=True)
class Day:
    """A calendar date inside a sentence ('3 May 2026')."""

    value: date

    def __str__(self) -> str:
        return _day_text(self.value)


@lru_cache(maxsize=4096)
def _day_text(value: date) -> str:
    return f"{value.day} {MONTHS[value.month - 1]} {value.year}"


@dataclass(frozen=True)
class Money:
    """An amount with its currency ('€2,851.71', or '2,851.71 SEK')."""

    amount: Decimal
    currency: str

    def __str__(self) -> str:
        code = self.currency.upper()
        text = f"{self.amount:,.2f}"
        sign = CURRENCY_SIGNS.get(code)
        return f"{sign}{text}" if sign else f"{text} {code}"


@dataclass(frozen=True)
class Ordinal:
    """'1st', '2nd', '3rd', '4th' (Dutch '1e')."""

    value: int

    def __str__(self) -> str:
        n = self.value
        suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
        return f"{n}{suffix}"


@dataclass(frozen=True)
class Number:
    """A count inside a sentence with its thousands separator ('1,234'; Dutch '1.234')."""

    value: int

    def __str__(self) -> str:
        return f"{self.value:,}"


class Said(str):
    """An English sentence that remembers its message key and values (see the module doc)."""

    key: str | tuple[str, str]
    values: Mapping[str, Any]
    count: int | None

    def __new__(cls, key: str | tuple[str, str], values: Mapping[str, Any] | None = None,
                count: int | None = None) -> Said:
        values = dict(values) if values else {}
        if count is None:
            template = key
        else:
            template = key[0] if abs(count) == 1 else key[1]
            values.setdefault("num", count)
        # Every placeholder is %(name)s: formatting takes str() of each value itself.
        text = template % values if values else template
        said = super().__new__(cls, text)
        said.key, said.values, said.count = key, values, count
        return said

    @classmethod
    def _of(cls, key: str, values: dict[str, Any]) -> Said:
        """`Said(key, values)` taking `values` as it is: a dict of keyword arguments nobody else holds."""
        said = super().__new__(cls, key % values)
        said.key, said.values, said.count = key, values, None
        return said

    def __getnewargs__(self):  # pickling and copying keep the key and values
        return (self.key, self.values, self.count)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"k": list(self.key) if isinstance(self.key, tuple) else self.key}
        if self.count is not None:
            data["n"] = self.count
            values = {name: _value_json(value) for name, value in self.values.items() if name != "num"}
        else:
            values = {name: _value_json(value) for name, value in self.values.items()}
        if values:
            data["v"] = values
        return data


def said(key: str, **values: Any) -> Said:
    """A sentence from a msgid marked with N_ and its values."""
    return Said._of(key, values) if values else _fixed(key)


def said_plural(pair: tuple[str, str], count: int, **values: Any) -> Said:
    """A sentence that depends on a count ('1 paid order', '3 paid orders'); %(num)d is the count."""
    return Said(pair, values, count) if values else _counted(pair, count)


# Sentences without values, and counts alone ("3 paid orders"), are made once: the rules say them
# for nearly every contact of a refresh, and a Said is never changed once made.
@lru_cache(maxsize=1024)
def _fixed(key: str) -> Said:
    return Said(key)


@lru_cache(maxsize=4096)
def _counted(pair: tuple[str, str], count: int) -> Said:
    return Said(pair, None, count)


def sentences(*parts: str) -> Said:
    """Sentences one after another ('Saved x. Removed y.'), each a Said or words as they are."""
    names = [f"s{i}" for i in range(len(parts))]
    return Said(" ".join(f"%({name})s" for name in names), dict(zip(names, parts, strict=True)))


def to_json(text: str | None) -> dict[str, Any] | None:
    """What to store beside an English text: its key and values, or None for words a person typed."""
    return text.to_json() if isinstance(text, Said) else None


def _value_json(value: Any) -> Any:
    plain = _PLAIN_JSON.get(type(value))
    if plain is not None:
        return plain(value)
    if isinstance(value, Said):
        # A sentence inside another is often one made once and shared ("12 days ago"): its JSON
        # too (nothing changes a Said, nor the JSON stored of it).
        inner = value.__dict__.get("_json")
        if inner is None:
            inner = value.__dict__["_json"] = value.to_json()
        return {"said": inner}
    if isinstance(value, Day):
        return {"day": value.value.isoformat()}
    if isinstance(value, Money):
        return {"money": str(value.amount), "currency": value.currency}
    if isinstance(value, Ordinal):
        return {"ordinal": value.value}
    if isinstance(value, Number):
        return {"number": value.value}
    if isinstance(value, datetime):
        return {"day": value.date().isoformat()}
    if isinstance(value, date):
        return {"day": value.isoformat()}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (int, float, str)) or value is None:
        return value
    return str(value)


def _as_is(value: Any) -> Any:
    return value


# The JSON of a value by its exact type (the rules' values are nearly all of these): the same as
# `_value_json`'s isinstance checks give, without going through them.
_PLAIN_JSON = {
    int: _as_is, str: _as_is, float: _as_is, type(None): _as_is,
    Day: lambda value: {"day": value.value.isoformat()},
    Money: lambda value: {"money": str(value.amount), "currency": value.currency},
    Ordinal: lambda value: {"ordinal": value.value},
    Number: lambda value: {"number": value.value},
}


def from_json(data: Mapping[str, Any] | None) -> Said | None:
    """The Said that ``to_json`` stored (None for None, or for data not of this shape)."""
    if not isinstance(data, Mapping) or "k" not in data:
        return None
    try:
        key = tuple(data["k"]) if isinstance(data["k"], list) else data["k"]
        values = {name: _value_from_json(value) for name, value in (data.get("v") or {}).items()}
        return Said(key, values, data.get("n"))
    except (KeyError, TypeError, ValueError, IndexError):
        return None


def _value_from_json(value: Any) -> Any:
    if isinstance(value, Mapping):
        if "said" in value:
            inner = from_json(value["said"])
            if inner is None:
                raise ValueError("not a sentence")
            return inner
        if "day" in value:
            return Day(date.fromisoformat(value["day"]))
        if "money" in value:
            return Money(Decimal(value["money"]), value["currency"])
        if "ordinal" in value:
            return Ordinal(int(value["ordinal"]))
        if "number" in value:
            return Number(int(value["number"]))
        raise ValueError("unknown value")
    return value


def revive(text: str | None, data: Mapping[str, Any] | None) -> str | None:
    """The stored English ``text`` as a Said when ``data`` says the same words, else ``text`` as is
    (words a person typed, or data that went stale)."""
    if text is None or data is None:
        return text
    restored = from_json(data)
    return restored if restored is not None and str(restored) == text else text
