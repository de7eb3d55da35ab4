"""The throughput floor: a bare WSGI app served by the same gunicorn as the CRM.

GET replays, on a plain sqlite3 connection, the SQL the CRM's page ran (captured by the
harness) and renders the rows with a precompiled Jinja template. POST inserts an order
and its lines for a known customer in one transaction: the least an order API must do.

    BENCH_DATABASE=path BENCH_FLOOR_SQL=statements.json gunicorn -w 2 bench.floor_app:app
"""
from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone

from jinja2 import Environment

from bench.floors import TIME_FORMAT, connect

PAGE = Environment(autoescape=True).from_string(
    "<!doctype html><html><head><title>floor</title></head><body>"
    "{% for rows in results %}<table>{% for row in rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>"
    "{% endfor %}</tr>{% endfor %}</table>{% endfor %}</body></html>"
)

_local = threading.local()


def _connection():
    if not hasattr(_local, "connection"):
        _local.connection = connect(os.environ["BENCH_DATABASE"])
    return _local.connection


def _statements() -> list[tuple[str, tuple]]:
    if not hasattr(_local, "statements"):
        with open(os.environ["BENCH_FLOOR_SQL"], encoding="utf-8") as source:
            _local.statements = [(sql, tuple(params)) for sql, params in json.load(source)]
    return _local.statements


def replay(connection, statements) -> str:
    """Run the statements, fetch every row, end the transaction, and return the page."""
    cursor = connection.cursor()
    results = []
    for sql, params in statements:
        cursor.execute(sql, params)
        if cursor.description:
            results.append(cursor.fetchall())
    if connection.in_transaction:
        connection.rollback()
    return PAGE.render(results=results)


def insert_order(connection, order: dict) -> int:
    """Insert an order for the customer with this email, with its lines; return its id."""
    now = datetime.now(timezone.utc).strftime(TIME_FORMAT)
    connection.execute("BEGIN IMMEDIATE")
    try:
        row = connection.execute("SELECT id FROM contacts WHERE email = ?",
                                 (order["email"].strip().lower(),)).fetchone()
        if row is None:
            raise LookupError("unknown customer")
        cursor = connection.execute(
            "INSERT INTO orders (contact_id, source, external_id, number, placed_at, status, currency, subtotal, "
            "discount, shipping, tax, total, refunded, created_at, updated_at) "
            "VALUES (?, 'api', ?, ?, ?, ?, ?, ?, 0, 0, 0, ?, 0, ?, ?)",
            (row[0], order["order_id"], order["number"], now, order["status"], order["currency"],
             order["total"], order["total"], now, now))
        order_id = cursor.lastrowid
        connection.executemany(
            "INSERT INTO order_lines (order_id, sku, name, quantity, unit_price) VALUES (?, ?, ?, ?, ?)",
            [(order_id, line["sku"], line["name"], line["quantity"], line["unit_price"]) for line in order["lines"]])
        connection.execute("COMMIT")
    except Exception:
        connection.execute("ROLLBACK")
        raise
    return order_id


def app(environ, start_response):
    """The WSGI entry point."""
    if environ["REQUEST_METHOD"] == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            order_id = insert_order(_connection(), json.loads(environ["wsgi.input"].read(length)))
        except (LookupError, KeyError, ValueError) as error:
            start_response("422 Unprocessable Entity", [("Content-Type", "application/json")])
            return [json.dumps({"error": str(error)}).encode()]
        start_response("201 Created", [("Content-Type", "application/json")])
        return [json.dumps({"id": order_id}).encode()]
    body = replay(_connection(), _statements()).encode()
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]
