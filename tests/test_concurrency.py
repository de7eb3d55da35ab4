"""Several threads and several processes write at once to the same database: no error,
no lost row, no duplicate. Processes are spawned, each with its own app, as gunicorn
workers would be; threads share one app, as a threaded server would.

To cover another kind of write, add a (write, written) pair to WRITERS: `write(contact_id, key)`
writes one record identified by `key` through the service and commits; `written(prefix)`
returns the keys of the records whose key starts with `prefix`.
"""
from __future__ import annotations

import multiprocessing
import threading
import traceback

import pytest
from sqlalchemy import func, select

from crm.extensions import db
from crm.models import AuditEntry, Contact, Interaction


def write_interaction(contact_id: int, key: str) -> None:
    from crm.services.people import interactions

    contact = db.session.get(Contact, contact_id)
    interactions.log_interaction(contact, {"kind": "note", "subject": key, "body": "concurrent"}, author_id=None)
    db.session.commit()


def written_interactions(prefix: str) -> list[str]:
    return list(db.session.scalars(select(Interaction.subject).where(Interaction.subject.startswith(prefix))))


WRITERS = {
    "interaction": (write_interaction, written_interactions),
    # "order": (write_order, written_orders),  <- the orders area adds its line here
}
THREADS = 3
PROCESSES = 2
WRITES_EACH = 15


def _write_many(writer: str, contact_ids: list[int], prefix: str) -> None:
    write, _written = WRITERS[writer]
    for number in range(WRITES_EACH):
        write(contact_ids[number % len(contact_ids)], f"{prefix}-{number:03d}")


def _process_main(database_url: str, writer: str, contact_ids: list[int], prefix: str, results) -> None:
    """Run in a spawned process: a fresh interpreter with its own app and connection pool."""
    try:
        from crm import create_app

        app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "x", "TESTING": True})
        with app.app_context():
            _write_many(writer, contact_ids, prefix)
            db.session.remove()
            db.engine.dispose()
        results.put((prefix, None))
    except BaseException:  # report anything to the parent, which fails the test with it
        results.put((prefix, traceback.format_exc()))


@pytest.mark.slow
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_threads_and_processes_write_at_once_without_losing_or_doubling_a_row(app, _migrated, writer):
    contacts = [Contact(email=f"c{n}@example.com", first_name=f"C{n}") for n in range(3)]
    db.session.add_all(contacts)
    db.session.commit()
    contact_ids = [c.id for c in contacts]
    _written = WRITERS[writer][1]
    audit_before = db.session.scalar(select(func.count()).select_from(AuditEntry))
    db.session.commit()  # no open transaction (on SQLite it would hold the write lock)

    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=_process_main, args=(_migrated, writer, contact_ids, f"{writer}-p{n}", results))
                 for n in range(PROCESSES)]
    errors: list[str] = []

    def thread_main(prefix: str) -> None:
        try:
            with app.app_context():
                _write_many(writer, contact_ids, prefix)
                db.session.remove()
        except BaseException:
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=thread_main, args=(f"{writer}-t{n}",)) for n in range(THREADS)]
    for worker in (*processes, *threads):
        worker.start()
    for thread in threads:
        thread.join(timeout=180)
    reports = [results.get(timeout=180) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    errors += [f"{prefix}: {error}" for prefix, error in reports if error]
    assert errors == []
    assert all(process.exitcode == 0 for process in processes)

    db.session.expire_all()
    keys = _written(f"{writer}-")
    expected = {f"{writer}-{kind}{n}-{number:03d}" for kind, count in (("t", THREADS), ("p", PROCESSES))
                for n in range(count) for number in range(WRITES_EACH)}
    assert len(keys) == len(set(keys)), "a row was written twice"
    assert set(keys) == expected, "a row was lost"
    # Every write was audited once, too.
    audit_after = db.session.scalar(select(func.count()).select_from(AuditEntry))
    assert audit_after - audit_before == len(expected)
