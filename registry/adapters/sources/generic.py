"""Generic column mapper: any table of judgments → one standardized task type.

Reads JSON (a list of records; an object keyed by id whose key becomes the example id
unless ``example_id`` is mapped; or an object of lists of records, e.g. a key per category),
JSON lines (also when named ``.json``), CSV, TSV (also ``.gz``), Parquet, or a folder written by
Hugging Face ``datasets``' ``save_to_disk`` (read by :mod:`registry.adapters.sources.files`;
:func:`detect_format` decides by suffix; a ``DatasetDict`` needs ``split`` unless it has one
split). ``mapping`` names the source path of
each standardized field (``{"instruction": "question", "label": "winner"}``); fields not mapped
use a column of the same name. A path is a column name (a literal name wins, dots and all), a
dotted path with list indices into JSON, Parquet and ``datasets`` records
(``"judgments.0.decision"``), ``@row`` (the record's 0-based position in the file, as text) or
``@key`` (the key a record is listed under in a JSON object). A path that leads nowhere in a
record is an error showing what the records hold (:meth:`SourceTable.absent`); :func:`select_fields`
gives the same paths to other readers (the ``mapped`` import format).

Required fields: pairwise ``instruction, response_a, response_b, label``; pointwise
``instruction, response, score`` and a scale (``scale=(min, max)`` or ``scale_min`` /
``scale_max`` columns); classification ``instruction, response, label``. Without a ``label``
(``score``) column the label is :func:`~registry.adapters.sources.base.majority_label` of the
annotator labels (pairwise: no strict plurality → ``tie``; classification: the first tied
label in the label order) and the score is the mean of the annotator scores.

Values: a null/NaN (in CSV: an empty cell) in a required field is an error; an empty string
in JSON is kept unless ``skip_empty=True`` drops rows whose required texts are blank (their
count is in ``df.attrs["skipped_rows"]``). Labels pass through ``label_map`` (source value as
text, ``1.0`` read as ``1``, booleans as ``true``/``false``; a value outside the map is an
error); without a map, pairwise labels must be A/B/tie (any case). Classification labels
are ``labels`` or else the sorted distinct labels (``df.attrs["labels"]``). Annotator columns
hold lists (JSON/Parquet), JSON or Python list literals (CSV), or are mapped to several
columns at once (``"annotator_labels": "annotator1,annotator2,annotator3"``); the label map
applies to them too. ``example_id``: the row number with ``id_from_row`` (or ``@row``), else
the mapped column as text (must be unique), else the key of an object keyed by id, else
:func:`~registry.adapters.sources.base.stable_ids` over the instruction (plus the response for
pointwise and classification). ``criterion`` (default ``overall``) and
``category`` options override columns. Errors name file, row (1-based; ``line N`` for CSV/TSV
and JSON lines) and field.

One reading semantics, two readers. Every value is converted by the same rules (:class:`_Rows`:
text, label, number, annotator list, count, id — and their messages). The *columnar* reader
(:func:`_read_columns`) reads JSON-lines and Parquet files with pyarrow and converts whole columns
at once where their type allows, value by value with those rules where it does not (and for the
error it reports, at the same row as the other reader). The *records* reader (:func:`_read_records`)
converts record by record. Which one reads a file is decided before any value is converted
(:func:`_columnar_input`, :func:`_columnar_plan`): the records reader takes the formats and layouts
the columnar one cannot read — CSV, TSV, JSON, ``.gz``, ``datasets`` folders; paths into records and
``@key``; a missing mapped column; a label or score from the annotators; a pointwise file without
a scale; duplicate column names; JSON lines that pyarrow does not read as one typed object per line,
or whose used columns hold objects or dates (pyarrow's form of those differs from the JSON).

Large files. :meth:`GenericAdapter.read_chunks` (what registration uses) reads JSON-lines, CSV / TSV
and Parquet files a chunk at a time — blocks of whole lines of the mapped file, pandas' chunked CSV
reader, Parquet batches — each chunk by the reader its layout allows, and the chunks read as the
whole file (:class:`_Stream`: rows and lines named in the file, content ids numbered over the file,
mapped ids unique over it). JSON documents, ``.gz`` files and ``datasets`` folders are read whole
(within ``AUTORATER_MAX_INPUT_MB``); so is a JSON-lines file whose first block is not JSON lines.
"""

from __future__ import annotations

import ast
import difflib
import gc
import json
import math
import os
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from registry.adapters.sources.base import (
    COLUMNS,
    PAIRWISE_LABELS,
    TASK_TYPES,
    DatasetDef,
    SourceAdapter,
    SourceInfo,
    frame,
    majority_label,
    repair_text,
    stable_ids,
    to_json,
)
from registry.adapters.sources.files import (  # noqa: F401 (detect_format, SUPPORTED_FORMATS, KEY_PATH: re-exported)
    ABSENT,
    KEY_PATH,
    ROW_PATH,
    SUPPORTED_FORMATS,
    SourceTable,
    block_records,
    block_where,
    csv_chunks,
    csv_lines,
    detect_format,
    LineBlock,
    json_lines_where,
    leading_names,
    line_blocks,
    load_table,
    parquet_chunks,
    read_json_lines_table,
    read_parquet_table,
    records_table,
    typed_block,
)
from registry.domain.arrays import one_array
from registry.domain.options import parse_pairs  # noqa: F401 (re-exported: the CLI's KEY=VALUE reading)
from registry.domain.options import score_scale
from registry.errors import InvalidInput

_REQUIRED = {
    "pairwise": ("instruction", "response_a", "response_b", "label"),
    "pointwise": ("instruction", "response", "score"),
    "classification": ("instruction", "response", "label"),
}
_TEXTS = ("instruction", "response", "response_a", "response_b", "reference", "category", "criterion",
          "system_id")
_ANNOTATORS = ("annotator_labels", "annotator_scores")


# ----------------------------------------------------------------------------- values


def _missing(value: Any) -> bool:
    if value is None or value is ABSENT:
        return True
    if isinstance(value, (float, np.floating)):
        return math.isnan(value)
    return value is pd.NA or value is pd.NaT


def _label_key(value: Any) -> str:
    """A source label value as text: ``1.0`` → ``"1"``, ``True`` → ``"true"``."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def _pairwise_label(value: str) -> str | None:
    return {label.lower(): label for label in PAIRWISE_LABELS}.get(value.strip().lower())


def _meta(value: Any) -> dict[str, Any]:
    """A metadata cell that is not an object: a JSON object string, else wrapped as ``value``."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, dict):
            return repair_text(parsed)
    return {"value": value}


class _Rows:
    """The conversion of every value of a source, with errors naming file, row and field: the one
    set of rules both readers apply."""

    def __init__(self, table: SourceTable, task_type: str, label_map: dict[str, str] | None,
                 labels: tuple[str, ...] | None, paths: Mapping[str, str] | None = None) -> None:
        self.table, self.task_type, self.label_map, self.labels = table, task_type, label_map, labels
        self.paths = paths or {}
        """The source path of each mapped field (others are read from a same-named column)."""

    def error(self, message: str, i: int, field: str, hint: str | None = None) -> InvalidInput:
        return InvalidInput(message, file=self.table.file, row=self.table.where(i), field=field, hint=hint)

    def absent(self, i: int, field: str) -> InvalidInput:
        """A required field whose path leads nowhere in record ``i``."""
        return self.table.absent(i, field, self.paths.get(field, field))

    def text(self, value: Any, i: int, field: str, *, required: bool) -> str | None:
        if value is ABSENT and required:
            raise self.absent(i, field)
        if _missing(value):
            if required:
                raise self.error("missing value", i, field)
            return None
        if isinstance(value, (Mapping, list, tuple, np.ndarray)):
            raise self.error(f"expected text, got {type(value).__name__}", i, field)
        return _label_key(value) if not isinstance(value, str) else value

    def label(self, value: Any, i: int, field: str = "label") -> str:
        if value is ABSENT:
            raise self.absent(i, field)
        if _missing(value) or not str(value).strip():
            raise self.error("missing value", i, field)
        key = _label_key(value)
        if self.label_map is not None:
            if key not in self.label_map:
                raise self.error(f"label {key!r} is not in the label map ({', '.join(map(repr, self.label_map))})",
                                 i, field, hint=f"add --label-map {key}=LABEL")
            return self.label_map[key]
        if self.task_type == "pairwise":
            label = _pairwise_label(key)
            if label is None:
                raise self.error(f"unknown label {key!r}; expected A, B or tie", i, field,
                                 hint=f"pass --label-map {key}=A|B|tie")
            return label
        if self.labels is not None and key not in self.labels:
            raise self.error(f"unknown label {key!r}; expected one of {', '.join(self.labels)}", i, field,
                             hint=f"pass --label-map {key}=LABEL")
        return key

    def number(self, value: Any, i: int, field: str) -> float:
        if value is ABSENT:
            raise self.absent(i, field)
        if _missing(value):
            raise self.error("missing value", i, field)
        try:
            if isinstance(value, (bool, np.bool_)):
                raise ValueError
            number = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise self.error(f"not a number: {value!r}", i, field) from None
        if not math.isfinite(number):
            raise self.error(f"not a finite number: {value!r}", i, field)
        return number

    def items(self, value: Any, i: int, field: str) -> list[Any] | None:
        """An annotator list from a list, a JSON / Python list literal, or a single value."""
        if isinstance(value, (list, tuple, np.ndarray)):
            return list(value) or None
        if _missing(value):
            return None
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return None
            if not text.startswith("["):
                return [text]
            for parse in (json.loads, ast.literal_eval):
                try:
                    parsed = parse(text)
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    continue
                if isinstance(parsed, (list, tuple)):
                    return repair_text(list(parsed)) or None
            raise self.error(f"malformed list {text[:60]!r}; expected a JSON list such as [\"A\", \"B\"]", i, field)
        return [value]

    # -- whole fields, value by value

    def texts(self, values: Sequence[Any], field: str, *, required: bool) -> list[str | None]:
        return [self.text(v, i, field, required=required) for i, v in enumerate(values)]

    def annotators(self, columns: Sequence[Sequence[Any]], field: str, n: int) -> list[list[Any] | None]:
        """Per-row annotator lists from one list column or several scalar columns."""
        out: list[list[Any] | None] = []
        for i in range(n):
            if len(columns) == 1:
                items = self.items(columns[0][i], i, field)
            else:
                items = [c[i] for c in columns if not _missing(c[i])] or None
            if items is not None:
                if field == "annotator_labels":
                    items = [self.label(v, i, field) for v in items]
                else:
                    items = [self.number(v, i, field) for v in items]
            out.append(items)
        return out

    def majority(self, annotators: Sequence[list[str] | None]) -> list[str]:
        """Labels from the annotators' votes (no label column)."""
        order = self.labels or tuple(sorted({lab for row in annotators if row for lab in row}))
        pairwise = self.task_type == "pairwise"
        labels = []
        for i, row in enumerate(annotators):
            if not row:
                raise self.error("no label and no annotator labels", i, "label")
            labels.append(majority_label(row, tie_label="tie" if pairwise else None, order=order))
        return labels

    def numbers(self, values: Sequence[Any], field: str) -> list[float]:
        return [self.number(v, i, field) for i, v in enumerate(values)]

    def check_scale(self, i: int, score: float, lo: float, hi: float) -> None:
        """A row's score must lie inside its scale, and the scale must be ordered."""
        if lo > hi:
            raise self.error(f"scale minimum {lo:g} is above the maximum {hi:g}", i, "scale_min")
        if not lo <= score <= hi:
            raise self.error(f"score {score:g} is outside the scale [{lo:g}, {hi:g}]", i, "score")

    def counts(self, values: Sequence[Any]) -> list[int | None]:
        out: list[int | None] = []
        for i, v in enumerate(values):
            if _missing(v):
                out.append(None)
                continue
            number = self.number(v, i, "num_annotators")
            if not number.is_integer() or number < 0:
                raise self.error(f"not a count: {v!r}", i, "num_annotators")
            out.append(int(number))
        return out

    @staticmethod
    def metadata(values: Sequence[Any]) -> list[str | None]:
        return [None if _missing(v) else to_json(v if isinstance(v, Mapping) else _meta(v)) for v in values]

    def ids(self, values: Sequence[Any], *, unique: bool = True) -> list[str]:
        """The ids as text; with ``unique``, a repeated one is an error (a chunk of a file leaves that
        to the whole file: :meth:`_Stream.finish`)."""
        ids = [self.text(v, i, "example_id", required=True) for i, v in enumerate(values)]
        if not unique:
            return ids  # type: ignore[return-value]
        first: dict[str, int] = {}
        for i, eid in enumerate(ids):
            if eid in first:
                raise self.error(f"duplicate id {eid!r} (also in row {self.table.where(first[eid])})", i,
                                 "example_id", hint="map example_id to a unique column, or leave it unmapped")
            first[eid] = i
        return ids  # type: ignore[return-value]

    def all_blank(self, n: int, texts: Sequence[str]) -> InvalidInput:
        return InvalidInput(f"all {n} rows have a blank {' or '.join(texts)}", file=self.table.file)


def _content_ids(task_type: str, instruction: Sequence[str], response: Sequence[str] | None,
                 stream: _Stream | None = None) -> list[str]:
    """Ids from the content when none is mapped: the instruction (plus the response); for a chunk of
    a file, numbered with the keys of the chunks before it (:class:`_ContentIds`)."""
    keys = instruction if task_type == "pairwise" else [f"{a}\x1f{b}" for a, b in zip(instruction, response or [])]
    return stable_ids(keys) if stream is None else stream.content_ids(keys)


# ----------------------------------------------------------------------------- mapping


def _suggest(name: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=3, cutoff=0.5)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def _check_mapping(mapping: Mapping[str, str] | Sequence[str] | None, task_type: str) -> dict[str, str]:
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        mapping = parse_pairs(list(mapping), option="--map")
    fields = COLUMNS[task_type]
    for field in mapping:
        if field not in fields:
            raise InvalidInput(f"{field!r} is not a {task_type} field{_suggest(field, fields)}", field=field,
                               hint=f"{task_type} fields: {', '.join(fields)}")
    return {str(k): str(v) for k, v in mapping.items()}


def _resolve(table: SourceTable, field: str, mapping: dict[str, str]) -> list[pd.Series] | None:
    """The source column(s) of ``field``: mapped, else same-named, else None. Annotator
    fields may be mapped to several comma-separated columns."""
    column = mapping.get(field)
    if column is None:
        found = table.column(field, field)
        return None if found is None else [found]
    found = table.column(column, field)
    if found is not None:
        return [found]
    if field in _ANNOTATORS and "," in column:
        parts = [c.strip() for c in column.split(",")]
        found_parts = [table.column(c) for c in parts]
        if all(f is not None for f in found_parts):
            return found_parts  # type: ignore[return-value]
        column = next(c for c, f in zip(parts, found_parts) if f is None)
    raise _nowhere(table, field, column)


def _listing(names: Sequence[str], limit: int = 30) -> str:
    """``a, b, c`` for a message, the first ``limit`` names and a count of the rest."""
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _nowhere(table: SourceTable, field: str, path: str) -> InvalidInput:
    """The error for a mapped ``path`` found in no row: for records, what the first record holds."""
    available = table.available()
    hint = f"available columns: {_listing(available)}"
    if table.records:
        return table.absent(0, field, path, suggest=_suggest(path, available), hint=hint)
    return InvalidInput(f"mapped to column {path!r}, which does not exist{_suggest(path, available)}",
                        file=table.file, field=field, hint=hint)


def select_fields(path: Path | str, fields: Mapping[str, str], *, optional: Collection[str] = (),
                  split: str | None = None) -> dict[str, list[Any]]:
    """The values of each of ``fields`` (``{name: path}``) in every record of ``path``, in file order.

    Reads the file once, in any format :func:`load_table` reads (JSON list, object keyed by id, object
    of lists of records, JSON lines, CSV, TSV, Parquet, ``datasets`` folder). A path is, as for
    ``--map`` in ``autorater dataset register``:

    * a column name (a literal name wins, also one that contains dots);
    * a dotted path with list indices into JSON / Parquet / ``datasets`` records
      (``judgments.0.decision``; ``-1`` is the last item);
    * ``@row``: the record's 0-based position in the file as text (``"0"``, ``"1"``, ...; the CSV
      header and blank JSON lines are not counted), the example id ``--id-from-row`` registers;
    * ``@key``: the key a record is listed under in an object of lists (or the id of an object
      keyed by id).

    Returns ``{name: [value, ...]}`` with one value per record, as the file holds it (CSV cells as
    text, an empty cell or a JSON null as ``None``). A path that leads nowhere in a record (no such
    key, index out of range) raises :class:`~registry.errors.InvalidInput` naming the file, the row
    (1-based), the field and what the record holds instead (``the records look like {"id": str,
    ...}``); for the names in ``optional`` it gives ``None`` instead, unless no record has it at all.
    """
    table = load_table(Path(path), split=split)
    out: dict[str, list[Any]] = {}
    for name, source in fields.items():
        column = table.column(str(source), name)
        if column is None:
            if not len(table):
                out[name] = []
                continue
            raise _nowhere(table, name, str(source))
        values = column.tolist()
        if name not in optional:
            first = next((i for i, v in enumerate(values) if v is ABSENT), None)
            if first is not None:
                raise table.absent(first, name, str(source))
        out[name] = [None if v is ABSENT else v for v in values]
    return out


def _need(table: SourceTable, field: str, task_type: str) -> InvalidInput:
    available = table.available()
    ratio = {c: difflib.SequenceMatcher(None, field, c).ratio() for c in available}
    guess = max(available, key=ratio.__getitem__, default=None)  # first best, in column order
    example = guess if guess is not None and ratio[guess] >= 0.4 else "COLUMN"
    return InvalidInput(f"no column for required {task_type} field", file=table.file, field=field,
                        hint=f"pass --map {field}={example}; available columns: {_listing(available)}")


# ----------------------------------------------------------------------------- which reader

FAST_PATH = True
"""Read JSON lines and Parquet with the columnar reader where their layout allows (the module
docstring); ``False`` sends every file to the records reader. Both give the same frame and errors."""


def _columnar_input(path: Path, mapping: Mapping[str, str]) -> tuple[pa.Table, SourceTable, bool] | None:
    """(Arrow columns, the table that names rows in messages, whether the columns are the JSON lines'
    own values) of a file the columnar reader can take by its format and mapped paths, else ``None``.
    Decided before the file is read: the format, and paths into records (a literal column with a
    dotted name, seen in the Parquet schema or the first JSON line, is a column); JSON lines that
    pyarrow does not read as one typed object per line go to the records reader too."""
    if not FAST_PATH or not path.is_file() or path.suffix.lower() == ".gz":
        return None
    fmt = detect_format(path)
    if fmt not in ("jsonl", "parquet"):
        return None
    paths = [p for f, p in mapping.items() if (p.startswith("@") or "." in p)
             and not (f == "example_id" and p == ROW_PATH)]
    if paths and not set(paths) <= leading_names(path, fmt):
        return None
    if fmt == "parquet":
        table = read_parquet_table(path)
        return table, SourceTable(path, record_at=lambda i: table.slice(i, 1).to_pylist()[0]), True
    table = read_json_lines_table(path)
    if table is None:
        return None
    lines, record = json_lines_where(path)
    return table, SourceTable(path, lines=lines, record_at=record), False


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t)


_LIST_DEPTH = 32
"""Lists nested deeper than this are left to the records reader (which names JSON nested too deeply)."""


def _json_typed(t: pa.DataType) -> bool:
    """Whether pyarrow's values of a JSON-lines column of type ``t`` are the JSON's own: null, boolean,
    integer, number, text and lists of them, up to :data:`_LIST_DEPTH` deep (objects gain the keys of
    other records, dates become timestamps)."""
    for _ in range(_LIST_DEPTH):
        if not _is_list(t):
            return (pa.types.is_null(t) or pa.types.is_boolean(t) or pa.types.is_int64(t)
                    or pa.types.is_float64(t) or _is_text(t))
        t = t.value_type
    return False


def _columnar_plan(table: pa.Table, *, task_type: str, mapping: Mapping[str, str], scale: Any, row_ids: bool,
                   json_lines: bool) -> dict[str, list[str]] | None:
    """The source column(s) of each field, when the columnar reader can read them, from the
    column names and types only: every mapped path is a column (or, for annotators, several), the
    required fields have a column, a pointwise file has a scale; JSON-lines columns are of
    :func:`_json_typed` types (metadata: text). ``None``: the records reader reads the file."""
    names = table.column_names
    if len(set(names)) != len(names):
        return None
    plan: dict[str, list[str]] = {}
    for f in COLUMNS[task_type]:
        if f == "example_id" and row_ids:
            continue
        path = mapping.get(f, f)
        if path in names:
            plan[f] = [path]
        elif f in mapping:
            parts = [c.strip() for c in path.split(",")]
            if not (f in _ANNOTATORS and len(parts) > 1 and all(p in names for p in parts)):
                return None  # a path into records, or a missing column (reported by the records reader)
            plan[f] = parts
    if any(f not in plan for f in _REQUIRED[task_type]):
        return None  # a label / score from the annotators, or a required field without a column (reported)
    if task_type == "pointwise" and scale is None and not ("scale_min" in plan and "scale_max" in plan):
        return None
    if json_lines:
        schema = table.schema
        for f, columns in plan.items():
            for c in columns:
                t = schema.field(c).type
                if not _json_typed(t) or (f == "metadata" and not (_is_text(t) or pa.types.is_null(t))):
                    return None
    return plan


def _finished(df: pd.DataFrame, counts: list[Any], task_type: str, labels: tuple[str, ...] | None,
              skipped: int) -> pd.DataFrame:
    """The frame with its annotator counts (kept as Python ints and ``None``) and its attributes: the
    label set, the score scale, the rows skipped as blank."""
    df["num_annotators"] = pd.Series(counts, dtype=object)
    if task_type == "classification":
        df.attrs["labels"] = labels or tuple(sorted(set(df["label"])))
    if task_type == "pointwise":
        df.attrs["scale"] = (float(df["scale_min"].min()), float(df["scale_max"].max()))
    df.attrs["skipped_rows"] = skipped
    return df


# ----------------------------------------------------------------------------- columnar reader

_MAX_EXACT_INT = 2**53


def _workers() -> int:
    return min(4, os.cpu_count() or 1)


def _in_one_piece(table: pa.Table) -> pa.Table:
    """Each column as one array (readers give one piece per block; later steps take rows, which
    is costly over many pieces), the columns combined in parallel (Arrow runs without the GIL)."""
    def one(column: pa.ChunkedArray) -> pa.ChunkedArray:
        return column if column.num_chunks <= 1 else pa.chunked_array([column.combine_chunks()], column.type)

    with ThreadPoolExecutor(max_workers=_workers()) as pool:
        columns = list(pool.map(one, table.columns))
    return pa.Table.from_arrays(columns, names=table.column_names)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while many acyclic containers are built."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _holds_float(t: pa.DataType) -> bool:
    while _is_list(t):
        t = t.value_type
    return pa.types.is_floating(t)


class _Columns:
    """The columnar reader's source: Arrow columns, and each column's values exactly as the records
    reader sees them when a field is converted value by value."""

    def __init__(self, table: pa.Table, source: SourceTable, exact: bool) -> None:
        self.table, self.source, self.exact = table, source, exact
        self._records: list[Mapping[str, Any]] | None = None

    def arrow(self, name: str) -> pa.ChunkedArray:
        arr = self.table.column(name)
        return arr.cast(arr.type.value_type) if pa.types.is_dictionary(arr.type) else arr

    def values(self, name: str) -> list[Any]:
        """The column's values as Python objects, :data:`ABSENT` where a JSON line lacks the key.
        Parquet columns and JSON-lines columns without nulls or numbers are pyarrow's values; the
        others are read from the lines (``1`` in a column of numbers is an ``int`` there)."""
        arr = self.arrow(name)
        if self.exact or not (arr.null_count or _holds_float(arr.type)):
            return arr.to_pylist()
        if self._records is None:
            self._records = [self.source.record(i) for i in range(self.table.num_rows)]
        return [rec.get(name, ABSENT) for rec in self._records]


def _by_distinct(arr: pa.Array | pa.ChunkedArray, convert: Callable[[Any], str],
                 refused: Callable[[Any, int], object]) -> tuple[list[str], np.ndarray]:
    """``convert(value)`` of each distinct value of ``arr`` (in order of first appearance) and, per
    position, the index of its value: one call per label, not per row. For a value ``convert``
    refuses, ``refused(value, position of its first appearance)`` raises the error the records
    reader gives there (the earliest refused value is met first)."""
    distinct = pc.unique(arr)
    codes = np.asarray(pc.index_in(arr, value_set=distinct))
    mapped = []
    for k, value in enumerate(distinct.to_pylist()):
        try:
            mapped.append(convert(value))
        except InvalidInput:
            refused(value, int(np.argmax(codes == k)))
            raise  # pragma: no cover - refused() raises the same error at its row
    return mapped, codes


def _is_scalar(t: pa.DataType) -> bool:
    return (_is_text(t) or pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_floating(t)
            or pa.types.is_null(t))


def _label_column(conv: _Rows, cols: _Columns, name: str) -> pa.Array | pa.ChunkedArray:
    arr = cols.arrow(name)
    if not _is_scalar(arr.type):
        return pa.array([conv.label(v, i) for i, v in enumerate(cols.values(name))], pa.string())
    mapped, codes = _by_distinct(arr, lambda v: conv.label(v, 0),
                                 lambda _, at: conv.label(cols.values(name)[at], at))
    return pc.take(pa.array(mapped, pa.string()), pa.array(codes))


def _plain_numbers(arr: pa.Array | pa.ChunkedArray) -> bool:
    """Whether ``float(value)`` of every value is what casting the column gives: no nulls, integers
    exact as floats, finite floats."""
    if arr.null_count:
        return False
    if pa.types.is_integer(arr.type):
        return not len(arr) or max(abs(pc.min(arr).as_py()), abs(pc.max(arr).as_py())) <= _MAX_EXACT_INT
    return pa.types.is_floating(arr.type) and bool(pc.all(pc.is_finite(arr)).as_py())


def _text_column(conv: _Rows, cols: _Columns, f: str, name: str, *, required: bool) -> pa.ChunkedArray | None:
    arr = cols.arrow(name)
    if pa.types.is_null(arr.type) and not required:
        return None
    if _is_text(arr.type) and not (required and arr.null_count):
        return arr
    return pa.chunked_array([pa.array(conv.texts(cols.values(name), f, required=required), pa.string())])


def _number_column(conv: _Rows, cols: _Columns, f: str, name: str) -> np.ndarray:
    arr = cols.arrow(name)
    if _plain_numbers(arr):
        return np.asarray(pc.cast(arr, pa.float64()))
    return np.array(conv.numbers(cols.values(name), f), dtype=np.float64)


def _annotator_column(conv: _Rows, cols: _Columns, f: str, names: list[str]) -> list[list[Any] | None] | None:
    """Annotator lists: list columns converted per distinct item (labels) or cast (scores); other
    columns, and several columns, value by value."""
    n = cols.table.num_rows
    arr = cols.arrow(names[0])
    if len(names) > 1 or not (_is_list(arr.type) or pa.types.is_null(arr.type)):
        return conv.annotators([cols.values(c) for c in names], f, n)
    if pa.types.is_null(arr.type):
        return None
    arr = one_array(arr)
    offsets = np.asarray(arr.offsets, dtype=np.int64)
    start = int(offsets[0])
    bounds = offsets - start
    items = arr.values.slice(start, int(offsets[-1]) - start)
    if not len(items):
        flat: list[Any] = []
    elif f == "annotator_labels" and _is_scalar(items.type):
        def row_of(at: int) -> int:
            return int(np.searchsorted(bounds, at, side="right")) - 1

        mapped, codes = _by_distinct(items, lambda v: conv.label(v, 0, f),
                                     lambda v, at: conv.label(v, row_of(at), f))
        flat = np.array(mapped + [None], dtype=object)[:-1][codes].tolist()
    elif f == "annotator_scores" and _plain_numbers(items):
        flat = np.asarray(pc.cast(items, pa.float64())).tolist()
    else:
        return conv.annotators([cols.values(names[0])], f, n)
    valid = np.asarray(arr.is_valid()).tolist()
    edges = bounds.tolist()
    with _gc_paused():  # a million new lists would otherwise set off many collections of the whole heap
        return [flat[a:b] if ok and b > a else None for a, b, ok in zip(edges[:-1], edges[1:], valid)]


def _read_columns(cols: _Columns, plan: dict[str, list[str]], *, task_type: str, conv: _Rows,
                  labels: tuple[str, ...] | None, scale: tuple[float, float] | None, criterion: str | None,
                  category: str | None, skip_empty: bool, row_ids: bool,
                  stream: _Stream | None = None) -> pd.DataFrame:
    """The frame of the records reader, converting whole columns at once where their type allows
    and value by value with the same rules (and messages) where it does not; fields in the records
    reader's order, so the first error is the same. ``stream``: the columns are a chunk of the file."""
    n = cols.table.num_rows
    if n == 0:
        raise InvalidInput("no rows", file=conv.table.file)
    required = _REQUIRED[task_type]
    out: dict[str, Any] = {}  # Arrow arrays, Python lists, or None (a column of nulls)
    for f in _TEXTS:
        if f in plan:
            out[f] = _text_column(conv, cols, f, plan[f][0], required=f in required)
    for f in _ANNOTATORS:
        if f in plan:
            out[f] = _annotator_column(conv, cols, f, plan[f])
    if task_type in ("pairwise", "classification"):
        out["label"] = _label_column(conv, cols, plan["label"][0])
    if task_type == "pointwise":
        scores = _number_column(conv, cols, "score", plan["score"][0])
        if scale is not None:
            lo, hi = (float(x) for x in scale)
            mins, maxs = np.full(n, lo), np.full(n, hi)
        else:
            mins = _number_column(conv, cols, "scale_min", plan["scale_min"][0])
            maxs = _number_column(conv, cols, "scale_max", plan["scale_max"][0])
        bad = np.flatnonzero((mins > maxs) | (scores < mins) | (scores > maxs))
        if len(bad):
            i = int(bad[0])
            conv.check_scale(i, float(scores[i]), float(mins[i]), float(maxs[i]))
        out["score"], out["scale_min"], out["scale_max"] = (pa.array(x) for x in (scores, mins, maxs))
        if criterion is not None or "criterion" not in out:
            out["criterion"] = pa.array(np.full(n, criterion or "overall", dtype=object), pa.string())
        elif out["criterion"] is None:
            out["criterion"] = pa.array(np.full(n, "overall", dtype=object), pa.string())
        else:
            out["criterion"] = pc.fill_null(out["criterion"], "overall")
    if category is not None:
        out["category"] = pa.array(np.full(n, category, dtype=object), pa.string())
    # num_annotators: the mapped counts, else the length of the annotator lists
    if "num_annotators" in plan:
        arr = cols.arrow(plan["num_annotators"][0])
        if pa.types.is_null(arr.type):
            counts: list[Any] = [None] * n
        elif pa.types.is_integer(arr.type) and (arr.null_count == n or pc.min(arr).as_py() >= 0):
            counts = arr.to_pylist()
        else:
            counts = conv.counts(cols.values(plan["num_annotators"][0]))
    else:
        lists = out.get("annotator_labels") or out.get("annotator_scores")
        counts = [len(row) if row else None for row in lists] if lists else [None] * n
    if "metadata" in plan:
        arr = cols.arrow(plan["metadata"][0])
        out["metadata"] = None if pa.types.is_null(arr.type) else \
            pa.array(conv.metadata(cols.values(plan["metadata"][0])), pa.string())
    # example ids: row numbers, or the mapped column as text (unique), else content ids
    if row_ids:
        first = conv.table.offset
        out["example_id"] = pa.array([str(first + i) for i in range(n)], pa.string())
    elif "example_id" in plan:
        arr = cols.arrow(plan["example_id"][0])
        if pa.types.is_integer(arr.type):
            arr = pc.cast(arr, pa.string())
        if _is_text(arr.type) and not arr.null_count and (stream is not None or len(pc.unique(arr)) == n):
            out["example_id"] = arr
        else:
            out["example_id"] = pa.array(conv.ids(cols.values(plan["example_id"][0]), unique=stream is None),
                                         pa.string())
        if stream is not None:
            stream.mapped_ids(out["example_id"])
    else:
        out["example_id"] = _content_ids(task_type, out["instruction"].to_pylist(),
                                         None if task_type == "pairwise" else out["response"].to_pylist(), stream)

    skipped = 0
    keep: np.ndarray | None = None
    if skip_empty:
        blank = np.zeros(n, dtype=bool)
        texts = [f for f in required if f in _TEXTS]
        for f in texts:
            arr = out[f]
            # text with an ASCII letter or digit is not blank; the rest is checked as str.strip() does
            maybe = np.flatnonzero(np.asarray(pc.invert(pc.match_substring_regex(arr, "[0-9A-Za-z]"))))
            for i, value in zip(maybe, pc.take(arr, pa.array(maybe, pa.int64())).to_pylist()):
                if not value.strip():
                    blank[i] = True
        keep = np.flatnonzero(~blank)
        skipped = n - len(keep)
        if not len(keep) and stream is None:
            raise conv.all_blank(n, texts)
        if stream is not None:
            stream.blank(texts)
        if not skipped:
            keep = None
    m = n if keep is None else len(keep)

    def series(f: str) -> pd.Series:
        value = out.get(f)
        if value is None:
            return pd.Series(np.full(m, None, dtype=object), dtype=object)
        if isinstance(value, list):
            if keep is not None:
                value = [value[i] for i in keep]
            return pd.Series(value, dtype=object if f in _ANNOTATORS else None)
        if keep is not None:
            value = pc.take(value, pa.array(keep, pa.int64()))
        if value.null_count == len(value):
            return pd.Series(np.full(m, None, dtype=object), dtype=object)
        return value.to_pandas()

    df = pd.DataFrame({f: series(f) for f in COLUMNS[task_type]})
    return _finished(df, counts if keep is None else [counts[i] for i in keep], task_type, labels, skipped)


# ----------------------------------------------------------------------------- records reader


def _read_records(path: Path, *, task_type: str, mapping: dict[str, str], label_map: dict[str, str] | None,
                  labels: tuple[str, ...] | None, scale: tuple[float, float] | None, criterion: str | None,
                  category: str | None, split: str | None, skip_empty: bool, id_from_row: bool,
                  table: SourceTable | None = None, stream: _Stream | None = None) -> pd.DataFrame:
    """The frame of any file :func:`load_table` reads, converted record by record; or of ``table``,
    a chunk of the file read by :meth:`GenericAdapter.read_chunks` (``stream``)."""
    table = load_table(path, split=split) if table is None else table
    n = len(table)
    if n == 0:
        raise InvalidInput("no rows", file=path)
    if stream is None:
        cols = {f: _resolve(table, f, mapping) for f in COLUMNS[task_type]}
    else:
        cols = {f: stream.resolve(table, f, mapping) for f in COLUMNS[task_type]}
    if id_from_row:
        cols["example_id"] = [pd.Series([str(table.offset + i) for i in range(n)], dtype=object)]
    if stream is not None:
        stream.resolved({f for f, c in cols.items() if c is not None}, table)
    for f in _REQUIRED[task_type]:
        if cols[f] is None and not (f == "label" and cols["annotator_labels"]) \
                and not (f == "score" and cols["annotator_scores"]):
            raise _need(table, f, task_type)
    for f in ("scale_min", "scale_max"):
        if task_type == "pointwise" and scale is None and cols[f] is None:
            raise InvalidInput("pointwise data needs a score scale", file=path, field=f,
                               hint="pass scale=(min, max) or map scale_min and scale_max to columns")
    conv = _Rows(table, task_type, label_map, labels, mapping)
    raw = {f: [s.to_numpy(dtype=object) for s in series] for f, series in cols.items() if series}
    out: dict[str, list[Any]] = {}

    for f in _TEXTS:
        if f in raw:
            out[f] = conv.texts(raw[f][0], f, required=f in _REQUIRED[task_type])
    for f in _ANNOTATORS:
        if f in raw:
            out[f] = conv.annotators(raw[f], f, n)
    if task_type in ("pairwise", "classification"):
        out["label"] = [conv.label(v, i) for i, v in enumerate(raw["label"][0])] if "label" in raw \
            else conv.majority(out["annotator_labels"])
    if task_type == "pointwise":
        if "score" in raw:
            scores = conv.numbers(raw["score"][0], "score")
        else:
            scores = []
            for i, row in enumerate(out["annotator_scores"]):
                if not row:
                    raise conv.error("no score and no annotator scores", i, "score")
                scores.append(float(np.mean(row)))
        if scale is not None:
            lo, hi = (float(x) for x in scale)
            mins, maxs = [lo] * n, [hi] * n
        else:
            mins, maxs = conv.numbers(raw["scale_min"][0], "scale_min"), conv.numbers(raw["scale_max"][0], "scale_max")
        for i, (s, lo, hi) in enumerate(zip(scores, mins, maxs)):
            conv.check_scale(i, s, lo, hi)
        out["score"], out["scale_min"], out["scale_max"] = scores, mins, maxs
        if criterion is not None or "criterion" not in out:
            out["criterion"] = [criterion or "overall"] * n
        else:
            out["criterion"] = [c if c is not None else "overall" for c in out["criterion"]]
    if category is not None:
        out["category"] = [category] * n
    if "num_annotators" in raw:
        out["num_annotators"] = conv.counts(raw["num_annotators"][0])
    else:
        lists = out.get("annotator_labels") or out.get("annotator_scores")
        out["num_annotators"] = [len(row) if row else None for row in lists] if lists else [None] * n
    if "metadata" in raw:
        out["metadata"] = conv.metadata(raw["metadata"][0])
    if "example_id" in raw:
        out["example_id"] = conv.ids(raw["example_id"][0], unique=stream is None)
        if stream is not None and not id_from_row:
            stream.mapped_ids(pa.array(out["example_id"], pa.string()))
    elif table.keys is not None:
        out["example_id"] = list(table.keys)
    else:
        out["example_id"] = _content_ids(task_type, out["instruction"], out.get("response"), stream)

    skipped = 0
    keep = list(range(n))
    if skip_empty:
        texts = [f for f in _REQUIRED[task_type] if f in out and f in _TEXTS]
        keep = [i for i in keep if all(str(out[f][i]).strip() for f in texts)]
        skipped = n - len(keep)
        if not keep and stream is None:
            raise conv.all_blank(n, texts)
        if stream is not None:
            stream.blank(texts)
    df = frame(({f: out[f][i] for f in out} for i in keep), COLUMNS[task_type])
    return _finished(df, [out["num_annotators"][i] for i in keep], task_type, labels, skipped)


# ----------------------------------------------------------------------------- the adapter


class GenericAdapter(SourceAdapter):
    """Maps the columns of any JSON / JSON-lines / CSV / TSV / Parquet / datasets file."""

    info = SourceInfo(
        name="generic",
        title="Generic column mapper",
        origin="https://github.com/huggingface/datasets",
        license="user-provided",
        citation="(your own data: cite its source)",
        task_types=TASK_TYPES,
        description="Any table of human judgments whose columns are mapped onto a task type with --map.",
    )

    def catalog(self) -> list[DatasetDef]:
        return []  # no standard layout: everything comes from the read options

    def read(self, path: Path, *, task_type: str, mapping: dict[str, str] | None = None,
             label_map: dict[str, str] | None = None, labels: tuple[str, ...] | None = None,
             scale: tuple[float, float] | None = None, criterion: str | None = None,
             category: str | None = None, split: str | None = None, skip_empty: bool | str = False,
             id_from_row: bool | str = False, **_: Any) -> pd.DataFrame:
        """The standardized frame of ``path`` (see the module docstring); ``id_from_row`` makes each
        row's 0-based position in the file (as text) its example id."""
        o = self._options(task_type=task_type, mapping=mapping, label_map=label_map, labels=labels, scale=scale,
                          criterion=criterion, category=category, split=split, skip_empty=skip_empty,
                          id_from_row=id_from_row)
        return self._read(Path(path), o)

    def read_chunks(self, path: Path, *, chunk_bytes: int, task_type: str, mapping: dict[str, str] | None = None,
                    label_map: dict[str, str] | None = None, labels: tuple[str, ...] | None = None,
                    scale: tuple[float, float] | None = None, criterion: str | None = None,
                    category: str | None = None, split: str | None = None, skip_empty: bool | str = False,
                    id_from_row: bool | str = False, **_: Any) -> Iterator[pd.DataFrame]:
        """:meth:`read`'s frame, in consecutive pieces: a JSON-lines, CSV / TSV or Parquet file is read
        about ``chunk_bytes`` bytes at a time (see :class:`_Stream` for what makes the pieces read as
        the whole file); other inputs (JSON documents, ``.gz`` files, ``datasets`` folders) are read
        whole, one piece."""
        path = Path(path)
        o = self._options(task_type=task_type, mapping=mapping, label_map=label_map, labels=labels, scale=scale,
                          criterion=criterion, category=category, split=split, skip_empty=skip_empty,
                          id_from_row=id_from_row)
        fmt = _chunk_format(path)
        if fmt is None:
            yield self._read(path, o)
            return
        stream = _Stream(path, fmt, o)
        pieces = {"jsonl": _jsonl_pieces, "parquet": _parquet_pieces}.get(fmt, _csv_pieces)(path, chunk_bytes, o, stream)
        try:
            held = [next(pieces, None)]
        except _WholeFile:  # decided on the first chunk: read as the whole file
            held = [None]
        if held[0] is None:  # (or no row at all: the whole-file read says what the file is)
            pieces.close()
            yield self._read(path, o)
            return
        yield held.pop()
        yield from pieces
        stream.finish()

    def _options(self, *, task_type: str, mapping: Any, label_map: Any, labels: Any, scale: Any, criterion: str | None,
                 category: str | None, split: str | None, skip_empty: bool | str, id_from_row: bool | str) -> dict[str, Any]:
        """The read options, checked and normalized."""
        if task_type not in TASK_TYPES:
            raise InvalidInput(f"unknown task type {task_type!r}{_suggest(task_type, TASK_TYPES)}",
                               field="task_type", hint=f"one of {', '.join(TASK_TYPES)}")
        mapping = _check_mapping(mapping, task_type)
        scale = None if scale is None else score_scale(scale)
        skip_empty, id_from_row = _flag(skip_empty, "skip_empty"), _flag(id_from_row, "id_from_row")
        if id_from_row and "example_id" in mapping:
            raise InvalidInput(f"--id-from-row and --map example_id={mapping['example_id']} both set the example id",
                               field="example_id", hint="pass one of them (--map example_id=@row is --id-from-row)")
        labels = tuple(labels) if labels is not None else None
        label_map = self._check_label_map(label_map, task_type, labels)
        return {"task_type": task_type, "mapping": mapping, "label_map": label_map, "labels": labels, "scale": scale,
                "criterion": criterion, "category": category, "split": split, "skip_empty": skip_empty,
                "id_from_row": id_from_row}

    def _read(self, path: Path, o: dict[str, Any]) -> pd.DataFrame:
        task_type, mapping, label_map, labels = o["task_type"], o["mapping"], o["label_map"], o["labels"]
        scale, criterion, category, split = o["scale"], o["criterion"], o["category"], o["split"]
        skip_empty, id_from_row = o["skip_empty"], o["id_from_row"]
        columnar = _columnar_input(path, mapping)
        if columnar is not None:
            table, source, exact = columnar
            row_ids = id_from_row or (mapping.get("example_id") == ROW_PATH and ROW_PATH not in table.column_names)
            plan = _columnar_plan(table, task_type=task_type, mapping=mapping, scale=scale, row_ids=row_ids,
                                  json_lines=not exact)
            if plan is not None:
                used = list(dict.fromkeys(c for columns in plan.values() for c in columns))
                cols = _Columns(_in_one_piece(table.select(used)), source, exact)  # the other columns let go
                return _read_columns(cols, plan, task_type=task_type,
                                     conv=_Rows(source, task_type, label_map, labels, mapping), labels=labels,
                                     scale=scale, criterion=criterion, category=category, skip_empty=skip_empty,
                                     row_ids=row_ids)
        return _read_records(path, task_type=task_type, mapping=mapping, label_map=label_map, labels=labels,
                             scale=scale, criterion=criterion, category=category, split=split,
                             skip_empty=skip_empty, id_from_row=id_from_row)

    @staticmethod
    def _check_label_map(label_map: Mapping[str, str] | Sequence[str] | None, task_type: str,
                         labels: tuple[str, ...] | None) -> dict[str, str] | None:
        if label_map is None:
            return None
        if not isinstance(label_map, Mapping):
            label_map = parse_pairs(list(label_map), option="--label-map")
        if task_type == "pointwise":
            raise InvalidInput("a label map does not apply to pointwise data (scores are numbers)",
                               field="label_map")
        out = {}
        for key, target in label_map.items():
            if task_type == "pairwise":
                canonical = _pairwise_label(str(target))
                if canonical is None:
                    raise InvalidInput(f"--label-map {key}={target}: pairwise labels are A, B or tie",
                                       field="label_map")
                target = canonical
            elif labels is not None and target not in labels:
                raise InvalidInput(f"--label-map {key}={target}: {target!r} is not one of the labels "
                                   f"({', '.join(labels)})", field="label_map")
            out[str(key)] = str(target)
        return out


def _flag(value: bool | str, name: str) -> bool:
    """A yes/no option, also as ``--option NAME=true|false`` text."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text not in ("true", "false", "1", "0", "yes", "no"):
            raise InvalidInput(f"{name} takes true or false, got {value!r}", field=name)
        return text in ("true", "1", "yes")
    return bool(value)


# ----------------------------------------------------------------------------- a file in chunks


class _WholeFile(Exception):
    """Raised on a file's first chunk: the file is read whole instead (:meth:`GenericAdapter.read`
    decides how it reads: one JSON document, a first block that is not JSON lines, labels taken from
    annotators in the order of every label of the file)."""


_SET_BY_PRESENCE = ("example_id", "num_annotators", "label", "score")
"""Fields that read differently when their column is missing from a file (content ids, counts from
the annotator lists, labels and scores from the annotators) than when it is there but a row lacks it."""


class _ContentIds:
    """:func:`~registry.adapters.sources.base.stable_ids` over a file read in chunks: a key repeated in
    a later chunk gets the next ``-2``, ``-3``... as in the whole file. Holds the 64-bit hash of every
    key seen (8 bytes a row) and the count of the repeated ones."""

    def __init__(self) -> None:
        self._seen = np.zeros(0, dtype=np.uint64)
        self._more: dict[int, int] = {}

    def __call__(self, keys: Sequence[object], prefix: str = "h") -> list[str]:
        import xxhash

        ints = np.fromiter((xxhash.xxh3_64_intdigest(str(k).encode("utf-8") + b"\x1f") for k in keys),
                           dtype=np.uint64, count=len(keys))
        at = np.searchsorted(self._seen, ints)
        before = (at < len(self._seen)) & (self._seen[np.minimum(at, max(0, len(self._seen) - 1))] == ints) \
            if len(self._seen) else np.zeros(len(ints), dtype=bool)
        counts: dict[int, int] = {}
        out = []
        for h, seen in zip(ints.tolist(), before.tolist()):
            n = counts.get(h)
            if n is None:
                n = self._more.get(h, 1) if seen else 0
            n += 1
            counts[h] = n
            base = f"{prefix}-{h:016x}"
            out.append(base if n == 1 else f"{base}-{n}")
        self._more.update((h, n) for h, n in counts.items() if n > 1)
        self._seen = np.union1d(self._seen, ints)
        return out


class _Stream:
    """What the chunks of one file share, so that together they read as :meth:`GenericAdapter.read`
    reads the whole file:

    * rows are named by their row and line in the file (each chunk's table has an ``offset``);
    * content ids continue the numbering of repeated keys (:class:`_ContentIds`); mapped ids must be
      unique over the file, checked after the last chunk (the whole-file message, naming both rows);
      ``skip_empty`` refuses a file whose rows are all blank after the last chunk;
    * the fields a file has are those its first chunk has: a later chunk without one of them reads it
      as missing in each row (as the whole file does for a row without it); a field the first chunk
      does not have but a later one does is read from there on, except the fields that read
      differently when absent (:data:`_SET_BY_PRESENCE`), which are an error naming the row (read
      whole, the rows before would have been read otherwise). Classification labels taken from the
      annotators without a label set are read whole (the tie order is every label of the file).

    What may differ from the whole-file read: when a file holds several errors, the first one met in
    file order is reported (the whole-file read reports by field, or a CSV/UTF-8/JSON syntax error
    anywhere first); a mapped path found in no row of the first chunk is an error.
    """

    def __init__(self, path: Path, fmt: str, options: dict[str, Any]) -> None:
        self.path, self.fmt, self.o = path, fmt, options
        self.rows = 0
        """Source rows (records, CSV rows) of the chunks read."""
        self.kept = 0
        self.known: set[str] | None = None
        self._ids: list[pa.Array] = []
        self.content_ids = _ContentIds()
        self._blank: Sequence[str] | None = None
        self._lines: list[int] | None = None
        self._nowhere: dict[str, InvalidInput] = {}
        self._found: set[str] = set()

    # -- reading a chunk
    def resolve(self, table: SourceTable, field: str, mapping: dict[str, str]) -> list[pd.Series] | None:
        """:func:`_resolve` for a chunk: a field of the file that this chunk has in no row is missing
        in each of its rows; so is an optional mapped path this chunk has nowhere (an error after the
        last chunk if no chunk has it, as the whole file's)."""
        absent = [pd.Series([ABSENT] * len(table), dtype=object)]
        try:
            found = _resolve(table, field, mapping)
        except InvalidInput as exc:
            # the first chunk: a CSV header holds every column the file has, and a path for a required
            # field or the id that leads nowhere in it fails the whole file either way
            if self.known is None and (self.fmt in ("csv", "tsv") or field == "example_id"
                                       or field in _REQUIRED[self.o["task_type"]]):
                raise
            self._nowhere.setdefault(field, exc)
            return absent
        if found is not None:
            self._found.add(field)
        elif self.known is not None and field in self.known:
            return absent
        return found

    def resolved(self, fields: set[str], table: SourceTable) -> None:
        """The fields a chunk has (see the class docstring)."""
        if self.known is None:
            if self.o["task_type"] == "classification" and self.o["labels"] is None and "label" not in fields:
                raise _WholeFile
            self.known = set(fields)
            return
        for f in _SET_BY_PRESENCE:
            if f in fields and f not in self.known:
                raise InvalidInput(f"rows 1 to {table.offset} of the file have no {f}, later rows have one: every "
                                   f"row must have it, or none", file=self.path, row=table.where(0), field=f,
                                   hint="give every row the field (null where unknown)")
        self.known |= fields  # a field met later reads as missing in the rows before (as read whole)

    def found(self, fields: set[str]) -> None:
        """Fields whose column a chunk has."""
        self._found |= fields

    def mapped_ids(self, ids: pa.Array | pa.ChunkedArray) -> None:
        ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
        self._ids.append(ids.cast(pa.large_string()))

    def blank(self, texts: Sequence[str]) -> None:
        self._blank = texts

    def advance(self, rows: int, kept: int) -> None:
        self.rows += rows
        self.kept += kept

    # -- after the last chunk
    def finish(self) -> None:
        if self.rows == 0:
            raise InvalidInput("no rows", file=self.path)
        for f, exc in self._nowhere.items():
            if f not in self._found:
                raise exc
        self._check_ids()
        if self._blank is not None and self.kept == 0:
            raise InvalidInput(f"all {self.rows} rows have a blank {' or '.join(self._blank)}", file=self.path)

    def _check_ids(self) -> None:
        if not self._ids:
            return
        ids = pa.chunked_array(self._ids, pa.large_string())
        if pc.count_distinct(ids).as_py() == len(ids):
            return
        order = np.asarray(pc.sort_indices(ids))
        ordered = ids.take(pa.array(order)).combine_chunks()
        same = np.asarray(pc.equal(ordered.slice(1), ordered.slice(0, len(ordered) - 1)).fill_null(False))
        later = np.flatnonzero(same) + 1           # sorted positions of second and later occurrences
        k = int(later[np.argmin(order[later])])    # the first of them in the file
        g = k
        while g > 0 and same[g - 1]:
            g -= 1                                 # the first occurrence of that id (stable sort)
        eid = ordered[k].as_py()
        raise InvalidInput(f"duplicate id {eid!r} (also in row {self.where(int(order[g]))})", file=self.path,
                           row=self.where(int(order[k])), field="example_id",
                           hint="map example_id to a unique column, or leave it unmapped")

    def where(self, i: int) -> str | int:
        """Row ``i`` of the file as a message names it (reads the file again for its line)."""
        if self.fmt == "parquet":
            return i + 1
        lines = self.lines()
        return f"{i + 1} (line {lines[i]})" if i < len(lines) else i + 1

    def lines(self) -> list[int]:
        """The line of every row of the file (for messages)."""
        if self._lines is None:
            if self.fmt == "jsonl":
                self._lines = [n for block in line_blocks(self.path, 1 << 26) for n, _ in block.lines(self.path)]
            else:
                self._lines = csv_lines(self.path, "," if self.fmt == "csv" else "\t")
        return self._lines


def _chunk_format(path: Path) -> str | None:
    """The format of a file :meth:`GenericAdapter.read_chunks` reads in chunks, else ``None``."""
    if not FAST_PATH or not path.is_file() or path.suffix.lower() == ".gz":
        return None
    fmt = detect_format(path)
    return fmt if fmt in ("jsonl", "parquet", "csv", "tsv") else None


def _literal_paths(path: Path, fmt: str, mapping: Mapping[str, str]) -> bool:
    """Whether every mapped path is a column name (as :func:`_columnar_input` decides)."""
    paths = [p for f, p in mapping.items() if (p.startswith("@") or "." in p)
             and not (f == "example_id" and p == ROW_PATH)]
    return not paths or set(paths) <= leading_names(path, fmt)


def _columns_chunk(held: list[pa.Table], source: SourceTable, exact: bool, o: dict[str, Any],
                   stream: _Stream) -> pd.DataFrame | None:
    """A chunk (``held[0]``) read by the columnar reader, or ``None`` when it cannot be (or its fields
    are not the file's: then the records reader reads it). Once its used columns are taken, the
    chunk's table is let go (``held`` emptied)."""
    table = held[0]
    mapping = o["mapping"]
    row_ids = o["id_from_row"] or (mapping.get("example_id") == ROW_PATH and ROW_PATH not in table.column_names)
    plan = _columnar_plan(table, task_type=o["task_type"], mapping=mapping, scale=o["scale"], row_ids=row_ids,
                          json_lines=not exact)
    if plan is None:
        return None
    fields = set(plan) | ({"example_id"} if row_ids else set())
    if stream.known is not None and fields != stream.known:
        return None
    stream.resolved(fields, source)
    stream.found(set(plan))
    used = list(dict.fromkeys(c for columns in plan.values() for c in columns))
    selected = table.select(used)
    held.clear()
    del table
    cols = _Columns(_in_one_piece(selected), source, exact)
    del selected
    return _read_columns(cols, plan, task_type=o["task_type"],
                         conv=_Rows(source, o["task_type"], o["label_map"], o["labels"], mapping), labels=o["labels"],
                         scale=o["scale"], criterion=o["criterion"], category=o["category"],
                         skip_empty=o["skip_empty"], row_ids=row_ids, stream=stream)


def _records_chunk(table: SourceTable, o: dict[str, Any], stream: _Stream) -> pd.DataFrame:
    return _read_records(table.file, task_type=o["task_type"], mapping=o["mapping"], label_map=o["label_map"],
                         labels=o["labels"], scale=o["scale"], criterion=o["criterion"], category=o["category"],
                         split=None, skip_empty=o["skip_empty"], id_from_row=o["id_from_row"], table=table,
                         stream=stream)


# The piece readers let go of a chunk's source (bytes, parsed columns, records) before they hand its
# frame over: only the frame is held while the registration works on it.


def _jsonl_piece(block: LineBlock, held: list[pa.Table | None], o: dict[str, Any],
                 stream: _Stream) -> pd.DataFrame | None:
    """The frame of one block; ``held``: its typed columns (:func:`typed_block`) or ``None``."""
    path, first = stream.path, stream.known is None
    if held[0] is not None and (held[0].num_rows >= 2 or not first):
        rows = held[0].num_rows
        df = _columns_chunk(held, block_where(path, block, stream.rows), False, o, stream)
        if df is not None:
            stream.advance(rows, len(df))
            return df
    del held
    try:
        records = block_records(path, block, stream.rows)
    except InvalidInput:
        if first:
            raise _WholeFile from None  # maybe one JSON document over many lines: read whole
        raise
    if first and len(records) < 2:
        raise _WholeFile   # one record may be an object keyed by id: read whole
    if not len(records):
        return None
    df = _records_chunk(records, o, stream)
    stream.advance(len(records), len(df))
    return df


def _jsonl_pieces(path: Path, size: int, o: dict[str, Any], stream: _Stream) -> Iterator[pd.DataFrame]:
    """The frames of a JSON-lines file's blocks; pyarrow parses the next block in a background thread
    (without the GIL) while this one is converted and registered (one parsed block ahead)."""
    literal = _literal_paths(path, "jsonl", o["mapping"])
    blocks = line_blocks(path, size)

    def parsed(block: LineBlock) -> tuple[LineBlock, pa.Table | None]:
        return block, typed_block(block) if literal else None

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="autorater-parse") as pool:
        block = next(blocks, None)
        ahead = pool.submit(parsed, block) if block is not None else None
        del block
        while ahead is not None:
            block, table = ahead.result()
            following = next(blocks, None)
            ahead = pool.submit(parsed, following) if following is not None else None
            del following
            held = [table]
            del table
            out = [_jsonl_piece(block, held, o, stream)]
            del block, held
            if out[0] is not None:
                yield out.pop()


def _parquet_piece(table: pa.Table, literal: bool, o: dict[str, Any], stream: _Stream) -> pd.DataFrame:
    path = stream.path
    source = SourceTable(path, record_at=lambda i, t=table: t.slice(i, 1).to_pylist()[0], offset=stream.rows)
    df = _columns_chunk([table], source, True, o, stream) if literal else None
    if df is None:
        df = _records_chunk(records_table(path, table.to_pylist(), offset=stream.rows), o, stream)
    stream.advance(table.num_rows, len(df))
    return df


def _parquet_pieces(path: Path, size: int, o: dict[str, Any], stream: _Stream) -> Iterator[pd.DataFrame]:
    literal = _literal_paths(path, "parquet", o["mapping"])
    for table in parquet_chunks(path, size):
        if not table.num_rows:
            continue
        held = [_parquet_piece(table, literal, o, stream)]
        del table
        yield held.pop()


def _csv_pieces(path: Path, size: int, o: dict[str, Any], stream: _Stream) -> Iterator[pd.DataFrame]:
    sep = "," if stream.fmt == "csv" else "\t"
    for cells in csv_chunks(path, sep, size):
        if not len(cells):
            continue
        first, n = stream.rows, len(cells)
        table = SourceTable(path, cells, lines=lambda a=first, n=n: stream.lines()[a:a + n], offset=first)
        del cells
        held = [_records_chunk(table, o, stream)]
        del table
        stream.advance(n, len(held[0]))
        yield held.pop()
