"""History is history: orders dated in the past make only the to-dos whose moment is still open."""
from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from crm.extensions import db
from crm.models import Task
from crm.services.orders.importing import run as importing
from crm.services.rules import engine
from crm.services.rules.defaults import DEFAULT_RETENTION
from crm.services.rules.retention import wanted_tasks
from tests.engine_data import buy, tasks_of
from tests.helpers import summary_lines

UTC = timezone.utc
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def write_year_of_orders(path, customers=24):
    """Two orders per customer, the second one i*15 days before NOW (0..345 days): a year of history."""
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["order_id", "email", "placed_at", "total", "status"])
        for i in range(customers):
            second = NOW - timedelta(days=i * 15 + 8)
            first = second - timedelta(days=40)
            for n, placed in enumerate((first, second)):
                out.writerow([f"{i}-{n}", f"c{i}@example.com", placed.isoformat(), "40.00", "paid"])
    return path


def open_tasks():
    return list(db.session.scalars(select(Task).where(Task.status == "open")))


def test_a_testimonial_for_an_order_long_past_is_not_made_and_is_counted_as_passed(app):
    anna = buy("1", "anna@example.com", NOW - timedelta(days=100))
    buy("2", "anna@example.com", NOW - timedelta(days=60), now=NOW)
    facts = next(engine.gather_facts([anna], NOW))
    passed = []
    wanted = wanted_tasks(facts, DEFAULT_RETENTION, NOW, passed=passed)
    assert "testimonial_request" not in {t.kind for t in wanted}
    assert "testimonial_request" in [t.kind for t in passed]
    assert "testimonial" not in tasks_of(anna)


def test_a_testimonial_inside_its_grace_is_still_made(app):
    anna = buy("1", "anna@example.com", NOW - timedelta(days=50))
    buy("2", "anna@example.com", NOW - timedelta(days=20), now=NOW)  # due 13 days ago, grace 14
    assert tasks_of(anna)["testimonial"].status == "open"


def test_importing_a_year_of_history_makes_only_current_to_dos_and_says_why_not_more(app, tmp_path):
    path = write_year_of_orders(tmp_path / "year.csv")
    run = importing.run_import("orders", path, "year.csv", now=NOW)
    assert run.counts["orders_created"] == 48
    made = open_tasks()
    # Every to-do made is current: due within its rule's grace, none months overdue.
    assert made, "the customers whose orders are recent get their to-dos"
    # (a replenishment reminder is open from 5 days before the usual gap is up until 14 after it)
    assert all(NOW - t.due_at <= timedelta(days=19) for t in made), [(t.title, t.due_at) for t in made]
    assert run.counts["tasks_created"] == len(made)
    assert run.counts["tasks_passed"] > 0
    line = summary_lines(run)[-1]
    assert line.startswith(f"{len(made)} to-do") and "had passed before the import" in line
    assert "ask for a testimonial" in line


def test_a_late_webhook_order_is_history_too(app):
    anna = buy("1", "anna@example.com", NOW - timedelta(days=300), now=NOW)
    # A first order 300 days ago arriving today: no satisfaction call for it.
    assert "followup" not in tasks_of(anna)


def test_the_summary_says_one_record_not_one_records(app, tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("order_id,email,placed_at,total\n1,a@example.com,2026-11-29,10.00\n")
    run = importing.run_import("orders", path, "one.csv", now=NOW)
    lines = summary_lines(run)
    assert lines[0] == "1 record read" and "0 rows rejected" in lines
