"""Engine set-up: SQLite pragmas, write transactions that take the lock up front, planner statistics."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import scoped_session

# Whether the transaction about to begin may write. Read-only web requests (GET)
# begin deferred so that readers never queue behind writers.
write_intent: ContextVar[bool] = ContextVar("crm_write_intent", default=True)


# Whether connections may read the database file through a memory map (see configure_engine).
memory_map: ContextVar[bool] = ContextVar("crm_memory_map", default=True)


@contextmanager
def without_memory_map():
    """Run the block's transactions without the memory map: a long import reads and writes the
    file with read calls, so its memory (RSS, which counts mapped pages) stays its own and does
    not grow with the database it fills."""
    token = memory_map.set(False)
    try:
        yield
    finally:
        memory_map.reset(token)


@contextmanager
def read_only():
    """Run the block's transactions as deferred (read) transactions on SQLite."""
    token = write_intent.set(False)
    try:
        yield
    finally:
        write_intent.reset(token)


def writes_later(view):
    """Mark a view that takes SQLite's write lock itself (`take_write_lock`) just before it
    writes: its request begins as a read (deferred) transaction, so signing in the token's user and
    reading the body hold no lock that the other workers' writes wait for."""
    view.crm_writes_later = True
    return view


def take_write_lock(session) -> None:
    """From here on, the request's transaction may write: on SQLite, take the write lock now,
    waiting (busy timeout) for another writer, as BEGIN IMMEDIATE does.

    Call it before the first write. A read transaction already open on SQLite (deferred, see
    `writes_later`) cannot wait for the lock (upgrading it fails at once, SQLITE_BUSY, when another
    writer holds the lock or committed since it began), so it is ended and BEGIN IMMEDIATE begins
    the writing one on the same connection, inside the same Session transaction: objects read
    before it stay as they were read (a moment earlier); whatever must not change before the
    write, read it after this call. Elsewhere (PostgreSQL) row locks do this, and nothing is done.
    """
    write_intent.set(True)  # later transactions of this request (context) take the lock up front too
    if isinstance(session, scoped_session):
        session = session()
    if session.get_bind().dialect.name != "sqlite" or not session.in_transaction():
        return
    connection = session.connection()
    info = connection.connection.info
    if not info.get("crm_deferred"):
        return  # already BEGIN IMMEDIATE
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("take_write_lock must come before the first write")
    connection.exec_driver_sql("COMMIT")  # a read transaction: nothing to commit, only its snapshot ends
    info["crm_deferred"] = False
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def plain_rows(session, statement, size: int) -> Iterator[Sequence[tuple]]:
    """Yield the statement's rows in lists of about `size` plain tuples, streamed.

    On SQLite the driver's own cursor is read: sqlite3 steps through the result as it is
    fetched (nothing to buffer), and making a SQLAlchemy Row of each of a million tuples cost
    more than the query; the values are then the driver's own (text for a timestamp, a float
    or an integer for an amount). Elsewhere the rows stream through SQLAlchemy (a server-side
    cursor), its types applied.
    """
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        result = connection.execute(statement)
        try:
            while rows := result.cursor.fetchmany(size):
                yield rows
        finally:
            result.close()
        return
    yield from connection.execute(statement.execution_options(yield_per=size)).partitions()


def refresh_statistics(session) -> None:
    """Let the query planner see the tables as they are now, and commit.

    A never-analysed SQLite picks poor indexes once tables are big (it filters a million orders
    by status instead of by date). The ANALYZE reads every index in full: half a second for a
    million orders, and a sampled one (analysis_limit) misjudged the status index just as badly.
    Run after big imports and by `crm refresh`, the nightly job, so a shop that grew order by
    order through webhooks is covered too. PostgreSQL's autovacuum does this on its own; an
    explicit ANALYZE there only makes it current at once.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("PRAGMA analysis_limit=0"))
        session.execute(text("ANALYZE"))
    else:
        session.execute(text("ANALYZE contacts, contact_external_ids, orders, order_lines, interactions, tasks"))
    session.commit()


# SQLite's own ceiling for a memory map (SQLITE_MAX_MMAP_SIZE's default): larger values are cut to it.
MMAP_BYTES = 2**31 - 2**16


def configure_engine(engine: Engine, busy_timeout_ms: int = 30_000, mmap_bytes: int = MMAP_BYTES) -> None:
    """Set WAL, busy timeout, foreign keys and the memory map on every SQLite connection, and
    BEGIN IMMEDIATE.

    The memory map: with SQLite's default 2 MB page cache, a query that seeks through a big
    index (a segment's count over 100,000 contacts and a million orders) pays a read call for
    most pages it touches; mapped, it reads them straight from the operating system's file cache
    (about twice as fast at full bench scale)."""
    if engine.dialect.name != "sqlite":
        return
    on_disk = engine.url.database not in (None, "", ":memory:")  # a file: WAL and the memory map apply
    mapped = max(0, int(mmap_bytes))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy's "begin" event below issue BEGIN, instead of pysqlite.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if on_disk:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        # A writer that takes the lock up front waits (busy timeout) for another
        # writer instead of failing with "database is locked" when it upgrades.
        if on_disk:
            wanted = mapped if memory_map.get() else 0
            info = connection.connection.info
            if info.get("mmap_size") != wanted:  # set once per connection, again only when it changes
                connection.exec_driver_sql(f"PRAGMA mmap_size={wanted}")
                info["mmap_size"] = wanted
        deferred = not write_intent.get()
        connection.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")
        connection.connection.info["crm_deferred"] = deferred
