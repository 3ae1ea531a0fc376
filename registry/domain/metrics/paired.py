"""Comparing two runs on the same examples: paired bootstrap and McNemar's test."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

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
    return _from_resampled(name, diff, boot.means(d), len(a), level)


def paired_statistic_bootstrap(value_a: float, samples_a: np.ndarray, value_b: float, samples_b: np.ndarray,
                               *, n: int, name: str = "difference", level: float = 0.95) -> PairedTest:
    """Paired bootstrap of a statistic that is not a mean (κ, α, F1, AUC, a correlation): the
    statistic of each run recomputed on the *same* B resamples of the shared examples
    (``samples_a[k]`` and ``samples_b[k]`` come from resample k). CI and p-value as in
    :func:`paired_bootstrap`; resamples where either statistic is undefined (NaN, e.g. a single
    class) are dropped and counted in ``extra["undefined_resamples"]``. ``extra`` also holds
    both point values (``value_a``, ``value_b``)."""
    sa, sb = np.asarray(samples_a, dtype=np.float64), np.asarray(samples_b, dtype=np.float64)
    if sa.shape != sb.shape or sa.ndim != 1:
        raise InvalidInput(f"resampled statistics must be 1-D of one length; got {sa.shape} and {sb.shape}",
                           field="samples_b", hint="recompute both runs on one bootstrap draw")
    d = sa - sb
    finite = d[np.isfinite(d)]
    diff = float(value_a) - float(value_b)
    extra = {"value_a": float(value_a), "value_b": float(value_b), "undefined_resamples": int(len(d) - len(finite))}
    return _from_resampled(name, diff, finite, n, level, extra)


def _from_resampled(name: str, diff: float, samples: np.ndarray, n: int, level: float,
                    extra: dict[str, Any] | None = None) -> PairedTest:
    """The paired-bootstrap test from the point difference and its B resampled differences."""
    extra = {"bootstrap_samples": int(len(samples)), "ci_level": level, **(extra or {})}
    if not np.isfinite(diff) or len(samples) == 0:
        nan = float("nan")
        return PairedTest(name, diff if np.isfinite(diff) else nan, nan, nan, nan, n, "paired_bootstrap", extra=extra)
    lo, hi = percentile_ci(samples, level)
    p = (1 + np.count_nonzero(np.abs(samples - diff) >= abs(diff) - 1e-12)) / (len(samples) + 1)
    return PairedTest(name, diff, float(lo), float(hi), float(min(p, 1.0)), n, "paired_bootstrap", extra=extra)


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray, *,
            method: Literal["auto", "exact", "chi2"] = "auto", level: float = 0.95) -> PairedTest:
    """McNemar's test on per-example correctness of two runs.

    With b = examples only run a gets right and c = only run b: ``exact`` is the two-sided binomial
    test of b among b + c at ½ (``scipy.stats.binomtest``); ``chi2`` the continuity-corrected
    χ² = (|b − c| − 1)² / (b + c) with 1 degree of freedom; ``auto`` uses exact when b + c < 25.
    The difference is the accuracy difference (b − c)/n with a Wald interval for paired
    proportions."""
    from scipy import stats  # imported here: scipy.stats takes ~0.5 s, and the CLI's light commands skip it

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
