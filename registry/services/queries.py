"""Questions users ask of the registry: leaderboards and "which evaluator is best here?".

* On one dataset version, evaluators are ranked by the headline metric of their latest
  successful run (see :mod:`registry.services.scoring`); an evaluator is *statistically tied*
  with the best when a paired test on the shared examples cannot tell them apart (p ≥ α):
  a paired bootstrap of the per-example contributions (pairwise credit, classification
  class-balanced correctness), or for correlations a paired bootstrap of the correlation
  difference.
* Over a task type, each evaluator's score is the macro average of the metric over the latest
  versions of the datasets of that type that every ranked evaluator has run on; ties are a paired
  bootstrap over datasets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from registry.domain.entities import EvaluationRun
from registry.domain.metrics import Bootstrap, paired_bootstrap
from registry.errors import InvalidInput, NotFound
from registry.services.app import Registry
from registry.services.scoring import HEADLINE, per_example_values

ALPHA = 0.05


@dataclass(frozen=True)
class Standing:
    """One evaluator's place on a leaderboard."""

    evaluator: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    runs: tuple[int, ...]
    tied_with_best: bool = False
    p_value: float | None = None
    """p-value of the paired test against the best (None for the best itself)."""
    difference: float | None = None
    """Best minus this evaluator on the shared examples (or datasets)."""
    metrics: dict[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Ranking:
    """A ranked answer: scope, metric and standings (best first)."""

    scope: str
    metric: str
    standings: tuple[Standing, ...]
    datasets: tuple[str, ...] = ()

    @property
    def best(self) -> Standing | None:
        return self.standings[0] if self.standings else None

    @property
    def tied(self) -> tuple[Standing, ...]:
        return tuple(s for s in self.standings[1:] if s.tied_with_best)


def _latest_version_ids(reg: Registry, task_type: str | None = None, dataset: str | None = None):
    from registry.adapters.store.orm import SqlDataset

    with reg.store.session() as s:
        if dataset:
            v = reg.store.version_row(s, dataset)
            return {v.id: (f"{v.dataset.name}@{v.version}", v.dataset.task_type)}
        out = {}
        for ds in s.query(SqlDataset).all():
            if task_type and ds.task_type != task_type:
                continue
            latest = reg.store.latest_version_row(s, ds)
            if latest is not None:
                out[latest.id] = (f"{ds.name}@{latest.version}", ds.task_type)
        return out


def _metric_of(run: EvaluationRun, name: str):
    return run.metric(name)


def leaderboard(reg: Registry, dataset: str, metric: str | None = None, *, alpha: float = ALPHA,
                n_boot: int = 1000, seed: int = 0) -> Ranking:
    """Evaluators on one dataset version (latest when no version is given), best first."""
    versions = _latest_version_ids(reg, dataset=dataset)
    (vid, (ref, task_type)), = versions.items()
    metric = metric or HEADLINE[task_type]
    runs = [r for r in reg.store.latest_runs(dataset_version_ids=[vid]) if r.metric(metric) is not None
            and r.metric(metric).value is not None]
    if not runs:
        raise NotFound(f"no successful run on {ref} has metric {metric!r}; run `autorater eval run` first")
    runs.sort(key=lambda r: -r.metric(metric).value)
    best = runs[0]
    standings = [_standing(best, metric)]
    if len(runs) > 1:
        tests = _paired_against(reg, task_type, ref, best, runs[1:], metric, n_boot, seed)
        for r, (diff, p) in zip(runs[1:], tests):
            standings.append(_standing(r, metric, tied=p is not None and p >= alpha, p=p, diff=diff))
    return Ranking(scope=ref, metric=metric, standings=tuple(standings), datasets=(ref,))


def _standing(run: EvaluationRun, metric: str, *, tied: bool = False, p=None, diff=None) -> Standing:
    m = run.metric(metric)
    others = {x.name: x.value for x in run.metrics if x.slice == "all"}
    return Standing(evaluator=run.evaluator, value=m.value, ci_low=m.ci_low, ci_high=m.ci_high, n=m.n,
                    runs=(run.id,), tied_with_best=tied, p_value=p, difference=diff, metrics=others)


def _paired_against(reg, task_type, ref, best, others, metric, n_boot, seed):
    from registry.services.datasets import load_table
    from registry.services.evaluation import load_predictions

    table = load_table(reg, ref)
    if task_type == "pointwise":
        if metric in ("spearman", "pearson", "kendall"):
            return [_correlation_test(reg, table, best, r, metric, n_boot, seed) for r in others]
        return [(None, None)] * len(others)
    if metric != HEADLINE[task_type]:  # only the headline metric decomposes per example
        return [(None, None)] * len(others)
    results = []
    ids_b, vals_b = per_example_values(task_type, table, load_predictions(reg, best))
    index_b = {e: i for i, e in enumerate(ids_b)}
    for r in others:
        ids_o, vals_o = per_example_values(task_type, table, load_predictions(reg, r))
        shared = [(index_b[e], j) for j, e in enumerate(ids_o) if e in index_b]
        if len(shared) < 2:
            results.append((None, None))
            continue
        bi, oj = np.array(shared).T
        test = paired_bootstrap(vals_b[bi], vals_o[oj], boot=Bootstrap.draw(len(bi), n_boot, seed))
        results.append((test.difference, test.p_value))
    return results


def _correlation_test(reg, table, best, other, metric, n_boot, seed):
    from scipy import stats

    from registry.services.evaluation import load_predictions
    from registry.services.scoring import align

    human_all = np.array(table.column("score").to_pylist(), dtype=float)
    a, b = align(table, load_predictions(reg, best)), align(table, load_predictions(reg, other))
    shared = np.intersect1d(a.rows, b.rows)
    if len(shared) < 3:
        return (None, None)
    pa_ = dict(zip(a.rows.tolist(), a.score[0]))
    pb_ = dict(zip(b.rows.tolist(), b.score[0]))
    h = human_all[shared]
    xa = np.array([pa_[i] for i in shared])
    xb = np.array([pb_[i] for i in shared])
    fn = {"spearman": lambda x, y: stats.spearmanr(x, y)[0], "pearson": lambda x, y: stats.pearsonr(x, y)[0],
          "kendall": lambda x, y: stats.kendalltau(x, y)[0]}[metric]
    boot = Bootstrap.draw(len(shared), n_boot, seed)
    diffs = boot.apply(lambda hh, aa, bb: fn(hh, aa) - fn(hh, bb), h, xa, xb)
    diff = fn(h, xa) - fn(h, xb)
    diffs = diffs[np.isfinite(diffs)]
    p = (1 + np.count_nonzero(np.abs(diffs - diff) >= abs(diff) - 1e-12)) / (len(diffs) + 1)
    return (float(diff), float(min(p, 1.0)))


def best_evaluator(reg: Registry, *, dataset: str | None = None, task_type: str | None = None,
                   metric: str | None = None, alpha: float = ALPHA, n_boot: int = 1000, seed: int = 0) -> Ranking:
    """The best evaluator for a dataset, or for a task type (macro average over its datasets)."""
    if bool(dataset) == bool(task_type):
        raise InvalidInput("give exactly one of --dataset or --task-type", field="dataset")
    if dataset:
        return leaderboard(reg, dataset, metric, alpha=alpha, n_boot=n_boot, seed=seed)
    metric = metric or HEADLINE[task_type]
    versions = _latest_version_ids(reg, task_type=task_type)
    runs = reg.store.latest_runs(dataset_version_ids=list(versions))
    table: dict[str, dict[str, tuple[float, int]]] = {}
    for r in runs:
        m = r.metric(metric)
        if m is not None and m.value is not None:
            table.setdefault(r.evaluator, {})[r.dataset] = (m.value, r.id)
    if not table:
        raise NotFound(f"no runs with metric {metric!r} on {task_type} datasets")
    # the dataset set: among the evaluators' coverage sets, the one that maximises
    # (datasets × evaluators covering all of them); evaluators missing one of them are not ranked
    def covering(ds: frozenset) -> int:
        return sum(ds <= set(d) for d in table.values())

    candidates = {frozenset(d) for d in table.values()}
    chosen = max(candidates, key=lambda ds: (len(ds) * covering(ds), len(ds), sorted(ds)))
    datasets = sorted(chosen)
    if len(datasets) == 1:  # one dataset: its leaderboard, with the per-example CIs and paired tests
        board = leaderboard(reg, datasets[0], metric, alpha=alpha, n_boot=n_boot, seed=seed)
        return Ranking(scope=f"task_type={task_type}", metric=metric, standings=board.standings,
                       datasets=board.datasets)
    ranked = {e: d for e, d in table.items() if all(x in d for x in datasets)}
    names = sorted(ranked, key=lambda e: -np.mean([ranked[e][d][0] for d in datasets]))
    values = np.array([[ranked[e][d][0] for d in datasets] for e in names])
    boot = Bootstrap.draw(len(datasets), n_boot, seed)
    standings = []
    for i, e in enumerate(names):
        samples = boot.means(values[i])
        lo, hi = np.percentile(samples, [2.5, 97.5])
        diff = p = None
        tied = False
        if i > 0:
            test = paired_bootstrap(values[0], values[i], boot=boot)
            diff, p = test.difference, test.p_value
            tied = p >= alpha
        standings.append(Standing(evaluator=e, value=float(values[i].mean()), ci_low=float(lo), ci_high=float(hi),
                                  n=len(datasets), runs=tuple(ranked[e][d][1] for d in datasets),
                                  tied_with_best=tied, p_value=p, difference=diff,
                                  metrics={d: ranked[e][d][0] for d in datasets}))
    return Ranking(scope=f"task_type={task_type}", metric=metric, standings=tuple(standings),
                   datasets=tuple(datasets))


@dataclass(frozen=True)
class Comparison:
    """Two runs on the shared examples of one dataset version."""

    run_a: int
    run_b: int
    dataset: str
    metric: str
    n_shared: int
    value_a: float
    value_b: float
    paired_bootstrap: dict
    mcnemar: dict | None
    """McNemar's test on per-example correctness (pairwise and classification only)."""


def compare_runs(reg: Registry, run_a: int, run_b: int, *, n_boot: int = 1000, seed: int = 0) -> Comparison:
    """Paired bootstrap (and McNemar where per-example correctness exists) of two runs on the
    examples both judged; the runs must be on the same dataset version."""
    from registry.domain.metrics import mcnemar
    from registry.services.datasets import load_table
    from registry.services.evaluation import load_predictions

    a, b = reg.store.get_run(run_a), reg.store.get_run(run_b)
    if a.dataset != b.dataset:
        raise InvalidInput(f"run {run_a} is on {a.dataset} and run {run_b} on {b.dataset}; compare runs on one "
                           "dataset version (or re-run one of them on the other version)")
    version = reg.store.get_version(a.dataset)
    metric = HEADLINE[version.task_type]
    table = load_table(reg, a.dataset)
    if version.task_type == "pointwise":
        diff, p = _correlation_test(reg, table, a, b, metric, n_boot, seed)
        return Comparison(run_a, run_b, a.dataset, metric, int(a.metric(metric).n), a.metric(metric).value,
                          b.metric(metric).value, {"difference": diff, "p_value": p, "method": "paired_bootstrap"},
                          None)
    ids_a, vals_a = per_example_values(version.task_type, table, load_predictions(reg, a))
    ids_b, vals_b = per_example_values(version.task_type, table, load_predictions(reg, b))
    index_b = {e: j for j, e in enumerate(ids_b)}
    pairs = np.array([(i, index_b[e]) for i, e in enumerate(ids_a) if e in index_b])
    if len(pairs) < 2:
        raise InvalidInput(f"runs {run_a} and {run_b} share fewer than two judged examples")
    va, vb = vals_a[pairs[:, 0]], vals_b[pairs[:, 1]]
    boot = Bootstrap.draw(len(pairs), n_boot, seed)
    pb = paired_bootstrap(va, vb, boot=boot, name=f"{metric}_difference")
    # per-example correctness for McNemar: classification — the label matched (weight > 0);
    # pairwise — full credit (right in every order judged)
    def correct(v: np.ndarray) -> np.ndarray:
        return v > 0 if version.task_type == "classification" else v >= 1.0 - 1e-12

    mc = mcnemar(correct(va), correct(vb))
    return Comparison(run_a, run_b, a.dataset, metric, len(pairs), float(va.mean()), float(vb.mean()),
                      {"difference": pb.difference, "ci_low": pb.ci_low, "ci_high": pb.ci_high,
                       "p_value": pb.p_value, "method": pb.method},
                      {"difference": mc.difference, "p_value": mc.p_value, "method": mc.method, **mc.extra})
