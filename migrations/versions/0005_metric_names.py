"""metric names: one meaning per name (data only)

* LLMBar's compatibility κ: ``kappa_agreement`` → ``llmbar_kappa_agreement``, ``kappa_average`` →
  ``llmbar_kappa_average`` (its extra keys ``kappa_False``/``kappa_True`` → ``llmbar_kappa_False``/
  ``llmbar_kappa_True``); regressions recorded under the old names follow.
* On pairwise dataset versions whose human labels include ties (``statistics.label_distribution``
  has a ``tie`` count > 0) ``accuracy`` was the 3-way share (ties as a class): its rows, on every
  slice, become ``accuracy_3way`` (``accuracy_logprob`` → ``accuracy_logprob_3way``), and so do
  the regressions of those runs. Such runs have no ReIFE ``accuracy`` until they are scored again.
* ``coverage`` rows written before this revision count examples with a prediction, parsed or not:
  their extra gets a ``before_0005`` note saying so (the value is kept).

Downgrade is the exact inverse: on every (run, slice) with an ``accuracy_3way`` row, the ReIFE
``accuracy`` row (which older code did not store there) is deleted and ``accuracy_3way`` becomes
``accuracy`` again; the κ names, extra keys and notes go back. The schema does not change.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# the tables as this revision knows them (never today's ORM classes)
metrics = sa.table("metrics", sa.column("id", sa.Integer), sa.column("run_id", sa.Integer),
                   sa.column("name", sa.String), sa.column("slice", sa.String), sa.column("extra", sa.JSON))
metrics_new = metrics.alias("metrics_new")
runs = sa.table("evaluation_runs", sa.column("id", sa.Integer), sa.column("dataset_version_id", sa.Integer))
versions = sa.table("dataset_versions", sa.column("id", sa.Integer), sa.column("dataset_id", sa.Integer),
                    sa.column("statistics", sa.JSON))
datasets = sa.table("datasets", sa.column("id", sa.Integer), sa.column("task_type", sa.String))
regressions = sa.table("regressions", sa.column("id", sa.Integer), sa.column("candidate_run_id", sa.Integer),
                       sa.column("baseline_run_id", sa.Integer), sa.column("metric", sa.String),
                       sa.column("slice", sa.String))

KAPPA = {"kappa_agreement": "llmbar_kappa_agreement", "kappa_average": "llmbar_kappa_average"}
KAPPA_EXTRA = {"kappa_False": "llmbar_kappa_False", "kappa_True": "llmbar_kappa_True"}
THREE_WAY = {"accuracy": "accuracy_3way", "accuracy_logprob": "accuracy_logprob_3way"}
COVERAGE_NOTE = "before_0005"
COVERAGE_TEXT = ("stored before revision 0005: the value counts examples with a prediction in every order "
                 "judged, parse failures included; score the run again for the share with a parsed judgment")


def _json(value: Any) -> dict:
    if isinstance(value, str):          # a driver that hands JSON back as text
        value = json.loads(value)
    return dict(value or {})


def _tie_runs(conn: sa.Connection) -> list[int]:
    """Runs on pairwise dataset versions whose label distribution has ties."""
    rows = conn.execute(sa.select(versions.c.id, versions.c.statistics)
                        .join(datasets, datasets.c.id == versions.c.dataset_id)
                        .where(datasets.c.task_type == "pairwise")).all()
    tie_versions = [vid for vid, stats in rows
                    if (_json(stats).get("label_distribution") or {}).get("tie", 0) > 0]
    if not tie_versions:
        return []
    return list(conn.execute(sa.select(runs.c.id).where(runs.c.dataset_version_id.in_(tie_versions))).scalars())


def _chunks(ids: list[int], size: int = 500):
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def _rename_extra_keys(conn: sa.Connection, name: str, keys: dict[str, str]) -> None:
    for mid, extra in conn.execute(sa.select(metrics.c.id, metrics.c.extra).where(metrics.c.name == name)).all():
        extra = _json(extra)
        if any(k in extra for k in keys):
            new = {keys.get(k, k): v for k, v in extra.items()}
            conn.execute(metrics.update().where(metrics.c.id == mid).values(extra=new))


def _rename(conn: sa.Connection, names: dict[str, str], run_ids: list[int] | None = None) -> None:
    """Rename metric rows and regressions (of ``run_ids`` only, when given)."""
    for old, new in names.items():
        # a (run, slice) that already has the new name was scored by code newer than this revision
        # (where both figures exist with their own meanings): leave its rows alone
        taken = sa.select(metrics_new.c.id).where(metrics_new.c.run_id == metrics.c.run_id,
                                                  metrics_new.c.slice == metrics.c.slice,
                                                  metrics_new.c.name == new)
        for chunk in ([None] if run_ids is None else list(_chunks(run_ids))):
            m = metrics.update().where(metrics.c.name == old, ~sa.exists(taken))
            r = regressions.update().where(regressions.c.metric == old)
            if chunk is not None:
                m = m.where(metrics.c.run_id.in_(chunk))
                r = r.where(regressions.c.candidate_run_id.in_(chunk))
            conn.execute(m.values(name=new))
            conn.execute(r.values(metric=new))


def _set_coverage_note(conn: sa.Connection, add: bool) -> None:
    for mid, extra in conn.execute(sa.select(metrics.c.id, metrics.c.extra)
                                   .where(metrics.c.name == "coverage")).all():
        extra = _json(extra)
        if add and "judged" not in extra and COVERAGE_NOTE not in extra:
            extra[COVERAGE_NOTE] = COVERAGE_TEXT
        elif not add and COVERAGE_NOTE in extra:
            del extra[COVERAGE_NOTE]
        else:
            continue
        conn.execute(metrics.update().where(metrics.c.id == mid).values(extra=extra))


def upgrade() -> None:
    conn = op.get_bind()
    _rename(conn, KAPPA)
    _rename_extra_keys(conn, "llmbar_kappa_average", KAPPA_EXTRA)
    tie_runs = _tie_runs(conn)
    if tie_runs:
        _rename(conn, THREE_WAY, tie_runs)
    _set_coverage_note(conn, add=True)


def _drop_shadowed(conn: sa.Connection, old: str, new: str) -> None:
    """Delete the ``old`` rows whose (run, slice) also has a ``new`` row (and the same for
    regressions), so that ``new`` can take the old name back."""
    three = sa.select(metrics.c.run_id, metrics.c.slice).where(metrics.c.name == new).subquery()
    doomed = sa.select(metrics.c.id).join(three, sa.and_(three.c.run_id == metrics.c.run_id,
                                                         three.c.slice == metrics.c.slice)).where(metrics.c.name == old)
    ids = list(conn.execute(doomed).scalars())
    for chunk in _chunks(ids):
        conn.execute(metrics.delete().where(metrics.c.id.in_(chunk)))
    reg3 = sa.select(regressions.c.candidate_run_id, regressions.c.baseline_run_id,
                     regressions.c.slice).where(regressions.c.metric == new).subquery()
    doomed_r = sa.select(regressions.c.id).join(reg3, sa.and_(
        reg3.c.candidate_run_id == regressions.c.candidate_run_id,
        reg3.c.baseline_run_id == regressions.c.baseline_run_id,
        reg3.c.slice == regressions.c.slice)).where(regressions.c.metric == old)
    ids = list(conn.execute(doomed_r).scalars())
    for chunk in _chunks(ids):
        conn.execute(regressions.delete().where(regressions.c.id.in_(chunk)))


def downgrade() -> None:
    conn = op.get_bind()
    _set_coverage_note(conn, add=False)
    for old, new in THREE_WAY.items():
        _drop_shadowed(conn, old, new)
    _rename(conn, {new: old for old, new in THREE_WAY.items()})
    _rename_extra_keys(conn, "llmbar_kappa_average", {v: k for k, v in KAPPA_EXTRA.items()})
    _rename(conn, {new: old for old, new in KAPPA.items()})
