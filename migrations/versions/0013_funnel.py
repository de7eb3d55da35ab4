"""Summary tables for the dashboard's journey funnel: who entered each stage in which month and moved on, who stands in it

Revision ID: 0003_funnel
Revises: 0003_summaries
Create Date: 2026-12-06 02:10:00

Also an index on stage_changes.changed_at (whether any change is dated after the dashboard's
as-of is then one seek). Filled from the contacts and their stage changes when the dashboard's
summaries are kept (a summary_state "orders" row: `crm rebuild-summaries` or the nightly refresh
ran), in their zone; otherwise left empty, and the first rebuild fills them with the rest.
"""
from collections import defaultdict
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = '0003_funnel'
down_revision = '0003_summaries'
branch_labels = None
depends_on = None

# Frozen here: the stages in journey order as this migration knows them.
STAGE_RANK = {stage: rank for rank, stage in enumerate(("awareness", "consideration", "conversion", "retention",
                                                        "advocacy"))}
BATCH = 5000

contacts = sa.table("contacts", sa.column("id", sa.Integer), sa.column("stage", sa.String),
                    sa.column("stage_since", sa.DateTime(timezone=True)),
                    sa.column("created_at", sa.DateTime(timezone=True)))
stage_changes = sa.table("stage_changes", sa.column("contact_id", sa.Integer), sa.column("from_stage", sa.String),
                         sa.column("to_stage", sa.String), sa.column("changed_at", sa.DateTime(timezone=True)))
summary_state = sa.table("summary_state", sa.column("name", sa.String), sa.column("zone", sa.String),
                         sa.column("cents", sa.BigInteger), sa.column("updated_at", sa.DateTime(timezone=True)))
contact_stages = sa.table("summary_contact_stages", sa.column("contact_id", sa.Integer), sa.column("stage", sa.String),
                          sa.column("entered", sa.Integer), sa.column("moved_on", sa.Integer),
                          sa.column("standing", sa.Boolean))
stage_months = sa.table("summary_stage_months", sa.column("stage", sa.String), sa.column("month", sa.Integer),
                        sa.column("entered", sa.Integer), sa.column("moved_on", sa.Integer),
                        sa.column("standing", sa.Integer))


def _utc(moment):
    if moment is None:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _month(moment, zone):
    local = moment.astimezone(zone)
    return local.year * 12 + local.month - 1


def fill(connection) -> int:
    """Fill the journey summaries from the contacts and their stage changes, in the zone of the
    kept summaries; return the contact-stage rows written (0 when the summaries are not kept)."""
    zone_name = connection.execute(sa.select(summary_state.c.zone).where(summary_state.c.name == "orders")).scalar()
    if zone_name is None:
        return 0
    zone = ZoneInfo(zone_name)
    changes = defaultdict(list)
    for contact_id, from_stage, to_stage, at in connection.execute(sa.select(
            stage_changes.c.contact_id, stage_changes.c.from_stage, stage_changes.c.to_stage,
            stage_changes.c.changed_at)):
        changes[contact_id].append((from_stage, to_stage, _utc(at)))
    rows = []
    for contact_id, stage, stage_since, created_at in connection.execute(sa.select(
            contacts.c.id, contacts.c.stage, contacts.c.stage_since, contacts.c.created_at)):
        history = changes.get(contact_id, [])
        first = {}
        entries = [(to_stage, at) for _f, to_stage, at in history] + \
            [(from_stage, at) for from_stage, _t, at in history] + [(stage, _utc(stage_since) or _utc(created_at))]
        for entered, at in entries:
            if entered is not None and at is not None and (entered not in first or at < first[entered]):
                first[entered] = at
        for entered, at in first.items():
            rank = STAGE_RANK.get(entered)
            further = [when for _f, to_stage, when in history
                       if rank is not None and STAGE_RANK.get(to_stage, -1) > rank and when >= at]
            rows.append({"contact_id": contact_id, "stage": entered, "entered": _month(at, zone),
                         "moved_on": _month(min(further), zone) if further else None, "standing": entered == stage})
    cells = defaultdict(lambda: [0, 0, 0])
    for row in rows:
        cell = cells[(row["stage"], row["entered"])]
        cell[0] += 1
        cell[1] += row["moved_on"] is not None
        cell[2] += row["standing"]
    connection.execute(sa.delete(contact_stages))
    connection.execute(sa.delete(stage_months))
    for start in range(0, len(rows), BATCH):
        connection.execute(sa.insert(contact_stages), rows[start:start + BATCH])
    if cells:
        connection.execute(sa.insert(stage_months), [
            {"stage": stage, "month": month, "entered": entered, "moved_on": moved, "standing": standing}
            for (stage, month), (entered, moved, standing) in sorted(cells.items())])
    connection.execute(sa.delete(summary_state).where(summary_state.c.name == "journey"))
    connection.execute(sa.insert(summary_state).values(name="journey", zone=zone_name, cents=None,
                                                       updated_at=datetime.now(timezone.utc)))
    return len(rows)


def upgrade():
    op.create_table('summary_contact_stages',
    sa.Column('contact_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('entered', sa.Integer(), nullable=False),
    sa.Column('moved_on', sa.Integer(), nullable=True),
    sa.Column('standing', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('contact_id', 'stage', name=op.f('pk_summary_contact_stages'))
    )
    op.create_table('summary_stage_months',
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('month', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('entered', sa.Integer(), nullable=False),
    sa.Column('moved_on', sa.Integer(), nullable=False),
    sa.Column('standing', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('stage', 'month', name=op.f('pk_summary_stage_months'))
    )
    with op.batch_alter_table('stage_changes', schema=None) as batch_op:
        batch_op.create_index('ix_stage_changes_changed_at', ['changed_at'], unique=False)
    fill(op.get_bind())


def downgrade():
    with op.batch_alter_table('stage_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_stage_changes_changed_at')
    op.execute(sa.delete(summary_state).where(summary_state.c.name == "journey"))
    op.drop_table('summary_stage_months')
    op.drop_table('summary_contact_stages')
