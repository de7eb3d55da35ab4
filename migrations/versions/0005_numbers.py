"""Shopify `authorized` orders count as paid: re-derive stored statuses and contact figures

An `authorized` Shopify payment (card reserved, charged at fulfilment) used to be stored as
`pending`, so such customers showed 0 orders and nothing spent. The readers now store it as
`paid` (`fulfilled` once fulfilled). This migration fixes orders already stored from Shopify
webhooks, whose payloads are kept: an order still `pending` whose newest processed delivery
says `authorized` (and not cancelled) becomes `paid` or `fulfilled`, and its contact's order
count, total spent and first/last order are recomputed. Orders imported from a file keep no
raw row: import the file again to re-derive them (imports update orders in place).
`crm refresh` afterwards re-derives stages, health and scores from the corrected orders.

Revision ID: 0003_numbers
Revises: 0002
Create Date: 2026-12-05 18:30:00

"""
import json

import sqlalchemy as sa
from alembic import op


revision = '0003_numbers'
down_revision = '0003_segments'
branch_labels = None
depends_on = None

PAID = ('paid', 'fulfilled', 'partially_refunded')


def _authorized_orders(connection):
    """Return {shopify order id: new status} for orders whose newest processed delivery is authorized."""
    rows = connection.execute(sa.text(
        "SELECT payload FROM webhook_deliveries WHERE source = 'shopify' AND status = 'processed' "
        "AND topic LIKE 'orders/%' AND payload IS NOT NULL ORDER BY received_at, id"))
    newest = {}
    for (payload,) in rows:
        try:
            body = json.loads(payload)
        except ValueError:
            continue
        if not isinstance(body, dict) or body.get('id') is None:
            continue
        financial = str(body.get('financial_status') or '').strip().lower().replace('-', '_')
        fulfilled = str(body.get('fulfillment_status') or '').strip().lower() == 'fulfilled'
        newest[str(body['id'])] = (financial, fulfilled, bool(body.get('cancelled_at')))
    return {order_id: ('fulfilled' if fulfilled else 'paid')
            for order_id, (financial, fulfilled, cancelled) in newest.items()
            if financial == 'authorized' and not cancelled}


def rederive(connection):
    """Set the statuses and recompute the contacts' figures; return how many contacts changed."""
    changes = _authorized_orders(connection)
    contact_ids = set()
    find = sa.text("SELECT id, contact_id FROM orders WHERE source = 'shopify' AND external_id = :external_id "
                   "AND status = 'pending'")
    for external_id, status in changes.items():
        for order_id, contact_id in connection.execute(find, {'external_id': external_id}).all():
            connection.execute(sa.text("UPDATE orders SET status = :status WHERE id = :id"),
                               {'status': status, 'id': order_id})
            contact_ids.add(contact_id)
    paid = "o.contact_id = contacts.id AND o.status IN ('paid', 'fulfilled', 'partially_refunded')"
    refresh = sa.text(
        "UPDATE contacts SET "
        f"order_count = (SELECT COUNT(o.id) FROM orders o WHERE {paid}), "
        f"total_spent = COALESCE((SELECT ROUND(SUM(o.total - o.refunded), 2) FROM orders o WHERE {paid}), 0), "
        f"first_order_at = (SELECT MIN(o.placed_at) FROM orders o WHERE {paid}), "
        f"last_order_at = (SELECT MAX(o.placed_at) FROM orders o WHERE {paid}) "
        "WHERE id = :id")
    for contact_id in sorted(contact_ids):
        connection.execute(refresh, {'id': contact_id})
    return len(contact_ids)


def upgrade():
    rederive(op.get_bind())


def downgrade():
    # Which `paid` orders were once `pending` is not kept; an authorized payment stays paid.
    pass
