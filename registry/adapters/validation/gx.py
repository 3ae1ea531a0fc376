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
from registry.domain.arrays import one_array
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
        arr = one_array(arr)  # Arrow-backed columns (read block by block): one array
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=spec.arrow_schema())


# ------------------------------------------------------------------------------ the suite


def _derived(table: pa.Table, spec: DatasetSpec, rules: Rules) -> dict[str, pa.Array]:
    """Arrow-computed columns for rules GX cannot express on list columns."""
    out: dict[str, pa.Array] = {}
    for f in spec.fields:
        if not f.type.startswith("list<"):
            continue
        col = one_array(table.column(f.name))
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
            lo = pc.take(one_array(table.column("scale_min")), parents)
            hi = pc.take(one_array(table.column("scale_max")), parents)
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
    from great_expectations.execution_engine import pandas_execution_engine

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    # GX hashes every frame under HASH_THRESHOLD bytes (pandas' hash_pandas_object of every value, then
    # MD5) into the batch markers' "pandas_data_fingerprint"; the report keeps only the checks' results,
    # never the markers, and the hash cost ~0.6 s per 1M-row frame: frames are not fingerprinted
    pandas_execution_engine.HASH_THRESHOLD = 0
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
           row_offset: int = 0, rows: np.ndarray | None = None) -> pd.DataFrame:
    """``table`` as the pandas frame GX validates: the row number first (``rows``, else counted from
    ``row_offset + 1``), the derived columns last."""
    df = frame(table.combine_chunks().to_pandas(types_mapper=None))
    df.insert(0, ROW, np.arange(row_offset + 1, row_offset + len(df) + 1) if rows is None else rows)
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

    success, checks = _checks(validation, df)
    return {
        "success": success,
        "spec": spec.ref,
        "spec_sha256": spec.sha256,
        "engine": f"great_expectations {gx.__version__}",
        "row_count": table.num_rows,
        "expectations": checks,
        "failed": sum(1 for c in checks if not c["success"]),
    }


def _checks(validation: Any, df: pd.DataFrame) -> tuple[bool, list[dict[str, Any]]]:
    """(success, the report's checks in the suite's order) of GX's run of ``validation`` on ``df``."""
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
    return bool(result.success), checks


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


_ROW_WISE_TEXT = frozenset({"expect_column_values_to_not_be_null", "expect_column_values_to_be_unique",
                            "expect_column_values_to_not_match_regex", "expect_column_value_lengths_to_be_between"})
"""The expectations whose verdict on a text value depends on that value alone and needs only whether it
is null, its length and whether it is blank (the uniqueness check's own result is replaced by the
whole input's, see :meth:`ChunkedReport.report`)."""
_BLANK = r"^\s*$"
_NOT_BLANK = "[!-~]"
"""A text holding a printable ASCII character other than the space is not blank for any ``\\s`` (Python's
Unicode one or RE2's)."""


@dataclass(frozen=True)
class _TextCheck:
    """What the row-wise checks of one text column look at: rows outside these can fail them."""

    column: str
    min_length: int | None
    max_length: int | None
    blank: bool
    not_null: bool

    def suspect(self, values: pa.Array) -> np.ndarray:
        """Rows that may fail a check of the column (a superset: null where it must not be, a length at
        or beyond a bound, or no printable ASCII character — GX decides on these; the other checks
        pass over nulls). Looked for on the byte lengths and first bytes (a text of k characters has k
        to 4k bytes; one that starts with a printable character is not blank), then exactly on the
        few rows these leave in doubt."""
        n = len(values)
        null = np.array(pc.is_null(values), dtype=bool)
        out = null.copy() if self.not_null else np.zeros(n, dtype=bool)
        nbytes = np.asarray(pc.binary_length(values).fill_null(0))
        doubt = np.zeros(n, dtype=bool)
        if self.min_length is not None:
            doubt |= nbytes <= 4 * self.min_length
        if self.max_length is not None:
            doubt |= nbytes >= self.max_length
        if self.blank:
            doubt |= ~_printable_first(values, nbytes)
        at = np.flatnonzero(doubt & ~null)
        if len(at):
            out[at] |= self._exact(values.take(pa.array(at)))
        return out

    def _exact(self, values: pa.Array) -> np.ndarray:
        out = np.zeros(len(values), dtype=bool)
        if self.min_length is not None or self.max_length is not None:
            length = pc.utf8_length(values)
            if self.min_length is not None:
                out |= np.asarray(pc.less_equal(length, self.min_length).fill_null(False))
            if self.max_length is not None:
                out |= np.asarray(pc.greater_equal(length, self.max_length).fill_null(False))
        if self.blank:
            out |= ~np.asarray(pc.match_substring_regex(values, _NOT_BLANK).fill_null(True))
        return out


def _printable_first(values: pa.Array, nbytes: np.ndarray) -> np.ndarray:
    """Whether each text starts with a printable ASCII character other than the space (read from the
    Arrow buffers; False where not known)."""
    out = np.zeros(len(values), dtype=bool)
    if values.type != pa.string() or len(values) == 0 or values.buffers()[2] is None:
        return out
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32, count=len(values) + 1, offset=values.offset * 4)
    data = np.frombuffer(values.buffers()[2], dtype=np.uint8)
    has = np.flatnonzero(nbytes > 0)
    first = data[offsets[has]]
    out[has] = (first >= 0x21) & (first <= 0x7E)
    return out


@dataclass(frozen=True)
class _Plan:
    """The suite of (spec, rules, derived) in two GX validations: the expectations that read every
    row (``every``), and the row-wise text checks (``text``: null, blank, length, unique), which GX
    runs on the rows that may fail them only — a text column is the bulk of a chunk's bytes, and a
    row that passes these checks adds nothing to their results (counts and failing rows). ``order``
    places each expectation of the suite: (part, index in it)."""

    every: Any
    text: Any | None
    order: tuple[tuple[str, int], ...]
    every_columns: frozenset[str]
    text_checks: tuple[_TextCheck, ...]
    kinds: tuple[tuple[str, str | None], ...]
    """(expectation, column) of each check of the report, in its order."""


def _text_check(column: str, exps: list[Any]) -> _TextCheck | None:
    lo = hi = None
    blank = not_null = False
    for exp in exps:
        kind = exp.expectation_type
        if kind not in _ROW_WISE_TEXT or getattr(exp, "row_condition", None) or getattr(exp, "mostly", 1) != 1:
            return None
        if kind == "expect_column_values_to_not_match_regex":
            if exp.regex != _BLANK:
                return None
            blank = True
        elif kind == "expect_column_value_lengths_to_be_between":
            if exp.strict_min or exp.strict_max:
                return None
            lo, hi = exp.min_value, exp.max_value
        elif kind == "expect_column_values_to_not_be_null":
            not_null = True
    return _TextCheck(column, lo, hi, blank, not_null)


def _gx_order(exps: list[Any]) -> list[Any]:
    """The order of GX's results for a suite of ``exps``: grouped by column, the groups in the order of
    their first expectation, those without a column one group (``Validator.process_expectations_for_validation``)."""
    groups: dict[str, list[Any]] = {}
    for exp in exps:
        column = getattr(exp, "column", None)
        groups.setdefault(column if isinstance(column, str) else "", []).append(exp)
    return [exp for group in groups.values() for exp in group]


@cache
def _plan(spec: DatasetSpec, rules: Rules, derived: tuple[str, ...]) -> _Plan:
    import great_expectations as gx

    exps = _suite_expectations(spec, rules, derived)
    by_column: dict[str, list[Any]] = {}
    paired: set[str] = set()
    for exp in exps:
        paired.update(getattr(exp, a) for a in ("column_A", "column_B") if isinstance(getattr(exp, a, None), str))
        if isinstance(getattr(exp, "column", None), str):
            by_column.setdefault(exp.column, []).append(exp)
    strings = {f.name for f in spec.fields if f.type == "string"}
    checks = {c: _text_check(c, e) for c, e in by_column.items() if c in strings and c not in paired}
    checks = {c: check for c, check in checks.items() if check is not None}
    parts: dict[str, list[Any]] = {"every": [], "text": []}
    for exp in exps:
        parts["text" if getattr(exp, "column", None) in checks else "every"].append(exp)
    place = {id(exp): (part, i) for part, part_exps in parts.items() for i, exp in enumerate(_gx_order(part_exps))}
    order = tuple(place[id(exp)] for exp in _gx_order(exps))
    ctx, batch_def = _context()
    key = f"{spec.name}-v{spec.version}-{abs(hash((spec.sha256, rules, derived))):x}-chunked"
    defs = {}
    for part, part_exps in parts.items():
        if part_exps:
            suite = ctx.suites.add(gx.ExpectationSuite(name=f"{key}-{part}", expectations=part_exps))
            defs[part] = ctx.validation_definitions.add(gx.ValidationDefinition(name=f"{key}-{part}", data=batch_def,
                                                                                suite=suite))
    every = defs["every"]
    return _Plan(every=every, text=defs.get("text"), order=order,
                 every_columns=_columns_used(every) | {"example_id"}, text_checks=tuple(checks.values()),
                 kinds=tuple((e.expectation_type, getattr(e, "column", None)) for e in _gx_order(exps)))


class ChunkedReport:
    """The report of :func:`run_suite` for an input validated a chunk at a time (each chunk's rows
    numbered in the whole input), the same suite run by GX: the chunks' checks are merged —
    successes and'ed, unexpected counts added, the first failing rows of the input kept in input
    order, the row count the input's — except the uniqueness checks, which only the whole input can
    answer: their results come from the caller (:meth:`report`'s ``unique``). Reads the same as
    ``run_suite`` on the whole input; holds one merged report, not the chunks.

    GX does not run on each chunk as it comes: a chunk leaves only what the suite reads — the
    columns of the expectations that read every row (ids, labels, counts, the derived columns), and,
    for the row-wise text checks (see :class:`_Plan`), the rows that may fail them — and GX runs on
    those of many chunks at once, once they hold ``budget`` bytes (or at :meth:`report`): a few GX
    runs for an input, on a small part of its bytes."""

    def __init__(self, spec: DatasetSpec, rules: Rules, budget: int = 0) -> None:
        self.spec, self.rules, self.budget = spec, rules, budget
        self.rows = 0
        self._merged: dict[str, Any] | None = None
        self._held: list[tuple[_Plan, pa.Table, dict[str, pa.Array], np.ndarray, pa.Table, np.ndarray]] = []
        self._held_bytes = 0

    def add(self, table: pa.Table, row_offset: int) -> None:
        """Validate the next chunk, whose first row is row ``row_offset + 1`` of the input."""
        derived = _derived(table, self.spec, self.rules)
        plan = _plan(self.spec, self.rules, tuple(derived))
        n = table.num_rows
        every = table.select([c for c in table.column_names if c in plan.every_columns])
        used = {name: arr for name, arr in derived.items() if name in plan.every_columns}
        suspect = np.zeros(n, dtype=bool)
        suspect[:1] = True  # GX's frame is never empty: a row that passes adds nothing
        for check in plan.text_checks:
            suspect |= check.suspect(one_array(table.column(check.column)))
        at = np.flatnonzero(suspect)
        text_columns = {"example_id"} | {c.column for c in plan.text_checks}
        text = table.select([c for c in table.column_names if c in text_columns]).take(pa.array(at))
        rows = np.arange(row_offset + 1, row_offset + n + 1)
        if self._held and self._held[-1][0] is not plan:
            self._flush()
        self._held.append((plan, every, used, rows, text, rows[at]))
        self._held_bytes += every.nbytes + sum(a.nbytes for a in used.values()) + text.nbytes + rows.nbytes
        self.rows += n
        if self._held_bytes >= self.budget:
            self._flush()

    def _flush(self) -> None:
        """GX on what the held chunks left; their checks merged into the report."""
        if not self._held:
            return
        held, self._held, self._held_bytes = self._held, [], 0
        plan = held[0][0]
        every = pa.concat_tables([h[1] for h in held])
        derived = {name: pa.concat_arrays([h[2][name] for h in held]) for name in held[0][2]}
        rows = np.concatenate([h[3] for h in held])
        parts = {"every": _checks(plan.every, _frame(every, derived, _Batch, rows=rows))[1]}
        del every, derived
        if plan.text is not None:
            text = pa.concat_tables([h[4] for h in held])
            parts["text"] = _checks(plan.text, _frame(text, {}, _Batch, rows=np.concatenate([h[5] for h in held])))[1]
        checks = [parts[part][i] for part, i in plan.order]
        if tuple((c["expectation"], c.get("column")) for c in checks) != plan.kinds:
            raise RuntimeError("GX returned its checks in an unforeseen order")  # a GX upgrade: see _gx_order
        self._merge(checks, len(rows))

    def _merge(self, checks: list[dict[str, Any]], rows: int) -> None:
        import great_expectations as gx

        if self._merged is None:
            self._merged = {"success": all(c["success"] for c in checks), "spec": self.spec.ref,
                            "spec_sha256": self.spec.sha256, "engine": f"great_expectations {gx.__version__}",
                            "row_count": rows, "expectations": checks,
                            "failed": sum(1 for c in checks if not c["success"])}
            return
        for into, check in zip(self._merged["expectations"], checks):
            into["success"] = into["success"] and check["success"]
            into["unexpected_count"] += check["unexpected_count"]
            into["failing_rows"] = (into["failing_rows"] + check["failing_rows"])[:FAILING_ROWS_KEPT]

    def report(self, unique: Mapping[str, tuple[int, list[dict[str, Any]]]]) -> dict[str, Any]:
        """The input's report; ``unique[column]`` is (rows whose value another row has too, the first
        of them in input order as ``{column: value, "_row": n}``) for each column the spec wants unique."""
        self._flush()
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
