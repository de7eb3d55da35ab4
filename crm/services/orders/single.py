"""Single orders given as data: posted to the JSON API or typed in on a contact's page.

Both build an `OrderRecord` and go through `orders.record_order`, like every import and
webhook. An API order is read by the generic orders reader (the same checks as an orders file),
with its line items checked here, since files carry no lines.
"""
from __future__ import annotations

import io
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from crm.models import ORDER_STATUSES, Contact, utcnow
from crm.services.orders.importing.generic import GENERIC_FIELDS, read_generic_orders
from crm.services.orders.importing.records import (
    ZERO,
    CustomerRecord,
    LineRecord,
    OrderRecord,
    Rejected,
    parse_money,
    said_problem,
)
from crm.services.shared.bounds import MAX_QUANTITY
from crm.services.shared.errors import N_, Message, ValidationError

API_FIELDS = GENERIC_FIELDS + ("source", "lines")
LINE_FIELDS = ("sku", "name", "quantity", "unit_price")
MAX_LINES = 500
MANUAL_SOURCE = "manual"
# The reader joins its reasons as "field: why; field: why"; split only where a field name follows.
_REASON_SPLIT = re.compile(r"; (?=(?:customer_id or email|" + "|".join(GENERIC_FIELDS) + r"): )")


def _reason_fields(reason: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in _REASON_SPLIT.split(reason):
        label, sep, why = part.partition(": ")
        if label == "customer_id or email":
            label, why = "email", N_("Give the customer's email or customer_id.")
        name = label
        if not sep or name not in GENERIC_FIELDS:
            name, why = "body", part
        else:
            why = said_problem(why)  # the reader's words, shown in the client's language
        fields[name] = Message(N_("%(first)s %(then)s"), first=fields[name], then=why) if name in fields else why
    return fields


def _lines(value: Any) -> tuple[list[LineRecord], dict[str, str]]:
    if value is None:
        return [], {}
    if not isinstance(value, list):
        return [], {"lines": N_("Give a list of line items.")}
    if len(value) > MAX_LINES:
        return [], {"lines": Message(N_("At most %(limit)s line items."), limit=MAX_LINES)}
    lines, errors = [], {}
    for i, item in enumerate(value):
        where = f"lines[{i}]"
        if not isinstance(item, dict):
            errors[where] = N_("Give an object with sku, name, quantity and unit_price.")
            continue
        for key in sorted(set(item) - set(LINE_FIELDS)):
            errors[f"{where}.{key}"] = N_("Unknown field.")
        sku, name = item.get("sku"), item.get("name", "")
        if sku is not None and (not isinstance(sku, str) or len(sku) > 120):
            errors[f"{where}.sku"] = N_("Give the SKU as text of at most 120 characters, or null.")
        if not isinstance(name, str) or len(name) > 300:
            errors[f"{where}.name"] = N_("Give the product name as text of at most 300 characters.")
        elif not name.strip() and not (isinstance(sku, str) and sku.strip()):
            errors[f"{where}.name"] = N_("Give the product's name or SKU.")
        quantity = item.get("quantity", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 < quantity <= MAX_QUANTITY:
            errors[f"{where}.quantity"] = Message(N_("Give a whole number from 1 to %(high)s."), high=MAX_QUANTITY)
        try:
            price = parse_money(item.get("unit_price"))
            if price < 0:
                raise ValueError("must not be negative")
        except ValueError as error:
            errors[f"{where}.unit_price"] = Message(N_("Not a price: %(why)s."), why=said_problem(str(error)))
            price = ZERO
        if not any(key.startswith(where) for key in errors):
            lines.append(LineRecord(sku=sku.strip() if isinstance(sku, str) and sku.strip() else None,
                                    name=name.strip(), quantity=quantity, unit_price=price))
    return lines, errors


def api_order_record(body: dict[str, Any], *, default_currency: str = "EUR") -> OrderRecord:
    """Return the OrderRecord a JSON API body describes, or raise ValidationError naming each bad field."""
    errors: dict[str, str] = {name: N_("Unknown field.") for name in sorted(set(body) - set(API_FIELDS))}
    source = body.get("source", "api")
    if not isinstance(source, str) or not source.strip() or len(source.strip()) > 40:
        errors["source"] = N_("Give the source as a name of 1 to 40 characters, e.g. 'pos'.")
    for name in GENERIC_FIELDS:
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int, float))):
            errors[name] = N_("Give text or a number.")
    lines, line_errors = _lines(body.get("lines"))
    errors.update(line_errors)
    if errors:
        raise ValidationError(fields=errors)
    fields = {name: body[name] for name in GENERIC_FIELDS if body.get(name) is not None}
    reader = read_generic_orders(io.StringIO(json.dumps(fields)), "json", source=source.strip(),
                                 default_currency=default_currency)
    item = next(iter(reader))
    if isinstance(item, Rejected):
        raise ValidationError(fields=_reason_fields(item.reason))
    item.lines = lines
    item.raw = body
    if lines and body.get("subtotal") is None:
        item.subtotal = sum((line.unit_price * line.quantity for line in lines), ZERO)
    return item


def new_external_id(now: datetime) -> str:
    """Return an order id for an order typed in by hand (time-ordered, unique)."""
    return f"M-{now:%Y%m%d%H%M%S}-{secrets.token_hex(3)}"


@dataclass
class ManualLine:
    sku: str | None
    name: str
    quantity: int
    unit_price: Decimal


def manual_order_record(contact: Contact, *, lines: list[ManualLine], placed_at: datetime, status: str,
                        currency: str, discount: Decimal = ZERO, shipping: Decimal = ZERO, tax: Decimal = ZERO,
                        total: Decimal | None = None, number: str | None = None,
                        now: datetime | None = None) -> OrderRecord:
    """Return the OrderRecord of an order typed in for a contact, or raise ValidationError.

    Without a total, the total is the line items less the discount plus shipping (prices are
    taken to include tax, which is recorded as given).
    """
    now = now or utcnow()
    errors: dict[str, str] = {}
    lines = [line for line in lines if line.name or line.sku]
    if not lines:
        errors["lines"] = N_("Add at least one item.")
    for name, amount in (("discount", discount), ("shipping", shipping), ("tax", tax)):
        if amount < 0:
            errors[name] = N_("Must not be negative.")
    if status not in ORDER_STATUSES:
        errors["status"] = Message(N_("Choose one of %(choices)s."), choices=", ".join(ORDER_STATUSES))
    currency = (currency or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        errors["currency"] = N_("Use the three-letter currency code, e.g. EUR.")
    if placed_at > now + timedelta(minutes=5):
        errors["placed_at"] = N_("That is in the future; record orders already placed.")
    subtotal = sum((line.unit_price * line.quantity for line in lines), ZERO)
    total = subtotal - discount + shipping if total is None else total
    if total < 0:
        errors["total"] = N_("The total must not be negative.")
    number = (number or "").strip()
    if len(number) > 60:
        errors["number"] = N_("Keep it under 60 characters.")
    if errors:
        raise ValidationError(fields=errors)
    external_id = new_external_id(now)
    customer = CustomerRecord(line=1, source=MANUAL_SOURCE, email=contact.email, email_display=contact.email_display,
                              first_name=contact.first_name or "", last_name=contact.last_name or "",
                              phone=contact.phone)
    return OrderRecord(
        line=1, source=MANUAL_SOURCE, external_id=external_id, number=number or external_id, placed_at=placed_at,
        status=status, currency=currency, subtotal=subtotal, discount=discount, shipping=shipping, tax=tax,
        total=total, refunded=total if status == "refunded" else ZERO, customer=customer,
        lines=[LineRecord(sku=line.sku, name=line.name, quantity=line.quantity, unit_price=line.unit_price)
               for line in lines],
        raw={"typed_in_for_contact": contact.id},
    )

