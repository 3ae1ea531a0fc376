"""Agreement statistics between annotators (and, later, between evaluators and humans).

Krippendorff's α (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability") for units
with any number of values each: nominal (labels) and interval (scores). Units with fewer than
two values are not pairable and are dropped, as in the reference definition.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def krippendorff_alpha_nominal(units: Sequence[Sequence[object]]) -> float | None:
    """α for nominal values; ``units`` holds each unit's values (annotators). ``None`` when
    undefined (no pairable unit or a single category overall)."""
    units = [list(u) for u in units if u is not None and len(u) >= 2]
    if not units:
        return None
    cats = sorted({v for u in units for v in u}, key=str)
    if len(cats) < 2:
        return None
    index = {c: i for i, c in enumerate(cats)}
    counts = np.zeros((len(units), len(cats)))
    for r, u in enumerate(units):
        for v in u:
            counts[r, index[v]] += 1
    return alpha_nominal_from_counts(counts)


def alpha_nominal_from_counts(counts: np.ndarray) -> float | None:
    """Nominal α from a per-unit count matrix ``counts[unit, category]`` (units with ≥ 2 values)."""
    if counts.ndim != 2 or counts.shape[1] < 2 or not len(counts):
        return None
    m = counts.sum(axis=1)
    w = 1.0 / (m - 1.0)
    # coincidence matrix o_ck = Σ_u (n_uc n_uk − δ_ck n_uc) / (m_u − 1)
    o = (counts * w[:, None]).T @ counts - np.diag((counts * w[:, None]).sum(axis=0))
    n_c = o.sum(axis=1)
    n = n_c.sum()
    disagree_obs = o.sum() - np.trace(o)
    disagree_exp = (n_c.sum() ** 2 - (n_c**2).sum()) / (n - 1.0)
    return float(1.0 - disagree_obs / disagree_exp)


def pairwise_agreement_from_counts(counts: np.ndarray) -> float | None:
    """Mean share of agreeing annotator pairs from a per-unit count matrix."""
    if not len(counts):
        return None
    lengths = counts.sum(axis=1)
    agree = (counts * (counts - 1.0)).sum(axis=1) / 2.0
    return float(np.mean(agree / (lengths * (lengths - 1.0) / 2.0)))


def krippendorff_alpha_interval(units: Sequence[Sequence[float]]) -> float | None:
    """α for interval values (squared-difference metric), computed in closed form."""
    units = [np.asarray(u, dtype=float) for u in units if u is not None and len(u) >= 2]
    if not units:
        return None
    m = np.array([len(u) for u in units], dtype=float)
    s1 = np.array([u.sum() for u in units])
    s2 = np.array([(u**2).sum() for u in units])
    n = m.sum()
    # observed: Σ_u Σ_{i≠j} (v_i − v_j)² / (m_u − 1), normalised by n
    d_obs = (2.0 * (m * s2 - s1**2) / (m - 1.0)).sum() / n
    # expected: mean squared difference over all pairs of pairable values
    d_exp = 2.0 * (n * s2.sum() - s1.sum() ** 2) / (n * (n - 1.0))
    if d_exp == 0:
        return None
    return float(1.0 - d_obs / d_exp)


def mean_pairwise_agreement(units: Sequence[Sequence[object]]) -> float | None:
    """Share of agreeing annotator pairs, averaged over units with ≥ 2 values."""
    scores = []
    for u in units:
        if u is None or len(u) < 2:
            continue
        vals = list(u)
        pairs = agree = 0
        for i in range(len(vals)):
            for j in range(i + 1, len(vals)):
                pairs += 1
                agree += vals[i] == vals[j]
        scores.append(agree / pairs)
    return float(np.mean(scores)) if scores else None
