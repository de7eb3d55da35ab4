"""`crm refresh` in-process on a copy of a prepared shop: CPU per step, and a dump of what it wrote.

    python -m bench.refresh_check prepare SHOP PREPARED      # copy, upgrade, build the summaries
    python -m bench.refresh_check run PREPARED WORK [--now 2026-12-06T12:00] [--dump FILE] [--profile FILE]

`run` copies PREPARED to WORK, runs `refresh_everyone_now` at a fixed `now` (default noon UTC of
2026-12-06), prints the CPU (`time.process_time`) and wall seconds of each step and of the whole,
and with `--dump` writes every column the refresh derives (the contacts' stage, reason and its key
and values, stage since, health, lead score and breakdown, p_alive and the predictions, every task,
the stage changes, the score history, the shop context and the summary tables) as sorted text,
leaving out only wall-clock `updated_at` columns of the summary state. Two dumps from two versions
of the code at the same `now` must be byte-identical (`cmp`).
"""
from __future__ import annotations

import argparse
import cProfile
import json
import sqlite3
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

# Columns left out of the dump: the wall clock at the time of the run, not a derived value.
WALL_CLOCK = {"summary_state": {"updated_at"}, "settings": {"updated_at"}}
TABLES = ("contacts", "tasks", "stage_changes", "score_history", "settings", "summary_state",
          "summary_contact_months", "summary_cohort_months", "summary_contact_stages", "summary_stage_months")


def _app(path: Path):
    from bench.run import _app as bench_app

    return bench_app(path)


def prepare(shop: Path, prepared: Path) -> None:
    """As bench.run does before timing `crm refresh`: the newest schema and the summaries built."""
    from flask_migrate import upgrade

    from crm.extensions import db
    from crm.services.insight import summaries

    from bench.run import copy_database

    copy_database(shop, prepared)
    app = _app(prepared)
    with app.app_context():
        upgrade()
        summaries.rebuild(medians=True)
        db.session.commit()


def _timed_steps():
    """Wrap the refresh's steps to print each one's CPU and wall seconds."""
    import crm.database
    from crm.services.insight import summaries
    from crm.services.rules import engine

    def timed(label, function):
        def wrapper(*args, **kwargs):
            cpu, wall = time.process_time(), time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                print(f"  {label:<28} {time.process_time() - cpu:6.2f} s CPU {time.perf_counter() - wall:6.2f} s wall",
                      flush=True)
        return wrapper

    engine.REFRESH_STEPS[:] = [(label, timed(label, step)) for label, step in engine.REFRESH_STEPS]
    summaries.rebuild = timed("summaries.rebuild", summaries.rebuild)
    crm.database.refresh_statistics = timed("ANALYZE", crm.database.refresh_statistics)


def run(prepared: Path, work: Path, now: datetime, dump: Path | None, profile: Path | None) -> None:
    from crm.extensions import db
    from crm.services.jobs.maintenance import refresh_everyone_now

    import crm
    from bench.run import copy_database

    print(f"  code: {Path(crm.__file__).parent.parent}", flush=True)
    copy_database(prepared, work)
    app = _app(work)
    _timed_steps()
    import gc
    import os

    spent = {"gc": 0.0, "collections": [0, 0, 0]}

    def gc_timer(phase, info):
        if phase == "start":
            spent["started"] = time.process_time()
        else:
            spent["gc"] += time.process_time() - spent["started"]
            spent["collections"][info["generation"]] += 1

    gc.callbacks.append(gc_timer)
    if os.environ.get("GC_FREEZE"):
        gc.freeze()
    if os.environ.get("GC_THRESHOLD"):
        gc.set_threshold(int(os.environ["GC_THRESHOLD"]), *gc.get_threshold()[1:])
    with app.app_context():
        db.session.execute(db.text("SELECT count(*) FROM contacts")).scalar()
        profiler = cProfile.Profile() if profile else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        summary = refresh_everyone_now(now=now)
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile)
        print(f"  {'whole refresh':<28} {time.process_time() - cpu:6.2f} s CPU {time.perf_counter() - wall:6.2f} s wall")
        print(f"  garbage collection {spent['gc']:.2f} s CPU, collections by generation {spent['collections']}")
        print(f"  {summary}")
        for note in summary.notes:
            print(f"  {note}")
    app = None
    if dump:
        write_dump(work, dump)


def write_dump(database: Path, target: Path) -> None:
    connection = sqlite3.connect(database)
    with open(target, "w") as out:
        for table in TABLES:
            columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
            keep = [c for c in columns if c not in WALL_CLOCK.get(table, set())]
            out.write(f"== {table} ({', '.join(keep)})\n")
            rows = connection.execute(f"SELECT {', '.join(keep)} FROM {table}").fetchall()
            for row in sorted(rows, key=lambda r: tuple((v is None, str(v)) for v in r)):
                out.write(json.dumps(row, default=str) + "\n")
    connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("prepare")
    p.add_argument("shop", type=Path)
    p.add_argument("prepared", type=Path)
    r = commands.add_parser("run")
    r.add_argument("prepared", type=Path)
    r.add_argument("work", type=Path)
    r.add_argument("--now", default="2026-12-06T12:00")
    r.add_argument("--dump", type=Path)
    r.add_argument("--profile", type=Path)
    d = commands.add_parser("dump")
    d.add_argument("database", type=Path)
    d.add_argument("target", type=Path)
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare(args.shop, args.prepared)
    elif args.command == "run":
        now = datetime.fromisoformat(args.now).replace(tzinfo=timezone.utc)
        run(args.prepared, args.work, now, args.dump, args.profile)
    else:
        write_dump(args.database, args.target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
