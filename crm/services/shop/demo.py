"""A believable demo shop: contacts at every journey stage, orders, calls, notes, testimonials."""
from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

from sqlalchemy import func, select

from crm.extensions import db
from crm.models import Contact, ContactExternalId, Interaction, Order, OrderLine, Tag, Task, User
from crm.services.orders import aggregates

FIRST_NAMES = (
    "Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hugo", "Ines", "Jonas", "Katrin",
    "Lukas", "Maria", "Noah", "Olivia", "Paul", "Quentin", "Rosa", "Sofia", "Tom", "Ulla", "Victor",
    "Wiebke", "Xaver", "Yara", "Zoe", "Amir", "Leila", "Mateo", "Chloe", "Sven", "Priya", "Kenji",
)
LAST_NAMES = (
    "Schmidt", "Müller", "García", "Rossi", "Dubois", "Jansen", "Novak", "Kowalski", "Larsen",
    "O'Brien", "Silva", "Nakamura", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann",
    "Martin", "Bernard", "Moreau", "Costa", "Ferreira", "Andersen", "Nielsen", "Kaya", "Patel",
)
COMPANIES = ("Bäckerei Sonne", "Northwind Cafés", "Atelier Blau", "Green Leaf Office", "Studio Nord", None, None, None)
CITIES = (("Berlin", "DE"), ("Hamburg", "DE"), ("Vienna", "AT"), ("Zurich", "CH"), ("Amsterdam", "NL"), ("Lyon", "FR"), ("Milan", "IT"))
PRODUCTS = (
    ("TEA-EB-100", "Earl Grey loose tea 100 g", Decimal("8.90")),
    ("TEA-GR-100", "Sencha green tea 100 g", Decimal("11.50")),
    ("TEA-RB-250", "Rooibos vanilla 250 g", Decimal("12.90")),
    ("CUP-CER-01", "Ceramic cup, hand-glazed", Decimal("24.00")),
    ("POT-GLS-1L", "Glass teapot 1 l", Decimal("39.00")),
    ("ACC-STR-01", "Stainless tea strainer", Decimal("6.50")),
    ("GFT-BOX-M", "Gift box, medium", Decimal("49.00")),
)
CALL_SUBJECTS = ("Question about delivery time", "Wants to change the address", "Asked for brewing tips",
                 "Satisfaction call after first order", "Asked about bulk prices for the office")
NOTE_BODIES = ("Prefers email over phone.", "Buys for the office; invoice to the company.",
               "Mentioned a birthday gift for a friend.", "Very friendly, loves the green teas.")
TESTIMONIALS = ("The best Sencha I have had outside Japan. Thank you!", "Fast delivery and lovely packaging.",
                "Our whole office is hooked on the rooibos.")


class NotEmpty(Exception):
    """The database already holds contacts; the demo only fills an empty one."""


def _at(day: date, rng: random.Random) -> datetime:
    return datetime.combine(day, time(rng.randint(8, 20), rng.randint(0, 59)), tzinfo=timezone.utc)


def generate(contacts: int = 300, seed: int = 1, *, owner: User | None = None, today: date | None = None,
             progress: bool = False) -> dict[str, int]:
    """Add a demo shop to an empty database and return how many rows of each kind it made.

    The same seed and day give the same shop. Stages, scores and to-dos are then
    derived by the same rules as real data.
    """
    if db.session.scalar(select(func.count()).select_from(Contact)):
        raise NotEmpty("The database already has contacts; the demo fills only an empty CRM.")
    rng = random.Random(seed)
    today = today or datetime.now(timezone.utc).date()
    start = today - timedelta(days=548)  # 18 months of history
    users = list(db.session.scalars(select(User).order_by(User.id)))
    owner_ids = [u.id for u in users if u.role in ("admin", "sales")] or [None]
    tags = {name: Tag(name=name) for name in ("wholesale", "newsletter", "vip", "gift-buyer")}
    db.session.add_all(tags.values())

    made = {"contacts": 0, "orders": 0, "interactions": 0, "tasks": 0}
    order_number = 1000
    used_emails: set[str] = set()
    iterator = range(contacts)
    if progress:
        import click

        bar = click.progressbar(iterator, label="Demo contacts", file=None)
        iterator = bar.__enter__()
    for i in iterator:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{first}.{last}".lower().replace("'", "").replace("ü", "ue").replace("í", "i") + f"{i}@example.com"
        used_emails.add(email)
        city, country = rng.choice(CITIES)
        created = start + timedelta(days=rng.randint(0, 540))
        contact = Contact(
            email=email, email_display=email, first_name=first, last_name=last,
            phone=f"+4915{rng.randint(10_000_000, 99_999_999)}" if rng.random() < 0.6 else None,
            company=rng.choice(COMPANIES), city=city, country=country, source="demo",
            owner_id=rng.choice(owner_ids) if rng.random() < 0.5 else None,
            consent=rng.random() < 0.55, do_not_contact=rng.random() < 0.03,
            birthday=date(rng.randint(1960, 2002), rng.randint(1, 12), rng.randint(1, 28)) if rng.random() < 0.3 else None,
            created_at=_at(created, rng),
        )
        if contact.consent:
            contact.consent_at, contact.consent_source = contact.created_at, "demo: signup form"
        contact.tags = [t for t in tags.values() if rng.random() < 0.12]
        db.session.add(contact)
        db.session.flush()
        made["contacts"] += 1
        # The mix of journeys: a quarter never engaged, some only asked, most bought.
        kind = rng.choices(("lurker", "prospect", "new", "regular", "fan"), (22, 18, 10, 38, 12))[0]
        if kind != "lurker":
            db.session.add(ContactExternalId(contact_id=contact.id, source="shopify", external_id=str(7_000_000 + i)))
        interactions = []
        if kind in ("prospect", "regular", "fan"):
            for _ in range(rng.randint(1, 3)):
                day = created + timedelta(days=rng.randint(0, max(1, (today - created).days)))
                interactions.append(Interaction(
                    contact_id=contact.id, kind=rng.choice(("call", "email", "chat")), direction="inbound",
                    channel="phone", subject=rng.choice(CALL_SUBJECTS), body="", sentiment="neutral",
                    outcome="Answered", occurred_at=_at(min(day, today), rng), author_id=contact.owner_id,
                ))
        if kind in ("new", "regular", "fan"):
            if kind == "new":
                first_day = today - timedelta(days=rng.randint(1, 25))
                count = 1
            else:
                first_day = created + timedelta(days=rng.randint(0, 30))
                count = rng.randint(2, 9) if kind == "fan" else rng.randint(1, 6)
            gap = max(7, (today - first_day).days // max(count, 1))
            day = first_day
            for _ in range(count):
                if day > today:
                    break
                order_number += 1
                picks = rng.sample(PRODUCTS, rng.randint(1, 3))
                lines = [OrderLine(sku=sku, name=name, quantity=rng.randint(1, 3), unit_price=price) for sku, name, price in picks]
                subtotal = sum((line.unit_price * line.quantity for line in lines), Decimal("0"))
                shipping = Decimal("0.00") if subtotal >= 50 else Decimal("4.90")
                status = "refunded" if rng.random() < 0.04 else rng.choice(("fulfilled", "fulfilled", "paid"))
                total = subtotal + shipping
                db.session.add(Order(
                    contact_id=contact.id, source="shopify", external_id=str(5_000_000 + order_number),
                    number=f"#{order_number}", placed_at=_at(day, rng), status=status, currency="EUR",
                    subtotal=subtotal, shipping=shipping, tax=(total * Decimal("0.19") / Decimal("1.19")).quantize(Decimal("0.01")),
                    total=total, refunded=total if status == "refunded" else Decimal("0.00"), lines=lines,
                ))
                made["orders"] += 1
                day += timedelta(days=max(3, int(rng.gauss(gap, gap / 3))))
            if kind == "fan":
                interactions.append(Interaction(
                    contact_id=contact.id, kind="testimonial", direction="inbound", channel="email",
                    subject="A kind word", body=rng.choice(TESTIMONIALS), sentiment="positive",
                    occurred_at=_at(today - timedelta(days=rng.randint(1, 120)), rng),
                ))
            if rng.random() < 0.3:
                interactions.append(Interaction(
                    contact_id=contact.id, kind="note", direction="internal", subject="Note",
                    body=rng.choice(NOTE_BODIES), occurred_at=_at(today - timedelta(days=rng.randint(1, 300)), rng),
                    author_id=contact.owner_id,
                ))
            if rng.random() < 0.05:
                interactions.append(Interaction(
                    contact_id=contact.id, kind="complaint", direction="inbound", channel="email",
                    subject="Parcel arrived damaged", body="The teapot lid was broken.", sentiment="negative",
                    occurred_at=_at(today - timedelta(days=rng.randint(1, 60)), rng),
                ))
        if kind == "prospect" and rng.random() < 0.4:
            interactions.append(Interaction(
                contact_id=contact.id, kind="cart", direction="inbound", channel="shop",
                subject="Abandoned cart", body="Glass teapot 1 l, Sencha green tea 100 g",
                occurred_at=_at(today - timedelta(days=rng.randint(0, 6)), rng),
            ))
        db.session.add_all(interactions)
        made["interactions"] += len(interactions)
        if kind == "prospect" and rng.random() < 0.3:
            db.session.add(Task(
                contact_id=contact.id, kind="call", title=f"Call {first} back about the office order",
                reason="Asked for bulk prices on the phone", due_at=_at(today + timedelta(days=rng.randint(-2, 5)), rng),
                assignee_id=rng.choice(owner_ids), status="open",
            ))
            made["tasks"] += 1
    if progress:
        bar.__exit__(None, None, None)
    db.session.flush()
    aggregates.refresh()
    from crm.services.shared import signals

    signals.after_bulk_change(now=datetime.combine(today, time(12), tzinfo=timezone.utc))
    made["tasks"] = db.session.scalar(select(func.count()).select_from(Task))  # with the rules' to-dos
    return made
