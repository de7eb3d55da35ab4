"""A deterministic shop at any scale: its Shopify orders export, and the same shop loaded
straight into the app's tables.

The same seed and scale always give the same shop. Everything streams: contacts are pure
functions of their id, orders and interactions come out in time order batch by batch, so
memory stays flat whatever the number of orders.

    python -m bench.generate --contacts 2000 --orders 20000 --interactions 6000 \\
        --csv bench/data/orders.csv --database sqlite:///bench/data/shop.sqlite3
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

import numpy as np

# The columns of Shopify's admin orders export, in its order.
SHOPIFY_ORDER_COLUMNS = (
    "Name", "Email", "Financial Status", "Paid at", "Fulfillment Status", "Fulfilled at", "Accepts Marketing",
    "Currency", "Subtotal", "Shipping", "Taxes", "Total", "Discount Code", "Discount Amount", "Shipping Method",
    "Created at", "Lineitem quantity", "Lineitem name", "Lineitem price", "Lineitem compare at price",
    "Lineitem sku", "Lineitem requires shipping", "Lineitem taxable", "Lineitem fulfillment status",
    "Billing Name", "Billing Street", "Billing Address1", "Billing Address2", "Billing Company", "Billing City",
    "Billing Zip", "Billing Province", "Billing Country", "Billing Phone", "Shipping Name", "Shipping Street",
    "Shipping Address1", "Shipping Address2", "Shipping Company", "Shipping City", "Shipping Zip",
    "Shipping Province", "Shipping Country", "Shipping Phone", "Notes", "Note Attributes", "Cancelled at",
    "Payment Method", "Payment Reference", "Refunded Amount", "Vendor", "Outstanding Balance", "Employee",
    "Location", "Device ID", "Id", "Tags", "Risk Level", "Source", "Lineitem discount", "Tax 1 Name",
    "Tax 1 Value", "Phone", "Receipt Number", "Billing Province Name", "Shipping Province Name", "Payment ID",
    "Payment References",
)
COLUMN_AT = {column: i for i, column in enumerate(SHOPIFY_ORDER_COLUMNS)}
# Columns filled on every row of an order; the rest only on its first row.
LINE_COLUMNS = {"Name", "Email", "Lineitem quantity", "Lineitem name", "Lineitem price", "Lineitem compare at price",
                "Lineitem sku", "Lineitem requires shipping", "Lineitem taxable", "Lineitem fulfillment status",
                "Lineitem discount"}

SHOP_ZONE = ZoneInfo("Europe/Berlin")
BUSY_CONTACT_ID = 1  # the customer with about 300 timeline events the contact page is timed on
BUSY_ORDERS, BUSY_INTERACTIONS = 100, 200
BATCH = 10_000
PAID_STATUSES = ("paid", "fulfilled", "partially_refunded")


@dataclass(frozen=True)
class Scale:
    contacts: int = 100_000
    orders: int = 1_000_000
    interactions: int = 300_000
    seed: int = 1
    end: date = date(2026, 11, 1)  # fixed, so a shop is the same whenever it is generated
    years: int = 3

    @cached_property
    def start(self) -> datetime:
        return datetime.combine(self.end - timedelta(days=365 * self.years), datetime.min.time(), tzinfo=timezone.utc)

    @property
    def span_seconds(self) -> float:
        return 365 * self.years * 86400.0

    @property
    def busy_orders(self) -> int:
        return min(BUSY_ORDERS, self.orders // 10)

    @property
    def busy_interactions(self) -> int:
        return min(BUSY_INTERACTIONS, self.interactions // 3)

    def key(self) -> str:
        return f"c{self.contacts}-o{self.orders}-i{self.interactions}-s{self.seed}-{self.end.isoformat()}-y{self.years}"


SCALES = {
    "full": Scale(),
    "small": Scale(contacts=2_000, orders=20_000, interactions=6_000),
    "tiny": Scale(contacts=200, orders=1_000, interactions=600),
}

FIRST_NAMES = ("Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hugo", "Ines", "Jonas", "Katrin", "Lukas",
               "Maria", "Noah", "Olivia", "Paul", "Rosa", "Sofia", "Tom", "Ulla", "Victor", "Wiebke", "Yara", "Zoe",
               "Amir", "Leila", "Mateo", "Chloé", "Sven", "Priya", "Kenji", "Björn", "Zoë", "Łucja", "Søren", "Aoife")
LAST_NAMES = ("Schmidt", "Müller", "García", "Rossi", "Dubois", "Jansen", "Novak", "Kowalski", "Larsen", "O'Brien",
              "Silva", "Nakamura", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann", "Martin", "Bernard",
              "Moreau", "Costa", "Ferreira", "Andersen", "Nielsen", "Kaya", "Patel", "de Vries", "Åberg", "Nowak")
ASCII = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "é": "e", "ë": "e", "ç": "c", "í": "i",
                       "å": "a", "ø": "o", "ł": "l", "'": "", " ": ""})
# (city, zip, country, VAT rate in %, phone country code)
PLACES = (("Berlin", "10115", "DE", 19), ("Hamburg", "20095", "DE", 19), ("München", "80331", "DE", 19),
          ("Köln", "50667", "DE", 19), ("Wien", "1010", "AT", 20), ("Amsterdam", "1016 GV", "NL", 21),
          ("Lyon", "69001", "FR", 20), ("Milano", "20121", "IT", 22), ("Stockholm", "111 51", "SE", 25),
          ("København", "1050", "DK", 25))
STREETS = ("Hauptstraße", "Bahnhofstraße", "Prinsengracht", "Rue de la République", "Via Roma", "Drottninggatan",
           "Gartenweg", "Lindenallee")
TEAS = ("Darjeeling First Flush", "Assam Breakfast", "Sencha Kyoto", "Gyokuro", "Rooibos Vanilla", "Earl Grey",
        "Jasmine Pearls", "Oolong Milky", "Matcha Ceremonial", "Chai Masala", "Peppermint", "Lapsang Souchong")
SIZES = (("50g", 50), ("100g", 100), ("250g", 250))
ACCESSORIES = (("Cast Iron Teapot - Blue", 4800), ("Glass Teapot 1 l", 3900), ("Tea Strainer", 650),
               ("Ceramic Cup, hand-glazed", 2400), ("Gift Box, medium", 4900), ("Bamboo Whisk", 1800))
NOTES = ('Please leave the parcel with the neighbour, "Schulz", 2nd floor.', "Gift — no invoice in the box, please.",
         "Ring twice.\nSide entrance.")
INTERACTION_KINDS = (  # kind, direction, channel, weight, subjects, sentiment
    ("email", "inbound", "email", 30, ("Where is my parcel?", "Question about brewing temperature", "Invoice request"), "neutral"),
    ("call", "inbound", "phone", 18, ("Asked about bulk prices", "Wants to change the delivery address"), "neutral"),
    ("chat", "inbound", "chat", 14, ("Asked for a recommendation", "Discount code did not work"), "neutral"),
    ("note", "internal", None, 14, ("Prefers email over phone", "Buys for the office"), None),
    ("cart", "inbound", "shop", 8, ("Abandoned cart",), None),
    ("complaint", "inbound", "email", 3, ("Parcel arrived damaged", "Wrong tea in the box"), "negative"),
    ("testimonial", "inbound", "email", 4, ("A kind word",), "positive"),
    ("survey", "inbound", "email", 5, ("Satisfaction survey: 9 of 10",), "positive"),
    ("meeting", "outbound", "video", 2, ("Office tasting session",), "neutral"),
    ("email", "outbound", "email", 2, ("Thank you for your order",), None),
)


def _catalogue() -> list[tuple[str, str, int]]:
    """Return the shop's products as (sku, name, price in cents)."""
    products = []
    for t, tea in enumerate(TEAS):
        for size, grams in SIZES:
            price = 450 + 350 * (t % 5) + grams * (3 + t % 4)
            products.append((f"TEA-{t:02d}-{grams:03d}", f"{tea} {size}", price - price % 10 + 90))
    for a, (name, price) in enumerate(ACCESSORIES):
        products.append((f"ACC-{a:02d}", name, price))
    return products


PRODUCTS = _catalogue()


def _mix(*numbers: int) -> int:
    """Return a well-spread 64-bit hash of integers (splitmix64), the same on every machine."""
    x = 0x9E3779B97F4A7C15
    for n in numbers:
        x = (x ^ (n & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x = (x ^ (x >> 27)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
    return x


def _unit(*numbers: int) -> float:
    return _mix(*numbers) / 2.0 ** 64


class Contact(NamedTuple):
    id: int
    first_name: str
    last_name: str
    email: str  # normalised
    email_display: str
    phone: str | None
    street: str
    city: str
    zip: str
    country: str
    vat: int
    created_at: datetime
    consent: bool


def contact(scale: Scale, contact_id: int) -> Contact:
    """Return contact number `contact_id` (1-based) of the shop; a pure function of the id."""
    h = _mix(scale.seed, contact_id, 1)
    first = FIRST_NAMES[h % len(FIRST_NAMES)]
    last = LAST_NAMES[(h >> 8) % len(LAST_NAMES)]
    local = f"{first}.{last}".lower().translate(ASCII)
    email = f"{local}.{contact_id}@example.com"
    # One customer in ten typed the address with capitals; matching must not care.
    display = f"{first}.{last}".translate(ASCII) + f".{contact_id}@Example.com" if (h >> 16) % 10 == 0 else email
    city, zip_code, country, vat = PLACES[(h >> 20) % len(PLACES)]
    phone = f"+49 151 {(h >> 24) % 90_000_000 + 10_000_000}" if (h >> 52) % 10 < 6 else None
    street = f"{STREETS[(h >> 32) % len(STREETS)]} {(h >> 40) % 120 + 1}"
    return Contact(contact_id, first, last, email, display, phone, street, city, zip_code, country, vat,
                   _created_at(scale, contact_id), (h >> 60) % 2 == 0)


def _existing_before_start(scale: Scale) -> int:
    """Return how many contacts the shop already had when the three years began."""
    return max(1, scale.contacts // 20)


def _created_at(scale: Scale, contact_id: int) -> datetime:
    # Contacts sign up in id order, so "who exists at time t" is a prefix of the ids.
    before = _existing_before_start(scale)
    if contact_id <= before:
        return scale.start - timedelta(seconds=int(_unit(scale.seed, contact_id, 2) * 365 * 86400))
    fraction = (contact_id - before) / max(1, scale.contacts - before)
    jitter = _unit(scale.seed, contact_id, 3) * 86400 * 2  # only earlier, never past its turn
    return scale.start + timedelta(seconds=max(0.0, fraction * scale.span_seconds - jitter))


def _signed_up_by(scale: Scale, fractions: np.ndarray) -> np.ndarray:
    """Return how many contacts exist at each point of the span (0..1)."""
    before = _existing_before_start(scale)
    return np.minimum(scale.contacts, before + np.floor(fractions * (scale.contacts - before))).astype(np.int64)


def _times(scale: Scale, count: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Yield, batch by batch, `count` increasing points of the span (0..1) whose density grows
    with the number of contacts, as a growing shop's orders do."""
    a = _existing_before_start(scale) / scale.contacts
    b = 1.0 - a
    for begin in range(0, count, BATCH):
        end = min(count, begin + BATCH)
        quantiles = (np.arange(begin, end) + rng.uniform(0.05, 0.95, end - begin)) / count
        # Inverse of the CDF (a*t + b*t^2/2) / (a + b/2) of a linearly growing density.
        yield (-a + np.sqrt(a * a + 2 * b * quantiles * (a + b / 2))) / b


def _buyer_weights(scale: Scale, rng: np.random.Generator) -> np.ndarray:
    """Return the cumulative weights by which contacts place orders: four in ten never buy."""
    weights = rng.lognormal(0.0, 1.0, scale.contacts)
    weights[rng.uniform(size=scale.contacts) < 0.4] = 0.0
    weights[BUSY_CONTACT_ID - 1] = 0.0  # gets its orders on a fixed rhythm instead
    return np.cumsum(weights)


def _pick(cumulative: np.ndarray, eligible: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Return 1-based contact ids drawn by weight among the first `eligible` contacts."""
    limit = cumulative[np.maximum(eligible, 1) - 1]
    return np.searchsorted(cumulative, draws * limit, side="right") + 1


def _busy_slot(index: int, count: int, busy: int) -> bool:
    if busy <= 0:
        return False
    step = count // busy
    return index % step == step // 2 and index // step < busy


class Order(NamedTuple):
    id: int
    contact_id: int
    number: str
    shopify_id: int
    placed_at: datetime  # UTC
    financial_status: str  # Shopify's: paid, pending, refunded, partially_refunded, voided
    fulfilled: bool
    cancelled: bool
    currency: str
    subtotal: int  # cents, like every amount here
    discount: int
    discount_code: str
    shipping: int
    tax: int
    total: int
    refunded: int
    vat: int
    note: str
    lines: list[tuple[str, str, int, int]]  # sku, name, quantity, unit price

    @property
    def status(self) -> str:
        """Return the CRM's order status for Shopify's financial and fulfilment status."""
        if self.cancelled:
            return "cancelled"
        if self.financial_status == "paid":
            return "fulfilled" if self.fulfilled else "paid"
        return self.financial_status


def orders(scale: Scale) -> Iterator[Order]:
    """Yield the shop's orders in time order."""
    rng = np.random.default_rng([scale.seed, 2])
    cumulative = _buyer_weights(scale, rng)
    index = 0
    for fractions in _times(scale, scale.orders, rng):
        size = len(fractions)
        buyers = _pick(cumulative, _signed_up_by(scale, fractions), rng.uniform(size=size)).tolist()
        seconds = (fractions * scale.span_seconds).tolist()
        line_counts = rng.choice((1, 2, 3), size=size, p=(0.55, 0.3, 0.15)).tolist()
        products = rng.integers(0, len(PRODUCTS), size=(size, 3)).tolist()
        quantities = rng.choice((1, 2, 3, 4), size=(size, 3), p=(0.6, 0.25, 0.1, 0.05)).tolist()
        fates = rng.uniform(size=(size, 4)).tolist()
        for k in range(size):
            contact_id = BUSY_CONTACT_ID if _busy_slot(index, scale.orders, scale.busy_orders) else buyers[k]
            yield _order(scale, index, contact_id, seconds[k], line_counts[k], products[k], quantities[k], fates[k])
            index += 1


def _order(scale: Scale, index: int, contact_id: int, seconds: float, line_count: int, products: list[int],
           quantities: list[int], fates: list[float]) -> Order:
    picked: dict[int, int] = {}
    for product, quantity in zip(products[:line_count], quantities):
        picked[product] = picked.get(product, 0) + quantity  # one line per product
    lines = [(PRODUCTS[p][0], PRODUCTS[p][1], q, PRODUCTS[p][2]) for p, q in picked.items()]
    subtotal = sum(q * price for _sku, _name, q, price in lines)
    status_draw, fulfil_draw, discount_draw, note_draw = fates
    discount_code, discount = ("WELCOME10", subtotal // 10) if discount_draw < 0.12 else ("", 0)
    shipping = 0 if subtotal - discount >= 5000 else 495
    total = subtotal - discount + shipping
    vat = PLACES[(_mix(scale.seed, contact_id, 1) >> 20) % len(PLACES)][3]
    tax = round(total * vat / (100 + vat))
    cancelled = False
    if status_draw < 0.02:
        financial, refunded = "pending", 0
    elif status_draw < 0.05:
        financial, refunded = "refunded", total
    elif status_draw < 0.07:
        financial, refunded = "partially_refunded", total * 3 // 10
    elif status_draw < 0.08:
        financial, refunded, cancelled = "voided", 0, True
    else:
        financial, refunded = "paid", 0
    return Order(
        id=index + 1, contact_id=contact_id, number=f"#{1001 + index}", shopify_id=5_100_000_000_000 + index * 7,
        placed_at=scale.start + timedelta(seconds=int(seconds)), financial_status=financial,
        fulfilled=financial in ("paid", "partially_refunded") and fulfil_draw < 0.9, cancelled=cancelled,
        currency="EUR", subtotal=subtotal, discount=discount, discount_code=discount_code, shipping=shipping,
        tax=tax, total=total, refunded=refunded, vat=vat, note=NOTES[index % len(NOTES)] if note_draw < 0.01 else "",
        lines=lines,
    )


class Interaction(NamedTuple):
    contact_id: int
    kind: str
    direction: str
    channel: str | None
    subject: str
    sentiment: str | None
    occurred_at: datetime


def interactions(scale: Scale) -> Iterator[Interaction]:
    """Yield the shop's logged interactions in time order."""
    rng = np.random.default_rng([scale.seed, 3])
    weights = np.array([kind[3] for kind in INTERACTION_KINDS], dtype=float)
    index = 0
    for fractions in _times(scale, scale.interactions, rng):
        size = len(fractions)
        eligible = _signed_up_by(scale, fractions)
        whom = (np.floor(rng.uniform(size=size) * eligible) + 1).astype(np.int64).tolist()
        kinds = rng.choice(len(INTERACTION_KINDS), size=size, p=weights / weights.sum()).tolist()
        subjects = rng.integers(0, 1000, size=size).tolist()
        seconds = (fractions * scale.span_seconds).tolist()
        for k in range(size):
            kind, direction, channel, _weight, titles, sentiment = INTERACTION_KINDS[kinds[k]]
            contact_id = BUSY_CONTACT_ID if _busy_slot(index, scale.interactions, scale.busy_interactions) else whom[k]
            yield Interaction(contact_id, kind, direction, channel, titles[subjects[k] % len(titles)], sentiment,
                              scale.start + timedelta(seconds=int(seconds[k])))
            index += 1


def money(cents: int) -> str:
    """Return cents as the export writes amounts: 1234 -> "12.34"."""
    return f"{'-' if cents < 0 else ''}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _local(moment: datetime) -> str:
    return moment.astimezone(SHOP_ZONE).strftime("%Y-%m-%d %H:%M:%S %z")


def shopify_rows(scale: Scale, order: Order) -> list[list[str]]:
    """Return the export's rows for one order: one per line, order fields on the first."""
    person = contact(scale, order.contact_id)
    name = f"{person.first_name} {person.last_name}"
    created = _local(order.placed_at)
    first = {
        "Name": order.number, "Email": person.email_display,
        "Financial Status": order.financial_status,
        "Paid at": _local(order.placed_at + timedelta(seconds=2)) if order.financial_status != "pending" else "",
        "Fulfillment Status": "fulfilled" if order.fulfilled else "unfulfilled",
        "Fulfilled at": _local(order.placed_at + timedelta(hours=20)) if order.fulfilled else "",
        "Accepts Marketing": "yes" if person.consent else "no", "Currency": order.currency,
        "Subtotal": money(order.subtotal), "Shipping": money(order.shipping), "Taxes": money(order.tax),
        "Total": money(order.total), "Discount Code": order.discount_code, "Discount Amount": money(order.discount),
        "Shipping Method": "DHL Paket" if order.shipping else "Free shipping", "Created at": created,
        "Billing Name": name, "Billing Street": person.street, "Billing Address1": person.street,
        "Billing City": person.city, "Billing Zip": person.zip, "Billing Country": person.country,
        "Billing Phone": person.phone or "", "Shipping Name": name, "Shipping Street": person.street,
        "Shipping Address1": person.street, "Shipping City": person.city, "Shipping Zip": person.zip,
        "Shipping Country": person.country, "Notes": order.note,
        "Cancelled at": _local(order.placed_at + timedelta(hours=3)) if order.cancelled else "",
        "Payment Method": "Shopify Payments", "Refunded Amount": money(order.refunded),
        "Outstanding Balance": "0.00", "Id": str(order.shopify_id), "Risk Level": "Low", "Source": "web",
        "Tax 1 Name": f"VAT {order.vat}%", "Tax 1 Value": money(order.tax),
        "Payment References": f"c{order.shopify_id}",
    }
    rows = []
    for number, (sku, title, quantity, price) in enumerate(order.lines):
        row = [""] * len(SHOPIFY_ORDER_COLUMNS)
        for column, value in (first if number == 0 else {"Name": order.number, "Email": person.email_display}).items():
            row[COLUMN_AT[column]] = value
        for column, value in (("Lineitem quantity", str(quantity)), ("Lineitem name", title),
                              ("Lineitem price", money(price)), ("Lineitem sku", sku),
                              ("Lineitem requires shipping", "true"), ("Lineitem taxable", "true"),
                              ("Lineitem fulfillment status", "fulfilled" if order.fulfilled else "pending"),
                              ("Lineitem discount", "0.00")):
            row[COLUMN_AT[column]] = value
        rows.append(row)
    return rows


def write_shopify_csv(scale: Scale, path: Path | str, progress=None) -> int:
    """Write the shop's orders as a Shopify orders export and return the number of rows."""
    rows = 0
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(SHOPIFY_ORDER_COLUMNS)
        for order in orders(scale):
            lines = shopify_rows(scale, order)
            writer.writerows(lines)
            rows += len(lines)
            if progress and order.id % 100_000 == 0:
                progress(f"{order.id:,} orders written")
    return rows



# The columns of the generic orders import (`crm import orders FILE.csv`): one row per order.
GENERIC_ORDER_COLUMNS = ("order_id", "customer_id", "email", "first_name", "last_name", "phone", "placed_at",
                         "status", "currency", "subtotal", "discount", "shipping", "tax", "total", "number")


def generic_row(scale: Scale, order: Order) -> list[str]:
    """Return one order as a row of a generic orders file (a shop system's own export)."""
    person = contact(scale, order.contact_id)
    return [str(order.shopify_id), f"C{order.contact_id}", person.email_display, person.first_name,
            person.last_name, person.phone or "", order.placed_at.strftime("%Y-%m-%dT%H:%M:%SZ"), order.status,
            order.currency, money(order.subtotal), money(order.discount), money(order.shipping), money(order.tax),
            money(order.total), order.number]


def write_generic_csv(scale: Scale, path: Path | str, progress=None) -> int:
    """Write the shop's orders as a generic orders CSV (one row per order) and return the number of rows."""
    rows = 0
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(GENERIC_ORDER_COLUMNS)
        for order in orders(scale):
            writer.writerow(generic_row(scale, order))
            rows += 1
            if progress and order.id % 100_000 == 0:
                progress(f"{order.id:,} orders written")
    return rows


# ---------------------------------------------------------------------------------------------
# Loading straight into the database


@dataclass
class Loaded:
    contacts: int = 0
    orders: int = 0
    order_lines: int = 0
    interactions: int = 0
    tasks: int = 0
    seconds: float = 0.0
    user_email: str = ""
    busy_contact_id: int = BUSY_CONTACT_ID
    notes: list[str] = field(default_factory=list)


BENCH_USER = ("bench@example.com", "Bench Admin", "correct horse battery")


class _Values:
    """Turns generated values into what the database driver takes, as the app's types store them."""

    def __init__(self, dialect: str):
        self.sqlite = dialect == "sqlite"
        self.mark = "?" if self.sqlite else "%s"

    def time(self, moment: datetime | None):
        if moment is None:
            return None
        # SQLAlchemy's SQLite DateTime format for a naive UTC time, as crm.models.UTCDateTime stores it.
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f") if self.sqlite else moment

    def money(self, cents: int):
        return money(cents) if self.sqlite else Decimal(money(cents))

    def insert(self, table: str, columns: tuple[str, ...]) -> str:
        return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([self.mark] * len(columns))})"


CONTACT_COLUMNS = ("id", "email", "email_display", "first_name", "last_name", "phone", "address", "city", "country",
                   "source", "consent", "consent_at", "consent_source", "do_not_contact", "created_at", "updated_at",
                   "stage", "stage_reason", "stage_pinned", "lead_score", "score_breakdown", "order_count",
                   "total_spent")
ORDER_COLUMNS = ("id", "contact_id", "source", "external_id", "number", "placed_at", "status", "currency", "subtotal",
                 "discount", "shipping", "tax", "total", "refunded", "created_at", "updated_at")
LINE_COLUMNS_DB = ("order_id", "sku", "name", "quantity", "unit_price")
INTERACTION_COLUMNS = ("contact_id", "author_id", "kind", "direction", "channel", "subject", "body", "sentiment",
                       "occurred_at", "created_at", "updated_at")
TASK_COLUMNS = ("contact_id", "kind", "title", "reason", "due_at", "status", "assignee_id", "created_at")


def _phone_e164(phone: str | None) -> str | None:
    return phone.replace(" ", "") if phone else None


def load_database(app, scale: Scale, progress=None) -> Loaded:
    """Load the shop into the app's (migrated, empty) database with batched inserts, then
    fill the stored aggregates and a stage and score for everyone. Return what was loaded."""
    from sqlalchemy import func, select

    from crm.database import refresh_statistics
    from crm.extensions import db
    from crm.models import Contact
    from crm.services.orders import aggregates
    from crm.services.staff import users

    started = time.perf_counter()
    loaded = Loaded(user_email=BENCH_USER[0])
    with app.app_context():
        if db.session.scalar(select(func.count()).select_from(Contact)):
            raise SystemExit("The database already has contacts; load the benchmark shop into an empty one.")
        user = users.by_email(BENCH_USER[0]) or users.create_user(*BENCH_USER[:2], "admin", BENCH_USER[2])
        user_id = user.id
        db.session.commit()
        values = _Values(db.engine.dialect.name)
        say = progress or (lambda _message: None)

        def batches(rows: Iterator[tuple], table: str, columns: tuple[str, ...]) -> int:
            sql, done, batch = values.insert(table, columns), 0, []
            with db.engine.begin() as connection:
                for row in rows:
                    batch.append(row)
                    if len(batch) == BATCH:
                        connection.exec_driver_sql(sql, batch)
                        done += len(batch)
                        batch = []
                if batch:
                    connection.exec_driver_sql(sql, batch)
                    done += len(batch)
            return done

        def contact_rows():
            for contact_id in range(1, scale.contacts + 1):
                person = contact(scale, contact_id)
                created = values.time(person.created_at)
                yield (contact_id, person.email, person.email_display, person.first_name, person.last_name,
                       _phone_e164(person.phone), person.street, person.city, person.country, "shopify",
                       person.consent, created if person.consent else None,
                       "checkout" if person.consent else None, False, created, created,
                       "awareness", "", False, 0, "[]", 0, values.money(0))

        loaded.contacts = batches(contact_rows(), "contacts", CONTACT_COLUMNS)
        say(f"{loaded.contacts:,} contacts")

        lines: list[tuple] = []

        def order_rows():
            for order in orders(scale):
                placed = values.time(order.placed_at)
                lines.extend((order.id, sku, title, quantity, values.money(price))
                             for sku, title, quantity, price in order.lines)
                yield (order.id, order.contact_id, "shopify", str(order.shopify_id), order.number, placed,
                       order.status, order.currency, values.money(order.subtotal), values.money(order.discount),
                       values.money(order.shipping), values.money(order.tax), values.money(order.total),
                       values.money(order.refunded), placed, placed)

        def orders_then_lines():
            # Lines follow their orders batch by batch, so neither list grows with the shop.
            line_sql = values.insert("order_lines", LINE_COLUMNS_DB)
            sql, batch = values.insert("orders", ORDER_COLUMNS), []
            with db.engine.begin() as connection:
                for row in order_rows():
                    batch.append(row)
                    if len(batch) == BATCH:
                        connection.exec_driver_sql(sql, batch)
                        connection.exec_driver_sql(line_sql, lines)
                        loaded.orders += len(batch)
                        loaded.order_lines += len(lines)
                        batch.clear()
                        lines.clear()
                        if loaded.orders % 100_000 == 0:
                            say(f"{loaded.orders:,} orders")
                if batch:
                    connection.exec_driver_sql(sql, batch)
                    connection.exec_driver_sql(line_sql, lines)
                    loaded.orders += len(batch)
                    loaded.order_lines += len(lines)

        orders_then_lines()
        say(f"{loaded.orders:,} orders, {loaded.order_lines:,} lines")

        def interaction_rows():
            for item in interactions(scale):
                moment = values.time(item.occurred_at)
                yield (item.contact_id, user_id if item.direction != "inbound" else None, item.kind, item.direction,
                       item.channel, item.subject, "", item.sentiment, moment, moment, moment)

        loaded.interactions = batches(interaction_rows(), "interactions", INTERACTION_COLUMNS)
        say(f"{loaded.interactions:,} interactions")

        def task_rows():
            # A person's call-back list: one contact in thirty has an open to-do around the end date.
            end = datetime.combine(scale.end, datetime.min.time(), tzinfo=timezone.utc)
            for contact_id in range(1, scale.contacts + 1, 30):
                due = end + timedelta(days=(_mix(scale.seed, contact_id, 4) % 29) - 14)
                yield (contact_id, "call", "Call back about the office order", "Asked for bulk prices",
                       values.time(due), "open", user_id, values.time(due - timedelta(days=7)))

        loaded.tasks = batches(task_rows(), "tasks", TASK_COLUMNS)
        aggregates.refresh()
        _derive_stages(db, scale, values)
        db.session.commit()
        # As after a big import: the planner sees the tables as loaded.
        refresh_statistics(db.session)
    loaded.seconds = time.perf_counter() - started
    return loaded


def _derive_stages(db, scale: Scale, values: _Values) -> None:
    """Give every contact a plausible stage, health and lead score in three UPDATEs, so list
    filters have something to filter before the engine's `crm refresh` derives the real ones."""
    from sqlalchemy import text

    end = datetime.combine(scale.end, datetime.min.time(), tzinfo=timezone.utc)
    db.session.execute(text(
        "UPDATE contacts SET stage = CASE "
        " WHEN order_count > 0 AND EXISTS (SELECT 1 FROM interactions i WHERE i.contact_id = contacts.id"
        "   AND i.kind = 'testimonial') THEN 'advocacy'"
        " WHEN order_count > 0 AND first_order_at >= :month_ago THEN 'conversion'"
        " WHEN order_count > 0 THEN 'retention'"
        " WHEN last_interaction_at IS NOT NULL THEN 'consideration'"
        " ELSE 'awareness' END, stage_reason = 'benchmark data', stage_since = created_at"
    ), {"month_ago": values.time(end - timedelta(days=30))})
    db.session.execute(text(
        "UPDATE contacts SET health = CASE WHEN last_order_at >= :quarter_ago THEN 'active'"
        " WHEN last_order_at >= :year_ago THEN 'at_risk' ELSE 'lapsed' END WHERE order_count > 0"
    ), {"quarter_ago": values.time(end - timedelta(days=90)), "year_ago": values.time(end - timedelta(days=365))})
    db.session.execute(text("UPDATE contacts SET lead_score = (id * 7919) % 101"))


def migrate(database_url: str):
    """Return an app on `database_url`, migrated to the latest schema."""
    from flask_migrate import upgrade

    from crm import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "bench"})
    with app.app_context():
        upgrade()
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small", help="preset sizes (default small)")
    parser.add_argument("--contacts", type=int, help="override the number of contacts")
    parser.add_argument("--orders", type=int, help="override the number of orders")
    parser.add_argument("--interactions", type=int, help="override the number of interactions")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--end", type=date.fromisoformat, help="last day of the three years (default 2026-11-01)")
    parser.add_argument("--csv", type=Path, help="write the Shopify orders export here")
    parser.add_argument("--generic-csv", type=Path, help="write the orders as a generic orders CSV (one row an order)")
    parser.add_argument("--database", help="load the shop into this (empty) database URL, migrating it first")
    args = parser.parse_args(argv)
    scale = scale_from(args.scale, args.contacts, args.orders, args.interactions, args.seed, args.end)
    if not args.csv and not args.database and not args.generic_csv:
        parser.error("give --csv, --generic-csv, --database or several")

    def say(message):
        print(message, file=sys.stderr)
    if args.csv:
        started = time.perf_counter()
        rows = write_shopify_csv(scale, args.csv, progress=say)
        say(f"{args.csv}: {rows:,} rows in {time.perf_counter() - started:.1f} s")
    if args.generic_csv:
        started = time.perf_counter()
        rows = write_generic_csv(scale, args.generic_csv, progress=say)
        say(f"{args.generic_csv}: {rows:,} orders in {time.perf_counter() - started:.1f} s")
    if args.database:
        loaded = load_database(migrate(args.database), scale, progress=say)
        say(f"loaded {loaded.contacts:,} contacts, {loaded.orders:,} orders, {loaded.order_lines:,} lines, "
            f"{loaded.interactions:,} interactions, {loaded.tasks:,} to-dos in {loaded.seconds:.1f} s")


def scale_from(name: str, contacts: int | None = None, orders_: int | None = None, interactions_: int | None = None,
               seed: int = 1, end: date | None = None) -> Scale:
    """Return a preset scale with any sizes (and the end day) overridden."""
    base = SCALES[name]
    return Scale(contacts=contacts or base.contacts, orders=orders_ if orders_ is not None else base.orders,
                 interactions=interactions_ if interactions_ is not None else base.interactions, seed=seed,
                 end=end or base.end, years=base.years)


if __name__ == "__main__":
    main()
