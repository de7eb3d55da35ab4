"""What it earned: per flow, newsletter and template, how many were sent, failed, bounced, led to an
unsubscribe, and the revenue attributed to them.

Attribution: a paid order by a recipient placed within `click_days` (setting, default 5) of a
click on one of its links, or within `send_days` (default 1) of a marketing email being sent,
counts for the latest such touch before the order, so one order is never counted twice, however
many flows and newsletters reached that person.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from crm.extensions import db
from crm.models import CampaignRecipient, ConsentEvent, EmailClick, EmailMessage, FlowSend, Order, Setting
from crm.models.order import PAID_STATUSES

SETTING_KEY = "attribution"
DEFAULTS = {"send_days": 1, "click_days": 5, "track_clicks": True}
BATCH = 500


@dataclass
class Figures:
    sent: int = 0
    failed: int = 0
    bounced: int = 0
    unsubscribed: int = 0
    clicked: int = 0
    orders: int = 0
    revenue: Decimal = Decimal("0")

    def as_json(self) -> dict[str, Any]:
        values = asdict(self)
        values["revenue"] = f"{self.revenue:.2f}"
        return values


def windows() -> dict[str, Any]:
    row = db.session.get(Setting, SETTING_KEY)
    return {**DEFAULTS, **(row.value if row is not None and isinstance(row.value, dict) else {})}


def save_windows(form: dict[str, Any], actor_id: int | None) -> dict[str, Any]:
    """Store the attribution windows and the click-tracking switch; a ValidationError names each bad field."""
    from crm.services.shared.errors import ValidationError
    from crm.services.trust import audit

    errors: dict[str, str] = {}
    values: dict[str, Any] = {"track_clicks": str(form.get("track_clicks") or "") in ("on", "y", "1", "true")}
    for name in ("send_days", "click_days"):
        try:
            values[name] = int(str(form.get(name) or "").strip())
            if not 0 <= values[name] <= 90:
                raise ValueError
        except ValueError:
            errors[name] = "Give a number of days from 0 to 90."
    if errors:
        raise ValidationError(fields=errors)
    before = windows()
    row = db.session.get(Setting, SETTING_KEY)
    if row is None:
        db.session.add(Setting(key=SETTING_KEY, value=values))
    else:
        row.value = values
    db.session.flush()
    audit.record("update", "setting", None, user_id=actor_id, before={SETTING_KEY: before}, after={SETTING_KEY: values})
    return values


def _attributed(messages: list[EmailMessage]) -> dict[int, list[Order]]:
    """message id -> the paid orders attributed to it (each order to the latest touch before it)."""
    values = windows()
    send_window, click_window = timedelta(days=int(values["send_days"])), timedelta(days=int(values["click_days"]))
    contact_ids = sorted({m.contact_id for m in messages if m.contact_id})
    if not contact_ids:
        return {}
    start = min(m.finished_at for m in messages)
    touches: dict[int, list[tuple[datetime, timedelta, int]]] = defaultdict(list)
    orders: list[Order] = []
    for i in range(0, len(contact_ids), BATCH):
        chunk = contact_ids[i:i + BATCH]
        for contact_id, finished_at, message_id in db.session.execute(
                select(EmailMessage.contact_id, EmailMessage.finished_at, EmailMessage.id).where(
                    EmailMessage.contact_id.in_(chunk), EmailMessage.marketing.is_(True), EmailMessage.status == "sent",
                    EmailMessage.finished_at >= start - max(send_window, click_window))):
            touches[contact_id].append((finished_at, send_window, message_id))
        for contact_id, clicked_at, message_id in db.session.execute(
                select(EmailMessage.contact_id, EmailClick.clicked_at, EmailClick.message_id)
                .join(EmailMessage, EmailMessage.id == EmailClick.message_id)
                .where(EmailMessage.contact_id.in_(chunk), EmailClick.clicked_at >= start)):
            touches[contact_id].append((clicked_at, click_window, message_id))
        orders += db.session.scalars(select(Order).where(Order.contact_id.in_(chunk), Order.status.in_(PAID_STATUSES),
                                                         Order.placed_at >= start))
    result: dict[int, list[Order]] = defaultdict(list)
    for order in orders:
        before = [(at, mid) for at, window, mid in touches.get(order.contact_id, []) if at <= order.placed_at <= at + window]
        if before:
            result[max(before)[1]].append(order)
    return result


def of_messages(messages: list[EmailMessage]) -> Figures:
    figures = Figures()
    done = [m for m in messages if m.status == "sent" and m.finished_at is not None]
    figures.sent = len(done)
    figures.failed = sum(1 for m in messages if m.status == "failed")
    figures.bounced = sum(1 for m in messages if m.bounce == "hard" or m.reason == "bounced")
    ids = [m.id for m in messages]
    for i in range(0, len(ids), BATCH):
        figures.unsubscribed += len(set(db.session.scalars(select(ConsentEvent.contact_id).where(
            ConsentEvent.message_id.in_(ids[i:i + BATCH]), ConsentEvent.consent.is_(False)))))
        figures.clicked += len(set(db.session.scalars(select(EmailClick.message_id).where(
            EmailClick.message_id.in_(ids[i:i + BATCH])))))
    counted = {m.id for m in done}
    for message_id, orders in _attributed(done).items():
        if message_id in counted:
            figures.orders += len(orders)
            figures.revenue += sum((o.total or Decimal("0") for o in orders), Decimal("0"))
    return figures


def campaign(campaign_id: int) -> Figures:
    return of_messages(list(db.session.scalars(select(EmailMessage).join(
        CampaignRecipient, CampaignRecipient.message_id == EmailMessage.id).where(CampaignRecipient.campaign_id == campaign_id))))


def flow(rule: str, since: datetime | None = None, until: datetime | None = None) -> Figures:
    query = select(EmailMessage).join(FlowSend, FlowSend.message_id == EmailMessage.id).where(FlowSend.flow == rule)
    if since is not None:
        query = query.where(FlowSend.sent_at >= since)
    if until is not None:
        query = query.where(FlowSend.sent_at < until)
    return of_messages(list(db.session.scalars(query)))


def template(key: str) -> Figures:
    return of_messages(list(db.session.scalars(select(EmailMessage).where(EmailMessage.template_key == key,
                                                                          EmailMessage.marketing.is_(True)))))


def flow_weeks(rule: str, today: date, weeks: int = 8) -> list[tuple[date, Figures]]:
    """The flow's figures per week (Monday to Sunday, UTC), newest first."""
    from datetime import UTC

    monday = today - timedelta(days=today.weekday())
    rows = []
    for n in range(weeks):
        start = datetime.combine(monday - timedelta(weeks=n), datetime.min.time(), tzinfo=UTC)
        rows.append((start.date(), flow(rule, start, start + timedelta(weeks=1))))
    return rows
