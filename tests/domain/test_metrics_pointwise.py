"""Pointwise correlations at example and system level."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from registry.domain.metrics import Bootstrap, correlation, correlations, system_level_correlations
from registry.domain.metrics.pointwise import _resampled
from registry.errors import InvalidInput


@pytest.fixture(scope="module")
def scores():
    rng = np.random.default_rng(3)
    human = rng.normal(size=120).round(1)        # rounding makes ties, so τ-b matters
    return human, (human + rng.normal(size=120)).round(1)


def test_point_values_are_scipy(scores):
    h, p = scores
    out = correlations(h, p, boot=Bootstrap.draw(120, 200))
    assert out["pearson"].value == pytest.approx(stats.pearsonr(h, p).statistic)
    assert out["spearman"].value == pytest.approx(stats.spearmanr(h, p).statistic)
    assert out["kendall"].value == pytest.approx(stats.kendalltau(h, p, variant="b").statistic)
    for m in out.values():
        assert m.ci_low <= m.value <= m.ci_high


def test_monotone_predictions_by_hand():
    h = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.0, 4.0, 9.0, 16.0])
    out = correlations(h, p, boot=Bootstrap.draw(4, 50))
    assert out["spearman"].value == pytest.approx(1.0) and out["kendall"].value == pytest.approx(1.0)
    assert out["pearson"].value == pytest.approx(0.9843, abs=1e-4)
    anti = correlation(h, -h, "kendall", boot=Bootstrap.draw(4, 20))
    assert anti.value == pytest.approx(-1.0)


def test_resampled_correlations_equal_index_resampling(scores):
    h, p = scores
    boot = Bootstrap.draw(120, 40, seed=5)
    for method, ref in (("pearson", stats.pearsonr), ("spearman", stats.spearmanr)):
        fast = _resampled(method, h, p, boot)
        slow = np.array([ref(h[i], p[i]).statistic for i in boot.indices])
        np.testing.assert_allclose(fast, slow, atol=1e-10)


def test_missing_predictions_are_dropped_and_counted():
    h = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    p = np.array([1.0, np.nan, 3.0, 2.0, 5.0])
    m = correlation(h, p, "pearson")
    assert m.n == 4 and m.extra["dropped"] == 1
    assert m.value == pytest.approx(stats.pearsonr(h[[0, 2, 3, 4]], p[[0, 2, 3, 4]]).statistic)


def test_system_level_uses_system_means():
    systems = np.array(["s1"] * 3 + ["s2"] * 3 + ["s3"] * 3)
    human = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9], float)          # means 2, 5, 8
    pred = np.array([0, 0, 3, 1, 1, 1, 9, 9, 9], float)           # means 1, 1, 9
    for resample in ("systems", "examples"):
        out = system_level_correlations(human, pred, systems, resample=resample, n_samples=200)
        assert out["pearson"].name == "system_pearson" and out["pearson"].n == 3
        assert out["pearson"].value == pytest.approx(stats.pearsonr([2, 5, 8], [1, 1, 9]).statistic)
        assert out["spearman"].value == pytest.approx(stats.spearmanr([2, 5, 8], [1, 1, 9]).statistic)
        assert out["kendall"].extra["resample"] == resample


def test_system_level_example_resampling_ci_shrinks_with_more_examples():
    rng = np.random.default_rng(0)
    widths = []
    for per_system in (5, 80):
        systems = np.repeat(np.arange(8), per_system)
        quality = np.linspace(0, 1, 8)[systems]
        human = quality + rng.normal(scale=0.5, size=len(systems))
        pred = quality + rng.normal(scale=0.5, size=len(systems))
        m = system_level_correlations(human, pred, systems, resample="examples", methods=("pearson",))["pearson"]
        widths.append(m.ci_high - m.ci_low)
    assert widths[1] < widths[0]


def test_unknown_method_and_resampling_unit():
    with pytest.raises(InvalidInput, match="unknown correlation"):
        correlation(np.ones(3), np.ones(3), "cosine")
    with pytest.raises(InvalidInput, match="resampling unit"):
        system_level_correlations(np.arange(4.0), np.arange(4.0), np.array([0, 0, 1, 1]), resample="both")
