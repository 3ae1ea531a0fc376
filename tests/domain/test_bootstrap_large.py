"""Counts mode of the bootstrap (large n): class counts drawn as multinomials, indices conditionally
on them (``registry.domain.metrics.bootstrap``'s module docstring).

``LARGE_N`` is patched down so that the tests run at a few thousand examples; nothing else differs
at a million.

Monte Carlo tolerances. A CI end is the 2.5th (97.5th) percentile of B resampled statistics; for a
statistic with bootstrap spread σ its Monte Carlo standard error is about
σ·√(0.025·0.975/B)/φ(1.96) = 2.67·σ/√B. Counts mode and index mode are independent draws, so the
ends differ by about √2·2.67·σ/√B = 0.084·σ at B = 2000 (one standard error); the tests allow
0.45·σ (≈ 5 standard errors; with the seeds fixed they are deterministic). σ is read from the
index-mode CI as its width / 3.92.
"""

from __future__ import annotations

import numpy as np
import pytest

import registry.domain.metrics.bootstrap as B
from registry.domain.metrics import (Bootstrap, classification_metrics, coin_flips, kappa, llmbar_metrics,
                                     paired_bootstrap, reife_metrics_many)

N, SAMPLES = 4000, 2000


@pytest.fixture
def large(monkeypatch):
    """Counts mode from 1,000 examples."""
    monkeypatch.setattr(B, "LARGE_N", 1000)


def _partitions(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 5, n), rng.integers(0, 3, n) * 7 + 100, rng.integers(0, 2, n)]


def _index_mode(n: int, samples: int, seed: int, parts) -> Bootstrap:
    return Bootstrap.draw(n, samples, seed).with_classes(parts)


# ------------------------------------------------------------------ (1) below the threshold: unchanged
@pytest.mark.parametrize("kept", [True, False])
def test_below_the_threshold_nothing_changes(monkeypatch, kept):
    parts = _partitions(900)
    x = np.stack([(parts[0] == 2) * 1.0, parts[1] / 7.0, np.random.default_rng(1).random(900)])
    if not kept:
        monkeypatch.setattr(B, "KEPT_ENTRIES", 1000)      # a streamed draw, in blocks
        monkeypatch.setattr(B, "BLOCK_ENTRIES", 7 * 900)
    got = {}
    for large_n in (10**12, 1000):                         # never counts mode; 900 < 1000: not either
        monkeypatch.setattr(B, "LARGE_N", large_n)
        boot = Bootstrap.draw(900, 300, 4).with_classes(parts)
        assert boot.joint is None
        got[large_n] = (boot.indices.copy(), boot.row_sums(x), boot.sums(x[0]),
                        [boot._class_counts(p).copy() for p in boot._partitions()])
    a, b = got.values()
    assert np.array_equal(a[0], b[0])
    assert np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])
    assert all(np.array_equal(p, q) for p, q in zip(a[3], b[3]))


def test_above_the_threshold_without_partitions_nothing_changes(monkeypatch):
    x = np.random.default_rng(2).random(3000)
    monkeypatch.setattr(B, "LARGE_N", 10**12)
    before = Bootstrap.draw(3000, 100, 5)
    monkeypatch.setattr(B, "LARGE_N", 1000)
    after = Bootstrap.draw(3000, 100, 5).with_classes(None)
    assert after.joint is None
    assert np.array_equal(before.indices, after.indices) and np.array_equal(before.sums(x), after.sums(x))


def test_index_mode_is_kept_when_counts_mode_does_not_pay(large, monkeypatch):
    n = 3000
    fine = np.arange(n) % 400                               # 400 classes: n < 16 × |J|
    assert Bootstrap.draw(n, 50, 0).with_classes([fine]).joint is None
    monkeypatch.setattr(B, "MAX_JOINT", 8)
    assert Bootstrap.draw(n, 50, 0).with_classes(_partitions(n)).joint is None     # 30 joint classes > 8
    strat = Bootstrap.draw_stratified(np.arange(n) % 3, 20, 0).with_classes(_partitions(n))
    assert strat.joint is None and not strat.uniform       # stratified resampling never switches
    # index mode after all: the very numbers of a draw without the threshold
    monkeypatch.setattr(B, "LARGE_N", 10**12)
    ref = Bootstrap.draw(n, 50, 0).with_classes([fine])
    monkeypatch.setattr(B, "LARGE_N", 1000)
    monkeypatch.setattr(B, "MAX_JOINT", 1 << 15)
    got = Bootstrap.draw(n, 50, 0).with_classes([fine])
    assert np.array_equal(ref.row_sums((fine == 3)[None] * 1.0), got.row_sums((fine == 3)[None] * 1.0))


# ------------------------------------------------------------------ (2) counts and indices agree exactly
def test_class_counts_equal_the_counts_of_the_conditional_indices(large):
    parts = _partitions(N)
    boot = Bootstrap.draw(N, 300, 7).with_classes(parts)
    assert boot.joint is not None and boot.streamed
    assert len(boot.joint.sizes) == 30
    idx = boot.indices
    assert idx.shape == (300, N) and idx.min() >= 0 and idx.max() < N
    for rep, codes, k, _ in boot._partitions():             # every partition, then the joint one
        from_idx = np.stack([np.bincount(codes[row], minlength=k) for row in idx]).T
        assert np.array_equal(boot._class_counts([rep, codes, k, None]), from_idx)
    joint = boot._partitions()[-1]
    assert np.array_equal(joint[1], boot.joint.codes)
    assert np.all(boot._class_counts(joint).sum(axis=0) == N)


def test_sums_from_counts_equal_sums_from_indices(large):
    parts = _partitions(N)
    boot = Bootstrap.draw(N, 300, 8).with_classes(parts)
    idx = boot.indices
    # values constant within one partition, within the joint only, and within none
    rows = np.stack([(parts[0] == 1) * 1.0, 0.5 * parts[1], (parts[2] == 1) * 3.0,
                     ((parts[0] == 1) & (parts[2] == 1)) * 1.0 + 0.5 * (parts[1] == 107)])
    free = np.random.default_rng(3).integers(0, 5, N) * 0.5
    assert np.array_equal(boot.row_sums(rows), np.stack([r[idx].sum(axis=1) for r in rows]))
    assert np.array_equal(boot.row_sums(free[None])[0], free[idx].sum(axis=1))
    assert np.array_equal(boot.weights, np.stack([np.bincount(r, minlength=N) for r in idx]).astype(float))
    np.testing.assert_allclose(boot.means(rows), rows @ boot.weights.T / N, rtol=0, atol=1e-12)


def test_conditional_indices_are_the_same_whenever_asked_for(large):
    parts = _partitions(N)
    boot = Bootstrap.draw(N, 120, 9).with_classes(parts)
    again = Bootstrap.draw(N, 120, 9).with_classes(parts)
    idx = boot.indices
    assert np.array_equal(idx, again.indices)
    assert np.array_equal(np.concatenate([b for _, b in again.blocks(7)]), idx)
    assert np.array_equal(again.index_block(50, 61), idx[50:61])
    assert np.array_equal(again.index_block(3, 4), idx[3:4])
    stats = again.apply(lambda v: float(v.sum()), np.arange(N))
    assert np.array_equal(stats, idx.sum(axis=1).astype(float))
    other = Bootstrap.draw(N, 120, 10).with_classes(parts)
    assert not np.array_equal(other.joint.counts(120), boot.joint.counts(120))
    unseeded = Bootstrap.draw(N, 40, None).with_classes(parts)
    x = (parts[0] == 0) * 1.0
    assert np.array_equal(unseeded.row_sums(x[None])[0], x[unseeded.indices].sum(axis=1))   # one draw, fixed


# ------------------------------------------------------------------ (3) distribution
def test_class_counts_are_multinomial(large):
    parts = _partitions(N)
    b = 20_000
    boot = Bootstrap.draw(N, b, 11).with_classes(parts)
    p = boot.joint.sizes / N
    c = boot.joint.counts(b).astype(float)
    mean_se = np.sqrt(N * p * (1 - p) / b)
    assert np.all(np.abs(c.mean(axis=0) - N * p) < 5 * mean_se)
    var = N * p * (1 - p)                                   # relative s.e. of a sample variance ≈ √(2/B) = 1%
    assert np.all(np.abs(c.var(axis=0, ddof=1) / var - 1) < 0.05)
    # covariance of two classes: −n·p_i·p_j
    cov = np.cov(c[:, 0], c[:, 1])[0, 1]
    assert cov == pytest.approx(-N * p[0] * p[1], rel=0.1)


def test_each_example_is_drawn_binomially(large):
    """Conditional indices are uniform resampling in distribution: example i occurs
    Binomial(n, 1/n) times in a resample — mean 1, variance 1 − 1/n — whichever class it is in."""
    n, b = 2000, 2000
    parts = [np.repeat([0, 1, 2], [1000, 900, 100]), np.arange(n) % 2]
    boot = Bootstrap.draw(n, b, 12).with_classes(parts)
    assert boot.joint is not None
    w = boot.weights
    for members in (slice(0, 1000), slice(1000, 1900), slice(1900, 2000)):
        occ = w[:, members]
        assert occ.mean() == pytest.approx(1.0, abs=0.01)
        assert occ.var() == pytest.approx(1 - 1 / n, abs=0.02)
    # two examples of one class are drawn independently of their order: no position is preferred
    assert abs(w[:, 0].mean() - w[:, 999].mean()) < 5 * np.sqrt(2 / b)


def _close(counts, index, what: str) -> None:
    """Same point value; CI ends within 0.45 σ (module docstring)."""
    assert counts.value == index.value or (np.isnan(counts.value) and np.isnan(index.value)), what
    sigma = (index.ci_high - index.ci_low) / 3.92
    assert sigma > 0, what
    assert abs(counts.ci_low - index.ci_low) < 0.45 * sigma, what
    assert abs(counts.ci_high - index.ci_high) < 0.45 * sigma, what


def _pair(counts_boot: Bootstrap, index_boot: Bootstrap, f):
    return f(counts_boot), f(index_boot)


def test_accuracy_ci_from_counts_matches_index_mode(large, monkeypatch):
    rng = np.random.default_rng(13)
    labels = rng.integers(0, 2, N)
    correct = (rng.random(N) < 0.72).astype(float)
    parts = [labels, correct.astype(int)]
    boot = Bootstrap.draw(N, SAMPLES, 1).with_classes(parts)
    assert boot.joint is not None
    monkeypatch.setattr(B, "LARGE_N", 10**12)
    index = _index_mode(N, SAMPLES, 1, parts)
    assert index.joint is None
    acc_c, acc_i = boot.means(correct), index.means(correct)
    # the resampled accuracies: mean and spread as the index draw's (s.e. of a mean: σ/√B)
    sigma = acc_i.std()
    assert sigma == pytest.approx(np.sqrt(0.72 * 0.28 / N), rel=0.1)
    assert abs(acc_c.mean() - acc_i.mean()) < 5 * sigma * np.sqrt(2 / SAMPLES)
    assert acc_c.std() == pytest.approx(sigma, rel=0.08)        # s.e. of an s.d. ≈ 1/√(2B) = 1.6%, twice
    lo_c, hi_c = np.percentile(acc_c, [2.5, 97.5])
    lo_i, hi_i = np.percentile(acc_i, [2.5, 97.5])
    assert abs(lo_c - lo_i) < 0.45 * sigma and abs(hi_c - hi_i) < 0.45 * sigma


# ------------------------------------------------------------------ (4) the metric functions
def _pairwise_data(n: int, runs: int = 3, seed: int = 14):
    rng = np.random.default_rng(seed)
    labels = rng.choice([0, 1, 2], size=n, p=[0.45, 0.45, 0.10]).astype(np.int8)
    v0 = np.where(rng.random((runs, n)) < 0.7, labels, rng.choice([-1, 0, 1, 2], size=(runs, n))).astype(np.int8)
    v1 = np.where(rng.random((runs, n)) < 0.7, labels, rng.choice([-1, 0, 1, 2], size=(runs, n))).astype(np.int8)
    return labels, v0, v1


def _both(monkeypatch, n: int, parts, seed: int = 2) -> tuple[Bootstrap, Bootstrap]:
    monkeypatch.setattr(B, "LARGE_N", 1000)
    counts = Bootstrap.draw(n, SAMPLES, seed).with_classes(parts)
    assert counts.joint is not None, "the test means counts mode"
    monkeypatch.setattr(B, "LARGE_N", 10**12)
    index = Bootstrap.draw(n, SAMPLES, seed).with_classes(parts)
    assert index.joint is None
    return counts, index


def test_reife_metrics_in_counts_mode(monkeypatch):
    labels, v0, v1 = _pairwise_data(N, runs=1)
    coins = coin_flips(N, 0)
    # labels, both orders' verdicts and the coins: every ReIFE sum is a sum of class counts
    parts = [labels, v0[0] + 1, v1[0] + 1, coins[0], coins[1]]
    counts, index = _both(monkeypatch, N, parts)
    assert len(counts.joint.sizes) <= N // 16
    got_c = reife_metrics_many(labels, v0, v1, boot=counts, seed=0)
    got_i = reife_metrics_many(labels, v0, v1, boot=index, seed=0)
    assert got_c.keys() == got_i.keys()
    for name in got_c:
        a, b = got_c[name], got_i[name]
        assert np.array_equal(a.values, b.values), name
        for r in range(len(a.values)):
            _close(_scalar(a, r), _scalar(b, r), name)


def test_reife_metrics_of_several_runs_with_sums_no_partition_covers(monkeypatch):
    labels, v0, v1 = _pairwise_data(N, runs=3)
    parts = [labels, v0[0] + 1]               # the other runs' verdicts: conditional indices
    counts, index = _both(monkeypatch, N, parts, seed=3)
    got_c = reife_metrics_many(labels, v0, v1, boot=counts, seed=0, include=["accuracy", "correct_both", "alpha"])
    got_i = reife_metrics_many(labels, v0, v1, boot=index, seed=0, include=["accuracy", "correct_both", "alpha"])
    for name in got_c:
        assert np.array_equal(got_c[name].values, got_i[name].values), name
        for r in range(3):
            _close(_scalar(got_c[name], r), _scalar(got_i[name], r), f"{name}[{r}]")


def test_llmbar_metrics_in_counts_mode(monkeypatch):
    labels, v0, v1 = _pairwise_data(N, runs=1, seed=15)
    labels = np.where(labels == 2, 0, labels).astype(np.int8)   # LLMBar labels are A or B
    counts, index = _both(monkeypatch, N, [labels, v0[0] + 1, v1[0] + 1], seed=4)
    got_c = {m.name: m for m in llmbar_metrics(labels, v0[0], v1[0], boot=counts)}
    got_i = {m.name: m for m in llmbar_metrics(labels, v0[0], v1[0], boot=index)}
    assert got_c.keys() == got_i.keys()
    for name in got_c:
        if np.isfinite(got_i[name].ci_low) and got_i[name].ci_high > got_i[name].ci_low:
            _close(got_c[name], got_i[name], name)
        else:
            assert got_c[name].value == got_i[name].value, name


def test_classification_metrics_and_kappa_in_counts_mode(monkeypatch):
    rng = np.random.default_rng(16)
    classes = ["yes", "no", "maybe"]
    y = rng.choice(classes, size=N, p=[0.5, 0.3, 0.2])
    pred = np.where(rng.random(N) < 0.65, y, rng.choice(classes + [None], size=N))
    yc = np.array([classes.index(v) for v in y])
    pc = np.array([classes.index(v) if v is not None else 3 for v in pred])
    counts, index = _both(monkeypatch, N, [yc * 4 + pc], seed=5)
    got_c = classification_metrics(list(y), list(pred), boot=counts, classes=classes)
    got_i = classification_metrics(list(y), list(pred), boot=index, classes=classes)
    for name in ("accuracy", "balanced_accuracy", "macro_f1"):
        _close(got_c[name], got_i[name], name)
    _close(kappa(yc, pc, boot=counts), kappa(yc, pc, boot=index), "kappa")


def test_paired_bootstrap_in_counts_mode(monkeypatch):
    rng = np.random.default_rng(17)
    a = (rng.random(N) < 0.74).astype(float)
    b = np.where(rng.random(N) < 0.8, a, 1 - a)            # two runs, correlated per example
    counts, index = _both(monkeypatch, N, [a.astype(int) * 2 + b.astype(int)], seed=6)
    tc, ti = paired_bootstrap(a, b, boot=counts), paired_bootstrap(a, b, boot=index)
    assert tc.difference == ti.difference
    sigma = (ti.ci_high - ti.ci_low) / 3.92
    assert abs(tc.ci_low - ti.ci_low) < 0.45 * sigma and abs(tc.ci_high - ti.ci_high) < 0.45 * sigma
    assert (tc.p_value < 0.05) == (ti.p_value < 0.05)


def _scalar(arr, r: int):
    """Run ``r`` of a MetricArray as an object with value / ci_low / ci_high."""
    class _V:
        value, ci_low, ci_high = float(arr.values[r]), float(arr.ci_low[r]), float(arr.ci_high[r])
    return _V


@pytest.mark.parametrize("values", [np.array([5, 3, 5, 9, 3, 3]), np.array([2**40, -7, 2**40, 0]),
                                    np.random.default_rng(18).integers(-50, 50, 1000).astype(np.int32)])
def test_dense_codes_are_numpys(values):
    codes, rep, k = B._dense(values)
    uniq, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    assert k == len(uniq) and np.array_equal(codes, inverse.ravel()) and np.array_equal(rep, first)


def test_equal_is_numpys_with_nan():
    nan = np.nan
    for a, b in [([1., 2.], [1., 2.]), ([1., nan], [1., nan]), ([1., nan], [2., nan]), ([nan, 1.], [1., nan]),
                 ([1., 2.], [1., nan]), ([1., nan], [1., 2.]), ([[0., 1.], [nan, 3.]], [[0., 1.], [nan, 3.]])]:
        a, b = np.array(a), np.array(b)
        assert B._equal(a, b) == np.array_equal(a, b, equal_nan=True), (a, b)


def test_counts_are_the_seeded_generators_multinomials(large):
    """Drawn in blocks of resamples (bounded memory), the counts are those of one call."""
    parts = _partitions(N)
    b = 40_000                                              # more than one block at 30 classes
    boot = Bootstrap.draw(N, b, 19).with_classes(parts)
    assert b > (1 << 20) // len(boot.joint.sizes)
    sizes = boot.joint.sizes
    assert np.array_equal(boot.joint.counts(b), np.random.default_rng(19).multinomial(N, sizes / N, size=b))
