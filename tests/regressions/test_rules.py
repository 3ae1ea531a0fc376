"""Unit tests of the pure regression rules, the settings and the notification adapter."""

from __future__ import annotations

import logging
import socket

import numpy as np
import pytest

from registry.adapters.notify import notify
from registry.config import Settings
from registry.domain.judgments import encode_verdicts
from registry.domain.metrics.per_example import (
    ClassificationJudgments,
    PairwiseJudgments,
    PointwiseJudgments,
    decompose,
)
from registry.domain.regressions import decide_promotion, is_regression, severity
from registry.errors import InvalidInput
from registry.services.regressions import _compare


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


def _pointwise(human, predicted, ids=None):
    ids = ids if ids is not None else [str(i) for i in range(len(human))]
    return decompose("spearman", PointwiseJudgments(ids, np.asarray(human, float), np.asarray(predicted, float)))


def test_correlation_drop_is_the_metrics_own_paired_test():
    rng = np.random.default_rng(0)
    human = rng.normal(size=200)
    good = human + rng.normal(scale=0.5, size=200)
    noise = rng.normal(size=200)
    same = _compare("pointwise", _pointwise(human, good), _pointwise(human, good), n_boot=300, seed=0)
    assert same["delta"] == 0.0 and same["p_value"] == 1.0 and same["ci_low"] == same["ci_high"] == 0.0
    drop = _compare("pointwise", _pointwise(human, noise), _pointwise(human, good), n_boot=300, seed=0)
    assert drop["delta"] < -0.5 and drop["ci_high"] < 0 and drop["p_value"] == pytest.approx(1 / 301)
    assert drop["baseline_value"] > 0.8 and abs(drop["candidate_value"]) < 0.2
    assert drop["delta"] == pytest.approx(drop["candidate_value"] - drop["baseline_value"])
    assert (drop["method"], drop["n_shared"]) == ("paired_bootstrap", 200) and "mcnemar" not in drop["details"]
    # paired by example id, each run against its own human scores (a relabelled version); a rating
    # that did not parse is left out, as in the stored metric
    relabelled = human.copy()
    relabelled[:20] = rng.normal(size=20)
    missing = noise.copy()
    missing[5] = np.nan
    part = _compare("pointwise", _pointwise(relabelled, missing), _pointwise(human[:150], good[:150],
                                                                             [str(i) for i in range(150)]),
                    n_boot=300, seed=0)
    assert part["n_shared"] == 149
    assert _compare("pointwise", _pointwise(human[:2], good[:2]), _pointwise(human, good), n_boot=50, seed=0) is None
    with pytest.raises(InvalidInput, match="cannot be decomposed"):
        decompose("cosine", PointwiseJudgments(["a", "b"], np.ones(2), np.ones(2)))


def _pairwise(metric: str, labels: list[str], *orders: list[str]):
    ids = [str(i) for i in range(len(labels))]
    return decompose(metric, PairwiseJudgments(ids, encode_verdicts(labels), tuple(encode_verdicts(v) for v in orders)))


def test_pairwise_drop_is_tested_on_the_headline_metric_and_mcnemar_only_where_it_is_0_1():
    labels = ["A", "B"] * 40
    right = list(labels)
    swapped = [{"A": "B", "B": "A"}[x] for x in labels]
    # both orders judged, `accuracy`: wrong in one order of 20 examples is ½ credit each; credit is
    # not 0/1 correctness, so McNemar's test (on "full credit", another metric) is not recorded
    cand = _pairwise("accuracy", labels, right, swapped[:20] + right[20:])
    base = _pairwise("accuracy", labels, right, right)
    r = _compare("pairwise", cand, base, n_boot=500, seed=0)
    assert r["delta"] == pytest.approx(-20 * 0.5 / 80) and r["candidate_value"] == pytest.approx(0.875)
    assert r["p_value"] == pytest.approx(1 / 501) and "mcnemar" not in r["details"]
    # one order on a tie-labelled set, `accuracy_3way`: 0/1 correctness, McNemar's test of that same metric
    tied = ["A", "B", "tie", "tie"] * 20
    cand = _pairwise("accuracy_3way", tied, ["A"] * 80)          # right on the 20 A rows only
    base = _pairwise("accuracy_3way", tied, tied)                # right everywhere
    r = _compare("pairwise", cand, base, n_boot=500, seed=0)
    assert r["candidate_value"] == pytest.approx(20 / 80) and r["baseline_value"] == pytest.approx(80 / 80)
    mc = r["details"]["mcnemar"]
    assert mc["test"] == "mcnemar(per-example accuracy_3way)" and (mc["only_a"], mc["only_b"]) == (0, 60)
    assert mc["difference"] == pytest.approx(r["delta"]) and mc["p_value"] < 1e-6


def test_classification_drop_is_tested_on_balanced_accuracy():
    labels = ["yes"] * 10 + ["no"] * 90
    ids = [str(i) for i in range(100)]
    base = decompose("balanced_accuracy", ClassificationJudgments(ids, labels, labels, classes=["no", "yes"]))
    # right on every "no" but on no "yes": accuracy 0.9, balanced accuracy 0.5
    cand = decompose("balanced_accuracy", ClassificationJudgments(ids, labels, ["no"] * 100, classes=["no", "yes"]))
    r = _compare("classification", cand, base, n_boot=300, seed=0)
    assert r["candidate_value"] == pytest.approx(0.5) and r["baseline_value"] == pytest.approx(1.0)
    assert r["delta"] == pytest.approx(-0.5) and r["p_value"] == pytest.approx(1 / 301)
    assert "mcnemar" not in r["details"]  # McNemar would test accuracy (a drop of 0.1), not balanced accuracy


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


def test_settings_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTORATER_REGRESSION_THRESHOLD", "0.1")
    monkeypatch.setenv("AUTORATER_REGRESSION_ALPHA", "0.01")
    monkeypatch.setenv("AUTORATER_WEBHOOK_URL", "http://127.0.0.1:9/x")
    s = Settings.from_env(home=str(tmp_path))
    assert (s.regression_threshold, s.regression_alpha, s.webhook_url) == (0.1, 0.01, "http://127.0.0.1:9/x")
    assert s.regression_major == 0.05 and s.webhook_timeout == 5.0
    assert Settings.from_env(home=str(tmp_path), regression_threshold=0.0).regression_threshold == 0.0
    monkeypatch.delenv("AUTORATER_WEBHOOK_URL")
    assert Settings.from_env(home=str(tmp_path)).webhook_url is None
    monkeypatch.setenv("AUTORATER_REGRESSION_THRESHOLD", "two percent")
    with pytest.raises(InvalidInput, match="AUTORATER_REGRESSION_THRESHOLD='two percent' is not a number"):
        Settings.from_env(home=str(tmp_path))
    monkeypatch.setenv("AUTORATER_REGRESSION_THRESHOLD", "0.02")
    monkeypatch.setenv("AUTORATER_REGRESSION_ALPHA", "1.5")
    with pytest.raises(InvalidInput, match="out of range"):
        Settings.from_env(home=str(tmp_path))


def test_unreachable_webhook_is_logged_not_raised(caplog):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with caplog.at_level(logging.WARNING, logger="registry.notify"):
        ok = notify("regression.detected", {"regression": {"id": 1}}, summary="regression 1",
                    webhook_url=f"http://127.0.0.1:{port}/hook", timeout=2)
    assert ok is False
    assert any(f"127.0.0.1:{port}" in m and "failed" in m and "regression 1" in m for m in caplog.messages)
