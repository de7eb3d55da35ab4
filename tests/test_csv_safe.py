"""CSV exports: no cell is read as a formula by a spreadsheet, and every export uses the one helper."""
import csv
import io
import re
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from crm.services.shared.csv_safe import csv_text, csv_writer_rows, safe_cell, write_csv
from tests.helpers import ROOT

CRM = ROOT / "crm"


@pytest.mark.parametrize("text", [
    "=1+1", '=HYPERLINK("http://evil.example","click")', "+49 30 1234", "-2+3", "@SUM(A1:A2)",
    "\t=1+1", "\r=1+1", "=cmd|' /C calc'!A0",
])
def test_text_that_a_spreadsheet_would_run_is_neutralised(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("value,expected", [
    ("Ada Lovelace", "Ada Lovelace"), ("a=b", "a=b"), ("", ""), (None, ""), (True, "true"), (False, "false"),
    (-5, "-5"), (Decimal("-12.50"), "-12.50"), (3.5, "3.5"), (0, "0"),
    (datetime(2026, 5, 1, 9, 30, tzinfo=timezone.utc), "2026-05-01T09:30:00+00:00"), (date(2026, 5, 1), "2026-05-01"),
])
def test_ordinary_values_and_numbers_are_written_as_they_are(value, expected):
    assert safe_cell(value) == expected


def test_rows_stream_line_by_line_and_read_back_safely():
    rows = [["=1+1", "Ada, the first", 'say "hi"'], ["multi\nline", Decimal("-1.00"), None]]
    lines = list(csv_writer_rows(rows, header=["a", "b", "c"]))
    assert len(lines) == 3 and all(line.endswith("\r\n") for line in lines)
    parsed = list(csv.reader(io.StringIO("".join(lines))))
    assert parsed == [["a", "b", "c"], ["'=1+1", "Ada, the first", 'say "hi"'], ["multi\nline", "-1.00", ""]]
    assert csv_text(rows, header=["a", "b", "c"]) == "".join(lines)


def test_write_csv_counts_the_data_rows():
    out = io.StringIO()
    assert write_csv(out, [["x"], ["=y"]], header=["h"]) == 2
    assert out.getvalue() == "h\r\nx\r\n'=y\r\n"


def test_every_csv_export_in_the_app_goes_through_csv_safe():
    """A csv.writer anywhere else would write customer text straight into a spreadsheet."""
    offenders = []
    for path in CRM.rglob("*.py"):
        if path.name == "csv_safe.py":
            continue
        if re.search(r"csv\.(writer|DictWriter)\s*\(|\bDictWriter\s*\(", path.read_text()):
            offenders.append(str(path.relative_to(CRM.parent)))
    assert offenders == [], "use crm.services.shared.csv_safe.csv_writer_rows / write_csv instead"
