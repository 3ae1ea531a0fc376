"""`autorater metrics list` through the CLI runner: every catalogued name whole at 80 columns, the
JSON listing per task type, and the error for an unknown task type."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from registry.cli.main import app
from registry.domain.metrics.catalog import METRICS, metrics_for


@pytest.fixture
def run_cli(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args), catch_exceptions=False)


def test_metrics_list_prints_every_name_whole_at_80_columns(run_cli):
    out = run_cli("metrics", "list")
    assert out.exit_code == 0
    assert max(len(line) for line in out.stdout.splitlines()) <= 80
    for name in METRICS:     # each name whole on one line, in the name column
        assert re.search(rf"^│ {re.escape(name)}\*? +│", out.stdout, re.MULTILINE), name
    assert "…" not in out.stdout
    assert "Krippendorff" in out.stdout and "source: LLMBar" in out.stdout
    pointwise = run_cli("metrics", "list", "--task-type", "pointwise").stdout
    assert "│ spearman* " in pointwise and "balanced_accuracy" not in pointwise


def test_metrics_list_json_and_bad_task_type(run_cli):
    rows = json.loads(run_cli("metrics", "list", "-t", "classification", "--json").stdout)
    assert [r["name"] for r in rows] == [m.name for m in metrics_for("classification")]
    by_name = {r["name"]: r for r in rows}
    assert by_name["balanced_accuracy"]["headline"] and not by_name["accuracy"]["headline"]
    assert by_name["roc_auc"]["source"] == "LLM-AggreFact" and by_name["roc_auc"]["kind"] == "statistic"
    everything = json.loads(run_cli("metrics", "list", "--json").stdout)
    assert {r["name"] for r in everything} == set(METRICS)
    bad = run_cli("metrics", "list", "--task-type", "ranking")
    assert bad.exit_code == 2 and "pairwise, pointwise, classification" in bad.stderr
