"""The floors: the least work each measured job must do, written with plain sqlite3.

No ORM, no validation beyond parsing, no engine, no audit: a job of the app cannot be faster
than its floor, so `app time / floor time` says how much the app spends on top.

Each floor runs as its own process (`python -m bench.floors NAME ...`) so that its time and
peak memory are measured as the app's commands are; the last line printed is a JSON summary.
"""
from __future__ import annotations

import csv
import json
import sqlite3
import sys
from datetime import datetime, timezone

BATCH = 10_000
PAID = ("paid", "fulfilled", "partially_refunded")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # how the app's UTCDateTime is stored on SQLite


def connect(path: str) -> sqlite3.Connection:
    """Return a connection set up as the app sets up its own (WAL, foreign keys, memory map)."""
    from crm.database import MMAP_BYTES

    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute("PRAGMA busy_timeout=30000")
    connection.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    return connection


def _utc(shopify_time: str) -> str | None:
    if not shopify_time:
        return None
    return datetime.strptime(shopify_time, "%Y-%m-%d %H:%M:%S %z").astimezone(timezone.utc).strftime(TIME_FORMAT)


def _amount(text: str) -> str:
    return f"{float(text or 0):.2f}"


def _status(financial: str, fulfilment: str, cancelled_at: str) -> str:
    if cancelled_at:
        return "cancelled"
    if financial == "paid":
        return "fulfilled" if fulfilment == "fulfilled" else "paid"
    return financial if financial in ("pending", "refunded", "partially_refunded") else "paid"


def import_shopify_orders(csv_path: str, db_path: str) -> dict:
    """Insert the export's contacts, orders and lines into an empty migrated database, and
    fill the contacts' order aggregates; return the counts."""
    connection = connect(db_path)
    now = datetime.now(timezone.utc).strftime(TIME_FORMAT)
    contact_ids: dict[str, int] = {}
    next_contact = (connection.execute("SELECT coalesce(max(id), 0) FROM contacts").fetchone()[0]) + 1
    next_order = (connection.execute("SELECT coalesce(max(id), 0) FROM orders").fetchone()[0]) + 1
    contacts, orders, lines = [], [], []
    counts = {"contacts": 0, "orders": 0, "order_lines": 0, "rejected_rows": 0}

    def flush():
        connection.executemany(
            "INSERT INTO contacts (id, email, email_display, first_name, last_name, phone, city, country, source, "
            "consent, do_not_contact, created_at, updated_at, stage, stage_reason, stage_pinned, lead_score, "
            "score_breakdown, order_count, total_spent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'shopify', ?, 0, ?, ?, "
            "'awareness', '', 0, 0, '[]', 0, 0)", contacts)
        connection.executemany(
            "INSERT INTO orders (id, contact_id, source, external_id, number, placed_at, status, currency, subtotal, "
            "discount, shipping, tax, total, refunded, created_at, updated_at) "
            "VALUES (?, ?, 'shopify', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", orders)
        connection.executemany(
            "INSERT INTO order_lines (order_id, sku, name, quantity, unit_price) VALUES (?, ?, ?, ?, ?)", lines)
        counts["contacts"] += len(contacts)
        counts["orders"] += len(orders)
        counts["order_lines"] += len(lines)
        contacts.clear()
        orders.clear()
        lines.clear()

    connection.execute("BEGIN IMMEDIATE")
    with open(csv_path, newline="", encoding="utf-8") as source:
        reader = csv.reader(source)
        column = {name: i for i, name in enumerate(next(reader))}
        name_col, email_col, qty_col, title_col, price_col, sku_col = (
            column[c] for c in ("Name", "Email", "Lineitem quantity", "Lineitem name", "Lineitem price", "Lineitem sku"))
        current, order_id = None, None
        for row in reader:
            try:
                if row[name_col] != current:
                    current, order_id = row[name_col], None
                    email = row[email_col].strip().lower()
                    if "@" not in email:
                        raise ValueError("no email")
                    placed = _utc(row[column["Created at"]])
                    order = [row[column["Id"]], current, placed,
                             _status(row[column["Financial Status"]], row[column["Fulfillment Status"]],
                                     row[column["Cancelled at"]]),
                             row[column["Currency"]] or "EUR", _amount(row[column["Subtotal"]]),
                             _amount(row[column["Discount Amount"]]), _amount(row[column["Shipping"]]),
                             _amount(row[column["Taxes"]]), _amount(row[column["Total"]]),
                             _amount(row[column["Refunded Amount"]]), now, now]
                    contact_id = contact_ids.get(email)
                    if contact_id is None:
                        contact_id = contact_ids[email] = next_contact
                        next_contact += 1
                        first, _, last = row[column["Billing Name"]].partition(" ")
                        contacts.append((contact_id, email, row[email_col].strip(), first, last,
                                         row[column["Billing Phone"]].replace(" ", "") or None,
                                         row[column["Billing City"]] or None, row[column["Billing Country"]] or None,
                                         row[column["Accepts Marketing"]] == "yes", placed, now))
                    order_id = next_order
                    next_order += 1
                    orders.append((order_id, contact_id, *order))
                if order_id is None:
                    raise ValueError("a line of a rejected order")
                lines.append((order_id, row[sku_col] or None, row[title_col], int(row[qty_col] or 1),
                              _amount(row[price_col])))
            except (ValueError, KeyError):
                counts["rejected_rows"] += 1
                continue
            if len(orders) >= BATCH:
                flush()
        flush()
    connection.execute(
        "UPDATE contacts SET (order_count, total_spent, first_order_at, last_order_at) = "
        "(SELECT count(*), coalesce(sum(total - refunded), 0), min(placed_at), max(placed_at) FROM orders "
        f"WHERE orders.contact_id = contacts.id AND status IN {PAID}) WHERE source = 'shopify'")
    connection.execute("COMMIT")
    connection.close()
    return counts


def import_generic_orders(csv_path: str, db_path: str) -> dict:
    """Insert a generic orders CSV's contacts (by normalised email) and orders into an empty migrated
    database, remember each customer id, and fill the contacts' order aggregates; return the counts."""
    connection = connect(db_path)
    now = datetime.now(timezone.utc).strftime(TIME_FORMAT)
    contact_ids: dict[str, int] = {}
    next_contact = (connection.execute("SELECT coalesce(max(id), 0) FROM contacts").fetchone()[0]) + 1
    contacts, links, orders = [], [], []
    counts = {"contacts": 0, "orders": 0, "rejected_rows": 0}

    def flush():
        connection.executemany(
            "INSERT INTO contacts (id, email, email_display, first_name, last_name, phone, source, consent, "
            "do_not_contact, created_at, updated_at, stage, stage_reason, stage_pinned, lead_score, score_breakdown, "
            "order_count, total_spent) VALUES (?, ?, ?, ?, ?, ?, 'import', 0, 0, ?, ?, 'awareness', '', 0, 0, '[]', "
            "0, 0)", contacts)
        connection.executemany(
            "INSERT INTO contact_external_ids (source, external_id, contact_id) VALUES ('import', ?, ?)", links)
        connection.executemany(
            "INSERT INTO orders (contact_id, source, external_id, number, placed_at, status, currency, subtotal, "
            "discount, shipping, tax, total, refunded, created_at, updated_at) "
            "VALUES (?, 'import', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", orders)
        counts["contacts"] += len(contacts)
        counts["orders"] += len(orders)
        contacts.clear()
        links.clear()
        orders.clear()

    connection.execute("BEGIN IMMEDIATE")
    with open(csv_path, newline="", encoding="utf-8") as source:
        reader = csv.reader(source)
        column = {name: i for i, name in enumerate(next(reader))}
        get = [column[c] for c in ("order_id", "customer_id", "email", "first_name", "last_name", "phone",
                                   "placed_at", "status", "currency", "subtotal", "discount", "shipping", "tax",
                                   "total", "number")]
        for row in reader:
            try:
                (order_id, customer_id, email_display, first, last, phone, placed, status, currency, subtotal,
                 discount, shipping, tax, total, number) = (row[i] for i in get)
                email = email_display.strip().lower()
                if "@" not in email:
                    raise ValueError("no email")
                if len(placed) != 20 or placed[10] != "T" or placed[19] != "Z":
                    raise ValueError("not a UTC timestamp")
                placed = f"{placed[:10]} {placed[11:19]}.000000"  # as TIME_FORMAT stores it
                contact_id = contact_ids.get(email)
                if contact_id is None:
                    contact_id = contact_ids[email] = next_contact
                    next_contact += 1
                    contacts.append((contact_id, email, email_display.strip(), first, last, phone.replace(" ", "") or None,
                                     now, now))
                    links.append((customer_id, contact_id))
                total = _amount(total)
                orders.append((contact_id, order_id, number or order_id, placed, status, currency or "EUR",
                               _amount(subtotal), _amount(discount), _amount(shipping), _amount(tax), total,
                               total if status == "refunded" else "0.00", now, now))
            except (ValueError, KeyError):
                counts["rejected_rows"] += 1
                continue
            if len(orders) >= BATCH:
                flush()
        flush()
    connection.execute(
        "UPDATE contacts SET (order_count, total_spent, first_order_at, last_order_at) = "
        "(SELECT count(*), coalesce(sum(total - refunded), 0), min(placed_at), max(placed_at) FROM orders "
        f"WHERE orders.contact_id = contacts.id AND status IN {PAID}) WHERE source = 'import'")
    connection.execute("COMMIT")
    connection.close()
    return counts


def refresh(db_path: str) -> dict:
    """Read every contact's order and interaction facts in two grouped queries and write
    them back, one UPDATE per contact: what any bulk re-derivation must at least read and write."""
    connection = connect(db_path)
    facts = {contact_id: [0, 0.0, None, None] for (contact_id,) in connection.execute("SELECT id FROM contacts")}
    for contact_id, count, spent, last in connection.execute(
            "SELECT contact_id, count(*), sum(total - refunded), max(placed_at) FROM orders "
            f"WHERE status IN {PAID} GROUP BY contact_id"):
        facts[contact_id][:3] = [count, round(spent or 0, 2), last]
    for contact_id, last in connection.execute(
            "SELECT contact_id, max(occurred_at) FROM interactions GROUP BY contact_id"):
        facts[contact_id][3] = last
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany(
        "UPDATE contacts SET order_count = ?, total_spent = ?, last_order_at = ?, last_interaction_at = ? WHERE id = ?",
        ((*values, contact_id) for contact_id, values in facts.items()))
    connection.execute("COMMIT")
    connection.close()
    return {"contacts": len(facts)}


# BG/NBD parameters of the CDNOW sample (Fader, Hardie & Lee 2005), in weeks: the floor
# evaluates the model for everyone but does not fit it.
BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


def predict(db_path: str, now: str) -> dict:
    """Read every customer's frequency, recency and age in one grouped query, evaluate
    P(alive) with fixed BG/NBD parameters in numpy, and write it back."""
    import numpy as np  # only this floor needs it; the others start faster without

    connection = connect(db_path)
    rows = connection.execute(
        "SELECT contact_id, count(*) - 1, julianday(max(placed_at)) - julianday(min(placed_at)), "
        f"julianday(?) - julianday(min(placed_at)) FROM orders WHERE status IN {PAID} GROUP BY contact_id",
        (now,)).fetchall()
    if not rows:
        return {"customers": 0}
    ids = [row[0] for row in rows]
    x, t_x, t = (np.array([row[i] for row in rows], dtype=float) / (1 if i == 1 else 7) for i in (1, 2, 3))
    r, alpha, a, b = BGNBD["r"], BGNBD["alpha"], BGNBD["a"], BGNBD["b"]
    ratio = np.where(x > 0, (a / (b + x - 1)) * ((alpha + t) / (alpha + t_x)) ** (r + x), 0.0)
    p_alive = 1.0 / (1.0 + ratio)
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany("UPDATE contacts SET p_alive = ? WHERE id = ?", zip(p_alive.tolist(), ids))
    connection.execute("COMMIT")
    connection.close()
    return {"customers": len(ids)}


def model_check(db_path: str, now: str) -> dict:
    """The holdout check's least work: one read of every paid purchase day per customer up to
    `now`, frequency, recency and age at the cut-off (the last quarter of the history held out)
    in numpy, one unpenalised BG/NBD maximum-likelihood fit (scipy, the paper's log-likelihood)
    and every customer's expected purchases in the holdout against the actual ones. No
    Gamma-Gamma fit, no weekly tracking curve, nothing written."""
    import numpy as np
    from scipy.optimize import minimize
    from scipy.special import gammaln, hyp2f1

    connection = connect(db_path)
    rows = np.array(connection.execute(
        "SELECT DISTINCT contact_id, CAST(julianday(placed_at) + 0.5 AS INTEGER) FROM orders "
        f"WHERE status IN {PAID} AND placed_at <= ? ORDER BY 1, 2", (now,)).fetchall(), dtype=np.int64)
    connection.close()
    if not len(rows):
        return {"customers": 0}
    ids, days = rows[:, 0], rows[:, 1]
    end = int(datetime.strptime(now, TIME_FORMAT).replace(tzinfo=timezone.utc).timestamp() // 86400) + 2440588
    weeks = max(1, round((end - days.min()) / 28))
    cutoff = end - weeks * 7
    calibration = days <= cutoff
    cid, cday = ids[calibration], days[calibration]
    customers, first_at, counts = np.unique(cid, return_index=True, return_counts=True)
    last_at = np.r_[first_at[1:], len(cid)] - 1
    x = (counts - 1).astype(float)
    t_x = (cday[last_at] - cday[first_at]) / 7.0
    big_t = (cutoff - cday[first_at]) / 7.0

    def negative_ll(log_params):
        r, alpha, a, b = np.exp(log_params)
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
        a3 = -(r + x) * np.log(alpha + big_t)
        a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + t_x), -np.inf)
        return -np.sum(a1 + a2 + np.logaddexp(a3, a4))

    fit = minimize(negative_ll, np.zeros(4), method="L-BFGS-B", bounds=[(-10, 10)] * 4)
    r, alpha, a, b = np.exp(fit.x)
    horizon = float(weeks)
    z = horizon / (alpha + big_t + horizon)
    expected = ((a + b + x - 1) / (a - 1) * (1 - ((alpha + big_t) / (alpha + big_t + horizon)) ** (r + x)
                                             * hyp2f1(r + x, b + x, a + b + x - 1, z))
                / (1 + (x > 0) * (a / np.maximum(b + x - 1, 1e-12)) * ((alpha + big_t) / (alpha + t_x)) ** (r + x)))
    held = ~calibration & np.isin(ids, customers)
    actual = np.bincount(np.searchsorted(customers, ids[held]), minlength=len(customers))
    return {"customers": int(len(customers)), "holdout_weeks": weeks, "converged": bool(fit.success),
            "predicted": float(np.nansum(expected)), "actual": int(actual.sum()),
            "mean_absolute_error": float(np.nanmean(np.abs(expected - actual)))}


def main(argv: list[str]) -> None:
    name, *args = argv
    jobs = {"import": import_shopify_orders, "import-orders": import_generic_orders, "refresh": refresh, "predict": predict,
            "model_check": model_check}
    print(json.dumps(jobs[name](*args)))


if __name__ == "__main__":
    main(sys.argv[1:])
