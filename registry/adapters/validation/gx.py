"""Validation of standardized rows: cast to the spec's Arrow schema, then a Great Expectations
suite compiled from the spec.

Cross-field rules that GX has no expectation for (list items, list lengths) are turned into
derived columns (``__annotator_count`` ...) computed with Arrow, which GX then checks with its
ordinary expectations, so every rule appears in the same report.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from registry.adapters.validation.spec import DatasetSpec, FieldSpec
from registry.errors import InvalidInput, ValidationFailed

ROW = "_row"
"""1-based position of a row in the adapter's output, carried through validation for messages."""
FAILING_ROWS_KEPT = 5


@dataclass(frozen=True)
class Rules:
    """Dataset-specific values a spec leaves open."""

    labels: tuple[str, ...] | None = None
    max_text_chars: int = 200_000


# ------------------------------------------------------------------------------- casting


def _first_bad_value(values: pd.Series, typ: pa.DataType) -> tuple[int, Any, str]:
    for pos, value in enumerate(values):
        try:
            pa.array([value], type=typ, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
            return pos, value, str(exc).splitlines()[0]
    return -1, None, ""


def _is_text_type(values: pd.Series) -> bool:
    return values.dtype == object or pd.api.types.is_string_dtype(values.dtype)


def to_arrow(df: pd.DataFrame, spec: DatasetSpec, *, file: str | None = None, row_offset: int = 0) -> pa.Table:
    """Cast standardized rows to ``spec``'s Arrow schema; errors name file, row and field (rows
    numbered from ``row_offset + 1``: a chunk of a larger input names its rows in the whole input).

    Optional text fields holding an empty string become null (an absent reference is null).
    """
    missing = [f.name for f in spec.fields if f.required and f.name not in df.columns]
    if missing:
        raise InvalidInput(f"missing required column(s) {', '.join(missing)} for a {spec.name} dataset",
                           file=file, field=missing[0])
    arrays = []
    for f in spec.fields:
        if f.name not in df.columns:
            arrays.append(pa.nulls(len(df), type=f.arrow_type))
            continue
        values = df[f.name]
        if f.type == "string" and not _is_text_type(values):
            if values.isna().all():
                values = values.astype(object)
            else:
                # ids and labels given as numbers are kept as their text
                values = values.map(lambda v: v if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
        try:
            arr = pa.array(values, type=f.arrow_type, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            pos, value, why = _first_bad_value(values, f.arrow_type)
            raise InvalidInput(f"value {str(value)[:80]!r} is not a valid {f.type} ({why})",
                               file=file, row=row_offset + pos + 1, field=f.name) from None
        if f.text and not f.required:
            arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
        if isinstance(arr, pa.ChunkedArray):  # Arrow-backed columns (read block by block): one array
            arr = arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=spec.arrow_schema())


# ------------------------------------------------------------------------------ the suite


def _derived(table: pa.Table, spec: DatasetSpec, rules: Rules) -> dict[str, pa.Array]:
    """Arrow-computed columns for rules GX cannot express on list columns."""
    out: dict[str, pa.Array] = {}
    for f in spec.fields:
        if not f.type.startswith("list<"):
            continue
        col = table.column(f.name).combine_chunks()
        out[f"__{f.name}_count"] = pc.list_value_length(col)
        allowed = rules.labels if f.allowed_items == "dataset" else f.allowed_items
        flat = pc.list_flatten(col)
        parents = pc.list_parent_indices(col)
        if allowed is not None:
            bad = pc.invert(pc.is_in(flat, value_set=pa.array(list(allowed))))
        elif f.type == "list<float64>":
            bad = pc.invert(pc.is_finite(flat))
        else:
            continue
        bad_rows = np.zeros(len(col), dtype=bool)
        bad_rows[np.asarray(parents)[np.asarray(bad.fill_null(True))]] = True
        out[f"__{f.name}_items_ok"] = pa.array(~bad_rows)
        if "score_in_scale" in spec.checks and f.type == "list<float64>":
            # every annotator score must lie in the scale, too
            lo = pc.take(table.column("scale_min").combine_chunks(), parents)
            hi = pc.take(table.column("scale_max").combine_chunks(), parents)
            outside = pc.or_(pc.less(flat, lo), pc.greater(flat, hi)).fill_null(False)
            rows = np.zeros(len(col), dtype=bool)
            rows[np.asarray(parents)[np.asarray(outside)]] = True
            out[f"__{f.name}_in_scale"] = pa.array(~rows)
    return out


def _field_expectations(f: FieldSpec, rules: Rules) -> list[Any]:
    import great_expectations.expectations as gxe

    exps: list[Any] = []
    if f.required:
        exps.append(gxe.ExpectColumnValuesToNotBeNull(column=f.name))
    if f.unique:
        exps.append(gxe.ExpectColumnValuesToBeUnique(column=f.name))
    if (f.text or f.unique) and not f.allow_empty:  # texts and ids (example_id) are never blank
        exps.append(gxe.ExpectColumnValuesToNotMatchRegex(column=f.name, regex=r"^\s*$"))
    max_len = f.max_length or (rules.max_text_chars if f.text else None)
    if max_len is not None:
        exps.append(gxe.ExpectColumnValueLengthsToBeBetween(
            column=f.name, min_value=1 if f.required and not f.allow_empty else 0, max_value=max_len))
    allowed = rules.labels if f.allowed == "dataset" else f.allowed
    if allowed is not None:
        exps.append(gxe.ExpectColumnValuesToBeInSet(column=f.name, value_set=list(allowed)))
    if f.min is not None or f.max is not None:
        exps.append(gxe.ExpectColumnValuesToBeBetween(column=f.name, min_value=f.min, max_value=f.max))
    return exps


def _suite_expectations(spec: DatasetSpec, rules: Rules, derived: tuple[str, ...]) -> list[Any]:
    import great_expectations.expectations as gxe

    exps: list[Any] = [gxe.ExpectTableRowCountToBeBetween(min_value=1)]
    for f in spec.fields:
        exps.extend(_field_expectations(f, rules))
    for name in derived:
        if name.endswith("_items_ok") or name.endswith("_in_scale"):
            exps.append(gxe.ExpectColumnValuesToBeInSet(column=name, value_set=[True]))
    if "annotator_count" in spec.checks:
        for f in spec.fields:
            if f.type.startswith("list<") and "num_annotators" in spec.columns:
                exps.append(gxe.ExpectColumnPairValuesToBeEqual(
                    column_A="num_annotators", column_B=f"__{f.name}_count", ignore_row_if="either_value_is_missing"))
    if "score_in_scale" in spec.checks:
        exps.append(gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="score", column_B="scale_min", or_equal=True))
        exps.append(gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="scale_max", column_B="score", or_equal=True))
        exps.append(gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="scale_max", column_B="scale_min"))
    return exps


@cache
def _context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = ctx.data_sources.add_pandas("rows").add_dataframe_asset("standardized")
    return ctx, asset.add_batch_definition_whole_dataframe("whole")


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, str) and len(v) > 200:
        return v[:200] + "…"
    return v


@cache
def _validation_definition(spec: DatasetSpec, rules: Rules, derived: tuple[str, ...]):
    """The GX suite for (spec, dataset rules), registered once in the ephemeral context."""
    import great_expectations as gx

    ctx, batch_def = _context()
    key = f"{spec.name}-v{spec.version}-{abs(hash((spec.sha256, rules, derived))):x}"
    suite = ctx.suites.add(gx.ExpectationSuite(name=key, expectations=_suite_expectations(spec, rules, derived)))
    return ctx.validation_definitions.add(gx.ValidationDefinition(name=key, data=batch_def, suite=suite))


_KEPT_SELECTION_ROWS = 10_000


class _Batch(pd.DataFrame):
    """The frame handed to GX. GX selects the rows a check reads before each of its metrics
    (``df[df[column].notnull()]``, ``dropna(subset=...)``), often the same rows again and again
    (e.g. the rows that have a ``num_annotators``, for every metric of two expectations), and
    each selection copies every column of the frame (for Arrow-backed text: all of its
    characters). This frame keeps its last large row selection and answers an equal one with a
    shallow copy of it: under pandas' copy-on-write, the same rows, values and index without
    copying the data again."""

    @property
    def _constructor(self):
        return _Batch

    def take(self, indices, axis=0, **kwargs):
        if axis not in (0, "index") or isinstance(indices, slice):
            return super().take(indices, axis=axis, **kwargs)
        positions = np.asarray(indices, dtype=np.intp)
        last = self.__dict__.get("_last_take")
        if last is not None and np.array_equal(last[0], positions):
            return last[1].copy(deep=False)
        result = super().take(positions, axis=axis, **kwargs)
        if len(positions) >= _KEPT_SELECTION_ROWS:  # small selections (failing rows) are cheap
            object.__setattr__(self, "_last_take", (positions, result.copy(deep=False)))
        return result


def _columns_used(validation: Any) -> frozenset[str]:
    """Every column an expectation of the suite reads."""
    used: set[str] = set()
    for exp in validation.suite.expectations:
        for attr in ("column", "column_A", "column_B"):
            name = getattr(exp, attr, None)
            if isinstance(name, str):
                used.add(name)
    return frozenset(used)


def _frame(table: pa.Table, derived: dict[str, pa.Array], frame: type[pd.DataFrame] = pd.DataFrame,
           row_offset: int = 0) -> pd.DataFrame:
    """``table`` as the pandas frame GX validates: the row number first, the derived columns last."""
    df = frame(table.combine_chunks().to_pandas(types_mapper=None))
    df.insert(0, ROW, np.arange(row_offset + 1, row_offset + len(df) + 1))
    for name, arr in derived.items():
        df[name] = arr.to_numpy(zero_copy_only=False)
    return df


def run_suite(table: pa.Table, spec: DatasetSpec, rules: Rules, *, row_offset: int = 0) -> dict[str, Any]:
    """Run the spec's GX suite on ``table``; return the report stored with the version. Its rows are
    numbered from ``row_offset + 1`` (a chunk of a larger input: :class:`ChunkedReport`)."""
    derived = _derived(table, spec, rules)
    validation = _validation_definition(spec, rules, tuple(derived))
    # only the columns the suite reads (and the ids its failing rows are named by) go to pandas:
    # a list column (checked through its derived columns) would only cost a conversion
    used = _columns_used(validation)
    keep = [c for c in table.column_names if c in used or c == "example_id"]
    return _run(validation, _frame(table.select(keep), derived, _Batch, row_offset), table, spec)


def _run(validation: Any, df: pd.DataFrame, table: pa.Table, spec: DatasetSpec) -> dict[str, Any]:
    import great_expectations as gx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = validation.run(batch_parameters={"dataframe": df}, result_format={
            "result_format": "SUMMARY", "unexpected_index_column_names": [ROW, "example_id"],
            "partial_unexpected_count": FAILING_ROWS_KEPT})
    checks = []
    for r in result.results:
        kwargs = {k: v for k, v in r.expectation_config.kwargs.items()
                  if k in ("column", "column_A", "column_B", "value_set", "min_value", "max_value", "regex")}
        checks.append({
            "expectation": r.expectation_config.type,
            **_jsonable(kwargs),
            "success": bool(r.success),
            "unexpected_count": int(r.result.get("unexpected_count") or 0),
            "failing_rows": _jsonable(r.result.get("partial_unexpected_index_list") or [])[:FAILING_ROWS_KEPT],
            **({"observed_value": _jsonable(r.result["observed_value"])} if "observed_value" in r.result else {}),
        })
    return {
        "success": bool(result.success),
        "spec": spec.ref,
        "spec_sha256": spec.sha256,
        "engine": f"great_expectations {gx.__version__}",
        "row_count": table.num_rows,
        "expectations": checks,
        "failed": sum(1 for c in checks if not c["success"]),
    }


def _describe(check: dict[str, Any]) -> tuple[str, int | None, str | None]:
    column = check.get("column") or check.get("column_A") or ""  # table-level expectations have none
    field = column.strip("_").removesuffix("_items_ok").removesuffix("_in_scale") if column else None
    if (check.get("column_B") or "").startswith("__"):
        field = check["column_B"].strip("_").removesuffix("_count")
    rows = check["failing_rows"]
    first = rows[0] if rows else {}
    row = first.get(ROW)
    kind = check["expectation"].removeprefix("expect_")
    what = {
        "column_values_to_not_be_null": "is empty (null)",
        "column_values_to_be_unique": f"duplicate example id {first.get('example_id')!r}",
        "column_values_to_not_match_regex": "is blank text",
        "column_value_lengths_to_be_between": f"length outside {check.get('min_value')}..{check.get('max_value')} characters",
        "column_values_to_be_in_set": (f"value {first.get(column)!r} is not one of {check.get('value_set')}"
                                       if not column.startswith("__") else "has items outside the allowed set or scale"),
        "column_values_to_be_between": f"value {first.get(column)!r} outside {check.get('min_value')}..{check.get('max_value')}",
        "column_pair_values_a_to_be_greater_than_b": (
            f"{check.get('column_A')}={first.get(check.get('column_A'))!r} must be ≥ "
            f"{check.get('column_B')}={first.get(check.get('column_B'))!r} (score outside the scale)"),
        "column_pair_values_to_be_equal": "num_annotators does not match the number of annotator values",
        "table_row_count_to_be_between": "the dataset has no rows",
    }.get(kind, kind)
    n = check["unexpected_count"]
    if first.get("example_id") is not None and "duplicate" not in what:
        what += f" (example_id {first['example_id']!r})"
    if n > 1:
        what += f"; {n} rows fail this check"
    return what, row, field


def validate(df: pd.DataFrame, spec: DatasetSpec, rules: Rules, *, file: str | None = None) -> tuple[pa.Table, dict[str, Any]]:
    """Cast and validate standardized rows. Returns the Arrow table and the GX report, or raises
    :class:`ValidationFailed` (carrying the report) naming the first failing file, row and field."""
    table = to_arrow(df, spec, file=file)
    report = run_suite(table, spec, rules)
    check_report(report, spec, file=file)
    return table, report


def check_report(report: dict[str, Any], spec: DatasetSpec, *, file: str | None = None) -> None:
    """Raise :class:`ValidationFailed` (carrying ``report``) naming the first failing check's file,
    row and field, unless every check succeeded."""
    if not report["success"]:
        failed = [c for c in report["expectations"] if not c["success"]]
        what, row, field = _describe(failed[0])
        more = f"; {len(failed)} of {len(report['expectations'])} expectations failed" if len(failed) > 1 else ""
        raise ValidationFailed(f"{what}{more}", report=report, file=file, row=row, field=field,
                               hint=f"fix the source rows; spec {spec.ref} in dataset_specs/")


# ------------------------------------------------------------------- an input in chunks


class ChunkedReport:
    """The report of :func:`run_suite` for an input validated a chunk at a time (each chunk's rows
    numbered in the whole input): the suite runs on each chunk and the chunks' checks are merged —
    successes and'ed, unexpected counts added, the first failing rows of the input kept in input
    order, the row count the input's — except the uniqueness checks, which only the whole input can
    answer: their results come from the caller (:meth:`report`'s ``unique``). Reads the same as
    ``run_suite`` on the whole input; holds one merged report, not the chunks."""

    def __init__(self, spec: DatasetSpec, rules: Rules) -> None:
        self.spec, self.rules = spec, rules
        self.rows = 0
        self._merged: dict[str, Any] | None = None

    def add(self, table: pa.Table, row_offset: int) -> None:
        """Validate the next chunk, whose first row is row ``row_offset + 1`` of the input."""
        part = run_suite(table, self.spec, self.rules, row_offset=row_offset)
        self.rows += table.num_rows
        if self._merged is None:
            self._merged = part
            return
        for into, check in zip(self._merged["expectations"], part["expectations"]):
            into["success"] = into["success"] and check["success"]
            into["unexpected_count"] += check["unexpected_count"]
            into["failing_rows"] = (into["failing_rows"] + check["failing_rows"])[:FAILING_ROWS_KEPT]

    def report(self, unique: Mapping[str, tuple[int, list[dict[str, Any]]]]) -> dict[str, Any]:
        """The input's report; ``unique[column]`` is (rows whose value another row has too, the first
        of them in input order as ``{column: value, "_row": n}``) for each column the spec wants unique."""
        if self._merged is None:
            raise ValueError("no chunk was validated")
        checks = []
        for check in self._merged["expectations"]:
            check = dict(check)
            if check["expectation"] == "expect_column_values_to_be_unique":
                count, rows = unique[check["column"]]
                check.update(success=count == 0, unexpected_count=int(count),
                             failing_rows=_jsonable(list(rows))[:FAILING_ROWS_KEPT])
            elif check["expectation"] == "expect_table_row_count_to_be_between":
                check["observed_value"] = self.rows
            checks.append(check)
        return {**self._merged, "row_count": self.rows, "expectations": checks,
                "success": all(c["success"] for c in checks),
                "failed": sum(1 for c in checks if not c["success"])}
