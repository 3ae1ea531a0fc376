"""Pairwise metrics on hand-computed cases, and the vectorized paths against plain definitions."""

from __future__ import annotations

import numpy as np
import pytest

from registry.domain.agreement import krippendorff_alpha_nominal
from registry.domain.judgments import FAIL, encode_verdicts
from registry.domain.metrics import (
    Bootstrap,
    accuracy,
    alpha_nominal,
    coin_flips,
    cohen_kappa,
    correct_both,
    judgebench_accuracy,
    judgebench_scores,
    kappa,
    logprob_verdicts,
    pairwise_accuracy_many,
    positional_agreement,
    reife_metrics,
    reife_metrics_many,
)
from registry.domain.metrics._counts import alpha_two_coders
from registry.errors import InvalidInput

A, B, T = 0, 1, 2
LABELS = np.array([A, A, B, B, A], np.int8)
V0 = np.array([A, B, B, T, FAIL], np.int8)
V1 = np.array([A, A, A, B, FAIL], np.int8)


def test_accuracy_tie_policies_by_hand():
    assert accuracy(LABELS, V0).value == pytest.approx(2 / 5)
    assert accuracy(LABELS, V1).value == pytest.approx(3 / 5)
    assert accuracy(LABELS, V0, V1).value == pytest.approx(0.5)           # LLMBar "Acc.": ties/failures wrong
    m = accuracy(LABELS, V0, V1, policy="expected")                        # ReIFE: ½ credit each
    assert m.value == pytest.approx(0.5 * (3.0 / 5 + 3.5 / 5))
    assert (m.extra["ties"], m.extra["failures"]) == (1, 2)


def test_expected_credit_against_tie_label_is_zero():
    labels = np.array([T, T], np.int8)
    assert accuracy(labels, np.array([T, FAIL], np.int8), policy="expected").value == 0.0
    assert accuracy(labels, np.array([T, FAIL], np.int8), policy="wrong").value == 0.5


def test_seeded_flip_is_reproducible_and_matches_its_coins():
    coins = coin_flips(5, seed=7)
    r0 = np.where((V0 == FAIL) | (V0 == T), coins[0], V0)
    r1 = np.where((V1 == FAIL) | (V1 == T), coins[1], V1)
    want = 0.5 * ((r0 == LABELS).mean() + (r1 == LABELS).mean())
    got = accuracy(LABELS, V0, V1, policy="flip", seed=7)
    assert got.value == pytest.approx(want)
    assert got.value == accuracy(LABELS, V0, V1, policy="flip", seed=7).value
    assert got.extra["seed"] == 7


def test_flip_averages_to_expected_credit():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 200).astype(np.int8)
    v = rng.choice(np.array([A, B, T, FAIL], np.int8), size=200)
    boot = Bootstrap.draw(200, 2, seed=0)     # only the point values matter here
    expected = accuracy(labels, v, v, boot=boot, policy="expected").value
    flips = np.mean([accuracy(labels, v, v, boot=boot, policy="flip", seed=s).value for s in range(400)])
    assert flips == pytest.approx(expected, abs=0.01)


def test_correct_both_positional_agreement_by_hand():
    assert correct_both(LABELS, V0, V1).value == pytest.approx(1 / 5)
    assert positional_agreement(V0, V1).value == pytest.approx(1 / 5)
    assert positional_agreement(V0, V1, failures_agree=True).value == pytest.approx(2 / 5)


def test_cohen_kappa_by_hand():
    a = np.array([A, A, B, B], np.int8)
    b = np.array([A, B, B, B], np.int8)
    assert cohen_kappa(a, b) == pytest.approx(0.5)           # po = .75, pe = .5
    assert cohen_kappa(a, a) == pytest.approx(1.0)
    assert np.isnan(cohen_kappa(np.zeros(3, np.int8), np.zeros(3, np.int8)))   # one class: undefined
    m = kappa(a, b, boot=Bootstrap.draw(4, 200, seed=0))
    assert m.value == pytest.approx(0.5) and m.ci_low <= m.ci_high


def test_kappa_matches_sklearn_on_random_codes():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(4)
    for _ in range(20):
        a = rng.integers(-1, 3, 60).astype(np.int8)
        b = np.where(rng.random(60) < 0.6, a, rng.integers(-1, 3, 60)).astype(np.int8)
        assert cohen_kappa(a, b) == pytest.approx(sk.cohen_kappa_score(a, b), abs=1e-12)


def test_alpha_by_hand_and_against_the_reference():
    a = np.array([A, A, B, B], np.int8)
    b = np.array([A, B, B, B], np.int8)
    # 8 values (3 A, 5 B), 1 disagreeing unit: α = 1 − 7·2/(64 − 9 − 25)
    assert alpha_nominal(a, b).value == pytest.approx(1 - 14 / 30)
    rng = np.random.default_rng(9)
    for _ in range(30):
        x = rng.integers(-1, 3, 40).astype(np.int8)
        y = np.where(rng.random(40) < 0.7, x, rng.integers(-1, 3, 40)).astype(np.int8)
        units = [[int(p), int(q)] for p, q in zip(x, y) if p != FAIL and q != FAIL]
        ref = krippendorff_alpha_nominal(units)
        closed, _ = alpha_two_coders(x, y, None)
        assert closed == pytest.approx(ref, abs=1e-12)


def test_alpha_bootstrap_equals_reference_on_each_resample():
    rng = np.random.default_rng(1)
    x = rng.integers(-1, 3, 30).astype(np.int8)
    y = np.where(rng.random(30) < 0.7, x, rng.integers(0, 3, 30)).astype(np.int8)
    boot = Bootstrap.draw(30, 50, seed=2)
    _, samples = alpha_two_coders(x, y, boot)
    for b in range(0, 50, 7):
        idx = boot.indices[b]
        ref = krippendorff_alpha_nominal([[int(x[i]), int(y[i])] for i in idx if x[i] != FAIL and y[i] != FAIL])
        assert samples[b] == pytest.approx(ref, abs=1e-12)


def test_reife_metrics_by_hand():
    labels = np.array([A, B, A, B], np.int8)
    v0 = np.array([A, B, B, B], np.int8)
    v1 = np.array([A, B, A, A], np.int8)
    m = reife_metrics(labels, v0, v1, boot=Bootstrap.draw(4, 100, seed=0))
    assert m["accuracy"].value == pytest.approx(0.5 * (3 / 4 + 3 / 4))
    assert m["accuracy"].value == m["accuracy_flip"].value          # nothing to flip
    assert m["correct_both"].value == pytest.approx(2 / 4)
    assert m["positional_agreement"].value == pytest.approx(2 / 4)
    assert m["self_consistency"].value == pytest.approx(2 / 4)
    a0 = krippendorff_alpha_nominal([[int(p), int(q)] for p, q in zip(labels, v0)])
    a1 = krippendorff_alpha_nominal([[int(p), int(q)] for p, q in zip(labels, v1)])
    assert m["alpha"].value == pytest.approx((a0 + a1) / 2)
    sc = krippendorff_alpha_nominal([[int(p), int(q)] for p, q in zip(v0, v1)])
    assert m["self_consistency_alpha"].value == pytest.approx(sc)


def test_reife_alpha_uses_coin_resolved_verdicts():
    m = reife_metrics(LABELS, V0, V1, seed=3)
    coins = coin_flips(5, 3)
    r = [np.where((v == FAIL) | (v == T), c, v) for v, c in ((V0, coins[0]), (V1, coins[1]))]
    want = np.mean([krippendorff_alpha_nominal([[int(p), int(q)] for p, q in zip(LABELS, x)]) for x in r])
    assert m["alpha"].value == pytest.approx(want)
    assert m["alpha"].extra["failures_order0"] == 1 and m["alpha"].extra["ties_order0"] == 1


def test_many_runs_equal_one_run_at_a_time():
    rng = np.random.default_rng(5)
    n, runs = 60, 6
    labels = rng.integers(0, 2, n).astype(np.int8)
    v0 = rng.choice(np.array([A, B, T, FAIL], np.int8), size=(runs, n), p=[.45, .45, .05, .05])
    v1 = rng.choice(np.array([A, B, T, FAIL], np.int8), size=(runs, n), p=[.45, .45, .05, .05])
    boot = Bootstrap.draw(n, 200, seed=8)
    many = reife_metrics_many(labels, v0, v1, boot=boot, seed=4)
    acc = pairwise_accuracy_many(labels, v0, v1, boot=boot, policy="flip", seed=4)
    for r in range(runs):
        one = reife_metrics(labels, v0[r], v1[r], boot=boot, seed=4)
        for name, arr in many.items():
            assert arr[r].value == pytest.approx(one[name].value, abs=1e-12)
            assert (arr[r].ci_low, arr[r].ci_high) == pytest.approx((one[name].ci_low, one[name].ci_high), abs=1e-12)
        assert acc.values[r] == pytest.approx(one["accuracy_flip"].value, abs=1e-12)
    assert many["accuracy"].extra["failures_order0"].shape == (runs,)


def test_reife_include_subset_and_unknown_metric():
    out = reife_metrics_many(LABELS, V0, V1, include=("alpha", "accuracy"))
    assert list(out) == ["alpha", "accuracy"]
    with pytest.raises(InvalidInput, match="unknown metrics"):
        reife_metrics_many(LABELS, V0, V1, include=("acc",))


def test_judgebench_by_hand():
    assert judgebench_scores(LABELS, V0, V1).tolist() == [2, 0, 0, 1, 0]
    m = judgebench_accuracy(LABELS, V0, V1)
    assert m.value == pytest.approx(2 / 5)
    assert m.extra == {**m.extra, "inconsistent": 3, "wrong": 0}


def test_logprob_verdicts_by_hand():
    lp_first = np.log([[0.07, 0.2, 0.5, np.nan], [0.4, 0.9, 0.5, np.nan]])
    lp_second = np.log([[0.03, 0.8, 0.5, np.nan], [0.6, 0.1, 0.5, np.nan]])
    verdicts, p_a = logprob_verdicts(lp_first, lp_second)
    # ex 0: p(A) = .7 (order 0) and .6 (order 1: first shown is B, p(first) = .4) → .65 → A
    # ex 1: .2 and 1 − .9 = .1 → .15 → B; ex 2: exactly .5 → tie; ex 3: no log-probs → failure
    assert verdicts.tolist() == [A, B, T, FAIL]
    np.testing.assert_allclose(p_a[:3], [0.65, 0.15, 0.5])
    one_order, p = logprob_verdicts(np.log([0.3]), np.log([0.7]))
    assert one_order.tolist() == [B] and p[0] == pytest.approx(0.3)
    v, p = logprob_verdicts(np.array([[-1.0], [np.nan]]), np.array([[-2.0], [np.nan]]))   # order 1 missing
    assert v.tolist() == [A] and p[0] == pytest.approx(1 / (1 + np.exp(-1.0)))


def test_bad_inputs_are_refused_with_the_field_named():
    with pytest.raises(InvalidInput, match="unknown codes"):
        accuracy(LABELS, np.array([0, 1, 5, 0, 0], np.int8))
    with pytest.raises(InvalidInput, match="labels"):
        accuracy(np.array([0, FAIL], np.int8), np.array([0, 0], np.int8))
    with pytest.raises(InvalidInput, match="integer verdict codes"):
        accuracy(LABELS, np.zeros(5))
    with pytest.raises(InvalidInput, match="do not match"):
        accuracy(LABELS, np.zeros(4, np.int8))
    with pytest.raises(InvalidInput, match="unknown tie policy"):
        accuracy(LABELS, V0, policy="coin")
    with pytest.raises(InvalidInput, match="one run"):
        accuracy(LABELS, np.zeros((2, 5), np.int8))


def test_encoded_strings_flow_through():
    labels = encode_verdicts(["A", "B", "tie"])
    verdicts = encode_verdicts(["A", None, "tie"])
    assert accuracy(labels, verdicts).value == pytest.approx(2 / 3)


def test_no_examples_gives_nan_not_a_crash():
    empty = np.zeros(0, np.int8)
    for m in (accuracy(empty, empty), kappa(empty, empty), alpha_nominal(empty, empty),
              reife_metrics(empty, empty, empty)["alpha"]):
        assert m.n == 0 and np.isnan(m.value) and np.isnan(m.ci_low)
