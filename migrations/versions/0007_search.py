"""Contact search through an index; the "last order" sort's index on PostgreSQL

SQLite: an FTS5 table with the trigram tokenizer over first name, last name, email, company and
the phone's digits, filled from the contacts and kept current by triggers on contacts (so every
writer keeps it in step). PostgreSQL: pg_trgm GIN indexes on the same columns (ILIKE uses them),
and an index in the contact list's "last order" order (last_order_at DESC NULLS LAST, id DESC),
which the plain last_order_at index cannot give PostgreSQL because of where it puts NULLs.
Both: contact_external_ids.external_id indexed on its own (the search also matches a shop's
customer id exactly, and read every external id to do so).

The names live in crm/models/search_index.py, which also keeps them out of the models-vs-schema
comparison. A later batch migration that rebuilds the contacts table on SQLite drops the
triggers with the old table and must create them again (tests/test_schema.py checks they exist).

Revision ID: 0003_search
Revises: 0003_email
Create Date: 2026-12-05 18:45:00

"""
from alembic import op


revision = '0003_search'
down_revision = '0003_email'
branch_labels = None
depends_on = None

FTS_TABLE = 'contact_search'
COLUMNS = ('first_name', 'last_name', 'email', 'company', 'phone')
TRGM_COLUMNS = COLUMNS


def _digits(expression):
    sql = f"coalesce({expression}, '')"
    for separator in ('+', ' ', '-', '(', ')', '.', '/'):
        sql = f"replace({sql}, '{separator}', '')"
    return sql


def _values(row):
    return ', '.join([f'{row}.id'] + [f'{row}.{column}' for column in COLUMNS[:-1]] + [_digits(f'{row}.phone')])


def upgrade():
    # Both databases: the search box finds a contact by a shop's customer id, whatever its source.
    with op.batch_alter_table('contact_external_ids', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contact_external_ids_external_id'), ['external_id'], unique=False)
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        columns = ', '.join(COLUMNS)
        op.execute(f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5({columns}, tokenize = 'trigram')")
        op.execute(f"INSERT INTO {FTS_TABLE} (rowid, {columns}) SELECT {_values('contacts')} FROM contacts")
        op.execute(f"""CREATE TRIGGER contacts_search_insert AFTER INSERT ON contacts BEGIN
            INSERT INTO {FTS_TABLE} (rowid, {columns}) VALUES ({_values('new')});
        END""")
        op.execute(f"""CREATE TRIGGER contacts_search_delete AFTER DELETE ON contacts BEGIN
            DELETE FROM {FTS_TABLE} WHERE rowid = old.id;
        END""")
        op.execute(f"""CREATE TRIGGER contacts_search_update AFTER UPDATE OF id, {columns} ON contacts BEGIN
            DELETE FROM {FTS_TABLE} WHERE rowid = old.id;
            INSERT INTO {FTS_TABLE} (rowid, {columns}) VALUES ({_values('new')});
        END""")
    elif dialect == 'postgresql':
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
        for column in TRGM_COLUMNS:
            op.execute(f'CREATE INDEX ix_contacts_{column}_trgm ON contacts USING gin ({column} gin_trgm_ops)')
        op.execute('CREATE INDEX ix_contacts_last_order_sort ON contacts (last_order_at DESC NULLS LAST, id DESC)')


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        for trigger in ('contacts_search_insert', 'contacts_search_delete', 'contacts_search_update'):
            op.execute(f'DROP TRIGGER IF EXISTS {trigger}')
        op.execute(f'DROP TABLE IF EXISTS {FTS_TABLE}')
    elif dialect == 'postgresql':
        op.execute('DROP INDEX IF EXISTS ix_contacts_last_order_sort')
        for column in TRGM_COLUMNS:
            op.execute(f'DROP INDEX IF EXISTS ix_contacts_{column}_trgm')
    with op.batch_alter_table('contact_external_ids', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contact_external_ids_external_id'))
