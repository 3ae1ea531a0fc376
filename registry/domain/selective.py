"""Selective evaluation with a guarantee ("Trust or Escalate", Jung, Brahman & Choi 2024): trust a
judge's verdict only where its confidence reaches a threshold λ calibrated so that the accuracy on
the kept examples is at least ``target`` with probability at least 1 − δ; escalate the others to
a more expensive judge and finally to a human.

Pure functions on arrays (no I/O), vectorised with numpy; ``tests/domain/test_selective.py``
checks each against a plain loop.

Confidences (one per example, higher = more trusted; NaN = none, the example is never kept):

* ``prob_a`` — :func:`prob_confidence`: max(p, 1 − p) of the judge's P(A better), averaged over the
  orders that have it; the verdict is A above ½, B below, tie at ½ (as ``accuracy_logprob``);
* ``orders`` / ``samples`` — :func:`vote_confidence`: the share of the example's verdicts (one per
  order, or per order × sample) equal to their strict plurality (both orders agree → 1, disagree
  → ½); the verdict is that plurality; with none (a split vote) the pairwise verdict is ``tie``
  (an inconsistent judge has no preference, as LLMBar's and PandaLM's swap protocols count it)
  and a classification verdict is a failure.

A kept example is right when its verdict equals the human label (a parse failure is wrong).

Calibration (:func:`calibrate`) is fixed-sequence testing over a decreasing grid of thresholds:
the distinct confidences of the calibration examples, from the highest down. For each λ the null
hypothesis is H0(λ): risk(λ) = P(wrong | confidence ≥ λ) > α = 1 − target; its exact binomial
p-value on the n(λ) calibration examples kept with k(λ) errors is P(Binom(n(λ), α) ≤ k(λ)). The
walk stops at the first λ whose p-value exceeds δ; the threshold is the last λ rejected (none:
every example is escalated). Because hypotheses are tested in a fixed order, each at level δ,
P(risk(λ̂) ≤ α) ≥ 1 − δ. The walk starts at the first λ that keeps at least
:func:`min_kept` calibration examples — the fewest with which even zero errors could reject
(⌈log δ / log(1 − α)⌉; 22 at target 0.9, δ 0.1): with a continuous confidence the very top of
the grid keeps one or two examples and would stop every walk at once. The grid and its starting
point depend on the calibration confidences only, never on their labels.

Cascades (:func:`calibrate_cascade`, :func:`apply_cascade`): judges from cheap to expensive, then a
human. Each judge level is calibrated on the calibration examples that reach it (those no earlier
level kept), as in the paper; each of the k judge levels is tested at δ/k (Bonferroni), so all k
levels hold together with probability ≥ 1 − δ, and the kept examples — a mixture of levels each
at accuracy ≥ target — then have accuracy ≥ target. The human is always right and costs no judge
money; an example that reaches a judge costs that judge's seconds and price whether kept or not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

NO_PLURALITY_TIE = 2
"""Pairwise code of ``tie`` (:data:`registry.domain.judgments.VERDICT_CODES`): the verdict of a
split vote between orders or samples."""
FAIL = -1


# ----------------------------------------------------------------------------- confidences
def prob_confidence(prob_a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(verdict codes, confidence) from P(A) per order (shape ``(orders, n)``, NaN where an order has
    none): the confidence is max(p, 1 − p) averaged over the orders with a p (NaN where none); the
    verdict is A (0) where the mean p is above ½, B (1) below, tie (2) at ½, FAIL (−1) where none."""
    p = np.atleast_2d(np.asarray(prob_a, dtype=np.float64))
    ok = np.isfinite(p)
    count = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.where(ok, p, 0.0).sum(axis=0) / count
        conf = np.where(ok, np.maximum(p, 1.0 - p), 0.0).sum(axis=0) / count
    has = count > 0
    verdict = np.where(mean_p > 0.5, 0, np.where(mean_p < 0.5, 1, 2)).astype(np.int64)
    return np.where(has, verdict, FAIL), np.where(has, conf, np.nan)


def vote_confidence(codes: np.ndarray, present: np.ndarray | None = None, *,
                    no_plurality: int = NO_PLURALITY_TIE) -> tuple[np.ndarray, np.ndarray]:
    """(verdict codes, confidence) from votes: ``codes`` of shape ``(m, n)`` (m votes per example:
    orders, or orders × samples; codes ≥ 0 are verdicts, −1 a parse failure), ``present`` marks the
    votes cast (default: all). The verdict is the strict plurality of the parsed votes
    (``no_plurality`` where two verdicts tie for the most votes, FAIL where no vote parsed); the
    confidence is the plurality's share of the votes cast, a failure counted among them (0 where no
    vote parsed, NaN where none was cast)."""
    codes = np.atleast_2d(np.asarray(codes, dtype=np.int64))
    present = np.ones(codes.shape, bool) if present is None else np.atleast_2d(np.asarray(present, bool))
    m, n = codes.shape
    voted = present & (codes >= 0)
    k = int(codes[voted].max()) + 1 if voted.any() else 1
    tally = np.zeros((n, k), dtype=np.int64)
    cols = np.broadcast_to(np.arange(n), (m, n))
    np.add.at(tally, (cols[voted], codes[voted]), 1)
    top = tally.max(axis=1)
    single = (tally == top[:, None]).sum(axis=1) == 1
    verdict = np.where(top == 0, FAIL, np.where(single, tally.argmax(axis=1), no_plurality))
    cast = present.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.where(cast > 0, top / cast, np.nan)
    return verdict.astype(np.int64), conf


# ----------------------------------------------------------------------------- exact binomial
def binomial_p_value(errors, kept, alpha: float) -> np.ndarray:
    """Exact p-value of H0: risk > ``alpha`` given ``errors`` among ``kept`` (P(Binom(kept, α) ≤
    errors)); 1 where nothing is kept. Vectorised."""
    from scipy.stats import binom

    errors, kept = np.asarray(errors, dtype=np.float64), np.asarray(kept, dtype=np.float64)
    return np.where(kept > 0, binom.cdf(errors, np.maximum(kept, 1), alpha), 1.0)


def risk_upper_bound(errors, kept, delta: float) -> np.ndarray:
    """One-sided (1 − δ) Clopper–Pearson upper bound of the risk from ``errors`` among ``kept``
    (1 where nothing is kept or every kept example is wrong). Vectorised."""
    from scipy.stats import beta

    errors, kept = np.asarray(errors, dtype=np.float64), np.asarray(kept, dtype=np.float64)
    inside = (kept > 0) & (errors < kept)
    bound = beta.ppf(1.0 - delta, errors + 1, np.where(inside, kept - errors, 1.0))
    return np.where(inside, bound, 1.0)


def min_kept(target: float, delta: float) -> int:
    """The fewest kept examples with which zero errors reject H0: risk > 1 − target at level δ."""
    alpha = 1.0 - target
    return max(1, math.ceil(math.log(delta) / math.log1p(-alpha)))


def check_levels(target: float, delta: float) -> None:
    """``target`` and ``delta`` must lie strictly between 0 and 1."""
    for name, v in (("target", target), ("delta", delta)):
        if not (isinstance(v, (int, float)) and 0.0 < float(v) < 1.0):
            raise ValueError(f"{name} must lie strictly between 0 and 1, not {v!r}")


# ----------------------------------------------------------------------------- calibration
@dataclass(frozen=True)
class Calibration:
    """A threshold chosen by fixed-sequence testing on calibration examples."""

    threshold: float | None
    """Keep an example whose confidence is ≥ this; ``None``: no threshold meets the target at this δ."""
    target: float
    delta: float
    n: int
    """Calibration examples (with and without a confidence)."""
    kept: int
    """Calibration examples kept at the threshold (0 without one)."""
    errors: int
    p_value: float | None
    """p-value of the last rejected null (at the threshold)."""
    risk_upper: float | None
    """(1 − δ) Clopper–Pearson upper bound of the risk on the kept calibration examples."""
    tested: int
    """Thresholds tested in the walk (the last one not rejected included)."""
    reason: str | None = None
    """Why there is no threshold."""

    def as_dict(self) -> dict:
        return {"threshold": self.threshold, "target": self.target, "delta": self.delta, "n": self.n,
                "kept": self.kept, "errors": self.errors, "p_value": self.p_value, "risk_upper": self.risk_upper,
                "tested": self.tested, "reason": self.reason}


def threshold_grid(conf: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(λ grid, kept n(λ), errors k(λ)): the distinct finite confidences, highest first, with the
    count of examples at or above each and of the wrong ones among them."""
    conf = np.asarray(conf, dtype=np.float64)
    wrong = ~np.asarray(correct, dtype=bool)
    ok = np.isfinite(conf)
    c, w = conf[ok], wrong[ok]
    order = np.argsort(-c, kind="stable")
    c, w = c[order], w[order]
    if not len(c):
        return np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64)
    last = np.flatnonzero(np.r_[c[1:] != c[:-1], True])      # last position of each distinct value
    return c[last], last + 1, np.cumsum(w)[last]


def calibrate(conf: np.ndarray, correct: np.ndarray, *, target: float, delta: float) -> Calibration:
    """The threshold λ̂ such that accuracy on the examples with confidence ≥ λ̂ is ≥ ``target`` with
    probability ≥ 1 − ``delta`` (fixed-sequence testing, exact binomial p-values; module docstring)."""
    check_levels(target, delta)
    conf = np.asarray(conf, dtype=np.float64)
    grid, kept, errors = threshold_grid(conf, correct)
    alpha = 1.0 - target
    start = int(np.searchsorted(kept, min_kept(target, delta)))     # kept is increasing
    p = binomial_p_value(errors[start:], kept[start:], alpha)
    fails = np.flatnonzero(p > delta)
    stop = int(fails[0]) if len(fails) else len(p)
    tested = min(stop + 1, len(p))
    base = {"target": target, "delta": delta, "n": len(conf), "tested": tested}
    if stop == 0:
        if start >= len(grid):
            why = (f"too few calibration examples with a confidence ({int(kept[-1]) if len(kept) else 0}; "
                   f"at least {min_kept(target, delta)} are needed at target {target:g} and δ {delta:.3g})")
        else:
            why = f"no threshold meets the target {target:g} at δ {delta:.3g}"
        return Calibration(threshold=None, kept=0, errors=0, p_value=None, risk_upper=None, reason=why, **base)
    i = start + stop - 1
    return Calibration(threshold=float(grid[i]), kept=int(kept[i]), errors=int(errors[i]), p_value=float(p[stop - 1]),
                       risk_upper=float(risk_upper_bound(errors[i], kept[i], delta)), **base)


@dataclass(frozen=True)
class Selection:
    """A threshold applied to (test) examples."""

    n: int
    kept: int
    coverage: float
    """Share of the examples kept (0 when ``n`` is 0)."""
    accuracy: float | None
    """Accuracy on the kept examples (``None`` when none is kept)."""
    met: bool
    """Accuracy on the kept ≥ target (vacuously true when none is kept)."""

    def as_dict(self) -> dict:
        return {"n": self.n, "kept": self.kept, "coverage": self.coverage, "accuracy": self.accuracy, "met": self.met}


def keep_mask(conf: np.ndarray, threshold: float | None) -> np.ndarray:
    """Examples kept at ``threshold`` (none without one; a NaN confidence is never kept)."""
    conf = np.asarray(conf, dtype=np.float64)
    if threshold is None:
        return np.zeros(conf.shape, bool)
    with np.errstate(invalid="ignore"):
        return np.isfinite(conf) & (conf >= threshold)


def select(conf: np.ndarray, correct: np.ndarray, threshold: float | None, target: float) -> Selection:
    """Coverage and accuracy on the kept examples at ``threshold``."""
    keep = keep_mask(conf, threshold)
    n, kept = len(keep), int(keep.sum())
    acc = float(np.asarray(correct, bool)[keep].mean()) if kept else None
    return Selection(n=n, kept=kept, coverage=kept / n if n else 0.0, accuracy=acc,
                     met=acc is None or acc >= target - 1e-12)


def random_splits(n: int, fraction: float, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` seeded random calibration/test splits of ``n`` examples: (calibration indices
    ``(count, n_cal)``, test indices ``(count, n − n_cal)``), ``n_cal = round(fraction · n)``."""
    n_cal = split_size(n, fraction)
    perm = np.argsort(np.random.default_rng(seed).random((count, n)), axis=1)
    return perm[:, :n_cal], perm[:, n_cal:]


def split_size(n: int, fraction: float) -> int:
    """Calibration examples of a split of ``n`` (at least one on each side; ValueError otherwise)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the calibration fraction must lie strictly between 0 and 1, not {fraction!r}")
    n_cal = int(round(fraction * n))
    if n_cal < 1 or n_cal >= n:
        raise ValueError(f"{n} examples cannot be split {fraction:g} / {1 - fraction:g}")
    return n_cal


# ----------------------------------------------------------------------------- cascades
@dataclass(frozen=True)
class Level:
    """One judge of a cascade on a set of examples (arrays of one length)."""

    name: str
    conf: np.ndarray
    correct: np.ndarray
    costs: Mapping[str, np.ndarray | None] = field(default_factory=dict)
    """Per-example cost by kind (``seconds``, ``usd``, …); ``None``: not known for this judge."""

    def take(self, idx: np.ndarray) -> Level:
        return Level(self.name, np.asarray(self.conf)[idx], np.asarray(self.correct)[idx],
                     {k: None if v is None else np.asarray(v)[idx] for k, v in self.costs.items()})


def calibrate_cascade(levels: Sequence[Level], *, target: float, delta: float) -> list[Calibration]:
    """Each judge level's threshold, calibrated at δ/k on the calibration examples that reach it."""
    reach = np.ones(len(levels[0].conf), bool) if levels else np.zeros(0, bool)
    out = []
    for level in levels:
        cal = calibrate(np.asarray(level.conf)[reach], np.asarray(level.correct)[reach], target=target,
                        delta=delta / len(levels))
        out.append(cal)
        reach = reach & ~keep_mask(level.conf, cal.threshold)
    return out


@dataclass(frozen=True)
class LevelOutcome:
    """What one level of a cascade did on the test examples."""

    name: str
    threshold: float | None
    reached: int
    kept: int
    coverage: float
    """Share of all test examples this level decided."""
    accuracy: float | None
    """Accuracy on the examples this level kept (a human level: 1)."""
    cost_per_1000: dict[str, float | None]
    """This level's cost per 1000 test examples (of the examples that reached it)."""

    def as_dict(self) -> dict:
        return {"name": self.name, "threshold": self.threshold, "reached": self.reached, "kept": self.kept,
                "coverage": self.coverage, "accuracy": self.accuracy, "cost_per_1000": dict(self.cost_per_1000)}


@dataclass(frozen=True)
class CascadeOutcome:
    levels: tuple[LevelOutcome, ...]
    n: int
    judge_coverage: float
    """Share of the test examples decided by a judge (not escalated to the human)."""
    human_fraction: float
    accuracy: float | None
    """Accuracy of the judges' verdicts on the examples they kept (``None``: none kept)."""
    met: bool
    cost_per_1000: dict[str, float | None]
    """The judges' cost per 1000 test examples (``None`` for a kind some reached judge lacks)."""


def apply_cascade(levels: Sequence[Level], thresholds: Sequence[float | None], *, target: float) -> CascadeOutcome:
    """Route each (test) example through the judges in order, then to the human."""
    n = len(levels[0].conf) if levels else 0
    reach = np.ones(n, bool)
    kinds = sorted({k for level in levels for k in level.costs})
    outs, kept_total, right_total = [], 0, 0
    totals: dict[str, float | None] = dict.fromkeys(kinds, 0.0)
    for level, thr in zip(levels, thresholds):
        keep = reach & keep_mask(level.conf, thr)
        k = int(keep.sum())
        right = int(np.asarray(level.correct, bool)[keep].sum())
        cost = {}
        for kind in kinds:
            values = level.costs.get(kind)
            cost[kind] = None if values is None else float(np.asarray(values, float)[reach].sum()) * 1000.0 / max(n, 1)
            if reach.any():
                totals[kind] = None if totals[kind] is None or cost[kind] is None else totals[kind] + cost[kind]
        outs.append(LevelOutcome(name=level.name, threshold=thr, reached=int(reach.sum()), kept=k,
                                 coverage=k / n if n else 0.0, accuracy=right / k if k else None, cost_per_1000=cost))
        kept_total += k
        right_total += right
        reach = reach & ~keep
    human = int(reach.sum())
    outs.append(LevelOutcome(name="human", threshold=None, reached=human, kept=human, coverage=human / n if n else 0.0,
                             accuracy=1.0 if human else None, cost_per_1000=dict.fromkeys(kinds, 0.0)))
    acc = right_total / kept_total if kept_total else None
    return CascadeOutcome(levels=tuple(outs), n=n, judge_coverage=kept_total / n if n else 0.0,
                          human_fraction=human / n if n else 0.0, accuracy=acc,
                          met=acc is None or acc >= target - 1e-12, cost_per_1000=totals)


@dataclass(frozen=True)
class GuaranteeSimulation:
    """A cascade (one judge: a cascade of one) calibrated and tested on many random splits."""

    splits: int
    target: float
    delta: float
    met: float
    """Share of the splits whose test accuracy on the kept examples is ≥ target (the guarantee:
    ≥ 1 − δ)."""
    met_full: float
    """Share of the splits whose thresholds give accuracy ≥ target on the kept examples of the whole
    set — the population the splits are drawn from, which is what the guarantee is about. On a small
    set the test half is no independent sample: a calibration half with few errors leaves the test
    half with more, so :attr:`met` can fall below 1 − δ while this holds."""
    with_threshold: float
    """Share of the splits where some level got a threshold."""
    mean_coverage: float
    """Mean share of the test examples a judge decided (0 for a split without a threshold)."""
    mean_accuracy: float | None
    """Mean test accuracy on the kept, over the splits that kept any."""
    min_accuracy: float | None
    """Lowest test accuracy on the kept over those splits."""

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("splits", "target", "delta", "met", "met_full", "with_threshold",
                                              "mean_coverage", "mean_accuracy", "min_accuracy")}


def simulate(levels: Sequence[Level], *, target: float, delta: float, fraction: float = 0.5, splits: int = 200,
             seed: int = 0) -> GuaranteeSimulation:
    """Calibrate the cascade on each of ``splits`` seeded random splits (:func:`random_splits`) and
    check the test accuracy on the examples the judges kept."""
    cal_idx, test_idx = random_splits(len(levels[0].conf), fraction, splits, seed)
    met, met_full, cov, accs, found = [], [], [], [], []
    for ci, ti in zip(cal_idx, test_idx):
        cal = calibrate_cascade([lv.take(ci) for lv in levels], target=target, delta=delta)
        thresholds = [c.threshold for c in cal]
        out = apply_cascade([lv.take(ti) for lv in levels], thresholds, target=target)
        found.append(any(t is not None for t in thresholds))
        met.append(out.met)
        met_full.append(apply_cascade(levels, thresholds, target=target).met)
        cov.append(out.judge_coverage)
        if out.accuracy is not None:
            accs.append(out.accuracy)
    return GuaranteeSimulation(splits=splits, target=target, delta=delta, met=float(np.mean(met)),
                               met_full=float(np.mean(met_full)), with_threshold=float(np.mean(found)),
                               mean_coverage=float(np.mean(cov)),
                               mean_accuracy=float(np.mean(accs)) if accs else None,
                               min_accuracy=float(np.min(accs)) if accs else None)
