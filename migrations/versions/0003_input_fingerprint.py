"""dataset versions: input fingerprint

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('dataset_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('input_fingerprint', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_dataset_versions_input_fingerprint'), ['input_fingerprint'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('dataset_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dataset_versions_input_fingerprint'))
        batch_op.drop_column('input_fingerprint')

