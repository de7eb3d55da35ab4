"""Summary tables for the dashboard: revenue and cohorts per month, the spend median

Revision ID: 0003_summaries
Revises: 0003_template_languages
Create Date: 2026-12-05 21:50:00

Empty at first: `crm rebuild-summaries` (or the nightly refresh) fills them; until then the
dashboard computes its figures from the orders as before.
"""
from alembic import op
import sqlalchemy as sa


revision = '0003_summaries'
down_revision = '0003_template_languages'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('summary_state',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('zone', sa.String(length=64), nullable=False),
    sa.Column('cents', sa.BigInteger(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_summary_state'))
    )
    op.create_table('summary_contact_months',
    sa.Column('contact_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('month', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('cohort', sa.Integer(), nullable=False),
    sa.Column('cents', sa.BigInteger(), nullable=False),
    sa.Column('orders', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('contact_id', 'month', name=op.f('pk_summary_contact_months'))
    )
    op.create_table('summary_cohort_months',
    sa.Column('cohort', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('month', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('cents', sa.BigInteger(), nullable=False),
    sa.Column('orders', sa.Integer(), nullable=False),
    sa.Column('customers', sa.Integer(), nullable=False),
    sa.Column('repeaters', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('cohort', 'month', name=op.f('pk_summary_cohort_months'))
    )
    with op.batch_alter_table('summary_cohort_months', schema=None) as batch_op:
        batch_op.create_index('ix_summary_cohort_months_month', ['month'], unique=False)


def downgrade():
    with op.batch_alter_table('summary_cohort_months', schema=None) as batch_op:
        batch_op.drop_index('ix_summary_cohort_months_month')
    op.drop_table('summary_cohort_months')
    op.drop_table('summary_contact_months')
    op.drop_table('summary_state')
