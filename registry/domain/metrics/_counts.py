"""Shared machinery: weighted counts over examples, and the statistics that are functions of them.

Every count-based statistic here is computed from per-example indicator rows. Summing a row
over examples gives the point estimate; multiplying it by the bootstrap weight matrix gives the
same count in every resample, so one code path serves the point value and the bootstrap, for
one run or for many.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from registry.domain.judgments import FAIL
from registry.domain.metrics.bootstrap import Bootstrap
from registry.errors import InvalidInput

VERDICT_VALUES = (FAIL, 0, 1, 2)


def as_codes(x: np.ndarray | Sequence[int], *, field: str, allow_fail: bool = True) -> np.ndarray:
    """Validate integer verdict/label codes (A=0, B=1, tie=2, failure=-1) and return int8."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "iub":
        raise InvalidInput(f"expected integer verdict codes, got dtype {arr.dtype}", field=field,
                           hint="encode with registry.domain.judgments.encode_verdicts")
    arr = arr.astype(np.int8, copy=False)
    low = FAIL if allow_fail else 0
    if arr.size and (arr.min() < low or arr.max() > 2):
        bad = sorted(set(np.unique(arr).tolist()) - set(range(low, 3)))
        raise InvalidInput(f"unknown codes {bad}; allowed {list(range(low, 3))}", field=field)
    return arr


def as_runs(labels: np.ndarray, *verdicts: np.ndarray | None) -> tuple[np.ndarray, list[np.ndarray | None], bool]:
    """Labels (n,) and verdict arrays (n,) or (R, n) → labels, 2-D verdicts, and whether the input was 1-D."""
    labels = as_codes(labels, field="labels", allow_fail=False)
    if labels.ndim != 1:
        raise InvalidInput(f"labels must be 1-D, got shape {labels.shape}", field="labels")
    out: list[np.ndarray | None] = []
    single = None
    for k, v in enumerate(verdicts):
        if v is None:
            out.append(None)
            continue
        v = as_codes(v, field=f"verdicts{k}")
        if single is None:
            single = v.ndim == 1
        v = np.atleast_2d(v)
        if v.ndim != 2 or v.shape[1] != labels.shape[0]:
            raise InvalidInput(f"verdicts of shape {v.shape} do not match {labels.shape[0]} labels", field=f"verdicts{k}")
        out.append(v)
    shapes = {v.shape for v in out if v is not None}
    if len(shapes) > 1:
        raise InvalidInput(f"verdict arrays differ in shape: {sorted(shapes)}", field="verdicts")
    return labels, out, bool(single)


def weighted_sums(rows: np.ndarray, boot: Bootstrap | None, chunk_rows: int = 8192) -> tuple[np.ndarray, np.ndarray | None]:
    """Sums over the last (example) axis: the point value (…,) and, with ``boot``, the B
    resampled sums (…, B) as one matrix product ``rows @ W.T`` (chunked to bound memory)."""
    rows = np.asarray(rows, dtype=np.float64)
    point = rows.sum(axis=-1)
    if boot is None:
        return point, None
    lead, n = rows.shape[:-1], rows.shape[-1]
    flat = rows.reshape(int(np.prod(lead)), n)
    if boot.streamed or boot.classes is not None:  # from class counts, or without the (B, n) matrix: same sums
        return point, boot.row_sums(flat).reshape(*lead, boot.n_samples)
    wt = boot.weights.T
    out = np.empty((flat.shape[0], boot.n_samples))
    for start in range(0, flat.shape[0], chunk_rows):
        np.matmul(flat[start:start + chunk_rows], wt, out=out[start:start + chunk_rows])
    return point, out.reshape(*lead, boot.n_samples)


def kappa_from_confusion(conf: np.ndarray) -> np.ndarray:
    """Cohen's κ from confusion counts of shape (…, K, K), as scikit-learn computes it:
    κ = 1 − Σ_{i≠j} C_ij / Σ_{i≠j} E_ij with E = row ⊗ column / total. NaN when undefined."""
    conf = np.asarray(conf, dtype=np.float64)
    total = conf.sum(axis=(-2, -1))
    rows, cols = conf.sum(axis=-1), conf.sum(axis=-2)
    trace = np.trace(conf, axis1=-2, axis2=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected_off = total - (rows * cols).sum(axis=-1) / total
        return 1.0 - (total - trace) / expected_off


def confusion_rows(a: np.ndarray, b: np.ndarray, categories: Sequence[int]) -> np.ndarray:
    """Indicator rows (K, K, …, n): [a == c_i and b == c_j] for every pair of categories."""
    categories = list(categories) or [0]      # no data at all: one empty category keeps the shapes
    ia = np.stack([a == c for c in categories])
    ib = np.stack([b == c for c in categories])
    return ia[:, None] & ib[None, :]


def confusion(a: np.ndarray, b: np.ndarray, categories: Sequence[int], boot: Bootstrap | None
              ) -> tuple[np.ndarray, np.ndarray | None]:
    """Confusion counts (…, K, K) and, with ``boot``, resampled counts (…, B, K, K)."""
    rows = confusion_rows(a, b, categories)            # (K, K, …, n)
    point, samples = weighted_sums(rows, boot)         # (K, K, …) and (K, K, …, B)
    point = np.moveaxis(point, (0, 1), (-2, -1))
    if samples is not None:
        samples = np.moveaxis(samples, (0, 1), (-2, -1))
    return point, samples


def alpha_two_coders(a: np.ndarray, b: np.ndarray, boot: Bootstrap | None, categories: Sequence[int] = (0, 1, 2)
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """Krippendorff's α (nominal) for two coders per unit, closed form over weighted counts.

    ``a`` and ``b`` broadcast to (…, n); code ``FAIL`` is a missing value, so a unit with one
    missing value is not pairable and drops out (as in ``agreement.krippendorff_alpha_nominal``,
    which this equals with unit weights). With m = 2 values per unit the coincidence matrix gives
    α = 1 − (N − 1) · 2D / (N² − Σ_c N_c²), where N = number of pairable values (2 per unit),
    D = number of disagreeing units and N_c = values in category c.
    """
    a, b = np.broadcast_arrays(a, b)
    valid = (a != FAIL) & (b != FAIL)
    rows = [valid, valid & (a != b)]
    rows += [valid * ((a == c).astype(np.int8) + (b == c)) for c in categories]
    point, samples = weighted_sums(np.stack(rows), boot)

    def alpha(s: np.ndarray) -> np.ndarray:
        units, disagree, per_cat = s[0], s[1], s[2:]
        values = 2.0 * units
        with np.errstate(divide="ignore", invalid="ignore"):
            out = 1.0 - (values - 1.0) * 2.0 * disagree / (values**2 - (per_cat**2).sum(axis=0))
        return np.where(np.isfinite(out), out, np.nan)

    return alpha(point), (alpha(samples) if samples is not None else None)


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with NaN where den == 0."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
