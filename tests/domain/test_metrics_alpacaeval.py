"""AlpacaEval evaluator-table metrics on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from registry.domain.metrics import (
    Bootstrap,
    has_list,
    human_agreement,
    human_agreement_loo,
    length_bias,
    list_bias,
    per_1000,
    position_bias,
)

A, B, T, F = 0, 1, 2, -1


def test_human_agreement_against_the_mode():
    annotators = np.array([[A, A, A, B], [A, B, B, T], [A, A, B, B]], np.int8)
    # row 0: mode A, verdict A → 1; row 1: mode B, verdict tie → 1 − |1.5 − 2| = .5;
    # row 2: modes A and B tie, verdict A → expected (1 + 0)/2 = .5
    m = human_agreement(annotators, np.array([A, T, A], np.int8))
    assert m.value == pytest.approx(2 / 3)
    failed = human_agreement(annotators, np.array([A, F, A], np.int8))    # failures are left out
    assert failed.value == pytest.approx(1.5 / 2) and failed.extra["failures"] == 1
    two_samples = human_agreement(annotators, np.array([[A, T, A], [B, B, B]], np.int8))
    assert two_samples.value == pytest.approx((2.0 + 0.0 + 1.0 + 0.5) / 6)


def test_leave_one_out_agreement_of_humans():
    annotators = np.array([[A, A, B], [A, B, T]], np.int8)
    # annotator 0: .5 and .25; annotator 1: .5 and .25; annotator 2: 0 and .5 → mean of means 1/3
    m = human_agreement_loo(annotators, boot=Bootstrap.draw(2, 50))
    assert m.value == pytest.approx(1 / 3)
    unanimous = human_agreement_loo(np.array([[A, A, A], [B, B, B]], np.int8))
    assert unanimous.value == 1.0


def test_position_bias():
    v0 = np.array([A, A, B, T], np.int8)
    v1 = np.array([B, A, F, B], np.int8)       # order 1 shows B first
    assert position_bias(v0, v1).value == pytest.approx(4.5 / 7)
    assert position_bias(v0).value == pytest.approx(2.5 / 4)
    assert position_bias(np.array([A, A], np.int8), np.array([A, A], np.int8)).value == 0.5   # consistent judge


def test_length_bias_counts_decisive_verdicts_on_pairs_differing_by_more_than_30():
    la, lb = np.array([100, 10, 50, 200]), np.array([10, 100, 60, 100])
    v0 = np.array([A, A, A, T], np.int8)
    m = length_bias(v0, la, lb)
    assert m.value == pytest.approx(1 / 2) and m.extra["eligible_pairs"] == 3
    texts_a = ["x" * 100, "y" * 10]
    texts_b = ["z" * 10, "w" * 100]
    assert length_bias(np.array([B, B], np.int8), texts_a, texts_b).value == pytest.approx(1 / 2)
    assert length_bias(np.array([A, B], np.int8), texts_a, texts_b).value == 1.0


def test_has_list_and_list_bias():
    assert has_list("Steps:\n- one\n- two")
    assert has_list("1. first\n2) second")
    assert not has_list("- only one item")
    assert not has_list("a sentence - with a dash\nand another - line")
    a = ["- a\n- b", "plain", "plain", "* x\n* y"]
    b = ["plain", "1. a\n2. b", "plain", "- c\n- d"]
    m = list_bias(np.array([A, A, B, A], np.int8), a, b)
    # eligible: rows 0 and 1 (exactly one list); row 0 picks the list, row 1 does not
    assert m.value == pytest.approx(0.5) and m.extra["eligible_pairs"] == 2


def test_price_and_time_per_1000():
    assert per_1000(np.array([0.001, 0.003, np.nan])).value == pytest.approx(2.0)
    t = per_1000(np.array([1.5, 2.5]), name="seconds_per_1000")
    assert t.value == pytest.approx(2000.0) and t.name == "seconds_per_1000"


@pytest.mark.parametrize("k", [2, 3, 5])
def test_loo_agreement_from_vote_counts_equals_the_others_modes(k):
    """Each annotator's 'others' taken as every vote counted less theirs: the same value and resampled
    values as recounting the others' votes with that annotator removed (the loop it replaced)."""
    from registry.domain.metrics._counts import weighted_sums
    from registry.domain.metrics.alpacaeval import expected_scores
    from registry.domain.metrics.annotators import modes

    rng = np.random.default_rng(k)
    votes = rng.choice(np.array([F, A, B, T], np.int8), size=(400, k), p=[0.15, 0.4, 0.3, 0.15])
    boot = Bootstrap.draw(400, 80, 3)
    got = human_agreement_loo(votes, boot=boot)
    num, den = np.zeros((k, 400)), np.zeros((k, 400))
    for j in range(k):
        others = votes.copy()
        others[:, j] = F
        s = expected_scores(votes[:, j], modes(others))
        num[j], den[j] = np.where(np.isnan(s), 0.0, s), ~np.isnan(s)
    (pn, pd_), samples = weighted_sums(np.stack([num, den]), boot)
    with np.errstate(invalid="ignore", divide="ignore"):
        want = np.nanmean(np.where(pd_ > 0, pn / np.where(pd_ > 0, pd_, 1), np.nan))
    assert got.value == pytest.approx(float(want), abs=0, rel=0)
    again = human_agreement_loo(votes, boot=boot)
    assert (again.ci_low, again.ci_high) == (got.ci_low, got.ci_high)
