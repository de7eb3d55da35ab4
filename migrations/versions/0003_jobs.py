"""Background jobs: job_runs, and import runs that wait in the queue with their phase and total

Revision ID: 0003_jobs
Revises: 0002
Create Date: 2026-12-05 18:20:27.878633

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003_jobs'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('job_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('args_summary', sa.String(length=300), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=True),
    sa.Column('periodic', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('progress_done', sa.Integer(), nullable=True),
    sa.Column('progress_total', sa.Integer(), nullable=True),
    sa.Column('phase', sa.String(length=60), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('result', sa.String(length=300), nullable=True),
    sa.Column('worker', sa.String(length=200), nullable=True),
    sa.Column('locks', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_runs')),
    sa.UniqueConstraint('task_id', name=op.f('uq_job_runs_task_id'))
    )
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.create_index('ix_job_runs_name_enqueued', ['name', 'enqueued_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_job_runs_status'), ['status'], unique=False)

    with op.batch_alter_table('import_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('upload_path', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('options', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('phase', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('total', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('job_run_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_import_runs_job_run_id_job_runs'), 'job_runs', ['job_run_id'], ['id'], ondelete='SET NULL')



def downgrade():
    with op.batch_alter_table('import_runs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_import_runs_job_run_id_job_runs'), type_='foreignkey')
        batch_op.drop_column('job_run_id')
        batch_op.drop_column('total')
        batch_op.drop_column('phase')
        batch_op.drop_column('options')
        batch_op.drop_column('upload_path')

    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_runs_status'))
        batch_op.drop_index('ix_job_runs_name_enqueued')

    op.drop_table('job_runs')
