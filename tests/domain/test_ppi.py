"""Prediction-powered inference (registry.domain.ppi): PPI++ against closed forms on hand cases and
plain loops, vectorised draws against one draw at a time, and against ``ppi_py`` where it is
installed (not a dependency). Coverage on real registered data: tests/services/test_selective.py."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from registry.domain import ppi as P

Z95 = 1.959963984540054


def test_classical_ci_closed_form():
    y = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0])       # mean 0.75, population sd √(0.1875)
    e = P.classical_mean_ci(y)
    half = Z95 * math.sqrt(0.1875) / math.sqrt(8)
    assert e.estimate == pytest.approx(0.75)
    assert (e.ci_low, e.ci_high) == (pytest.approx(0.75 - half), pytest.approx(0.75 + half))
    assert e.lam is None


def test_ppi_hand_case_with_a_fixed_lambda():
    # n = 4 labelled, N = 8 predictions; λ = ½
    y = np.array([1.0, 0.0, 1.0, 0.0])
    fl = np.array([1.0, 0.0, 1.0, 1.0])
    fa = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0])
    e = P.ppi_mean_ci(y, fl, fa, lam=0.5)
    # θ = ½·mean(fa) + mean(y − ½ fl) = ½·½ + mean([½, 0, ½, −½]) = ¼ + ⅛
    assert e.estimate == pytest.approx(0.375)
    rect = [0.5, 0.0, 0.5, -0.5]
    var = 0.25 * statistics.pvariance(fa.tolist()) / 8 + statistics.pvariance(rect) / 4
    assert e.ci_high - e.estimate == pytest.approx(Z95 * math.sqrt(var))
    assert e.estimate - e.ci_low == pytest.approx(Z95 * math.sqrt(var))


def test_lambda_zero_is_the_classical_estimate_and_one_is_plain_ppi():
    rng = np.random.default_rng(0)
    y, fl, fa = rng.random(30), rng.random(30), rng.random(200)
    zero, classical = P.ppi_mean_ci(y, fl, fa, lam=0.0), P.classical_mean_ci(y)
    assert zero.estimate == pytest.approx(classical.estimate)
    assert zero.ci_low == pytest.approx(classical.ci_low) and zero.ci_high == pytest.approx(classical.ci_high)
    one = P.ppi_mean_ci(y, fl, fa, lam=1.0)
    assert one.estimate == pytest.approx(fa.mean() + (y - fl).mean())       # PPI (Angelopoulos et al. 2023)


def _lambda_loop(y, fl, fa):
    n, big_n = len(y), len(fa)
    my, mf = sum(y) / n, sum(fl) / n
    cov = sum((a - my) * (b - mf) for a, b in zip(y, fl)) / n
    pooled = list(fl) + list(fa)
    var = statistics.variance(pooled)
    lam = cov / ((1 + n / big_n) * var) if var > 0 else 0.0
    return min(1.0, max(0.0, lam))


@pytest.mark.parametrize("seed", range(5))
def test_power_tuning_matches_a_loop(seed):
    rng = np.random.default_rng(seed)
    n, big_n = int(rng.integers(5, 60)), int(rng.integers(60, 400))
    y = rng.random(n)
    fl = y * rng.random() + rng.normal(0, 0.3, n)
    fa = rng.random(big_n)
    assert P.power_tuning(y, fl, fa) == pytest.approx(_lambda_loop(y.tolist(), fl.tolist(), fa.tolist()))


def test_power_tuning_clips_and_handles_a_constant_judge():
    y = np.array([0.0, 1.0, 0.0, 1.0])
    assert P.power_tuning(y, 1 - y, np.r_[1 - y, 1 - y]) == 0.0           # negative covariance: 0
    assert P.power_tuning(y, np.ones(4), np.ones(10)) == 0.0              # f does not vary: 0
    # a perfect judge over a large unlabelled set: λ near 1
    big = np.tile([0.0, 1.0], 5000)
    assert P.power_tuning(y, y, big) == pytest.approx(1.0, abs=1e-3)


def test_draws_are_vectorised_like_one_at_a_time():
    rng = np.random.default_rng(4)
    y_all = (rng.random(150) < 0.4).astype(float)
    f_all = np.where(rng.random(150) < 0.8, y_all, 1 - y_all)
    idx = P.draw_labels(150, 25, 40, seed=9)
    ppi, classical = P.estimate_draws(y_all, f_all, idx)
    for d in range(40):
        one = P.ppi_mean_ci(y_all[idx[d]], f_all[idx[d]], f_all)
        assert ppi.estimate[d] == pytest.approx(float(one.estimate))
        assert ppi.ci_low[d] == pytest.approx(float(one.ci_low)) and ppi.lam[d] == pytest.approx(float(one.lam))
        assert classical.ci_high[d] == pytest.approx(float(P.classical_mean_ci(y_all[idx[d]]).ci_high))
    assert all(len(set(row.tolist())) == 25 for row in idx)                 # without replacement


def test_draw_labels_bounds():
    with pytest.raises(ValueError, match="between 2 and the 10"):
        P.draw_labels(10, 11, 1, 0)
    with pytest.raises(ValueError):
        P.draw_labels(10, 1, 1, 0)


def test_simulation_on_a_synthetic_population():
    rng = np.random.default_rng(11)
    y = (rng.random(2000) < 0.3).astype(float)
    f = np.where(rng.random(2000) < 0.9, y, 1 - y)            # a judge right 90% of the time
    sim = P.simulate(y, f, n=100, draws=500, seed=0)
    assert sim.truth == pytest.approx(y.mean())
    assert sim.ppi_coverage >= 0.93 and sim.ppi_mean_width < sim.classical_mean_width
    assert 0.3 < sim.mean_lambda <= 1.0


# ----------------------------------------------------------------------------- metric values
def test_pairwise_values_match_a_loop():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 200)
    verdicts = rng.integers(-1, 3, (2, 200))
    y, f = P.pairwise_values(labels, verdicts)
    value = {0: 1.0, 1: 0.0, 2: 0.5, -1: 0.5}
    assert y.tolist() == [value[int(v)] for v in labels]
    assert f.tolist() == pytest.approx([(value[int(a)] + value[int(b)]) / 2 for a, b in verdicts.T])
    with pytest.raises(ValueError):
        P.pairwise_values(np.array([0, -1]), np.array([[0, 0]]))


def test_classification_and_pointwise_values():
    y, f = P.classification_values(["yes", "no", "yes"], ["yes", None, "no"], "yes")
    assert y.tolist() == [1.0, 0.0, 1.0] and f.tolist() == [1.0, 0.5, 0.0]
    y, f = P.pointwise_values(np.array([1.0, 2.0, 3.0]), np.array([[2.0, np.nan, 4.0], [4.0, np.nan, np.nan]]))
    assert y.tolist() == [1.0, 2.0, 3.0] and f.tolist() == [3.0, 3.5, 4.0]     # unparsed: the mean of the others


# ----------------------------------------------------------------------------- against ppi_py
def test_against_ppi_py_when_installed():
    ppi_py = pytest.importorskip("ppi_py")
    rng = np.random.default_rng(5)
    y = (rng.random(60) < 0.45).astype(float)
    fl = np.where(rng.random(60) < 0.85, y, 1 - y)
    fu = (rng.random(500) < 0.45).astype(float)
    ours = P.ppi_mean_ci(y, fl, fu, alpha=0.1)
    lo, hi = ppi_py.ppi_mean_ci(y, fl, fu, alpha=0.1)
    assert float(ours.ci_low) == pytest.approx(float(np.ravel(lo)[0]))
    assert float(ours.ci_high) == pytest.approx(float(np.ravel(hi)[0]))
    assert float(ours.estimate) == pytest.approx(float(np.ravel(ppi_py.ppi_mean_pointestimate(y, fl, fu))[0]))
    lo, hi = ppi_py.classical_mean_ci(y, alpha=0.1)
    c = P.classical_mean_ci(y, alpha=0.1)
    assert float(c.ci_low) == pytest.approx(float(lo)) and float(c.ci_high) == pytest.approx(float(hi))
