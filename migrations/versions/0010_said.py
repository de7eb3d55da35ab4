"""The rules' words as message keys and values beside the English: stage reasons, stage changes, to-dos

Revision ID: 0003_said
Revises: 0003_languages
Create Date: 2026-12-05 22:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0003_said'
down_revision = '0003_languages'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stage_reason_said', sa.JSON(), nullable=True))
    with op.batch_alter_table('stage_changes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason_said', sa.JSON(), nullable=True))
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('said', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('close_reason_said', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('close_reason_said')
        batch_op.drop_column('said')
    with op.batch_alter_table('stage_changes', schema=None) as batch_op:
        batch_op.drop_column('reason_said')
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_column('stage_reason_said')
