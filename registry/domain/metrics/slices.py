"""Any metric per value of a column (``slice = "category=natural"``), with a record of the slices
that were too small to compute.

Examples whose value is missing (None/NaN) belong to no slice. There is no cap on the number of
slices; a slice with fewer than ``min_size`` examples is skipped and listed in the
:class:`SliceReport` with its size and the reason, so a missing slice is never silent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from registry.domain.metrics.value import ALL, MetricArray, MetricValue

MetricResult = MetricValue | MetricArray | Mapping[str, MetricValue | MetricArray]
MAX_LISTED_SKIPS = 100
"""A report lists at most this many skipped slices by name (smallest first); it counts all."""


@dataclass(frozen=True)
class SkippedSlice:
    """A slice that was not computed."""

    slice: str
    """``"<column>=<value>"``."""
    n: int
    """Examples in the slice."""
    reason: str


@dataclass(frozen=True)
class SliceReport:
    """What slicing by one column computed and skipped."""

    column: str
    min_size: int
    """Smallest slice computed (examples)."""
    computed: int
    """Slices computed."""
    skipped: tuple[SkippedSlice, ...]
    """Every slice skipped (see :meth:`as_dict` for the stored, bounded form)."""
    missing: int = 0
    """Examples without a value in the column (in no slice)."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready; lists at most :data:`MAX_LISTED_SKIPS` skipped slices (smallest first)
        and always their total."""
        listed = sorted(self.skipped, key=lambda s: (s.n, s.slice))[:MAX_LISTED_SKIPS]
        out: dict[str, Any] = {"column": self.column, "min_size": self.min_size, "computed": self.computed,
                               "skipped_total": len(self.skipped),
                               "skipped": [{"slice": s.slice, "n": s.n, "reason": s.reason} for s in listed],
                               "missing": self.missing}
        if len(listed) < len(self.skipped):
            out["skipped_not_listed"] = len(self.skipped) - len(listed)
        return out


def _is_missing(c: Any) -> bool:
    return c is None or (isinstance(c, float) and np.isnan(c))


def groups(values: Sequence[Any] | np.ndarray) -> tuple[list[tuple[Any, np.ndarray]], int]:
    """``([(value, example indices)…] sorted by str(value), examples without a value)``."""
    members: dict[Any, list[int]] = {}
    missing = 0
    for i, c in enumerate(values):
        if _is_missing(c):
            missing += 1
        else:
            members.setdefault(c, []).append(i)
    ordered = sorted(members.items(), key=lambda kv: str(kv[0]))
    return [(value, np.asarray(idx, dtype=np.int64)) for value, idx in ordered], missing


def coded_groups(codes: np.ndarray, values: Sequence[Any]) -> tuple[list[tuple[Any, np.ndarray]], int]:
    """:func:`groups` of examples given as codes: example i has value ``values[codes[i]]``, or none when
    ``codes[i]`` is negative. ``values`` must be distinct and none of them missing (e.g. an Arrow
    dictionary's); the same groups, in the same order, without a Python pass over the examples."""
    codes = np.asarray(codes, dtype=np.int64)
    present = codes >= 0
    counts = np.bincount(codes[present], minlength=len(values))
    order = np.argsort(np.where(present, codes, len(values)), kind="stable")   # each value's examples ascending
    starts = np.concatenate([[0], np.cumsum(counts)])
    found = [(values[c], order[starts[c]:starts[c + 1]].astype(np.int64)) for c in np.flatnonzero(counts)]
    found.sort(key=lambda kv: str(kv[0]))
    return found, int((~present).sum())


def slice_name(field: str, value: Any) -> str:
    """``"<field>=<value>"``."""
    return f"{field}={value}"


def _relabel(result: MetricResult, name: str) -> list[MetricValue | MetricArray]:
    items = list(result.values()) if isinstance(result, Mapping) else [result]
    return [replace(m, slice=name) for m in items]


def sliced(metric: Callable[[np.ndarray], MetricResult], values: Sequence[Any] | np.ndarray | None, *, field: str,
           min_size: int = 10, grouped: tuple[list[tuple[Any, np.ndarray]], int] | None = None
           ) -> tuple[list[MetricValue | MetricArray], SliceReport]:
    """``metric(indices)`` on the examples of each value of ``values`` (one per example), each
    result labelled ``"<field>=<value>"``; slices with fewer than ``min_size`` examples are skipped
    and reported. ``metric`` receives the example indices of the slice and subsets its own data.
    ``grouped``: the examples already grouped (:func:`groups` or :func:`coded_groups` of the values)."""
    found, missing = grouped if grouped is not None else groups(values)
    out: list[MetricValue | MetricArray] = []
    skipped: list[SkippedSlice] = []
    for value, idx in found:
        name = slice_name(field, value)
        if len(idx) < min_size:
            skipped.append(SkippedSlice(name, len(idx), f"fewer than {min_size} examples"))
            continue
        out += _relabel(metric(idx), name)
    return out, SliceReport(field, min_size, len(found) - len(skipped), tuple(skipped), missing)


def _subset(a: Any, idx: np.ndarray) -> Any:
    if isinstance(a, np.ndarray):
        return a[..., idx]                     # (n,) or (R, n): examples on the last axis
    return [a[i] for i in idx]


def by_slice(metric: Callable[..., MetricResult], category: Sequence[Any] | np.ndarray, *arrays: Any,
             field: str = "category", include_all: bool = False, min_size: int = 1,
             **kwargs: Any) -> list[MetricValue | MetricArray]:
    """Apply ``metric(*arrays_subset, **kwargs)`` to the examples of each category value.

    ``arrays`` are per-example (numpy arrays with examples on the last axis, or lists); each
    slice's result is labelled ``"<field>=<value>"`` (``"all"`` for the whole set with
    ``include_all``). Missing categories (None/NaN) belong to no slice; slices smaller than
    ``min_size`` are skipped (use :func:`sliced` for the report of what was skipped). Every call
    draws its own bootstrap unless ``kwargs`` pass one."""
    out: list[MetricValue | MetricArray] = []
    if include_all:
        out += _relabel(metric(*arrays, **kwargs), ALL)
    values, _ = sliced(lambda idx: metric(*(_subset(a, idx) for a in arrays), **kwargs), category,
                       field=field, min_size=min_size)
    return out + values
