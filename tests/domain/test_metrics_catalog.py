"""The metric catalog: one meaning per name, the headline metrics, the unknown-metric error, and
`autorater metrics list` through the CLI runner."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from registry.cli.main import app
from registry.domain.metrics.catalog import (
    METRICS,
    SLICED,
    TASK_TYPES,
    headline_metric,
    metrics_for,
    require_metric,
)
from registry.errors import InvalidInput


def test_every_entry_is_complete_and_headlines_are_catalogued():
    assert METRICS  # which names exactly: tests/test_metric_catalog_e2e.py, against what runs store
    for name, m in METRICS.items():
        assert m.name == name and m.task_types and set(m.task_types) <= set(TASK_TYPES), name
        assert m.definition.strip() and "\n" not in m.definition and m.source.strip(), name
        assert m.kind in ("mean", "statistic"), name
    for task_type in TASK_TYPES:
        for tie_labels in (False, True):
            assert require_metric(task_type, headline_metric(task_type, tie_labels=tie_labels))
        assert all(require_metric(task_type, name) for name in SLICED[task_type])
    assert headline_metric("pairwise", tie_labels=True) == "accuracy_3way"
    assert headline_metric("pairwise") == "accuracy" and headline_metric("classification") == "balanced_accuracy"
    # one name, one meaning: LLMBar's compatibility κ is named as such, and the bare names are gone
    assert "kappa_average" not in METRICS and "kappa_agreement" not in METRICS
    assert "LLMBar" in METRICS["llmbar_kappa_average"].source and "cohen_kappa_average" in METRICS
    # the kind decides how paired tests treat a metric: κ and correlations are statistics
    assert METRICS["accuracy"].kind == "mean" and METRICS["cohen_kappa_average"].kind == "statistic"
    assert METRICS["spearman"].kind == "statistic"
    assert "parsed" in METRICS["coverage"].definition


def test_unknown_metric_names_the_metric_and_lists_those_of_the_task_type():
    with pytest.raises(InvalidInput) as err:
        require_metric("pairwise", "nonexistent")
    msg = str(err.value)
    assert err.value.exit_code == 2 and err.value.field == "metric"
    assert "unknown metric 'nonexistent' for pairwise datasets" in msg
    listed = re.search(r"metrics of pairwise datasets: ([^(]+)", msg).group(1)
    assert [n.strip() for n in listed.split(",")] == [m.name for m in metrics_for("pairwise")]
    assert "autorater metrics list --task-type pairwise" in msg
    assert "did you mean 'accuracy'" in str(pytest.raises(InvalidInput, require_metric, "pairwise", "acuracy").value)
    # a metric of another task type says so, instead of "unknown"
    with pytest.raises(InvalidInput, match="'roc_auc' is not defined for pairwise datasets .*classification"):
        require_metric("pairwise", "roc_auc")
    with pytest.raises(InvalidInput, match="unknown task type 'pair'; choose one of pairwise, pointwise, classification"):
        metrics_for("pair")


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
