"""Pearson r, Spearman ρ and Kendall τ-b in every bootstrap resample, from multiplicities.

A resample of n examples is a multiset: it only changes how many times each example occurs
(``w``, from the index draw by ``np.bincount``). The data's sort orders do not change, so nothing
is sorted per resample:

- the examples are grouped into **cells**, the distinct (x, y) pairs, sorted by x then y; a
  resample's cell weights ``T`` (B × M) are the bincount of the cells of its drawn indices, so
  one pass over a block of resamples serves the three statistics (:func:`resampled_correlations`);
- **Spearman**: the midrank of x's tie group g in the expanded sample is
  ``C_g + (W_g + 1) / 2`` (``W_g``: the group's weight, ``C_g``: the weight of the groups before
  it), an O(M) cumulative sum over the fixed order; ρ is the weighted Pearson r of the midranks.
  Doubled and centred (``d = 2·C_g + W_g − N``; every resample's midranks average (N + 1) / 2) the
  ranks are integers, so a constant resample gives exactly 0 variance (NaN, as ranking gives);
- **Kendall τ-b**: ``S = Σ_{pairs} w_i w_j sign(x_j − x_i) sign(y_j − y_i)`` over the expanded
  sample, by the binary digits of the dense rank of the variable with fewer distinct values
  (call it b; the other a): a pair whose b ranks differ does so first at one digit l, where they
  share the higher digits and i has 0, j has 1; at level l the cells sorted by (higher digits, a)
  give every j its weighted count of earlier (smaller a) and later (larger a) 0-cells in its
  segment from one cumulative sum. O(M · log₂ K_b) per resample (K_b ≤ 83 distinct human scores in
  the catalog's pointwise sets: ≤ 7 levels), in integers below 2**53, then scipy's formula
  ``S / √(n₀ − n₁) / √(n₀ − n₂)`` with the weighted tie counts: the same float as
  ``scipy.stats.kendalltau`` on the resampled arrays;
- **Pearson**: the weighted moments of the cells (x and y centred on their full-sample means),
  as :func:`registry.domain.metrics.pointwise._weighted_pearson` computes them, NaN where the
  resample's x or y is constant (known exactly from the tie-group weights).

Every statistic equals what the index resampling gives for the same resample, to float rounding
(Kendall exactly), and uses the bootstrap's own index blocks (:meth:`Bootstrap.index_block`), so
a streamed draw is drawn once for all three.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from registry.domain.metrics.bootstrap import Bootstrap

BLOCK = 1 << 19
"""Resamples × cells per block (int32 arrays of this many entries stay in the CPU's caches)."""
BLOCK_INDICES = 1 << 21
"""Resamples × examples per block at most (the drawn indices of a block: 16 MiB)."""


@dataclass(frozen=True, eq=False)
class _Level:
    """One binary digit of Kendall's pair count (module docstring): the cells whose digit is 0 and
    those whose digit is 1, each in the order (higher digits, a), where each 1-cell's run of equal
    (higher digits, a) starts and ends among the 0-cells, and the b ranks of each segment of equal
    higher digits (its per-segment terms come from b's tie-group weights)."""

    zeros: np.ndarray        # (M0,) the 0-cells in order
    ones: np.ndarray         # (M1,) the 1-cells in order
    run_start: np.ndarray    # (M1,) 0-cells before the start of each 1-cell's run
    run_end: np.ndarray | None   # (M1,) 0-cells before the end of its run (None: ``alone``)
    bounds: np.ndarray       # (3, S) each segment's b ranks: from, its first with digit 1, to
    alone: bool              # every 1-cell's run holds no 0-cell (``run_end == run_start``)


def _level(a: np.ndarray, b: np.ndarray, level: int) -> _Level:
    high = b >> (level + 1)
    order = np.lexsort((a, high))
    hs, as_, one = high[order], a[order], ((b[order] >> level) & 1).astype(bool)
    m = len(order)
    new_seg = np.r_[True, hs[1:] != hs[:-1]]
    new_run = new_seg | np.r_[True, as_[1:] != as_[:-1]]
    zeros_before = np.r_[0, np.cumsum(~one)]            # 0-cells before each position (and the end)
    run_id = np.cumsum(new_run) - 1
    starts = np.flatnonzero(new_run)
    ends = np.r_[starts[1:], m]
    kb = int(b.max()) + 1 if m else 0
    lo = np.arange(0, kb, 2 << level)
    bounds = np.minimum(np.stack([lo, lo + (1 << level), lo + (2 << level)]), kb)
    run_start, run_end = zeros_before[starts][run_id[one]], zeros_before[ends][run_id[one]]
    alone = bool(np.array_equal(run_start, run_end))
    small = _index_type(m)   # int32 positions: ~4 arrays of M per level are kept
    return _Level(order[~one].astype(small), order[one].astype(small), run_start.astype(small),
                  None if alone else run_end.astype(small), bounds, alone)


def _index_type(m: int) -> type:
    return np.int32 if m < 2**31 else np.int64


@dataclass(frozen=True, eq=False)
class Cells:
    """The distinct (x, y) pairs of n examples, sorted by x then y (module docstring)."""

    cell: np.ndarray         # (n,) cell of each example (int32 below 2**31 cells)
    gx: np.ndarray           # (M,) dense rank of each cell's x
    gy: np.ndarray           # (M,) dense rank of each cell's y
    x_bounds: np.ndarray     # (kx + 1,) first cell of each x group, then M
    y_order: np.ndarray      # (M,) cells sorted by y
    y_bounds: np.ndarray     # (ky + 1,) first position of each y group in ``y_order``, then M
    moments: np.ndarray      # (M, 5) x, y, x², y², xy of each cell, x and y minus the examples' means
    levels: tuple[_Level, ...]
    b_is_y: bool             # Kendall's digits are y's (fewer distinct values than x), else x's

    @property
    def m(self) -> int:
        return len(self.gx)

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray) -> Cells:
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        ux, rx = np.unique(x, return_inverse=True)
        uy, ry = np.unique(y, return_inverse=True)
        kx, ky = len(ux), len(uy)
        codes, cell = np.unique(rx.astype(np.int64) * max(ky, 1) + ry, return_inverse=True)
        gx, gy = codes // max(ky, 1), codes % max(ky, 1)
        x_bounds = np.searchsorted(gx, np.arange(kx + 1))
        y_order = np.argsort(gy, kind="stable")
        y_bounds = np.searchsorted(gy[y_order], np.arange(ky + 1))
        a, b, kb = (gx, gy, ky) if ky <= kx else (gy, gx, kx)
        levels = tuple(_level(a, b, level) for level in range(max(int(kb - 1).bit_length(), 0)))
        xc, yc = ux[gx] - x.mean(), uy[gy] - y.mean()
        small = _index_type(len(gx))
        return cls(cell.ravel().astype(small), gx.astype(small), gy.astype(small), x_bounds,
                   y_order.astype(small), y_bounds,
                   np.stack([xc, yc, xc * xc, yc * yc, xc * yc], axis=1), levels, ky <= kx)

    def weights(self, idx: np.ndarray) -> np.ndarray:
        """(b, M) occurrences of each cell in each resample of the index block ``idx`` (int32 below
        2**30 examples, else int64)."""
        b, m = idx.shape[0], self.m
        flat = np.take(self.cell, idx).astype(np.int64)
        flat += (np.arange(b, dtype=np.int64) * m)[:, None]
        counts = np.bincount(flat.ravel(), minlength=b * m).reshape(b, m)
        return counts.astype(np.int32) if idx.shape[1] < 2**30 else counts


def _cumsum(t: np.ndarray) -> np.ndarray:
    """(b, k + 1) cumulative sums along the rows of ``t`` (in its dtype: the sums are at most
    2·N, see :meth:`Cells.weights`), with a leading 0 column."""
    out = np.empty((t.shape[0], t.shape[1] + 1), t.dtype)
    out[:, 0] = 0
    np.cumsum(t, axis=1, out=out[:, 1:])
    return out


def _take(a: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``a[:, columns]`` (``numpy.take``: several times faster than fancy indexing of rows' columns)."""
    return np.take(a, columns, axis=1)


def _rows_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b, dtype=np.float64)


def _groups(t: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weight of each tie group, twice its midrank minus N + 1) in every resample: (b, k) int64
    each, from the cell weights ``t`` in group order and the groups' bounds."""
    c = _take(_cumsum(t), bounds).astype(np.int64)
    return np.diff(c, axis=1), c[:, :-1] + c[:, 1:] - c[:, -1:]


def _spearman(t: np.ndarray, cells: Cells, x: tuple, y: tuple, n: int) -> np.ndarray:
    (wx, dx), (wy, dy) = x, y
    sxx, syy = _rows_dot(wx, dx * dx), _rows_dot(wy, dy * dy)
    # Σ_cells t·dx·dy: the cells are sorted by x, so Σ_x-groups dx · (their Σ t·dy), in integers
    sxy = _rows_dot(dx, np.diff(_take(_cumsum(t * _take(dy, cells.gy)), cells.x_bounds), axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = sxy / np.sqrt(sxx * syy)
    return np.where((sxx > 0) & (syy > 0), np.clip(r, -1.0, 1.0), np.nan)


def _kendall(t: np.ndarray, cells: Cells, x: tuple, y: tuple, n: int) -> np.ndarray:
    s = np.zeros(t.shape[0], np.int64)
    below = _cumsum((y if cells.b_is_y else x)[0])     # (b, K_b + 1) weight of b's groups below each
    for lv in cells.levels:
        zeros, ones = _cumsum(_take(t, lv.zeros)), _take(t, lv.ones)
        before = _take(zeros, lv.run_start)
        if lv.alone:
            s += 2 * np.einsum("ij,ij->i", ones, before, dtype=np.int64)
        else:
            s += np.einsum("ij,ij->i", ones, before + _take(zeros, lv.run_end), dtype=np.int64)
        # minus, per segment, its 1-cells' weight × (0-cells before it + 0-cells up to its end),
        # from the weights of b's tie groups (b's rank is its group): no pass over the cells
        lo, mid, hi = (below[:, k] for k in lv.bounds)
        zero_before = _cumsum(mid - lo)
        s -= np.einsum("ij,ij->i", hi - mid, zero_before[:, :-1] + zero_before[:, 1:], dtype=np.int64)
    wx, wy = x[0], y[0]
    tot = n * (n - 1) // 2
    xtie = np.einsum("ij,ij->i", wx, wx - 1, dtype=np.int64) // 2
    ytie = np.einsum("ij,ij->i", wy, wy - 1, dtype=np.int64) // 2
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = s / np.sqrt(tot - xtie) / np.sqrt(tot - ytie)     # as scipy.stats.kendalltau
    return np.where((xtie < tot) & (ytie < tot), np.clip(tau, -1.0, 1.0), np.nan)


def _pearson(t: np.ndarray, cells: Cells, x: tuple, y: tuple, n: int) -> np.ndarray:
    sx, sy, sxx, syy, sxy = (t @ cells.moments).T
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sxy - sx * sy / n
        r = cov / np.sqrt((sxx - sx**2 / n) * (syy - sy**2 / n))
    constant = (x[0].max(axis=1) == n) | (y[0].max(axis=1) == n)
    return np.where(np.isfinite(r) & ~constant, np.clip(r, -1.0, 1.0), np.nan)


_STATISTICS = {"pearson": _pearson, "spearman": _spearman, "kendall": _kendall}


def resampled_correlations(methods: Sequence[str], x: np.ndarray, y: np.ndarray, boot: Bootstrap,
                           cells: Cells | None = None) -> dict[str, np.ndarray]:
    """Each method's correlation in each of the B resamples of (x, y) (no NaN in x or y), in one
    pass over the bootstrap's index blocks."""
    cells = cells or Cells.of(x, y)
    b_total = boot.n_samples
    out = {m: np.empty(b_total) for m in methods}
    rows = max(1, min(BLOCK // max(cells.m, 1), BLOCK_INDICES // max(boot.n, 1)))
    for start in range(0, b_total, rows):
        t = cells.weights(boot.index_block(start, start + rows))
        x_groups = _groups(t, cells.x_bounds)
        y_groups = _groups(_take(t, cells.y_order), cells.y_bounds)
        for m in methods:
            out[m][start:start + len(t)] = _STATISTICS[m](t, cells, x_groups, y_groups, boot.n)
    return out
