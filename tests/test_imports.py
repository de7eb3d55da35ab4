"""Imports: every format from the shop's files, exactly once, with every rejected row explained."""
from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm.extensions import db
from crm.models import (
    AuditEntry,
    Contact,
    ContactExternalId,
    ErasedEmail,
    ImportRun,
    Order,
    OrderLine,
    Tag,
)
from crm.services.orders import recording as order_service
from crm.services.orders.importing import run as importing
from crm.services.trust import privacy
from tests.helpers import FIXTURES, summary_lines


SHOPIFY_ORDERS = FIXTURES / "shopify" / "orders_export.csv"
SHOPIFY_CUSTOMERS = FIXTURES / "shopify" / "customers_export.csv"
SHOPIFY_CUSTOMERS_OLDER = FIXTURES / "shopify" / "customers_export_older.csv"
WOO_ORDER = FIXTURES / "woocommerce" / "order.created.json"
WOO_CUSTOMER = FIXTURES / "woocommerce" / "customer.created.json"



def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def contact_by_email(email):
    return db.session.scalar(select(Contact).where(Contact.email == email))


def run_file(kind, path, **options):
    return importing.run_import(kind, path, Path(path).name, **options)


# -- Shopify orders ------------------------------------------------------------------------------

def test_shopify_orders_go_in_and_the_malformed_one_is_rejected_with_its_line(app):
    run = run_file("shopify-orders", SHOPIFY_ORDERS)
    assert run.status == "finished" and not run.dry_run
    assert run.counts == {"read": 4, "orders_created": 3, "orders_updated": 0, "orders_unchanged": 0,
                          "contacts_created": 2, "contacts_updated": 0, "contacts_unchanged": 0, "rejected": 1,
                          "tasks_created": run.counts["tasks_created"], "tasks_passed": run.counts["tasks_passed"],
                          "tasks_passed_by": run.counts["tasks_passed_by"]}
    assert sorted(db.session.scalars(select(Order.number))) == ["#1001", "#1002", "#1003"]
    (rejection,) = run.rejections
    assert rejection.line == 8
    assert "Total: 'ten euros' is not an amount" in rejection.reason and "not-an-email" in rejection.reason
    assert rejection.raw["rows"][0]["Name"] == "#1004"
    # #1001 and #1003 are Lotte's (her email written two ways); #1002 was refunded, so it does not count.
    anna = contact_by_email("lotte.van.dam@example.nl")
    assert (anna.order_count, anna.total_spent) == (2, Decimal("124.95"))
    assert contact_by_email("sven@example.se").order_count == 0
    assert count(OrderLine) == 6
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "import"))
    assert audit.entity_id == run.id and audit.after["orders_created"] == 3


def test_importing_the_same_file_again_changes_nothing(app):
    run_file("shopify-orders", SHOPIFY_ORDERS)
    before = (count(Order), count(OrderLine), count(Contact))
    again = run_file("shopify-orders", SHOPIFY_ORDERS)
    assert (again.counts["orders_created"], again.counts["orders_updated"], again.counts["orders_unchanged"]) == (0, 0, 3)
    assert again.counts["contacts_created"] == 0 and again.counts["rejected"] == 1
    assert (count(Order), count(OrderLine), count(Contact)) == before


def test_a_dry_run_reports_the_counts_and_stores_nothing_but_its_report(app):
    run = run_file("shopify-orders", SHOPIFY_ORDERS, dry_run=True)
    assert run.dry_run and run.status == "finished"
    assert (run.counts["orders_created"], run.counts["contacts_created"], run.counts["rejected"]) == (3, 2, 1)
    assert (count(Order), count(Contact), count(OrderLine)) == (0, 0, 0)
    assert [r.line for r in run.rejections] == [8]
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "import")) is None


def test_a_changed_order_in_a_later_file_is_updated(app, tmp_path):
    run_file("shopify-orders", SHOPIFY_ORDERS)
    changed = tmp_path / "orders.csv"
    changed.write_text(SHOPIFY_ORDERS.read_text().replace("#1003,lotte.van.dam@example.nl,paid,", "#1003,lotte.van.dam@example.nl,refunded,"))
    run = run_file("shopify-orders", changed)
    assert (run.counts["orders_updated"], run.counts["orders_unchanged"]) == (1, 2)
    anna = contact_by_email("lotte.van.dam@example.nl")
    assert (anna.order_count, anna.total_spent) == (1, Decimal("88.95"))


def test_an_erased_customer_is_rejected_with_the_reason(app):
    db.session.add(ErasedEmail(email_hash=privacy.email_hash("sven@example.se")))
    db.session.commit()
    run = run_file("shopify-orders", SHOPIFY_ORDERS)
    reasons = {r.line: r.reason for r in run.rejections}
    assert "erased and is blocked" in reasons[4] and run.counts["orders_created"] == 2
    assert contact_by_email("sven@example.se") is None


def test_text_the_database_cannot_store_is_rejected_not_a_crash(app, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("order_id,email,placed_at,total\n" + "X" * 130 + ",a@example.com,2026-01-02,5\nok-1,b@example.com,2026-01-02,5\n")
    run = run_file("orders", path)
    assert run.counts["orders_created"] == 1
    assert run.rejections[0].reason.startswith("order_id: 130 characters")


# -- Shopify customers ---------------------------------------------------------------------------

def test_shopify_customers_newer_export(app):
    run = run_file("shopify-customers", SHOPIFY_CUSTOMERS)
    assert (run.counts["contacts_created"], run.counts["rejected"]) == (4, 0)
    anna = contact_by_email("lotte.van.dam@example.nl")
    assert [t.name for t in anna.tags] == ["newsletter", "vip"]
    assert (anna.city, anna.country, anna.consent, anna.phone) == ("Amsterdam", "NL", True, "+31205550101")
    chloe = contact_by_email("eloise.giraud@example.fr")
    assert chloe.email_display == "ELOISE.GIRAUD@example.fr"
    no_email = db.session.scalar(select(Contact).join(ContactExternalId).where(ContactExternalId.external_id == "7001234567893"))
    assert no_email.email is None and no_email.first_name == "No"
    again = run_file("shopify-customers", SHOPIFY_CUSTOMERS)
    assert (again.counts["contacts_created"], again.counts["contacts_updated"], again.counts["contacts_unchanged"]) == (0, 0, 4)
    assert count(Contact) == 4 and count(Tag) == 3


def test_shopify_customers_older_export(app):
    run = run_file("shopify-customers", SHOPIFY_CUSTOMERS_OLDER)
    assert run.counts["contacts_created"] == 2
    dirk = contact_by_email("wout.peeters@example.be")
    assert (dirk.country, dirk.city, dirk.phone) == ("BE", "Antwerpen", "+3235550103")


def test_customers_then_orders_match_the_same_contacts(app):
    run_file("shopify-customers", SHOPIFY_CUSTOMERS)
    run = run_file("shopify-orders", SHOPIFY_ORDERS)
    assert run.counts["contacts_created"] == 0 and count(Contact) == 4
    assert contact_by_email("lotte.van.dam@example.nl").order_count == 2


def test_a_known_contact_learns_blank_fields_tags_and_the_shop_id(app):
    from crm.services.people import contacts

    contacts.create_contact({"email": "Lotte.van.Dam@example.nl", "first_name": "Lotte"})
    db.session.commit()
    run = run_file("shopify-customers", SHOPIFY_CUSTOMERS)
    assert (run.counts["contacts_created"], run.counts["contacts_updated"]) == (3, 1)
    anna = contact_by_email("lotte.van.dam@example.nl")
    assert anna.city == "Amsterdam" and [t.name for t in anna.tags] == ["newsletter", "vip"]
    assert [(e.source, e.external_id) for e in anna.external_ids] == [("shopify", "7001234567890")]


def test_a_customer_without_email_or_id_is_rejected_so_a_rerun_cannot_duplicate_it(app, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text("First Name,Last Name,Email\nNo,Body,\nJana,Dvořák,eva@example.cz\n")
    run = run_file("shopify-customers", path)
    assert run.counts["contacts_created"] == 1
    assert run.rejections[0].line == 2 and "no email and no customer id" in run.rejections[0].reason


# -- WooCommerce ---------------------------------------------------------------------------------

def test_woocommerce_order_and_customer_json(app):
    run = run_file("woocommerce-orders", WOO_ORDER)
    assert (run.counts["orders_created"], run.counts["contacts_created"]) == (1, 1)
    order = db.session.scalar(select(Order))
    assert (order.source, order.external_id, order.status, order.total) == ("woocommerce", "727", "paid", Decimal("47.13"))
    customers = run_file("woocommerce-customers", WOO_CUSTOMER)
    assert customers.counts["contacts_created"] == 0 and count(Contact) == 1
    femke = contact_by_email("roos.meijer@example.nl")
    assert [(e.source, e.external_id) for e in femke.external_ids] == [("woocommerce", "26")]


def test_woocommerce_ndjson_of_several_orders(app, tmp_path):
    base = json.loads(WOO_ORDER.read_text())
    lines = []
    for n in range(3):
        lines.append(json.dumps({**base, "id": 800 + n, "number": str(800 + n)}))
    lines.append("{not json")
    path = tmp_path / "orders.ndjson"
    path.write_text("\n".join(lines) + "\n")
    run = run_file("woocommerce-orders", path)
    assert (run.counts["orders_created"], run.counts["rejected"]) == (3, 1)
    assert run.rejections[0].line == 4 and "invalid JSON" in run.rejections[0].reason


# -- any orders file -----------------------------------------------------------------------------

GENERIC_ROWS = [
    {"Ref": "A-1", "Buyer": "ines@example.pt", "Date": "2026-02-01 10:00", "Amount": "19.90", "Cur": "EUR", "State": "completed"},
    {"Ref": "A-2", "Buyer": "ines@example.pt", "Date": "2026-03-01", "Amount": "1.234,50", "Cur": "EUR", "State": ""},
    {"Ref": "A-3", "Buyer": "nope", "Date": "yesterday", "Amount": "12", "Cur": "EUR", "State": "paid"},
]
MAPPING = {"Ref": "order_id", "Buyer": "email", "Date": "placed_at", "Amount": "total", "Cur": "currency", "State": "status"}


def write_generic(path: Path, fmt: str) -> Path:
    if fmt in ("csv", "tsv"):
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(GENERIC_ROWS[0]), delimiter="," if fmt == "csv" else "\t")
            writer.writeheader()
            writer.writerows(GENERIC_ROWS)
    elif fmt == "json":
        path.write_text(json.dumps(GENERIC_ROWS, indent=2))
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in GENERIC_ROWS))
    return path


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "ndjson"])
def test_any_orders_file_with_a_column_mapping(app, tmp_path, fmt):
    path = write_generic(tmp_path / f"etsy.{fmt}", fmt)
    run = run_file("orders", path, mapping=MAPPING, source="etsy")
    assert (run.counts["orders_created"], run.counts["contacts_created"], run.counts["rejected"]) == (2, 1, 1)
    rejection = run.rejections[0]
    assert rejection.line == (4 if fmt in ("csv", "tsv") else 3)
    assert "placed_at" in rejection.reason and "email" in rejection.reason
    totals = dict(db.session.execute(select(Order.external_id, Order.total).where(Order.source == "etsy")).all())
    assert totals == {"A-1": Decimal("19.90"), "A-2": Decimal("1234.50")}
    assert db.session.scalar(select(Order.status).where(Order.external_id == "A-1")) == "fulfilled"


def test_an_unknown_mapping_field_is_refused_before_anything_is_stored(app, tmp_path):
    path = write_generic(tmp_path / "etsy.csv", "csv")
    with pytest.raises(importing.ImportRefused, match="unknown field"):
        run_file("orders", path, mapping={"Ref": "order_number"})
    assert count(ImportRun) == 0


def test_a_file_of_the_wrong_kind_fails_with_the_missing_columns(app):
    run = run_file("shopify-orders", SHOPIFY_CUSTOMERS)
    assert run.status == "failed" and "missing column" in run.error
    assert count(Order) == 0


def test_a_crash_midway_leaves_a_state_that_a_rerun_completes(app, tmp_path, monkeypatch):
    rows = "".join(f"O-{n},c{n % 7}@example.com,2026-01-{1 + n % 28:02d},{10 + n}\n" for n in range(25))
    path = tmp_path / "orders.csv"
    path.write_text("order_id,email,placed_at,total\n" + rows)
    real = order_service.record_orders
    calls = []

    def failing(records, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(records, **kwargs)

    monkeypatch.setattr(order_service, "record_orders", failing)
    with pytest.raises(RuntimeError):
        run_file("orders", path, batch_size=10)
    crashed = db.session.scalar(select(ImportRun))
    assert crashed.status == "failed" and "disk full" in crashed.error
    assert count(Order) == 10  # the first batch is committed, with its contacts' totals
    assert db.session.scalar(select(func.sum(Contact.order_count))) == 10
    monkeypatch.setattr(order_service, "record_orders", real)
    rerun = run_file("orders", path, batch_size=10)
    assert (rerun.counts["orders_created"], rerun.counts["orders_unchanged"]) == (15, 10)
    assert count(Order) == 25 and count(Contact) == 7
    assert db.session.scalar(select(func.sum(Contact.order_count))) == 25


def test_progress_is_reported_in_bytes(app):
    seen = []
    run_file("shopify-orders", SHOPIFY_ORDERS, progress=seen.append, batch_size=1)
    assert seen and seen[-1] == SHOPIFY_ORDERS.stat().st_size


def test_rejected_rows_as_csv_neutralise_formulas(app, tmp_path):
    from crm.services.shared.csv_safe import csv_text

    path = tmp_path / "orders.csv"
    path.write_text("order_id,email,placed_at,total\n=cmd(),-x@example.com,2026-01-01,=1+1\n")
    run = run_file("orders", path)
    rows = list(csv.reader(io.StringIO(csv_text(importing.rejection_rows(run.id), importing.REJECTION_COLUMNS))))
    assert rows[0] == ["line", "reason", "row"]
    assert rows[1][0] == "2" and rows[1][2].startswith("{") and "=cmd()" in rows[1][2]
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in rows[1])


# -- the command line ----------------------------------------------------------------------------

def test_crm_import_prints_a_summary_and_the_first_rejected_lines(runner, tmp_path):
    out = tmp_path / "rejected.csv"
    result = runner.invoke(args=["import", "shopify-orders", str(SHOPIFY_ORDERS), "--rejected-csv", str(out)])
    assert result.exit_code == 0, result.output
    assert "orders: 3 created, 0 updated, 0 unchanged" in result.output
    assert "contacts: 2 created" in result.output and "1 row rejected" in result.output
    assert "line 8: Total: 'ten euros' is not an amount" in result.output
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["line", "reason", "row"] and rows[1][0] == "8"


def test_crm_import_with_map_source_and_dry_run(runner, tmp_path):
    path = write_generic(tmp_path / "etsy.tsv", "tsv")
    args = ["import", "orders", str(path), "--source", "etsy", "--dry-run"]
    args += [arg for column, name in MAPPING.items() for arg in ("--map", f"{column}={name}")]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    assert "Dry run" in result.output and "orders: 2 created" in result.output
    assert count(Order) == 0


def test_crm_import_fails_for_an_unreadable_file(runner, tmp_path):
    binary = tmp_path / "orders.csv"
    binary.write_bytes(b"PK\x03\x04\x00\x00 spreadsheet")
    result = runner.invoke(args=["import", "orders", str(binary)])
    assert result.exit_code == 1 and "spreadsheet" in result.output
    missing = runner.invoke(args=["import", "orders", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2
    wrong = runner.invoke(args=["import", "shopify-orders", str(SHOPIFY_CUSTOMERS)])
    assert wrong.exit_code == 1 and "could not be read" in wrong.output
    bad_map = runner.invoke(args=["import", "orders", str(SHOPIFY_ORDERS), "--map", "Name"])
    assert bad_map.exit_code == 1 and "FILECOL=field" in bad_map.output


def test_orders_in_another_currency_are_named_in_the_summary_and_on_the_run_page(app, tmp_path, client, auth):
    path = tmp_path / "usd.csv"
    path.write_text("order_id,email,placed_at,total,currency\n"
                    "U1,ada@example.com,2026-01-05,30.00,USD\nU2,bob@example.com,2026-01-06,12.50,USD\n"
                    "E1,cy@example.com,2026-01-07,9.00,EUR\n")
    run = run_file("orders", path)
    assert run.counts["currencies"] == {"EUR": 1, "USD": 2}
    warning = summary_lines(run)[-1]
    assert warning.startswith("Currency: 2 in USD — not the shop's currency (EUR).")
    assert "without converting" in warning and "SHOP_CURRENCY" not in warning  # some orders are in EUR
    auth.as_role("viewer")
    page = client.get(f"/imports/{run.id}").get_data(as_text=True)
    assert "2 in USD — not the shop&#39;s currency (EUR)" in page or "2 in USD — not the shop's currency (EUR)" in page
    # Each order keeps its own currency and sign.
    order = db.session.scalar(select(Order).where(Order.external_id == "U1"))
    assert order.currency == "USD"
    assert "$30.00" in client.get(f"/orders/{order.id}").get_data(as_text=True)


def test_a_file_all_in_another_currency_suggests_the_shop_currency(app, tmp_path):
    path = tmp_path / "gbp.csv"
    path.write_text("order_id,email,placed_at,total,currency\nG1,ada@example.com,2026-01-05,30.00,GBP\n")
    warning = summary_lines(run_file("orders", path))[-1]
    assert warning.endswith("If the whole shop sells in GBP, change the currency to GBP on Settings → Shop so totals are shown with the right sign.")


def test_a_file_in_the_shop_currency_says_nothing_about_currency(app, tmp_path):
    path = tmp_path / "eur.csv"
    path.write_text("order_id,email,placed_at,total,currency\nE1,ada@example.com,2026-01-05,30.00,EUR\n")
    run = run_file("orders", path)
    assert "currencies" not in run.counts
    assert not any(line.startswith("Currency") for line in summary_lines(run))
