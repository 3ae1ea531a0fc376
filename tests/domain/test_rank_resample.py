"""Correlations of every bootstrap resample from multiplicities (rank_resample) against index
resampling: the statistic that ranking / scipy computes on the resampled arrays of the same resample."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from registry.domain.metrics import Bootstrap, correlation, correlations
from registry.domain.metrics.bootstrap import KEPT_ENTRIES, LARGE_N
from registry.domain.metrics.pointwise import _resampled, _rowwise_pearson
from registry.domain.metrics.rank_resample import Cells, resampled_correlations
from registry.domain.metrics.value import percentile_ci

METHODS = ["pearson", "spearman", "kendall"]


def _by_index(x: np.ndarray, y: np.ndarray, indices: np.ndarray) -> dict[str, np.ndarray]:
    """The loop: each resample's arrays, ranked (the previous Spearman code: ``rankdata`` of the
    resampled rows, then their Pearson r), scipy's τ-b and Pearson r."""
    out = {m: [] for m in METHODS}
    for idx in indices:
        a, b = x[idx], y[idx]
        out["spearman"].append(_rowwise_pearson(stats.rankdata(a)[None], stats.rankdata(b)[None])[0])
        with np.errstate(all="ignore"), warnings.catch_warnings():   # constant input: NaN
            warnings.simplefilter("ignore")
            out["kendall"].append(stats.kendalltau(a, b).statistic)
            out["pearson"].append(stats.pearsonr(a, b).statistic if len(set(a)) > 1 and len(set(b)) > 1 else np.nan)
    return {m: np.array(v, dtype=float) for m, v in out.items()}


def _data(kind: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if kind == "likert":        # human 1–5, prediction rounded: many ties on both sides
        h = rng.integers(1, 6, n).astype(float)
        return h, (h + rng.normal(scale=1.5, size=n)).round(1)
    if kind == "distinct":      # no ties
        h = rng.normal(size=n)
        return h, h + rng.normal(size=n)
    if kind == "coarse-prediction":   # the prediction has fewer distinct values than the human score
        h = rng.normal(size=n).round(2)
        return h, np.sign(h + rng.normal(size=n))
    if kind == "negative":
        h = rng.integers(0, 40, n).astype(float)
        return h, (-h + rng.normal(scale=8, size=n)).round()
    raise AssertionError(kind)


def _check(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    for m in METHODS:
        assert np.array_equal(np.isnan(got[m]), np.isnan(want[m])), m
        if m == "kendall":   # integer pair counts, then scipy's formula: the same float
            np.testing.assert_array_equal(got[m], want[m])
        else:
            np.testing.assert_allclose(got[m], want[m], rtol=1e-12, atol=1e-14, err_msg=m)


@pytest.mark.parametrize("kind", ["likert", "distinct", "coarse-prediction", "negative"])
@pytest.mark.parametrize("n", [2, 3, 5, 17, 300])
def test_equals_index_resampling(kind, n):
    rng = np.random.default_rng(n)
    x, y = _data(kind, n, rng)
    boot = Bootstrap.draw(n, 200, seed=n)
    got = resampled_correlations(METHODS, x, y, boot)
    _check(got, _by_index(x, y, boot.indices))
    for m in ("spearman", "kendall"):   # the single-method entry point is the same numbers
        np.testing.assert_array_equal(_resampled(m, x, y, boot), got[m])


def test_tiny_resamples_that_are_constant_are_nan():
    x, y = np.array([1.0, 2.0]), np.array([3.0, 5.0])
    boot = Bootstrap.draw(2, 300, seed=1)
    got = resampled_correlations(METHODS, x, y, boot)
    constant = boot.indices.min(axis=1) == boot.indices.max(axis=1)
    assert constant.any() and (~constant).any()
    for m in METHODS:
        assert np.isnan(got[m][constant]).all() and (got[m][~constant] == 1.0).all(), m
    flat = resampled_correlations(METHODS, np.ones(6), np.arange(6.0), Bootstrap.draw(6, 20))
    assert all(np.isnan(v).all() for v in flat.values())


def test_streamed_draw_above_large_n():
    """A draw above LARGE_N examples that is streamed (B × n > KEPT_ENTRIES): the blocks drawn
    again from the seed are the resamples the loop sees."""
    n, b = LARGE_N + 1000, KEPT_ENTRIES // (LARGE_N + 1000) + 2
    rng = np.random.default_rng(7)
    x, y = _data("likert", n, rng)
    boot = Bootstrap.draw(n, b, seed=11)
    assert boot.streamed
    got = resampled_correlations(METHODS, x, y, boot)
    rows = np.concatenate([idx for _, idx in Bootstrap.draw(n, b, seed=11).blocks()])[:: max(1, b // 12)]
    want = _by_index(x, y, rows)
    _check({m: v[:: max(1, b // 12)] for m, v in got.items()}, want)


def test_counts_mode_draw():
    """Counts mode (a uniform draw given partitions, above LARGE_N): its conditional index blocks."""
    n = LARGE_N + 5000
    rng = np.random.default_rng(8)
    x, y = _data("negative", n, rng)
    boot = Bootstrap.draw(n, 12, seed=4).with_classes(rng.integers(0, 3, n))
    assert boot.joint is not None
    _check(resampled_correlations(METHODS, x, y, boot), _by_index(x, y, boot.index_block(0, 12)))


def test_cells_group_the_distinct_pairs():
    x = np.array([3.0, 1.0, 3.0, 2.0, 1.0, 3.0])
    y = np.array([0.0, 5.0, 0.0, 5.0, 4.0, 1.0])
    c = Cells.of(x, y)
    # distinct pairs sorted by x then y: (1,4) (1,5) (2,5) (3,0) (3,1)
    assert c.m == 5 and c.cell.tolist() == [3, 1, 3, 2, 0, 4]
    assert c.x_bounds.tolist() == [0, 2, 3, 5]
    t = c.weights(np.array([[0, 0, 2, 5, 1, 1], [0, 1, 2, 3, 4, 5]]))
    assert t.tolist() == [[0, 2, 0, 3, 1], [1, 1, 1, 2, 1]]


def test_correlations_drop_missing_and_use_one_draw():
    """NaN scores are left out; every method's CI is the percentile CI of the loop's statistics on
    the complete examples."""
    rng = np.random.default_rng(5)
    h, p = _data("likert", 400, rng)
    p[rng.choice(400, 30, replace=False)] = np.nan
    ok = ~np.isnan(p)
    boot = Bootstrap.draw(int(ok.sum()), 150, seed=2)
    got = correlations(h, p, boot=boot)
    want = _by_index(h[ok], p[ok], boot.indices)
    for m in METHODS:
        lo, hi = percentile_ci(want[m], 0.95)
        assert got[m].ci_low == pytest.approx(lo, rel=1e-12) and got[m].ci_high == pytest.approx(hi, rel=1e-12)
        assert got[m].extra["dropped"] == 30 and got[m].n == int(ok.sum())
        one = correlation(h, p, m, boot=boot, name=f"my_{m}")
        assert one.name == f"my_{m}" and (one.ci_low, one.ci_high) == (got[m].ci_low, got[m].ci_high)
