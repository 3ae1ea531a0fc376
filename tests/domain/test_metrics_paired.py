"""Paired comparison of two runs: McNemar and paired bootstrap, including p-value sanity."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from registry.domain.metrics import Bootstrap, mcnemar, paired_bootstrap


def _pair(only_a: int, only_b: int, both: int, neither: int):
    a = np.array([1] * only_a + [0] * only_b + [1] * both + [0] * neither, bool)
    b = np.array([0] * only_a + [1] * only_b + [1] * both + [0] * neither, bool)
    return a, b


def test_mcnemar_by_hand():
    a, b = _pair(10, 2, 20, 8)
    exact = mcnemar(a, b, method="exact")
    assert exact.p_value == pytest.approx(2 * (66 + 12 + 1) / 4096)        # 2·P(X ≥ 10), X ~ Bin(12, ½)
    assert exact.difference == pytest.approx(8 / 40)
    chi = mcnemar(a, b, method="chi2")
    assert chi.statistic == pytest.approx(49 / 12)
    assert chi.p_value == pytest.approx(stats.chi2.sf(49 / 12, 1))
    assert mcnemar(a, b).method == "mcnemar_exact"                           # 12 discordant < 25
    assert exact.ci_low < exact.difference < exact.ci_high


def test_mcnemar_without_discordant_pairs():
    a, b = _pair(0, 0, 5, 5)
    t = mcnemar(a, b)
    assert t.p_value == 1.0 and t.difference == 0.0


def test_paired_bootstrap_identical_and_clearly_different():
    rng = np.random.default_rng(0)
    x = (rng.random(200) < 0.7).astype(float)
    boot = Bootstrap.draw(200, 1000, seed=1)
    same = paired_bootstrap(x, x, boot=boot)
    assert same.difference == 0.0 and same.p_value == 1.0
    better = np.ones(200)
    t = paired_bootstrap(better, x, boot=boot)
    assert t.difference == pytest.approx(1 - x.mean())
    assert t.ci_low > 0 and t.ci_low <= t.difference <= t.ci_high
    assert t.p_value == pytest.approx(1 / 1001)


def test_p_values_are_calibrated_under_the_null():
    rng = np.random.default_rng(42)
    boot = Bootstrap.draw(150, 500, seed=0)
    boot_p, mcn_p = [], []
    for _ in range(300):
        a = (rng.random(150) < 0.7).astype(float)
        b = (rng.random(150) < 0.7).astype(float)
        boot_p.append(paired_bootstrap(a, b, boot=boot).p_value)
        mcn_p.append(mcnemar(a, b).p_value)
    assert 0.01 < np.mean(np.array(boot_p) < 0.05) < 0.11
    assert np.mean(np.array(mcn_p) < 0.05) < 0.09           # exact/corrected McNemar is conservative
    assert 0.35 < np.median(boot_p) < 0.65


def test_power_grows_with_the_effect():
    rng = np.random.default_rng(7)
    a = (rng.random(400) < 0.8).astype(float)
    b_small = np.where(rng.random(400) < 0.05, 0.0, a)
    b_large = np.where(rng.random(400) < 0.3, 0.0, a)
    assert mcnemar(a, b_large).p_value < mcnemar(a, b_small).p_value
    assert mcnemar(a, b_large).p_value < 1e-6
