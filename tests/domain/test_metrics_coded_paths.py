"""Code paths of the metrics added for the 1M-pair score step (issue 12 item 2), each against the plain
version it stands for: the same values, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from registry.domain.judgments import FAIL
from registry.domain.metrics.alpacaeval import (
    _expected_score,
    expected_scores,
    human_agreement,
    preferences,
)
from registry.domain.metrics.annotators import modes
from registry.domain.metrics.bootstrap import Bootstrap
from registry.domain.metrics.slices import coded_groups, groups, sliced
from registry.domain.metrics.value import MetricValue


def _same_groups(got, want) -> None:
    (found, missing), (found_w, missing_w) = got, want
    assert missing == missing_w
    assert [v for v, _ in found] == [v for v, _ in found_w]
    for (_, a), (_, b) in zip(found, found_w):
        assert a.dtype == b.dtype == np.int64
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("seed", range(4))
def test_coded_groups_is_groups_of_the_values(seed):
    rng = np.random.default_rng(seed)
    values = ["b", "a", "10", "2", "é", "", "Z", "a b"][: int(rng.integers(1, 9))]
    n = int(rng.integers(0, 500))
    codes = rng.integers(-1, len(values), n)
    keys = [values[c] if c >= 0 else None for c in codes]
    _same_groups(coded_groups(codes, values), groups(keys))


def test_coded_groups_edge_cases():
    _same_groups(coded_groups(np.zeros(0, np.int64), []), groups([]))
    _same_groups(coded_groups(np.array([-1, -1]), ["a"]), groups([None, None]))
    _same_groups(coded_groups(np.array([1, 1, 0]), ["x", "y"]), groups(["y", "y", "x"]))


def test_sliced_with_grouped_is_sliced_of_the_values():
    keys = ["b", "a", None, "b", "a", "a", "c"]

    def metric(idx):
        return MetricValue(name="m", value=float(idx.sum()), ci_low=None, ci_high=None, n=len(idx))

    want, report = sliced(metric, keys, field="f", min_size=2)
    got, report_got = sliced(metric, None, field="f", min_size=2, grouped=groups(keys))
    assert [(m.slice, m.value, m.n) for m in got] == [(m.slice, m.value, m.n) for m in want]
    assert report_got == report


@pytest.mark.parametrize("seed", range(3))
def test_expected_scores_is_expected_score_of_the_preferences(seed):
    rng = np.random.default_rng(seed)
    n = 2000
    votes = rng.integers(-1, 3, (n, 3)).astype(np.int8)
    mask = modes(votes)
    for codes in (rng.integers(-1, 3, n).astype(np.int8), rng.integers(-1, 3, (2, n)).astype(np.int8)):
        got = expected_scores(codes, mask)
        want = _expected_score(preferences(codes), mask)
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)        # NaN where the other has NaN, else bit for bit
    assert np.isnan(expected_scores(np.array([FAIL, 0]), np.zeros((2, 3), bool))).all()


def test_human_agreement_value_unchanged_on_every_mode_set():
    # every (verdict, set of modes) pair at once, against the formula written out
    codes = np.repeat(np.array([FAIL, 0, 1, 2], np.int8), 8)
    mask = np.tile((np.arange(8)[:, None] >> np.arange(3) & 1).astype(bool), (4, 1))
    got = expected_scores(codes, mask)
    pref = {FAIL: np.nan, 0: 1.0, 1: 2.0, 2: 1.5}
    for i, (c, m) in enumerate(zip(codes.tolist(), mask)):
        chosen = [p for p, on in zip((1.0, 2.0, 1.5), m) if on]
        want = np.nan if not chosen or np.isnan(pref[c]) else 1.0 - sum(abs(pref[c] - p) for p in chosen) / len(chosen)
        assert (np.isnan(got[i]) and np.isnan(want)) or got[i] == want
    votes = np.random.default_rng(1).integers(-1, 3, (50, 3)).astype(np.int8)
    assert human_agreement(votes, votes[:, 0], boot=Bootstrap.draw(50, 20, 0)).n == 50
