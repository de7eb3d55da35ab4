"""Covering indexes for the segments' event conditions, each replacing the narrower one it extends

orders (contact_id, placed_at, status) in place of (contact_id, placed_at); order_lines
(order_id, sku, name) in place of (order_id); interactions (contact_id, occurred_at, kind) in
place of (contact_id, occurred_at). A segment's "ordered", "ordered a product" and
"interaction" conditions then read only these indexes, never the tables (issue 17: a segment
over a million orders did a random table read per order and line). Every query the old indexes
served is served by the new ones (the same leading columns).

Revision ID: 0003_segment_indexes
Revises: 0003_funnel
Create Date: 2026-12-06 02:10:00

"""
from alembic import op


revision = '0003_segment_indexes'
down_revision = '0003_funnel'
branch_labels = None
depends_on = None

# (table, new index, its columns, the index it replaces and that one's columns)
INDEXES = (
    ('orders', 'ix_orders_contact_placed_status', ['contact_id', 'placed_at', 'status'],
     'ix_orders_contact_placed', ['contact_id', 'placed_at']),
    ('order_lines', 'ix_order_lines_order_sku_name', ['order_id', 'sku', 'name'],
     'ix_order_lines_order_id', ['order_id']),
    ('interactions', 'ix_interactions_contact_occurred_kind', ['contact_id', 'occurred_at', 'kind'],
     'ix_interactions_contact_occurred', ['contact_id', 'occurred_at']),
)


def upgrade():
    # The new index first, so the foreign keys and the timeline are never without one.
    for table, name, columns, old, _old_columns in INDEXES:
        op.create_index(name, table, columns, unique=False)
        op.drop_index(old, table_name=table)
    _statistics([name for _table, name, *_rest in INDEXES])


def downgrade():
    for table, name, _columns, old, old_columns in reversed(INDEXES):
        op.create_index(old, table, old_columns, unique=False)
        op.drop_index(name, table_name=table)
    _statistics([old for *_rest, old, _old_columns in INDEXES])


def _statistics(names):
    """On a SQLite database that keeps planner statistics (`crm refresh` and big imports run
    ANALYZE), give the new indexes theirs at once: beside indexes that have statistics, one
    without is judged by guesses. A second or so for a million orders. PostgreSQL keeps its
    statistics per column, which new indexes on plain columns do not change."""
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        return
    if bind.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first() is None:
        return
    for name in names:
        bind.exec_driver_sql(f'ANALYZE "{name}"')
