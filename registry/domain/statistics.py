"""Per-version statistics: rows, label or score distribution, text length quantiles, and
inter-annotator agreement where rows carry several annotators."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from registry.domain.agreement import (
    alpha_nominal_from_counts,
    krippendorff_alpha_interval,
    krippendorff_alpha_nominal,
    mean_pairwise_agreement,
    pairwise_agreement_from_counts,
)
from registry.domain.arrays import one_array

TEXT_FIELDS = ("instruction", "response", "response_a", "response_b", "reference")
QUANTILES = (0.0, 0.25, 0.5, 0.75, 0.95, 1.0)


def _round(x: float | None, nd: int = 4) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), nd)


def _value_counts(col: pa.ChunkedArray) -> dict[str, int]:
    vc = pc.value_counts(col.combine_chunks()).to_pylist()
    return {str(d["values"]): int(d["counts"]) for d in sorted(vc, key=lambda d: str(d["values"]))}


def compute_statistics(table: pa.Table, task_type: str) -> dict[str, Any]:
    """Statistics stored with a dataset version (plain JSON types only)."""
    stats: dict[str, Any] = {"rows": table.num_rows}
    names = set(table.column_names)
    if "label" in names:
        stats["label_distribution"] = _value_counts(table.column("label"))
    if "score" in names:
        s = table.column("score").to_numpy()
        stats["score"] = {"mean": _round(s.mean()), "std": _round(s.std()), "min": _round(s.min()),
                          "max": _round(s.max()),
                          "quantiles": {str(q): _round(v) for q, v in zip(QUANTILES, np.quantile(s, QUANTILES))}}
        stats["scale"] = [_round(pc.min(table.column("scale_min")).as_py()), _round(pc.max(table.column("scale_max")).as_py())]
    if "category" in names and table.column("category").null_count < table.num_rows:
        stats["categories"] = _value_counts(table.column("category"))
    if "system_id" in names and table.column("system_id").null_count < table.num_rows:
        stats["systems"] = len(pc.unique(table.column("system_id").combine_chunks()))
    lengths = {}
    for name in TEXT_FIELDS:
        if name in names:
            col = table.column(name)
            if col.null_count == table.num_rows:
                continue
            lens = pc.utf8_length(col).drop_null().to_numpy()
            lengths[name] = {str(q): int(v) for q, v in zip(QUANTILES, np.quantile(lens, QUANTILES))}
    stats["text_length_chars"] = lengths
    stats["inter_annotator"] = _annotator_agreement(table, task_type)
    return stats


def _label_units(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, list[Any]] | None:
    """Per-unit counts of each label for the units (rows) with at least two labels, computed
    column-wise: (counts[unit, category], unit lengths, categories sorted as text), or ``None``
    when the items are not plain labels (then the row-by-row functions are used)."""
    arr = one_array(col)
    items_type = arr.type.value_type
    if not (pa.types.is_string(items_type) or pa.types.is_large_string(items_type)):
        return None
    lengths = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    rows = np.flatnonzero(lengths >= 2)
    if not len(rows):
        return np.zeros((0, 0)), np.zeros(0, dtype=np.int64), []
    units = pc.take(arr, pa.array(rows, pa.int64()))
    flat = pc.list_flatten(units)
    if flat.null_count:
        return None
    parents = np.asarray(pc.list_parent_indices(units))
    cats = sorted(pc.unique(flat).to_pylist(), key=str)
    codes = np.asarray(pc.index_in(flat, value_set=pa.array(cats, flat.type)))
    counts = np.zeros((len(rows), len(cats)))
    np.add.at(counts, (parents, codes), 1.0)
    return counts, lengths[rows], cats


def _annotator_agreement(table: pa.Table, task_type: str) -> dict[str, Any] | None:
    name = "annotator_scores" if task_type == "pointwise" else "annotator_labels"
    if name not in table.column_names:
        return None
    col = table.column(name)
    fast = None if task_type == "pointwise" else _label_units(col)
    if fast is not None:
        counts, lengths, _ = fast
        if not len(lengths):
            return None
        return {"units": len(lengths), "annotators_per_unit": _round(float(np.mean(lengths)), 2),
                "krippendorff_alpha_nominal": _round(alpha_nominal_from_counts(counts)),
                "pairwise_percent_agreement": _round(pairwise_agreement_from_counts(counts))}
    units = [u for u in col.to_pylist() if u and len(u) >= 2]
    if not units:
        return None
    out: dict[str, Any] = {"units": len(units), "annotators_per_unit": _round(float(np.mean([len(u) for u in units])), 2)}
    if task_type == "pointwise":
        out["krippendorff_alpha_interval"] = _round(krippendorff_alpha_interval(units))
    else:
        out["krippendorff_alpha_nominal"] = _round(krippendorff_alpha_nominal(units))
        out["pairwise_percent_agreement"] = _round(mean_pairwise_agreement(units))
    return out


class StatisticsAccumulator:
    """:func:`compute_statistics` over a table handed over in pieces (a registration's row groups, in
    canonical order), holding no text: value counts, distinct systems, the scale, and per row only
    the numbers the exact quantiles need (score, text lengths: 4–8 bytes per field) and the
    annotator lists of rows with at least two annotators. :meth:`result` equals
    ``compute_statistics`` of the concatenated pieces, to the last bit."""

    def __init__(self, task_type: str, column_names: list[str]) -> None:
        self.task_type = task_type
        self.names = list(column_names)
        self.rows = 0
        self._counts: dict[str, dict[Any, int]] = {"label": {}, "category": {}}
        self._category_nulls = 0
        self._systems: set[Any] = set()
        self._system_nulls = 0
        self._scores: list[np.ndarray] = []
        self._scale_min: list[Any] = []
        self._scale_max: list[Any] = []
        self._lengths: dict[str, list[np.ndarray]] = {n: [] for n in TEXT_FIELDS if n in self.names}
        self._text_nulls: dict[str, int] = {n: 0 for n in self._lengths}
        self._agreement = "annotator_scores" if task_type == "pointwise" else "annotator_labels"
        self._units: list[pa.Array] = []
        self._units_type: pa.DataType | None = None

    @staticmethod
    def _add_counts(into: dict[Any, int], col: pa.ChunkedArray) -> None:
        # value_counts lists values in order of first appearance: so does the merged dict
        for d in pc.value_counts(col.combine_chunks()).to_pylist():
            into[d["values"]] = into.get(d["values"], 0) + int(d["counts"])

    def add(self, table: pa.Table) -> StatisticsAccumulator:
        """The next rows (same columns, canonical order)."""
        self.rows += table.num_rows
        names = set(table.column_names)
        if "label" in names:
            self._add_counts(self._counts["label"], table.column("label"))
        if "score" in names:
            self._scores.append(table.column("score").to_numpy())
            self._scale_min.append(pc.min(table.column("scale_min")).as_py())
            self._scale_max.append(pc.max(table.column("scale_max")).as_py())
        if "category" in names:
            self._category_nulls += table.column("category").null_count
            self._add_counts(self._counts["category"], table.column("category"))
        if "system_id" in names:
            self._system_nulls += table.column("system_id").null_count
            self._systems.update(pc.unique(table.column("system_id").combine_chunks()).to_pylist())
        for name in self._lengths:
            col = table.column(name)
            self._text_nulls[name] += col.null_count
            self._lengths[name].append(pc.utf8_length(col).drop_null().to_numpy())
        if self._agreement in names:
            col = table.column(self._agreement)
            self._units_type = col.type
            arr = one_array(col)
            lengths = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False)
            rows = np.flatnonzero(lengths >= 2)
            if len(rows):
                self._units.append(pc.take(arr, pa.array(rows, pa.int64())))
        return self

    @staticmethod
    def _value_counts(counts: dict[Any, int]) -> dict[str, int]:
        vc = [{"values": v, "counts": c} for v, c in counts.items()]
        return {str(d["values"]): int(d["counts"]) for d in sorted(vc, key=lambda d: str(d["values"]))}

    def result(self) -> dict[str, Any]:
        """The statistics of every row added so far (as :func:`compute_statistics`)."""
        stats: dict[str, Any] = {"rows": self.rows}
        names = set(self.names)
        if "label" in names:
            stats["label_distribution"] = self._value_counts(self._counts["label"])
        if "score" in names:
            s = np.concatenate(self._scores) if self._scores else np.zeros(0)
            stats["score"] = {"mean": _round(s.mean()), "std": _round(s.std()), "min": _round(s.min()),
                              "max": _round(s.max()),
                              "quantiles": {str(q): _round(v) for q, v in zip(QUANTILES, np.quantile(s, QUANTILES))}}
            lo = pc.min(pa.array(self._scale_min, pa.float64())).as_py()
            hi = pc.max(pa.array(self._scale_max, pa.float64())).as_py()
            stats["scale"] = [_round(lo), _round(hi)]
        if "category" in names and self._category_nulls < self.rows:
            stats["categories"] = self._value_counts(self._counts["category"])
        if "system_id" in names and self._system_nulls < self.rows:
            stats["systems"] = len(self._systems)
        lengths = {}
        for name in TEXT_FIELDS:
            if name in self._lengths:
                if self._text_nulls[name] == self.rows:
                    continue
                lens = np.concatenate(self._lengths[name])
                lengths[name] = {str(q): int(v) for q, v in zip(QUANTILES, np.quantile(lens, QUANTILES))}
        stats["text_length_chars"] = lengths
        if self._agreement in names and self._units_type is not None:
            units = pa.chunked_array(self._units, self._units_type)
            stats["inter_annotator"] = _annotator_agreement(pa.table({self._agreement: units}), self.task_type)
        else:
            stats["inter_annotator"] = None
        return stats
