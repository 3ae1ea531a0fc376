"""Bootstrap machinery: the weight matrix, seeded draws, percentile intervals, value objects."""

from __future__ import annotations

import numpy as np
import pytest

from registry.domain.metrics import Bootstrap, MetricArray, MetricValue, accuracy
from registry.domain.metrics.value import array_from_samples, from_samples, percentile_ci
from registry.errors import InvalidInput


def test_weights_count_the_drawn_indices():
    boot = Bootstrap.draw(50, 200, seed=3)
    w = boot.weights
    assert w.shape == (200, 50)
    assert np.all(w.sum(axis=1) == 50)
    for b in (0, 17, 199):
        assert np.array_equal(w[b], np.bincount(boot.indices[b], minlength=50))


def test_means_by_matrix_product_equal_index_resampling_for_many_runs():
    rng = np.random.default_rng(0)
    x = rng.random((7, 40))                         # 7 runs on the same 40 examples
    boot = Bootstrap.draw(40, 300, seed=1)
    fast = boot.means(x)                            # x @ W.T / n
    slow = np.array([[row[idx].mean() for idx in boot.indices] for row in x])
    assert fast.shape == (7, 300)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)


def test_draws_are_seeded():
    a, b, c = Bootstrap.draw(30, 10, seed=5), Bootstrap.draw(30, 10, seed=5), Bootstrap.draw(30, 10, seed=6)
    assert np.array_equal(a.indices, b.indices)
    assert not np.array_equal(a.indices, c.indices)
    assert a.n == 30 and a.n_samples == 10 and a.seed == 5


def test_stratified_draw_keeps_group_sizes():
    groups = np.array([0] * 5 + [1] * 3 + [2] * 2)
    boot = Bootstrap.draw_stratified(groups, 100, seed=0)
    for g, size in ((0, 5), (1, 3), (2, 2)):
        assert np.all(boot.weights[:, groups == g].sum(axis=1) == size)


def test_percentile_interval_matches_numpy_and_ignores_nan():
    s = np.arange(1001, dtype=float)
    lo, hi = percentile_ci(s)
    assert (lo, hi) == pytest.approx((25.0, 975.0))
    lo2, hi2 = percentile_ci(np.append(s, np.nan))
    assert (lo2, hi2) == pytest.approx((25.0, 975.0))


def test_ci_contains_the_estimate_and_shrinks_with_n():
    rng = np.random.default_rng(11)
    widths = []
    for n in (50, 400, 3200):
        labels = rng.integers(0, 2, n).astype(np.int8)
        verdicts = np.where(rng.random(n) < 0.8, labels, 1 - labels).astype(np.int8)
        m = accuracy(labels, verdicts, boot=Bootstrap.draw(n, 1000, seed=0))
        assert m.ci_low <= m.value <= m.ci_high
        widths.append(m.ci_high - m.ci_low)
    assert widths[0] > widths[1] > widths[2]
    # the width follows the √n law roughly: 8× the data, about 1/√8 the width
    assert 0.2 < widths[2] / widths[1] < 0.55


def test_bootstrap_size_mismatch_is_an_error():
    with pytest.raises(InvalidInput, match="bootstrap drawn for 10 examples"):
        accuracy(np.zeros(5, np.int8), np.zeros(5, np.int8), boot=Bootstrap.draw(10, 5))


def test_value_objects():
    mv = from_samples("acc", 0.5, np.linspace(0, 1, 101), 10, slice="category=x", extra={"ties": 1})
    assert isinstance(mv, MetricValue)
    assert (mv.ci_low, mv.ci_high) == pytest.approx((0.025, 0.975))
    assert mv.as_dict()["slice"] == "category=x" and mv.extra["ties"] == 1
    assert MetricValue("x", float("nan"), float("nan"), float("nan"), 0).as_dict()["value"] is None
    arr = array_from_samples("acc", np.array([0.1, 0.2]), np.tile(np.linspace(0, 1, 101), (2, 1)), 10,
                             extra={"ties": np.array([3, 4])})
    assert isinstance(arr, MetricArray) and len(arr) == 2
    assert arr[1].value == 0.2 and arr[1].extra["ties"] == 4
    assert [m.value for m in arr.to_values()] == [0.1, 0.2]


def test_percentile_interval_covers_the_true_accuracy_about_95_percent_of_the_time():
    rng = np.random.default_rng(123)
    n, true_acc = 200, 0.7
    boot = Bootstrap.draw(n, 1000, seed=9)
    labels = np.zeros(n, np.int8)
    covered = 0
    for _ in range(300):
        verdicts = np.where(rng.random(n) < true_acc, 0, 1).astype(np.int8)
        m = accuracy(labels, verdicts, boot=boot)
        covered += m.ci_low <= true_acc <= m.ci_high
    assert 0.90 <= covered / 300 <= 0.99
