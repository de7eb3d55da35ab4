"""Contacts, their tags and the ids other systems know them by."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.models.base import db, Money, UTCDateTime, utcnow
from crm.vocabulary import HEALTHS, STAGES  # noqa: F401  (re-exported for crm.models)

if TYPE_CHECKING:
    from crm.models.user import User


contact_tags = sa.Table(
    "contact_tags",
    db.metadata,
    sa.Column("contact_id", sa.ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("tag_id", sa.ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Tag(db.Model):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)


class Contact(db.Model):
    __tablename__ = "contacts"
    __table_args__ = (
        sa.CheckConstraint(
            "stage IN ('awareness', 'consideration', 'conversion', 'retention', 'advocacy')",
            name="stage",
        ),
        sa.CheckConstraint("health IS NULL OR health IN ('active', 'at_risk', 'lapsed')", name="health"),
        sa.Index("ix_contacts_name", "last_name", "first_name"),
        # The contact list's stage and score filters, and a segment's count over them: with
        # erased_at in the index, "live contacts in this stage with this score" never reads the table.
        sa.Index("ix_contacts_stage_score_erased", "stage", "lead_score", "erased_at"),
        # The contact list filtered by stage in its default order (by name): the first page read
        # in order, not every contact of the stage sorted (migration 0017_page_indexes).
        sa.Index("ix_contacts_stage_name", "stage", "last_name", "first_name", "id"),
        # The dashboard's customers count (first paid order by the as-of) from the index alone.
        sa.Index("ix_contacts_first_order_count", "first_order_at", "order_count"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Normalised (trimmed, lower-cased) for matching; email_display keeps what was typed.
    email: Mapped[Optional[str]] = mapped_column(sa.String(320), unique=True)
    email_display: Mapped[Optional[str]] = mapped_column(sa.String(320))
    first_name: Mapped[str] = mapped_column(sa.String(120), default="")
    last_name: Mapped[str] = mapped_column(sa.String(120), default="")
    phone: Mapped[Optional[str]] = mapped_column(sa.String(32), index=True)  # E.164
    company: Mapped[Optional[str]] = mapped_column(sa.String(200))
    title: Mapped[Optional[str]] = mapped_column(sa.String(200))
    birthday: Mapped[Optional[date]] = mapped_column(sa.Date)
    address: Mapped[Optional[str]] = mapped_column(sa.String(400))
    city: Mapped[Optional[str]] = mapped_column(sa.String(120))
    country: Mapped[Optional[str]] = mapped_column(sa.String(2))
    source: Mapped[str] = mapped_column(sa.String(40), default="manual")
    owner_id: Mapped[Optional[int]] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    consent: Mapped[bool] = mapped_column(default=False)
    consent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    consent_source: Mapped[Optional[str]] = mapped_column(sa.String(200))
    do_not_contact: Mapped[bool] = mapped_column(default=False)
    stay_in_touch_days: Mapped[Optional[int]]
    # The language emails to this contact are written in; None means the shop's.
    language: Mapped[Optional[str]] = mapped_column(sa.String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    erased_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    # Derived and stored, kept current by the services.
    stage: Mapped[str] = mapped_column(sa.String(20), default="awareness")
    stage_reason: Mapped[str] = mapped_column(sa.String(300), default="")
    stage_reason_said: Mapped[Optional[dict]] = mapped_column(sa.JSON)  # the rule's words as key and values
    stage_pinned: Mapped[bool] = mapped_column(default=False)
    stage_since: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    health: Mapped[Optional[str]] = mapped_column(sa.String(10), index=True)
    lead_score: Mapped[int] = mapped_column(default=0, index=True)
    score_breakdown: Mapped[list] = mapped_column(sa.JSON, default=list)
    order_count: Mapped[int] = mapped_column(default=0)
    total_spent: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"), index=True)
    first_order_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    last_order_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, index=True)
    last_interaction_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # Predictions (BG/NBD and Gamma-Gamma) and RFM, written by `crm predict`.
    p_alive: Mapped[Optional[float]]
    expected_orders_90d: Mapped[Optional[float]]
    predicted_value_12m: Mapped[Optional[Decimal]] = mapped_column(Money)
    next_order_expected_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    rfm_recency: Mapped[Optional[int]]
    rfm_frequency: Mapped[Optional[int]]
    rfm_monetary: Mapped[Optional[int]]
    rfm_segment: Mapped[Optional[str]] = mapped_column(sa.String(30))

    owner: Mapped[Optional["User"]] = relationship(foreign_keys=[owner_id])
    tags: Mapped[list[Tag]] = relationship(secondary=contact_tags, order_by=Tag.name)
    external_ids: Mapped[list["ContactExternalId"]] = relationship(
        back_populates="contact", cascade="all, delete-orphan"
    )

    @property
    def name(self) -> str:
        full = f"{self.first_name or ''} {self.last_name or ''}".strip()
        return full or self.email_display or self.email or f"Contact #{self.id}"

    @property
    def is_customer(self) -> bool:
        return self.order_count > 0

    def __repr__(self) -> str:
        return f"<Contact {self.id} {self.email}>"


class ContactExternalId(db.Model):
    __tablename__ = "contact_external_ids"
    __table_args__ = (sa.UniqueConstraint("source", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        sa.ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[str] = mapped_column(sa.String(40))
    # Indexed on its own too: the search box finds a contact by a shop's customer id, whatever the source.
    external_id: Mapped[str] = mapped_column(sa.String(120), index=True)

    contact: Mapped[Contact] = relationship(back_populates="external_ids")


class ErasedEmail(db.Model):
    """A hash of an erased contact's email, kept on request so it is not imported again."""

    __tablename__ = "erased_emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
