"""Orders and their lines, as they came from a shop, the API or the order form."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.models.base import db, Money, UTCDateTime, utcnow

if TYPE_CHECKING:
    from crm.models.contact import Contact

ORDER_STATUSES = ("pending", "paid", "fulfilled", "partially_refunded", "refunded", "cancelled")
# Orders that count as a purchase: money was taken and not all of it given back.
PAID_STATUSES = ("paid", "fulfilled", "partially_refunded")


class Order(db.Model):
    __tablename__ = "orders"
    __table_args__ = (
        sa.UniqueConstraint("source", "external_id"),
        # A contact's orders by time (the contact page, the engine, the aggregates) and the
        # segments' "ordered" conditions: with the status in the index, "paid orders of this
        # contact in this window" is answered from the index alone, never the table.
        sa.Index("ix_orders_contact_placed_status", "contact_id", "placed_at", "status"),
        # Paid orders in a time window (the dashboard's figures): a few seeks instead of
        # walking every paid order. Also serves a filter on status alone.
        sa.Index("ix_orders_status_placed", "status", "placed_at"),
        sa.CheckConstraint(
            "status IN ('pending', 'paid', 'fulfilled', 'partially_refunded', 'refunded', 'cancelled')",
            name="status",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(sa.String(40))
    external_id: Mapped[str] = mapped_column(sa.String(120))
    number: Mapped[str] = mapped_column(sa.String(60), index=True)
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="paid")
    currency: Mapped[str] = mapped_column(sa.String(3), default="EUR")
    subtotal: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    discount: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    shipping: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    tax: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    total: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    refunded: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    contact: Mapped["Contact"] = relationship()
    lines: Mapped[list["OrderLine"]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderLine.id"
    )

    @property
    def is_paid(self) -> bool:
        return self.status in PAID_STATUSES


class OrderLine(db.Model):
    __tablename__ = "order_lines"
    __table_args__ = (
        # An order's lines (and the foreign key's cascade), and the segments' "ordered a product"
        # conditions: sku and name in the index, so checking an order's lines never reads the table.
        sa.Index("ix_order_lines_order_sku_name", "order_id", "sku", "name"),
        # The segments' product-first plan: the shop's distinct product names, one seek each, and
        # the orders holding the named products (and skus) without reading the table.
        # With the order's date, status and contact (the copies below), a sku condition's lines
        # give their contacts from the index alone.
        sa.Index("ix_order_lines_name_sku_placed", "name", "sku", "placed_at", "status", "contact_id", "order_id"),
        # The segments' count of "bought a product": the product's lines by name and date, paid,
        # straight to their contacts (the order's copies below), without reading the orders.
        sa.Index("ix_order_lines_name_placed_status_contact", "name", "placed_at", "status", "contact_id",
                 "order_id"),
    )
    # The copies below are never fetched with an INSERT's RETURNING: on SQLite the trigger sets
    # them after the row is inserted, so RETURNING would give NULLs. Expired instead, read on use.
    __mapper_args__ = {"eager_defaults": False}

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"))
    sku: Mapped[Optional[str]] = mapped_column(sa.String(120))
    name: Mapped[str] = mapped_column(sa.String(300), default="")
    quantity: Mapped[int] = mapped_column(default=1)
    unit_price: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    # Read-only copies of the order's contact, date and status, kept by database triggers
    # (migration 0018_line_mirror.py) whatever writes the line or its order: the app never sets
    # them (a value it gave would be replaced by the order's). FetchedValue: the ORM leaves them
    # out of its INSERTs and UPDATEs and reads them back from the database when asked.
    contact_id: Mapped[Optional[int]] = mapped_column(
        sa.Integer, server_default=sa.FetchedValue(), server_onupdate=sa.FetchedValue())
    placed_at: Mapped[Optional[datetime]] = mapped_column(
        UTCDateTime, server_default=sa.FetchedValue(), server_onupdate=sa.FetchedValue())
    status: Mapped[Optional[str]] = mapped_column(
        sa.String(20), server_default=sa.FetchedValue(), server_onupdate=sa.FetchedValue())

    order: Mapped[Order] = relationship(back_populates="lines")
