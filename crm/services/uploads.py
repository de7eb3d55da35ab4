"""Checking an uploaded file before anyone reads it: size, name and what the bytes really are.

Imports accept text only: CSV, TSV, JSON and NDJSON. A zip, a spreadsheet, a PDF or any
other binary file is refused from its first bytes, so a zip bomb is never unpacked and a
2 GB file is never read: the size comes from the file system or by seeking, and only the
first SNIFF_BYTES are looked at.
"""
from __future__ import annotations

import codecs
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from flask import current_app, has_app_context

from crm.services.errors import ValidationError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".json": "json",
           ".ndjson": "ndjson", ".jsonl": "ndjson"}
SNIFF_BYTES = 64 * 1024
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
# The first bytes of file types people upload by mistake (or on purpose).
MAGIC = (
    (b"PK\x03\x04", "a zip archive (an .xlsx or .numbers file is one too)"),
    (b"PK\x05\x06", "an empty zip archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\xd0\xcf\x11\xe0", "an old Excel or Word file"),
    (b"%PDF", "a PDF"),
    (b"\x89PNG", "an image"),
    (b"\xff\xd8\xff", "an image"),
    (b"GIF8", "an image"),
    (b"SQLite format 3\x00", "a database file"),
    (b"\x7fELF", "a program"),
    (b"MZ", "a program"),
)
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)


@dataclass
class CheckedUpload:
    """A file that passed the checks: its format (csv, tsv, json, ndjson) and size in bytes."""

    filename: str
    format: str
    size: int


def default_limit() -> int:
    """Return the largest file accepted: the app's MAX_CONTENT_LENGTH, else 50 MB."""
    if has_app_context() and current_app.config.get("MAX_CONTENT_LENGTH"):
        return int(current_app.config["MAX_CONTENT_LENGTH"])
    return DEFAULT_MAX_BYTES


def human_size(size: int) -> str:
    """Return a byte count as people say it: 2,048 MB, 12 KB, 900 bytes."""
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:,.0f} MB"
    if size >= 1024:
        return f"{size / 1024:,.0f} KB"
    return f"{size} bytes"


def _too_large(name: str, size: int, limit: int) -> ValidationError:
    return _refuse(f"{name} is {human_size(size)}; the largest file accepted is {human_size(limit)}.")


def _refuse(reason: str) -> ValidationError:
    return ValidationError(reason, fields={"file": reason})


def _size_of(stream: IO[bytes]) -> int | None:
    """Return a stream's size without reading it, or None when it cannot seek."""
    try:
        position = stream.tell()
        size = stream.seek(0, os.SEEK_END)
        stream.seek(position)
        return size - position
    except (AttributeError, OSError, ValueError):
        return None


def sniff(head: bytes, fmt: str) -> str | None:
    """Return why the first bytes of a file are not text of the given format, or None when they are."""
    for magic, what in MAGIC:
        if head.startswith(magic):
            return f"This is {what}, not a text file. Export the data as CSV or JSON and upload that."
    if head.startswith(UTF16_BOMS):
        return "The file is saved as UTF-16; save it as UTF-8 (\"CSV UTF-8\" in Excel) and upload it again."
    if b"\x00" in head:
        return "This is a binary file, not text. Export the data as CSV or JSON and upload that."
    text = head[3:] if head.startswith(codecs.BOM_UTF8) else head
    try:
        # The sample may end inside a multi-byte character; an incremental decoder allows that.
        decoded = codecs.getincrementaldecoder("utf-8")().decode(text, final=False)
    except UnicodeDecodeError:
        return "The file is not UTF-8 text; save it as UTF-8 (\"CSV UTF-8\" in Excel) and upload it again."
    if sum(1 for ch in decoded if ord(ch) < 32 and ch not in "\t\r\n\f") > max(8, len(decoded) // 100):
        return "This looks like a binary file, not text. Export the data as CSV or JSON and upload that."
    stripped = decoded.lstrip()
    if not stripped:
        return "The file is empty."
    if fmt in ("json", "ndjson") and stripped[0] not in "[{":
        return "The file does not start like JSON (with { or [)."
    return None


def check_upload(stream: IO[bytes], filename: str | None, *, max_bytes: int | None = None,
                 size: int | None = None) -> CheckedUpload:
    """Return the checked file's format and size, or raise ValidationError(fields={"file": why}).

    Reads at most SNIFF_BYTES and puts the stream back where it was, so the caller's
    reader starts at the beginning. `size` may be given when known (a file on disk).
    """
    name = os.path.basename(filename or "").strip()
    if not name:
        raise _refuse("Choose a file to upload.")
    extension = Path(name).suffix.lower()
    fmt = FORMATS.get(extension)
    if fmt is None:
        raise _refuse(f"{name} is not a CSV, TSV, JSON or NDJSON file. "
                      f"Accepted names end in {', '.join(sorted(FORMATS))}.")
    limit = max_bytes or default_limit()
    size = size if size is not None else _size_of(stream)
    if size is not None and size > limit:
        raise _too_large(name, size, limit)
    try:
        start = stream.tell()
    except (AttributeError, OSError, ValueError):
        start = None
    head = stream.read(SNIFF_BYTES)
    if isinstance(head, str):
        head = head.encode("utf-8")
    if start is not None:
        stream.seek(start)
    if reason := sniff(head or b"", fmt):
        raise _refuse(f"{name}: {reason}")
    # An unseekable stream's size is unknown here; the request's MAX_CONTENT_LENGTH bounds it.
    return CheckedUpload(filename=name, format=fmt, size=size if size is not None else len(head))


def check_path(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> CheckedUpload:
    """Return the checked format and size of a file on disk (the command-line import)."""
    path = Path(path)
    if not path.is_file():
        raise _refuse(f"{path} is not a file.")
    size = path.stat().st_size
    limit = max_bytes or default_limit()
    if size > limit:
        # Refused from the file system's size alone; not one byte is read.
        raise _too_large(path.name, size, limit)
    with path.open("rb") as stream:
        return check_upload(stream, path.name, max_bytes=limit, size=size)


def check_file_storage(file: Any, *, max_bytes: int | None = None) -> CheckedUpload:
    """Return the checked format of a Werkzeug FileStorage from request.files."""
    if file is None or not getattr(file, "filename", None):
        raise _refuse("Choose a file to upload.")
    return check_upload(file.stream, file.filename, max_bytes=max_bytes)


def forget_old_uploads(folder: str | Path, max_age_seconds: float, *, keep: set[str] = frozenset(),
                       now: float | None = None) -> int:
    """Delete the files in an uploads folder older than `max_age_seconds`, except those in `keep`
    (paths of uploads an import still needs); return how many went."""
    import time

    folder = Path(folder)
    if not folder.is_dir():
        return 0
    cutoff = (now if now is not None else time.time()) - max_age_seconds
    removed = 0
    for path in folder.iterdir():
        if path.is_file() and str(path) not in keep and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
