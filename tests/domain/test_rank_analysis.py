"""ReIFE analyses (registry/domain/rank_analysis.py) against plain loops and scipy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from registry.domain.metrics.bootstrap import Bootstrap
from registry.domain.metrics.paired import paired_statistic_bootstrap
from registry.domain.rank_analysis import (
    accuracy_points,
    accuracy_samples,
    analyze_protocols,
    complete_block,
    correlate_rows,
    grid_accuracies,
    kendall_tau_b,
    spearman_rho,
)
from registry.errors import InvalidInput


def _tau_loop(x, y) -> float:
    """τ-b as textbooks write it: a loop over the pairs."""
    c = d = tx = ty = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        a, b = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        if a == 0 and b == 0:
            continue
        if a == 0:
            tx += 1
        elif b == 0:
            ty += 1
        elif a == b:
            c += 1
        else:
            d += 1
    den = np.sqrt((c + d + tx) * (c + d + ty))
    return (c - d) / den if den else float("nan")


@pytest.mark.parametrize("seed", range(6))
def test_kendall_and_spearman_equal_scipy_and_a_loop_with_ties(seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(3, 25))
    x = rng.integers(0, 5, m).astype(float)       # many ties
    y = x + rng.integers(-2, 3, m)
    assert kendall_tau_b(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
    assert kendall_tau_b(x, y) == pytest.approx(_tau_loop(x, y), abs=1e-12)
    assert spearman_rho(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


def test_correlations_vectorised_over_resamples_equal_one_at_a_time():
    rng = np.random.default_rng(3)
    x, y = rng.random((40, 9)), rng.random((40, 9))
    x[5, 2] = x[5, 3]                             # a tie
    taus, rhos = kendall_tau_b(x, y), spearman_rho(x, y)
    assert taus.shape == rhos.shape == (40,)
    for b in range(40):
        assert taus[b] == pytest.approx(stats.kendalltau(x[b], y[b]).statistic, abs=1e-12)
        assert rhos[b] == pytest.approx(stats.spearmanr(x[b], y[b]).statistic, abs=1e-12)


def test_undefined_correlations_are_nan():
    assert np.isnan(kendall_tau_b([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert np.isnan(spearman_rho([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert np.isnan(kendall_tau_b([1.0, np.nan, 3.0], [1.0, 2.0, 3.0]))
    assert np.isnan(spearman_rho([1.0, np.nan, 3.0], [1.0, 2.0, 3.0]))
    assert kendall_tau_b([1.0, 2.0], [2.0, 1.0]) == -1.0


def test_accuracy_samples_equal_a_loop_over_resamples_with_unjudged_examples():
    rng = np.random.default_rng(0)
    values = rng.choice([0.0, 0.5, 1.0], size=(4, 30))
    values[1, :7] = np.nan                          # evaluator 1 judged 23 of the 30
    boot = Bootstrap.draw(30, 50, seed=2)
    got = accuracy_samples(values, boot)
    assert got.shape == (4, 50)
    for b, idx in enumerate(boot.indices):
        for e in range(4):
            assert got[e, b] == pytest.approx(np.nanmean(values[e, idx]), abs=1e-12)
    assert accuracy_points(values)[1] == pytest.approx(values[1, 7:].mean())


def test_correlate_rows_points_equal_scipy_and_cis_equal_a_loop():
    rng = np.random.default_rng(1)
    rows, items = ["d1", "d2", "d3"], [f"e{i}" for i in range(6)]
    scores = rng.random((3, 6))
    scores[2, 0] = np.nan                          # d3 has no score for e0
    samples = scores[:, :, None] + rng.normal(0, 0.05, (3, 6, 200))
    samples[2, 0] = np.nan
    got = {(c.a, c.b): c for c in correlate_rows(rows, items, scores, samples)}
    assert list(got) == [("d1", "d2"), ("d1", "d3"), ("d2", "d3")]
    c = got[("d1", "d3")]
    assert c.items == tuple(items[1:])
    assert c.kendall == pytest.approx(stats.kendalltau(scores[0, 1:], scores[2, 1:]).statistic)
    assert c.spearman == pytest.approx(stats.spearmanr(scores[0, 1:], scores[2, 1:]).statistic)
    taus = [stats.kendalltau(samples[0, 1:, b], samples[2, 1:, b]).statistic for b in range(200)]
    assert (c.kendall_low, c.kendall_high) == pytest.approx(tuple(np.percentile(taus, [2.5, 97.5])))
    assert c.resamples == 200 and c.kendall_low <= c.kendall <= c.kendall_high
    d = c.to_dict()
    assert d["n_items"] == 5 and len(d["kendall_ci"]) == 2
    # a pair with fewer common items than asked is left out; without samples the CIs are None in JSON
    only = correlate_rows(rows, items, scores, min_items=6)
    assert [(c.a, c.b) for c in only] == [("d1", "d2")] and np.isnan(only[0].kendall_low) and only[0].resamples == 0
    assert correlate_rows(rows, items, scores)[0].to_dict()["kendall_ci"] == [None, None]


def test_complete_block_drops_the_sparsest_protocols_and_keeps_the_base():
    present = np.array([[1, 1, 1, 1, 1],
                        [1, 1, 0, 1, 0]], dtype=bool)   # checkpoint 1 lacks protocols 2 and 4
    assert complete_block(present) == ([0, 1], [0, 1, 3])
    # the base protocol is never dropped: the checkpoint without it goes instead
    present = np.array([[1, 1, 1], [0, 1, 1], [1, 1, 1]], dtype=bool)
    assert complete_block(present, keep_col=0) == ([0, 2], [0, 1, 2])
    rows, cols = complete_block(np.ones((3, 4), bool))
    assert (rows, cols) == ([0, 1, 2], [0, 1, 2, 3])


def _grid(seed=0):
    rng = np.random.default_rng(seed)
    sizes = [40, 25]                                  # two datasets
    values = [rng.choice([0.0, 0.5, 1.0], size=(3, 4, n), p=[0.3, 0.1, 0.6]) for n in sizes]
    values[0][2, 1, :] = 1.0                          # checkpoint 2 is perfect under protocol 1 on dataset 0
    boots = [Bootstrap.draw(n, 300, seed=10 + i) for i, n in enumerate(sizes)]
    return values, boots


def test_grid_accuracies_macro_average_the_datasets_with_shared_resamples():
    values, boots = _grid()
    point, samples = grid_accuracies(values, boots)
    assert point.shape == (3, 4) and samples.shape == (3, 4, 300)
    for l, p in itertools.product(range(3), range(4)):
        assert point[l, p] == pytest.approx((values[0][l, p].mean() + values[1][l, p].mean()) / 2)
        for b in (0, 17, 299):
            want = np.mean([v[l, p, boot.indices[b]].mean() for v, boot in zip(values, boots)])
            assert samples[l, p, b] == pytest.approx(want)


def test_analyze_protocols_against_loops():
    values, boots = _grid()
    point, samples = grid_accuracies(values, boots)
    ckpts, protos = ["small", "medium", "large"], ["base", "cot", "rules", "swap"]
    rep = analyze_protocols(ckpts, protos, "base", point, samples, n=65)
    assert rep.checkpoints == tuple(ckpts) and rep.base == "base" and rep.resamples == 300
    for l, p in itertools.product(range(3), range(4)):
        cell = rep.cell(ckpts[l], protos[p])
        assert cell.value == pytest.approx(point[l, p])
        assert cell.ci_low <= cell.value <= cell.ci_high or np.isclose(cell.ci_low, cell.value)
        if p == 0:
            assert cell.versus_base is None
            continue
        t = paired_statistic_bootstrap(point[l, p], samples[l, p], point[l, 0], samples[l, 0], n=65)
        assert cell.versus_base.difference == pytest.approx(point[l, p] - point[l, 0])
        assert (cell.versus_base.p_value, cell.versus_base.ci_low) == pytest.approx((t.p_value, t.ci_low))
        assert cell.versus_base.significant == (t.p_value < 0.05)
    for p in range(4):
        assert rep.protocol_means[p].value == pytest.approx(point[:, p].mean())
    assert rep.protocol_means[0].versus_base is None
    assert rep.protocol_means[2].versus_base.difference == pytest.approx(point[:, 2].mean() - point[:, 0].mean())
    for l in range(3):
        assert rep.checkpoint_means[l].value == pytest.approx(point[l].mean())
        best = rep.best[l]
        assert best.value == pytest.approx(point[l].max()) and best.protocols[0] == protos[int(np.argmax(point[l]))]
        lead = int(np.argmax(point[l]))
        share = np.mean([samples[l, lead, b] == samples[l, :, b].max() for b in range(300)])
        assert best.share == pytest.approx(share)
    assert rep.best[2].protocols == ("cot",)          # the perfect cell wins for the large checkpoint
    same = np.mean([bool(set.intersection(*[set(np.flatnonzero(samples[l, :, b] == samples[l, :, b].max()))
                                            for l in range(3)])) for b in range(300)])
    assert rep.same_best_share == pytest.approx(same)
    assert rep.same_best == (len(set.intersection(*[set(b.protocols) for b in rep.best])) > 0)
    d = rep.to_dict()
    assert len(d["cells"]) == 12 and d["cells"][1]["protocol"] == "cot" and d["cells"][1]["checkpoint"] == "small"
    assert d["best"][2]["best"] == ["cot"] and isinstance(d["same_best"], bool)


def test_same_best_when_one_protocol_wins_everywhere():
    point = np.array([[0.5, 0.9], [0.6, 0.8]])
    samples = point[:, :, None] + np.zeros((2, 2, 10))
    rep = analyze_protocols(["a", "b"], ["base", "x"], "base", point, samples, n=10)
    assert rep.same_best and rep.same_best_share == 1.0 and [b.protocols for b in rep.best] == [("x",), ("x",)]


def test_exact_ties_share_the_best():
    point = np.array([[0.5, 0.5, 0.4], [0.5, 0.5, 0.5]])
    samples = np.repeat(point[:, :, None], 4, axis=2)
    rep = analyze_protocols(["a", "b"], ["base", "x", "y"], "base", point, samples, n=10)
    assert rep.best[0].protocols == ("base", "x") and rep.best[1].protocols == ("base", "x", "y")
    assert rep.same_best and rep.same_best_share == 1.0 and rep.best[0].share == 1.0


def test_analyze_protocols_refuses_a_missing_base_and_holes():
    point = np.array([[0.5, 0.9]])
    samples = np.zeros((1, 2, 5))
    with pytest.raises(InvalidInput, match="base protocol 'vanilla'"):
        analyze_protocols(["a"], ["base", "x"], "vanilla", point, samples, n=5)
    with pytest.raises(InvalidInput, match="every checkpoint"):
        analyze_protocols(["a"], ["base", "x"], "base", np.array([[0.5, np.nan]]), samples, n=5)
