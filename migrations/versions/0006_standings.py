"""standings: what `best` and `leaderboard` read, kept as runs land

New tables (written by the store in the transaction that finishes a run):

* ``standings`` — one row per (dataset version, evaluator): its latest succeeded run, the
  version's headline metric of that run (value, CI, n), the examples it aligned, its coverage and
  every whole-dataset metric value;
* ``run_examples`` — a run's per-example judgments aligned to the version's example order,
  encoded compactly (what a paired test needs without the predictions Parquet);
* ``standing_tests`` — cached paired tests against the best run of a version (dropped when a run
  on the version finishes);
* ``standing_generations`` / ``standing_rankings`` — a counter per task type and the task-type
  rankings cached under it.

Data: the ``standings`` rows of the runs that exist are computed here from their stored metrics
(the latest succeeded run of every evaluator on every version). ``run_examples`` need the
predictions Parquet: a query that needs one that is missing computes it once and stores it.
Downgrade drops the tables (nothing else changes).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# the tables as this revision knows them (never today's ORM classes)
runs = sa.table("evaluation_runs", sa.column("id", sa.Integer), sa.column("evaluator_id", sa.Integer),
                sa.column("dataset_version_id", sa.Integer), sa.column("status", sa.String))
metrics = sa.table("metrics", sa.column("id", sa.Integer), sa.column("run_id", sa.Integer), sa.column("name", sa.String),
                   sa.column("slice", sa.String), sa.column("value", sa.Float), sa.column("ci_low", sa.Float),
                   sa.column("ci_high", sa.Float), sa.column("n", sa.Integer), sa.column("extra", sa.JSON))
versions = sa.table("dataset_versions", sa.column("id", sa.Integer), sa.column("dataset_id", sa.Integer),
                    sa.column("row_count", sa.Integer), sa.column("statistics", sa.JSON))
datasets = sa.table("datasets", sa.column("id", sa.Integer), sa.column("task_type", sa.String))


def _json(value: Any) -> dict:
    if isinstance(value, str):          # a driver that hands JSON back as text
        value = json.loads(value)
    return dict(value or {})


def upgrade() -> None:
    op.create_table('standings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_version_id', sa.Integer(), nullable=False),
    sa.Column('evaluator_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('metric', sa.String(length=128), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('ci_low', sa.Float(), nullable=True),
    sa.Column('ci_high', sa.Float(), nullable=True),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('n_aligned', sa.Integer(), nullable=True),
    sa.Column('n_rows', sa.Integer(), nullable=False),
    sa.Column('coverage', sa.Float(), nullable=True),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['dataset_version_id'], ['dataset_versions.id'], name=op.f('fk_standings_dataset_version_id_dataset_versions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['evaluator_id'], ['evaluators.id'], name=op.f('fk_standings_evaluator_id_evaluators'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['evaluation_runs.id'], name=op.f('fk_standings_run_id_evaluation_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_standings')),
    sa.UniqueConstraint('dataset_version_id', 'evaluator_id', name=op.f('uq_standings_dataset_version_id_evaluator_id'))
    )
    with op.batch_alter_table('standings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_standings_evaluator_id'), ['evaluator_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_standings_run_id'), ['run_id'], unique=False)

    op.create_table('run_examples',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('dataset_version_id', sa.Integer(), nullable=False),
    sa.Column('encoding', sa.String(length=32), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['dataset_version_id'], ['dataset_versions.id'], name=op.f('fk_run_examples_dataset_version_id_dataset_versions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['evaluation_runs.id'], name=op.f('fk_run_examples_run_id_evaluation_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', name=op.f('pk_run_examples'))
    )
    with op.batch_alter_table('run_examples', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_run_examples_dataset_version_id'), ['dataset_version_id'], unique=False)

    op.create_table('standing_tests',
    sa.Column('dataset_version_id', sa.Integer(), nullable=False),
    sa.Column('metric', sa.String(length=128), nullable=False),
    sa.Column('best_run_id', sa.Integer(), nullable=False),
    sa.Column('n_boot', sa.Integer(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('candidate_run_id', sa.Integer(), nullable=False),
    sa.Column('p_value', sa.Float(), nullable=True),
    sa.Column('difference', sa.Float(), nullable=True),
    sa.Column('test', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['best_run_id'], ['evaluation_runs.id'], name=op.f('fk_standing_tests_best_run_id_evaluation_runs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['candidate_run_id'], ['evaluation_runs.id'], name=op.f('fk_standing_tests_candidate_run_id_evaluation_runs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['dataset_version_id'], ['dataset_versions.id'], name=op.f('fk_standing_tests_dataset_version_id_dataset_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('dataset_version_id', 'metric', 'best_run_id', 'n_boot', 'seed', 'candidate_run_id', name=op.f('pk_standing_tests'))
    )
    with op.batch_alter_table('standing_tests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_standing_tests_best_run_id'), ['best_run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_standing_tests_candidate_run_id'), ['candidate_run_id'], unique=False)

    op.create_table('standing_generations',
    sa.Column('task_type', sa.String(length=32), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('task_type', name=op.f('pk_standing_generations'))
    )
    op.create_table('standing_rankings',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('task_type', sa.String(length=32), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('ranking', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_standing_rankings'))
    )
    with op.batch_alter_table('standing_rankings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_standing_rankings_task_type'), ['task_type'], unique=False)

    _backfill(op.get_bind())


def _headline(task_type: str, statistics: dict) -> str:
    """The version's headline metric (registry.services.scoring.headline_for as of this revision)."""
    from registry.domain.metrics.catalog import headline_metric

    dist = statistics.get("label_distribution") or {}
    return headline_metric(task_type, tie_labels=task_type == "pairwise" and bool(dist.get("tie")))


def _backfill(conn, chunk: int = 500) -> None:
    """The standings rows of the existing runs, from their stored metrics."""
    standings = sa.table("standings", *(sa.column(c) for c in (
        "dataset_version_id", "evaluator_id", "run_id", "metric", "value", "ci_low", "ci_high", "n", "n_aligned",
        "n_rows", "coverage")), sa.column("metrics", sa.JSON))
    newest = (sa.select(sa.func.max(runs.c.id)).where(runs.c.status == "succeeded")
              .group_by(runs.c.evaluator_id, runs.c.dataset_version_id))
    latest = conn.execute(sa.select(runs.c.id, runs.c.evaluator_id, runs.c.dataset_version_id)
                          .where(runs.c.id.in_(newest)).order_by(runs.c.id)).all()
    info = {vid: (task_type, _json(stats), rows) for vid, task_type, stats, rows in conn.execute(
        sa.select(versions.c.id, datasets.c.task_type, versions.c.statistics, versions.c.row_count)
        .join(datasets, versions.c.dataset_id == datasets.c.id))}
    for start in range(0, len(latest), chunk):
        part = latest[start:start + chunk]
        found: dict[int, dict[str, tuple]] = {}
        for run_id, name, value, lo, hi, n, extra in conn.execute(
                sa.select(metrics.c.run_id, metrics.c.name, metrics.c.value, metrics.c.ci_low, metrics.c.ci_high,
                          metrics.c.n, metrics.c.extra)
                .where(metrics.c.run_id.in_([r[0] for r in part]), metrics.c.slice == "all")
                .order_by(metrics.c.id)):
            found.setdefault(run_id, {})[name] = (value, lo, hi, n, extra)
        rows = []
        for run_id, evaluator_id, version_id in part:
            task_type, stats, n_rows = info[version_id]
            got = found.get(run_id, {})
            headline = _headline(task_type, stats)
            value, lo, hi, n, _ = got.get(headline, (None, None, None, 0, None))
            cov = got.get("coverage")
            aligned = _json(cov[4]).get("aligned") if cov else None
            rows.append({"dataset_version_id": version_id, "evaluator_id": evaluator_id, "run_id": run_id,
                         "metric": headline, "value": value, "ci_low": lo, "ci_high": hi, "n": n or 0,
                         "n_aligned": aligned, "n_rows": n_rows or 0, "coverage": cov[0] if cov else None,
                         "metrics": {k: v[0] for k, v in got.items()}})
        if rows:
            conn.execute(standings.insert(), rows)


def downgrade() -> None:
    with op.batch_alter_table('standing_rankings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_standing_rankings_task_type'))
    op.drop_table('standing_rankings')
    op.drop_table('standing_generations')
    with op.batch_alter_table('standing_tests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_standing_tests_candidate_run_id'))
        batch_op.drop_index(batch_op.f('ix_standing_tests_best_run_id'))
    op.drop_table('standing_tests')
    with op.batch_alter_table('run_examples', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_run_examples_dataset_version_id'))
    op.drop_table('run_examples')
    with op.batch_alter_table('standings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_standings_run_id'))
        batch_op.drop_index(batch_op.f('ix_standings_evaluator_id'))
    op.drop_table('standings')
