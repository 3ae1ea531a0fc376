"""registry.domain.cascade against plain loops: routing, per-example cost over the levels reached,
shares, and the cross-fitting (each fold's thresholds come from the other folds only)."""

from __future__ import annotations

import numpy as np
import pytest

from registry.domain import cascade as C
from registry.domain import selective as S
from registry.domain.jury import fold_assignment


def _data(seed: int, n_levels: int = 3, n: int = 300):
    rng = np.random.default_rng(seed)
    conf = rng.choice([0.5, 0.6, 0.75, 0.9, 1.0], size=(n_levels, n))
    conf[rng.random((n_levels, n)) < 0.05] = np.nan
    correct = rng.random((n_levels, n)) < 0.55 + 0.4 * np.nan_to_num(conf, nan=0.5)
    return conf, correct


def _route_loop(conf, thr):
    out = []
    for i in range(conf.shape[1]):
        chosen = conf.shape[0] - 1
        for lv in range(conf.shape[0] - 1):
            t = thr[lv][i]
            if not np.isnan(t) and not np.isnan(conf[lv][i]) and conf[lv][i] >= t:
                chosen = lv
                break
        out.append(chosen)
    return np.array(out)


@pytest.mark.parametrize("seed", range(5))
def test_route_and_costs_match_a_loop(seed):
    conf, _ = _data(seed)
    rng = np.random.default_rng(100 + seed)
    thr = rng.choice([np.nan, 0.6, 0.9, 1.0], size=(2, conf.shape[1]))
    level = C.route(conf, thr)
    assert level.tolist() == _route_loop(conf, thr).tolist()
    assert set(level.tolist()) == {0, 1, 2}
    costs = rng.random(conf.shape)
    want = [sum(costs[lv][i] for lv in range(level[i] + 1)) for i in range(conf.shape[1])]
    assert np.allclose(C.reached_cost(level, costs), want)
    # one price per level: the mean per-example cost is Σ price × share reaching the level
    prices = np.array([[1.0], [10.0], [100.0]])
    decided, reached = C.level_shares(level, 3)
    n = conf.shape[1]
    assert np.allclose(decided, [sum(level == lv) / n for lv in range(3)])
    assert np.allclose(reached, [sum(level >= lv) / n for lv in range(3)])
    assert reached[0] == 1.0 and np.isclose(decided.sum(), 1.0)
    assert np.isclose(C.reached_cost(level, prices).mean(), float(np.dot(reached, prices[:, 0])))


def test_no_threshold_escalates_everything_to_the_last_level():
    conf = np.array([[1.0, 0.9], [1.0, 1.0]])
    assert C.route(conf, np.full((1, 2), np.nan)).tolist() == [1, 1]
    assert C.reached_cost(np.array([1, 0]), np.array([[2.0, 2.0], [5.0, 5.0]])).tolist() == [7.0, 2.0]


@pytest.mark.parametrize("seed", range(3))
def test_cross_fit_thresholds_come_from_the_other_folds(seed):
    conf, correct = _data(seed)
    fit = C.cross_fit_cascade(conf, correct, target=0.8, delta=0.1, folds=4, seed=seed)
    assert fit.folds.tolist() == fold_assignment(conf.shape[1], 4, seed).tolist()
    for f in range(4):                           # a loop: calibrate each fold on the others
        train = fit.folds != f
        cal = S.calibrate_cascade([S.Level(str(lv), conf[lv, train], correct[lv, train]) for lv in range(2)],
                                  target=0.8, delta=0.1)
        want = [np.nan if c.threshold is None else c.threshold for c in cal]
        assert np.array_equal(fit.thresholds[f], want, equal_nan=True)
    assert np.isfinite(fit.thresholds).any()     # the data let some level be trusted
    assert fit.level.tolist() == _route_loop(conf, fit.thresholds[fit.folds].T).tolist()


def test_out_of_fold_a_folds_own_labels_do_not_change_its_thresholds_or_verdicts():
    conf, correct = _data(7)
    fit = C.cross_fit_cascade(conf, correct, target=0.8, delta=0.1, folds=5, seed=1)
    f = 2
    flipped = correct.copy()
    flipped[:, fit.folds == f] = ~flipped[:, fit.folds == f]     # every label of fold f changes
    refit = C.cross_fit_cascade(conf, flipped, target=0.8, delta=0.1, folds=5, seed=1)
    assert np.array_equal(refit.thresholds[f], fit.thresholds[f], equal_nan=True)
    assert refit.level[fit.folds == f].tolist() == fit.level[fit.folds == f].tolist()
    # ... while the other folds, calibrated on fold f among others, do see the change
    others = [g for g in range(5) if g != f]
    assert not np.array_equal(refit.thresholds[others], fit.thresholds[others], equal_nan=True)


def test_errors():
    conf, correct = _data(0, n_levels=1)
    with pytest.raises(ValueError, match="at least two levels"):
        C.cross_fit_cascade(conf, correct, target=0.9, delta=0.1)
    conf, correct = _data(0, n=5)
    with pytest.raises(Exception, match="too few for 5 folds"):
        C.cross_fit_cascade(conf, correct, target=0.9, delta=0.1)
