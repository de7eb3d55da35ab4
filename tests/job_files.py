"""Shopify orders exports of any size, written by the tests themselves."""
from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone
from pathlib import Path

HEADER = ["Name", "Email", "Financial Status", "Paid at", "Currency", "Subtotal", "Shipping", "Taxes", "Total",
          "Created at", "Lineitem quantity", "Lineitem name", "Lineitem price", "Billing Name", "Id"]


def shopify_orders(path: Path, orders: int, *, bad_every: int = 0, customers: int = 0) -> Path:
    """Write an export of `orders` orders (two line items each), from `customers` customers
    (default: one each); every `bad_every`-th order has a total that is not an amount."""
    start = datetime(2025, 1, 1, 9, tzinfo=timezone.utc)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for n in range(1, orders + 1):
            customer = (n - 1) % customers + 1 if customers else n
            when = (start + timedelta(hours=n)).strftime("%Y-%m-%d %H:%M:%S +0000")
            total = "ten euros" if bad_every and n % bad_every == 0 else "23.00"
            writer.writerow([f"#{1000 + n}", f"buyer{customer}@example.com", "paid", when, "EUR", "20.00", "3.00",
                             "0.00", total, when, "1", "Green tea 100g", "12.00", f"Buyer {customer}",
                             str(5_000_000 + n)])
            writer.writerow([f"#{1000 + n}", f"buyer{customer}@example.com", "", "", "", "", "", "", "", when,
                             "1", "Teapot", "8.00", "", ""])
    return path
