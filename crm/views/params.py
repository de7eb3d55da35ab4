"""Reading ids, page numbers and dates from the URL: one parser for every route and query value.

Every `<int:...>` in a route is a row id bounded by `bounds.MAX_ID` (a larger number matches no
route, so it is a 404, never an OverflowError), and every id, page or date in a query string is
read here, so `?page=`, `?before=`, `?other=` or `?user=` can never reach the database out of range.
"""
from __future__ import annotations

from datetime import date

from flask import request
from werkzeug.routing import IntegerConverter

from crm.services.shared.bounds import MAX_ID, check_day, parse_id
from crm.services.shared.said import N_

MAX_PAGE = 100_000


class IdConverter(IntegerConverter):
    """`<int:name>` in every route: digits only, 0 .. MAX_ID; anything longer is no route (404)."""

    regex = r"[0-9]{1,19}"

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def id_arg(name: str, source=None) -> int | None:
    """Return the query (or form) value `name` as a row id, or None when absent or not an id."""
    return parse_id((source if source is not None else request.args).get(name))


def page_arg(name: str = "page", limit: int = MAX_PAGE) -> int:
    """Return a page number from 1 to `limit`: 1 for anything that is not one."""
    text = request.args.get(name, "")
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        return 1 if not (text.isascii() and text.isdigit()) else limit
    return max(1, min(int(text), limit))


def date_arg(name: str) -> date | None:
    """Return a query date (YYYY-MM-DD) inside the accepted window (1970 .. ten years ahead), else None."""
    value, _error = date_arg_checked(name)
    return value


def date_arg_checked(name: str) -> tuple[date | None, str | None]:
    """Return (the date, None), (None, None) when absent, or (None, why) when it is not a usable date."""
    text = request.args.get(name, "").strip()
    if not text:
        return None, None
    try:
        return check_day(date.fromisoformat(text)), None
    except ValueError as error:
        # The window's own words (a Said, with its dates), or ours for a text that is no date.
        reason = error.args[0] if "outside" in str(error) else N_("Give a date such as 2026-05-31.")
        return None, reason
