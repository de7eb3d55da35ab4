"""The import readers against the sample files, and their edge cases."""
from __future__ import annotations

import csv
import io
import json
import sys
import time
import tracemalloc
from dataclasses import asdict
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from crm.services.orders.importing import (
    READERS,
    CustomerRecord,
    LineRecord,
    OrderRecord,
    Rejected,
    detect_format,
    is_valid_email,
    normalise_email,
    parse_money,
    parse_shopify_customer_json,
    parse_shopify_order_json,
    parse_timestamp,
    parse_woocommerce_customer,
    parse_woocommerce_order,
    preview,
    read_generic_orders,
    read_shopify_customers,
    read_shopify_orders,
    read_woocommerce_customers,
    read_woocommerce_orders,
    records,
)
from tests.helpers import FIXTURES, ROOT

# Which reader reads each sample file; a new sample file must be added here.
FIXTURE_KINDS = {
    "shopify/orders_export.csv": ("shopify-orders", "csv"),
    "shopify/customers_export.csv": ("shopify-customers", "csv"),
    "shopify/customers_export_older.csv": ("shopify-customers", "csv"),
    "woocommerce/order.created.json": ("woocommerce-orders", "json"),
    "woocommerce/customer.created.json": ("woocommerce-customers", "json"),
}
UTC = timezone.utc


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fixture(name: str) -> Path:
    return FIXTURES / name


def read_bytes(reader, data: bytes, *args, **kwargs) -> list:
    return list(reader(io.BytesIO(data), *args, **kwargs))


def records_of(items, kind=(OrderRecord, CustomerRecord)):
    return [i for i in items if isinstance(i, kind)]


def comparable(record) -> dict:
    """A record's fields without where it came from (line, raw)."""
    data = asdict(record)
    data.pop("line"), data.pop("raw")
    if "customer" in data:
        data["customer"].pop("line"), data["customer"].pop("raw")
    return data


# == sample files ==============================================================================

def test_every_sample_file_is_read():
    # bounces/ holds delivery-status mails for the email tests, not shop files.
    files = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*")
                   if p.is_file() and p.name != "README.md" and p.relative_to(FIXTURES).parts[0] != "bounces")
    assert files, "no sample files"
    assert set(files) <= set(FIXTURE_KINDS), f"sample files without a reader: {set(files) - set(FIXTURE_KINDS)}"
    for name in files:
        kind, fmt = FIXTURE_KINDS[name]
        with open(fixture(name), "rb") as fh:
            items = list(READERS[kind].read(fh, fmt))
        assert items, name
        assert all(isinstance(i, (READERS[kind].record, Rejected)) for i in items), name


@pytest.fixture(scope="module")
def shopify_orders():
    with open(fixture("shopify/orders_export.csv"), "rb") as fh:
        items = list(read_shopify_orders(fh))
        assert not fh.closed, "the caller's file must stay open"
    return items


def test_shopify_orders_counts_and_lines(shopify_orders):
    assert [type(i).__name__ for i in shopify_orders] == ["OrderRecord"] * 3 + ["Rejected"]
    assert [i.line for i in shopify_orders] == [2, 4, 5, 8]
    assert [i.number for i in shopify_orders[:3]] == ["#1001", "#1002", "#1003"]


def test_shopify_order_1001(shopify_orders):
    order = shopify_orders[0]
    assert order.source == "shopify"
    assert order.external_id == "5512340001"  # the Id column
    assert order.placed_at == utc(2026, 3, 2, 9, 15, 9)  # "2026-03-02 10:15:09 +0100"
    assert order.status == "fulfilled"  # paid, and Fulfillment Status "fulfilled"
    assert order.currency == "EUR"
    assert (order.subtotal, order.shipping, order.tax, order.total, order.discount, order.refunded) == (
        Decimal("84.00"), Decimal("4.95"), Decimal("15.44"), Decimal("88.95"), Decimal("0.00"), Decimal("0.00"))
    assert str(order.total) == "88.95" and isinstance(order.total, Decimal)
    assert order.lines == [
        LineRecord("TEA-AS-100", "Assam Golden Tips 100g", 2, Decimal("18.00")),
        LineRecord("POT-SW-GRN", "Stoneware Teapot - Green", 1, Decimal("48.00")),
    ]
    assert sum(l.quantity * l.unit_price for l in order.lines) == order.subtotal
    assert isinstance(order.raw, list) and [r["Lineitem sku"] for r in order.raw] == ["TEA-AS-100", "POT-SW-GRN"]
    c = order.customer
    assert (c.email, c.email_display) == ("lotte.van.dam@example.nl", "Lotte.van.Dam@example.nl")
    assert (c.first_name, c.last_name) == ("Lotte", "van Dam")
    assert (c.phone, c.city, c.country, c.consent) == ("+31 20 555 0101", "Amsterdam", "NL", True)
    assert c.address == "Keizersgracht 45, 1015 CJ"
    assert c.tags == []  # the order's tags are not the customer's
    assert c.external_id is None  # the orders export has no customer id


def test_shopify_same_customer_different_email_case(shopify_orders):
    first, _, third = shopify_orders[:3]
    assert first.customer.email == third.customer.email == "lotte.van.dam@example.nl"
    assert first.customer.email_display != third.customer.email_display


def test_shopify_order_1002_refunded_and_cancelled(shopify_orders):
    order = shopify_orders[1]
    # Refunded and cancelled: "refunded" wins over "cancelled" because money went back.
    assert order.status == "refunded"
    assert order.refunded == order.total == Decimal("26.55")
    assert order.discount == Decimal("2.40")
    assert order.customer.first_name == "Sven" and order.customer.last_name == "Ångström"
    assert order.customer.consent is False and order.customer.phone is None


def test_shopify_order_1003_three_lines(shopify_orders):
    order = shopify_orders[2]
    assert order.status == "paid"
    assert [(l.sku, l.name, l.quantity, l.unit_price) for l in order.lines] == [
        ("TEA-AS-100", "Assam Golden Tips 100g", 3, Decimal("12.00")),
        ("ACC-WSK", "Bamboo Whisk", 1, Decimal("0.00")),
        (None, "Gift box", 1, Decimal("0.00")),
    ]


def test_shopify_order_1004_rejected_with_line_and_reason(shopify_orders):
    rejected = shopify_orders[3]
    assert rejected.line == 8
    assert "Email" in rejected.reason and "not-an-email" in rejected.reason
    assert "Total" in rejected.reason and "ten euros" in rejected.reason
    assert rejected.raw["rows"][0]["Name"] == "#1004"


def test_shopify_orders_from_path_text_and_lf_give_the_same():
    path = fixture("shopify/orders_export.csv")
    from_path = list(read_shopify_orders(path))
    with open(path, encoding="utf-8", newline="") as fh:
        from_text = list(read_shopify_orders(fh))
    lf = path.read_bytes().replace(b"\r\n", b"\n")
    from_lf = read_bytes(read_shopify_orders, lf)
    bom = read_bytes(read_shopify_orders, b"\xef\xbb\xbf" + lf)
    assert from_path == from_text == from_lf == bom


SHOPIFY_HEADER = ("Name,Email,Financial Status,Fulfillment Status,Currency,Subtotal,Shipping,Taxes,"
                  "Total,Discount Amount,Created at,Lineitem quantity,Lineitem name,Lineitem price,"
                  "Lineitem sku,Billing Name,Cancelled at,Refunded Amount,Id\n")


def shopify_csv(*rows: str) -> bytes:
    return (SHOPIFY_HEADER + "".join(r + "\n" for r in rows)).encode()


@pytest.mark.parametrize("financial, fulfillment, cancelled, expected", [
    ("paid", "", "", "paid"),
    ("paid", "fulfilled", "", "fulfilled"),
    ("paid", "partial", "", "paid"),
    ("pending", "", "", "pending"),
    ("authorized", "", "", "paid"),  # card reserved, charged at fulfilment: secured
    ("authorized", "fulfilled", "", "fulfilled"),
    ("partially_paid", "", "", "pending"),
    ("refunded", "", "", "refunded"),
    ("partially_refunded", "", "", "partially_refunded"),
    ("voided", "", "", "cancelled"),
    ("expired", "", "", "cancelled"),
    ("paid", "", "2026-01-02 10:00:00 +0100", "cancelled"),
    ("pending", "", "2026-01-02 10:00:00 +0100", "cancelled"),
    ("refunded", "", "2026-01-02 10:00:00 +0100", "refunded"),
    ("partially_refunded", "", "2026-01-02 10:00:00 +0100", "partially_refunded"),
    ("Partially Refunded", "", "", "partially_refunded"),
])
def test_shopify_status_mapping(financial, fulfillment, cancelled, expected):
    data = shopify_csv(f"#1,a@example.com,{financial},{fulfillment},EUR,10,0,0,10,0,2026-01-01,1,X,10,S,"
                       f"Ann Lee,{cancelled},,")
    [order] = read_bytes(read_shopify_orders, data)
    assert order.status == expected
    assert order.refunded == (Decimal(10) if expected == "refunded" else Decimal("0.00"))


@pytest.mark.parametrize("cells, words", [
    ("#1,a@example.com,bogus,,EUR,10,0,0,10,0,2026-01-01,1,X,10,S,Ann,,,", ["Financial Status", "bogus"]),
    ("#1,a@example.com,,,EUR,10,0,0,10,0,2026-01-01,1,X,10,S,Ann,,,", ["Financial Status", "missing"]),
    ("#1,a@example.com,paid,,EUR,10,0,0,10,0,yesterday,1,X,10,S,Ann,,,", ["Created at", "yesterday"]),
    ("#1,a@example.com,paid,,EUR,10,0,0,,0,2026-01-01,1,X,10,S,Ann,,,", ["Total", "missing"]),
    ("#1,a@example.com,paid,,EURO,10,0,0,10,0,2026-01-01,1,X,10,S,Ann,,,", ["Currency", "EURO"]),
    ("#1,a@example.com,paid,,EUR,10,0,0,10,0,2026-01-01,two,X,10,S,Ann,,,", ["Lineitem quantity", "line 2"]),
    ("#1,a@example.com,paid,,EUR,10,0,0,10,0,2026-01-01,1,X,ten,S,Ann,,,", ["Lineitem price", "ten"]),
    ("#1,,paid,,EUR,10,0,0,10,0,2026-01-01,1,X,10,S,,,,", ["no email, name or phone"]),
    (",a@example.com,paid,,EUR,10,0,0,10,0,2026-01-01,1,X,10,S,Ann,,,", ["Name", "missing"]),
])
def test_shopify_bad_orders_are_rejected_with_a_reason(cells, words):
    good = "#2,b@example.com,paid,,EUR,5,0,0,5,0,2026-01-01,1,Y,5,T,Bo Ek,,,"
    items = read_bytes(read_shopify_orders, shopify_csv(cells, good))
    assert [type(i) for i in items] == [Rejected, OrderRecord]
    assert items[0].line == 2 and items[1].line == 3
    for word in words:
        assert word in items[0].reason


def test_shopify_groups_are_consecutive_rows_and_order_fields_come_from_any_row():
    data = shopify_csv(
        "#1,,,,,,,,,,,1,A,1.00,A1,,,,",  # order-level fields only on the second row
        "#1,a@example.com,paid,,EUR,3,0,0,3,0,2026-01-01,2,B,1.00,B1,Ann Lee,,,11",
        "#2,b@example.com,paid,,EUR,1,0,0,1,0,2026-01-01,1,C,1.00,C1,Bo Ek,,,12",
        "#1,a@example.com,paid,,EUR,1,0,0,1,0,2026-01-02,1,D,1.00,D1,Ann Lee,,,11",
    )
    items = read_bytes(read_shopify_orders, data)
    assert [(i.number, i.line, len(i.lines)) for i in items] == [("#1", 2, 2), ("#2", 4, 1), ("#1", 5, 1)]
    assert items[0].external_id == "11" and items[0].total == Decimal(3)
    assert items[0].customer.email == "a@example.com"


def test_shopify_orders_wrong_file_gives_one_header_rejection():
    items = read_bytes(read_shopify_orders, b"First Name,Last Name,Email\nAnn,Lee,a@example.com\n")
    assert len(items) == 1 and items[0].line == 1
    assert "missing column(s) Name, Created at, Total, Financial Status" in items[0].reason


def test_shopify_orders_unreadable_row_does_not_stop_the_file():
    big = "x" * 200_000
    data = shopify_csv(
        "#1,a@example.com,paid,,EUR,1,0,0,1,0,2026-01-01,1,A,1.00,A1,Ann,,,",
        f'#1,a@example.com,,,,,,,,,,1,"{big}",1.00,A2,,,,',
        "#2,b@example.com,paid,,EUR,1,0,0,1,0,2026-01-01,1,C,1.00,C1,Bo,,,",
    )
    items = read_bytes(read_shopify_orders, data)
    assert [(type(i).__name__, i.line) for i in items] == [
        ("OrderRecord", 2), ("Rejected", 3), ("OrderRecord", 4)]
    assert "field larger than field limit" in items[1].reason


def test_shopify_orders_empty_file():
    assert read_bytes(read_shopify_orders, b"") == []
    assert read_bytes(read_shopify_orders, SHOPIFY_HEADER.encode()) == []


# == Shopify customers =========================================================================

def test_shopify_customers_newer_export():
    items = list(read_shopify_customers(fixture("shopify/customers_export.csv")))
    assert all(isinstance(i, CustomerRecord) for i in items)
    assert [c.line for c in items] == [2, 3, 4, 5]
    anna, bjorn, chloe, no_email = items
    assert anna.external_id == "7001234567890"  # ' stripped
    assert anna.phone == "+31205550101"  # from Default Address Phone, ' stripped
    assert anna.address == "Keizersgracht 45, 1015 CJ"  # zip ' stripped
    assert (anna.city, anna.country, anna.consent, anna.tags) == ("Amsterdam", "NL", True, ["vip", "newsletter"])
    assert bjorn.phone == "+46 8 555 01 02" and bjorn.company == "Ångström AB" and bjorn.consent is False
    assert (chloe.email, chloe.email_display) == ("eloise.giraud@example.fr", "ELOISE.GIRAUD@example.fr")
    assert chloe.address == "8 rue Oberkampf, Apt 2, 75011"
    # The row without an email is still a customer: it has a name.
    assert no_email.email is None and no_email.email_display is None
    assert (no_email.first_name, no_email.last_name) == ("No", "Email")
    assert no_email.external_id == "7001234567893"
    assert all(c.source == "shopify" and c.created_at is None for c in items)


def test_shopify_customers_older_export():
    dirk, eva = read_shopify_customers(fixture("shopify/customers_export_older.csv"))
    assert dirk.external_id is None
    assert (dirk.email, dirk.phone, dirk.city, dirk.country) == (
        "wout.peeters@example.be", "+32 3 555 01 03", "Antwerpen", "BE")
    assert dirk.address == "Groenplaats 3, 2000" and dirk.tags == ["repeat"] and dirk.consent is False
    assert (eva.company, eva.consent, eva.address) == ("Dvořák s.r.o.", True, "Národní 5, 110 00")


def test_both_customer_header_sets_give_the_same_fields():
    newer_header = fixture("shopify/customers_export.csv").read_text("utf-8-sig").splitlines()[0]
    older_header = fixture("shopify/customers_export_older.csv").read_text("utf-8-sig").splitlines()[0]
    person = {
        "first name": "Ann", "last name": "'t Hooft", "email": "Ann@Example.com",
        "accepts email marketing": "yes", "company": "Hooft BV", "address1": "'s-Gravendijkwal 1",
        "address2": "", "city": "Delft", "country code": "NL", "country": "Netherlands",
        "zip": "'2611 AA", "phone": "'+31 15 555 0100", "tags": "a, b, a",
    }

    def row(header: str) -> str:
        out = []
        for column in next(csv.reader([header])):
            key = column.lower().replace("default address ", "")
            out.append(person.get(key, "'42" if key == "customer id" else ""))
        buf = io.StringIO()
        csv.writer(buf).writerow(out)
        return header + "\r\n" + buf.getvalue()

    [newer] = read_bytes(read_shopify_customers, row(newer_header).encode())
    [older] = read_bytes(read_shopify_customers, row(older_header).encode())
    assert newer.external_id == "42" and older.external_id is None
    newer.external_id = None
    assert comparable(newer) == comparable(older)
    assert newer.last_name == "'t Hooft"  # the ' is only stripped from numbers
    assert (newer.phone, newer.address) == ("+31 15 555 0100", "'s-Gravendijkwal 1, 2611 AA")
    assert newer.tags == ["a", "b"] and newer.country == "NL" and newer.consent is True


def test_customer_headers_match_case_and_space_insensitively():
    data = b" CUSTOMER_ID ,first  name,EMAIL,Default_Address_Country_Code\n'9,Ann,a@example.com,nl\n"
    [c] = read_bytes(read_shopify_customers, data)
    assert (c.external_id, c.first_name, c.email, c.country) == ("9", "Ann", "a@example.com", "NL")


def test_customer_without_email_name_or_phone_is_rejected():
    data = b"Customer ID,First Name,Last Name,Email,Phone\n'1,,,,\n'2,,,,'+31 6 1234 5678\n'3,,,bad@,\n"
    items = read_bytes(read_shopify_customers, data)
    assert isinstance(items[0], Rejected) and items[0].line == 2
    assert "no email, name or phone" in items[0].reason
    assert isinstance(items[1], CustomerRecord) and items[1].phone == "+31 6 1234 5678"
    assert isinstance(items[2], Rejected) and "Email: 'bad@' is not a valid email address" in items[2].reason


# == WooCommerce ===============================================================================

def woo_order() -> dict:
    return json.loads(fixture("woocommerce/order.created.json").read_text("utf-8"))


def check_woo_727(order: OrderRecord) -> None:
    assert order.source == "woocommerce"
    assert (order.external_id, order.number, order.status, order.currency) == ("727", "727", "paid", "EUR")
    assert order.placed_at == utc(2026, 5, 14, 14, 20, 1)  # date_created_gmt
    assert (order.subtotal, order.discount, order.shipping, order.tax, order.total, order.refunded) == (
        Decimal("34.00"), Decimal("0.00"), Decimal("4.95"), Decimal("8.18"), Decimal("47.13"), Decimal("0.00"))
    c = order.customer
    assert (c.external_id, c.email, c.first_name, c.last_name) == ("26", "roos.meijer@example.nl", "Roos", "Meijer")
    assert (c.phone, c.address, c.city, c.country, c.company) == (
        "+31 30 555 0104", "Lange Nieuwstraat 8, 3512 PH", "Utrecht", "NL", None)


def test_woocommerce_order_webhook_body():
    order = parse_woocommerce_order(woo_order())
    check_woo_727(order)
    assert order.line == 1
    assert order.lines == [LineRecord("TEA-TG-100", "Tieguanyin 100g", 2, Decimal("8.50")),
                           LineRecord("ACC-CUP-PC", "Porcelain Cup", 1, Decimal("17.00"))]


def test_woocommerce_json_single_list_and_ndjson():
    single = list(read_woocommerce_orders(fixture("woocommerce/order.created.json"), "json"))
    assert len(single) == 1 and single[0].line == 1
    check_woo_727(single[0])
    second = woo_order() | {"id": 728, "number": "728", "status": "completed"}
    as_list = read_bytes(read_woocommerce_orders, json.dumps([woo_order(), second], indent=2).encode(), "json")
    assert [(o.line, o.external_id, o.status) for o in as_list] == [(1, "727", "paid"), (2, "728", "fulfilled")]
    ndjson = "\n".join([json.dumps(woo_order()), "", json.dumps(second), "{not json", json.dumps(second)])
    items = read_bytes(read_woocommerce_orders, ndjson.encode(), "ndjson")
    assert [(type(i).__name__, i.line) for i in items] == [
        ("OrderRecord", 1), ("OrderRecord", 3), ("Rejected", 4), ("OrderRecord", 5)]
    assert "invalid JSON at line 4" in items[2].reason
    assert read_bytes(read_woocommerce_orders, ndjson.encode(), "json") == items  # json accepts NDJSON


@pytest.mark.parametrize("dot", [".", "_"])
def test_woocommerce_orders_csv(dot):
    header = ["id", "number", "status", "currency", "date_created_gmt", "total", "discount_total",
              "shipping_total", "total_tax", "customer_id"] + [
        f"billing{dot}{f}" for f in ("first_name", "last_name", "company", "address_1", "address_2",
                                      "city", "postcode", "country", "email", "phone")]
    values = ["727", "727", "processing", "EUR", "2026-05-14T14:20:01", "47.13", "0.00", "4.95", "8.18",
              "26", "Roos", "Meijer", "", "Lange Nieuwstraat 8", "", "Utrecht", "3512 PH", "NL",
              "roos.meijer@example.nl", "+31 30 555 0104"]
    data = ",".join(header) + "\r\n" + ",".join(values) + "\r\n"
    [order] = read_bytes(read_woocommerce_orders, data.encode(), "csv")
    check_woo_727(order)  # subtotal = total - tax - shipping + discount without line items
    assert order.line == 2 and order.lines == []


@pytest.mark.parametrize("status, expected", [
    ("pending", "pending"), ("on-hold", "pending"), ("checkout-draft", "pending"),
    ("processing", "paid"), ("completed", "fulfilled"), ("wc-completed", "fulfilled"),
    ("cancelled", "cancelled"), ("failed", "cancelled"), ("refunded", "refunded"),
])
def test_woocommerce_status_mapping(status, expected):
    order = parse_woocommerce_order(woo_order() | {"status": status})
    assert order.status == expected
    assert order.refunded == (order.total if expected == "refunded" else 0)


def test_woocommerce_unknown_status_and_refunds():
    rejected = parse_woocommerce_order(woo_order() | {"status": "shipped"})
    assert isinstance(rejected, Rejected) and "status: 'shipped'" in rejected.reason
    partial = parse_woocommerce_order(woo_order() | {"refunds": [{"id": 1, "total": "-5.00"}]})
    assert (partial.status, partial.refunded) == ("partially_refunded", Decimal("5.00"))
    full = parse_woocommerce_order(woo_order() | {"status": "completed",
                                                  "refunds": [{"total": "-40.00"}, {"total": "-7.13"}]})
    assert (full.status, full.refunded) == ("refunded", Decimal("47.13"))


def test_woocommerce_bad_bodies_come_back_as_rejected():
    assert isinstance(parse_woocommerce_order([1, 2]), Rejected)
    bad = parse_woocommerce_order(woo_order() | {"total": "lots", "billing": {"email": "x@y"}})
    assert "total: 'lots' is not an amount" in bad.reason
    assert "billing.email: 'x@y' is not a valid email address" in bad.reason
    assert "id: missing" in parse_woocommerce_order({"status": "pending"}).reason
    wrapped = parse_woocommerce_order({"order": woo_order()})
    assert wrapped.external_id == "727"


def test_woocommerce_customer():
    body = json.loads(fixture("woocommerce/customer.created.json").read_text("utf-8"))
    customer = parse_woocommerce_customer(body)
    assert (customer.external_id, customer.email, customer.first_name, customer.last_name) == (
        "26", "roos.meijer@example.nl", "Roos", "Meijer")
    assert customer.created_at == utc(2026, 5, 14, 14, 19)
    assert (customer.phone, customer.city, customer.country, customer.consent) == (
        "+31 30 555 0104", "Utrecht", "NL", None)
    [from_file] = read_woocommerce_customers(fixture("woocommerce/customer.created.json"))
    assert from_file == customer
    csv_data = ("id,email,first_name,last_name,billing_phone,billing.city,billing.country,date_created_gmt\n"
                "26,roos.meijer@example.nl,Roos,Meijer,+31 30 555 0104,Utrecht,NL,2026-05-14T14:19:00\n")
    [from_csv] = read_bytes(read_woocommerce_customers, csv_data.encode(), "csv")
    assert (from_csv.external_id, from_csv.email, from_csv.city, from_csv.created_at) == (
        "26", "roos.meijer@example.nl", "Utrecht", customer.created_at)


# == Shopify webhook bodies ====================================================================

SHOPIFY_ORDER_JSON = {
    "id": 820982911946154508, "name": "#1001", "order_number": 1001,
    "email": "Jon@Example.com", "created_at": "2026-03-02T10:15:09+01:00",
    "financial_status": "partially_refunded", "fulfillment_status": None, "cancelled_at": None,
    "currency": "EUR", "subtotal_price": "84.00", "total_discounts": "0.00", "total_tax": "15.44",
    "total_price": "88.95",
    "total_shipping_price_set": {"shop_money": {"amount": "4.95", "currency_code": "EUR"}},
    "shipping_lines": [{"price": "9.99"}],
    "refunds": [{"transactions": [{"kind": "refund", "status": "success", "amount": "10.00"},
                                  {"kind": "refund", "status": "failure", "amount": "99.00"}]}],
    "billing_address": {"first_name": "Jon", "last_name": "Snow", "company": "Night Watch",
                        "address1": "Castle Black", "address2": "", "zip": "0001", "city": "The Wall",
                        "country_code": "GB", "phone": "+44 20 7946 0000"},
    "customer": {"id": 115310627314723954, "email": "jon@example.com", "first_name": "Jon",
                 "last_name": "Snow", "phone": None, "tags": "vip, winter",
                 "created_at": "2025-01-01T00:00:00-05:00",
                 "email_marketing_consent": {"state": "subscribed"}},
    "line_items": [{"sku": "TEA-1", "name": "Tea - Green", "title": "Tea", "quantity": 2, "price": "18.00"},
                   {"sku": None, "title": "Gift box", "quantity": 1, "price": "0.00"}],
}


def test_shopify_order_json():
    order = parse_shopify_order_json(SHOPIFY_ORDER_JSON)
    assert (order.external_id, order.number, order.status) == ("820982911946154508", "#1001", "partially_refunded")
    assert order.placed_at == utc(2026, 3, 2, 9, 15, 9)
    assert (order.shipping, order.refunded, order.total) == (Decimal("4.95"), Decimal("10.00"), Decimal("88.95"))
    assert order.lines == [LineRecord("TEA-1", "Tea - Green", 2, Decimal("18.00")),
                           LineRecord(None, "Gift box", 1, Decimal("0.00"))]
    c = order.customer
    assert (c.external_id, c.email, c.email_display, c.consent) == (
        "115310627314723954", "jon@example.com", "Jon@Example.com", True)
    assert (c.company, c.address, c.city, c.country, c.phone) == (
        "Night Watch", "Castle Black, 0001", "The Wall", "GB", "+44 20 7946 0000")
    assert c.tags == ["vip", "winter"] and c.created_at == utc(2025, 1, 1, 5)
    no_set = dict(SHOPIFY_ORDER_JSON, total_shipping_price_set=None)
    assert parse_shopify_order_json(no_set).shipping == Decimal("9.99")
    no_currency = dict(SHOPIFY_ORDER_JSON, currency=None)
    assert parse_shopify_order_json(no_currency, default_currency="sek").currency == "SEK"
    assert parse_shopify_order_json(no_currency, default_currency="").reason == "currency: missing"
    cancelled = dict(SHOPIFY_ORDER_JSON, financial_status="voided", cancelled_at="2026-03-03T00:00:00Z")
    assert parse_shopify_order_json({"order": cancelled}).status == "cancelled"


def test_shopify_order_json_rejections():
    bad = parse_shopify_order_json(dict(SHOPIFY_ORDER_JSON, email="jon at example", total_price=None), line=7)
    assert isinstance(bad, Rejected) and bad.line == 7
    assert "email: 'jon at example' is not a valid email address" in bad.reason
    assert "total_price: missing" in bad.reason
    assert isinstance(parse_shopify_order_json("not an object"), Rejected)


def test_shopify_customer_json():
    body = {"id": 207119551, "email": "Bob.Norman@example.com", "first_name": "Bob", "last_name": "Norman",
            "phone": "+16136120707", "tags": "", "created_at": "2026-01-01T12:00:00-05:00",
            "accepts_marketing": False,
            "default_address": {"address1": "Chestnut Street 92", "city": "Louisville",
                                "country_code": "US", "zip": "40202", "company": None}}
    c = parse_shopify_customer_json(body)
    assert (c.external_id, c.email, c.email_display) == ("207119551", "bob.norman@example.com", "Bob.Norman@example.com")
    assert (c.consent, c.country, c.address, c.company) == (False, "US", "Chestnut Street 92, 40202", None)
    assert c.created_at == utc(2026, 1, 1, 17)
    assert parse_shopify_customer_json(body | {"email_marketing_consent": {"state": "subscribed"}}).consent is True
    assert "created_at" in parse_shopify_customer_json(body | {"created_at": "soon"}).reason


# == generic orders ============================================================================

GENERIC_ROWS = [
    {"order_id": "A-1", "customer_id": "c1", "email": "Ann@Example.com", "first_name": "Ann",
     "last_name": "Lee", "placed_at": "2026-03-01", "total": "12.50", "currency": "eur", "status": "completed"},
    {"order_id": "A-2", "customer_id": "", "email": "bo@example.com", "first_name": "Bo",
     "last_name": "Ek", "placed_at": "2026-03-02T10:00:00+02:00", "total": "1,234.50", "currency": "",
     "status": ""},
    {"order_id": "A-3", "customer_id": "c3", "email": "", "first_name": "", "last_name": "",
     "placed_at": "2026-03-03 09:30", "total": "0", "currency": "USD", "status": "canceled"},
]


def generic_file(rows: list[dict], fmt: str) -> bytes:
    if fmt in ("csv", "tsv"):
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), delimiter="," if fmt == "csv" else "\t")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue().encode()
    if fmt == "json":
        return json.dumps(rows, indent=1).encode()
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def test_generic_formats_give_the_same_records():
    results = {fmt: read_bytes(read_generic_orders, generic_file(GENERIC_ROWS, fmt), fmt)
               for fmt in ("csv", "tsv", "json", "ndjson")}
    assert [r.line for r in results["csv"]] == [2, 3, 4]
    assert [r.line for r in results["tsv"]] == [2, 3, 4]
    assert [r.line for r in results["json"]] == [1, 2, 3]
    assert [r.line for r in results["ndjson"]] == [1, 2, 3]
    plain = {fmt: [comparable(r) for r in items] for fmt, items in results.items()}
    assert plain["csv"] == plain["tsv"] == plain["json"] == plain["ndjson"]
    a1, a2, a3 = results["csv"]
    assert a1.placed_at == utc(2026, 3, 1)  # a date is midnight UTC
    assert (a1.status, a1.currency, a1.source, a1.number) == ("fulfilled", "EUR", "import", "A-1")
    assert (a1.customer.external_id, a1.customer.email) == ("c1", "ann@example.com")
    assert (a2.total, a2.status, a2.currency, a2.customer.external_id) == (Decimal("1234.50"), "paid", "EUR", None)
    assert a2.placed_at == utc(2026, 3, 2, 8)
    assert (a3.status, a3.currency, a3.customer.email) == ("cancelled", "USD", None)


def test_generic_missing_required_fields_are_rejected_with_lines():
    rows = [
        dict(GENERIC_ROWS[0], order_id=""),
        dict(GENERIC_ROWS[0], placed_at=""),
        dict(GENERIC_ROWS[0], total=""),
        dict(GENERIC_ROWS[0], customer_id="", email=""),
        dict(GENERIC_ROWS[0], total="ten euros", email="nope", status="lost", currency="euro"),
        GENERIC_ROWS[1],
    ]
    for fmt, first in (("csv", 2), ("json", 1), ("ndjson", 1)):
        items = read_bytes(read_generic_orders, generic_file(rows, fmt), fmt)
        assert [i.line for i in items] == list(range(first, first + 6)), fmt
        reasons = [i.reason for i in items[:5]]
        assert reasons[0] == "order_id: missing"
        assert reasons[1] == "placed_at: missing"
        assert reasons[2] == "total: missing"
        assert reasons[3] == "customer_id or email: missing"
        for part in ("total: 'ten euros' is not an amount", "email: 'nope' is not a valid email address",
                     "status: 'lost' is not an order status", "currency: 'euro' is not a currency code"):
            assert part in reasons[4]
        assert isinstance(items[5], OrderRecord)


def test_generic_header_without_required_columns():
    items = read_bytes(read_generic_orders, b"id,date,amount\n1,2026-01-01,5\n", "csv")
    assert len(items) == 1 and items[0].line == 1
    assert "missing column(s) order_id, placed_at, total, customer_id" in items[0].reason
    assert "--map" in items[0].reason


def test_generic_map_renames_columns():
    data = b"Order Ref,Date,Amount,Mail,Ccy\nR1,2026-01-05,9.99,a@example.com,sek\n"
    mapping = {"Order Ref": "order_id", "date": "placed_at", "AMOUNT": "total", "Mail": "email",
               "Ccy": "currency"}
    [order] = read_bytes(read_generic_orders, data, "csv", mapping)
    assert (order.external_id, order.total, order.currency, order.placed_at) == (
        "R1", Decimal("9.99"), "SEK", utc(2026, 1, 5))
    json_data = json.dumps([{"Order Ref": "R1", "Date": "2026-01-05", "Amount": 9.99, "Mail": "a@example.com",
                             "Ccy": "sek"}]).encode()
    [from_json] = read_bytes(read_generic_orders, json_data, "json", mapping)
    assert comparable(from_json) == comparable(order)
    with pytest.raises(ValueError, match="unknown field"):
        read_generic_orders(io.BytesIO(data), "csv", {"Order Ref": "order_number"})


def test_generic_options_and_format_detection(tmp_path):
    path = tmp_path / "orders.tsv"
    path.write_bytes(generic_file(GENERIC_ROWS, "tsv"))
    items = list(read_generic_orders(path, source="legacy-shop", default_currency="gbp"))
    assert [i.source for i in items] == ["legacy-shop"] * 3
    assert items[1].currency == "GBP" and items[1].customer.source == "legacy-shop"
    with pytest.raises(ValueError, match="format"):
        read_generic_orders(io.BytesIO(b""))
    with pytest.raises(ValueError, match="format"):
        read_generic_orders(io.BytesIO(b""), "xlsx")


def test_generic_csv_physical_lines_blank_lines_extra_fields_and_bad_bytes():
    data = (b"order_id,email,placed_at,total,first_name\r\n"
            b"1,a@example.com,2026-01-01,1,Ann\r\n"
            b"\r\n"
            b'2,b@example.com,2026-01-01,2,"Ann\r\n'  # a quoted newline: the record spans lines 4-5
            b'Marie"\r\n'
            b"3,c@example.com,2026-01-01,3,Cy,surplus\r\n"
            b"4,d@example.com,2026-01-01,4,Di,\r\n"  # an empty surplus field is tolerated
            b"5,\xe9@example.com,2026-01-01,5,Ed\r\n"
            b",,,,\r\n"
            b"6,f@example.com,2026-01-01\r\n")
    items = read_bytes(read_generic_orders, data, "csv")
    assert [(type(i).__name__, i.line) for i in items] == [
        ("OrderRecord", 2), ("OrderRecord", 4), ("Rejected", 6), ("OrderRecord", 7), ("Rejected", 8),
        ("Rejected", 10)]
    assert items[1].customer.first_name == "Ann\r\nMarie"
    assert "6 fields but the header has 5 columns" in items[2].reason
    assert items[2].raw["_extra"] == ["surplus"]
    assert "not valid UTF-8" in items[4].reason
    assert items[5].reason == "total: missing"


def test_json_array_errors_and_non_objects():
    data = b'[{"order_id": "1", "email": "a@example.com", "placed_at": "2026-01-01", "total": 1}, 5, "x",'
    items = read_bytes(read_generic_orders, data, "json")
    assert [(type(i).__name__, i.line) for i in items] == [
        ("OrderRecord", 1), ("Rejected", 2), ("Rejected", 3), ("Rejected", 4)]
    assert items[1].reason == "expected a JSON object, got a number"
    assert "the file ends inside the JSON array" in items[3].reason
    broken = read_bytes(read_generic_orders, b'[{"order_id": 1,, }, {"order_id": 2}]', "json")
    assert len(broken) == 1 and broken[0].line == 1 and "invalid JSON" in broken[0].reason
    assert read_bytes(read_generic_orders, b"[]", "json") == []
    assert read_bytes(read_generic_orders, b"  \n", "ndjson") == []


# == registry, detection, preview ==============================================================

def test_readers_registry_and_detect_format():
    assert set(READERS) == {"shopify-customers", "shopify-orders", "woocommerce-orders",
                            "woocommerce-customers", "orders"}
    assert READERS["shopify-orders"].formats == ("csv",)
    assert READERS["orders"].formats == ("csv", "tsv", "json", "ndjson")
    assert READERS["woocommerce-orders"].record is OrderRecord
    assert READERS["woocommerce-customers"].record is CustomerRecord
    assert [detect_format(n) for n in ("a.csv", "B.TSV", "c.json", "d.ndjson", "e.jsonl", "f.xlsx", "", None)] == [
        "csv", "tsv", "json", "ndjson", "ndjson", None, None, None]
    with pytest.raises(ValueError):
        read_shopify_orders(io.BytesIO(b""), "json")


def test_preview():
    with open(fixture("shopify/orders_export.csv"), "rb") as fh:
        first_two = preview("shopify-orders", fh, n=2)
        assert not fh.closed
    assert [o.number for o in first_two] == ["#1001", "#1002"]
    assert len(preview("shopify-orders", fixture("shopify/orders_export.csv"))) == 4
    [order] = preview("woocommerce-orders", fixture("woocommerce/order.created.json"))
    assert order.external_id == "727"
    generic = preview("orders", io.BytesIO(generic_file(GENERIC_ROWS, "ndjson")), n=1, fmt="ndjson")
    assert [o.external_id for o in generic] == ["A-1"]
    with pytest.raises(ValueError, match="unknown import kind"):
        preview("magento", io.BytesIO(b""))


# == parsers ===================================================================================

def test_order_statuses_match_the_model():
    from crm.models.order import ORDER_STATUSES, PAID_STATUSES
    assert records.ORDER_STATUSES == ORDER_STATUSES
    assert records.PAID_STATUSES == PAID_STATUSES


def test_readers_do_not_import_flask():
    import subprocess
    code = ("import sys, crm.services.orders.importing; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'flask_sqlalchemy', 'sqlalchemy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("text, expected", [
    ("12.50", "12.50"), ("1,234.50", "1234.50"), ("€12,50", "12.50"), ("1.234,50", "1234.50"),
    ("1 234,50", "1234.50"), ("1'234.50", "1234.50"), ("1,234", "1234"), ("12,5", "12.5"),
    ("1.234.567", "1234567"), ("EUR 12.50", "12.50"), ("12,50 €", "12.50"), ("-3", "-3"),
    ("$ -4.00", "-4.00"), ("0", "0"), (8.5, "8.5"), (17, "17"), (Decimal("1.10"), "1.10"),
])
def test_parse_money(text, expected):
    value = parse_money(text)
    assert isinstance(value, Decimal) and str(value) == expected


@pytest.mark.parametrize("text", ["ten euros", "", "  ", "12.", ".5", "1e3", "NaN", "Infinity", "1,2,3",
                                  "1,234,56", "--5", "12.50.3", "€", "1 23", "١٢", True, None,
                                  float("nan"), "1000000000000"])
def test_parse_money_rejects(text):
    with pytest.raises(ValueError):
        parse_money(text)


@pytest.mark.parametrize("text, expected", [
    ("2024-03-01 10:15:00 +0100", utc(2024, 3, 1, 9, 15)),
    ("2024-03-01", utc(2024, 3, 1)),
    ("2024-03-01T09:15:00", utc(2024, 3, 1, 9, 15)),
    ("2024-03-01T09:15:00Z", utc(2024, 3, 1, 9, 15)),
    ("2024-03-01T09:15:00.250-05:00", utc(2024, 3, 1, 14, 15, 0, 250000)),
    ("2024-03-01 09:15 UTC", utc(2024, 3, 1, 9, 15)),
    ("2024-03-01T09:15:00+0530", utc(2024, 3, 1, 3, 45)),
])
def test_parse_timestamp(text, expected):
    value = parse_timestamp(text)
    assert value == expected and value.tzinfo == UTC


@pytest.mark.parametrize("text", ["", "yesterday", "2024-02-30", "2024-03-01T25:00", "01/03/2024",
                                  "2024-03-01T10:00:00+25:00", "0001-01-01T00:00:00+01:00"])
def test_parse_timestamp_rejects(text):
    with pytest.raises(ValueError):
        parse_timestamp(text)


def test_email_helpers():
    assert normalise_email("  Ann@Example.COM ") == "ann@example.com"
    assert normalise_email("  ") is None and normalise_email(None) is None
    assert is_valid_email("a@b.co") and is_valid_email("first.last+tag@sub.example.org")
    for bad in ("not-an-email", "a@b", "a@@b.com", "a b@c.com", "@b.com", "a@.com", "a@b..com", "a@b.com."):
        assert not is_valid_email(bad), bad


# == streaming =================================================================================

STREAM_HEADER = ["Name", "Email", "Financial Status", "Fulfillment Status", "Accepts Marketing",
                 "Currency", "Subtotal", "Shipping", "Taxes", "Total", "Discount Amount", "Created at",
                 "Lineitem quantity", "Lineitem name", "Lineitem price", "Lineitem sku", "Billing Name",
                 "Billing Address1", "Billing City", "Billing Zip", "Billing Country", "Billing Phone",
                 "Cancelled at", "Refunded Amount", "Id", "Tags"]


def write_big_shopify_export(path: Path, lines: int) -> int:
    """A Shopify orders export of ``lines`` lines (header included), 1-3 rows per order."""
    col = {h: i for i, h in enumerate(STREAM_HEADER)}
    orders, written = 0, 1
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(STREAM_HEADER)
        while written < lines:
            orders += 1
            for item in range(min(1 + orders % 3, lines - written)):
                row = [""] * len(STREAM_HEADER)
                row[col["Name"]] = f"#{orders}"
                row[col["Email"]] = f"customer{orders % 9973}@example.com"
                row[col["Lineitem quantity"]], row[col["Lineitem price"]] = "1", "9.50"
                row[col["Lineitem name"]], row[col["Lineitem sku"]] = f"Item {item}", f"SKU-{item}"
                if item == 0:
                    for name, value in (("Financial Status", "paid"), ("Currency", "EUR"),
                                        ("Subtotal", "28.50"), ("Total", "28.50"),
                                        ("Created at", "2026-03-02 10:15:09 +0100"),
                                        ("Billing Name", "Ann van Dam"), ("Billing City", "Utrecht"),
                                        ("Billing Country", "NL"), ("Id", str(5_500_000_000 + orders))):
                        row[col[name]] = value
                writer.writerow(row)
                written += 1
    return orders


@pytest.mark.slow
def test_streaming_a_200k_line_export_keeps_memory_flat(tmp_path):
    """200,000 lines through the generator: memory stays flat and it takes seconds.

    tracemalloc makes this allocation-heavy loop about ten times slower, so it traces only the
    last 10,000 lines (a reader that kept what it read would grow by megabytes there), while
    ``sys.getallocatedblocks()`` - free to call - is sampled over the whole file. The time limit
    is a ratio of this process's CPU time to a floor measured here (csv.DictReader over the same
    file), so neither other work on the machine nor a slower machine makes the test flaky.
    """
    lines = 200_000
    path = tmp_path / "orders_export.csv"
    expected_orders = write_big_shopify_export(path, lines)
    trace_from = lines - 10_000
    blocks: list[int] = []
    count = 0
    cpu = time.process_time()
    try:
        with open(path, "rb") as fh:
            for item in read_shopify_orders(fh):
                assert isinstance(item, OrderRecord)
                count += 1
                if count % 5_000 == 0 and not tracemalloc.is_tracing():
                    blocks.append(sys.getallocatedblocks())
                if item.line >= trace_from and not tracemalloc.is_tracing():
                    tracemalloc.start()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    elapsed = time.process_time() - cpu
    assert count == expected_orders
    assert peak < 2_000_000, f"traced peak {peak:,} bytes over the last 10,000 lines"
    warm = blocks[1:]  # after the first samples caches are warm
    assert max(warm) - min(warm) < 20_000, f"allocated blocks grew: {warm[0]:,} -> {max(warm):,}"
    cpu = time.process_time()
    with open(path, newline="", encoding="utf-8") as fh:
        assert sum(1 for _row in csv.DictReader(fh)) == lines - 1
    floor = time.process_time() - cpu
    # About 14x the bare parse (mapping, money, dates, emails, grouping lines into orders).
    assert elapsed < 30 * floor, f"{elapsed:.1f} s CPU, {elapsed / floor:.0f}x the bare csv parse ({floor:.2f} s)"
