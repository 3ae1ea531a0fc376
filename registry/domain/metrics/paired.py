"""Comparing two runs on the same examples: paired bootstrap and McNemar's test."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import stats

from registry.domain.metrics.bootstrap import Bootstrap, ensure_bootstrap
from registry.domain.metrics.value import percentile_ci
from registry.errors import InvalidInput


@dataclass(frozen=True)
class PairedTest:
    """Difference a − b of one statistic between two runs on shared examples, and its test."""

    name: str
    difference: float
    """Point estimate of mean(a) − mean(b)."""
    ci_low: float
    ci_high: float
    p_value: float
    """Two-sided p-value of "no difference"."""
    n: int
    method: str
    """``paired_bootstrap``, ``mcnemar_exact`` or ``mcnemar_chi2``."""
    statistic: float = float("nan")
    extra: dict[str, Any] = field(default_factory=dict, hash=False)


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise InvalidInput(f"paired values must be 1-D of one length; got {a.shape} and {b.shape}", field="b",
                           hint="align both runs on the shared example ids first")
    return a, b


def paired_bootstrap(a: np.ndarray, b: np.ndarray, *, boot: Bootstrap | None = None,
                     name: str = "difference", level: float = 0.95) -> PairedTest:
    """Paired bootstrap of mean(a) − mean(b) for per-example values (e.g. correctness or credit)
    of two runs on the same examples, resampling examples jointly.

    CI: percentile interval of the resampled differences. p-value: the resampled differences are
    shifted to the null (centred on 0) and p = (1 + #{|δ* − δ̂| ≥ |δ̂|}) / (B + 1), so identical
    runs give 1 and the smallest possible value is 1/(B+1)."""
    a, b = _pair(a, b)
    boot = ensure_bootstrap(boot, len(a))
    d = a - b
    diff = float(d.mean()) if len(d) else float("nan")
    samples = boot.means(d)
    lo, hi = percentile_ci(samples, level)
    p = (1 + np.count_nonzero(np.abs(samples - diff) >= abs(diff) - 1e-12)) / (boot.n_samples + 1)
    return PairedTest(name, diff, float(lo), float(hi), float(min(p, 1.0)), len(a), "paired_bootstrap",
                      extra={"bootstrap_samples": boot.n_samples, "ci_level": level})


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray, *,
            method: Literal["auto", "exact", "chi2"] = "auto", level: float = 0.95) -> PairedTest:
    """McNemar's test on per-example correctness of two runs.

    With b = examples only run a gets right and c = only run b: ``exact`` is the two-sided binomial
    test of b among b + c at ½ (``scipy.stats.binomtest``); ``chi2`` the continuity-corrected
    χ² = (|b − c| − 1)² / (b + c) with 1 degree of freedom; ``auto`` uses exact when b + c < 25.
    The difference is the accuracy difference (b − c)/n with a Wald interval for paired
    proportions."""
    a, bb = _pair(correct_a, correct_b)
    a, bb = a.astype(bool), bb.astype(bool)
    n = len(a)
    b = int((a & ~bb).sum())
    c = int((~a & bb).sum())
    disc = b + c
    if method == "auto":
        method = "exact" if disc < 25 else "chi2"
    if method not in ("exact", "chi2"):
        raise InvalidInput(f"unknown McNemar method {method!r}; use 'auto', 'exact' or 'chi2'", field="method")
    if disc == 0:
        stat, p = 0.0, 1.0
    elif method == "exact":
        stat, p = float(min(b, c)), float(stats.binomtest(b, disc, 0.5).pvalue)
    else:
        stat = (abs(b - c) - 1.0) ** 2 / disc
        p = float(stats.chi2.sf(stat, 1))
    diff = (b - c) / n if n else float("nan")
    z = stats.norm.ppf(0.5 + level / 2)
    se = np.sqrt(max(disc - (b - c) ** 2 / n, 0.0)) / n if n else float("nan")
    return PairedTest("accuracy_difference", diff, diff - z * se, diff + z * se, min(p, 1.0), n,
                      f"mcnemar_{method}", stat, extra={"only_a": b, "only_b": c, "ci_level": level})
