"""Shopify: the orders and customers exports (CSV) and the order and customer JSON of the API and webhooks."""
from __future__ import annotations

import re
from typing import Any, Iterator

from crm.services.orders.importing.reading import (
    MAX_GROUP_ROWS,
    Item,
    _address,
    _as_dict,
    _as_list,
    _check_format,
    _country,
    _csv_records,
    _CsvTable,
    _Fields,
    _first,
    _json_type,
    _number_text,
    _open_text,
    _opt,
    _refunded,
    _Row,
    _split_name,
    _tags,
    _text,
    _unwrap,
    norm_key,
)
from crm.services.orders.importing.records import (
    ZERO,
    CustomerRecord,
    LineRecord,
    OrderRecord,
    Rejected,
    parse_bool,
    parse_timestamp,
    show,
)
from crm.services.shared.languages import language_or_none

# == Shopify ===================================================================================

SHOPIFY = "shopify"
SHOPIFY_FORMATS = ("csv",)  # the admin's exports; the JSON comes one order at a time (API, webhooks)
_SHOPIFY_FINANCIAL = {
    "paid": "paid", "pending": "pending", "authorized": "paid", "partially_paid": "pending",
    "refunded": "refunded", "partially_refunded": "partially_refunded",
    "voided": "cancelled", "expired": "cancelled",
}


def _shopify_status(f: _Fields, label: str, financial: Any, cancelled: Any, fulfillment: Any) -> str:
    key = re.sub(r"[\s-]+", "_", _text(financial).lower())
    status = _SHOPIFY_FINANCIAL.get(key)
    if status is None:
        f.add(f"{label}: missing" if not key else f"{label}: {show(_text(financial))} is not a Shopify financial status")
        return "pending"
    if status == "paid" and _text(fulfillment).lower() == "fulfilled":
        status = "fulfilled"
    if _text(cancelled) and status not in ("refunded", "partially_refunded"):
        status = "cancelled"
    return status


_SO = {  # Shopify orders export columns, by role
    "name": ("Name",), "id": ("Id",), "email": ("Email",), "financial": ("Financial Status",),
    "fulfillment": ("Fulfillment Status",), "marketing": ("Accepts Marketing",),
    "currency": ("Currency",), "subtotal": ("Subtotal",), "shipping": ("Shipping",),
    "tax": ("Taxes",), "total": ("Total",), "discount": ("Discount Amount",),
    "created": ("Created at",), "cancelled": ("Cancelled at",), "refunded": ("Refunded Amount",),
    "billing_name": ("Billing Name",), "shipping_name": ("Shipping Name",),
    "address1": ("Billing Address1",), "address2": ("Billing Address2",), "zip": ("Billing Zip",),
    "company": ("Billing Company",), "city": ("Billing City",), "country": ("Billing Country",),
    "phone": ("Phone",), "billing_phone": ("Billing Phone",), "shipping_phone": ("Shipping Phone",),
    "customer_id": ("Customer ID",),
    "l_name": ("Lineitem name",), "l_sku": ("Lineitem sku",), "l_qty": ("Lineitem quantity",),
    "l_price": ("Lineitem price",),
}


def read_shopify_orders(fileobj: Any, fmt: str = "csv", *, default_currency: str = "EUR",
                        encoding: str = "utf-8-sig") -> Iterator[Item]:
    """Shopify's admin orders export (one row per line item) -> OrderRecord / Rejected."""
    _check_format("shopify-orders", fmt, SHOPIFY_FORMATS, "csv")
    return _shopify_orders(fileobj, default_currency, encoding)


def _shopify_orders(fileobj: Any, default_currency: str, encoding: str) -> Iterator[Item]:
    with _open_text(fileobj, encoding, "") as text:
        table = _CsvTable(text)
        bad = table.read_header(
            [("Name",), ("Created at",), ("Total",), ("Financial Status",)], "a Shopify orders export")
        if bad:
            yield bad
            return
        cols = {role: table.col(*names) for role, names in _SO.items()}
        order_cols = [(role, i) for role, i in cols.items() if i is not None and not role.startswith("l_")]
        name_col = cols["name"]
        group: list[_Row] = []
        overflow = False
        key = ""
        held: list[Rejected] = []  # unreadable rows met inside a group, yielded after it

        def finish() -> Iterator[Item]:
            if group:
                yield _shopify_group(group, overflow, cols, order_cols, default_currency)
            yield from held
            group.clear()
            held.clear()

        for row in table:
            if isinstance(row, Rejected):
                if group:
                    held.append(row)
                else:
                    yield row
                continue
            name = row.cells[name_col].strip()
            if group and (not name or name != key):
                yield from finish()
                overflow = False
            key = name
            if len(group) < MAX_GROUP_ROWS:
                group.append(row)
            else:
                overflow = True
            if not name:
                yield from finish()
        yield from finish()


def _shopify_group(rows: list[_Row], overflow: bool, cols: dict[str, int | None],
                   order_cols: list[tuple[str, int]], default_currency: str) -> Item:
    first = rows[0]
    f = _Fields()
    for row in rows:
        if row.problem:
            f.add(row.problem)
    if overflow:
        f.add(f"order has more than {MAX_GROUP_ROWS} rows")

    # Order-level fields: from the first row of the group that has them.
    values = dict.fromkeys(cols, "")
    for role, i in order_cols:
        text = first.cells[i].strip()
        if not text and len(rows) > 1:
            for row in rows:
                text = row.cells[i].strip()
                if text:
                    break
        values[role] = text
    value = values.__getitem__

    name = f.required("Name", value("name"))
    external_id = _number_text(value("id")) or name
    placed_at = f.timestamp("Created at", value("created"))
    status = _shopify_status(f, "Financial Status", value("financial"), value("cancelled"), value("fulfillment"))
    currency = f.currency("Currency", value("currency"), default_currency)
    total = f.money("Total", value("total"), required=True)
    amounts = {k: f.money(label, value(k)) for k, label in (
        ("subtotal", "Subtotal"), ("discount", "Discount Amount"), ("shipping", "Shipping"),
        ("tax", "Taxes"), ("refunded", "Refunded Amount"))}
    email, email_display = f.email("Email", value("email"))
    first_name, last_name = _split_name(value("billing_name") or value("shipping_name"))
    customer = CustomerRecord(
        line=first.line, source=SHOPIFY,
        external_id=_number_text(value("customer_id")) or None,
        email=email, email_display=email_display, first_name=first_name, last_name=last_name,
        phone=_number_text(value("phone") or value("billing_phone") or value("shipping_phone")) or None,
        company=value("company") or None,
        address=_address(value("address1"), value("address2"), _number_text(value("zip"))),
        city=value("city") or None, country=_country(value("country")),
        consent=parse_bool(value("marketing")), raw=first.raw,
    )
    f.customer_identity(customer, " for the customer (Email, Billing Name, Phone)")
    lines = []
    line_cols = [(role, cols[role]) for role in ("l_name", "l_sku", "l_qty", "l_price")]
    for row in rows:
        get = {role: (row.cells[i].strip() if i is not None else "")
               for role, i in line_cols}
        if not any(get.values()):
            continue
        lines.append(LineRecord(
            sku=get["l_sku"] or None, name=get["l_name"],
            quantity=f.quantity(f"Lineitem quantity (line {row.line})", get["l_qty"]),
            unit_price=f.money(f"Lineitem price (line {row.line})", get["l_price"]),
        ))
    raws = [row.raw for row in rows]
    if f.problems:
        return Rejected(first.line, f.reason, {"rows": raws})
    return OrderRecord(
        line=first.line, source=SHOPIFY, external_id=external_id, number=name,
        placed_at=placed_at, status=status, currency=currency,
        subtotal=amounts["subtotal"], discount=amounts["discount"], shipping=amounts["shipping"],
        tax=amounts["tax"], total=total,
        refunded=_refunded(status, amounts["refunded"], total),
        customer=customer, lines=lines, raw=raws,
    )


_SC = {  # Shopify customers export columns, newer and older header sets
    "id": ("Customer ID", "Id"), "first": ("First Name",), "last": ("Last Name",),
    "email": ("Email",), "consent": ("Accepts Email Marketing", "Accepts Marketing"),
    "company": ("Default Address Company", "Company"),
    "address1": ("Default Address Address1", "Address1"),
    "address2": ("Default Address Address2", "Address2"),
    "zip": ("Default Address Zip", "Zip"), "city": ("Default Address City", "City"),
    "country_code": ("Default Address Country Code", "Country Code"),
    "country": ("Default Address Country", "Country"),
    "phone": ("Phone",), "address_phone": ("Default Address Phone",),
    "tags": ("Tags",), "created": ("Created At",),
}


def read_shopify_customers(fileobj: Any, fmt: str = "csv", *,
                           encoding: str = "utf-8-sig") -> Iterator[Item]:
    """Shopify's customers export (newer "Customer ID"/"Default Address ..." or older headers)."""
    _check_format("shopify-customers", fmt, SHOPIFY_FORMATS, "csv")
    return _csv_records(fileobj, encoding, ",", [("Email",)], "a Shopify customers export",
                        _shopify_customer_row)


def _shopify_customer_row(flat: dict, line: int, raw: dict) -> Item:
    def value(role: str) -> str:
        for name in _SC[role]:
            text = flat.get(norm_key(name), "")
            if text:
                return text
        return ""

    f = _Fields()
    email, email_display = f.email("Email", value("email"))
    customer = CustomerRecord(
        line=line, source=SHOPIFY, external_id=_number_text(value("id")) or None,
        email=email, email_display=email_display,
        first_name=value("first"), last_name=value("last"),
        phone=_number_text(value("phone") or value("address_phone")) or None,
        company=value("company") or None,
        address=_address(value("address1"), value("address2"), _number_text(value("zip"))),
        city=value("city") or None, country=_country(value("country_code"), value("country")),
        consent=parse_bool(value("consent")), tags=_tags(value("tags")),
        created_at=f.timestamp("Created At", value("created"), required=False), raw=raw,
    )
    f.customer_identity(customer, "")
    return Rejected(line, f.reason, raw) if f.problems else customer


def _shopify_consent(customer: dict, fallback: Any = None) -> bool | None:
    consent = _as_dict(customer.get("email_marketing_consent"))
    if consent.get("state") is not None:
        state = _text(consent.get("state")).lower()
        return {"subscribed": True, "not_subscribed": False, "unsubscribed": False}.get(state)
    return parse_bool(_first(customer.get("accepts_marketing"), fallback))


def parse_shopify_order_json(obj: Any, line: int = 1, *, default_currency: str = "EUR") -> OrderRecord | Rejected:
    """One Shopify REST order resource (an ``orders/create`` webhook body) -> record or Rejected.

    Never raises on bad data: a Rejected carries the reason.
    """
    obj = _unwrap(obj, "order")
    if not isinstance(obj, dict):
        return Rejected(line, f"expected a JSON object, got {_json_type(obj)}", {"value": obj})
    f = _Fields()
    external_id = f.required("id", obj.get("id"))
    number = _text(_first(obj.get("name"), obj.get("order_number"))) or external_id
    placed_at = f.timestamp("created_at", _first(obj.get("created_at"), obj.get("processed_at")))
    status = _shopify_status(f, "financial_status", obj.get("financial_status"),
                             obj.get("cancelled_at"), obj.get("fulfillment_status"))
    currency = f.currency("currency", obj.get("currency"), default_currency)
    total = f.money("total_price", obj.get("total_price"), required=True)
    shipping_set = _as_dict(_as_dict(obj.get("total_shipping_price_set")).get("shop_money"))
    if _text(shipping_set.get("amount")):
        shipping = f.money("total_shipping_price_set", shipping_set.get("amount"))
    else:
        shipping = sum((f.money("shipping_lines.price", _as_dict(s).get("price"))
                        for s in _as_list(obj.get("shipping_lines"))), ZERO)
    refunded = ZERO
    for refund in _as_list(obj.get("refunds")):
        for tx in _as_list(_as_dict(refund).get("transactions")):
            tx = _as_dict(tx)
            if _text(tx.get("kind")) == "refund" and _text(tx.get("status")) in ("", "success"):
                refunded += abs(f.money("refunds.transactions.amount", tx.get("amount")))
    customer_obj = _as_dict(obj.get("customer"))
    billing = _as_dict(obj.get("billing_address"))
    address = billing or _as_dict(customer_obj.get("default_address"))
    email, email_display = f.email("email", _first(obj.get("email"), obj.get("contact_email"),
                                                   customer_obj.get("email")))
    created = None
    try:
        if _text(customer_obj.get("created_at")):
            created = parse_timestamp(_text(customer_obj.get("created_at")))
    except ValueError:
        pass
    customer = CustomerRecord(
        line=line, source=SHOPIFY, external_id=_opt(customer_obj.get("id")),
        email=email, email_display=email_display,
        first_name=_text(_first(customer_obj.get("first_name"), billing.get("first_name"))),
        last_name=_text(_first(customer_obj.get("last_name"), billing.get("last_name"))),
        phone=_opt(_first(customer_obj.get("phone"), obj.get("phone"), billing.get("phone"))),
        company=_opt(address.get("company")),
        address=_address(address.get("address1"), address.get("address2"), _number_text(address.get("zip"))),
        city=_opt(address.get("city")), country=_country(address.get("country_code")),
        consent=_shopify_consent(customer_obj, obj.get("buyer_accepts_marketing")),
        tags=_tags(customer_obj.get("tags")), created_at=created, raw=customer_obj,
        # The language the customer shopped in ("nl", "en-US"): their emails are written in it.
        language=language_or_none(_first(obj.get("customer_locale"), customer_obj.get("locale"))),
    )
    f.customer_identity(customer, " for the customer")
    lines = []
    for i, item in enumerate(_as_list(obj.get("line_items")), 1):
        item = _as_dict(item)
        lines.append(LineRecord(
            sku=_opt(item.get("sku")), name=_text(_first(item.get("name"), item.get("title"))),
            quantity=f.quantity(f"line_items[{i}].quantity", item.get("quantity")),
            unit_price=f.money(f"line_items[{i}].price", item.get("price")),
        ))
    if f.problems:
        return Rejected(line, f.reason, obj)
    return OrderRecord(
        line=line, source=SHOPIFY, external_id=external_id, number=number, placed_at=placed_at,
        status=status, currency=currency,
        subtotal=f.money("subtotal_price", obj.get("subtotal_price")),
        discount=f.money("total_discounts", obj.get("total_discounts")),
        shipping=shipping, tax=f.money("total_tax", obj.get("total_tax")), total=total,
        refunded=_refunded(status, refunded, total), customer=customer, lines=lines, raw=obj,
    )


def parse_shopify_customer_json(obj: Any, line: int = 1) -> CustomerRecord | Rejected:
    """One Shopify REST customer resource (a ``customers/create`` webhook body)."""
    obj = _unwrap(obj, "customer")
    if not isinstance(obj, dict):
        return Rejected(line, f"expected a JSON object, got {_json_type(obj)}", {"value": obj})
    f = _Fields()
    address = _as_dict(obj.get("default_address")) or next(
        (a for a in _as_list(obj.get("addresses")) if isinstance(a, dict)), {})
    email, email_display = f.email("email", obj.get("email"))
    customer = CustomerRecord(
        line=line, source=SHOPIFY, external_id=_opt(obj.get("id")),
        email=email, email_display=email_display,
        first_name=_text(obj.get("first_name")), last_name=_text(obj.get("last_name")),
        phone=_opt(_first(obj.get("phone"), address.get("phone"))),
        company=_opt(address.get("company")),
        address=_address(address.get("address1"), address.get("address2"), _number_text(address.get("zip"))),
        city=_opt(address.get("city")), country=_country(address.get("country_code")),
        consent=_shopify_consent(obj), tags=_tags(obj.get("tags")),
        created_at=f.timestamp("created_at", obj.get("created_at"), required=False), raw=obj,
    )
    f.customer_identity(customer, "")
    return Rejected(line, f.reason, obj) if f.problems else customer
