"""WooCommerce: orders and customers as the REST API and webhooks give them (JSON, NDJSON)."""
from __future__ import annotations

import re
from decimal import ROUND_HALF_UP
from typing import Any, Iterator

from crm.services.orders.importing.reading import (
    CENT,
    Item,
    _address,
    _as_dict,
    _as_list,
    _check_format,
    _country,
    _csv_records,
    _Fields,
    _first,
    _flatten,
    _json_records,
    _json_type,
    _opt,
    _refunded,
    _text,
    _unwrap,
)
from crm.services.orders.importing.records import ZERO, CustomerRecord, LineRecord, OrderRecord, Rejected, show

# == WooCommerce ===============================================================================

WOOCOMMERCE = "woocommerce"
WOOCOMMERCE_FORMATS = ("json", "ndjson", "csv")
_WOO_STATUS = {
    "pending": "pending", "on-hold": "pending", "checkout-draft": "pending",
    "processing": "paid", "completed": "fulfilled",
    "cancelled": "cancelled", "failed": "cancelled", "refunded": "refunded",
}


def _woo_status(f: _Fields, value: Any) -> str:
    key = re.sub(r"[\s_]+", "-", _text(value).lower())
    key = key[3:] if key.startswith("wc-") else key
    status = _WOO_STATUS.get(key)
    if status is None:
        f.add("status: missing" if not key else f"status: {show(_text(value))} is not a WooCommerce order status")
        return "pending"
    return status


def parse_woocommerce_order(obj: Any, line: int = 1, *, default_currency: str = "EUR") -> OrderRecord | Rejected:
    """One WooCommerce REST v3 order (an ``order.created`` webhook body) -> record or Rejected.

    Also takes the flattened form ({"billing.email": ...} or {"billing_email": ...}), which is
    what the CSV reader passes. Never raises on bad data.
    """
    obj = _unwrap(obj, "order")
    if not isinstance(obj, dict):
        return Rejected(line, f"expected a JSON object, got {_json_type(obj)}", {"value": obj})
    return _woo_order(_flatten(obj), line, obj, default_currency)


def _woo_order(flat: dict, line: int, raw: dict, default_currency: str) -> Item:
    f = _Fields()
    external_id = f.required("id", flat.get("id"))
    number = _text(flat.get("number")) or external_id
    if _text(flat.get("date created gmt")):
        placed_at = f.timestamp("date_created_gmt", flat.get("date created gmt"))
    else:
        placed_at = f.timestamp("date_created", flat.get("date created"))
    status = _woo_status(f, flat.get("status"))
    currency = f.currency("currency", flat.get("currency"), default_currency)
    total = f.money("total", flat.get("total"), required=True)
    discount = f.money("discount_total", flat.get("discount total"))
    shipping = f.money("shipping_total", flat.get("shipping total"))
    tax = f.money("total_tax", flat.get("total tax"))
    lines, line_subtotal = [], ZERO
    for i, item in enumerate(_as_list(flat.get("line items")), 1):
        item = _as_dict(item)
        quantity = f.quantity(f"line_items[{i}].quantity", item.get("quantity"))
        if _text(item.get("subtotal")) and quantity:
            sub = f.money(f"line_items[{i}].subtotal", item.get("subtotal"))
            line_subtotal += sub
            unit = (sub / quantity).quantize(CENT, ROUND_HALF_UP)
        else:
            unit = f.money(f"line_items[{i}].price", item.get("price"))
            line_subtotal += unit * quantity
        lines.append(LineRecord(sku=_opt(item.get("sku")), name=_text(item.get("name")),
                                quantity=quantity, unit_price=unit))
    if lines:
        subtotal = line_subtotal
    elif _text(flat.get("subtotal")):
        subtotal = f.money("subtotal", flat.get("subtotal"))
    else:
        subtotal = total - tax - shipping + discount
    refunded = sum((abs(f.money("refunds.total", _as_dict(r).get("total")))
                    for r in _as_list(flat.get("refunds"))), ZERO)
    if refunded and status in ("paid", "fulfilled"):
        status = "refunded" if refunded >= total else "partially_refunded"
    customer_id = _text(flat.get("customer id"))
    email, email_display = f.email("billing.email", flat.get("billing email"))
    customer = CustomerRecord(
        line=line, source=WOOCOMMERCE,
        external_id=customer_id if customer_id not in ("", "0") else None,
        email=email, email_display=email_display,
        first_name=_text(flat.get("billing first name")), last_name=_text(flat.get("billing last name")),
        phone=_opt(flat.get("billing phone")), company=_opt(flat.get("billing company")),
        address=_address(flat.get("billing address 1"), flat.get("billing address 2"),
                         flat.get("billing postcode")),
        city=_opt(flat.get("billing city")), country=_country(flat.get("billing country")),
        raw=_as_dict(raw.get("billing")) or raw,
    )
    f.customer_identity(customer, " for the customer (billing)")
    if f.problems:
        return Rejected(line, f.reason, raw)
    return OrderRecord(
        line=line, source=WOOCOMMERCE, external_id=external_id, number=number,
        placed_at=placed_at, status=status, currency=currency, subtotal=subtotal,
        discount=discount, shipping=shipping, tax=tax, total=total,
        refunded=_refunded(status, refunded, total), customer=customer, lines=lines, raw=raw,
    )


def parse_woocommerce_customer(obj: Any, line: int = 1) -> CustomerRecord | Rejected:
    """One WooCommerce REST v3 customer (a ``customer.created`` webhook body) -> record or Rejected."""
    obj = _unwrap(obj, "customer")
    if not isinstance(obj, dict):
        return Rejected(line, f"expected a JSON object, got {_json_type(obj)}", {"value": obj})
    return _woo_customer(_flatten(obj), line, obj)


def _woo_customer(flat: dict, line: int, raw: dict) -> Item:
    f = _Fields()
    label = "email" if _text(flat.get("email")) else "billing.email"
    email, email_display = f.email(label, _first(flat.get("email"), flat.get("billing email")))
    if _text(flat.get("date created gmt")):
        created = f.timestamp("date_created_gmt", flat.get("date created gmt"), required=False)
    else:
        created = f.timestamp("date_created", flat.get("date created"), required=False)
    customer = CustomerRecord(
        line=line, source=WOOCOMMERCE, external_id=_opt(flat.get("id")),
        email=email, email_display=email_display,
        first_name=_text(_first(flat.get("first name"), flat.get("billing first name"))),
        last_name=_text(_first(flat.get("last name"), flat.get("billing last name"))),
        phone=_opt(flat.get("billing phone")), company=_opt(flat.get("billing company")),
        address=_address(flat.get("billing address 1"), flat.get("billing address 2"),
                         flat.get("billing postcode")),
        city=_opt(flat.get("billing city")), country=_country(flat.get("billing country")),
        created_at=created, raw=raw,
    )
    f.customer_identity(customer, "")
    return Rejected(line, f.reason, raw) if f.problems else customer


def read_woocommerce_orders(fileobj: Any, fmt: str = "json", *, default_currency: str = "EUR",
                            encoding: str = "utf-8-sig") -> Iterator[Item]:
    """WooCommerce REST v3 orders: JSON (object, array or NDJSON) or CSV of the flattened fields."""
    fmt = _check_format("woocommerce-orders", fmt, WOOCOMMERCE_FORMATS, "json")
    if fmt == "csv":
        return _csv_records(
            fileobj, encoding, ",",
            [("id",), ("status",), ("total",), ("date_created_gmt", "date_created")],
            "a WooCommerce orders CSV",
            lambda flat, line, raw: _woo_order(flat, line, raw, default_currency))
    return _json_records(fileobj, encoding,
                         lambda obj, line: parse_woocommerce_order(obj, line, default_currency=default_currency),
                         ndjson=fmt == "ndjson")


def read_woocommerce_customers(fileobj: Any, fmt: str = "json", *,
                               encoding: str = "utf-8-sig") -> Iterator[Item]:
    """WooCommerce REST v3 customers: JSON (object, array or NDJSON) or CSV of the flattened fields."""
    fmt = _check_format("woocommerce-customers", fmt, WOOCOMMERCE_FORMATS, "json")
    if fmt == "csv":
        return _csv_records(fileobj, encoding, ",", [("email", "billing.email")],
                            "a WooCommerce customers CSV", _woo_customer)
    return _json_records(fileobj, encoding, parse_woocommerce_customer, ndjson=fmt == "ndjson")
