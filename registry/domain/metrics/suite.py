"""The metric registry: which functions compute a run's metrics, per task type.

Every metric a run stores is computed by a *metric function* registered here by name (like
lm-evaluation-harness's ``register_metric``): a function of :class:`RunScores` — the run's
judgments aligned with the human judgments — that returns the :class:`MetricValue`\\ s of the
catalog names it ``produces``. Scoring (:func:`registry.services.scoring.compute_metrics`) looks
the functions of a dataset's task type up here instead of branching on the task type:

* :func:`run_metrics` — every whole-run function of the task type, in registration order (the
  order the values are stored in; a later value of a name already given is dropped by scoring);
* :func:`slice_function` — the one ``per_slice`` function of the task type, which computes the
  headline metrics (:data:`~registry.domain.metrics.catalog.SLICED`) on a slice of the examples
  it can take part in (``eligible``), with the slice's own bootstrap.

The built-in functions are in :mod:`registry.domain.metrics.builtin`; third parties add one
through the entry-point group ``autorater.metrics`` (a ``"module:attr"`` naming a
:class:`MetricFunction`), and it is stored under the names it produces, which the catalog must
define.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

from registry.domain.judgments import encode_verdicts
from registry.domain.metrics.bootstrap import Bootstrap
from registry.domain.metrics.value import MetricValue
from registry.domain.types import TaskType
from registry.errors import RegistryError
from registry.plugins import PluginRegistry

HUMAN_FIELDS: dict[str, tuple[str, ...]] = {
    "pairwise": ("label", "response_a", "response_b", "annotator_labels"),
    "pointwise": ("score", "system_id"),
    "classification": ("label",),
}
"""Per task type, the dataset columns a metric function may read from :attr:`RunScores.human`."""


@dataclass(frozen=True)
class RunScores:
    """One run's judgments aligned with the human judgments of the examples it judged (position
    ``i`` is the same example in every field): what every metric function computes from."""

    task_type: TaskType
    human: Mapping[str, Sequence[Any]]
    """The dataset's :data:`HUMAN_FIELDS` of the task type for the judged examples (all ``None`` where
    the dataset has no such column)."""
    verdicts: tuple[Sequence[str | None], ...]
    """Per order judged (0, then 1 when judged) the verdict of each example: pairwise A / B / tie in
    the original orientation, a classification label, ``None`` for a parse failure (samples
    reduced by strict plurality)."""
    scores: tuple[np.ndarray, ...]
    """Per order, the mean score over samples (NaN: none)."""
    prob_a: tuple[np.ndarray, ...]
    """Per order, the mean P(response A is better) over samples (NaN: none)."""
    seconds: np.ndarray
    """Judge seconds per example (all orders and samples)."""
    tokens: np.ndarray
    """Prompt + completion tokens per example (all orders and samples)."""
    boot: Bootstrap
    """One seeded draw shared by every metric of the run."""
    seed: int = 0
    """The run's seed (coin flips, slice bootstraps)."""
    tie_labels: bool = False
    """Pairwise: the dataset's human labels (all rows, judged or not) include ties."""
    classes: tuple[str, ...] | None = None
    """Classification: the dataset's label set, in its order (``None``: the labels seen)."""
    price_per_1k_tokens: float | None = None
    """The evaluator's price, for ``price_per_1000``."""

    @property
    def n(self) -> int:
        """Judged examples."""
        return len(self.seconds)

    @property
    def both_orders(self) -> bool:
        """Whether the run judged pairwise examples in both orders."""
        return len(self.verdicts) > 1

    @cached_property
    def label_codes(self) -> np.ndarray:
        """Pairwise human labels as int8 codes (:func:`~registry.domain.judgments.encode_verdicts`)."""
        return encode_verdicts(self.human["label"])

    @cached_property
    def verdict_codes(self) -> tuple[np.ndarray, ...]:
        """Pairwise verdicts of each order as int8 codes (FAIL for a parse failure)."""
        return tuple(encode_verdicts(v) for v in self.verdicts)

    @cached_property
    def annotator_vote_codes(self) -> np.ndarray | None:
        """Pairwise annotator votes as codes, examples × annotators
        (:func:`~registry.domain.metrics.builtin.annotator_votes` of ``human["annotator_labels"]``)."""
        from registry.domain.metrics.builtin import annotator_votes

        return annotator_votes(list(self.human["annotator_labels"]))

    def subset(self, idx: np.ndarray, boot: Bootstrap) -> RunScores:
        """The examples at positions ``idx``, with ``boot`` drawn for them (a field's values that
        can take positions themselves, ``values.at(idx)``, do)."""
        def take(values: Any) -> Any:
            if isinstance(values, np.ndarray):
                return values[idx]
            at = getattr(values, "at", None)
            return at(idx) if callable(at) else [values[int(i)] for i in idx]

        return replace(self, human={k: take(v) for k, v in self.human.items()},
                       verdicts=tuple(take(v) for v in self.verdicts), scores=tuple(take(s) for s in self.scores),
                       prob_a=tuple(take(p) for p in self.prob_a), seconds=take(self.seconds),
                       tokens=take(self.tokens), boot=boot)


def _everyone(run: RunScores) -> np.ndarray:
    return np.arange(run.n)


@dataclass(frozen=True)
class MetricFunction:
    """A registered function computing some of a run's metrics."""

    name: str
    """Registry name (what computes, e.g. ``reife``), not a stored metric name."""
    task_types: tuple[TaskType, ...]
    compute: Callable[[RunScores], list[MetricValue]]
    """The values on the run (nothing when the run lacks what they need, e.g. a second order)."""
    produces: tuple[str, ...]
    """Every catalog name ``compute`` may return."""
    per_slice: bool = False
    """Computed on each slice of a sliced run (the headline metrics), not on the whole run."""
    eligible: Callable[[RunScores], np.ndarray] = field(default=_everyone)
    """``per_slice`` only: positions of the examples that can take part (slice sizes count them)."""


METRIC_FUNCTIONS: PluginRegistry[MetricFunction] = PluginRegistry("metrics")
"""Every metric function, by name, in registration order."""


def register_metric(name: str, task_types: Sequence[TaskType], *, produces: Sequence[str], per_slice: bool = False,
                    eligible: Callable[[RunScores], np.ndarray] | None = None
                    ) -> Callable[[Callable[[RunScores], list[MetricValue]]], Callable[[RunScores], list[MetricValue]]]:
    """Decorator: register the decorated ``compute(run)`` as the metric function ``name``."""
    def decorator(compute: Callable[[RunScores], list[MetricValue]]) -> Callable[[RunScores], list[MetricValue]]:
        METRIC_FUNCTIONS.register(name, MetricFunction(name, tuple(task_types), compute, tuple(produces), per_slice,
                                                       eligible or _everyone))
        return compute
    return decorator


def metric_functions(task_type: TaskType, *, per_slice: bool = False) -> list[MetricFunction]:
    """The functions registered for ``task_type`` (whole-run or per-slice), in registration order."""
    found = (METRIC_FUNCTIONS.get(name) for name in METRIC_FUNCTIONS.in_order())
    return [f for f in found if task_type in f.task_types and f.per_slice == per_slice]


def run_metrics(run: RunScores) -> list[MetricValue]:
    """Every whole-run metric of ``run``: the values of each function of its task type, in order."""
    return [value for f in metric_functions(run.task_type) for value in f.compute(run)]


def slice_function(task_type: TaskType) -> MetricFunction:
    """The per-slice (headline) function of ``task_type``."""
    found = metric_functions(task_type, per_slice=True)
    if len(found) != 1:
        raise RegistryError(f"expected one per-slice metric function for {task_type}; "
                            f"registered: {[f.name for f in found] or 'none'}")
    return found[0]


__all__ = ["HUMAN_FIELDS", "METRIC_FUNCTIONS", "MetricFunction", "RunScores", "metric_functions", "register_metric",
           "run_metrics", "slice_function"]
