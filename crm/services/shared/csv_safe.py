"""CSV that a spreadsheet opens as data: the one helper every CSV export uses.

A cell that begins with =, +, -, @, a tab or a carriage return (also after invisible or blank
characters, and in full-width forms such as ＝) is read by Excel,
LibreOffice and Google Sheets as a formula ("CSV injection"), so a customer who
types `=HYPERLINK(...)` as their name could run something on the shop's laptop.
Such text cells get a leading apostrophe, which spreadsheets show as plain text;
numbers (int, Decimal, float) are written as they are, so -5.00 stays a number.
"""
from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _reads_as_formula(text: str) -> bool:
    """Whether a spreadsheet may read the text as a formula: it starts with a formula character,
    also after invisible or blank characters (zero-width space, BOM, no-break space) and in its
    full-width or other compatibility forms (＝1+1, ﹢1), which some spreadsheets fold to ASCII."""
    if text.startswith(FORMULA_STARTS):
        return True
    for ch in text:
        if ch in "\t\r":
            return True
        category = unicodedata.category(ch)
        if category in ("Cf", "Zs", "Zl", "Zp", "Cc"):
            continue  # invisible or blank: look at what follows
        return unicodedata.normalize("NFKC", ch).startswith(FORMULA_STARTS)
    return False


def safe_cell(value: Any) -> str:
    """Return a value as CSV cell text that no spreadsheet reads as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    text = str(value)
    if _reads_as_formula(text):
        return "'" + text
    return text


def csv_writer_rows(rows: Iterable[Iterable[Any]], header: Sequence[str] | None = None,
                    *, delimiter: str = ",") -> Iterator[str]:
    """Yield CSV text line by line (header first), every cell made safe; for streaming responses."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")

    def line(cells: Iterable[Any]) -> str:
        writer.writerow([safe_cell(cell) for cell in cells])
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    if header is not None:
        yield line(header)
    for row in rows:
        yield line(row)


def write_csv(out: TextIO, rows: Iterable[Iterable[Any]], header: Sequence[str] | None = None) -> int:
    """Write safe CSV to an open text file and return the number of data rows written."""
    count = -1 if header is not None else 0
    for text in csv_writer_rows(rows, header):
        out.write(text)
        count += 1
    return count


def csv_text(rows: Iterable[Iterable[Any]], header: Sequence[str] | None = None) -> str:
    """Return safe CSV as one string (small exports; stream csv_writer_rows for big ones)."""
    return "".join(csv_writer_rows(rows, header))
