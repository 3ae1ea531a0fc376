"""regressions: significant metric drops between a baseline run and a candidate run

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

def upgrade() -> None:
    op.create_table('regressions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('candidate_run_id', sa.Integer(), nullable=False),
    sa.Column('baseline_run_id', sa.Integer(), nullable=False),
    sa.Column('baseline_kind', sa.String(length=32), nullable=False),
    sa.Column('metric', sa.String(length=128), nullable=False),
    sa.Column('slice', sa.String(length=256), nullable=False),
    sa.Column('delta', sa.Float(), nullable=False),
    sa.Column('ci_low', sa.Float(), nullable=False),
    sa.Column('ci_high', sa.Float(), nullable=False),
    sa.Column('p_value', sa.Float(), nullable=False),
    sa.Column('method', sa.String(length=64), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('baseline_value', sa.Float(), nullable=False),
    sa.Column('candidate_value', sa.Float(), nullable=False),
    sa.Column('n_shared', sa.Integer(), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=False),
    sa.Column('alpha', sa.Float(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('ack_note', sa.Text(), nullable=True),
    sa.Column('ack_by', sa.String(length=256), nullable=True),
    sa.Column('acked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("baseline_kind IN ('dataset_version', 'parent_checkpoint', 'champion', 'protocol_version')", name=op.f('ck_regressions_baseline_kind')),
    sa.CheckConstraint("severity IN ('minor', 'major')", name=op.f('ck_regressions_severity')),
    sa.CheckConstraint("status IN ('open', 'acknowledged')", name=op.f('ck_regressions_status')),
    sa.ForeignKeyConstraint(['baseline_run_id'], ['evaluation_runs.id'], name=op.f('fk_regressions_baseline_run_id_evaluation_runs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['candidate_run_id'], ['evaluation_runs.id'], name=op.f('fk_regressions_candidate_run_id_evaluation_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_regressions')),
    sa.UniqueConstraint('candidate_run_id', 'baseline_run_id', 'metric', 'slice', name=op.f('uq_regressions_candidate_run_id_baseline_run_id_metric_slice'))
    )
    with op.batch_alter_table('regressions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_regressions_baseline_run_id'), ['baseline_run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_regressions_candidate_run_id'), ['candidate_run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_regressions_status'), ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('regressions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_regressions_status'))
        batch_op.drop_index(batch_op.f('ix_regressions_candidate_run_id'))
        batch_op.drop_index(batch_op.f('ix_regressions_baseline_run_id'))

    op.drop_table('regressions')
