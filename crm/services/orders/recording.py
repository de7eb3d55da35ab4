"""Recording orders: the one path every order takes, from an import, a webhook, the API or a form.

`record_orders` takes a batch of OrderRecords and, in a bounded number of statements per batch:
finds or creates each customer's contact (by the source's customer id, else normalised email),
inserts each order idempotently on (source, external id) — a repeat with other figures updates
status, totals and lines instead of duplicating — refreshes the contacts' stored aggregates, and
lets the journey, score and to-do rules react. `record_order` is the same for one order.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update

from crm.extensions import db
from crm.models import Contact, ContactExternalId, Order, OrderLine, Tag, contact_tags, utcnow
from crm.services.orders import aggregates
from crm.services.orders.importing.records import CustomerRecord, OrderRecord
from crm.services.people import contacts as contact_service
from crm.services.shared import signals
from crm.services.shared.bounds import MAX_QUANTITY, check_moment
from crm.services.shared.errors import ValidationError
from crm.services.trust import audit
from crm.services.trust.blocklist import blocked_among, blocked_customer_ids

CHUNK = 500  # ids per IN (...) list, well under SQLite's variable limit
ORDER_FIELDS = ("number", "placed_at", "status", "currency", "subtotal", "discount", "shipping", "tax", "total", "refunded")
# Contact fields a shop's customer record may fill in when they are blank on the contact.
FILLABLE = ("first_name", "last_name", "phone", "company", "address", "city", "country", "language")
NEW_CONTACT_DEFAULTS = {
    "first_name": "", "last_name": "", "stage": "awareness", "stage_reason": "", "stage_pinned": False,
    "lead_score": 0, "score_breakdown": [], "order_count": 0, "total_spent": 0, "consent": False,
    "do_not_contact": False,
}


@dataclass
class OrderOutcome:
    """What happened to one order: created, updated, unchanged or rejected (with the reason)."""

    line: int
    result: str
    order_id: int | None = None
    contact_id: int | None = None
    contact_created: bool = False
    reason: str | None = None
    field: str | None = None  # the field a rejection is about, when there is one


@dataclass
class BatchSummary:
    outcomes: list[OrderOutcome] = field(default_factory=list)
    contact_ids: set[int] = field(default_factory=set)

    def count(self, result: str) -> int:
        return sum(1 for o in self.outcomes if o.result == result)

    @property
    def contacts_created(self) -> int:
        return sum(1 for o in self.outcomes if o.contact_created)


def _core_rows(model, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return rows for a Core `executemany` INSERT into the model's table, as the ORM would write them.

    Core (insertmanyvalues: one statement, compiled once, a few round trips) in place of ORM bulk
    persistence, which groups rows by which of their values are None and compiles a statement for
    each group. Like the ORM, a None (or missing) value takes the column's Python default; every
    row gets the same keys, so the batch is one statement.
    """
    defaults = _defaults(model)
    keys = set().union(*rows) if rows else set()
    keys |= set(defaults)
    out = []
    for row in rows:
        full = dict.fromkeys(keys)
        full.update(row)
        for name, default in defaults.items():
            if full[name] is None:
                full[name] = default()
        out.append(full)
    return out


_DEFAULTS: dict[type, dict[str, Any]] = {}


def _defaults(model) -> dict[str, Any]:
    """{column name: a function giving its Python default} for the model's columns that have one."""
    if model not in _DEFAULTS:
        found = {}
        for column in model.__table__.columns:
            default = column.default
            if default is None or column.primary_key:
                continue
            if default.is_scalar:
                found[column.key] = (lambda value: (lambda: value))(default.arg)
            elif default.is_callable:
                found[column.key] = (lambda fn: (lambda: fn(None)))(default.arg)
        _DEFAULTS[model] = found
    return _DEFAULTS[model]


def _chunks(items: Sequence, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _customer_values(customer: CustomerRecord) -> dict[str, Any]:
    values = {name: getattr(customer, name) for name in FILLABLE}
    if customer.consent is not None:
        values["consent"] = customer.consent
    return {k: v for k, v in values.items() if v not in (None, "")}


def _new_contact_row(customer: CustomerRecord, now: datetime) -> dict[str, Any]:
    """Return the columns of a new contact for a shop's customer, dropping fields that do not validate."""
    values = _customer_values(customer)
    try:
        cleaned = contact_service.clean(values, require_identity=False)
    except ValidationError as error:
        # A malformed phone in a shop export must not cost the order: keep the rest.
        valid = {k: v for k, v in values.items() if k not in error.fields}
        cleaned = contact_service.clean(valid, require_identity=False)
    return {
        **NEW_CONTACT_DEFAULTS,
        **{name: None for name in FILLABLE if name not in ("first_name", "last_name")},
        **{k: v for k, v in cleaned.items() if k in FILLABLE or k == "consent"},
        "email": customer.email,
        "email_display": customer.email_display or customer.email,
        "source": customer.source,
        "consent_at": None, "consent_source": None,
        **(contact_service.consent_fields(None, True, f"{customer.source} import", now) if cleaned.get("consent") else {}),
        "created_at": customer.created_at or now,
        "updated_at": now,
    }


def _keep_unsubscribed_out(rows: list[dict[str, Any]]) -> None:
    """An import must not re-consent an address that unsubscribed or bounced (even one since erased)."""
    from crm.services.email import suppression

    suppressed = suppression.suppressed_among(row["email"] for row in rows if row.get("consent"))
    for row in rows:
        if row.get("consent") and row.get("email") in suppressed:
            row["consent"], row["consent_at"], row["consent_source"] = False, None, None


def resolve_contacts(customers: Sequence[CustomerRecord], now: datetime,
                     updated: set[int] | None = None) -> tuple[list[int], set[int]]:
    """Return the contact id of each customer (creating missing contacts) and the ids created.

    Matching is by the source's customer id first, then by normalised email; two rows of one
    batch for the same new customer make one contact. When `updated` is given, the ids of found
    contacts that learnt something (a blank field filled, a new customer id) are added to it.
    """
    by_external: dict[tuple[str, str], int] = {}
    keys_by_source: dict[str, list[str]] = {}
    for c in customers:
        if c.external_id:
            keys_by_source.setdefault(c.source, []).append(str(c.external_id))
    for source, ids in keys_by_source.items():
        for chunk in _chunks(sorted(set(ids))):
            rows = db.session.execute(
                select(ContactExternalId.external_id, ContactExternalId.contact_id)
                .where(ContactExternalId.source == source, ContactExternalId.external_id.in_(chunk))
            )
            by_external.update({(source, ext): cid for ext, cid in rows})
    by_email: dict[str, int] = {}
    emails = sorted({c.email for c in customers if c.email})
    for chunk in _chunks(emails):
        by_email.update(db.session.execute(select(Contact.email, Contact.id).where(Contact.email.in_(chunk))).all())

    contact_ids: list[int | None] = []
    pending: dict[str, dict] = {}  # new contacts of this batch, keyed by email or external id
    pending_index: list[str | None] = []
    for c in customers:
        key_ext = (c.source, str(c.external_id)) if c.external_id else None
        cid = by_external.get(key_ext) if key_ext else None
        if cid is None and c.email:
            cid = by_email.get(c.email)
        if cid is not None:
            contact_ids.append(cid)
            pending_index.append(None)
            continue
        batch_key = f"e:{c.email}" if c.email else (f"x:{c.source}:{c.external_id}" if c.external_id else f"n:{id(c)}")
        if key_ext and f"x:{c.source}:{c.external_id}" in pending and batch_key not in pending:
            batch_key = f"x:{c.source}:{c.external_id}"
        if batch_key not in pending:
            pending[batch_key] = _new_contact_row(c, now)
        contact_ids.append(None)
        pending_index.append(batch_key)

    created: set[int] = set()
    if pending:
        _keep_unsubscribed_out(list(pending.values()))
        id_by_key, created = _insert_contacts(pending)
        for i, batch_key in enumerate(pending_index):
            if batch_key is not None:
                contact_ids[i] = id_by_key[batch_key]

    # Remember the source's customer ids we have not seen before.
    new_links = {}
    for c, cid in zip(customers, contact_ids):
        if c.external_id and (c.source, str(c.external_id)) not in by_external:
            new_links[(c.source, str(c.external_id))] = cid
    if new_links:
        # Another writer may link the same customer id at the same moment: theirs stands.
        db.session.execute(_insert_ignoring_duplicates(ContactExternalId), _core_rows(ContactExternalId, [
            {"source": s, "external_id": e, "contact_id": cid} for (s, e), cid in new_links.items()
        ]))
    filled = _fill_blank_fields(customers, contact_ids, created)
    if updated is not None:
        updated |= filled | {cid for cid in new_links.values() if cid not in created}
    return [int(cid) for cid in contact_ids], created


def _insert_ignoring_duplicates(model):
    """INSERT … ON CONFLICT DO NOTHING into the model's table (Core), on PostgreSQL and SQLite alike."""
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(model.__table__).on_conflict_do_nothing()


def _insert_contacts(pending: dict[str, dict]) -> tuple[dict[str, int], set[int]]:
    """Insert new contacts as an upsert; return each batch key's contact id and the ids created.

    Contact creation is not check-then-insert: two writers (two API calls, a webhook and an
    import) may both find no contact for a new email and both insert it. The insert skips an
    email another writer stored first (ON CONFLICT DO NOTHING, waiting for that writer to commit
    on PostgreSQL), and the email is then looked up, so both orders land on the one contact.
    """
    id_by_key: dict[str, int] = {}
    # In email order: two writers inserting the same new emails then wait for each other in one
    # order, never in a cycle (a deadlock on PostgreSQL).
    with_email = {key: row for key, row in sorted(pending.items(), key=lambda item: item[1].get("email") or "")
                  if row.get("email")}
    without = [key for key in pending if key not in with_email]
    created: set[int] = set()
    if with_email:
        contacts = Contact.__table__
        inserted = db.session.execute(
            _insert_ignoring_duplicates(Contact).returning(contacts.c.id, contacts.c.email),
            _core_rows(Contact, list(with_email.values())),
        ).all()
        created |= {cid for cid, _email in inserted}
        by_email = {email: cid for cid, email in inserted}
        missing = sorted({row["email"] for row in with_email.values()} - set(by_email))
        for chunk in _chunks(missing):
            by_email.update(db.session.execute(select(Contact.email, Contact.id).where(Contact.email.in_(chunk))).all())
        id_by_key.update({key: by_email[row["email"]] for key, row in with_email.items()})
    if without:
        contacts = Contact.__table__
        new_ids = db.session.execute(insert(contacts).returning(contacts.c.id, sort_by_parameter_order=True),
                                     _core_rows(Contact, [pending[key] for key in without])).scalars().all()
        id_by_key.update(zip(without, new_ids))
        created |= set(new_ids)
    return id_by_key, created


def _fill_blank_fields(customers: Sequence[CustomerRecord], contact_ids: Sequence[int | None],
                       created: set[int]) -> set[int]:
    """Fill fields a found contact lacks from the shop's customer record (never overwrite).

    Returns the ids of the contacts that got a field filled.
    """
    found = sorted({cid for cid in contact_ids if cid is not None and cid not in created})
    if not found:
        return set()
    current: dict[int, Any] = {}
    for chunk in _chunks(found):
        for row in db.session.execute(select(Contact.id, *[getattr(Contact, f) for f in FILLABLE]).where(Contact.id.in_(chunk))):
            current[row[0]] = dict(zip(FILLABLE, row[1:]))
    updates: dict[int, dict[str, Any]] = {}
    for c, cid in zip(customers, contact_ids):
        if cid is None or cid in created:
            continue
        have = current[cid]
        wanted = {k: v for k, v in _customer_values(c).items() if k in FILLABLE and not have.get(k) and not updates.get(cid, {}).get(k)}
        if wanted:
            try:
                wanted = contact_service.clean(wanted, require_identity=False)
            except ValidationError as error:
                wanted = {k: v for k, v in wanted.items() if k not in error.fields}
                wanted = contact_service.clean(wanted, require_identity=False)
            updates.setdefault(cid, {}).update({k: v for k, v in wanted.items() if k in FILLABLE})
    for cid, values in updates.items():
        if values:
            db.session.execute(update(Contact).where(Contact.id == cid).values(**values)
                               .execution_options(synchronize_session=False))
    return {cid for cid, values in updates.items() if values}


def _limit(model, name: str) -> int | None:
    return model.__table__.c[name].type.length


# (label in a rejection reason, attribute, longest text the column holds)
_ORDER_TEXT = (("order_id", "external_id", _limit(Order, "external_id")), ("number", "number", _limit(Order, "number")),
               ("source", "source", _limit(Order, "source")), ("currency", "currency", _limit(Order, "currency")))
_LINE_TEXT = (("sku", _limit(OrderLine, "sku")), ("name", _limit(OrderLine, "name")))
_CUSTOMER_TEXT = (
    ("customer_id", "external_id", _limit(ContactExternalId, "external_id")),
    ("email", "email", _limit(Contact, "email")), ("email", "email_display", _limit(Contact, "email_display")),
    ("company", "company", _limit(Contact, "company")), ("address", "address", _limit(Contact, "address")),
    ("city", "city", _limit(Contact, "city")),
    # Names and phones are cleaned later (an unusable one is dropped); here only what no column can hold.
    ("first_name", "first_name", None), ("last_name", "last_name", None), ("phone", "phone", None),
)


def _text_problem(label: str, value: Any, limit: int | None) -> tuple[str, str] | None:
    if not isinstance(value, str):
        return None
    if limit and len(value) > limit:
        return label, f"{label}: {len(value)} characters, more than the {limit} that can be stored"
    if "\x00" in value:
        return label, f"{label}: contains a NUL character, which cannot be stored"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return label, f"{label}: contains characters that are not valid Unicode"
    return None


def unstorable(record: OrderRecord | CustomerRecord) -> tuple[str, str] | None:
    """Return (field, reason) when a record holds text the database cannot store, else None.

    The readers check meaning, not column sizes; without this, one over-long id would make
    PostgreSQL refuse a whole batch (SQLite would store it). Names are left to `clean`, which
    drops one that is too long instead of losing the order.
    """
    checks: list[tuple[str, Any, int | None]] = []
    customer = record.customer if isinstance(record, OrderRecord) else record
    if isinstance(record, OrderRecord):
        checks += [(label, getattr(record, name), limit) for label, name, limit in _ORDER_TEXT]
        checks += [(f"lines[{i}].{name}", getattr(line, name), limit)
                   for i, line in enumerate(record.lines) for name, limit in _LINE_TEXT]
    checks += [(label, getattr(customer, name), limit) for label, name, limit in _CUSTOMER_TEXT]
    checks += [("tags", tag, None) for tag in customer.tags]
    for label, value, limit in checks:
        if problem := _text_problem(label, value, limit):
            return problem
    return None


# Never quotes the address: a refused re-import must not store the blocked email in clear text.
BLOCKED_REASON = "the customer was erased and is blocked from re-import (email or shop customer id)"


def blocked_customers(customers: Sequence[CustomerRecord]) -> set[int]:
    """Return the indexes of the customers that belong to an erased, blocked person: by the
    normalised email, or by the shop's customer id (a body with the same id and no email)."""
    emails = blocked_among(c.email for c in customers if c.email)
    ids = blocked_customer_ids((c.source, str(c.external_id)) for c in customers if c.external_id)
    return {i for i, c in enumerate(customers)
            if (c.email and c.email in emails) or (c.external_id and (c.source, str(c.external_id)) in ids)}


_MONEY_FIELDS = ("total", "refunded")


def order_problem(record: OrderRecord, now: datetime) -> tuple[str, str] | None:
    """Return (field, reason) when an order breaks a rule every path shares, else None.

    A date outside 1970 .. ten years ahead is refused (a "no date" sentinel such as 9999-12-31
    would otherwise break the rules' date arithmetic), and so is a negative amount: a refund is
    recorded as the order's refunded amount or status, never as a negative total.
    """
    try:
        check_moment(record.placed_at, now=now)
    except ValueError as error:
        return "placed_at", f"placed_at: {error}"
    for name in _MONEY_FIELDS:
        value = getattr(record, name)
        if value is not None and value < 0:
            return name, (f"{name}: {value} is negative; record a refund as the order's refunded amount "
                          "(or status refunded), not as a negative amount")
    for i, line in enumerate(record.lines):
        if not 0 <= line.quantity <= MAX_QUANTITY:
            return f"lines[{i}].quantity", f"lines[{i}].quantity: must be a whole number from 0 to {MAX_QUANTITY}"
    return customer_problem(record.customer, now)


def customer_problem(customer: CustomerRecord, now: datetime) -> tuple[str, str] | None:
    """Return (field, reason) when a customer record carries a date outside the accepted window."""
    if customer.created_at is not None:
        try:
            check_moment(customer.created_at, now=now)
        except ValueError as error:
            return "created_at", f"created_at: {error}"
    return None


def _fingerprint(values: dict[str, Any], lines: Iterable) -> tuple:
    return (
        tuple(values[name] for name in ORDER_FIELDS),
        tuple(sorted((l["sku"] or "", l["name"], l["quantity"], l["unit_price"]) for l in lines)),
    )


def _order_values(record: OrderRecord) -> dict[str, Any]:
    values = {name: getattr(record, name) for name in ORDER_FIELDS}
    values["number"] = record.number or record.external_id
    return values


def _line_values(record: OrderRecord) -> list[dict[str, Any]]:
    return [{"sku": l.sku, "name": l.name or "", "quantity": l.quantity, "unit_price": l.unit_price} for l in record.lines]


def record_orders(records: Sequence[OrderRecord], *, actor_id: int | None = None, now: datetime | None = None,
                  audit_each: bool = True, react: bool = True,
                  contact_ids: Sequence[int | None] | None = None) -> BatchSummary:
    """Record a batch of orders idempotently and return what happened to each, in input order.

    Set `react=False` for bulk loads that refresh aggregates and rules once at the end.
    `contact_ids` (aligned with `records`) names the contact of an order when the caller already
    knows it (an order typed in on a contact's page); None entries are matched as usual.
    """
    now = now or utcnow()
    summary = BatchSummary(outcomes=[OrderOutcome(r.line, "rejected") for r in records])
    if not records:
        return summary
    blocked = blocked_customers([r.customer for r in records])
    accepted = []
    for index, record in enumerate(records):
        outcome = summary.outcomes[index]
        if index in blocked:
            outcome.field, outcome.reason = "email", BLOCKED_REASON
        elif problem := unstorable(record) or order_problem(record, now):
            outcome.field, outcome.reason = problem
        else:
            accepted.append(index)
    if not accepted:
        return summary
    existing = _existing_orders([records[i] for i in accepted])
    # Only orders not stored yet need their customer matched: a stored order keeps its contact,
    # and reading the same file again must not make contacts (a customer with neither an email
    # nor a customer id matches nobody, so matching it again would create a duplicate).
    known = {i: contact_ids[i] for i in accepted if contact_ids and contact_ids[i] is not None}
    to_match, new_keys = [], set()
    for index in accepted:
        key = (records[index].source, str(records[index].external_id))
        if key not in existing and key not in new_keys:
            new_keys.add(key)
            if index not in known:
                to_match.append(index)
    matched, created = resolve_contacts([records[i].customer for i in to_match], now) if to_match else ([], set())
    contact_of = {**dict(zip(to_match, matched)), **known}

    new_orders: list[tuple[int, dict, list]] = []  # (input index, order row, lines)
    for index in accepted:
        record = records[index]
        key = (record.source, str(record.external_id))
        values, lines = _order_values(record), _line_values(record)
        outcome = summary.outcomes[index]
        before = existing.get(key)
        if before is None:
            contact_id = contact_of[index]
            outcome.contact_id, outcome.contact_created = contact_id, contact_id in created
            created.discard(contact_id)  # count a new contact once
            row = {**values, "source": record.source, "external_id": str(record.external_id),
                   "contact_id": contact_id, "created_at": now, "updated_at": now}
            existing[key] = {"new": row, "lines": lines, "contact_id": contact_id, **values}
            new_orders.append((index, row, lines))
            outcome.result = "created"
            continue
        outcome.contact_id = before["contact_id"]
        if _fingerprint(before, before["lines"]) == _fingerprint(values, lines):
            outcome.result = "unchanged"
            outcome.order_id = before.get("id")
            continue
        outcome.result = "updated"
        if "new" in before:
            # The same new order twice in one batch: the later row wins before anything is written.
            before["new"].update(values)
            before["lines"][:] = lines
            before.update(values)
            continue
        outcome.order_id = before["id"]
        db.session.execute(update(Order).where(Order.id == before["id"]).values(**values, updated_at=now)
                           .execution_options(synchronize_session=False))
        db.session.execute(delete(OrderLine).where(OrderLine.order_id == before["id"]))
        if lines:
            db.session.execute(insert(OrderLine.__table__),
                               _core_rows(OrderLine, [{**line, "order_id": before["id"]} for line in lines]))
        if audit_each:
            audit.record("update", "order", before["id"], user_id=actor_id,
                         before={f: before[f] for f in ORDER_FIELDS}, after=values)
        before.update(values)
        before["lines"] = lines

    if new_orders:
        new_orders.sort(key=lambda item: (item[1]["source"], item[1]["external_id"]))  # one write order for all writers
        orders = Order.__table__
        ids = db.session.execute(insert(orders).returning(orders.c.id, sort_by_parameter_order=True),
                                 _core_rows(Order, [row for _, row, _ in new_orders])).scalars().all()
        line_rows = []
        for (index, row, lines), order_id in zip(new_orders, ids):
            existing[(row["source"], row["external_id"])]["id"] = order_id
            line_rows.extend({**line, "order_id": order_id} for line in lines)
            if audit_each:
                audit.record("create", "order", order_id, user_id=actor_id,
                             after={"contact_id": row["contact_id"], "source": row["source"],
                                    "external_id": row["external_id"], **{f: row[f] for f in ORDER_FIELDS}})
        if line_rows:
            db.session.execute(insert(OrderLine.__table__), _core_rows(OrderLine, line_rows))
        for index in accepted:
            if summary.outcomes[index].order_id is None:
                record = records[index]
                summary.outcomes[index].order_id = existing[(record.source, str(record.external_id))]["id"]
    summary.contact_ids = {o.contact_id for o in summary.outcomes if o.contact_id}
    if react:
        changed = {o.contact_id for o in summary.outcomes if o.result in ("created", "updated") and o.contact_id}
        if changed:
            # Contacts that were there before and only got new orders: their summaries add them.
            redone = {o.contact_id for o in summary.outcomes if o.result == "updated" or o.contact_created}
            new_orders: dict[int, list[int]] = {}
            for o in summary.outcomes:
                if o.result == "created" and o.contact_id not in redone:
                    new_orders.setdefault(o.contact_id, []).append(o.order_id)
            aggregates.refresh(changed, new_orders)
            signals.after_contacts_changed(changed, now=now)
            # What can wait (shop-wide figures, predictions) goes to the worker, never into the request.
            signals.after_orders_recorded(changed, now=now)
    return summary


def _existing_orders(records: Sequence[OrderRecord]) -> dict[tuple[str, str], dict[str, Any]]:
    """Return the stored orders (figures and lines) these records name, keyed by (source, external id)."""
    existing: dict[tuple[str, str], dict[str, Any]] = {}
    by_source: dict[str, set[str]] = {}
    for r in records:
        by_source.setdefault(r.source, set()).add(str(r.external_id))
    for source, ids in by_source.items():
        for chunk in _chunks(sorted(ids)):
            for row in db.session.execute(
                select(Order.id, Order.external_id, Order.contact_id, *[getattr(Order, f) for f in ORDER_FIELDS])
                .where(Order.source == source, Order.external_id.in_(chunk))
            ):
                existing[(source, row.external_id)] = {
                    "id": row.id, "contact_id": row.contact_id, "lines": [],
                    **{f: getattr(row, f) for f in ORDER_FIELDS},
                }
    key_by_id = {v["id"]: k for k, v in existing.items()}
    for chunk in _chunks(sorted(key_by_id)):
        for line in db.session.execute(
            select(OrderLine.order_id, OrderLine.sku, OrderLine.name, OrderLine.quantity, OrderLine.unit_price)
            .where(OrderLine.order_id.in_(chunk))
        ):
            existing[key_by_id[line.order_id]]["lines"].append(
                {"sku": line.sku, "name": line.name, "quantity": line.quantity, "unit_price": line.unit_price})
    return existing


def record_order(record: OrderRecord, *, actor_id: int | None = None, now: datetime | None = None,
                 contact_id: int | None = None) -> OrderOutcome:
    """Record one order (see record_orders) and return its outcome."""
    return record_orders([record], actor_id=actor_id, now=now, contact_ids=[contact_id]).outcomes[0]


# -- customers ---------------------------------------------------------------------------------

@dataclass
class CustomerOutcome:
    """What happened to one customer record: created, updated, unchanged or rejected (with the reason)."""

    line: int
    result: str
    contact_id: int | None = None
    reason: str | None = None


def record_customers(records: Sequence[CustomerRecord], *, actor_id: int | None = None, now: datetime | None = None,
                     audit_each: bool = True, react: bool = True) -> list[CustomerOutcome]:
    """Record a batch of a shop's customers and return what happened to each, in input order.

    Matching is `resolve_contacts` (the same as for an order's customer); a found contact only
    gets its blank fields filled, the shop's customer id linked and the shop's tags added, so
    re-reading a file changes nothing. A customer with neither an email nor a customer id is
    refused: nothing could recognise it on the next import, which would make a duplicate.
    """
    now = now or utcnow()
    outcomes = [CustomerOutcome(r.line, "rejected") for r in records]
    blocked = blocked_customers(records)
    accepted = []
    for index, record in enumerate(records):
        if index in blocked:
            outcomes[index].reason = BLOCKED_REASON
        elif problem := unstorable(record) or customer_problem(record, now):
            outcomes[index].reason = problem[1]
        elif not record.email and not record.external_id:
            outcomes[index].reason = ("no email and no customer id: the customer could not be recognised "
                                      "on a later import, so it was not imported")
        else:
            accepted.append(index)
    if not accepted:
        return outcomes
    updated: set[int] = set()
    contact_ids, created = resolve_contacts([records[i] for i in accepted], now, updated)
    updated |= _add_tags([(cid, records[i].tags) for i, cid in zip(accepted, contact_ids)]) - created
    seen: set[int] = set()
    for index, contact_id in zip(accepted, contact_ids):
        outcome = outcomes[index]
        outcome.contact_id = contact_id
        # Two rows for one contact in a batch: report the change once, the repeat as unchanged.
        if contact_id in seen:
            outcome.result = "unchanged"
            continue
        seen.add(contact_id)
        outcome.result = "created" if contact_id in created else "updated" if contact_id in updated else "unchanged"
        if audit_each and outcome.result != "unchanged":
            record = records[index]
            audit.record("create" if outcome.result == "created" else "update", "contact", contact_id, user_id=actor_id,
                         after={"from": record.source, "customer_id": record.external_id, "email": record.email})
    if react and (created or updated):
        signals.after_contacts_changed(created | updated, now=now)
    return outcomes


def _add_tags(wanted: Sequence[tuple[int, list[str]]]) -> set[int]:
    """Give contacts the shop's tags they do not have yet (set-based); return the ids that got one."""
    pairs = {(cid, name.strip().lower()[:80]) for cid, names in wanted for name in names if name and name.strip()}
    if not pairs:
        return set()
    names = sorted({name for _, name in pairs})
    tag_ids: dict[str, int] = {}
    for chunk in _chunks(names):
        tag_ids.update(db.session.execute(select(Tag.name, Tag.id).where(Tag.name.in_(chunk))).all())
    missing = [name for name in names if name not in tag_ids]
    if missing:
        db.session.execute(insert(Tag), [{"name": name} for name in missing])
        for chunk in _chunks(missing):
            tag_ids.update(db.session.execute(select(Tag.name, Tag.id).where(Tag.name.in_(chunk))).all())
    have: set[tuple[int, int]] = set()
    for chunk in _chunks(sorted({cid for cid, _ in pairs})):
        have.update(db.session.execute(select(contact_tags.c.contact_id, contact_tags.c.tag_id)
                                       .where(contact_tags.c.contact_id.in_(chunk))).all())
    new = sorted({(cid, tag_ids[name]) for cid, name in pairs} - have)
    if new:
        db.session.execute(insert(contact_tags), [{"contact_id": cid, "tag_id": tid} for cid, tid in new])
    return {cid for cid, _ in new}
