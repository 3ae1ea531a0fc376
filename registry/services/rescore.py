"""Re-score stored runs: compute a run's metrics again from its stored predictions with the scoring
code of today (e.g. to give old runs a metric added since, such as the bias diagnostics of
:mod:`registry.domain.metrics.bias`), and replace its metric rows.

The run is scored as it was when it landed: its seed, its number of bootstrap resamples
(``provenance["n_boot"]``, else the ``bootstrap_samples`` its metrics recorded), its slicing
(``provenance["slicing"]``, else the columns and minimum slice size that its ``coverage`` lists)
and its evaluator's price. So metrics whose definition did not change get the same values again,
and new ones are added.

By default a stored value is *kept*: only the metrics (name and slice) the run does not have are
added, and the ones whose recomputed value differs are listed (``changed``) — a derived run (a
jury's) stores values that scoring its predictions alone does not give (its members' cost), and a
re-score must not lose them. ``replace=True`` stores the recomputed metrics instead (every stored
value of the run replaced; a stored metric the recomputation lacks is kept either way).

Every selected run is scored first; then all their metric rows are replaced in one transaction
through :meth:`~registry.adapters.store.abstract.AbstractStore.record_metrics` — exactly what a run
landing does to the standings: its per-example judgments and leaderboard row are rewritten, the
version's cached paired tests dropped and the task type's standings generation moved on (so
memoised rankings, the matrix and the web pages are computed again). An error in any run
(predictions missing, a dataset version gone) changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from registry.domain.entities import EvaluationRun, MetricRecord
from registry.domain.serialization import Serializable
from registry.errors import InvalidInput, NotFound
from registry.services.app import RegistryContext

TOLERANCE = 1e-9
"""Relative difference above which a metric value counts as changed."""


@dataclass(frozen=True)
class RescoredRun(Serializable):
    """One run scored again."""

    run: int
    evaluator: str
    dataset: str
    metrics: int
    """Metric rows stored now (every slice)."""
    added: tuple[str, ...]
    """Metric names (slice ``all``) the run did not have before."""
    removed: tuple[str, ...]
    """Metric names (slice ``all``) the run lost: none — a stored metric the recomputation lacks (a
    jury's members' price) is kept."""
    changed: tuple[str, ...]
    """Metric names (slice ``all``) whose recomputed value or CI differs from the stored one by more
    than :data:`TOLERANCE` (kept as stored unless ``replaced``)."""
    replaced: bool = False
    """Whether the recomputed values of the metrics the run had were stored (``replace=True``)."""


@dataclass(frozen=True)
class Rescore(Serializable):
    """What :func:`rescore_runs` did."""

    runs: tuple[RescoredRun, ...]

    @property
    def added(self) -> tuple[str, ...]:
        """Every metric name added to some run, sorted."""
        return tuple(sorted({name for r in self.runs for name in r.added}))


def select_runs(reg: RegistryContext, *, run_ids: Sequence[int] | None = None, all_runs: bool = False,
                dataset: str | None = None) -> list[EvaluationRun]:
    """The runs to re-score: the ids given (each must have succeeded), or every succeeded run of
    ``dataset`` (``name``: every version, ``name@version``: that one), or of the registry (``all_runs``)."""
    store = reg.store
    if run_ids:
        if all_runs or dataset:
            raise InvalidInput("give run ids, or --dataset, or --all (one of them)", field="run")
        runs = [store.get_run(int(i)) for i in dict.fromkeys(run_ids)]
        for run in runs:
            if run.status != "succeeded":
                raise InvalidInput(f"run {run.id} has status {run.status}; only succeeded runs have predictions "
                                   "to re-score", field="run")
        return runs
    if dataset:
        if all_runs:
            raise InvalidInput("give run ids, or --dataset, or --all (one of them)", field="dataset")
        store.get_version(dataset)                      # an unknown dataset is a NotFound naming it
        return sorted(store.list_runs(dataset=dataset, status="succeeded"), key=lambda r: r.id)
    if all_runs:
        return sorted(store.list_runs(status="succeeded"), key=lambda r: r.id)
    raise InvalidInput("nothing to re-score: give run ids (--run ID), --dataset NAME[@VERSION] or --all", field="run")


def _n_boot(run: EvaluationRun) -> int:
    got = (run.provenance or {}).get("n_boot")
    if isinstance(got, int) and got > 0:
        return got
    for m in run.metrics:                               # imports record it with every metric's CI
        samples = (m.extra or {}).get("bootstrap_samples")
        if isinstance(samples, int) and samples > 0:
            return samples
    return 1000


def _slicing(run: EvaluationRun) -> dict:
    """``slice_by`` and ``min_slice_size`` the run was scored with."""
    got = (run.provenance or {}).get("slicing")
    if isinstance(got, dict) and "min_slice_size" in got:
        return {"slice_by": got.get("slice_by"), "min_slice_size": int(got["min_slice_size"])}
    coverage = run.metric("coverage")
    reports = ((coverage.extra or {}).get("slices") if coverage else None) or []
    if not reports:
        return {"slice_by": [] if coverage is not None else None, "min_slice_size": 10}
    return {"slice_by": [r["column"] for r in reports], "min_slice_size": int(reports[0].get("min_size", 10))}


def _differs(old: MetricRecord, new: MetricRecord) -> bool:
    def off(a: float | None, b: float | None) -> bool:
        fa = a is None or (isinstance(a, float) and math.isnan(a))
        fb = b is None or (isinstance(b, float) and math.isnan(b))
        if fa or fb:
            return fa != fb
        return abs(a - b) > TOLERANCE * max(1.0, abs(a), abs(b))
    return off(old.value, new.value) or off(old.ci_low, new.ci_low) or off(old.ci_high, new.ci_high)


def score_again(reg: RegistryContext, run: EvaluationRun, tables: dict | None = None) -> list[MetricRecord]:
    """The metrics of ``run`` computed again from its stored predictions (module docstring); nothing stored."""
    from registry.services.datasets import load_table
    from registry.services.evaluation import load_predictions, task_context
    from registry.services.scoring import compute_metrics

    version = reg.store.get_version(run.dataset)
    tables = {} if tables is None else tables
    if version.ref not in tables:
        tables[version.ref] = load_table(reg, version.ref)
    try:
        predictions = load_predictions(reg, run)
    except (InvalidInput, NotFound, OSError) as exc:
        raise InvalidInput(f"run {run.id} ({run.evaluator} on {run.dataset}) cannot be re-scored: {exc}",
                           field="run") from exc
    try:
        price = reg.store.get_evaluator(run.evaluator).price_per_1k_tokens
    except NotFound:
        price = None
    metrics = compute_metrics(version.task_type, tables[version.ref], predictions, ctx=task_context(version),
                              seed=run.seed, n_boot=_n_boot(run), price_per_1k_tokens=price, **_slicing(run))
    # a derived run's own metrics (a jury's summed price_per_1000) cannot come from its predictions: kept
    kept = [m for m in run.metrics if (m.extra or {}).get("derived")
            and not any(n.name == m.name and n.slice == m.slice for n in metrics)]
    metrics.extend(kept)
    return metrics


def merged(old: Sequence[MetricRecord], new: list[MetricRecord], *, replace: bool = False) -> list[MetricRecord]:
    """The records to store: the recomputed ones (in their order) with, unless ``replace``, the stored
    record in place of each one the run already has; then the stored ones the recomputation lacks.
    Keeps ``new``'s per-example judgments (its ``examples``)."""
    stored = {(m.name, m.slice): m for m in old}
    computed = {(m.name, m.slice) for m in new}
    out = type(new)() if hasattr(new, "examples") else []
    out.extend(m if replace else stored.get((m.name, m.slice), m) for m in new)
    out.extend(m for m in old if (m.name, m.slice) not in computed)
    if hasattr(new, "examples"):
        out.examples = new.examples
    return out


def rescore_runs(reg: RegistryContext, *, run_ids: Sequence[int] | None = None, all_runs: bool = False,
                 dataset: str | None = None, replace: bool = False) -> Rescore:
    """Score the selected runs again (:func:`select_runs`) and store the metrics they lack (``replace``:
    every recomputed value), all in one transaction, with what a landing run does to the standings
    (module docstring)."""
    runs = select_runs(reg, run_ids=run_ids, all_runs=all_runs, dataset=dataset)
    tables: dict = {}
    scored = [(run, score_again(reg, run, tables)) for run in runs]     # every run first: an error stores nothing
    stored = [merged(run.metrics, metrics, replace=replace) for run, metrics in scored]
    with reg.store.unit_of_work() as uow:
        for (run, _), records in zip(scored, stored):
            uow.record_metrics(run.id, records)
    out = []
    for (run, metrics), records in zip(scored, stored):
        old = {m.name: m for m in run.metrics if m.slice == "all"}
        new = {m.name: m for m in metrics if m.slice == "all"}
        out.append(RescoredRun(run=run.id, evaluator=run.evaluator, dataset=run.dataset, metrics=len(records),
                               added=tuple(sorted(set(new) - set(old))),
                               removed=tuple(sorted(set(old) - {m.name for m in records if m.slice == "all"})),
                               changed=tuple(sorted(k for k in set(old) & set(new) if _differs(old[k], new[k]))),
                               replaced=replace))
    return Rescore(runs=tuple(out))


__all__ = ["Rescore", "RescoredRun", "merged", "rescore_runs", "score_again", "select_runs"]
