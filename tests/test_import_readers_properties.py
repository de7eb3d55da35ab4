"""Property-based tests: whatever a file holds, the readers account for it without raising."""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.services.orders.importing import (
    ORDER_STATUSES,
    READERS,
    CustomerRecord,
    OrderRecord,
    Rejected,
    is_valid_email,
    normalise_email,
    parse_money,
    parse_shopify_customer_json,
    parse_shopify_order_json,
    parse_timestamp,
    parse_woocommerce_customer,
    parse_woocommerce_order,
    read_generic_orders,
    read_shopify_customers,
    read_shopify_orders,
)

SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
UTC = timezone.utc
ALL_READERS = [(kind, fmt) for kind, spec in READERS.items() for fmt in spec.formats]

# Text that stresses CSV and JSON: separators, quotes, line breaks, BOMs, U+FFFD, NUL, letters.
NASTY = st.sampled_from([",", ";", "\t", '"', "'", "\n", "\r", "\r\n", " ", "\ufeff", "\ufffd",
                         "\x00", "@", ".", "-", "€", "{", "[", "]", "}", ":", "#"])
GARBAGE = st.lists(st.one_of(NASTY, st.text(max_size=6)), max_size=6).map("".join)


def check(items: list, record_type: type) -> None:
    """Every item is a sound record or a Rejected with a reason; lines never go backwards."""
    lines = []
    for item in items:
        assert isinstance(item, (record_type, Rejected)), item
        assert isinstance(item.line, int) and item.line >= 1
        lines.append(item.line)
        if isinstance(item, Rejected):
            assert item.reason.strip() and len(item.reason) <= 500
            assert isinstance(item.raw, dict)
            json.dumps(item.raw)  # storable in ImportRejection.raw (JSON)
        elif isinstance(item, OrderRecord):
            check_order(item)
        else:
            check_customer(item)
    assert lines == sorted(lines)


def check_order(order: OrderRecord) -> None:
    assert order.status in ORDER_STATUSES
    assert re.fullmatch("[A-Z]{3}", order.currency)
    assert order.placed_at.tzinfo == UTC
    assert order.external_id and order.number
    for amount in (order.subtotal, order.discount, order.shipping, order.tax, order.total, order.refunded):
        assert isinstance(amount, Decimal) and amount.is_finite()
    for line in order.lines:
        assert isinstance(line.quantity, int) and line.quantity >= 0
        assert isinstance(line.unit_price, Decimal)
    check_customer(order.customer)


def check_customer(customer: CustomerRecord) -> None:
    assert customer.email_display or customer.first_name or customer.last_name or customer.phone
    if customer.email_display is not None:
        assert is_valid_email(customer.email_display)
        assert customer.email == customer.email_display.lower()
    assert customer.country is None or re.fullmatch("[A-Z]{2}", customer.country)
    assert customer.created_at is None or customer.created_at.tzinfo == UTC
    assert all(isinstance(t, str) and t for t in customer.tags)


def read(kind: str, fmt: str, data: bytes) -> list:
    return list(READERS[kind].read(io.BytesIO(data), fmt))


# == nothing raises ============================================================================

@SETTINGS
@given(reader=st.sampled_from(ALL_READERS), data=st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(reader, data):
    kind, fmt = reader
    check(read(kind, fmt, data), READERS[kind].record)


KNOWN_COLUMNS = {
    "shopify-orders": ["Name", "Email", "Financial Status", "Fulfillment Status", "Accepts Marketing",
                       "Currency", "Subtotal", "Shipping", "Taxes", "Total", "Discount Amount",
                       "Created at", "Lineitem quantity", "Lineitem name", "Lineitem price", "Lineitem sku",
                       "Billing Name", "Billing Country", "Phone", "Cancelled at", "Refunded Amount", "Id"],
    "shopify-customers": ["Customer ID", "First Name", "Last Name", "Email", "Accepts Email Marketing",
                          "Default Address Country Code", "Zip", "Phone", "Tags", "Created At"],
    "woocommerce-orders": ["id", "number", "status", "currency", "date_created_gmt", "total",
                           "discount_total", "shipping_total", "total_tax", "customer_id",
                           "billing.email", "billing_first_name", "billing.country"],
    "woocommerce-customers": ["id", "email", "first_name", "last_name", "billing.phone", "date_created_gmt"],
    "orders": ["order_id", "customer_id", "email", "first_name", "last_name", "placed_at", "total",
               "currency", "status", "phone", "number", "subtotal", "discount", "shipping", "tax"],
}
PLAUSIBLE = st.one_of(
    GARBAGE,
    st.sampled_from(["", "paid", "refunded", "completed", "processing", "EUR", "usd", "12.50", "1,234.50",
                     "-0", "ten euros", "2026-03-01", "2026-03-01 10:15:00 +0100", "2026-13-01",
                     "a@example.com", "A@EXAMPLE.COM", "not-an-email", "'+31 6 1234", "'7001", "yes",
                     "no", "#1001", "#1002", "NL", "Netherlands", "2", "0", "-1", "1e3", "nan"]),
)


@st.composite
def csv_files(draw, kind: str, delimiter: str = ",") -> tuple[bytes, list[list[str]]]:
    """A CSV of some of the kind's columns (in any order, some unknown) and plausible values."""
    known = KNOWN_COLUMNS[kind]
    columns = draw(st.lists(st.sampled_from(known) | GARBAGE, min_size=1, max_size=len(known) + 2))
    columns = draw(st.permutations(columns))
    rows = draw(st.lists(st.lists(PLAUSIBLE, min_size=len(columns), max_size=len(columns)), max_size=8))
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter)
    writer.writerow(columns)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8", "surrogatepass"), rows


@SETTINGS
@given(data=st.data(), reader=st.sampled_from([(k, f) for k, f in ALL_READERS if f in ("csv", "tsv")]))
def test_csv_with_known_columns_and_garbage_values_never_raises(data, reader):
    kind, fmt = reader
    content, _ = data.draw(csv_files(kind, "," if fmt == "csv" else "\t"))
    check(read(kind, fmt, content), READERS[kind].record)


JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                         st.floats(allow_nan=True, allow_infinity=True), PLAUSIBLE)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=10)
WOO_KEYS = ["id", "number", "status", "currency", "date_created_gmt", "date_created", "total",
            "discount_total", "shipping_total", "total_tax", "customer_id", "email", "first_name",
            "last_name", "refunds", "line_items", "billing"]
SHOPIFY_KEYS = ["id", "name", "email", "created_at", "financial_status", "cancelled_at", "currency",
                "subtotal_price", "total_discounts", "total_shipping_price_set", "shipping_lines",
                "total_tax", "total_price", "refunds", "customer", "line_items", "billing_address",
                "default_address", "tags", "first_name", "phone", "email_marketing_consent"]
NESTED = st.one_of(JSON_VALUES, st.dictionaries(st.sampled_from(
    ["email", "first_name", "last_name", "phone", "country", "country_code", "total", "amount",
     "quantity", "price", "subtotal", "sku", "name", "state", "shop_money", "transactions", "kind"]),
    JSON_VALUES, max_size=5), st.lists(st.dictionaries(st.sampled_from(
        ["quantity", "price", "subtotal", "total", "name", "title", "sku", "transactions"]),
        JSON_VALUES, max_size=4), max_size=3))


@SETTINGS
@given(obj=st.one_of(JSON_VALUES,
                     st.dictionaries(st.sampled_from(WOO_KEYS + SHOPIFY_KEYS), NESTED, max_size=12)))
def test_webhook_parsers_never_raise(obj):
    for parse, record_type in ((parse_woocommerce_order, OrderRecord), (parse_woocommerce_customer, CustomerRecord),
                               (parse_shopify_order_json, OrderRecord),
                               (parse_shopify_customer_json, CustomerRecord)):
        check([parse(obj)], record_type)


# == every row is accounted for, at the right line ==============================================

def physical_lines(text: str) -> int:
    """Line breaks as the csv module counts them when reading with newline=""."""
    return len(re.findall(r"\r\n|\r|\n", text))


@SETTINGS
@given(rows=st.lists(st.fixed_dictionaries({f: PLAUSIBLE for f in KNOWN_COLUMNS["orders"]}), max_size=6),
       fmt=st.sampled_from(["csv", "tsv"]))
def test_generic_csv_one_item_per_row_at_its_physical_line(rows, fmt):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=KNOWN_COLUMNS["orders"], delimiter="," if fmt == "csv" else "\t")
    writer.writeheader()
    expected = []
    for row in rows:
        start = physical_lines(buf.getvalue()) + 1
        writer.writerow(row)
        if any(v.strip() for v in row.values()):  # rows of blanks are skipped
            expected.append(start)
    items = list(read_generic_orders(io.BytesIO(buf.getvalue().encode()), fmt))
    check(items, OrderRecord)
    assert [i.line for i in items] == expected


@SETTINGS
@given(values=st.lists(JSON_VALUES, max_size=8), fmt=st.sampled_from(["json", "ndjson"]))
def test_generic_json_one_item_per_value(values, fmt):
    if fmt == "json":
        content, expected = json.dumps(values, indent=1), list(range(1, len(values) + 1))
    else:
        content = "".join(json.dumps(v) + "\n\n" for v in values)
        expected = [1 + 2 * i for i in range(len(values))]
    items = list(read_generic_orders(io.BytesIO(content.encode()), fmt))
    check(items, OrderRecord)
    assert [i.line for i in items] == expected


@SETTINGS
@given(lines=st.lists(st.one_of(GARBAGE.map(lambda s: s.replace("\n", " ").replace("\r", " ")),
                                st.just('{"order_id": 1, "email": "a@example.com", "placed_at": "2026-01-01", '
                                        '"total": 1}')), max_size=10))
def test_ndjson_garbage_lines_do_not_hide_good_lines(lines):
    content = "\n".join(lines) + "\n"
    items = list(read_generic_orders(io.BytesIO(content.encode()), "ndjson"))
    check(items, OrderRecord)
    good = [n for n, line in enumerate(lines, 1) if line.startswith("{\"order_id\"")]
    assert [i.line for i in items if isinstance(i, OrderRecord)] == good


SHOPIFY_COLUMNS = ["Name", "Email", "Financial Status", "Total", "Created at", "Lineitem name",
                   "Lineitem price"]
SHOPIFY_ROW = st.lists(PLAUSIBLE, min_size=len(SHOPIFY_COLUMNS) - 1, max_size=len(SHOPIFY_COLUMNS) - 1)


@SETTINGS
@given(groups=st.lists(st.tuples(st.sampled_from(["#1", "#2", " #2 ", "#3", "", " "]),
                                 st.lists(SHOPIFY_ROW, min_size=1, max_size=3)), max_size=6))
def test_shopify_orders_one_item_per_group(groups):
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(SHOPIFY_COLUMNS)
    expected, previous = [], None
    for name, rows in groups:
        for cells in rows:
            row = [name] + cells
            start = physical_lines(buf.getvalue()) + 1
            writer.writerow(row)
            if not any(c.strip() for c in row):
                continue  # a blank row is skipped and does not end a group
            key = name.strip()
            if not key or key != previous:
                expected.append(start)
            previous = key or None
    items = list(read_shopify_orders(io.BytesIO(buf.getvalue().encode())))
    check(items, OrderRecord)
    assert [i.line for i in items] == expected


# == column order does not matter ==============================================================

GOOD_ORDER = st.fixed_dictionaries({
    "order_id": st.from_regex(r"[A-Z]{1,3}-[0-9]{1,4}", fullmatch=True),
    "customer_id": st.sampled_from(["", "c1", "c2"]),
    "email": st.sampled_from(["a@example.com", "B@Example.org", ""]),
    "first_name": st.sampled_from(["", "Ann", "Björn"]),
    "placed_at": st.sampled_from(["2026-01-01", "2026-01-02T03:04:05Z", "2026-01-02 03:04:05 +0200"]),
    "total": st.decimals(0, 10_000, places=2).map(str),
    "status": st.sampled_from(["", "paid", "completed", "refunded", "canceled"]),
}).filter(lambda r: r["customer_id"] or r["email"])


@SETTINGS
@given(rows=st.lists(GOOD_ORDER, min_size=1, max_size=5), data=st.data())
def test_generic_column_order_does_not_matter(rows, data):
    columns = list(rows[0])
    shuffled = data.draw(st.permutations(columns))

    def read_with(order):
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=order)
        writer.writeheader()
        writer.writerows(rows)
        return list(read_generic_orders(io.BytesIO(buf.getvalue().encode()), "csv"))

    plain, mixed = read_with(columns), read_with(shuffled)
    assert all(isinstance(o, OrderRecord) for o in plain)
    def strip(items):
        return [{k: v for k, v in asdict(o).items() if k != "raw" and k != "customer"}
                | {"customer": {k: v for k, v in asdict(o.customer).items() if k != "raw"}}
                for o in items]

    assert strip(plain) == strip(mixed)


CUSTOMER = st.fixed_dictionaries({
    "Customer ID": st.from_regex(r"'[0-9]{1,8}", fullmatch=True),
    "First Name": st.sampled_from(["Ann", "'t Hooft", "Zoë", ""]),
    "Email": st.sampled_from(["a@example.com", "", "Mixed.Case@Example.NL"]),
    "Phone": st.sampled_from(["'+31 6 1234 5678", ""]),
    "Accepts Email Marketing": st.sampled_from(["yes", "no", ""]),
    "Tags": st.sampled_from(["", "vip", "vip, newsletter"]),
}).filter(lambda c: c["First Name"] or c["Email"] or c["Phone"])


@SETTINGS
@given(rows=st.lists(CUSTOMER, min_size=1, max_size=5), data=st.data())
def test_shopify_customer_column_order_does_not_matter(rows, data):
    def read_with(order):
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=order)
        writer.writeheader()
        writer.writerows(rows)
        return [{k: v for k, v in asdict(c).items() if k != "raw"}
                for c in read_shopify_customers(io.BytesIO(buf.getvalue().encode()))]

    plain = read_with(list(rows[0]))
    assert plain == read_with(data.draw(st.permutations(list(rows[0]))))
    assert all(c["external_id"] and not c["external_id"].startswith("'") for c in plain)


# == parsers ===================================================================================

@SETTINGS
@given(text=st.one_of(st.text(max_size=30), GARBAGE, PLAUSIBLE))
def test_parse_money_accepts_or_raises_value_error(text):
    try:
        amount = parse_money(text)
    except ValueError as exc:
        assert str(exc)
    else:
        assert isinstance(amount, Decimal) and amount.is_finite() and abs(amount) < 10**12


@SETTINGS
@given(amount=st.decimals(-10**9, 10**9, places=2), style=st.sampled_from(
    ["plain", "us", "eu", "space", "swiss", "euro-prefix", "code-suffix"]))
def test_parse_money_round_trips(amount, style):
    sign, digits = ("-" if amount < 0 else ""), f"{abs(amount):.2f}"
    whole, cents = digits.split(".")
    grouped = f"{int(whole):,}"
    text = {
        "plain": f"{sign}{whole}.{cents}",
        "us": f"{sign}{grouped}.{cents}",
        "eu": f"{sign}{grouped.replace(',', '.')},{cents}",
        "space": f"{sign}{grouped.replace(',', ' ')},{cents}",
        "swiss": f"{sign}{grouped.replace(',', chr(39))}.{cents}",
        "euro-prefix": f"{sign}€{grouped}.{cents}",
        "code-suffix": f"{sign}{whole}.{cents} EUR",
    }[style]
    assert parse_money(text) == amount


@SETTINGS
@given(text=st.one_of(st.text(max_size=40), PLAUSIBLE))
def test_parse_timestamp_accepts_or_raises_value_error(text):
    try:
        value = parse_timestamp(text)
    except ValueError as exc:
        assert str(exc)
    else:
        assert value.tzinfo == UTC


@SETTINGS
@given(moment=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(
           lambda d: d.replace(microsecond=0)),
       offset_minutes=st.integers(-14 * 60, 14 * 60).map(lambda m: m - m % 15),
       style=st.sampled_from(["iso", "shopify", "compact", "naive-utc"]))
def test_parse_timestamp_round_trips(moment, offset_minutes, style):
    tz = timezone(timedelta(minutes=offset_minutes))
    aware = moment.replace(tzinfo=tz)
    if style == "naive-utc":
        aware = moment.replace(tzinfo=UTC)
        text = aware.strftime("%Y-%m-%dT%H:%M:%S")
    elif style == "iso":
        text = aware.isoformat()
    elif style == "shopify":
        text = aware.strftime("%Y-%m-%d %H:%M:%S %z")
    else:
        text = aware.strftime("%Y-%m-%dT%H:%M:%S%z")
    if style != "iso" and aware.year < 1000:
        return  # strftime does not pad years before 1000 on every platform
    # Inside 1970 .. ten years ahead a timestamp round-trips; outside it is refused, saying so.
    from crm.services.shared.bounds import EARLIEST, latest_moment

    if EARLIEST <= aware <= latest_moment():
        assert parse_timestamp(text) == aware
    else:
        with pytest.raises(ValueError, match="outside the dates|out of range"):
            parse_timestamp(text)


@SETTINGS
@given(text=st.one_of(st.none(), st.text(max_size=40)))
def test_email_helpers_never_raise(text):
    email = normalise_email(text)
    assert email is None or (email == email.strip().lower() and email)
    assert normalise_email(email) == email
    assert is_valid_email(text) in (True, False)


# == the incremental JSON decoder ==============================================================

def decode_json(text: str, chunk: int) -> list:
    """_JsonValues over ``text``, refilling its buffer ``chunk`` characters at a time."""
    from crm.services.orders.importing.reading import _JsonValues
    saved = _JsonValues.CHUNK
    _JsonValues.CHUNK = chunk
    try:
        return list(_JsonValues(io.StringIO(text)))
    finally:
        _JsonValues.CHUNK = saved


PLAIN_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=12)


@SETTINGS
@given(values=st.lists(PLAIN_JSON, max_size=6), indent=st.sampled_from([None, 2]),
       chunk=st.integers(1, 9), as_array=st.booleans())
def test_json_values_are_the_same_whatever_the_chunk_boundaries(values, indent, chunk, as_array):
    if as_array:
        got = decode_json(json.dumps(values, indent=indent), chunk)
        assert [(p, v, e) for p, v, e in got] == [(i, v, None) for i, v in enumerate(values, 1)]
        return
    while values and isinstance(values[0], list):
        values = values[1:]  # a leading "[" would make it an array
    parts = [json.dumps(v, indent=indent) for v in values]
    starts, line = [], 1
    for part in parts:
        starts.append(line)
        line += part.count("\n") + 1
    got = decode_json("\n".join(parts), chunk)
    assert [(p, v, e) for p, v, e in got] == [(s, v, None) for s, v in zip(starts, values)]


@SETTINGS
@given(text=st.text(alphabet='{}[]",:0123456789 \n\ttruefalsn-.eE\\u', max_size=60), chunk=st.integers(1, 9))
def test_json_errors_are_the_same_whatever_the_chunk_boundaries(text, chunk):
    assert decode_json(text, chunk) == decode_json(text, 1 << 16)
