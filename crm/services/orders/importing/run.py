"""Running an import: a file in, its orders or customers stored once, every refused row kept.

`run_import` streams a reader from `readers.py` in batches through the one path every order
takes (`orders.record_orders`) or the customer path (`orders.record_customers`), stores each
rejected row with its line and reason, and keeps the counts on an `ImportRun`.

Transactions (the one place a service commits, on purpose): a real run commits after every
batch. A file of a million lines in one SQLite transaction would hold the write lock for
minutes (every person logging a call would wait, then fail) and grow the WAL to the size of the
whole import; committed batches let other writers in between. A crash leaves the batches done so
far, each consistent (its orders, their contacts' stored aggregates and its rejected rows are
committed together), and the run marked "running" or "failed"; running the same file again is
correct because recording is idempotent on (source, external id). A dry run does the same work
in one transaction that is rolled back, then stores only the run and its rejected rows.

Memory stays flat: no ORM object per row (the writers use Core statements), rejected rows are
written (or, in a dry run, spooled to a temporary file) per batch, and the ids of the contacts
the file touched are kept as plain ints only up to MAX_TOUCHED; past that the engine is told to
re-derive everyone once instead.
"""
from __future__ import annotations

import itertools
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from flask import has_app_context
from sqlalchemy import insert, select, update

from crm.database import refresh_statistics, without_memory_map
from crm.extensions import db
from crm.models import ImportRejection, ImportRun, Order, utcnow
from crm.services.orders import aggregates
from crm.services.orders import recording as order_service
from crm.services.orders.importing.reading import detect_format
from crm.services.orders.importing.records import CustomerRecord, OrderRecord, Rejected
from crm.services.orders.importing.registry import READERS
from crm.services.shared import signals
from crm.services.shared.errors import N_
from crm.services.shared.said import said
from crm.services.trust import audit

BATCH = 1000
ANALYZE_AFTER = 10_000  # rows created; a big import changes the table sizes the query planner assumes
MAX_TOUCHED = 200_000
MAX_REASON = 500
# Rejected rows kept per run: the count is exact, but past this many only the first ones are
# stored (a 2 MB array of a million numbers must not become a million rows of database).
MAX_STORED_REJECTIONS = 1000
# On PostgreSQL a big import analyses the tables again every this many rows created, so the
# planner's picture keeps up while the run goes on (it slowed from 1,500 to 350 rows/s otherwise).
ANALYZE_EVERY = 50_000
COUNTS = ("read", "orders_created", "orders_updated", "orders_unchanged", "contacts_created",
          "contacts_updated", "contacts_unchanged", "rejected")
KIND_LABELS = {
    "shopify-orders": N_("Shopify orders export (CSV)"),
    "shopify-customers": N_("Shopify customers export (CSV)"),
    "woocommerce-orders": N_("WooCommerce orders (JSON, NDJSON or CSV)"),
    "woocommerce-customers": N_("WooCommerce customers (JSON, NDJSON or CSV)"),
    "orders": N_("Orders from any CSV, TSV, JSON or NDJSON file"),
}
GENERIC_KIND = "orders"


class ImportRefused(ValueError):
    """The import cannot start (unknown kind, format or column mapping); nothing was stored."""


def is_order_kind(kind: str) -> bool:
    """Return whether an import kind reads orders (an unknown kind, e.g. from an old run, does not)."""
    spec = READERS.get(kind)
    return spec is not None and spec.record is OrderRecord


def not_text_reason(head: bytes) -> str | None:
    """Return why the first bytes of an upload are not a text file, or None when they may be."""
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0"):
        return N_("This is a spreadsheet (Excel) file, not text: save it as CSV (UTF-8) and upload that.")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return N_("This file is UTF-16 text: save it as UTF-8 and upload it again.")
    if b"\x00" in head:
        return N_("This is not a text file: upload a CSV, TSV, JSON or NDJSON file.")
    return None


def resolve_format(kind: str, filename: str | None, fmt: str | None) -> str:
    """Return the file format to read (chosen, else from the file name, else the kind's usual one)."""
    if kind not in READERS:
        raise ImportRefused(said(N_("Unknown import kind %(kind)s; use one of %(choices)s."), kind=repr(kind),
                                 choices=", ".join(READERS)))
    spec = READERS[kind]
    fmt = (fmt or detect_format(filename) or spec.default_format or "").lower()
    if not fmt:
        raise ImportRefused(said(N_("Cannot tell the file's format from its name; choose csv, tsv, json or ndjson.")))
    if fmt not in spec.formats:
        raise ImportRefused(said(N_("A %(kind)s import reads %(formats)s, not %(format)s."), kind=kind,
                                 formats=", ".join(spec.formats), format=fmt))
    return fmt


def parse_mapping(pairs: Iterable[str]) -> dict[str, str]:
    """Return {file column: field} from "FILECOL=field" strings, or raise ImportRefused."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        pair = pair.strip()
        if not pair:
            continue
        column, sep, field_name = pair.rpartition("=")
        if not sep or not column.strip() or not field_name.strip():
            raise ImportRefused(said(N_("Write each column mapping as FILECOL=field, not %(pair)s."), pair=repr(pair)))
        mapping[column.strip()] = field_name.strip()
    return mapping


def open_reader(kind: str, fileobj: Any, filename: str | None = None, *, fmt: str | None = None,
                mapping: dict[str, str] | None = None, source: str | None = None,
                default_currency: str | None = None) -> Iterator[OrderRecord | CustomerRecord | Rejected]:
    """Return the reader that yields the file's records and rejected rows, or raise ImportRefused."""
    fmt = resolve_format(kind, filename, fmt)
    if kind != GENERIC_KIND and (mapping or source):
        raise ImportRefused(said(N_("A column mapping and a source name apply to the generic orders import only.")))
    options: dict[str, Any] = {}
    if is_order_kind(kind):
        options["default_currency"] = default_currency or _shop_currency()
    try:
        if kind == GENERIC_KIND:
            source = (source or "import").strip()
            if not source or len(source) > 40:
                raise ImportRefused(said(N_("Give the orders' source a name of 1 to 40 characters, e.g. 'etsy'.")))
            return READERS[kind].read(fileobj, fmt, mapping or None, source, **options)
        return READERS[kind].read(fileobj, fmt, **options)
    except ValueError as error:
        if isinstance(error, ImportRefused):
            raise
        raise ImportRefused(str(error)) from error


def _shop_currency() -> str:
    from crm.services import shop

    return shop.current().currency if has_app_context() else "EUR"


def _batches(items: Iterator, size: int) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _position(fileobj: Any) -> int | None:
    try:
        return fileobj.tell()
    except (AttributeError, OSError, ValueError):
        return None


def _rejection_row(line: int, reason: str, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raw = {"rows": raw} if isinstance(raw, list) else {"value": raw}
    reason = reason if len(reason) <= MAX_REASON else reason[:MAX_REASON - 3] + "..."
    # The raw row must survive a JSON column whatever the reader put in it.
    return {"line": line, "reason": reason, "raw": json.loads(json.dumps(raw, default=str))}


class _Tally:
    """Counts, the touched contacts and where the rejected rows go, for one run."""

    def __init__(self, spool: IO[str] | None):
        self.counts = dict.fromkeys(COUNTS, 0)
        self.touched: set[int] | None = set()
        self.spool = spool
        self.first_rejection: str | None = None
        self.stored_rejections = 0
        self.analysed_at = 0  # rows created when the tables were last analysed
        self.currencies: dict[str, int] = {}  # orders stored per currency code

    def snapshot(self) -> dict[str, Any]:
        """Return the counts to keep on the run, with the orders per currency when any is not the shop's."""
        if set(self.currencies) - {_shop_currency().upper()}:
            return {**self.counts, "currencies": dict(sorted(self.currencies.items()))}
        return dict(self.counts)

    def touch(self, ids: Iterable[int]) -> None:
        if self.touched is None:
            return
        self.touched.update(ids)
        if len(self.touched) > MAX_TOUCHED:
            self.touched = None  # too many to keep: re-derive everyone at the end


def run_import(kind: str, fileobj: Any, filename: str, *, fmt: str | None = None,
               mapping: dict[str, str] | None = None, source: str | None = None, dry_run: bool = False,
               user_id: int | None = None, progress: Callable[[int], None] | None = None,
               now: datetime | None = None, batch_size: int = BATCH,
               default_currency: str | None = None) -> ImportRun:
    """Import a file and return its run (committed), with counts and rejected rows.

    `fileobj` is a path or a binary file; `progress(bytes_read)` is called after each batch.
    Raises ImportRefused before storing anything when the kind, format or mapping is wrong.
    """
    now = now or utcnow()
    own_file = None
    if isinstance(fileobj, (str, os.PathLike)):
        own_file = fileobj = open(fileobj, "rb")
    try:
        items = open_reader(kind, fileobj, filename, fmt=fmt, mapping=mapping, source=source,
                            default_currency=default_currency)
        with without_memory_map():
            return _run(kind, items, fileobj, filename, dry_run=dry_run, user_id=user_id, progress=progress,
                        now=now, batch_size=batch_size)
    finally:
        if own_file is not None:
            own_file.close()


def _run(kind: str, items: Iterator, fileobj: Any, filename: str, *, dry_run: bool, user_id: int | None,
         progress: Callable[[int], None] | None, now: datetime, batch_size: int,
         stored: ImportRun | None = None, report: Callable[[str, dict], None] | None = None) -> ImportRun:
    filename = (os.path.basename(filename or "") or "upload")[:300]
    run_id = None
    spool = tempfile.TemporaryFile("w+", encoding="utf-8") if dry_run else None
    tally = _Tally(spool)
    if stored is not None:
        # A queued run (see run_queued): its row exists; a resumed one goes on from its stored counts.
        run_id = stored.id
        tally.counts.update({key: int((stored.counts or {}).get(key, 0)) for key in COUNTS})
        if tally.counts["read"]:
            tally.touched = None  # who the first part touched is not kept: re-derive everyone at the end
            items = itertools.islice(items, tally.counts["read"], None)
    elif not dry_run:
        from crm.services.jobs.runs import this_worker

        # The process doing it, so a run whose process was killed shows as interrupted, not running.
        run = ImportRun(kind=kind, filename=filename, user_id=user_id, dry_run=False, status="running",
                        started_at=now, counts=dict.fromkeys(COUNTS, 0),
                        options={"process": this_worker(), "shop_was_empty": _shop_is_empty(kind)})
        db.session.add(run)
        db.session.commit()
        run_id = run.id
    try:
        for batch in _batches(items, batch_size):
            _record_batch(kind, batch, tally, run_id, now)
            if run_id is not None:
                db.session.execute(update(ImportRun).where(ImportRun.id == run_id).values(counts=tally.snapshot())
                                   .execution_options(synchronize_session=False))
                db.session.commit()
                _analyse_while_running(tally)
            if progress is not None and (position := _position(fileobj)) is not None:
                progress(position)
            if report is not None:
                report("recording", tally.counts)
        if report is not None:
            report("refreshing", tally.counts)
        reaction = None
        if tally.touched is None:
            reaction = signals.after_bulk_change(now=now)
        elif tally.touched:
            reaction = signals.after_contacts_changed(sorted(tally.touched), now=now)
        if reaction is not None:
            # What the rules made of the file, so the summary can say why there are not more to-dos.
            tally.counts["tasks_created"] = reaction.tasks_created
            tally.counts["tasks_passed"] = sum(reaction.tasks_passed.values())
            tally.counts["tasks_passed_by"] = dict(reaction.tasks_passed)
        if dry_run:
            db.session.rollback()
        status, error = _outcome(tally)
        if run_id is None:
            run = ImportRun(kind=kind, filename=filename, user_id=user_id, dry_run=True, started_at=now)
            db.session.add(run)
            db.session.flush()
            run_id = run.id
            _unspool(spool, run_id)
        db.session.execute(update(ImportRun).where(ImportRun.id == run_id).values(
            counts=tally.snapshot(), status=status, error=error, finished_at=utcnow(),
        ).execution_options(synchronize_session=False))
        if not dry_run:
            audit.record("import", "import_run", run_id, user_id=user_id,
                         after={"kind": kind, "filename": filename, **tally.counts})
            if any(tally.counts[k] for k in ("orders_created", "orders_updated", "contacts_created",
                                             "contacts_updated")):
                # The shop-wide figures and predictions follow the new history: one refresh of
                # everyone, queued for the worker (the dashboard says "updating…" meanwhile).
                from crm.services.rules import freshness

                freshness.queue_refresh()
        db.session.commit()
        if not dry_run and tally.counts["orders_created"] + tally.counts["contacts_created"] >= ANALYZE_AFTER:
            refresh_statistics(db.session)
    except BaseException as exc:  # Ctrl-C too: the run must not stay "running"
        db.session.rollback()
        if run_id is not None and not dry_run:
            db.session.execute(update(ImportRun).where(ImportRun.id == run_id).values(
                status="failed", finished_at=utcnow(), counts=dict(tally.counts),
                error=f"Stopped by an unexpected error after {tally.counts['read']} records "
                      f"({type(exc).__name__}: {str(exc)[:300]}); the batches before it are stored and "
                      "running the same file again finishes the job.",
            ).execution_options(synchronize_session=False))
            db.session.commit()
        raise
    finally:
        if spool is not None:
            spool.close()
    run = db.session.get(ImportRun, run_id)
    db.session.refresh(run)
    return run


def _analyse_while_running(tally: _Tally) -> None:
    """On PostgreSQL, ANALYZE every ANALYZE_EVERY rows created during a big import, not only at its end."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    created = tally.counts["orders_created"] + tally.counts["contacts_created"]
    if created - tally.analysed_at >= ANALYZE_EVERY:
        refresh_statistics(db.session)
        tally.analysed_at = created


class UploadGone(Exception):
    """A queued run's file is no longer there (cleaned up, or the instance folder was moved)."""


def queue_file(kind: str, path: str | os.PathLike, filename: str, *, fmt: str | None = None,
               mapping: dict[str, str] | None = None, source: str | None = None, user_id: int | None = None,
               digest: str | None = None) -> ImportRun:
    """Add a queued run for a stored file (flushed); run_queued(run.id) does the import later.
    `digest` (the file's SHA-256) lets a second import of the same file wait for the first."""
    run = ImportRun(kind=kind, filename=(os.path.basename(filename or "") or "upload")[:300], user_id=user_id,
                    dry_run=False, status="queued", started_at=utcnow(), counts=dict.fromkeys(COUNTS, 0),
                    upload_path=str(path), phase="queued",
                    options={"fmt": fmt, "mapping": mapping or None, "source": source, "sha256": digest,
                             "shop_was_empty": _shop_is_empty(kind)})
    db.session.add(run)
    db.session.flush()
    return run


def _shop_is_empty(kind: str) -> bool:
    """Whether an order import starts on a shop with no orders yet (its first import may set the currency)."""
    return is_order_kind(kind) and db.session.scalar(select(Order.id).limit(1)) is None


def active_upload_paths() -> set[str]:
    """Return the stored files that queued or running imports still need."""
    return {path for path in db.session.scalars(
        select(ImportRun.upload_path).where(ImportRun.status.in_(("queued", "running")),
                                            ImportRun.upload_path.is_not(None)))}


def count_records(kind: str, path: str | os.PathLike, filename: str, *, options: dict[str, Any],
                  report: Callable[[int], None] | None = None) -> int:
    """Return how many records (read rows, rejected ones included) the file holds, as the import counts them."""
    total = 0
    with open(path, "rb") as handle:
        items = open_reader(kind, handle, filename, fmt=options.get("fmt"), mapping=options.get("mapping"),
                            source=options.get("source"))
        for _item in items:
            total += 1
            if report is not None and total % BATCH == 0:
                report(total)
    return total


def run_queued(run_id: int, *, report: Callable[[str, int, int | None, dict], None] | None = None,
               batch_size: int = BATCH) -> ImportRun | None:
    """Run (or go on with) a queued import: read the file to count its records, record them batch
    by batch, let the rules react, then delete the file. Safe to call again after a crash: the
    records done so far are skipped, so the counts come out as if it had run once.

    `report(phase, done, total, counts)` is called at each phase and after each batch. Returns
    the run, or None when it had already ended. Raises UploadGone (the run marked failed) when
    the file is missing.
    """
    run = db.session.get(ImportRun, run_id)
    if run is None:
        raise LookupError(said(N_("import #%(id)s no longer exists"), id=str(run_id)))
    if run.status not in ("queued", "running"):
        return None
    path = run.upload_path
    if not path or not os.path.exists(path):
        run.status, run.phase, run.finished_at = "failed", None, utcnow()
        gone = said(N_("The uploaded file is no longer on the server (it was cleaned up or moved); upload it again."))
        run.error = str(gone)
        db.session.commit()
        raise UploadGone(gone)
    options = run.options or {}
    run.status, run.phase = "running", "reading"
    db.session.commit()

    def reading(done: int) -> None:
        if report is not None:
            report("reading", done, None, run.counts or {})

    try:
        total = count_records(run.kind, path, run.filename, options=options, report=reading)
    except ImportRefused as error:
        run.status, run.phase, run.finished_at, run.error = "failed", None, utcnow(), str(error)
        db.session.commit()
        return run
    run.total, run.phase = total, "recording"
    db.session.commit()

    def batch_done(phase: str, counts: dict) -> None:
        if phase != "recording":
            db.session.execute(update(ImportRun).where(ImportRun.id == run_id).values(phase=phase)
                               .execution_options(synchronize_session=False))
            db.session.commit()
        if report is not None:
            report(phase, counts["read"], total, counts)

    batch_done("recording", {**dict.fromkeys(COUNTS, 0), **(run.counts or {})})
    with open(path, "rb") as handle:
        items = open_reader(run.kind, handle, run.filename, fmt=options.get("fmt"),
                            mapping=options.get("mapping"), source=options.get("source"))
        result = _run(run.kind, items, handle, run.filename, dry_run=False, user_id=run.user_id, progress=None,
                      now=utcnow(), batch_size=batch_size, stored=run, report=batch_done)
    result.phase = None
    result.upload_path = None
    db.session.commit()
    Path(path).unlink(missing_ok=True)
    return result


def _outcome(tally: _Tally) -> tuple[str, str | None]:
    """("finished", None), or ("failed", why) when the file could not be read at all."""
    counts = tally.counts
    if counts["read"] == counts["rejected"] == 1 and (tally.first_rejection or "").startswith("header:"):
        return "failed", tally.first_rejection
    return "finished", None


def _record_batch(kind: str, batch: list, tally: _Tally, run_id: int | None, now: datetime) -> None:
    counts = tally.counts
    counts["read"] += len(batch)
    rejections = [_rejection_row(item.line, item.reason, item.raw) for item in batch if isinstance(item, Rejected)]
    records = [item for item in batch if not isinstance(item, Rejected)]
    if records and is_order_kind(kind):
        summary = order_service.record_orders(records, now=now, audit_each=False, react=False)
        changed = set()
        for record, outcome in zip(records, summary.outcomes):
            if outcome.result == "rejected":
                rejections.append(_rejection_row(record.line, outcome.reason or "refused", _kept_raw(outcome, record)))
                continue
            counts[f"orders_{outcome.result}"] += 1
            tally.currencies[record.currency] = tally.currencies.get(record.currency, 0) + 1
            if outcome.result in ("created", "updated"):
                changed.add(outcome.contact_id)
        counts["contacts_created"] += summary.contacts_created
        if changed:
            # Refreshed with the batch, so a crash never leaves committed orders with stale totals.
            aggregates.refresh(changed)
        tally.touch(summary.contact_ids)
    elif records:
        outcomes = order_service.record_customers(records, now=now, audit_each=False, react=False)
        for record, outcome in zip(records, outcomes):
            if outcome.result == "rejected":
                rejections.append(_rejection_row(record.line, outcome.reason or "refused", _kept_raw(outcome, record)))
                continue
            counts[f"contacts_{outcome.result}"] += 1
        tally.touch(o.contact_id for o in outcomes if o.contact_id)
    if not rejections:
        return
    rejections.sort(key=lambda row: row["line"])
    counts["rejected"] += len(rejections)
    if tally.first_rejection is None:
        tally.first_rejection = rejections[0]["reason"]
    rejections = rejections[:max(0, MAX_STORED_REJECTIONS - tally.stored_rejections)]
    tally.stored_rejections += len(rejections)
    if not rejections:
        return
    if tally.spool is not None:
        for row in rejections:
            tally.spool.write(json.dumps(row) + "\n")
    else:
        db.session.execute(insert(ImportRejection), [{**row, "run_id": run_id} for row in rejections])


def _kept_raw(outcome, record) -> Any:
    """The original row to keep with a rejection: none for an erased, blocked person's row."""
    return {} if outcome.reason == order_service.BLOCKED_REASON else record.raw


def _unspool(spool: IO[str], run_id: int) -> None:
    spool.seek(0)
    rows = []
    for text in spool:
        rows.append({**json.loads(text), "run_id": run_id})
        if len(rows) >= BATCH:
            db.session.execute(insert(ImportRejection), rows)
            rows = []
    if rows:
        db.session.execute(insert(ImportRejection), rows)


# -- following a queued run ----------------------------------------------------------------------

PHASE_LABELS = {"queued": N_("Queued"), "waiting": N_("Waiting for its turn"), "reading": N_("Reading the file"),
                "recording": N_("Recording"), "refreshing": N_("Refreshing stages, scores and to-dos")}


def progress_of(run: ImportRun, job: Any = None, *, stale_after: Any = None) -> dict[str, Any]:
    """Return what a person watching a run should see: state (queued, waiting, running,
    interrupted, finished, failed), headline, records done and total, rejected so far, phase.
    `job` is the run's JobRun, used to tell an interrupted run from a running one."""
    from datetime import timedelta

    from crm.services.jobs.runs import process_gone

    counts = {**dict.fromkeys(COUNTS, 0), **(run.counts or {})}
    state = run.status
    phase = run.phase
    if state == "queued" and phase == "waiting":
        state = "waiting"
    stale_after = stale_after or timedelta(minutes=10)
    resumable = run.job_run_id is not None
    if state in ("queued", "running") and job is not None:
        gone = job.status == "interrupted" or (
            job.status == "running" and process_gone(job.worker, job.heartbeat_at, stale_after=stale_after))
        resumed = job.status == "queued" and state == "running"
        if gone or resumed:
            state = "interrupted"
    elif state == "running" and not resumable and (run.options or {}).get("process"):
        # `crm import` killed (SIGKILL, power cut) before it could mark the run failed.
        if process_gone(run.options["process"], None, stale_after=stale_after):
            state = "interrupted"
    headline = {
        "queued": N_("Queued: it starts as soon as a worker is free."),
        "waiting": N_("Waiting: the same file is being imported; this one goes next."),
        "running": PHASE_LABELS.get(phase or "", N_("Running")) + "…",
        "interrupted": (N_("Interrupted: its worker stopped. It goes on where it stopped when a worker runs again.")
                        if resumable else N_("Interrupted: the import stopped before it finished. Import the same "
                                             "file again to finish it; what is already in comes back unchanged.")),
        "finished": N_("Finished."),
        "failed": N_("Failed."),
    }.get(state, state)
    done = counts["read"] if phase != "reading" else 0
    total = run.total
    percent = None
    if total:
        percent = min(100, round(100 * done / total))
    elif state == "finished":
        percent = 100
    return {"state": state, "active": state in ("queued", "waiting", "running") or (state == "interrupted" and resumable),
            "headline": headline, "done": done, "total": total, "percent": percent,
            "rejected": counts["rejected"], "phase": PHASE_LABELS.get(phase or "", phase)}


# -- reading the results -----------------------------------------------------------------------

REJECTION_COLUMNS = ("line", "reason", "row")


def rejection_rows(run_id: int, chunk: int = 1000) -> Iterator[list[str]]:
    """Yield the run's rejected rows (line, reason, the original row as JSON) in line order, for
    crm.services.shared.csv_safe to write; the header is REJECTION_COLUMNS."""
    last = (-1, 0)
    while True:
        rows = db.session.execute(
            select(ImportRejection.line, ImportRejection.id, ImportRejection.reason, ImportRejection.raw)
            .where(ImportRejection.run_id == run_id)
            .where((ImportRejection.line > last[0]) | ((ImportRejection.line == last[0]) & (ImportRejection.id > last[1])))
            .order_by(ImportRejection.line, ImportRejection.id).limit(chunk)
        ).all()
        if not rows:
            return
        for line, _id, reason, raw in rows:
            yield [line, reason, json.dumps(raw, ensure_ascii=False) if raw else ""]
        last = (rows[-1].line, rows[-1].id)


def first_rejections(run_id: int, limit: int = 10) -> list[ImportRejection]:
    """Return the run's first rejected rows, in line order."""
    return list(db.session.scalars(
        select(ImportRejection).where(ImportRejection.run_id == run_id)
        .order_by(ImportRejection.line, ImportRejection.id).limit(limit)
    ))


def currency_mismatch(run: ImportRun, shop_currency: str | None = None) -> tuple[dict[str, int], str, bool] | None:
    """Return (orders per currency other than the shop's, the shop's currency, whether the file
    had no order in the shop's currency and one other currency) when a run's orders carry a
    currency other than the shop's, else None. crm.views.import_text says it, in the reader's
    language on the import pages and in English for `crm import`."""
    shop = (shop_currency or _shop_currency()).upper()
    others = {code: n for code, n in ((run.counts or {}).get("currencies") or {}).items() if code != shop}
    if not others:
        return None
    only = len(others) == 1 and not (run.counts or {}).get("currencies", {}).get(shop)
    return others, shop, only


# "Nearly all": a first file whose orders are at least this share in one currency may set the shop's.
CURRENCY_OFFER_SHARE = 0.95


def currency_offer(run: ImportRun, shop_currency: str | None = None) -> str | None:
    """Return the currency to offer as the shop's after this run, else None.

    Offered only for a finished, real order import into a shop that had no orders before it,
    when all (or nearly all) of the file's orders are in one currency other than the shop's.
    """
    if run.dry_run or run.status != "finished" or not (run.options or {}).get("shop_was_empty"):
        return None
    counts = (run.counts or {}).get("currencies") or {}
    total = sum(counts.values())
    if not total:
        return None
    code, n = max(counts.items(), key=lambda item: item[1])
    shop = (shop_currency or _shop_currency()).upper()
    return code if code != shop and n >= CURRENCY_OFFER_SHARE * total else None
