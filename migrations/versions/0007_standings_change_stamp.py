"""standings: a change stamp on every row

``standings.changed`` — the task type's standings generation when the row was last written. The
store sets it in the transaction that moves the generation on (the UPDATE of the task type's
``standing_generations`` row locks it until commit, so stamps are unique per task type and committed
in their order, on PostgreSQL as on SQLite): a task-type ranking cached at generation ``g`` is
brought up to date from the rows with ``changed > g`` alone (issue 12). A run id watermark would not
do: re-scoring a run rewrites its row under the same run id.

Data: every existing row gets its task type's current generation (so a ranking cached before this
revision reads them all once). An index on (dataset_version_id, changed): a recompute looks up each version's rows
changed since a generation. Downgrade drops the column and the index.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('standings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('changed', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_index('ix_standings_dataset_version_id_changed', ['dataset_version_id', 'changed'], unique=False)
    # the rows as they are: stamped with their task type's current generation
    op.execute(sa.text(
        "UPDATE standings SET changed = coalesce((SELECT g.generation FROM standing_generations g "
        "JOIN datasets d ON d.task_type = g.task_type JOIN dataset_versions v ON v.dataset_id = d.id "
        "WHERE v.id = standings.dataset_version_id), 0)"))


def downgrade() -> None:
    with op.batch_alter_table('standings', schema=None) as batch_op:
        batch_op.drop_index('ix_standings_dataset_version_id_changed')
        batch_op.drop_column('changed')
