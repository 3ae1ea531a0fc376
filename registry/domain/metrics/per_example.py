"""Per-example decompositions of the stored metrics, for paired tests between two runs.

Every metric a leaderboard can rank by is decomposed over the examples a run judged
(:func:`decompose`), so two runs can be compared on the examples both judged:

* a ``mean`` metric (pairwise credit, correct-in-both, agreement between the orders,
  classification correctness) is the mean of one value per example; its paired test resamples
  the per-example differences
  (:func:`~registry.domain.metrics.paired.paired_bootstrap`);
* a ``statistic`` (Cohen's κ, Krippendorff's α, balanced accuracy, macro F1, ROC-AUC,
  correlations, AlpacaEval's human agreement — a ratio of sums) is recomputed for both runs on the same resamples of the
  shared examples (:func:`~registry.domain.metrics.paired.paired_statistic_bootstrap`).

A decomposition is built on one run's judged examples first — so seeded coin flips fall on the
examples the scoring put them on — and then restricted to the shared examples. Its point value
on all of the run's examples is the stored metric, and its kind is the catalog's
(:mod:`registry.domain.metrics.catalog`); the tests check both for every metric.
Metrics that describe the run rather than its judgments of the examples (cost, time, coverage,
the humans' own agreement) have no paired test; :func:`untestable_reason` says why.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from registry.domain.judgments import FAIL, VERDICT_CODES
from registry.domain.metrics._counts import (
    VERDICT_VALUES,
    alpha_two_coders,
    confusion,
    kappa_from_confusion,
    ratio,
    weighted_sums,
)
from registry.domain.metrics.alpacaeval import _expected_score, preferences
from registry.domain.metrics.annotators import modes
from registry.domain.metrics.bias import BIAS_METRICS
from registry.domain.metrics.bootstrap import Bootstrap
from registry.domain.metrics.classification import _FROM_CONFUSION, _auc_rows, encode
from registry.domain.metrics.paired import PairedTest, mcnemar, paired_bootstrap, paired_statistic_bootstrap
from registry.domain.metrics.pairwise import coin_flips, judgebench_scores, order_credit, resolve_coin_flips
from registry.domain.metrics.pointwise import METHODS, _resampled, correlation_point, system_means
from registry.errors import InvalidInput

A = VERDICT_CODES["A"]
Columns = Mapping[str, np.ndarray]
Statistic = Callable[[Columns, Bootstrap | None], tuple[float, np.ndarray | None]]
"""(columns, bootstrap or None) → (point value, the B resampled values or None)."""
_CHUNK = 256

UNTESTABLE: dict[str, str] = {
    "time_per_1000": "time is a cost of running the evaluator, not a judgment of the shared examples; "
                     "compare the values directly",
    "price_per_1000": "price is a cost of running the evaluator, not a judgment of the shared examples; "
                      "compare the values directly",
    "coverage": "coverage counts which examples were judged; on the shared examples both runs have judged all",
    "human_agreement_loo": "the humans' leave-one-out agreement does not depend on the evaluator",
    "prob_prefer_first": "a bias measure with no better direction (AlpacaEval reports it, does not rank by it)",
    "prob_prefer_longer": "a bias measure with no better direction (AlpacaEval reports it, does not rank by it)",
    "prob_prefer_list": "a bias measure with no better direction (AlpacaEval reports it, does not rank by it)",
    **dict.fromkeys(BIAS_METRICS, "a bias diagnostic (registry.domain.metrics.bias) with no per-example paired test "
                                  "yet; compare the values and their CIs"),
}
"""Metrics without a paired test, and why."""


# ----------------------------------------------------------------------------- one run's judgments
@dataclass(frozen=True)
class PairwiseJudgments:
    """One run's pairwise verdicts on the examples it judged (int8 codes, original orientation)."""

    ids: Sequence[str]
    labels: np.ndarray
    """Human labels (A, B, tie)."""
    verdicts: tuple[np.ndarray, ...]
    """One array per order judged (order 0 as given, order 1 swapped and mapped back)."""
    seed: int = 0
    """The run's seed: the coins of ``accuracy_flip``, ``alpha`` and ``self_consistency``."""
    logprob: np.ndarray | None = None
    """Verdicts from ``prob_a`` averaged over the orders (FAIL where none), if the run has any."""
    annotators: np.ndarray | None = None
    """(n, k) per-annotator label codes (FAIL = no vote), where the dataset has them."""


@dataclass(frozen=True)
class ClassificationJudgments:
    """One run's classification predictions on the examples it judged."""

    ids: Sequence[str]
    labels: Sequence[Hashable]
    predictions: Sequence[Hashable | None]
    """``None`` for a parse failure (always wrong)."""
    classes: Sequence[Hashable] | None = None
    """The dataset's label set (default: every label and parsed prediction)."""
    scores: np.ndarray | None = None
    """Per-example score for ROC-AUC (NaN where none)."""
    positive: Hashable | None = None
    """The positive class of ROC-AUC."""


@dataclass(frozen=True)
class PointwiseJudgments:
    """One run's predicted scores beside the human scores (NaN where a rating did not parse)."""

    ids: Sequence[str]
    human: np.ndarray
    predicted: np.ndarray
    systems: np.ndarray | None = None
    """System id per example, for the system-level correlations."""


Judgments = PairwiseJudgments | ClassificationJudgments | PointwiseJudgments


# ----------------------------------------------------------------------------- decomposition
@dataclass(frozen=True)
class Decomposition:
    """One metric of one run as per-example columns and the rule that turns them into the metric."""

    metric: str
    ids: tuple[str, ...]
    """Example ids, one per row of every column."""
    columns: dict[str, np.ndarray]
    kind: Literal["mean", "statistic"]
    values: Callable[[Columns], np.ndarray] | None = None
    """``mean``: the per-example values (their mean is the metric)."""
    statistic: Statistic | None = None
    """``statistic``: the metric and its resampled values."""
    binary: bool = False
    """The per-example values are 0/1 correctness, so McNemar's test applies."""
    units: Callable[[Columns], dict[str, np.ndarray]] | None = field(default=None, repr=False)
    """Optional: regroup the (shared) examples into the resampling units (system-level metrics)."""

    @property
    def n(self) -> int:
        """Examples the metric is computed on."""
        return len(self.ids)

    def take(self, rows: np.ndarray) -> Decomposition:
        """The same metric on a subset of the rows (e.g. the examples two runs share)."""
        rows = np.asarray(rows, dtype=np.int64)
        return replace(self, ids=tuple(self.ids[int(i)] for i in rows),
                       columns={k: v[rows] for k, v in self.columns.items()})

    def value(self) -> float:
        """The metric on these rows (equals the stored metric on all of a run's rows)."""
        cols = self.units(self.columns) if self.units else self.columns
        if self.kind == "mean":
            x = self.values(cols)
            return float(x.mean()) if len(x) else float("nan")
        return float(self.statistic(cols, None)[0])

    @property
    def test_name(self) -> str:
        """What :func:`paired_test` does, e.g. ``paired_bootstrap(per-example correct_both)``."""
        if self.kind == "mean":
            return f"paired_bootstrap(per-example {self.metric})"
        unit = "systems" if self.units else "examples"
        return f"paired_bootstrap({self.metric} recomputed on resampled {unit})"


def untestable_reason(metric: str) -> str | None:
    """Why ``metric`` has no paired test (``None`` when it has one)."""
    return UNTESTABLE.get(metric)


def _mean(column: str, **kw) -> dict:
    return {"kind": "mean", "values": lambda c: c[column], **kw}


def _stat(fn: Statistic, **kw) -> dict:
    return {"kind": "statistic", "statistic": fn, **kw}


# ----------------------------------------------------------------------------- pairwise
def _kappa_stat(pairs: Sequence[tuple[str, str]], categories: Sequence[int] = VERDICT_VALUES) -> Statistic:
    """Mean over ``pairs`` of columns of Cohen's κ, from (resampled) confusion counts."""
    def stat(c: Columns, boot: Bootstrap | None):
        points, samples = [], []
        for x, y in pairs:
            point, resampled = confusion(c[x], c[y], categories, boot)
            points.append(kappa_from_confusion(point))
            samples.append(kappa_from_confusion(resampled) if boot is not None else None)
        return float(np.mean(points)), (np.mean(samples, axis=0) if boot is not None else None)
    return stat


def _alpha_stat(x: str, ys: Sequence[str]) -> Statistic:
    """Mean over ``ys`` of Krippendorff's α (nominal) between column ``x`` and each ``y``."""
    def stat(c: Columns, boot: Bootstrap | None):
        point, samples = alpha_two_coders(c[x], np.stack([c[y] for y in ys]), boot)
        return float(np.mean(point)), (samples.mean(axis=0) if samples is not None else None)
    return stat


def _ratio_stat(num: str, den: str) -> Statistic:
    """Σ num / Σ den over the examples (a ratio of sums, e.g. agreement over valid annotations)."""
    def stat(c: Columns, boot: Bootstrap | None):
        point, samples = weighted_sums(np.stack([c[num], c[den]]), boot)
        return float(ratio(point[0], point[1])), (ratio(samples[0], samples[1]) if samples is not None else None)
    return stat


def _pairwise(j: PairwiseJudgments) -> dict[str, dict]:
    """The pairwise metrics of a run: name → decomposition spec (``columns`` + rule)."""
    labels = np.asarray(j.labels, dtype=np.int8)
    v = [np.asarray(x, dtype=np.int8) for x in j.verdicts]
    n, orders = len(labels), len(v)
    expected = np.mean([order_credit(labels, x, "expected") for x in v], axis=0)
    strict = np.mean([order_credit(labels, x, "wrong") for x in v], axis=0)
    cols: dict[str, np.ndarray] = {"labels": labels, "expected": expected, "strict": strict,
                                   **{f"v{o}": x for o, x in enumerate(v)}}
    specs: dict[str, dict] = {
        # ReIFE: ½ credit for a tie verdict or a parse failure against an A/B label (0 against a tie label)
        "accuracy": _mean("expected"),
        # ties are a class: a verdict scores when it equals the 3-way label (LLMBar/PandaLM strict)
        "accuracy_3way": _mean("strict", binary=orders == 1),
        "accuracy_strict": _mean("strict", binary=orders == 1),
    }
    if j.logprob is not None:
        lp = np.asarray(j.logprob, dtype=np.int8)
        cols["logprob"] = order_credit(labels, lp, "expected")
        cols["logprob_3way"] = order_credit(labels, lp, "wrong")
        specs["accuracy_logprob"] = _mean("logprob")
        specs["accuracy_logprob_3way"] = _mean("logprob_3way", binary=True)
    if orders == 2:
        v0, v1 = v
        coins = coin_flips(n, j.seed)
        r0, r1 = resolve_coin_flips(v0, coins[0]), resolve_coin_flips(v1, coins[1])
        cols.update({
            "r0": r0, "r1": r1,
            "flip": 0.5 * ((r0 == labels).astype(np.float64) + (r1 == labels)),
            "expected0": order_credit(labels, v0, "expected"), "expected1": order_credit(labels, v1, "expected"),
            "correct0": (v0 == labels).astype(np.float64), "correct1": (v1 == labels).astype(np.float64),
            "both": ((v0 == labels) & (v1 == labels)).astype(np.float64),
            "agree": ((v0 == v1) & (v0 != FAIL)).astype(np.float64),
            "equal": (v0 == v1).astype(np.float64),
            "self_consistent": (r0 == r1).astype(np.float64),
            "judgebench": (judgebench_scores(labels, v0, v1) > 0).astype(np.float64),
            "compat0": (v0 == A).astype(np.int8), "compat1": (v1 == A).astype(np.int8),
            "label12": np.where(labels == A, 1, 2).astype(np.int8),
        })
        specs.update({
            "accuracy_flip": _mean("flip"),
            "accuracy_order0": _mean("expected0"),
            "accuracy_order1": _mean("expected1"),
            "correct_False": _mean("correct0", binary=True),
            "correct_True": _mean("correct1", binary=True),
            "correct_average": _mean("strict"),
            "correct_both": _mean("both", binary=True),
            "positional_agreement": _mean("agree", binary=True),
            "equal": _mean("equal", binary=True),
            "self_consistency": _mean("self_consistent", binary=True),
            "judgebench_accuracy": _mean("judgebench", binary=True),
            "alpha": _stat(_alpha_stat("labels", ("r0", "r1"))),
            "self_consistency_alpha": _stat(_alpha_stat("r0", ("r1",))),
            "cohen_kappa_agreement": _stat(_kappa_stat([("v0", "v1")])),
            "cohen_kappa_average": _stat(_kappa_stat([("v0", "labels"), ("v1", "labels")])),
            # LLMBar's compatibility figures: "1" → 1, anything else → 0, labels kept 1/2 (see llmbar.py)
            "llmbar_kappa_agreement": _stat(_kappa_stat([("compat0", "compat1")], (0, 1))),
            "llmbar_kappa_average": _stat(_kappa_stat([("compat0", "label12"), ("compat1", "label12")], (0, 1, 2))),
        })
    if j.annotators is not None:
        scores = np.atleast_2d(_expected_score(preferences(np.stack(v)), modes(np.asarray(j.annotators))))
        valid = ~np.isnan(scores)
        cols["agreement_num"] = np.where(valid, scores, 0.0).sum(axis=0)
        cols["agreement_den"] = valid.sum(axis=0).astype(np.float64)
        specs["human_agreement"] = _stat(_ratio_stat("agreement_num", "agreement_den"))
    return {name: {**spec, "columns": cols} for name, spec in specs.items()}


# ----------------------------------------------------------------------------- classification
def _confusion_stat(name: str, k: int) -> Statistic:
    metric = _FROM_CONFUSION[name]

    def stat(c: Columns, boot: Bootstrap | None):
        point, samples = confusion(c["y"], c["p"], range(k + 1), boot)   # column k: failures
        return float(metric(point)), (metric(samples) if samples is not None else None)
    return stat


def _auc_stat(c: Columns, boot: Bootstrap | None):
    s, pos = c["score"], c["positive"].astype(bool)
    point = float(_auc_rows(s, pos))
    if boot is None:
        return point, None
    samples = np.empty(boot.n_samples)
    for start in range(0, boot.n_samples, _CHUNK):
        idx = boot.index_block(start, start + _CHUNK)
        samples[start:start + _CHUNK] = _auc_rows(s[idx], pos[idx])
    return point, samples


def _classification(j: ClassificationJudgments) -> dict[str, dict]:
    y, p, classes = encode(j.labels, j.predictions, j.classes)
    k = len(classes)
    cols = {"y": y, "p": p, "correct": (p == y).astype(np.float64)}
    specs = {name: {**spec, "columns": cols} for name, spec in {
        "accuracy": _mean("correct", binary=True),
        "balanced_accuracy": _stat(_confusion_stat("balanced_accuracy", k)),
        "macro_f1": _stat(_confusion_stat("macro_f1", k)),
    }.items()}
    if j.scores is not None and j.positive is not None:
        s = np.asarray(j.scores, dtype=np.float64)
        ok = np.isfinite(s)            # examples without a score are left out, as in the stored AUC
        specs["roc_auc"] = _stat(_auc_stat, rows=np.flatnonzero(ok),
                                 columns={"score": s, "positive": np.array([x == j.positive for x in j.labels])})
    return specs


# ----------------------------------------------------------------------------- pointwise
def _correlation_stat(method: str) -> Statistic:
    def stat(c: Columns, boot: Bootstrap | None):
        point = correlation_point(method, c["human"], c["predicted"])
        return point, (_resampled(method, c["human"], c["predicted"], boot) if boot is not None else None)
    return stat


def _system_means(c: Columns) -> dict[str, np.ndarray]:
    systems, human = system_means(c["human"], c["system"])
    _, predicted = system_means(c["predicted"], c["system"])
    return {"human": human, "predicted": predicted, "system": systems}


def _pointwise(j: PointwiseJudgments) -> dict[str, dict]:
    human, predicted = np.asarray(j.human, dtype=np.float64), np.asarray(j.predicted, dtype=np.float64)
    rows = np.flatnonzero(np.isfinite(human) & np.isfinite(predicted))   # unparsed ratings are left out
    cols = {"human": human, "predicted": predicted}
    specs = {m: _stat(_correlation_stat(m), rows=rows, columns=cols) for m in METHODS}
    if j.systems is not None:
        sys_cols = {**cols, "system": np.asarray(j.systems, dtype=object)}
        specs.update({f"system_{m}": _stat(_correlation_stat(m), rows=rows, columns=sys_cols, units=_system_means)
                      for m in METHODS})
    return specs


# ----------------------------------------------------------------------------- entry points
def decomposable(judgments: Judgments) -> list[str]:
    """The metrics of a run with these judgments that :func:`decompose` can split per example."""
    return sorted(_specs(judgments))


def _specs(j: Judgments) -> dict[str, dict]:
    if isinstance(j, PairwiseJudgments):
        return _pairwise(j)
    if isinstance(j, ClassificationJudgments):
        return _classification(j)
    if isinstance(j, PointwiseJudgments):
        return _pointwise(j)
    raise InvalidInput(f"unknown judgments type {type(j).__name__}", field="judgments")


def decompose(metric: str, judgments: Judgments) -> Decomposition:
    """``metric`` of the run that made ``judgments``, over its examples. A metric without a
    paired test (:func:`untestable_reason`) or one these judgments cannot give is an
    :class:`~registry.errors.InvalidInput` naming the metrics that can."""
    if metric in UNTESTABLE:
        raise InvalidInput(f"{metric} has no paired test: {UNTESTABLE[metric]}", field="metric")
    specs = _specs(judgments)
    if metric not in specs:
        raise InvalidInput(f"{metric!r} cannot be decomposed per example for these judgments; "
                           f"metrics that can: {', '.join(sorted(specs))}", field="metric")
    spec = dict(specs[metric])
    rows = spec.pop("rows", None)
    d = Decomposition(metric=metric, ids=tuple(str(i) for i in judgments.ids), **spec)
    return d.take(rows) if rows is not None else d


def on_shared(a: Decomposition, b: Decomposition) -> tuple[Decomposition, Decomposition]:
    """Both decompositions restricted to the examples both runs judged, in the order of ``a``."""
    if a.metric != b.metric:
        raise InvalidInput(f"cannot pair {a.metric} with {b.metric}; compare one metric", field="metric")
    index_b = {e: j for j, e in enumerate(b.ids)}
    pairs = np.array([(i, index_b[e]) for i, e in enumerate(a.ids) if e in index_b], dtype=np.int64).reshape(-1, 2)
    return a.take(pairs[:, 0]), b.take(pairs[:, 1])


def paired_test(a: Decomposition, b: Decomposition, *, n_boot: int = 1000, seed: int = 0,
                level: float = 0.95, min_shared: int = 2) -> PairedTest | None:
    """Paired bootstrap of a − b for one metric on the examples both runs judged (``None`` when
    they share fewer than ``min_shared``). ``extra`` holds ``test`` (see
    :attr:`Decomposition.test_name`), both values on the shared examples and ``n_shared``."""
    a, b = on_shared(a, b)
    if a.n < min_shared:
        return None
    ca = a.units(a.columns) if a.units else a.columns
    cb = b.units(b.columns) if b.units else b.columns
    n_units = len(next(iter(ca.values())))
    boot = Bootstrap.draw(n_units, n_boot, seed)
    info = {"test": a.test_name, "n_shared": a.n}
    if a.kind == "mean":
        xa, xb = a.values(ca), b.values(cb)
        t = paired_bootstrap(xa, xb, boot=boot, name=a.metric, level=level)
        return replace(t, extra={**t.extra, **info, "value_a": float(xa.mean()), "value_b": float(xb.mean())})
    pa, sa = a.statistic(ca, boot)
    pb, sb = b.statistic(cb, boot)
    t = paired_statistic_bootstrap(pa, sa, pb, sb, n=n_units, name=a.metric, level=level)
    return replace(t, extra={**t.extra, **info})


def mcnemar_test(a: Decomposition, b: Decomposition) -> PairedTest | None:
    """McNemar's test on the shared examples where the metric is a mean of 0/1 correctness
    (``None`` otherwise: per-example credit or a statistic has no 2 × 2 table)."""
    if not (a.binary and b.binary):
        return None
    a, b = on_shared(a, b)
    t = mcnemar(a.values(a.columns) > 0.5, b.values(b.columns) > 0.5)
    return replace(t, name=a.metric, extra={**t.extra, "test": f"mcnemar(per-example {a.metric})"})


def binary_metrics(judgments: Judgments) -> list[str]:
    """The metrics of these judgments that are means of 0/1 correctness (McNemar applies)."""
    return sorted(name for name, spec in _specs(judgments).items() if spec.get("binary"))
