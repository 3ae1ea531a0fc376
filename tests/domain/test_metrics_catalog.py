"""The metric catalog: one meaning per name, the headline metrics, the unknown-metric error
(`autorater metrics list`: tests/cli/test_metrics.py)."""

from __future__ import annotations

import re

import pytest

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
    assert METRICS  # which names exactly: tests/e2e/test_metric_catalog.py, against what runs store
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
