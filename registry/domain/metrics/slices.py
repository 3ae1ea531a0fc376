"""Any metric per category value (``slice = "category=natural"``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from registry.domain.metrics.value import ALL, MetricArray, MetricValue

MetricResult = MetricValue | MetricArray | Mapping[str, MetricValue | MetricArray]


def _subset(a: Any, mask: np.ndarray) -> Any:
    if isinstance(a, np.ndarray):
        return a[..., mask]                    # (n,) or (R, n): examples on the last axis
    return [x for x, keep in zip(a, mask) if keep]


def _relabel(result: MetricResult, name: str) -> list[MetricValue | MetricArray]:
    items = list(result.values()) if isinstance(result, Mapping) else [result]
    return [replace(m, slice=name) for m in items]


def by_slice(metric: Callable[..., MetricResult], category: Sequence[Any] | np.ndarray, *arrays: Any,
             field: str = "category", include_all: bool = False, min_size: int = 1,
             **kwargs: Any) -> list[MetricValue | MetricArray]:
    """Apply ``metric(*arrays_subset, **kwargs)`` to the examples of each category value.

    ``arrays`` are per-example (numpy arrays with examples on the last axis, or lists); each
    slice's result is labelled ``"<field>=<value>"`` (``"all"`` for the whole set with
    ``include_all``). Missing categories (None/NaN) belong to no slice; slices smaller than
    ``min_size`` are skipped. Every call draws its own bootstrap unless ``kwargs`` pass one."""
    cats = np.asarray(category, dtype=object)
    present = [c for c in cats if not (c is None or (isinstance(c, float) and np.isnan(c)))]
    out: list[MetricValue | MetricArray] = []
    if include_all:
        out += _relabel(metric(*arrays, **kwargs), ALL)
    for value in sorted(set(present), key=str):
        mask = np.array([c == value for c in cats], dtype=bool)
        if mask.sum() < min_size:
            continue
        out += _relabel(metric(*(_subset(a, mask) for a in arrays), **kwargs), f"{field}={value}")
    return out
