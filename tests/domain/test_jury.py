"""Juries (registry.domain.jury): each combiner against a straightforward loop implementation, the
cross-fitting's out-of-fold guarantee, and the errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from registry.domain import jury as J
from registry.domain.judgments import FAIL
from registry.errors import InvalidInput

A, B, TIE = 0, 1, 2


def _random(seed: int, m: int = 5, o: int = 2, n: int = 60, conf: bool = True):
    rng = np.random.default_rng(seed)
    labels = rng.choice([A, B, TIE], size=n, p=[0.45, 0.45, 0.1]).astype(np.int8)
    # members right with different skills, sometimes tie or failing
    skill = rng.uniform(0.4, 0.9, size=m)
    right = rng.random((m, o, n)) < skill[:, None, None]
    wrong = rng.choice([A, B, TIE, FAIL], size=(m, o, n), p=[0.4, 0.4, 0.1, 0.1])
    v = np.where(right, labels[None, None, :], wrong).astype(np.int8)
    p = None
    if conf:
        p = np.where(v == A, rng.uniform(0.5, 1.0, v.shape), rng.uniform(0.0, 0.5, v.shape))
        p[rng.random(v.shape) < 0.2] = np.nan
    return v, p, labels


# ----------------------------------------------------------------------------- loops
_NAMES = {A: "A", B: "B", TIE: "tie", FAIL: None}
_CODES = {v: k for k, v in _NAMES.items()}


def _plurality_loop(votes: list[int]) -> int:
    """The protocol vote's rule, one example at a time: the strict plurality of the cast verdicts,
    a split → tie, nothing cast → failure (registry.services.evaluation.plurality)."""
    from registry.services.evaluation import plurality

    cast = [_NAMES[x] for x in votes if x != FAIL]
    return _CODES[plurality(cast) or ("tie" if cast else None)]


def _weighted_loop(votes: list[int], weights: list[float]) -> int:
    if all(x == FAIL for x in votes):
        return FAIL
    totals = {A: 0.0, B: 0.0, TIE: 0.0}
    for x, w in zip(votes, weights):
        if x != FAIL:
            totals[x] += w
    top = max(totals.values())
    if top <= 0:
        return _plurality_loop(votes)
    winners = [c for c, t in totals.items() if abs(t - top) <= 1e-12]
    return winners[0] if len(winners) == 1 else TIE


def _credit_loop(label: int, verdict: int) -> float:
    if verdict in (TIE, FAIL):
        return 0.0 if label == TIE else 0.5
    return float(verdict == label)


def test_majority_matches_loop():
    for seed in range(5):
        v, _, _ = _random(seed)
        got = J.majority_vote(v)
        for o in range(v.shape[1]):
            for i in range(v.shape[2]):
                assert got[o, i] == _plurality_loop(v[:, o, i].tolist())


def test_majority_rules_on_hand_examples():
    v = np.array([[[A, A, FAIL, TIE, A]], [[B, A, FAIL, B, FAIL]], [[B, TIE, FAIL, A, FAIL]]], dtype=np.int8)
    # (B,B... ) → B; (A,A,TIE) → A; all fail → FAIL; (TIE,B,A) split → tie; (A,fail,fail) → A
    assert J.majority_vote(v).tolist() == [[B, A, FAIL, TIE, A]]


def test_fold_assignment_is_seeded_balanced_and_checked():
    f = J.fold_assignment(23, 5, seed=3)
    assert sorted(np.bincount(f).tolist()) == [4, 4, 5, 5, 5]
    assert (f == J.fold_assignment(23, 5, seed=3)).all()
    assert not (f == J.fold_assignment(23, 5, seed=4)).all()
    with pytest.raises(InvalidInput, match=r"9 examples are too few for 5 folds: .* at least 10"):
        J.fold_assignment(9, 5)
    with pytest.raises(InvalidInput, match="at least 2 folds"):
        J.fold_assignment(100, 1)


def test_weighted_matches_loop_with_out_of_fold_weights():
    v, _, y = _random(7)
    res = J.combine_verdicts(v, combine="weighted", labels=y, folds=4, seed=1)
    assert res.weights.shape == (4, v.shape[0])
    for f in range(4):
        train = [i for i in range(v.shape[2]) if res.folds[i] != f]
        for m in range(v.shape[0]):   # weights: log-odds of the member's training accuracy, clipped
            credits = [_credit_loop(y[i], v[m, o, i]) for o in range(v.shape[1]) for i in train]
            acc = min(max(sum(credits) / len(credits), 0.5), 0.99)
            assert res.weights[f, m] == pytest.approx(math.log(acc / (1 - acc)))
    for o in range(v.shape[1]):
        for i in range(v.shape[2]):
            w = res.weights[res.folds[i]].tolist()
            assert res.verdicts[o, i] == _weighted_loop(v[:, o, i].tolist(), w)


def test_weighted_falls_back_to_majority_when_every_voter_weighs_zero():
    v = np.array([[[A]], [[A]], [[B]]], dtype=np.int8)
    assert J.weighted_vote(v, np.zeros(3)).tolist() == [[A]]
    assert J.weighted_vote(v, np.array([0.1, 0.1, 0.3])).tolist() == [[B]]
    assert J.weighted_vote(v, np.array([0.1, 0.2, 0.3])).tolist() == [[TIE]]


def _newton_loop(x: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    """Gradient descent on the same penalised objective, written out (slow, for comparison)."""
    n, d = x.shape
    beta = [0.0] * (d + 1)
    for _ in range(20000):
        grad = [l2 * b for b in beta]
        for i in range(n):
            z = sum(x[i, j] * beta[j] for j in range(d)) + beta[d]
            p = 1 / (1 + math.exp(-z))
            for j in range(d):
                grad[j] += (p - y[i]) * x[i, j]
            grad[d] += p - y[i]
        beta = [b - 0.02 * g for b, g in zip(beta, grad)]
    return np.array(beta)


def test_logistic_fit_matches_a_plain_gradient_descent():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3))
    y = (x @ np.array([1.0, -2.0, 0.5]) + rng.normal(size=30) > 0).astype(float)
    assert J.fit_logistic(x, y) == pytest.approx(_newton_loop(x, y, 1.0), abs=1e-4)


def test_stacked_is_out_of_fold_and_matches_per_fold_fits():
    v, p, y = _random(11, m=4, n=80)
    res = J.combine_verdicts(v, combine="stacked", labels=y, prob_a=p, folds=5, seed=2)
    assert res.uses_confidences and not res.notes
    x = J.stacking_features(v, p)
    for f in range(5):
        rows = [(o, i) for i in range(v.shape[2]) if res.folds[i] != f and y[i] != TIE for o in range(v.shape[1])]
        beta = J.fit_logistic(np.array([x[o, i] for o, i in rows]), np.array([float(y[i] == A) for _, i in rows]))
        assert res.coefficients[f] == pytest.approx(beta)
        for i in np.flatnonzero(res.folds == f):
            for o in range(v.shape[1]):
                z = float(x[o, i] @ beta[:-1] + beta[-1])
                prob = 1 / (1 + math.exp(-z))
                assert res.prob_a[o, i] == pytest.approx(prob)
                assert res.verdicts[o, i] == (A if prob > 0.5 else B if prob < 0.5 else TIE)


def test_stacking_features_loop():
    v, p, _ = _random(3, m=3, o=2, n=10)
    x = J.stacking_features(v, p)
    for o in range(2):
        for i in range(10):
            want = ([float(v[m, o, i] == A) for m in range(3)] + [float(v[m, o, i] == B) for m in range(3)]
                    + [0.0 if np.isnan(p[m, o, i]) else p[m, o, i] - 0.5 for m in range(3)] + [float(o)])
            assert x[o, i].tolist() == pytest.approx(want)


@pytest.mark.parametrize("combine", J.FITTED)
def test_permuting_one_folds_labels_leaves_that_folds_verdicts(combine):
    v, p, y = _random(5, n=70)
    res = J.combine_verdicts(v, combine=combine, labels=y, prob_a=p, folds=5, seed=0)
    rng = np.random.default_rng(9)
    for f in range(5):
        held = np.flatnonzero(res.folds == f)
        y2 = y.copy()
        y2[held] = rng.permutation(np.array([A, B, TIE] * len(held), dtype=np.int8))[:len(held)]
        again = J.combine_verdicts(v, combine=combine, labels=y2, prob_a=p, folds=5, seed=0)
        assert (again.verdicts[:, held] == res.verdicts[:, held]).all()
        others = np.flatnonzero(res.folds != f)
        # (the other folds did learn from them: at least the fitted weights or coefficients moved)
        moved = (again.weights if combine == "weighted" else again.coefficients)
        before = (res.weights if combine == "weighted" else res.coefficients)
        assert len(others) and not np.allclose(moved, before) or (y2 == y).all()


def test_stacked_without_confidences_says_so():
    v, _, y = _random(2, conf=False)
    res = J.combine_verdicts(v, combine="stacked", labels=y, folds=3)
    assert not res.uses_confidences and "verdicts only" in res.notes[0]
    all_nan = np.full(v.shape, np.nan)
    assert not J.combine_verdicts(v, combine="stacked", labels=y, prob_a=all_nan, folds=3).uses_confidences


def test_a_strong_member_dominates_the_fitted_juries():
    """Two noisy members and one always right: weighted and stacked follow the right one."""
    rng = np.random.default_rng(0)
    y = rng.choice([A, B], size=100).astype(np.int8)
    noisy = rng.choice([A, B], size=(2, 2, 100)).astype(np.int8)
    v = np.concatenate([noisy, np.broadcast_to(y, (1, 2, 100))]).astype(np.int8)
    for combine in J.FITTED:
        res = J.combine_verdicts(v, combine=combine, labels=y, folds=5)
        assert J.example_credit(y, res.verdicts).mean() >= 0.97
    assert J.example_credit(y, J.majority_vote(v)).mean() < 0.9


def test_example_credit_loop():
    v, _, y = _random(4, m=1)
    got = J.example_credit(y, v[0])
    for i in range(len(y)):
        assert got[i] == pytest.approx(np.mean([_credit_loop(y[i], v[0, o, i]) for o in range(2)]))


def test_errors():
    v, p, y = _random(1, n=8)
    with pytest.raises(InvalidInput, match="8 examples are too few for 5 folds"):
        J.combine_verdicts(v, combine="weighted", labels=y)
    with pytest.raises(InvalidInput, match="unknown combiner 'mean'"):
        J.combine_verdicts(v, combine="mean")
    with pytest.raises(InvalidInput, match="fitted on human labels"):
        J.combine_verdicts(v, combine="stacked")
    with pytest.raises(InvalidInput, match="do not match"):
        J.combine_verdicts(v, combine="stacked", labels=y, prob_a=p[:, :1], folds=2)
    with pytest.raises(InvalidInput, match="members, orders"):
        J.majority_vote(v[0])
    with pytest.raises(InvalidInput, match=r"\[0, 1\]"):
        J.check_inputs(v, p + 2)


def test_candidate_subsets_respect_sizes_parity_and_budget():
    costs = [1.0, 2.0, None, 0.5]
    got = J.candidate_subsets(costs, max_size=3, combine="weighted")
    assert len(got) == 6 + 4
    assert J.candidate_subsets(costs, max_size=4, combine="majority") == [(0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3)]
    assert J.candidate_subsets(costs, max_size=3, combine="weighted", budget=2.5) == [(0, 3), (1, 3)]
    assert J.candidate_subsets(costs, max_size=3, combine="majority", budget=3.5) == [(0, 1, 3)]
    with pytest.raises(InvalidInput, match="at least 2 members"):
        J.candidate_subsets(costs, max_size=1, combine="weighted")


def test_jury_task_types():
    assert J.jury_task_types({"a": ["pairwise", "pointwise"], "b": ("pairwise", "classification")}) == ["pairwise"]
    assert J.jury_task_types({"a": ["pairwise", "classification"], "b": ("pairwise", "classification")}) == \
        ["pairwise", "classification"]
    assert J.jury_task_types({"a": ["pairwise", "classification"], "b": ["classification", "pairwise"]},
                             "stacked") == ["pairwise"]
    with pytest.raises(InvalidInput, match=r"no task type in common \(a: \['pointwise'\]; b: no runs yet\)"):
        J.jury_task_types({"a": ["pointwise"], "b": []})
    with pytest.raises(InvalidInput, match="a classification jury combines by majority only, not weighted"):
        J.jury_task_types({"a": ["classification", "pointwise"], "b": ["classification"]}, "weighted")
    with pytest.raises(InvalidInput, match="not pointwise"):
        J.jury_task_types({"a": ["pointwise"], "b": ["pointwise"]})


def test_classification_majority_matches_loop():
    rng = np.random.default_rng(8)
    v = rng.integers(-1, 4, size=(5, 1, 200)).astype(np.int8)      # 4 labels, some failures
    got = J.majority_vote(v, n_classes=4)
    assert (J.combine_verdicts(v, n_classes=4).verdicts == got).all()
    for i in range(200):
        votes = [x for x in v[:, 0, i].tolist() if x != FAIL]
        counts = {c: votes.count(c) for c in set(votes)}
        winners = [c for c, k in counts.items() if k == max(counts.values())] if counts else []
        assert got[0, i] == (winners[0] if len(winners) == 1 else FAIL)   # a split: no label wins
    with pytest.raises(InvalidInput, match="codes in -1..3"):
        J.majority_vote(v + 1, n_classes=4)
    with pytest.raises(InvalidInput, match="majority only, not stacked"):
        J.combine_verdicts(v, combine="stacked", n_classes=4)


def test_subset_credits_are_each_subsets_jury():
    v, p, y = _random(6, m=4, n=40)
    subsets = J.candidate_subsets([None] * 4, max_size=3, combine="weighted")
    got = J.subset_credits(v, y, subsets, combine="stacked", prob_a=p, folds=4, seed=1)
    for s, subset in enumerate(subsets):
        res = J.combine_verdicts(v[list(subset)], combine="stacked", labels=y, prob_a=p[list(subset)], folds=4, seed=1)
        for i in range(len(y)):
            want = np.mean([_credit_loop(y[i], res.verdicts[o, i]) for o in range(2)])
            assert got[s, i] == pytest.approx(want)
