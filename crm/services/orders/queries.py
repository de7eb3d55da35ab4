"""Finding orders for the orders pages: search and filters in one bounded query per page."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import contains_eager, selectinload

from crm.extensions import db
from crm.models import Contact, Order


@dataclass
class OrderPage:
    orders: list[Order]  # each with .contact loaded
    page: int
    has_next: bool


def like_pattern(text: str) -> str:
    """Return a case-insensitive LIKE pattern matching `text` anywhere, wildcards escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_orders(q: str | None = None, *, status: str | None = None, placed_from: datetime | None = None,
                  placed_before: datetime | None = None, page: int = 1, per_page: int = 50) -> OrderPage:
    """Return one page of orders, newest first, matching the search and filters.

    `q` matches the order number or id, or the customer's name or email.
    """
    query = (select(Order).join(Order.contact).options(contains_eager(Order.contact))
             .order_by(Order.placed_at.desc(), Order.id.desc()))
    q = (q or "").strip()
    if q:
        pattern = like_pattern(q)
        full_name = func.coalesce(Contact.first_name, "") + " " + func.coalesce(Contact.last_name, "")
        query = query.where(or_(
            Order.number.ilike(pattern, escape="\\"), Order.external_id == q,
            Contact.email.ilike(pattern, escape="\\"), full_name.ilike(pattern, escape="\\"),
        ))
    if status:
        query = query.where(Order.status == status)
    if placed_from is not None:
        query = query.where(Order.placed_at >= placed_from)
    if placed_before is not None:
        query = query.where(Order.placed_at < placed_before)
    page = max(page, 1)
    orders = list(db.session.scalars(query.limit(per_page + 1).offset((page - 1) * per_page)).unique())
    return OrderPage(orders=orders[:per_page], page=page, has_next=len(orders) > per_page)


def order_with_lines(order_id: int) -> Order | None:
    """Return an order with its lines and contact loaded, or None."""
    return db.session.scalar(
        select(Order).where(Order.id == order_id).options(selectinload(Order.lines), selectinload(Order.contact))
    )
