"""Pointwise meta-evaluation: correlation of evaluator scores with human scores.

Example level: Pearson r, Spearman ρ and Kendall τ-b (``scipy.stats``) over all examples with
both scores (a NaN prediction — a parse failure — is left out and counted).
System level (SummEval-style, Fabbri et al., 2021): the same correlations between per-system
means of the human and the predicted scores.

Bootstrap CIs (example level): the three from one pass over the resamples' multiplicities
(:mod:`registry.domain.metrics.rank_resample`: Pearson r from weighted moments, Spearman from the
weighted midranks over the data's fixed sort order, Kendall τ-b from weighted pair counts — the
statistic of each resample as index resampling gives it, without sorting any resample). System
level: Pearson from resampled weighted moments (``x @ W.T``), Spearman and Kendall as at example level.
At system level ``resample`` says what varies: ``"systems"`` (default) resamples the systems
with their means fixed — the uncertainty of generalising to other systems; ``"examples"``
resamples examples within each system (stratified) and recomputes the means — the uncertainty
from the finite test inputs. Deutsch et al. (2021) discuss both.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np

from registry.domain.metrics._counts import weighted_sums
from registry.domain.metrics.bootstrap import DEFAULT_SAMPLES, DEFAULT_SEED, Bootstrap, ensure_bootstrap
from registry.domain.metrics.rank_resample import resampled_correlations
from registry.domain.metrics.value import MetricValue, from_samples
from registry.errors import InvalidInput

CorrelationMethod = Literal["pearson", "spearman", "kendall"]
METHODS: tuple[CorrelationMethod, ...] = ("pearson", "spearman", "kendall")


def _check(methods: Sequence[str]) -> None:
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise InvalidInput(f"unknown correlation {unknown[0]!r}; use one of {list(METHODS)}", field="method")


def correlation_point(method: CorrelationMethod, x: np.ndarray, y: np.ndarray) -> float:
    """The correlation of ``x`` and ``y`` without a CI (Spearman with average ranks for ties, Kendall
    τ-b); NaN for fewer than two pairs or constant input."""
    from scipy import stats  # imported here: scipy.stats takes ~0.5 s, and the CLI's light commands skip it

    _check([method])
    if len(x) < 2:
        return float("nan")
    with warnings.catch_warnings():  # constant input: scipy warns and returns NaN, which we keep
        warnings.simplefilter("ignore")
        if method == "pearson":
            return float(stats.pearsonr(x, y).statistic)
        if method == "spearman":
            return float(stats.spearmanr(x, y).statistic)
        return float(stats.kendalltau(x, y).statistic)       # τ-b


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(-1) / np.sqrt((xc**2).sum(-1) * (yc**2).sum(-1))
    return np.where(np.isfinite(r), np.clip(r, -1.0, 1.0), np.nan)


def _weighted_pearson(x: np.ndarray, y: np.ndarray, boot: Bootstrap) -> np.ndarray:
    """Pearson r in every resample from weighted moments (exactly index resampling)."""
    x = x - x.mean()
    y = y - y.mean()
    _, s = weighted_sums(np.stack([np.ones_like(x), x, y, x * x, y * y, x * y]), boot)
    w, sx, sy, sxx, syy, sxy = s
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sxy - sx * sy / w
        r = cov / np.sqrt((sxx - sx**2 / w) * (syy - sy**2 / w))
    return np.where(np.isfinite(r), np.clip(r, -1.0, 1.0), np.nan)


def _resampled(method: CorrelationMethod, x: np.ndarray, y: np.ndarray, boot: Bootstrap) -> np.ndarray:
    """The correlation in each of the B resamples of (x, y) (Pearson from ``x @ W.T``; Spearman and
    Kendall from the resamples' multiplicities, :func:`resampled_correlations`)."""
    if method == "pearson":
        return _weighted_pearson(x, y, boot)
    return resampled_correlations([method], x, y, boot)[method]


def _complete(human: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h = np.asarray(human, dtype=float)
    p = np.asarray(predicted, dtype=float)
    if h.shape != p.shape or h.ndim != 1:
        raise InvalidInput(f"human and predicted scores must be 1-D of one length; got {h.shape} and {p.shape}",
                           field="predicted")
    ok = ~(np.isnan(h) | np.isnan(p))
    return h[ok], p[ok], ok


def correlation(human: np.ndarray, predicted: np.ndarray, method: CorrelationMethod = "pearson",
                *, boot: Bootstrap | None = None, name: str | None = None) -> MetricValue:
    """Example-level correlation with a bootstrap CI. ``boot`` must be drawn for the examples
    with both scores (or left out)."""
    return _example_level(human, predicted, [method], boot, {method: name or method})[method]


def correlations(human: np.ndarray, predicted: np.ndarray, *, boot: Bootstrap | None = None,
                 methods: Sequence[CorrelationMethod] = METHODS) -> dict[str, MetricValue]:
    """Example-level Pearson, Spearman and Kendall τ-b, sharing one bootstrap draw (one pass over
    its resamples for all of them)."""
    return _example_level(human, predicted, list(methods), boot, {m: m for m in methods})


def _example_level(human: np.ndarray, predicted: np.ndarray, methods: list[CorrelationMethod],
                   boot: Bootstrap | None, names: dict[str, str]) -> dict[str, MetricValue]:
    _check(methods)
    h, p, ok = _complete(human, predicted)
    boot = ensure_bootstrap(boot, len(h))
    samples = resampled_correlations(methods, h, p, boot) if len(h) >= 2 else {}
    extra = {"level": "example", "dropped": int((~ok).sum())}
    return {m: from_samples(names[m], correlation_point(m, h, p), samples.get(m), len(h), extra=extra)
            for m in methods}


def system_means(values: np.ndarray, system_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(systems, per-system mean) ignoring NaN values."""
    values = np.asarray(values, dtype=float)
    systems, inverse = np.unique(np.asarray(system_ids), return_inverse=True)
    ok = ~np.isnan(values)
    sums = np.bincount(inverse[ok], weights=values[ok], minlength=len(systems))
    counts = np.bincount(inverse[ok], minlength=len(systems))
    with np.errstate(invalid="ignore", divide="ignore"):
        return systems, sums / counts


def system_level_correlations(human: np.ndarray, predicted: np.ndarray, system_ids: np.ndarray, *,
                              methods: Sequence[CorrelationMethod] = METHODS,
                              resample: Literal["systems", "examples"] = "systems",
                              n_samples: int = DEFAULT_SAMPLES, seed: int | None = DEFAULT_SEED
                              ) -> dict[str, MetricValue]:
    """Correlations between per-system mean human and predicted scores (examples with both
    scores), named ``system_<method>``, with a bootstrap CI over ``resample`` (module docstring)."""
    from scipy import stats

    _check(methods)
    h, p, ok = _complete(human, predicted)
    sys_ids = np.asarray(system_ids)[ok]
    systems, inverse = np.unique(sys_ids, return_inverse=True)
    _, hs = system_means(h, sys_ids)
    _, ps = system_means(p, sys_ids)
    extra = {"level": "system", "systems": len(systems), "resample": resample, "examples": len(h)}
    out = {}
    if resample == "systems":
        boot = Bootstrap.draw(len(systems), n_samples, seed)
        for m in methods:
            samples = _resampled(m, hs, ps, boot) if len(systems) >= 2 else None
            out[m] = from_samples(f"system_{m}", correlation_point(m, hs, ps), samples, len(systems), extra=extra)
        return out
    if resample != "examples":
        raise InvalidInput(f"unknown resampling unit {resample!r}; use 'systems' or 'examples'", field="resample")
    boot = Bootstrap.draw_stratified(inverse, n_samples, seed)
    member = (inverse[None, :] == np.arange(len(systems))[:, None]).astype(float)   # (S, n)
    w = boot.weights
    counts = w @ member.T                                                            # (B, S)
    hb, pb = (w * h) @ member.T / counts, (w * p) @ member.T / counts
    for m in methods:
        if m == "pearson":
            samples = _rowwise_pearson(hb, pb)
        elif m == "spearman":
            samples = _rowwise_pearson(stats.rankdata(hb, axis=1), stats.rankdata(pb, axis=1))
        else:   # the resamples' system means differ: no fixed order to count over
            samples = np.array([correlation_point("kendall", a, b) for a, b in zip(hb, pb)])
        out[m] = from_samples(f"system_{m}", correlation_point(m, hs, ps), samples, len(systems), extra=extra)
    return out
