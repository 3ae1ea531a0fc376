"""ReIFE analyses (Liu et al. 2024, "ReIFE: Re-evaluating Instruction-Following Evaluation"): how
stable rankings of evaluators are across datasets, and of base LLMs across protocols; which protocol
helps which base LLM.

Everything here starts from per-example values — one row per evaluator, one column per example of
a dataset, NaN where the evaluator did not judge the example (its accuracy is the mean over the
examples it judged, the stored metric) — and resamples *examples*:

* :func:`accuracy_samples` — each evaluator's accuracy on one dataset and in B resamples of its
  examples, by one matrix product with the resample counts (:class:`~registry.domain.metrics.Bootstrap`);
  every evaluator of the dataset sees the same resamples, so differences between them are paired;
* :func:`kendall_tau_b` and :func:`spearman_rho` — rank correlations along the last axis,
  vectorised over any leading axes (the B resamples), equal to ``scipy.stats.kendalltau`` (τ-b) and
  ``scipy.stats.spearmanr`` (average ranks for ties);
* :func:`correlate_rows` — for every pair of rows of a (rows × items) score table (datasets ×
  evaluators, protocols × base LLMs, …) the two correlations over the items both rows score, with
  percentile CIs from the resampled tables;
* :func:`complete_block` — the largest checkpoint × protocol block with a value in every cell (greedy);
* :func:`analyze_protocols` — per (checkpoint, protocol) accuracy, the mean over checkpoints of each
  protocol and over protocols of each checkpoint, paired bootstrap tests against a base protocol
  (per checkpoint and for the mean over checkpoints), each checkpoint's best protocol and whether
  it is the same for every checkpoint (and in what share of the resamples).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from registry.domain.metrics.bootstrap import Bootstrap
from registry.domain.metrics.paired import paired_statistic_bootstrap
from registry.domain.metrics.pointwise import _rowwise_pearson
from registry.domain.metrics.value import percentile_ci
from registry.domain.serialization import Serializable, to_jsonable
from registry.errors import InvalidInput

_CELLS = 1 << 22
"""Most entries of the (chunk, m, m) sign arrays of :func:`kendall_tau_b` at once."""


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def json_safe(data: Any) -> Any:
    """JSON-ready data with NaN/∞ as ``None`` (JSON has no NaN)."""
    data = to_jsonable(data)
    if isinstance(data, float):
        return _finite(data)
    if isinstance(data, dict):
        return {k: json_safe(v) for k, v in data.items()}
    if isinstance(data, list):
        return [json_safe(v) for v in data]
    return data


# ----------------------------------------------------------------------------- accuracies
def accuracy_points(values: np.ndarray) -> np.ndarray:
    """(E, n) per-example values, NaN = not judged → (E,) mean over each row's judged examples."""
    values = np.asarray(values, dtype=np.float64)
    judged = np.isfinite(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(judged, values, 0.0).sum(axis=-1) / judged.sum(axis=-1)


def accuracy_samples(values: np.ndarray, boot: Bootstrap) -> np.ndarray:
    """(E, n) per-example values (NaN = not judged) → (E, B): each row's mean over its judged
    examples in each resample — ``Σ w·x / Σ w·judged`` with the resample counts w, one product for
    the numerators and denominators of every row (NaN where a resample holds none of a row's
    judged examples)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != boot.n:
        raise InvalidInput(f"per-example values of shape {values.shape} for a bootstrap of {boot.n} examples",
                           field="values")
    judged = np.isfinite(values)
    sums = boot.sums(np.concatenate([np.where(judged, values, 0.0), judged.astype(np.float64)]))
    e = values.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums[:e] / sums[e:]


# ----------------------------------------------------------------------------- rank correlations
def kendall_tau_b(x: np.ndarray, y: np.ndarray) -> np.ndarray | float:
    """Kendall's τ-b of x and y along the last axis (any leading axes are independent problems):
    (concordant − discordant) / √((pairs untied in x) · (pairs untied in y)); NaN when either is
    constant, has fewer than two items, or holds a NaN."""
    x, y = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    shape, m = x.shape[:-1], x.shape[-1]
    xs, ys = x.reshape(-1, m), y.reshape(-1, m)
    out = np.empty(len(xs))
    step = max(1, _CELLS // max(m * m, 1))
    for start in range(0, len(xs), step):
        a, b = xs[start:start + step], ys[start:start + step]
        sx = np.sign(a[:, :, None] - a[:, None, :])
        sy = np.sign(b[:, :, None] - b[:, None, :])
        num = (sx * sy).sum(axis=(1, 2))
        den = np.abs(sx).sum(axis=(1, 2)) * np.abs(sy).sum(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            tau = num / np.sqrt(den)
        out[start:start + step] = np.where(np.isfinite(tau), np.clip(tau, -1.0, 1.0), np.nan)
    out = out.reshape(shape)
    return float(out) if out.ndim == 0 else out


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties share the mean rank) along the last axis; a row with a NaN is all NaN."""
    from scipy import stats  # imported here: scipy.stats takes ~0.5 s

    ranks = stats.rankdata(x, method="average", axis=-1)
    return np.where(np.isnan(x).any(axis=-1, keepdims=True), np.nan, ranks)


def spearman_rho(x: np.ndarray, y: np.ndarray) -> np.ndarray | float:
    """Spearman's ρ of x and y along the last axis: Pearson's r of the average ranks; NaN when either
    is constant, has fewer than two items, or holds a NaN."""
    x, y = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    if x.shape[-1] < 2:
        out = np.full(x.shape[:-1], np.nan)
    else:
        out = _rowwise_pearson(_average_ranks(x), _average_ranks(y))
    return float(out) if np.ndim(out) == 0 else out


@dataclass(frozen=True)
class RankCorrelation(Serializable):
    """The rank correlations of two rows' scores over the items both score (e.g. the evaluators'
    accuracies on two datasets), with percentile bootstrap CIs."""

    a: str
    b: str
    items: tuple[str, ...]
    """The items ranked (both rows have a score for each)."""
    kendall: float
    kendall_low: float
    kendall_high: float
    spearman: float
    spearman_low: float
    spearman_high: float
    resamples: int = 0
    """Resamples where both correlations are defined (the CIs' sample)."""

    @property
    def n_items(self) -> int:
        return len(self.items)

    def to_dict(self) -> dict[str, Any]:
        return json_safe({"a": self.a, "b": self.b, "n_items": self.n_items, "kendall": self.kendall,
                       "kendall_ci": [self.kendall_low, self.kendall_high], "spearman": self.spearman,
                       "spearman_ci": [self.spearman_low, self.spearman_high], "resamples": self.resamples,
                       "items": list(self.items)})


def correlate_rows(rows: Sequence[str], items: Sequence[str], scores: np.ndarray,
                   samples: np.ndarray | None = None, *, level: float = 0.95,
                   min_items: int = 2) -> list[RankCorrelation]:
    """Kendall τ-b and Spearman ρ between every pair of ``rows`` (in order: (0, 1), (0, 2), …, (1, 2), …)
    of the (R, I) ``scores`` (NaN: the row has no score for that item), over the items both rows
    score; pairs with fewer than ``min_items`` such items are left out. ``samples`` (R, I, B): the
    scores in B resamples, giving percentile CIs at ``level`` (resamples where a correlation is
    undefined are dropped); without them the CIs are NaN."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(rows), len(items)):
        raise InvalidInput(f"scores of shape {scores.shape} for {len(rows)} rows × {len(items)} items", field="scores")
    if samples is not None:
        samples = np.asarray(samples, dtype=np.float64)
        if samples.shape[:2] != scores.shape:
            raise InvalidInput(f"samples of shape {samples.shape} for scores of shape {scores.shape}",
                               field="samples")
    nan = float("nan")
    out = []
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            common = np.flatnonzero(np.isfinite(scores[i]) & np.isfinite(scores[j]))
            if len(common) < min_items:
                continue
            x, y = scores[i, common], scores[j, common]
            tau, rho = kendall_tau_b(x, y), spearman_rho(x, y)
            lo_t = hi_t = lo_r = hi_r = nan
            kept = 0
            if samples is not None:
                sx, sy = samples[i, common].T, samples[j, common].T     # (B, items)
                taus, rhos = kendall_tau_b(sx, sy), spearman_rho(sx, sy)
                ok = np.isfinite(taus) & np.isfinite(rhos)
                kept = int(ok.sum())
                if kept:
                    lo_t, hi_t = (float(v) for v in percentile_ci(taus[ok], level))
                    lo_r, hi_r = (float(v) for v in percentile_ci(rhos[ok], level))
            out.append(RankCorrelation(rows[i], rows[j], tuple(items[k] for k in common), float(tau), lo_t, hi_t,
                                       float(rho), lo_r, hi_r, kept))
    return out


# ----------------------------------------------------------------------------- the protocol grid
def complete_block(present: np.ndarray, *, keep_col: int | None = None) -> tuple[list[int], list[int]]:
    """(rows, columns) kept of a (checkpoints × protocols) presence table so that every kept cell is
    present: repeatedly drop the row or column with the largest share of missing cells among those
    kept (a column on equal shares; never ``keep_col`` — its missing cells drop rows instead)."""
    present = np.asarray(present, dtype=bool)
    rows, cols = list(range(present.shape[0])), list(range(present.shape[1]))
    while rows and cols:
        block = present[np.ix_(rows, cols)]
        if block.all():
            break
        row_missing = 1.0 - block.mean(axis=1)
        col_missing = 1.0 - block.mean(axis=0)
        if keep_col is not None and keep_col in cols:
            col_missing[cols.index(keep_col)] = -1.0
        r, c = int(np.argmax(row_missing)), int(np.argmax(col_missing))
        if col_missing[c] >= row_missing[r]:
            cols.pop(c)
        else:
            rows.pop(r)
    return rows, cols


def grid_accuracies(values: Sequence[np.ndarray], boots: Sequence[Bootstrap] | None = None
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-dataset (L, P, n_d) per-example values (NaN = not judged) → the (L, P) accuracies
    macro-averaged over the datasets, and with one bootstrap draw per dataset their (L, P, B)
    resampled values (each dataset's examples resampled, the same resamples for every cell)."""
    if not values:
        raise InvalidInput("no dataset to average over", field="datasets")
    shape = values[0].shape[:2]
    point = np.mean([accuracy_points(v) for v in values], axis=0)
    if boots is None:
        return point, None
    samples = np.mean([accuracy_samples(v.reshape(-1, v.shape[-1]), b).reshape(*shape, -1)
                       for v, b in zip(values, boots, strict=True)], axis=0)
    return point, samples


@dataclass(frozen=True)
class VersusBase(Serializable):
    """A paired bootstrap test of an accuracy minus the base protocol's."""

    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    significant: bool

    def to_dict(self) -> dict[str, Any]:
        return json_safe({"difference": self.difference, "ci": [self.ci_low, self.ci_high], "p_value": self.p_value,
                       "significant": self.significant})


@dataclass(frozen=True)
class GridValue(Serializable):
    """An accuracy (one cell, or a mean over checkpoints or protocols), its CI and its test against the base."""

    name: str
    value: float
    ci_low: float
    ci_high: float
    versus_base: VersusBase | None = None
    """``None`` for the base protocol itself (and for the checkpoints' means over protocols)."""

    def to_dict(self) -> dict[str, Any]:
        return json_safe({"name": self.name, "value": self.value, "ci": [self.ci_low, self.ci_high],
                       "versus_base": self.versus_base})


@dataclass(frozen=True)
class BestProtocol(Serializable):
    """One checkpoint's best protocol."""

    checkpoint: str
    protocols: tuple[str, ...]
    """The protocol(s) with the highest accuracy (several on an exact tie)."""
    value: float
    tied: tuple[str, ...]
    """Other protocols that a paired bootstrap test cannot tell from the best (p ≥ α)."""
    share: float
    """Share of the resamples in which ``protocols[0]`` has the highest accuracy (alone or tied)."""

    def to_dict(self) -> dict[str, Any]:
        return json_safe({"checkpoint": self.checkpoint, "best": list(self.protocols), "value": self.value,
                       "tied_with_best": list(self.tied), "resample_share": self.share})


@dataclass(frozen=True)
class ProtocolReport(Serializable):
    """:func:`analyze_protocols`' answer."""

    checkpoints: tuple[str, ...]
    protocols: tuple[str, ...]
    base: str
    cells: tuple[tuple[GridValue, ...], ...]
    """``cells[l][p]``: checkpoint l under protocol p."""
    protocol_means: tuple[GridValue, ...]
    """Each protocol's mean accuracy over the checkpoints, tested against the base's mean."""
    checkpoint_means: tuple[GridValue, ...]
    """Each checkpoint's mean accuracy over the protocols."""
    best: tuple[BestProtocol, ...]
    same_best: bool
    """Whether one protocol is (among) the best for every checkpoint."""
    same_best_share: float
    """Share of the resamples in which one protocol is (among) the best for every checkpoint."""
    alpha: float = 0.05
    level: float = 0.95
    resamples: int = 0

    def cell(self, checkpoint: str, protocol: str) -> GridValue:
        return self.cells[self.checkpoints.index(checkpoint)][self.protocols.index(protocol)]

    def to_dict(self) -> dict[str, Any]:
        return json_safe({"checkpoints": self.checkpoints, "protocols": self.protocols, "base": self.base,
                       "alpha": self.alpha, "ci_level": self.level, "resamples": self.resamples,
                       "cells": [{"checkpoint": c, **v.to_dict(), "protocol": v.name}
                                 for c, row in zip(self.checkpoints, self.cells) for v in row],
                       "protocol_means": self.protocol_means, "checkpoint_means": self.checkpoint_means,
                       "best": self.best, "same_best": self.same_best, "same_best_share": self.same_best_share})


def _versus(value: float, samples: np.ndarray, base: float, base_samples: np.ndarray, *, n: int, alpha: float,
            level: float) -> VersusBase:
    t = paired_statistic_bootstrap(value, samples, base, base_samples, n=n, level=level)
    return VersusBase(t.difference, t.ci_low, t.ci_high, t.p_value, bool(t.p_value < alpha))


def _grid_value(name: str, value: float, samples: np.ndarray, level: float, versus: VersusBase | None) -> GridValue:
    lo, hi = percentile_ci(samples, level)
    return GridValue(name, float(value), float(lo), float(hi), versus)


def analyze_protocols(checkpoints: Sequence[str], protocols: Sequence[str], base: str, point: np.ndarray,
                      samples: np.ndarray, *, n: int, alpha: float = 0.05, level: float = 0.95) -> ProtocolReport:
    """The protocol analysis of a complete (L checkpoints × P protocols) grid of accuracies ``point``
    and their (L, P, B) resampled values ``samples`` (the same B resamples of the ``n`` examples for
    every cell: :func:`grid_accuracies`). Tests are paired bootstraps
    (:func:`~registry.domain.metrics.paired.paired_statistic_bootstrap`) of the difference with the
    base protocol — per checkpoint, and of the means over the checkpoints; a protocol is tied with a
    checkpoint's best when its test against the best has p ≥ ``alpha``."""
    point = np.asarray(point, dtype=np.float64)
    samples = np.asarray(samples, dtype=np.float64)
    L, P = len(checkpoints), len(protocols)
    if point.shape != (L, P) or samples.shape[:2] != (L, P):
        raise InvalidInput(f"accuracies of shape {point.shape} / {samples.shape} for {L} checkpoints × "
                           f"{P} protocols", field="point")
    if base not in protocols:
        raise InvalidInput(f"the base protocol {base!r} is not among the protocols {list(protocols)}", field="base")
    if not np.isfinite(point).all():
        raise InvalidInput("every checkpoint × protocol cell needs an accuracy (complete_block)", field="point")
    b = list(protocols).index(base)
    kw = {"n": n, "alpha": alpha, "level": level}
    cells = tuple(tuple(_grid_value(protocols[p], point[l, p], samples[l, p], level,
                                    None if p == b else _versus(point[l, p], samples[l, p], point[l, b],
                                                                samples[l, b], **kw))
                        for p in range(P)) for l in range(L))
    mean_p, mean_ps = point.mean(axis=0), samples.mean(axis=0)          # (P,), (P, B)
    protocol_means = tuple(_grid_value(protocols[p], mean_p[p], mean_ps[p], level,
                                       None if p == b else _versus(mean_p[p], mean_ps[p], mean_p[b], mean_ps[b], **kw))
                           for p in range(P))
    mean_l, mean_ls = point.mean(axis=1), samples.mean(axis=1)
    checkpoint_means = tuple(_grid_value(checkpoints[l], mean_l[l], mean_ls[l], level, None) for l in range(L))

    finite = np.isfinite(samples).all(axis=(0, 1))
    fin = samples[:, :, finite]
    tops_b = fin == fin.max(axis=1, keepdims=True)            # (L, P, B'): the best protocol(s) in each resample
    best = []
    for l in range(L):
        top = np.flatnonzero(point[l] == point[l].max())
        lead = int(top[0])
        tied = tuple(protocols[p] for p in range(P) if p not in top and
                     paired_statistic_bootstrap(point[l, lead], samples[l, lead], point[l, p], samples[l, p],
                                                n=n, level=level).p_value >= alpha)
        share = float(tops_b[l, lead].mean()) if finite.any() else float("nan")
        best.append(BestProtocol(checkpoints[l], tuple(protocols[p] for p in top), float(point[l, lead]), tied, share))
    tops = [set(bp.protocols) for bp in best]
    same = bool(set.intersection(*tops)) if tops else False
    same_share = float(tops_b.all(axis=0).any(axis=0).mean()) if finite.any() else float("nan")
    return ProtocolReport(tuple(checkpoints), tuple(protocols), base, cells, protocol_means, checkpoint_means,
                          tuple(best), same, same_share, alpha, level, int(samples.shape[2]))


@dataclass(frozen=True)
class RankView(Serializable):
    """One family of rank correlations: rankings of ``items_are`` under every pair of ``rows_are``."""

    name: str
    """``datasets``, ``protocols`` or ``checkpoints``."""
    rows_are: str
    items_are: str
    pairs: tuple[RankCorrelation, ...] = ()
    note: str | None = None
    """Why the view is empty or thin (fewer than two rows, fewer than three items, …)."""
    extra: dict[str, Any] = field(default_factory=dict)

    def matrix(self, rows: Sequence[str], which: str = "kendall") -> list[list[float | None]]:
        """The symmetric (rows × rows) matrix of one correlation (1 on the diagonal, None where no pair)."""
        at = {r: i for i, r in enumerate(rows)}
        out: list[list[float | None]] = [[1.0 if i == j else None for j in range(len(rows))] for i in range(len(rows))]
        for c in self.pairs:
            if c.a in at and c.b in at:
                v = _finite(getattr(c, which))
                out[at[c.a]][at[c.b]] = out[at[c.b]][at[c.a]] = v
        return out

    def mean(self, which: str = "kendall") -> float:
        """The mean of one correlation over the pairs (NaN without pairs)."""
        values = [getattr(c, which) for c in self.pairs if math.isfinite(getattr(c, which))]
        return float(np.mean(values)) if values else float("nan")

    def per_row(self, rows: Sequence[str]) -> list[tuple[str, float, RankCorrelation | None]]:
        """For each row: its mean Kendall τ with the other rows and its least correlated pair."""
        out = []
        for r in rows:
            mine = [c for c in self.pairs if r in (c.a, c.b) and math.isfinite(c.kendall)]
            low = min(mine, key=lambda c: c.kendall) if mine else None
            out.append((r, float(np.mean([c.kendall for c in mine])) if mine else float("nan"), low))
        return out

    def to_dict(self) -> dict[str, Any]:
        return json_safe({"name": self.name, "rows": self.rows_are, "items": self.items_are, "note": self.note,
                          "mean_kendall": self.mean("kendall"), "mean_spearman": self.mean("spearman"),
                          "pairs": self.pairs, **self.extra})
