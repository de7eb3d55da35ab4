"""Contact search alone, before and after the search index, on one shop (SQLite).

    python -m bench.search                        # 100,000 contacts (and 20,000 orders)
    python -m bench.search --contacts 2000 --requests 50

For each of bench.run's searches, times the search service (`contact_queries.page`: the count,
one page of contacts with their owner and open to-dos, and their tags) in-process, p50 and p95:

- **after**: as the app runs it, through the search index (FTS5 trigrams);
- **before**: the same call with the condition the search ran before the index (a scan of
  contacts; `search_condition(..., indexed=False)`, which the tests also compare the index with);
- **floor**: the SQL the indexed call ran, replayed on a plain sqlite3 connection, rows fetched.

The three take turns call by call, so a busy machine weighs on all three alike.

The shop is made once with bench.generate (in bench/data/<scale>/search.sqlite3) and reused.
"""
from __future__ import annotations

import argparse
import functools
import sys
import time
import urllib.parse
from pathlib import Path

from bench import floors
from bench.floor_app import replay
from bench.generate import Scale, load_database, migrate
from bench.run import DATA, SEARCHES, CapturedSql, _app, percentiles, sqlite_url


def shop(contacts: int, orders: int, fresh: bool, workdir: Path | None = None) -> Path:
    scale = Scale(contacts=contacts, orders=orders, interactions=0)
    path = (workdir or DATA / scale.key()) / "search.sqlite3"
    if fresh and path.exists():
        path.unlink()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        loaded = load_database(migrate(sqlite_url(path)), scale)
        print(f"made {path}: {loaded.contacts:,} contacts, {loaded.orders:,} orders in "
              f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    return path


def measure(path: Path, requests: int) -> list[dict]:
    """Time each search's three variants in turn, call by call, so a busy machine weighs on all
    three alike."""
    from crm.extensions import db
    from crm.services.people import queries as contact_queries
    from crm.services.people.queries import ContactFilters

    app = _app(path)
    connection = floors.connect(str(path))
    indexed_condition = contact_queries.search_condition
    scan_condition = functools.partial(indexed_condition, indexed=False)
    rows = []
    with app.app_context():
        for label, url in SEARCHES:
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["q"][0]
            filters = ContactFilters(q=query)
            with CapturedSql(db.engine) as captured:
                total = contact_queries.page(filters).total
            statements = list(captured.statements)
            db.session.remove()

            def after():
                contact_queries.page(filters)
                db.session.remove()

            def before():
                contact_queries.search_condition = scan_condition
                try:
                    contact_queries.page(filters)
                finally:
                    contact_queries.search_condition = indexed_condition
                db.session.remove()

            def floor():
                replay(connection, statements)

            variants = {"before": before, "after": after, "floor": floor}
            timings: dict[str, list[float]] = {name: [] for name in variants}
            for round_ in range(max(3, requests // 10) + requests):
                for name, call in variants.items():
                    started = time.perf_counter()
                    call()
                    if round_ >= max(3, requests // 10):  # the first rounds warm up
                        timings[name].append(time.perf_counter() - started)
            (b50, b95), (a50, a95), (f50, f95) = (percentiles(timings[name]) for name in variants)
            rows.append({"search": label, "q": query, "matches": total, "before_p50": b50, "before_p95": b95,
                         "after_p50": a50, "after_p95": a95, "floor_p50": f50, "floor_p95": f95})
    connection.close()
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--orders", type=int, help="orders in the shop (default: one per five contacts)")
    parser.add_argument("--requests", type=int, default=200, help="timed calls per search and variant")
    parser.add_argument("--fresh", action="store_true", help="make the shop again")
    parser.add_argument("--workdir", type=Path, help="keep the shop here (default bench/data/<scale>/)")
    args = parser.parse_args(argv)
    path = shop(args.contacts, args.orders if args.orders is not None else args.contacts // 5, args.fresh,
                args.workdir)
    rows = measure(path, args.requests)
    print(f"{'search':<30} {'q':<13} {'matches':>8} {'p95: before':>12} {'after':>9} {'floor':>9} {'after/floor':>11}"
          f" {'p50: before':>12} {'after':>9} {'floor':>9}")
    for row in rows:
        matches = f"{row['matches']:,}" if row["matches"] <= contact_queries_cap() else f">{contact_queries_cap():,}"
        print(f"{row['search']:<30} {row['q']:<13} {matches:>8} {row['before_p95']:>9.1f} ms {row['after_p95']:>6.1f} ms "
              f"{row['floor_p95']:>6.1f} ms {row['after_p95'] / row['floor_p95']:>10.1f}× "
              f"{row['before_p50']:>9.1f} ms {row['after_p50']:>6.1f} ms {row['floor_p50']:>6.1f} ms")
    return rows


def contact_queries_cap() -> int:
    from crm.services.people.queries import COUNT_CAP

    return COUNT_CAP


if __name__ == "__main__":
    main()
