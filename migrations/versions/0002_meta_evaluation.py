"""meta-evaluation: autoraters, checkpoints, protocols, evaluators, runs, metrics, judgment cache

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('autoraters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_autoraters')),
    sa.UniqueConstraint('name', name=op.f('uq_autoraters_name'))
    )
    op.create_table('judgments',
    sa.Column('evaluator_sha256', sa.String(length=64), nullable=False),
    sa.Column('example_hash', sa.String(length=32), nullable=False),
    sa.Column('order', sa.Integer(), nullable=False),
    sa.Column('sample', sa.Integer(), nullable=False),
    sa.Column('verdict', sa.String(length=256), nullable=True),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('prob_a', sa.Float(), nullable=True),
    sa.Column('parsed', sa.Boolean(), nullable=False),
    sa.Column('raw', sa.Text(), nullable=True),
    sa.Column('prompt_tokens', sa.Integer(), nullable=False),
    sa.Column('completion_tokens', sa.Integer(), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('evaluator_sha256', 'example_hash', 'order', 'sample', name=op.f('pk_judgments'))
    )
    op.create_table('protocols',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_protocols')),
    sa.UniqueConstraint('name', 'version', name=op.f('uq_protocols_name_version')),
    sa.UniqueConstraint('sha256', name=op.f('uq_protocols_sha256'))
    )
    op.create_table('checkpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('autorater_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('uri', sa.String(length=1024), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('format', sa.String(length=64), nullable=False),
    sa.Column('model_card', sa.String(length=1024), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('lineage', sa.JSON(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['autorater_id'], ['autoraters.id'], name=op.f('fk_checkpoints_autorater_id_autoraters'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['parent_id'], ['checkpoints.id'], name=op.f('fk_checkpoints_parent_id_checkpoints'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkpoints')),
    sa.UniqueConstraint('autorater_id', 'sha256', name=op.f('uq_checkpoints_autorater_id_sha256')),
    sa.UniqueConstraint('autorater_id', 'version', name=op.f('uq_checkpoints_autorater_id_version'))
    )
    with op.batch_alter_table('checkpoints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkpoints_autorater_id'), ['autorater_id'], unique=False)

    op.create_table('checkpoint_aliases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('autorater_id', sa.Integer(), nullable=False),
    sa.Column('alias', sa.String(length=64), nullable=False),
    sa.Column('checkpoint_id', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['autorater_id'], ['autoraters.id'], name=op.f('fk_checkpoint_aliases_autorater_id_autoraters'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['checkpoint_id'], ['checkpoints.id'], name=op.f('fk_checkpoint_aliases_checkpoint_id_checkpoints'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkpoint_aliases')),
    sa.UniqueConstraint('autorater_id', 'alias', name=op.f('uq_checkpoint_aliases_autorater_id_alias'))
    )
    with op.batch_alter_table('checkpoint_aliases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkpoint_aliases_checkpoint_id'), ['checkpoint_id'], unique=False)

    op.create_table('evaluators',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('checkpoint_id', sa.Integer(), nullable=True),
    sa.Column('protocol_id', sa.Integer(), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('price_per_1k_tokens', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['checkpoint_id'], ['checkpoints.id'], name=op.f('fk_evaluators_checkpoint_id_checkpoints'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['protocol_id'], ['protocols.id'], name=op.f('fk_evaluators_protocol_id_protocols'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluators')),
    sa.UniqueConstraint('name', name=op.f('uq_evaluators_name')),
    sa.UniqueConstraint('sha256', name=op.f('uq_evaluators_sha256'))
    )
    with op.batch_alter_table('evaluators', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evaluators_checkpoint_id'), ['checkpoint_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_evaluators_protocol_id'), ['protocol_id'], unique=False)

    op.create_table('evaluation_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('evaluator_id', sa.Integer(), nullable=False),
    sa.Column('dataset_version_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('seconds', sa.Float(), nullable=True),
    sa.Column('n_examples', sa.Integer(), nullable=False),
    sa.Column('n_judgments', sa.Integer(), nullable=False),
    sa.Column('n_executed', sa.Integer(), nullable=False),
    sa.Column('n_cached', sa.Integer(), nullable=False),
    sa.Column('prompt_tokens', sa.Integer(), nullable=False),
    sa.Column('completion_tokens', sa.Integer(), nullable=False),
    sa.Column('cost_usd', sa.Float(), nullable=True),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('predictions_uri', sa.String(length=1024), nullable=True),
    sa.Column('predictions_sha256', sa.String(length=64), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('provenance', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['dataset_version_id'], ['dataset_versions.id'], name=op.f('fk_evaluation_runs_dataset_version_id_dataset_versions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['evaluator_id'], ['evaluators.id'], name=op.f('fk_evaluation_runs_evaluator_id_evaluators'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluation_runs'))
    )
    with op.batch_alter_table('evaluation_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evaluation_runs_dataset_version_id'), ['dataset_version_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_evaluation_runs_evaluator_id'), ['evaluator_id'], unique=False)

    op.create_table('metrics',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('slice', sa.String(length=256), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('ci_low', sa.Float(), nullable=True),
    sa.Column('ci_high', sa.Float(), nullable=True),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['evaluation_runs.id'], name=op.f('fk_metrics_run_id_evaluation_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metrics')),
    sa.UniqueConstraint('run_id', 'name', 'slice', name=op.f('uq_metrics_run_id_name_slice'))
    )
    with op.batch_alter_table('metrics', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_metrics_run_id'), ['run_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('metrics', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_metrics_run_id'))

    op.drop_table('metrics')
    with op.batch_alter_table('evaluation_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evaluation_runs_evaluator_id'))
        batch_op.drop_index(batch_op.f('ix_evaluation_runs_dataset_version_id'))

    op.drop_table('evaluation_runs')
    with op.batch_alter_table('evaluators', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evaluators_protocol_id'))
        batch_op.drop_index(batch_op.f('ix_evaluators_checkpoint_id'))

    op.drop_table('evaluators')
    with op.batch_alter_table('checkpoint_aliases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_checkpoint_aliases_checkpoint_id'))

    op.drop_table('checkpoint_aliases')
    with op.batch_alter_table('checkpoints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_checkpoints_autorater_id'))

    op.drop_table('checkpoints')
    op.drop_table('protocols')
    op.drop_table('judgments')
    op.drop_table('autoraters')
