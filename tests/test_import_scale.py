"""A long Shopify export goes through `crm import` in flat memory (slow: run with -m slow)."""
from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers import ROOT

HEADER = ["Name", "Email", "Financial Status", "Fulfillment Status", "Currency", "Subtotal", "Shipping", "Taxes",
          "Total", "Created at", "Lineitem quantity", "Lineitem name", "Lineitem price", "Lineitem sku",
          "Billing Name", "Id"]
# Runs `crm import`, then prints the process's peak memory (ru_maxrss, KiB on Linux) as its last line.
CHILD = ("import atexit, resource, sys\n"
         "atexit.register(lambda: print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
         "from crm.cli import main\n"
         "main(prog_name='crm')\n")


def write_export(path: Path, lines: int, seed: int = 1) -> int:
    """Write a Shopify-shaped orders export of `lines` lines (header included); return the orders."""
    rnd = random.Random(seed)
    orders = written = 0
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        written = 1
        while written < lines:
            orders += 1
            customer = rnd.randint(1, max(1, lines // 6))
            items = min(rnd.randint(1, 3), lines - written)
            for item in range(items):
                first = item == 0
                writer.writerow([
                    f"#{100000 + orders}", f"customer{customer}@example.com", "paid" if first else "", "",
                    "EUR" if first else "", "25.00" if first else "", "4.95" if first else "", "0.00" if first else "",
                    "29.95" if first else "",
                    f"2025-{1 + orders % 12:02d}-{1 + orders % 28:02d} 10:{orders % 60:02d}:00 +0100" if first else "",
                    str(rnd.randint(1, 4)), f"Tea {item}", "12.50", f"TEA-{item}",
                    f"Customer {customer}" if first else "", str(9_000_000 + orders) if first else "",
                ])
                written += 1
    return orders


def crm_import(database: Path, export: Path) -> tuple[str, int]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "SECRET_KEY": "scale-test"}
    env.pop("TEST_DATABASE_URL", None)
    subprocess.run([sys.executable, "-c", "from crm.cli import main; main(prog_name='crm')", "db", "upgrade"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    done = subprocess.run([sys.executable, "-c", CHILD, "import", "shopify-orders", str(export)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, int(done.stdout.strip().splitlines()[-1].split()[1])


@pytest.mark.slow
def test_a_100000_line_export_imports_in_flat_memory(tmp_path):
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    write_export(small, 10_000)
    orders = write_export(large, 100_000)
    _out, small_rss = crm_import(tmp_path / "small.sqlite3", small)
    output, large_rss = crm_import(tmp_path / "large.sqlite3", large)
    assert f"orders: {orders} created, 0 updated, 0 unchanged" in output
    # Ten times the file, about the same memory: nothing grows with the rows but a set of contact ids.
    assert large_rss < small_rss * 1.3, (small_rss, large_rss)
