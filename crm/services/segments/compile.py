"""Compiling a checked definition into one SQL WHERE clause over contacts (SQLAlchemy Core,
the same on SQLite and PostgreSQL). Event conditions become `contacts.id IN (SELECT ...)`
subqueries on indexed columns; nothing loops over contacts in Python."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import and_, case, exists, false, func, literal, or_, select, true

from crm.models import Contact, Interaction, Order, OrderLine, Tag, Task, contact_tags
from crm.services.people.queries import contains_text
from crm.services.segments.definition import FIELDS, PAID, SET_OPS, Condition, EventOptions, Group
from crm.services.shop.clock import start_of_shop_day


def where(group: Group, today: date, *, per_contact: bool = False):
    """Return the WHERE clause of a definition: erased contacts never belong to a segment.
    `today` is the shop's calendar date, for conditions counted in days.

    `per_contact` is for checking a few given contacts (a page of the contact list walked in its
    sort order): a product or sku is then looked up in each of the contact's orders' lines,
    instead of first gathering every order that holds the product (which pays off only when
    thousands of contacts are checked). The members are the same either way."""
    return and_(Contact.erased_at.is_(None), _group(group, today, per_contact))


def _group(group: Group, today: date, per_contact: bool):
    parts = [_group(item, today, per_contact) if isinstance(item, Group) else _condition(item, today, per_contact)
             for item in group.conditions]
    if group.match == "any":
        return or_(false(), *parts)
    return and_(true(), *parts)


def email_status_expression():
    """Return the SQL for the derived email status (the same order as evaluate's)."""
    return case(
        (Contact.email.is_(None), literal("missing")),
        (Contact.do_not_contact.is_(True), literal("do_not_contact")),
        (Contact.consent.is_(True), literal("subscribed")),
        else_=literal("not_subscribed"),
    )


def _condition(item: Condition, today: date, per_contact: bool):
    field = FIELDS[item.field]
    if field.kind == "event":
        found = _event(item.field, item.value, today, per_contact)
        return found if item.op == "has" else ~found
    if field.kind == "tag":
        return _tag(item)
    column = email_status_expression() if item.field == "email_status" else getattr(Contact, field.column)
    op, value = item.op, item.value
    if op in SET_OPS:
        is_set = column.isnot(None)
        if field.kind == "text":
            is_set = and_(is_set, column != "")
        return is_set if op == "is_set" else ~is_set
    if op == "!=":
        return or_(column.is_(None), column != value)
    if field.kind == "date":
        return _date(column, op, value, today)
    if op == "=":
        return column == value
    if op == "in":
        return column.in_(value)
    if op == "contains":
        return contains_text(column, value)
    if op == "between":
        return column.between(*value)
    return {"<": column < value, "<=": column <= value, ">": column > value, ">=": column >= value}[op]


def _tag(item: Condition):
    def having(names):
        return Contact.id.in_(
            select(contact_tags.c.contact_id).join(Tag, Tag.id == contact_tags.c.tag_id).where(Tag.name.in_(names))
        )

    if item.op == "=":
        return having([item.value])
    if item.op == "!=":
        return ~having([item.value])
    if item.op == "in":
        return having(list(item.value))
    tagged = Contact.id.in_(select(contact_tags.c.contact_id))
    return tagged if item.op == "is_set" else ~tagged


def day_window(day_from: date | None, day_to: date | None):
    """Return [start, end) in UTC-aware datetimes of shop days from..to (either may be open)."""
    start = start_of_shop_day(day_from) if day_from else None
    end = start_of_shop_day(day_to + timedelta(days=1)) if day_to else None
    return start, end


def _within(column, start, end):
    parts = []
    if start is not None:
        parts.append(column >= start)
    if end is not None:
        parts.append(column < end)
    return and_(true(), *parts)


def _date(column, op: str, value, today: date):
    if op == "=":
        return _within(column, *day_window(value, value))
    if op == "before":
        return column < start_of_shop_day(value)
    if op == "after":
        return column >= start_of_shop_day(value + timedelta(days=1))
    if op == "between":
        return _within(column, *day_window(*value))
    since = column >= start_of_shop_day(today - timedelta(days=value - 1))
    return since if op == "within_last_days" else or_(column.is_(None), ~since)


def _event_window(options: EventOptions, today: date):
    if options.within_days is not None:
        return day_window(today - timedelta(days=options.within_days - 1), None)
    if options.between is not None:
        return day_window(*options.between)
    return None, None


def product_names():
    """Return a recursive CTE of the distinct product names on order lines, read as one seek per
    name in a names-first index of order_lines (a loose index scan: the smallest name, then the
    smallest one after it, ...): a shop's catalogue is tens or hundreds of names over millions of
    lines. Nested, so that it lives inside the subquery that uses it (a WHERE clause may hold
    several)."""
    first = select(func.min(OrderLine.name).label("name"))
    names = first.cte(recursive=True, nesting=True)
    following = OrderLine.__table__.alias()
    after = select(func.min(following.c.name)).where(following.c.name > names.c.name).scalar_subquery()
    return names.union_all(select(after).where(names.c.name.isnot(None)))


def _lines_with_product(product: str | None, sku: str | None):
    """Return "this order holds a line with the product (its name contains `product`) and/or the
    sku", correlated to the order: a seek per order on `ix_order_lines_order_sku_name`, which
    holds the name and sku (the same lines as `_contacts_with_product`, order by order)."""
    line = [OrderLine.order_id == Order.id]
    if sku is not None:
        line.append(OrderLine.sku == sku)
    if product is not None:
        line.append(contains_text(OrderLine.name, product))
    return exists(select(OrderLine.id).where(*line))


def _contacts_with_product(options: EventOptions, start, end):
    """Return "the contact bought the product (and/or sku) in the window, in at least min_count
    paid orders" as `contacts.id IN (...)`, read from the lines alone: each line carries its
    order's contact, date and status (copies kept by triggers, migration 0018_line_mirror.py), so
    the product's lines in the window that are paid give the contacts through
    `ix_order_lines_name_placed_status_contact` (name, placed_at, status, contact_id, order_id;
    with a sku, `ix_order_lines_name_sku_placed`: name, sku, placed_at, status, contact_id,
    order_id) without reading an order or the table. The product's names are those among the
    distinct names (`product_names`) that contain the text (`contains_text`). min_count
    counts orders, not lines (an order may hold the product twice). Not correlated: computed
    once per statement."""
    names = product_names()
    matching = select(names.c.name).where(names.c.name.isnot(None))
    if options.product is not None:
        matching = matching.where(contains_text(names.c.name, options.product))
    lines = [OrderLine.name.in_(matching), _within(OrderLine.placed_at, start, end),
             OrderLine.status.in_(PAID), OrderLine.contact_id.isnot(None)]
    if options.sku is not None:
        lines.append(OrderLine.sku == options.sku)
    buyers = select(OrderLine.contact_id).where(*lines)
    if options.min_count > 1:
        buyers = buyers.group_by(OrderLine.contact_id).having(
            func.count(OrderLine.order_id.distinct()) >= options.min_count)
    return Contact.id.in_(buyers)


def _event(name: str, options: EventOptions, today: date, per_contact: bool = False):
    """Return "the contact has the event (at least min_count times)" as a subquery correlated to the
    contact, read through the (contact_id, time) indexes: a segment that narrows contacts by their
    fields looks only at those contacts' orders, not at every order in the shop. A product or sku
    is checked product first, from the lines alone (`_contacts_with_product`: the product's paid
    lines in the window give their contacts); `per_contact`: the contact's paid orders in the
    window are read and their lines checked, for a few contacts."""
    start, end = _event_window(options, today)
    if name == "ordered" and not per_contact and (options.sku is not None or options.product is not None):
        return _contacts_with_product(options, start, end)
    if name == "ordered":
        table = Order
        where = [Order.contact_id == Contact.id, Order.status.in_(PAID), _within(Order.placed_at, start, end)]
        if options.sku is not None or options.product is not None:
            where.append(_lines_with_product(options.product, options.sku))
    elif name == "interaction":
        table = Interaction
        where = [Interaction.contact_id == Contact.id, _within(Interaction.occurred_at, start, end)]
        if options.kind is not None:
            where.append(Interaction.kind == options.kind)
    else:
        table = Task
        where = [Task.contact_id == Contact.id]
        if options.rule is not None:
            where.append(Task.rule_key.startswith(options.rule + ":", autoescape=True))
        if options.status is not None:
            where.append(Task.status == options.status)
    if options.min_count > 1:
        # Counting stops at min_count: a customer with 500 orders costs no more than one with 3.
        enough = select(table.id).where(*where).limit(options.min_count).correlate(Contact).subquery()
        return select(func.count()).select_from(enough).scalar_subquery() >= options.min_count
    return exists(select(table.id).where(*where)).correlate(Contact)
