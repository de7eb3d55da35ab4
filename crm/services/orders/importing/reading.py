"""Streaming readers for order and customer imports.

Every ``read_*`` function returns a generator that reads its file a piece at a time and yields
``OrderRecord`` / ``CustomerRecord`` / ``Rejected`` in file order, so a file of any length is read
in flat memory. Garbage in a file never raises out of a reader: each record comes back either
as a record or as a ``Rejected`` whose reason names the field(s) and value(s) at fault. Wrong
*arguments* raise: an unknown format or a ``mapping`` naming an unknown field raise
``ValueError`` when the reader is called; a path that cannot be opened raises ``OSError`` when
reading starts.

Inputs
    ``fileobj`` may be a binary file object (an upload, ``open(p, "rb")``, ``io.BytesIO``), a
    text file object, or a path (``str`` or ``os.PathLike``). Binary input is decoded as
    ``encoding`` (default ``"utf-8-sig"``, which drops a BOM); bytes that do not decode become
    U+FFFD and the record that contains them is rejected ("not valid UTF-8 ...") rather than
    imported as mojibake. The caller's file object is not closed; a path is opened and closed
    here. Reading moves the file position (text decoding reads ahead), so seek back before
    reading the same upload again (e.g. after ``preview``).

CSV (and TSV)
    Read as text with ``newline=""`` and the ``csv`` module, so CRLF and quoted newlines work.
    Headers are matched after normalising them (lower-case, stripped, runs of spaces, ``_``,
    ``.`` and ``-`` collapsed to one space): ``"Customer ID"``, ``"customer_id"`` and
    ``"billing.first_name"``/``"billing_first_name"`` all work. Values are stripped. The line of
    a record is the physical line it starts on (the header is line 1). Blank lines and rows
    whose fields are all empty are skipped. A row with more non-empty fields than the header has
    columns is rejected (usually an unquoted comma); a shorter row is padded with empty fields.
    A field over 128 KiB is rejected. When the header lacks a required column the reader yields
    one ``Rejected`` for the header line and stops.

JSON
    ``"ndjson"`` is read strictly one value per line (blank lines skipped; ``line`` is the line
    number); a bad line is rejected and the next line is read as usual. ``"json"`` is read by an
    incremental decoder that accepts a top-level array (items are numbered 1, 2, ... and that
    index is the record's ``line``) or one or more top-level values one after the other - a
    single object, NDJSON, or concatenated pretty-printed objects (``line`` is the physical line
    the value starts on). After a syntax error outside an array it skips to the next line that
    starts with ``{`` or ``[`` and goes on; the ``Rejected`` says which lines were skipped. A
    syntax error inside a top-level array cannot be recovered from, so it ends the file with one
    ``Rejected`` (everything before it has been yielded). One value or line may be at most 8 MiB
    of text.

Why not ``sqlite_utils.utils.rows_from_file``
    It was the suggested reader, but in sqlite-utils 4.2 it ``json.load``s a whole JSON file
    (not streaming); its NDJSON reader skips blank lines (line numbers drift) and a single bad
    line raises ``JSONDecodeError`` and ends the generator; its CSV reader raises ``RowError``
    on a row with an extra field and ``UnicodeDecodeError`` on a bad byte (ending the
    generator), hides the physical line numbers, skips blank lines, and closes the caller's
    file when done. The readers here do what the contract above needs with ``csv``/``json``.

Decisions (see also records.py for money, timestamps and email syntax)
    * Shopify financial status: paid and authorized -> paid (-> fulfilled when Fulfillment
      Status is "fulfilled"; an authorized payment is secured, the card is charged at
      fulfilment, as made-to-order shops work), pending/partially_paid -> pending, refunded -> refunded,
      partially_refunded -> partially_refunded, voided/expired -> cancelled. A non-empty
      "Cancelled at" makes the order cancelled unless money went back: refunded and
      partially_refunded keep their status, so #1002 (refunded and cancelled) is ``refunded``
      with ``refunded`` = 26.55. An empty or unknown financial status is rejected.
    * WooCommerce status (a ``wc-`` prefix is ignored): pending/on-hold/checkout-draft -> pending,
      processing -> paid, completed -> fulfilled, cancelled/failed -> cancelled,
      refunded -> refunded; anything else (plugin statuses) is rejected. A paid or fulfilled
      order with refunds becomes partially_refunded (refunded when the refunds reach the
      total).
    * Generic status: empty -> paid; our own vocabulary plus completed/complete/shipped/
      delivered -> fulfilled, processing -> paid, canceled/voided/failed -> cancelled,
      on-hold -> pending, authorized -> paid (as Shopify's).
    * An order whose status is ``refunded`` but which gives no refunded amount gets
      ``refunded = total``.
    * A customer (a customers-file row or the buyer of an order) needs an email, a name or a
      phone; one with none of them is rejected ("no email, name or phone"). An email that is
      present but fails the syntax check rejects the record, naming the field and the value.
    * Missing optional amounts (subtotal, discount, shipping, tax, refunded) are 0.00; total is
      required. WooCommerce has no order subtotal: it is the sum of the line subtotals, or
      ``total - total_tax - shipping_total + discount_total`` when there are no lines.
      WooCommerce line unit prices are ``subtotal / quantity`` rounded to cents (the
      pre-discount price, like Shopify's Lineitem price); ``price`` is the fallback.
    * ``address`` is the street line(s) and the postcode joined with ", ". ``country`` is the
      ISO 3166-1 alpha-2 code when the source gives one (Shopify's older customers export has
      "Country Code"; a two-letter "Country" is taken too), otherwise None.
    * Shopify writes ``'`` before numbers (ids, phones, postcodes) so spreadsheets keep them as
      text; it is stripped from those fields only (``'t Hooft`` is a real Dutch surname).
    * Shopify orders: rows are grouped by consecutive ``Name``; the same Name appearing again
      later makes a second record (keeping a set of every Name seen would not be flat memory;
      the writer's (source, external_id) upsert decides). An order of more than 10,000 rows is
      rejected. A row with an empty Name is rejected on its own. A row the csv module cannot
      read (a field over 128 KiB) is rejected on its own, after the order around it.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Union

from crm.services.orders.importing.records import (
    ZERO,
    CustomerRecord,
    OrderRecord,
    Rejected,
    email_problem,
    normalise_email,
    parse_money,
    parse_timestamp,
    show,
)
from crm.services.shared.bounds import MAX_QUANTITY, is_country_code

Item = Union[OrderRecord, CustomerRecord, Rejected]
FORMATS = ("csv", "tsv", "json", "ndjson")
MAX_GROUP_ROWS = 10_000
MAX_REASON = 500
CENT = Decimal("0.01")
NOT_UTF8 = "not valid UTF-8 text (save the file as UTF-8 or choose its encoding)"


# == opening ===================================================================================

@contextmanager
def _open_text(src: Any, encoding: str, newline: str | None) -> Iterator[Any]:
    """A text stream over ``src`` (path, binary or text file); never closes a caller's file."""
    if isinstance(src, (str, os.PathLike)):
        with open(src, encoding=encoding, errors="replace", newline=newline) as text:
            yield text
        return
    if not hasattr(src, "read"):
        raise TypeError(f"expected a path or a file object, got {type(src).__name__}")
    if isinstance(src, io.TextIOBase) or isinstance(src.read(0), str):
        yield src
        return
    if hasattr(src, "readable") and src.readable():
        wrapper = io.TextIOWrapper(src, encoding=encoding, errors="replace", newline=newline)
        try:
            yield wrapper
        finally:
            try:
                wrapper.detach()  # leave the caller's file open
            except ValueError:  # already detached or closed by the caller
                pass
    else:
        yield codecs.getreader(encoding)(src, errors="replace")


_KEY_RE = re.compile(r"[\s_.\-]+")


def norm_key(name: object) -> str:
    """Normalise a column name or JSON key: lower-case, stripped, separators to one space."""
    return _KEY_RE.sub(" ", str(name).replace("\ufeff", "")).strip().lower()


def _check_format(kind: str, fmt: str | None, formats: tuple[str, ...], default: str | None) -> str:
    """The format to read ``kind`` in: the one asked for (or the reader's default), if the reader reads it."""
    fmt = (fmt or default or "").lower().lstrip(".")
    fmt = {"jsonl": "ndjson"}.get(fmt, fmt)
    if fmt not in formats:
        raise ValueError(f"{kind}: format {fmt or None!r} is not supported; use one of {', '.join(formats)}")
    return fmt


# == CSV =======================================================================================

@dataclass(slots=True)
class _Row:
    line: int
    cells: list[str]  # as written (not stripped), padded to the header's width
    raw: dict  # header -> value as written
    problem: str | None = None


# A physical line longer than this is refused without being held in memory (a one-line 45 MB
# file cost 2 GB as one csv row); a record may span at most MAX_RECORD_LINES lines (a quote
# that is never closed would otherwise swallow the rest of the file into one field).
MAX_LINE_CHARS = 1 << 20
MAX_RECORD_LINES = 500
_OVERLONG = "\x00crm:overlong-line\x00"


class _RunawayQuote(Exception):
    """Raised through the csv module when one record spans more than MAX_RECORD_LINES lines."""


class _Lines:
    """The physical lines of a text stream for the csv module: bounded in length, numbered, and
    kept for the record being read so that a runaway record can be given back line by line."""

    def __init__(self, text: Any):
        self._text = text
        self._readline = getattr(text, "readline", None)
        self._iter = None if self._readline else iter(text)
        self.pending: list[tuple[int, str]] = []  # lines given back, in reverse order
        self.number = 0  # the last fresh line's number
        self.record: list[tuple[int, str]] = []

    def __iter__(self):
        return self

    def _fresh(self) -> str:
        if self._iter is not None:
            line = next(self._iter, "")
            return line if len(line) <= MAX_LINE_CHARS else _OVERLONG + "\n"
        line = self._readline(MAX_LINE_CHARS)
        if len(line) >= MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
            while True:  # skip the rest of the line, a piece at a time
                more = self._readline(MAX_LINE_CHARS)
                if not more or more.endswith(("\n", "\r")):
                    break
            return _OVERLONG + "\n"
        return line

    def __next__(self) -> str:
        if self.pending:
            number, line = self.pending.pop()
        else:
            line = self._fresh()
            if not line:
                raise StopIteration
            self.number += 1
            number = self.number
        self.record.append((number, line))
        if len(self.record) > MAX_RECORD_LINES:
            raise _RunawayQuote
        return line


class _CsvTable:
    """A CSV file as header + rows, with physical line numbers and no exceptions."""

    def __init__(self, text: Iterable[str], delimiter: str = ","):
        self._lines = _Lines(text)
        self._delimiter = delimiter
        self._reader = csv.reader(self._lines, delimiter=delimiter, strict=False)
        self.header: list[str] = []
        self.keys: list[str] = []
        self.header_line = 1
        self._index: dict[str, int] = {}

    def _next(self) -> tuple[int, list[str] | None, str | None] | None:
        """(start line, fields, error) for the next physical record; None at the end."""
        lines = self._lines
        lines.record = []
        try:
            fields = next(self._reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            start = lines.record[0][0] if lines.record else lines.number
            return start, None, f"line {start} could not be read as CSV: {exc}"
        except _RunawayQuote:
            # Give back every line after the first and read on from there with a fresh reader.
            start = lines.record[0][0]
            lines.pending.extend(reversed(lines.record[1:]))
            lines.record = []
            self._reader = csv.reader(lines, delimiter=self._delimiter, strict=False)
            return start, None, (f"line {start} has a quote that is not closed within {MAX_RECORD_LINES} lines; "
                                 "the line is skipped and reading goes on with the next one")
        start = lines.record[0][0] if lines.record else lines.number
        if any(_OVERLONG in field for field in fields):
            return start, None, (f"line {start} is longer than {MAX_LINE_CHARS:,} characters, more than any "
                                 "real row; it is skipped")
        return start, fields, None

    def read_header(self, required: Iterable[tuple[str, ...]], what: str,
                    rename: dict[str, str] | None = None) -> Rejected | None:
        """Read the header; a Rejected when a required column is missing (or the file is broken).

        ``required`` is a list of alternatives, each a tuple of display names (``"Created at"``)
        of which one must be present. Returns None for a good header *and* for an empty file
        (``self.header`` stays empty then).
        """
        while True:
            item = self._next()
            if item is None:
                return None
            line, fields, error = item
            if error:
                return Rejected(line, f"header: {error}", {})
            if any(f.strip() for f in fields):
                break
        self.header_line = line
        self.header = [f.strip().lstrip("\ufeff") for f in fields]
        self.keys = [norm_key(h) for h in self.header]
        if rename:
            self.keys = [rename.get(k, k) for k in self.keys]
        for i, key in enumerate(self.keys):
            self._index.setdefault(key, i)
        missing = [alts[0] for alts in required if not any(norm_key(a) in self._index for a in alts)]
        if missing:
            shown = ", ".join(show(h, 30) for h in self.header[:8])
            return Rejected(
                line,
                _cut(f"header: missing column(s) {', '.join(missing)} - is this {what}? "
                     f"(found {shown}{', ...' if len(self.header) > 8 else ''})"),
                {"header": self.header},
            )
        return None

    def col(self, *names: str) -> int | None:
        for name in names:
            i = self._index.get(norm_key(name))
            if i is not None:
                return i
        return None

    def __iter__(self) -> Iterator[_Row | Rejected]:
        if not self.header:
            return
        width = len(self.header)
        header = self.header
        for item in iter(self._next, None):
            line, fields, error = item
            if error:
                yield Rejected(line, _cut(error), {})
                continue
            joined = "".join(fields)
            if not joined.strip():
                continue  # blank line, or only separators
            problem = None
            raw = dict(zip(header, fields))
            if len(fields) > width:
                raw["_extra"] = fields[width:]
                if any(c.strip() for c in fields[width:]):
                    problem = (f"line {line} has {len(fields)} fields but the header has {width} "
                               f"columns (a value with an unquoted {self._reader.dialect.delimiter!r}?)")
                fields = fields[:width]
            elif len(fields) < width:
                fields += [""] * (width - len(fields))
            if problem is None and "\ufffd" in joined:
                problem = f"line {line} is {NOT_UTF8}"
            yield _Row(line, fields, raw, problem)

    def flat(self, row: _Row) -> dict[str, str]:
        """The row as {normalised key: stripped value}; the first non-empty value wins."""
        out: dict[str, str] = {}
        for key, value in zip(self.keys, row.cells):
            value = value.strip()
            if key not in out or (value and not out[key]):
                out[key] = value
        return out


def _csv_records(fileobj: Any, encoding: str, delimiter: str, required: list[tuple[str, ...]],
                 what: str, build: Callable[[dict, int, dict], Item],
                 rename: dict[str, str] | None = None) -> Iterator[Item]:
    """One record per CSV row: ``build(flat, line, raw)`` for each good row."""
    with _open_text(fileobj, encoding, "") as text:
        table = _CsvTable(text, delimiter)
        bad = table.read_header(required, what, rename)
        if bad:
            yield bad
            return
        for row in table:
            if isinstance(row, Rejected):
                yield row
            elif row.problem:
                yield Rejected(row.line, _cut(row.problem), row.raw)
            else:
                yield build(table.flat(row), row.line, row.raw)


# == JSON ======================================================================================

_WS = re.compile(r"[ \t\r\n\ufeff]*")


class _JsonValues:
    """Incrementally decode a JSON array, a single value, NDJSON or concatenated values.

    Iterating yields ``(position, value, error)``: position is the 1-based item index inside a
    top-level array, else the line the value starts on; error is None or a message.
    """

    CHUNK = 1 << 16
    MAX_VALUE = 8 << 20

    def __init__(self, text: Any):
        self._f = text
        self._buf = ""
        self._pos = 0
        self._line = 1  # the line self._pos is on
        self._eof = False
        self._decoder = json.JSONDecoder()

    def _fill(self, size: int | None = None) -> bool:
        if self._eof:
            return False
        chunk = self._f.read(max(size or 0, self.CHUNK))
        if not chunk:
            self._eof = True
            return False
        if self._pos:
            self._buf = self._buf[self._pos:]
            self._pos = 0
        self._buf += chunk
        return True

    def _advance(self, end: int) -> None:
        self._line += self._buf.count("\n", self._pos, end)
        self._pos = end

    def _peek(self) -> str:
        """Skip whitespace; the next character, or "" at the end of the input."""
        while True:
            self._advance(_WS.match(self._buf, self._pos).end())
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._fill():
                return ""

    def _snippet(self) -> str:
        """Up to 200 characters from here to the end of the line, for Rejected.raw."""
        while (len(self._buf) - self._pos < 200 and self._buf.find("\n", self._pos, self._pos + 200) == -1
               and self._fill()):
            pass
        end = self._buf.find("\n", self._pos, self._pos + 200)
        return self._buf[self._pos: end if end != -1 else self._pos + 200]

    def _decode(self) -> tuple[Any, str | None]:
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                pending = len(self._buf) - self._pos
                truncated = exc.pos >= len(self._buf) - 8 or exc.msg.startswith("Unterminated string")
                if truncated and not self._eof:
                    if pending > self.MAX_VALUE:
                        return None, f"a JSON value longer than {self.MAX_VALUE >> 20} MiB"
                    self._fill(pending)
                    continue
                line = self._line + self._buf.count("\n", self._pos, exc.pos)
                return None, f"invalid JSON at line {line}: {exc.msg}"
            except (ValueError, RecursionError) as exc:  # e.g. an integer with 5,000 digits
                return None, f"invalid JSON at line {self._line}: {str(exc)[:100]}"
            if (isinstance(value, (int, float)) and not isinstance(value, bool)
                    and len(self._buf) - end < 32 and not self._eof and self._fill()):
                continue  # "12" + "34", "0" + ".5", "1" + "e3": a number may go on in the next chunk
            if self._buf.find("\ufffd", self._pos, end) != -1:
                self._advance(end)
                return None, NOT_UTF8
            self._advance(end)
            return value, None

    def _resync(self) -> int:
        """Skip to the next line starting with '{' or '['; return the last line skipped."""
        while True:
            nl = self._buf.find("\n", self._pos)
            if nl == -1:
                self._advance(len(self._buf))
                if not self._fill():
                    return self._line
                continue
            self._advance(nl + 1)
            while self._pos >= len(self._buf):
                if not self._fill():
                    return self._line - 1
            if self._buf[self._pos] in "{[":
                return self._line - 1

    def __iter__(self) -> Iterator[tuple[int, Any, str | None]]:
        first = self._peek()
        if first == "[":
            yield from self._array()
            return
        while self._peek():
            line = self._line
            snippet = self._snippet()
            value, error = self._decode()
            if error is None:
                yield line, value, None
                continue
            if error == NOT_UTF8:
                yield line, {"text": snippet}, f"line {line} is {NOT_UTF8}"
                continue
            last = self._resync()
            skipped = f" (skipped lines {line}-{last})" if last > line else ""
            yield line, {"text": snippet}, f"{error}{skipped}"

    def _array(self) -> Iterator[tuple[int, Any, str | None]]:
        self._advance(self._pos + 1)
        index = 0
        if self._peek() == "]":
            self._advance(self._pos + 1)
        else:
            while True:
                index += 1
                line = self._line
                if not self._peek():
                    yield index, {}, f"item {index}: the file ends inside the JSON array"
                    return
                snippet = self._snippet()
                value, error = self._decode()
                if error == NOT_UTF8:
                    yield index, {"text": snippet}, f"item {index} (line {line}) is {NOT_UTF8}"
                elif error:
                    yield index, {"text": snippet}, f"item {index}: {error}; the rest of the file was not read"
                    return
                else:
                    yield index, value, None
                c = self._peek()
                if c == ",":
                    self._advance(self._pos + 1)
                    continue
                if c == "]":
                    self._advance(self._pos + 1)
                    break
                message = ("the file ends inside the JSON array" if not c else
                           f"expected ',' or ']' after item {index} at line {self._line}")
                yield index + 1, {"text": self._snippet()}, f"{message}; the rest of the file was not read"
                return
        if self._peek():
            yield index + 1, {"text": self._snippet()}, f"unexpected data after the JSON array at line {self._line}"


def _ndjson_values(text: Any) -> Iterator[tuple[int, Any, str | None]]:
    """One JSON value per line: (line, value, error); blank lines are skipped."""
    line_no = 0
    limit = _JsonValues.MAX_VALUE
    while True:
        line = text.readline(limit + 1)
        if not line:
            return
        line_no += 1
        if len(line) > limit and not line.endswith(("\n", "\r")):
            while line and not line.endswith(("\n", "\r")):
                line = text.readline(_JsonValues.CHUNK)
            yield line_no, {}, f"line {line_no} is longer than {limit >> 20} MiB"
            continue
        stripped = line.strip(" \t\r\n\ufeff")
        if not stripped:
            continue
        if "\ufffd" in stripped:
            yield line_no, {"text": stripped[:200]}, f"line {line_no} is {NOT_UTF8}"
            continue
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError as exc:
            yield line_no, {"text": stripped[:200]}, f"invalid JSON at line {line_no}: {exc.msg}"
        except (ValueError, RecursionError) as exc:
            yield line_no, {"text": stripped[:200]}, f"invalid JSON at line {line_no}: {str(exc)[:100]}"
        else:
            yield line_no, value, None


def _json_records(fileobj: Any, encoding: str, build: Callable[[dict, int], Item],
                  ndjson: bool = False) -> Iterator[Item]:
    """``ndjson``: strictly one value per line; otherwise an array or a run of values."""
    with _open_text(fileobj, encoding, None) as text:
        values = _ndjson_values(text) if ndjson else _JsonValues(text)
        for line, value, error in values:
            if error:
                yield Rejected(line, _cut(error), value if isinstance(value, dict) else {})
            elif not isinstance(value, dict):
                yield Rejected(line, f"expected a JSON object, got {_json_type(value)}", {"value": value})
            else:
                yield build(value, line)


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


def _flatten(obj: dict, prefix: str = "", out: dict | None = None, depth: int = 0) -> dict:
    """{"billing": {"first_name": x}} -> {"billing first name": x}; lists are kept as they are."""
    out = {} if out is None else out
    for key, value in obj.items():
        full = f"{prefix} {norm_key(key)}" if prefix else norm_key(key)
        if isinstance(value, dict) and depth < 4:
            _flatten(value, full, out, depth + 1)
        elif full not in out or out[full] in (None, ""):
            out[full] = value
    return out


# == field helpers =============================================================================

def _cut(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."


def _text(value: Any) -> str:
    """A scalar as stripped text; "" for None; JSON text for objects and arrays."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    try:
        return json.dumps(value, ensure_ascii=False, default=str)[:300]
    except (TypeError, ValueError, RecursionError):
        return str(type(value).__name__)


def _number_text(value: Any) -> str:
    """Like _text, without the ``'`` Shopify puts before numbers."""
    text = _text(value)
    return text[1:].strip() if text.startswith("'") else text


def _opt(value: Any) -> str | None:
    return _text(value) or None


def _first(*values: Any) -> Any:
    for value in values:
        if _text(value):
            return value
    return None


def _country(*values: Any) -> str | None:
    for value in values:
        text = _text(value).upper()
        if is_country_code(text):
            return text
    return None


def _address(*parts: Any) -> str | None:
    """Street lines and postcode joined with ", " (pass the postcode through _number_text)."""
    joined = ", ".join(p for p in (_text(x) for x in parts) if p)
    return joined or None


def _split_name(full: str) -> tuple[str, str]:
    parts = full.split(None, 1)
    if not parts:
        return "", ""
    return parts[0], parts[1] if len(parts) > 1 else ""


def _tags(value: Any) -> list[str]:
    items = value if isinstance(value, list) else _text(value).split(",")
    seen: list[str] = []
    for item in items:
        tag = _text(item)
        if tag and tag not in seen:
            seen.append(tag)
    return seen


def _as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


class _Fields:
    """Parses the fields of one record and collects what is wrong with them."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, problem: str) -> None:
        self.problems.append(problem)

    @property
    def reason(self) -> str:
        return _cut("; ".join(self.problems))

    def required(self, label: str, value: Any) -> str:
        text = _text(value)
        if not text:
            self.add(f"{label}: missing")
        return text

    def money(self, label: str, value: Any, required: bool = False) -> Decimal:
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            if required:
                self.add(f"{label}: missing")
            return ZERO
        try:
            return parse_money(value)
        except ValueError as exc:
            self.add(f"{label}: {exc}")
            return ZERO

    def timestamp(self, label: str, value: Any, required: bool = True):
        if not _text(value) and not hasattr(value, "year"):
            if required:
                self.add(f"{label}: missing")
            return None
        try:
            return parse_timestamp(value.strip() if isinstance(value, str) else value)
        except ValueError as exc:
            self.add(f"{label}: {exc}")
            return None

    def email(self, label: str, value: Any) -> tuple[str | None, str | None]:
        display = _text(value) or None
        if display and (problem := email_problem(display)):
            self.add(f"{label}: {show(display)} is not a valid email address ({problem})")
        return normalise_email(display), display

    def currency(self, label: str, value: Any, default: str) -> str:
        text = _text(value).upper() or default.upper()
        if not text:
            self.add(f"{label}: missing")
        elif not (len(text) == 3 and text.isalpha() and text.isascii()):
            self.add(f"{label}: {show(_text(value))} is not a currency code")
        return text

    def quantity(self, label: str, value: Any) -> int:
        number = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            text = _text(value)
            if not text:
                return 1
            if re.fullmatch(r"\+?\d{1,9}(\.0+)?", text, re.ASCII):
                number = int(text.split(".")[0])
        if number is None:
            self.add(f"{label}: {show(value)} is not a quantity")
            return 0
        if not 0 <= number <= MAX_QUANTITY:
            self.add(f"{label}: {show(value)} is not a quantity from 0 to {MAX_QUANTITY}")
            return 0
        return number

    def customer_identity(self, customer: CustomerRecord, what: str) -> None:
        if not (customer.email_display or customer.first_name or customer.last_name or customer.phone):
            self.add(f"no email, name or phone{what}")


def _refunded(status: str, refunded: Decimal, total: Decimal) -> Decimal:
    return total if status == "refunded" and not refunded else refunded


def _unwrap(obj: Any, key: str) -> Any:
    """{"order": {...}} (a REST GET response) -> {...}; anything else unchanged."""
    if isinstance(obj, dict) and len(obj) == 1 and isinstance(obj.get(key), dict):
        return obj[key]
    return obj


_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".json": "json",
               ".ndjson": "ndjson", ".jsonl": "ndjson"}


def detect_format(filename: str | os.PathLike | None) -> str | None:
    """"csv", "tsv", "json" or "ndjson" from a file name's extension; None when unknown."""
    if not filename:
        return None
    return _EXTENSIONS.get(Path(str(filename)).suffix.lower())
