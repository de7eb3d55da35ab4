"""Order lines carry their order's contact, date and status (issue 17)

The segments' "bought a product" count reads the product's lines by name and date and goes
straight to the contacts, without reading each order: order_lines gains `contact_id`,
`placed_at` and `status`, copies of its order's, and the index `order_lines (name, placed_at,
status, contact_id, order_id)` (order_id for "at least N orders", without reading the table);
the sku's index `order_lines (name, sku, order_id)` becomes `(name, sku, placed_at, status,
contact_id, order_id)`, so a sku condition is a seek on name, sku and date too.

The copies are kept by the database, whatever writes (the app's ORM and Core inserts, imports,
merges, status changes, the generator, a hand-written UPDATE):
- a line inserted, or its order_id or copies updated, takes its order's values;
- an order whose contact, date or status changes passes them on to its lines.
SQLite: AFTER triggers (a line's copies are set by an UPDATE right after its INSERT; recursive
triggers are off, so a trigger's own UPDATE does not fire it again). PostgreSQL: a BEFORE
INSERT OR UPDATE trigger sets the line's values from its order, read FOR SHARE (so an order's
concurrent UPDATE waits for the line's transaction and then reaches the line), and an AFTER
UPDATE trigger on orders updates the lines. The app never sets the columns (crm/models/order.py
maps them as read-only mirrors). A later batch migration that rebuilds order_lines or orders on
SQLite drops the triggers with the old table and must create them again (tests/test_schema.py
checks they exist).

Revision ID: 0003_line_mirror
Revises: 0003_page_indexes
Create Date: 2026-12-06 06:00:00

"""
import sqlalchemy as sa
from alembic import op


revision = '0003_line_mirror'
down_revision = '0003_page_indexes'
branch_labels = None
depends_on = None

INDEX = 'ix_order_lines_name_placed_status_contact'
INDEX_COLUMNS = ['name', 'placed_at', 'status', 'contact_id', 'order_id']
SKU_INDEX = 'ix_order_lines_name_sku_placed'
SKU_INDEX_COLUMNS = ['name', 'sku', 'placed_at', 'status', 'contact_id', 'order_id']
OLD_SKU_INDEX = 'ix_order_lines_name_sku_order'
OLD_SKU_INDEX_COLUMNS = ['name', 'sku', 'order_id']
SQLITE_TRIGGERS = ('order_lines_mirror_insert', 'order_lines_mirror_update', 'orders_lines_mirror_update')
MIRRORED = ('contact_id', 'placed_at', 'status')


def upgrade():
    bind = op.get_bind()
    dialect = bind.dialect.name
    # Plain columns (no foreign key): copies of the order's, which has the key and the cascade.
    op.add_column('order_lines', sa.Column('contact_id', sa.Integer(), nullable=True))
    op.add_column('order_lines', sa.Column('placed_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('order_lines', sa.Column('status', sa.String(length=20), nullable=True))
    # Set-based backfill (1.58 M lines in seconds), before the index and the triggers.
    op.execute("""UPDATE order_lines SET contact_id = orders.contact_id, placed_at = orders.placed_at,
                  status = orders.status FROM orders WHERE orders.id = order_lines.order_id""")
    if dialect == 'sqlite':
        op.execute("""CREATE TRIGGER order_lines_mirror_insert AFTER INSERT ON order_lines BEGIN
            UPDATE order_lines SET (contact_id, placed_at, status) =
                (SELECT contact_id, placed_at, status FROM orders WHERE orders.id = new.order_id)
            WHERE id = new.id;
        END""")
        op.execute("""CREATE TRIGGER order_lines_mirror_update AFTER UPDATE OF order_id, contact_id, placed_at, status
            ON order_lines
            WHEN NOT EXISTS (SELECT 1 FROM orders WHERE orders.id = new.order_id
                             AND orders.contact_id IS new.contact_id AND orders.placed_at IS new.placed_at
                             AND orders.status IS new.status) BEGIN
            UPDATE order_lines SET (contact_id, placed_at, status) =
                (SELECT contact_id, placed_at, status FROM orders WHERE orders.id = new.order_id)
            WHERE id = new.id;
        END""")
        op.execute("""CREATE TRIGGER orders_lines_mirror_update AFTER UPDATE OF contact_id, placed_at, status
            ON orders
            WHEN new.contact_id IS NOT old.contact_id
                 OR new.placed_at IS NOT old.placed_at OR new.status IS NOT old.status BEGIN
            UPDATE order_lines SET contact_id = new.contact_id, placed_at = new.placed_at, status = new.status
            WHERE order_id = new.id;
        END""")
    elif dialect == 'postgresql':
        op.execute("""CREATE FUNCTION order_lines_mirror() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            SELECT orders.contact_id, orders.placed_at, orders.status
              INTO new.contact_id, new.placed_at, new.status
              FROM orders WHERE orders.id = new.order_id FOR SHARE;
            RETURN new;
        END $$""")
        op.execute("""CREATE TRIGGER order_lines_mirror BEFORE INSERT OR UPDATE OF order_id, contact_id, placed_at, status
            ON order_lines FOR EACH ROW EXECUTE FUNCTION order_lines_mirror()""")
        op.execute("""CREATE FUNCTION orders_lines_mirror() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE order_lines SET contact_id = new.contact_id, placed_at = new.placed_at, status = new.status
             WHERE order_id = new.id;
            RETURN NULL;
        END $$""")
        op.execute("""CREATE TRIGGER orders_lines_mirror AFTER UPDATE OF contact_id, placed_at, status
            ON orders FOR EACH ROW
            WHEN (new.contact_id IS DISTINCT FROM old.contact_id
                  OR new.placed_at IS DISTINCT FROM old.placed_at OR new.status IS DISTINCT FROM old.status)
            EXECUTE FUNCTION orders_lines_mirror()""")
    op.create_index(INDEX, 'order_lines', INDEX_COLUMNS, unique=False)
    op.drop_index(OLD_SKU_INDEX, table_name='order_lines')
    op.create_index(SKU_INDEX, 'order_lines', SKU_INDEX_COLUMNS, unique=False)
    # As 0014_segment_indexes: on a SQLite database that keeps planner statistics, give the new
    # indexes theirs at once (beside indexes with statistics, one without is judged by guesses).
    if dialect == 'sqlite' and bind.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first() is not None:
        for name in (INDEX, SKU_INDEX):
            bind.exec_driver_sql(f'ANALYZE "{name}"')


def downgrade():
    dialect = op.get_bind().dialect.name
    op.drop_index(INDEX, table_name='order_lines')
    op.drop_index(SKU_INDEX, table_name='order_lines')
    op.create_index(OLD_SKU_INDEX, 'order_lines', OLD_SKU_INDEX_COLUMNS, unique=False)
    if dialect == 'sqlite':
        for trigger in SQLITE_TRIGGERS:
            op.execute(f'DROP TRIGGER IF EXISTS {trigger}')
    elif dialect == 'postgresql':
        op.execute('DROP TRIGGER IF EXISTS orders_lines_mirror ON orders')
        op.execute('DROP TRIGGER IF EXISTS order_lines_mirror ON order_lines')
        op.execute('DROP FUNCTION IF EXISTS orders_lines_mirror()')
        op.execute('DROP FUNCTION IF EXISTS order_lines_mirror()')
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        for column in reversed(MIRRORED):
            batch_op.drop_column(column)
