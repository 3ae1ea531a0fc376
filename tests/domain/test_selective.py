"""Selective evaluation with a guarantee (registry.domain.selective): every function against a
plain loop, the exact binomial bounds against closed forms and published values, the fixed-sequence
walk on hand cases. The guarantee on real registered data: tests/services/test_selective.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom

from registry.domain import selective as S


# ----------------------------------------------------------------------------- confidences
def _prob_loop(p):
    verdicts, confs = [], []
    for j in range(p.shape[1]):
        vals = [float(x) for x in p[:, j] if not math.isnan(x)]
        if not vals:
            verdicts.append(-1)
            confs.append(float("nan"))
            continue
        mean = sum(vals) / len(vals)
        verdicts.append(0 if mean > 0.5 else 1 if mean < 0.5 else 2)
        confs.append(sum(max(x, 1 - x) for x in vals) / len(vals))
    return verdicts, confs


def test_prob_confidence_matches_a_loop():
    rng = np.random.default_rng(1)
    p = rng.random((2, 300))
    p[0, :20] = np.nan
    p[:, 20:30] = np.nan
    p[:, 30:35] = 0.5
    v, c = S.prob_confidence(p)
    lv, lc = _prob_loop(p)
    assert v.tolist() == lv
    np.testing.assert_allclose(c, lc, equal_nan=True)
    assert np.isnan(c[20:30]).all() and (v[20:30] == -1).all() and (v[30:35] == 2).all()


def _vote_loop(codes, present, no_plurality):
    verdicts, confs = [], []
    for j in range(codes.shape[1]):
        cast = [int(codes[i, j]) for i in range(codes.shape[0]) if present[i, j]]
        parsed = [c for c in cast if c >= 0]
        if not cast:
            verdicts.append(-1)
            confs.append(float("nan"))
            continue
        if not parsed:
            verdicts.append(-1)
            confs.append(0.0)
            continue
        counts = {c: parsed.count(c) for c in set(parsed)}
        top = max(counts.values())
        winners = [c for c, k in counts.items() if k == top]
        verdicts.append(winners[0] if len(winners) == 1 else no_plurality)
        confs.append(top / len(cast))
    return verdicts, confs


@pytest.mark.parametrize("m", [1, 2, 5])
def test_vote_confidence_matches_a_loop(m):
    rng = np.random.default_rng(m)
    codes = rng.integers(-1, 3, size=(m, 400))
    present = rng.random((m, 400)) > 0.15
    for no_plurality in (2, -1):
        v, c = S.vote_confidence(codes, present, no_plurality=no_plurality)
        lv, lc = _vote_loop(codes, present, no_plurality)
        assert v.tolist() == lv
        np.testing.assert_allclose(c, lc, equal_nan=True)


def test_two_orders_agreeing_are_sure_and_disagreeing_are_a_tie():
    v, c = S.vote_confidence(np.array([[0, 0, 1, -1], [0, 1, 1, -1]]))
    assert v.tolist() == [0, 2, 1, -1]
    assert c.tolist() == [1.0, 0.5, 1.0, 0.0]


# ----------------------------------------------------------------------------- exact binomial
def test_binomial_p_value_is_the_binomial_cdf():
    rng = np.random.default_rng(2)
    kept = rng.integers(0, 80, 200)
    errors = np.minimum(rng.integers(0, 20, 200), kept)
    got = S.binomial_p_value(errors, kept, 0.1)
    loop = [1.0 if n == 0 else sum(math.comb(n, i) * 0.1 ** i * 0.9 ** (n - i) for i in range(k + 1))
            for k, n in zip(errors.tolist(), kept.tolist())]
    np.testing.assert_allclose(got, loop, rtol=1e-10, atol=1e-14)
    assert S.binomial_p_value(0, 30, 0.1) == pytest.approx(0.9 ** 30)     # 0.0424: rejects at δ 0.1


def test_clopper_pearson_upper_bound_published_values():
    # zero errors: 1 − δ^(1/n) (closed form); 0/10 at 95%: 0.2589
    assert S.risk_upper_bound(0, 10, 0.05) == pytest.approx(1 - 0.05 ** 0.1)
    assert S.risk_upper_bound(0, 10, 0.05) == pytest.approx(0.2589, abs=1e-4)
    # 5/10: the two-sided 95% Clopper–Pearson interval is (0.187, 0.813) — its upper end is the
    # one-sided 97.5% bound
    assert S.risk_upper_bound(5, 10, 0.025) == pytest.approx(0.8129, abs=1e-4)
    # the bound is where the binomial p-value equals δ: P(Binom(n, u) ≤ k) = δ
    for k, n in ((3, 40), (0, 5), (12, 100)):
        u = float(S.risk_upper_bound(k, n, 0.1))
        assert binom.cdf(k, n, u) == pytest.approx(0.1, abs=1e-9)
    assert S.risk_upper_bound(4, 4, 0.1) == 1.0 and S.risk_upper_bound(0, 0, 0.1) == 1.0


def test_min_kept():
    assert S.min_kept(0.9, 0.1) == 22            # 0.9^22 = 0.098 ≤ 0.1 < 0.9^21 = 0.109
    assert 0.9 ** 22 <= 0.1 < 0.9 ** 21
    assert S.min_kept(0.8, 0.05) == math.ceil(math.log(0.05) / math.log(0.8))


# ----------------------------------------------------------------------------- calibration
def _calibrate_loop(conf, correct, target, delta):
    """Fixed-sequence testing written out: walk the distinct confidences from the highest down."""
    alpha = 1 - target
    pairs = [(c, ok) for c, ok in zip(conf.tolist(), correct.tolist()) if not math.isnan(c)]
    start = S.min_kept(target, delta)
    chosen = None
    for lam in sorted({c for c, _ in pairs}, reverse=True):
        kept = [ok for c, ok in pairs if c >= lam]
        if len(kept) < start:
            continue
        errors = sum(1 for ok in kept if not ok)
        p = binom.cdf(errors, len(kept), alpha)
        if p > delta:
            break
        chosen = lam
    return chosen


@pytest.mark.parametrize("seed", range(12))
def test_calibrate_matches_a_loop(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    discrete = seed % 3 == 0
    conf = rng.integers(1, 5, n) / 4.0 if discrete else rng.random(n)
    correct = rng.random(n) < 0.55 + 0.45 * conf          # more confident, more often right
    conf[rng.random(n) < 0.05] = np.nan
    target = (0.8, 0.85, 0.9)[seed % 3]
    cal = S.calibrate(conf, correct, target=target, delta=0.1)
    assert cal.threshold == _calibrate_loop(conf, correct, target, 0.1)
    if cal.threshold is not None:
        keep = S.keep_mask(conf, cal.threshold)
        assert cal.kept == keep.sum() and cal.errors == (~correct[keep]).sum()
        assert cal.p_value <= 0.1 and cal.risk_upper <= 1 - target + 1e-12


def test_calibrate_hand_cases():
    # 30 sure and right: one threshold, p = 0.9^30
    cal = S.calibrate(np.ones(30), np.ones(30, bool), target=0.9, delta=0.1)
    assert cal.threshold == 1.0 and cal.kept == 30 and cal.errors == 0
    assert cal.p_value == pytest.approx(0.9 ** 30)
    # everything wrong: no threshold, and the reason says so
    cal = S.calibrate(np.linspace(0.5, 1, 50), np.zeros(50, bool), target=0.9, delta=0.1)
    assert cal.threshold is None and "no threshold meets the target" in cal.reason
    # too few examples to certify anything
    cal = S.calibrate(np.ones(10), np.ones(10, bool), target=0.9, delta=0.1)
    assert cal.threshold is None and "too few" in cal.reason and "22" in cal.reason


def test_the_walk_stops_at_the_first_failure():
    # 40 sure and right (conf 1), then 40 at 0.9 all wrong, then 1000 at 0.8 all right: at 0.8 the
    # pooled risk (40/1080) would pass, but the walk stops at 0.9 and keeps the threshold 1.0
    conf = np.r_[np.ones(40), np.full(40, 0.9), np.full(1000, 0.8)]
    correct = np.r_[np.ones(40, bool), np.zeros(40, bool), np.ones(1000, bool)]
    assert binom.cdf(40, 1080, 0.1) <= 0.1
    cal = S.calibrate(conf, correct, target=0.9, delta=0.1)
    assert cal.threshold == 1.0 and cal.tested == 2


def test_a_continuous_confidence_starts_where_a_test_can_reject():
    # the top two confidences keep 1 and 2 examples: testing there would stop every walk at once
    conf = np.linspace(1.0, 0.5, 100)
    cal = S.calibrate(conf, np.ones(100, bool), target=0.9, delta=0.1)
    assert cal.threshold == conf[-1] and cal.kept == 100


def test_select_and_keep_mask():
    conf = np.array([0.9, np.nan, 0.7, 0.95])
    correct = np.array([True, True, False, True])
    sel = S.select(conf, correct, 0.9, 0.9)
    assert (sel.n, sel.kept, sel.coverage, sel.accuracy, sel.met) == (4, 2, 0.5, 1.0, True)
    none = S.select(conf, correct, None, 0.9)
    assert none.kept == 0 and none.accuracy is None and none.met      # vacuous


def test_random_splits_are_seeded_disjoint_and_cover():
    cal, test = S.random_splits(37, 0.5, 5, seed=3)
    assert cal.shape == (5, 18) and test.shape == (5, 19)
    for c, t in zip(cal, test):
        assert sorted(np.r_[c, t].tolist()) == list(range(37))
    again, _ = S.random_splits(37, 0.5, 5, seed=3)
    assert (again == cal).all()
    with pytest.raises(ValueError):
        S.split_size(1, 0.5)


# ----------------------------------------------------------------------------- cascades
def _levels(rng, n, k):
    out = []
    for i in range(k):
        conf = rng.random(n)
        correct = rng.random(n) < 0.6 + 0.4 * conf
        out.append(S.Level(f"j{i}", conf, correct, {"seconds": np.full(n, float(i + 1)),
                                                     "usd": None if i == 1 else np.full(n, 0.01 * (i + 1))}))
    return out


def _cascade_loop(levels, thresholds):
    n = len(levels[0].conf)
    decided = [None] * n            # level index that kept each example (None: the human)
    seconds = 0.0
    for j in range(n):
        for i, (level, thr) in enumerate(zip(levels, thresholds)):
            seconds += level.costs["seconds"][j]
            if thr is not None and level.conf[j] >= thr:
                decided[j] = i
                break
    right = sum(1 for j in range(n) if decided[j] is not None and levels[decided[j]].correct[j])
    kept = sum(1 for d in decided if d is not None)
    return decided, seconds * 1000 / n, (right / kept if kept else None)


@pytest.mark.parametrize("seed", range(6))
def test_cascade_matches_a_loop(seed):
    rng = np.random.default_rng(seed)
    levels = _levels(rng, 300, 3)
    cal = S.calibrate_cascade(levels, target=0.85, delta=0.1)
    # each level is calibrated at δ/3 on the examples no earlier level kept
    reach = np.ones(300, bool)
    for level, c in zip(levels, cal):
        assert c.delta == pytest.approx(0.1 / 3) and c.n == reach.sum()
        assert c.threshold == _calibrate_loop(level.conf[reach], level.correct[reach], 0.85, 0.1 / 3)
        reach &= ~S.keep_mask(level.conf, c.threshold)
    thresholds = [c.threshold for c in cal]
    out = S.apply_cascade(levels, thresholds, target=0.85)
    decided, seconds, acc = _cascade_loop(levels, thresholds)
    assert [lv.kept for lv in out.levels[:-1]] == [decided.count(i) for i in range(3)]
    assert out.levels[-1].name == "human" and out.levels[-1].kept == decided.count(None)
    assert out.human_fraction == pytest.approx(decided.count(None) / 300)
    assert out.judge_coverage + out.human_fraction == pytest.approx(1.0)
    assert out.cost_per_1000["seconds"] == pytest.approx(seconds)
    assert out.accuracy == (pytest.approx(acc) if acc is not None else None)
    # a judge without a price (level 1) leaves the cascade's price unknown once an example reaches it
    assert out.cost_per_1000["usd"] is None if out.levels[1].reached else out.cost_per_1000["usd"] is not None


def test_cascade_costs_hand_case():
    # 4 examples; judge 1 (1 s each) keeps the first two; judge 2 (10 s each) sees the other two,
    # keeps one; one goes to the human: seconds = (4·1 + 2·10) / 4 · 1000
    a = S.Level("cheap", np.array([1.0, 1.0, 0.0, 0.0]), np.array([True, True, True, True]), {"seconds": np.ones(4)})
    b = S.Level("dear", np.array([1.0, 1.0, 1.0, 0.0]), np.array([True, True, False, True]), {"seconds": np.full(4, 10.0)})
    out = S.apply_cascade([a, b], [0.5, 0.5], target=0.9)
    assert [(lv.name, lv.reached, lv.kept) for lv in out.levels] == [("cheap", 4, 2), ("dear", 2, 1), ("human", 1, 1)]
    assert out.cost_per_1000 == {"seconds": 6000.0}
    assert out.accuracy == pytest.approx(2 / 3) and not out.met and out.human_fraction == 0.25


def test_simulate_on_a_known_population_holds_the_guarantee():
    # a judge right with probability 0.6 + 0.4 · conf: the guarantee must hold in ≥ 1 − δ of splits
    rng = np.random.default_rng(7)
    conf = rng.random(600)
    correct = rng.random(600) < 0.6 + 0.4 * conf
    sim = S.simulate([S.Level("j", conf, correct)], target=0.9, delta=0.1, splits=200, seed=0)
    assert sim.splits == 200 and sim.with_threshold > 0.5
    assert sim.met >= 0.9 and sim.met_full >= 0.9
    assert 0 < sim.mean_coverage < 1
    # met_full applies each split's thresholds to every example, as a loop does
    cal_idx, _ = S.random_splits(600, 0.5, 200, 0)
    full = []
    for ci in cal_idx:
        thr = S.calibrate(conf[ci], correct[ci], target=0.9, delta=0.1).threshold
        kept = [ok for c, ok in zip(conf, correct) if thr is not None and c >= thr]
        full.append(not kept or sum(kept) / len(kept) >= 0.9)
    assert sim.met_full == pytest.approx(sum(full) / 200)
