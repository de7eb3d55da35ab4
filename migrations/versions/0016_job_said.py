"""Job runs: the result's and the error's message keys and values beside the English

The jobs page shows them in the reader's language.

Revision ID: 0003_job_said
Revises: 0003_segment_products
Create Date: 2026-12-06 03:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0003_job_said'
down_revision = '0003_segment_products'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('said', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.drop_column('said')
