"""The benchmark at a tiny scale: the generated export has Shopify's shape, the direct load
matches it, and the harness gives a result for every measurement without errors."""
import csv
import json
from datetime import datetime
from decimal import Decimal
from itertools import groupby

import pytest

from bench import run as bench_run
from bench.generate import (
    BUSY_CONTACT_ID, LINE_COLUMNS, SHOPIFY_ORDER_COLUMNS, Scale, load_database, migrate, write_shopify_csv,
)

TINY = Scale(contacts=200, orders=500, interactions=300)


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "orders.csv"
    write_shopify_csv(TINY, path)
    return path


def read_orders(path):
    with open(path, newline="", encoding="utf-8") as source:
        reader = csv.DictReader(source)
        assert tuple(reader.fieldnames) == SHOPIFY_ORDER_COLUMNS
        rows = list(reader)
    return rows, [list(lines) for _name, lines in groupby(rows, key=lambda row: row["Name"])]


def test_the_export_has_one_row_per_line_and_order_fields_on_the_first(export):
    rows, orders = read_orders(export)

    assert len(orders) == TINY.orders
    assert len({lines[0]["Name"] for lines in orders}) == TINY.orders  # each order's rows are together
    for lines in orders:
        first, rest = lines[0], lines[1:]
        assert 1 <= len(lines) <= 3
        assert len({row["Email"] for row in lines}) == 1
        assert first["Financial Status"] and first["Id"] and first["Total"]
        datetime.strptime(first["Created at"], "%Y-%m-%d %H:%M:%S %z")
        subtotal = sum(Decimal(row["Lineitem price"]) * int(row["Lineitem quantity"]) for row in lines)
        assert Decimal(first["Subtotal"]) == subtotal
        assert Decimal(first["Total"]) == subtotal - Decimal(first["Discount Amount"]) + Decimal(first["Shipping"])
        for row in rest:
            assert {column for column, value in row.items() if value} <= LINE_COLUMNS
    assert sum(len(lines) for lines in orders) == len(rows)


def test_the_same_scale_gives_the_same_export(export, tmp_path):
    again = tmp_path / "again.csv"
    write_shopify_csv(TINY, again)
    assert again.read_bytes() == export.read_bytes()


def test_the_direct_load_holds_the_exported_orders(export, tmp_path):
    import sqlite3

    app = migrate("sqlite:///" + str(tmp_path / "shop.sqlite3"))
    loaded = load_database(app, TINY)
    rows, orders = read_orders(export)

    assert (loaded.contacts, loaded.orders, loaded.order_lines, loaded.interactions) == (
        TINY.contacts, TINY.orders, len(rows), TINY.interactions)
    with sqlite3.connect(tmp_path / "shop.sqlite3") as connection:
        numbers = {number for (number,) in connection.execute("SELECT number FROM orders")}
        busy_events = connection.execute(
            "SELECT (SELECT count(*) FROM orders WHERE contact_id = ?) + "
            "(SELECT count(*) FROM interactions WHERE contact_id = ?)", (BUSY_CONTACT_ID, BUSY_CONTACT_ID)).fetchone()[0]
        stages = {stage for (stage,) in connection.execute("SELECT DISTINCT stage FROM contacts")}
    assert numbers == {lines[0]["Name"] for lines in orders}
    assert busy_events >= TINY.busy_orders + TINY.busy_interactions
    assert {"awareness", "consideration", "retention"} <= stages


@pytest.mark.slow
def test_the_harness_reports_every_measurement_without_errors(tmp_path):
    out = tmp_path / "out.json"
    report = bench_run.main([
        "--contacts", str(TINY.contacts), "--orders", str(TINY.orders), "--interactions", str(TINY.interactions),
        "--workdir", str(tmp_path / "data"), "--json", str(out), "--no-latest", "--requests", "5",
        "--load-requests", "40", "--load-seconds", "5", "--client", "python",
    ])

    results = {r["name"]: r for r in report["results"]}
    assert json.loads(out.read_text())["results"] == report["results"]
    assert [r for r in report["results"] if r["status"] == "error"] == []
    expected = {"import shopify-orders", "crm refresh", "crm predict", "GET /", "GET /contacts",
                "GET / under gunicorn -w 2", "POST /api/v1/orders under gunicorn -w 2"}
    assert expected <= set(results)
    for result in report["results"]:
        assert result["status"] in ("ok", "not available")
        if result["status"] == "ok":
            assert result["value"] is not None
    # Every floor that can run without the app's command was measured.
    assert all(results[name]["floor"] for name in ("import shopify-orders", "crm refresh", "crm predict"))
    assert report["machine"]["cores"] and report["machine"]["sqlite"]


@pytest.mark.slow
def test_the_search_bench_times_each_search_before_and_after_the_index(tmp_path):
    from bench import search as bench_search

    rows = bench_search.main(["--contacts", "300", "--orders", "60", "--requests", "3", "--workdir", str(tmp_path)])
    assert [row["search"] for row in rows] == [label for label, _url in bench_run.SEARCHES]
    by_query = {row["q"]: row for row in rows}
    # The generated shop has Schmidts, and the index finds them (the same count as the scan, which
    # tests/test_contact_search_index.py checks row by row).
    assert by_query["schmidt"]["matches"] > 0
    for row in rows:
        assert row["before_p95"] > 0 and row["after_p95"] > 0 and row["floor_p95"] > 0
