"""A cascade as a stored evaluator (issue 15, item 7): judges from cheap to expensive, each trusted on
an example where its confidence reaches its calibrated threshold, the last one deciding every example
no earlier judge kept — so every example gets a verdict (no human level; compare
:func:`registry.domain.selective.apply_cascade`, whose last level is a human).

Thresholds are *cross-fitted*: the examples are split into ``k`` seeded folds
(:func:`registry.domain.jury.fold_assignment`); each fold's thresholds come from
:func:`registry.domain.selective.calibrate_cascade` on the other ``k − 1`` folds (fixed-sequence
testing with exact binomial p-values, Bonferroni over the gating levels — every level but the last,
whose verdict is taken without a threshold). No example's own label reaches its own routing, so the
stored verdicts are out-of-fold.

Cost: an example pays every level it reached — the first judge's cost is paid by every example, a
later judge's only by the examples escalated to it (:func:`reached_cost`).

Pure functions on arrays; ``tests/domain/test_cascade.py`` checks them against plain loops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from registry.domain import selective as S
from registry.domain.jury import fold_assignment


def route(conf: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """The deciding level of each example: ``conf`` ``(L, n)`` the levels' confidences (NaN: none),
    ``thresholds`` ``(L − 1, n)`` each gating level's threshold for each example (NaN: the level has
    none and keeps nothing). The first level ``l < L − 1`` with ``conf[l] ≥ thresholds[l]``, else
    ``L − 1`` (the last level decides what no earlier one kept)."""
    conf = np.atleast_2d(np.asarray(conf, dtype=np.float64))
    thr = np.asarray(thresholds, dtype=np.float64).reshape(conf.shape[0] - 1, conf.shape[1])
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(conf[:-1]) & np.isfinite(thr) & (conf[:-1] >= thr)
    keep = np.vstack([keep, np.ones((1, conf.shape[1]), bool)])
    return keep.argmax(axis=0).astype(np.int64)


def reached_cost(level: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """Per-example cost of a cascade: ``costs`` ``(L, n)`` (or ``(L, 1)``: one cost per level) summed
    over the levels each example reached, its deciding ``level`` included."""
    level = np.asarray(level, dtype=np.int64)
    costs = np.asarray(costs, dtype=np.float64)
    reached = np.arange(costs.shape[0])[:, None] <= level[None, :]
    return np.where(reached, costs, 0.0).sum(axis=0)


def level_shares(level: np.ndarray, n_levels: int) -> tuple[np.ndarray, np.ndarray]:
    """(share of the examples each level decided, share that reached each level)."""
    level = np.asarray(level, dtype=np.int64)
    n = max(len(level), 1)
    decided = np.bincount(level, minlength=n_levels)[:n_levels] / n
    reached = (level[None, :] >= np.arange(n_levels)[:, None]).sum(axis=1) / n
    return decided, reached


@dataclass(frozen=True)
class CrossFitCascade:
    """A cascade's out-of-fold routing."""

    folds: np.ndarray
    """(n,) the fold of each example."""
    calibrations: tuple[tuple[S.Calibration, ...], ...]
    """Per fold, per gating level: the calibration on the other folds."""
    thresholds: np.ndarray
    """(k, L − 1) each fold's thresholds (NaN: none met the target)."""
    level: np.ndarray
    """(n,) the deciding level of each example."""


def cross_fit_cascade(conf: np.ndarray, correct: np.ndarray, *, target: float, delta: float, folds: int = 5,
                      seed: int = 0) -> CrossFitCascade:
    """Cross-fitted thresholds and routing (module docstring): ``conf`` and ``correct`` ``(L, n)``,
    the levels' confidences and whether each level's verdict is right, L ≥ 2."""
    conf = np.asarray(conf, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    n_levels, n = conf.shape
    if n_levels < 2:
        raise ValueError(f"a cascade needs at least two levels, got {n_levels}")
    fold = fold_assignment(n, folds, seed)
    thresholds = np.full((folds, n_levels - 1), np.nan)
    cals = []
    for f in range(folds):
        train = fold != f
        levels = [S.Level(str(lv), conf[lv, train], correct[lv, train]) for lv in range(n_levels - 1)]
        cal = S.calibrate_cascade(levels, target=target, delta=delta)
        thresholds[f] = [np.nan if c.threshold is None else c.threshold for c in cal]
        cals.append(tuple(cal))
    return CrossFitCascade(folds=fold, calibrations=tuple(cals), thresholds=thresholds,
                           level=route(conf, thresholds[fold].T))
