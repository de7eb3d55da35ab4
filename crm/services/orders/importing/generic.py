"""A generic orders file from any shop: CSV, TSV or JSON with our column names, or mapped onto them."""
from __future__ import annotations

import os
import re
from typing import Any, Iterator

from crm.services.orders.importing.reading import (
    FORMATS,
    Item,
    _check_format,
    _csv_records,
    _Fields,
    _flatten,
    _json_records,
    _opt,
    _refunded,
    _text,
    detect_format,
    norm_key,
)
from crm.services.orders.importing.records import ORDER_STATUSES, ZERO, CustomerRecord, OrderRecord, Rejected, show

# == generic orders ============================================================================

GENERIC_FIELDS = (
    "order_id", "customer_id", "email", "first_name", "last_name", "placed_at", "total",
    "currency", "status", "phone", "number", "subtotal", "discount", "shipping", "tax",
)
_GENERIC_STATUS = {s: s for s in ORDER_STATUSES} | {
    "completed": "fulfilled", "complete": "fulfilled", "shipped": "fulfilled", "delivered": "fulfilled",
    "processing": "paid", "canceled": "cancelled", "voided": "cancelled", "failed": "cancelled",
    "on_hold": "pending", "authorized": "paid",
}


def read_generic_orders(fileobj: Any, fmt: str | None = None, mapping: dict[str, str] | None = None,
                        source: str = "import", *, default_currency: str = "EUR",
                        encoding: str = "utf-8-sig") -> Iterator[Item]:
    """Orders from any CSV, TSV, JSON or NDJSON file with the GENERIC_FIELDS columns.

    ``mapping`` renames file columns to fields ({"Order Ref": "order_id"}, from ``--map``);
    column names are matched case- and space-insensitively. ``fmt`` None means: from the file
    name. Required: order_id, placed_at (a date or a timestamp), total, and customer_id or email.
    """
    if fmt is None:
        name = fileobj if isinstance(fileobj, (str, os.PathLike)) else getattr(fileobj, "name", None)
        fmt = detect_format(name) if isinstance(name, (str, os.PathLike)) else None
        if fmt is None:
            raise ValueError("orders: cannot tell the format from the file name; pass fmt")
    fmt = _check_format("orders", fmt, FORMATS, None)
    rename = {}
    for column, field_name in (mapping or {}).items():
        target = norm_key(field_name).replace(" ", "_")
        if target not in GENERIC_FIELDS:
            raise ValueError(f"--map {column}={field_name}: unknown field; use one of {', '.join(GENERIC_FIELDS)}")
        rename[norm_key(column)] = norm_key(target)

    def build(flat: dict, line: int, raw: dict | None = None) -> Item:
        return _generic_order(flat, line, raw if raw is not None else flat, source, default_currency)

    if fmt in ("csv", "tsv"):
        return _csv_records(
            fileobj, encoding, "," if fmt == "csv" else "\t",
            [("order_id",), ("placed_at",), ("total",), ("customer_id", "email")],
            "an orders file (rename columns with --map FILECOL=field)",
            lambda flat, line, raw: build(flat, line, raw), rename)
    return _json_records(
        fileobj, encoding,
        lambda obj, line: build(_renamed(_flatten(obj), rename), line, obj), ndjson=fmt == "ndjson")


def _renamed(flat: dict, rename: dict[str, str]) -> dict:
    if not rename:
        return flat
    out = {}
    for key, value in flat.items():
        key = rename.get(key, key)
        if key not in out or out[key] in (None, ""):
            out[key] = value
    return out


def _generic_order(flat: dict, line: int, raw: dict, source: str, default_currency: str) -> Item:
    f = _Fields()
    order_id = f.required("order_id", flat.get("order id"))
    placed_at = f.timestamp("placed_at", flat.get("placed at"))
    total = f.money("total", flat.get("total"), required=True)
    customer_id = _text(flat.get("customer id"))
    email, email_display = f.email("email", flat.get("email"))
    if not customer_id and not email_display:
        f.add("customer_id or email: missing")
    key = re.sub(r"[\s-]+", "_", _text(flat.get("status")).lower())
    status = _GENERIC_STATUS.get(key or "paid")
    if status is None:
        f.add(f"status: {show(_text(flat.get('status')))} is not an order status")
    currency = f.currency("currency", flat.get("currency"), default_currency)
    amounts = {k: f.money(k, flat.get(k)) for k in ("subtotal", "discount", "shipping", "tax")}
    customer = CustomerRecord(
        line=line, source=source, external_id=customer_id or None,
        email=email, email_display=email_display,
        first_name=_text(flat.get("first name")), last_name=_text(flat.get("last name")),
        phone=_opt(flat.get("phone")), raw=raw,
    )
    if f.problems:
        return Rejected(line, f.reason, raw)
    return OrderRecord(
        line=line, source=source, external_id=order_id,
        number=_text(flat.get("number")) or order_id, placed_at=placed_at, status=status,
        currency=currency, total=total, refunded=_refunded(status, ZERO, total),
        customer=customer, raw=raw, **amounts,
    )
