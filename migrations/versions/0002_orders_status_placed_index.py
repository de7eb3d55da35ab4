"""Orders: index (status, placed_at) in place of (status)

Paid orders in a time window (the dashboard's revenue figures) are found with a few index
seeks instead of walking every paid order; a filter on status alone uses the same index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 22:40:00

"""
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_status_placed', ['status', 'placed_at'], unique=False)
        batch_op.drop_index(batch_op.f('ix_orders_status'))


def downgrade():
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_orders_status'), ['status'], unique=False)
        batch_op.drop_index('ix_orders_status_placed')
