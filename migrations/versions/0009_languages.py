"""Languages: each user's chosen language and each contact's language (NULL: follow the browser / the shop)

Revision ID: 0003_languages
Revises: 0003_flows
Create Date: 2026-12-05 21:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0003_languages'
down_revision = '0003_flows'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=10), nullable=True))
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=10), nullable=True))


def downgrade():
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_column('language')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('language')
