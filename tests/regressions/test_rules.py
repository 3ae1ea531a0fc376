"""Unit tests of the pure regression rules, the settings and the notification adapter."""

from __future__ import annotations

import logging
import socket

import numpy as np
import pytest

from registry.adapters.notify import notify
from registry.config import Settings
from registry.domain.metrics import Bootstrap
from registry.domain.regressions import decide_promotion, is_regression, paired_correlation_bootstrap, severity
from registry.errors import InvalidInput


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


def test_paired_correlation_bootstrap():
    rng = np.random.default_rng(0)
    human = rng.normal(size=200)
    good = human + rng.normal(scale=0.5, size=200)
    noise = rng.normal(size=200)
    same = paired_correlation_bootstrap(human, good, human, good, method="spearman", boot=Bootstrap.draw(200, 300))
    assert same.difference == 0.0 and same.p_value == 1.0 and same.ci_low == same.ci_high == 0.0
    drop = paired_correlation_bootstrap(human, noise, human, good, method="spearman", boot=Bootstrap.draw(200, 300))
    assert drop.difference < -0.5 and drop.ci_high < 0 and drop.p_value == pytest.approx(1 / 301)
    assert drop.extra["value_b"] > 0.8 and abs(drop.extra["value_a"]) < 0.2
    assert drop.difference == pytest.approx(drop.extra["value_a"] - drop.extra["value_b"])
    with pytest.raises(InvalidInput, match="one length"):
        paired_correlation_bootstrap(human, good[:10], human, good, method="spearman")
    with pytest.raises(InvalidInput, match="unknown correlation"):
        paired_correlation_bootstrap(human, good, human, good, method="cosine")


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
