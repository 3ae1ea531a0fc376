"""The metric catalog: every metric a run stores, with its one meaning, its definition and its
source, and the headline metric that rankings use unless told otherwise.

One name, one meaning: a figure whose definition would change with the data (e.g. accuracy on
sets whose human labels include ties) gets its own name (``accuracy_3way``) instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from registry.errors import InvalidInput

Kind = Literal["mean", "statistic"]
"""``mean``: the mean of per-example values (paired tests resample those values);
``statistic``: anything else (κ, α, correlations, F1, AUC), paired-tested by recomputing the
statistic of both runs on the same resamples."""


@dataclass(frozen=True)
class MetricInfo:
    """One metric of the catalog."""

    name: str
    task_types: tuple[str, ...]
    definition: str
    """One line: what the number is."""
    source: str
    """Where the definition comes from (paper / benchmark / this project)."""
    kind: Kind = "mean"
    higher_is_better: bool = True


METRICS: dict[str, MetricInfo] = {}


def _add(name: str, task_types: str | tuple[str, ...], definition: str, source: str, kind: Kind = "mean",
         higher_is_better: bool = True) -> None:
    tt = (task_types,) if isinstance(task_types, str) else task_types
    METRICS[name] = MetricInfo(name, tt, definition, source, kind, higher_is_better)


# The entries are filled in below (pairwise, pointwise, classification, cost).

HEADLINE: dict[str, str] = {"pairwise": "accuracy", "pointwise": "spearman", "classification": "balanced_accuracy"}
"""Headline per task type; pairwise sets whose human labels include ties use ``accuracy_3way``."""


def headline_metric(task_type: str, *, tie_labels: bool = False) -> str:
    """The metric rankings use by default for a dataset of ``task_type``."""
    if task_type == "pairwise" and tie_labels:
        return "accuracy_3way"
    return HEADLINE[task_type]


def metrics_for(task_type: str) -> list[MetricInfo]:
    """Every catalogued metric a run on ``task_type`` can have, sorted by name."""
    return sorted((m for m in METRICS.values() if task_type in m.task_types), key=lambda m: m.name)


def require_metric(task_type: str, name: str) -> MetricInfo:
    """The catalog entry of ``name`` for ``task_type``; an unknown name is an
    :class:`~registry.errors.InvalidInput` listing the metrics of that task type."""
    info = METRICS.get(name)
    if info is None or task_type not in info.task_types:
        names = ", ".join(m.name for m in metrics_for(task_type))
        raise InvalidInput(f"unknown metric {name!r} for {task_type} datasets; metrics: {names} "
                           "(see `autorater metrics list --task-type " + task_type + "`)", field="metric")
    return info
