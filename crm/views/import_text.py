"""What the import pages say about a run, in the reader's language.

The import service writes its summary and its rejection reasons in English (the command line and
the rejections CSV keep them so); the pages say the same in the reader's language. A reason part
this module does not know stays as it was written.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from flask_babel import format_decimal, ngettext
from flask_babel import gettext as _

from crm.models import ImportRun
from crm.services.orders.importing import run as importing
from crm.services.orders.importing.records import said_problem
from crm.services.shared.errors import N_
from crm.services.shared.said import Said
from crm.views.said import in_reader_language


def kind_labels() -> dict[str, str]:
    """The import kinds as the reader reads them."""
    return {kind: _(label) for kind, label in importing.KIND_LABELS.items()}


def _n(number: int) -> str:
    return format_decimal(number)


def summary_lines(run: ImportRun) -> list[str]:
    """A run's counts as short sentences in the reader's language: the import pages show them, and
    `crm import` prints them in English (the one wording of a run's summary)."""
    c = {**dict.fromkeys(importing.COUNTS, 0), **(run.counts or {})}
    if run.kind == "shopify-orders":
        lines = [ngettext("%(count)s record read (an order spread over several lines counts once)",
                          "%(count)s records read (an order spread over several lines counts once)",
                          c["read"], count=_n(c["read"]))]
    else:
        lines = [ngettext("%(count)s record read", "%(count)s records read", c["read"], count=_n(c["read"]))]
    if importing.is_order_kind(run.kind):
        lines.append(_("orders: %(created)s created, %(updated)s updated, %(unchanged)s unchanged",
                       created=c["orders_created"], updated=c["orders_updated"], unchanged=c["orders_unchanged"]))
        lines.append(_("contacts: %(created)s created", created=c["contacts_created"]))
    else:
        lines.append(_("contacts: %(created)s created, %(updated)s updated, %(unchanged)s unchanged",
                       created=c["contacts_created"], updated=c["contacts_updated"],
                       unchanged=c["contacts_unchanged"]))
    if c["rejected"] > importing.MAX_STORED_REJECTIONS:
        lines.append(_("%(num)s rows rejected (only the first %(kept)s are kept to download)",
                       num=_n(c["rejected"]), kept=_n(importing.MAX_STORED_REJECTIONS)))
    else:
        lines.append(ngettext("%(count)s row rejected", "%(count)s rows rejected", c["rejected"], count=_n(c["rejected"])))
    if "tasks_created" in c and not run.dry_run:
        lines.append(to_do_line(c["tasks_created"], c.get("tasks_passed", 0), c.get("tasks_passed_by") or {}))
    warning = currency_warning(run)
    if warning:
        lines.append(warning)
    return lines


def to_do_line(created: int, passed: int, passed_by: dict[str, int]) -> str:
    """The to-dos an import made, and those not made because
    their moment had passed (named by their titles, which the rules wrote in English)."""
    made = ngettext("%(count)s to-do made", "%(count)s to-dos made", created, count=_n(created))
    if not passed:
        return made
    detail = ", ".join(f"{_n(n)} × {_(title).lower()}" for title, n in
                       sorted(passed_by.items(), key=lambda item: (-item[1], item[0])))
    return ngettext(
        "%(made)s; %(count)s more was not, because the occasion had passed before the import (orders "
        "from the past make to-dos only while there is still time to act): %(detail)s",
        "%(made)s; %(count)s more were not, because the occasions had passed before the import (orders "
        "from the past make to-dos only while there is still time to act): %(detail)s",
        passed, made=made, count=_n(passed), detail=detail)


def currency_warning(run: ImportRun) -> str | None:
    """What to say when a run's orders carry a currency other than the shop's (importing.currency_mismatch)."""
    mismatch = importing.currency_mismatch(run)
    if mismatch is None:
        return None
    others, shop, only = mismatch
    listed = ", ".join(_("%(count)s in %(code)s", count=_n(n), code=code) for code, n in others.items())
    warning = _("Currency: %(listed)s — not the shop's currency (%(shop)s). Each order keeps its own currency, "
                "but totals, revenue and predictions add amounts up as %(shop)s without converting.",
                listed=listed, shop=shop)
    if only:
        warning += " " + _("If the whole shop sells in %(code)s, change the currency to %(code)s on Settings → Shop "
                           "so totals are shown with the right sign.", code=next(iter(others)))
    return warning


# What a reader expected a file to be, as the readers name it in a refused header.
_FILE_KINDS = {
    "a Shopify orders export": N_("a Shopify orders export"),
    "a Shopify customers export": N_("a Shopify customers export"),
    "a WooCommerce orders CSV": N_("a WooCommerce orders CSV"),
    "a WooCommerce customers CSV": N_("a WooCommerce customers CSV"),
    "an orders file (rename columns with --map FILECOL=field)": N_("an orders file (map its columns to the fields)"),
}


def _missing_columns(m: re.Match) -> str:
    what = _(_FILE_KINDS[m["what"]]) if m["what"] in _FILE_KINDS else m["what"]
    return _("header: missing column(s) %(columns)s - is this %(what)s? (found %(found)s)",
             columns=m["columns"], what=what, found=m["found"])


# Field problems ("total: missing") are worded by said_problem; these are the reasons of a whole row or file.
_PROBLEMS: list[tuple[re.Pattern, Callable[[re.Match], str]]] = [
    (re.compile(r"header: missing column\(s\) (?P<columns>.+?) - is this (?P<what>.+?)\? \(found (?P<found>.*)\)",
                re.S), _missing_columns),
    (re.compile(r"no email, name or phone(?P<what>.*)"), lambda m: _("no email, name or phone") + m["what"]),
    (re.compile(r"order has more than (?P<rows>\d+) rows"), lambda m: _("order has more than %(rows)s rows", rows=m["rows"])),
    (re.compile(r"expected a JSON object, got (?P<type>.+)"),
     lambda m: _("expected a JSON object, got %(type)s", type=m["type"])),
]


def _part(text: str) -> str:
    for pattern, say in _PROBLEMS:
        if match := pattern.fullmatch(text):
            return say(match)
    label, sep, problem = text.partition(": ")
    if sep:
        said = said_problem(problem)
        if isinstance(said, Said):
            return f"{label}: {in_reader_language(said)}"
    return text


def reason_text(reason: str | None) -> str:
    """A rejected row's reason ("total: missing; email: x is not a valid email address (…)") in the
    reader's language: field names stay as in the file, what is wrong with them is translated."""
    if not reason:
        return reason or ""
    return "; ".join(_part(part) for part in _PARTS.split(reason))


# Parts of a reason are joined by "; " (one sentence, a negative amount's, has one inside it).
_PARTS = re.compile(r"; (?!record a refund)")


def outcome_words(reason: str | None) -> str | None:
    """A refused order's reason in the reader's language: a message key (or a Said) as such,
    "field: problem" parts as `reason_text` words them."""
    from crm.views.forms import translated

    if not reason or isinstance(reason, Said) or ": " not in reason:
        return translated(reason)
    return reason_text(reason)


# A run's state on its badge, lower case as the pages have always shown it.
RUN_STATES = {
    "queued": N_("queued"), "waiting": N_("waiting"), "running": N_("running"), "interrupted": N_("interrupted"),
    "finished": N_("finished"), "failed": N_("failed"),
}


def run_state_label(state: str) -> str:
    return _(RUN_STATES[state]) if state in RUN_STATES else state
