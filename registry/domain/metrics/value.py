"""Metric values: a named number with its bootstrap confidence interval, sample size and slice.

``MetricValue`` is what the engine stores for one run; ``MetricArray`` holds the same metric
for many runs at once (the output of the vectorized ``*_many`` functions).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ALL = "all"
"""Slice name of the whole dataset; a category slice reads ``"category=natural"``."""


@dataclass(frozen=True)
class MetricValue:
    """One metric of one run on one slice."""

    name: str
    """Metric name, e.g. ``"accuracy"`` or ``"cohen_kappa_agreement"``."""
    value: float
    """Point estimate on the full sample (NaN when undefined, e.g. κ with a single class)."""
    ci_low: float
    """Lower end of the bootstrap percentile interval (NaN when no interval was computed)."""
    ci_high: float
    """Upper end of the bootstrap percentile interval."""
    n: int
    """Number of examples (units) the value is computed on."""
    slice: str = ALL
    """``"all"`` or ``"<field>=<value>"``."""
    extra: dict[str, Any] = field(default_factory=dict, hash=False)
    """Side facts: counts of ties and parse failures, the confidence level, the resampling unit…"""

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (NaN becomes None)."""
        def clean(x: float) -> float | None:
            return None if x is None or not np.isfinite(x) else float(x)
        return {"name": self.name, "value": clean(self.value), "ci_low": clean(self.ci_low),
                "ci_high": clean(self.ci_high), "n": int(self.n), "slice": self.slice, "extra": dict(self.extra)}


@dataclass(frozen=True)
class MetricArray:
    """The same metric for R runs on the same examples (vectorized API output)."""

    name: str
    values: np.ndarray
    """Point estimates, shape (R,)."""
    ci_low: np.ndarray
    """Shape (R,)."""
    ci_high: np.ndarray
    """Shape (R,)."""
    n: int
    slice: str = ALL
    extra: dict[str, Any] = field(default_factory=dict, hash=False)
    """Per-run side facts are arrays of shape (R,)."""

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, r: int) -> MetricValue:
        extra = {k: (v[r].item() if isinstance(v, np.ndarray) and v.ndim == 1 and len(v) == len(self) else v)
                 for k, v in self.extra.items()}
        return MetricValue(self.name, float(self.values[r]), float(self.ci_low[r]), float(self.ci_high[r]),
                           self.n, self.slice, extra)

    def to_values(self) -> list[MetricValue]:
        """One ``MetricValue`` per run."""
        return [self[r] for r in range(len(self))]


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over the last axis (NaN samples — undefined statistics — are ignored)."""
    samples = np.asarray(samples, dtype=float)
    q = [50.0 * (1.0 - level), 50.0 * (1.0 + level)]
    if np.isnan(samples).any():
        with warnings.catch_warnings():  # all-NaN rows give NaN, which is the right answer
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanpercentile(samples, q, axis=-1)
    else:
        lo, hi = np.percentile(samples, q, axis=-1)
    return lo, hi


def from_samples(name: str, value: float, samples: np.ndarray | None, n: int, *, slice: str = ALL,
                 level: float = 0.95, extra: dict[str, Any] | None = None) -> MetricValue:
    """``MetricValue`` from a point estimate and its bootstrap samples (1-D)."""
    extra = dict(extra or {})
    if samples is None:
        return MetricValue(name, float(value), float("nan"), float("nan"), int(n), slice, extra)
    lo, hi = percentile_ci(samples, level)
    extra.setdefault("ci_level", level)
    extra.setdefault("bootstrap_samples", int(np.shape(samples)[-1]))
    return MetricValue(name, float(value), float(lo), float(hi), int(n), slice, extra)


def array_from_samples(name: str, values: np.ndarray, samples: np.ndarray, n: int, *, slice: str = ALL,
                       level: float = 0.95, extra: dict[str, Any] | None = None) -> MetricArray:
    """``MetricArray`` from R point estimates and an (R, B) matrix of bootstrap samples."""
    lo, hi = percentile_ci(samples, level)
    extra = dict(extra or {})
    extra.setdefault("ci_level", level)
    extra.setdefault("bootstrap_samples", int(samples.shape[-1]))
    return MetricArray(name, np.asarray(values, dtype=float), np.atleast_1d(lo), np.atleast_1d(hi), int(n),
                       slice, extra)
