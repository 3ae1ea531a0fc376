"""Settings (registry.config) read from the environment: the regression gates and the webhook."""

from __future__ import annotations

import pytest

from registry.config import Settings
from registry.errors import InvalidInput


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
