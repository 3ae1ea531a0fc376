"""The pure regression rules (registry.domain.regressions): what counts as a regression, its
severity, and the champion rule."""

from __future__ import annotations

import pytest

from registry.domain.regressions import decide_promotion, is_regression, severity


def test_drop_must_be_beyond_threshold_and_significant():
    assert is_regression(-0.10, 0.001, threshold=0.02, alpha=0.05)
    assert not is_regression(-0.10, 0.05, threshold=0.02, alpha=0.05)      # p must be below alpha
    assert not is_regression(-0.02, 0.001, threshold=0.02, alpha=0.05)     # beyond, not at, the threshold
    assert is_regression(-0.0201, 0.001, threshold=0.02, alpha=0.05)
    assert not is_regression(+0.30, 0.001, threshold=0.02, alpha=0.05)     # an improvement
    assert not is_regression(float("nan"), 0.001, threshold=0.0, alpha=1.0)
    assert is_regression(-1e-6, 0.5, threshold=0.0, alpha=1.0)


def test_severity_by_size_of_drop():
    assert severity(-0.05, major=0.05) == "major"
    assert severity(-0.049, major=0.05) == "minor"
    assert severity(-0.8, major=0.05) == "major"


def _decide(**kw):
    base = {"autorater": "j", "candidate": "j@3", "champion": "j@2", "candidate_scores": {"d@1 p@1": 0.8},
            "champion_scores": {"d@1 p@1": 0.7, "e@1 p@1": 0.9}, "open_regressions": ()}
    return decide_promotion(**(base | kw))


def test_champion_rule():
    better = _decide()
    assert better.promoted and better.shared == ("d@1 p@1",) and "0.8000 > champion's 0.7000" in better.reason
    blocked = _decide(open_regressions=[7, 3])
    assert not blocked.promoted and blocked.open_regressions == (3, 7) and "2 open regression(s)" in blocked.reason
    tie = _decide(candidate_scores={"d@1 p@1": 0.7})
    assert not tie.promoted and "ties the champion's" in tie.reason
    worse = _decide(candidate_scores={"d@1 p@1": 0.6, "x@1 p@1": 1.0})   # x is not shared: ignored
    assert not worse.promoted and worse.candidate_score == pytest.approx(0.6) and "is below" in worse.reason
    apart = _decide(candidate_scores={"x@1 p@1": 1.0})
    assert not apart.promoted and "share no evaluated" in apart.reason and apart.shared == ()
    first = _decide(champion=None, champion_scores={})
    assert first.promoted and "no champion yet" in first.reason
    first_blocked = _decide(champion=None, champion_scores={}, open_regressions=[1])
    assert not first_blocked.promoted
    same = _decide(champion="j@3")
    assert not same.promoted and "already holds" in same.reason
