"""Generic column mapper: any table of judgments → one standardized task type.

Reads JSON (a list of records; an object keyed by id whose key becomes the example id
unless ``example_id`` is mapped; or an object of lists of records, e.g. a key per category),
JSON lines (also when named ``.json``), CSV, TSV (also ``.gz``), Parquet, or a folder written by
Hugging Face ``datasets``' ``save_to_disk`` (:func:`detect_format` decides by suffix; a
``DatasetDict`` needs ``split`` unless it has one split). ``mapping`` names the source path of
each standardized field (``{"instruction": "question", "label": "winner"}``); fields not mapped
use a column of the same name. A path is a column name (a literal name wins, dots and all), a
dotted path with list indices into JSON, Parquet and ``datasets`` records
(``"judgments.0.decision"``), ``@row`` (the record's 0-based position in the file, as text) or
``@key`` (the key a record is listed under in a JSON object). A path that leads nowhere in a
record is an error showing what the records hold (:meth:`_Table.absent`); :func:`select_fields`
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
"""

from __future__ import annotations

import ast
import csv
import difflib
import gc
import io
import json
import math
import os
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
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
    read_jsonl,
    read_text,
    stable_ids,
    to_json,
)
from registry.domain.options import parse_pairs
from registry.errors import InvalidInput

SUPPORTED_FORMATS: dict[str, str] = {
    "json": ".json (list of records, object keyed by id, or JSON lines)",
    "jsonl": ".jsonl / .ndjson",
    "csv": ".csv",
    "tsv": ".tsv / .tab",
    "parquet": ".parquet / .pq",
    "hf": "a datasets save_to_disk folder",
}
_SUFFIXES = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv",
             ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}
_HF_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
_REQUIRED = {
    "pairwise": ("instruction", "response_a", "response_b", "label"),
    "pointwise": ("instruction", "response", "score"),
    "classification": ("instruction", "response", "label"),
}
_TEXTS = ("instruction", "response", "response_a", "response_b", "reference", "category", "criterion",
          "system_id")
_ANNOTATORS = ("annotator_labels", "annotator_scores")


def detect_format(path: Path | str) -> str:
    """The input format of ``path``: one of :data:`SUPPORTED_FORMATS` (``.gz`` is looked through)."""
    path = Path(path)
    if path.is_dir():
        if any((path / m).exists() for m in _HF_MARKERS):
            return "hf"
        raise InvalidInput("folder is not a Hugging Face datasets save_to_disk folder (no dataset_info.json, "
                           "state.json or dataset_dict.json)", file=path)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-1:] == [".gz"]:
        suffixes = suffixes[:-1]
    fmt = _SUFFIXES.get(suffixes[-1] if suffixes else "")
    if fmt is None or (fmt in ("parquet", "hf") and path.suffix.lower() == ".gz"):
        supported = "; ".join(f"{k}: {v}" for k, v in SUPPORTED_FORMATS.items())
        raise InvalidInput(f"unknown file format {path.suffix or '(no extension)'!r}", file=path,
                           hint=f"supported formats: {supported}")
    return fmt


# ----------------------------------------------------------------------------- loading


ROW_PATH = "@row"
"""Pseudo-path of a record's 0-based position in the file, as text (``"0"``, ``"1"``, ...): the
example id ``--id-from-row`` registers, for judge outputs that line up with a dataset by row order."""
KEY_PATH = "@key"
"""Pseudo-path of a record's key in a JSON object: the group (e.g. category) of a dict-of-lists
file, or the id of an object keyed by id."""

_ABSENT = object()
"""A path that leads nowhere in a record (missing key, index out of range), unlike a JSON null."""


@dataclass
class _Table:
    """A loaded source table (CSV cells, or JSON / Parquet / datasets records), and how to name a row."""

    file: Path
    df: pd.DataFrame | None = None
    """CSV / TSV cells as text (``None`` for an empty cell)."""
    records: list[Mapping[str, Any]] | None = None
    """Records (JSON, Parquet, datasets), reached by column name or dotted path."""
    keys: list[str] | None = None
    """Object keys of a JSON object keyed by id (the default example ids)."""
    groups: list[str] | None = None
    """The key each record is listed under in a dict-of-lists file (``@key``)."""
    top: str | None = None
    """A type sketch of the top level of a dict-of-lists file, for messages."""
    lines: Callable[[], list[int] | None] | None = None
    """Lazily computed line number of each row (CSV/TSV, JSON lines)."""
    _line_cache: list[int] | None = None
    _names: list[str] | None = None

    def __len__(self) -> int:
        if self.records is not None:
            return len(self.records)
        return 0 if self.df is None else len(self.df)

    def where(self, i: int) -> str | int:
        """How a human names row ``i`` (0-based) in messages."""
        key = self.keys or self.groups
        if key is not None:
            return f"{i + 1} (key {key[i]!r})"
        if self.lines is not None:
            if self._line_cache is None:
                self._line_cache = self.lines() or []
            if i < len(self._line_cache):
                return f"{i + 1} (line {self._line_cache[i]})"
        return i + 1

    def names(self) -> list[str]:
        """The column names: the CSV header, or every top-level key of the records in order."""
        if self._names is None:
            if self.records is not None:
                self._names = [str(k) for k in dict.fromkeys(k for rec in self.records for k in rec)]
            else:
                self._names = [] if self.df is None else [str(c) for c in self.df.columns]
        return self._names

    def available(self) -> list[str]:
        """Column names and (for records) the paths into the first records, for "did you mean"."""
        names = list(self.names())
        for rec in (self.records or [])[:50]:
            names += [p for p in _dotted_paths(rec) if p not in names]
        if self.keys is not None or self.groups is not None:
            names.append(KEY_PATH)
        return names + [ROW_PATH]

    def column(self, path: str, field: str | None = None) -> pd.Series | None:
        """The values at ``path`` (a column name, which wins; ``@row``; ``@key``; or a dotted path with
        list indices into records), one per row, :data:`_ABSENT` where a record lacks it; ``None``
        when no row has it."""
        if self.records is not None and path in self.names():
            return pd.Series([rec.get(path, _ABSENT) for rec in self.records], dtype=object)
        if self.df is not None and path in self.df.columns:
            return self.df[path]
        if path == ROW_PATH:
            return pd.Series([str(i) for i in range(len(self))], dtype=object)
        if path == KEY_PATH:
            key = self.keys or self.groups
            if key is None:
                raise InvalidInput(f"{KEY_PATH} is the key of a record in a JSON object (an object keyed by id, "
                                   "or an object of lists), and this file has none", file=self.file,
                                   field=field, hint="map a column or a dotted path instead")
            return pd.Series(key, dtype=object)
        if self.records is not None and "." in path:
            parts = path.split(".")
            values = [_get_path(rec, parts) for rec in self.records]
            if any(v is not _ABSENT for v in values):
                return pd.Series(values, dtype=object)
        return None

    def absent(self, i: int, field: str, path: str, *, suggest: str = "", hint: str | None = None) -> InvalidInput:
        """The error for ``path`` leading nowhere in record ``i``, showing what the records hold."""
        if self.records is None:
            return InvalidInput(f"no column {path!r}{suggest}; the columns are {', '.join(self.names())}",
                                file=self.file, field=field, hint=hint)
        record = self.records[i] if i < len(self.records) else {}
        message = f"no {path!r} in the record{_why_absent(record, path.split('.'))}; " \
                  f"the records look like {_sketch(record)}"
        if self.top is not None:
            message += f"; the file is an object of lists {self.top} ({KEY_PATH} is a record's key)"
        return InvalidInput(message + suggest, file=self.file, row=self.where(i), field=field, hint=hint)


def _index(part: str) -> int | None:
    """A path part as a list index (``0``, ``-1``), else ``None``."""
    return int(part) if part.lstrip("-").isdigit() else None


def _get_path(record: Any, parts: list[str]) -> Any:
    """The value at a dotted path (``judgments.0.decision``) or :data:`_ABSENT`; at each level an
    object key that is the literal rest of the path (``"a.b"``) wins over splitting it."""
    for at, part in enumerate(parts):
        if isinstance(record, Mapping):
            if at < len(parts) - 1:
                rest = ".".join(parts[at:])
                if rest in record:
                    return record[rest]
            if part not in record:
                return _ABSENT
            record = record[part]
        elif isinstance(record, (list, tuple)):
            index = _index(part)
            if index is None or not -len(record) <= index < len(record):
                return _ABSENT
            record = record[index]
        else:
            return _ABSENT
    return record


def _why_absent(record: Any, parts: list[str]) -> str:
    """Where a dotted path stops in ``record``, e.g. `` ('judgments' has 1 item)``; ``""`` at the top."""
    for at, part in enumerate(parts):
        here = ".".join(parts[:at])
        if isinstance(record, Mapping) and part in record:
            record = record[part]
        elif isinstance(record, (list, tuple)) and _index(part) is not None \
                and -len(record) <= _index(part) < len(record):  # type: ignore[operator]
            record = record[_index(part)]  # type: ignore[index]
        elif not here:
            return ""
        elif isinstance(record, (list, tuple)):
            count = f"{len(record)} item{'s' if len(record) != 1 else ''}"
            index = f"no index {part}" if _index(part) is not None else f"{part!r} is not a list index"
            return f" ({here!r} is a list of {count}: {index})"
        elif isinstance(record, Mapping):
            return f" ({here!r} has no {part!r})"
        else:
            return f" ({here!r} is {_sketch(record)}, not an object or a list)"
    return ""


def _sketch(value: Any, depth: int = 0, limit: int = 240) -> str:
    """A short type sketch of a JSON value: ``{"id": str, "judgments": [{"score": int, ...}], ...}``."""
    if isinstance(value, Mapping):
        if depth >= 4:
            return "{...}"
        shown = 6 if depth == 0 else 2
        items = [f"{json.dumps(str(k), ensure_ascii=False)}: {_sketch(v, depth + 1)}"
                 for k, v in list(value.items())[:shown]]
        text = "{" + ", ".join(items + (["..."] if len(value) > shown else [])) + "}"
    elif isinstance(value, (list, tuple)):
        text = "[]" if not value else "[...]" if depth >= 4 else f"[{_sketch(value[0], depth + 1)}]"
    else:
        text = "null" if value is None else type(value).__name__
    return text if depth or len(text) <= limit else text[:limit - 3] + "..."


def _dotted_paths(record: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``a.b`` and ``a.0.b`` paths to the leaves of nested objects and lists in ``record`` (the first
    item of each list), for "did you mean"."""
    out = []
    for key, value in record.items():
        if prefix.count(".") >= 4:
            break
        if isinstance(value, (list, tuple)) and value:
            key, value = f"{key}.0", value[0]
            if not isinstance(value, Mapping):
                out.append(f"{prefix}{key}")
        if isinstance(value, Mapping):
            out += [f"{prefix}{key}.{k}" for k, v in value.items() if not isinstance(v, (Mapping, list, tuple))]
            out += _dotted_paths(value, f"{prefix}{key}.")
    return out


def _is_dict_of_lists(data: Mapping[str, Any]) -> bool:
    """An object whose values are lists of records (a key per category, say), at least one record."""
    return bool(data) and all(isinstance(v, list) and all(isinstance(r, Mapping) for r in v) for v in data.values()) \
        and any(data.values())


def _from_records(path: Path, data: Any, lines: list[int] | None = None) -> _Table:
    keys = groups = top = None
    if isinstance(data, dict):
        if data and all(isinstance(v, Mapping) for v in data.values()):
            keys, data = [str(k) for k in data], list(data.values())
        elif _is_dict_of_lists(data):
            top = _sketch(data)
            groups = [str(k) for k, items in data.items() for _ in items]
            data = [rec for items in data.values() for rec in items]
        else:  # a single record (one-line JSON lines file)
            data = [data]
    if not isinstance(data, list):
        raise InvalidInput(f"expected a list of records, an object keyed by id or an object of lists of records, "
                           f"got {type(data).__name__}", file=path)
    table = _Table(path, records=data, keys=keys, groups=groups, top=top,
                   lines=(lambda: lines) if lines is not None else None)
    for i, rec in enumerate(data):
        if not isinstance(rec, Mapping):
            raise InvalidInput(f"expected a record (JSON object), got {type(rec).__name__}", file=path,
                               row=table.where(i))
    return table


def _load_json(path: Path) -> _Table:
    text = read_text(path)
    try:
        return _from_records(path, json.loads(text))
    except json.JSONDecodeError as exc:
        if not exc.msg.startswith("Extra data"):  # one malformed document, not JSON lines
            raise InvalidInput(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                               file=path, row=exc.lineno) from exc
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    return _from_records(path, read_jsonl(path), lines=lines)


def _csv_records(text: str, sep: str) -> list[tuple[int, bool]]:
    """(start line, has fields) of every record, blank lines included, as pandas counts
    "lines"; a record the csv module cannot finish (unclosed quote) still gets its start."""
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    out, prev = [], 0
    try:
        for rec in reader:
            out.append((prev + 1, bool(rec)))
            prev = reader.line_num
    except csv.Error:
        out.append((prev + 1, True))
    return out


def _csv_lines(text: str, sep: str) -> list[int]:
    """Start line of each data row (blank lines and the header skipped)."""
    return [line for line, filled in _csv_records(text, sep) if filled][1:]


def _load_csv(path: Path, sep: str) -> _Table:
    text = read_text(path)
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError as exc:
        raise InvalidInput("empty file (no header row)", file=path) from exc
    except pd.errors.ParserError as exc:
        # pandas counts records (a blank line is one): "line N" from 1, "row N" (unclosed quote) from 0
        m = re.search(r"(line|row) (\d+)", str(exc))
        line = None
        if m:
            record = int(m.group(2)) - (m.group(1) == "line")
            records = _csv_records(text, sep)
            line = records[record][0] if record < len(records) else record + 1
        kind = "TSV" if sep == "\t" else "CSV"
        detail = re.sub(r"^Error tokenizing data\. C error: | (in line|starting at row) \d+", "", str(exc).strip())
        raise InvalidInput(f"malformed {kind}" + (f" at line {line}" if line else "") + f": {detail}",
                           file=path, row=line, hint="check the quoting and the number of fields") from exc
    df = df.astype(object).where(df.notna(), None)
    df.columns = [str(c) for c in df.columns]
    return _Table(path, df.reset_index(drop=True), lines=lambda: _csv_lines(text, sep))


def _load_parquet(path: Path) -> _Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        records = pq.read_table(path).to_pylist()
    except (OSError, pa.ArrowException) as exc:
        raise InvalidInput(f"cannot read Parquet: {exc}", file=path) from exc
    return _from_records(path, records)


def _load_hf(path: Path, split: str | None) -> _Table:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot load datasets folder: {exc}", file=path) from exc
    if isinstance(ds, datasets.DatasetDict):
        names = list(ds)
        if split is None and len(names) == 1:
            split = names[0]
        if split not in ds:
            raise InvalidInput(f"split {split!r} not found; splits: {', '.join(names)}" if split else
                               f"folder holds several splits ({', '.join(names)}); choose one with split=",
                               file=path, field="split")
        ds = ds[split]
    return _from_records(path, ds.to_list())


def load_table(path: Path, *, split: str | None = None) -> _Table:
    """Load any supported file (see :func:`detect_format`) as a table of source columns."""
    path = Path(path)
    if not path.exists():
        raise InvalidInput("file does not exist", file=path, hint="check --path")
    fmt = detect_format(path)
    if fmt in ("json", "jsonl"):
        return _load_json(path)
    if fmt in ("csv", "tsv"):
        return _load_csv(path, "," if fmt == "csv" else "\t")
    if fmt == "parquet":
        return _load_parquet(path)
    return _load_hf(path, split)


# ----------------------------------------------------------------------------- values


def _missing(value: Any) -> bool:
    if value is None or value is _ABSENT:
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


class _Rows:
    """Per-row conversions that raise errors naming file, row and field."""

    def __init__(self, table: _Table, task_type: str, label_map: dict[str, str] | None,
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
        if value is _ABSENT and required:
            raise self.absent(i, field)
        if _missing(value):
            if required:
                raise self.error("missing value", i, field)
            return None
        if isinstance(value, (Mapping, list, tuple, np.ndarray)):
            raise self.error(f"expected text, got {type(value).__name__}", i, field)
        return _label_key(value) if not isinstance(value, str) else value

    def label(self, value: Any, i: int, field: str = "label") -> str:
        if value is _ABSENT:
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
        if value is _ABSENT:
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
                    return list(parsed) or None
            raise self.error(f"malformed list {text[:60]!r}; expected a JSON list such as [\"A\", \"B\"]", i, field)
        return [value]


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


def _resolve(table: _Table, field: str, mapping: dict[str, str]) -> list[pd.Series] | None:
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


def _nowhere(table: _Table, field: str, path: str) -> InvalidInput:
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
            first = next((i for i, v in enumerate(values) if v is _ABSENT), None)
            if first is not None:
                raise table.absent(first, name, str(source))
        out[name] = [None if v is _ABSENT else v for v in values]
    return out


def _need(table: _Table, field: str, task_type: str) -> InvalidInput:
    available = table.available()
    ratio = {c: difflib.SequenceMatcher(None, field, c).ratio() for c in available}
    guess = max(available, key=ratio.__getitem__, default=None)  # first best, in column order
    example = guess if guess is not None and ratio[guess] >= 0.4 else "COLUMN"
    return InvalidInput(f"no column for required {task_type} field", file=table.file, field=field,
                        hint=f"pass --map {field}={example}; available columns: {_listing(available)}")


# ----------------------------------------------------------------------------- columnar fast path

FAST_PATH = True
"""Read JSON lines and Parquet column-wise with pyarrow when no value needs row-by-row work
(see :func:`_fast_read`); ``False`` forces the row-by-row reader. Both give the same frame."""

_MAX_EXACT_INT = 2**53


class _RowByRow(Exception):
    """The file needs the row-by-row reader (an error to report, or a value to convert one by one)."""


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t)


_WHITESPACE = np.array([ord(" "), ord("\t"), ord("\r")], dtype=np.uint8)
_CHUNK = 1 << 24


def _one_object_per_line(data: np.ndarray, rows: int) -> bool:
    """Whether pyarrow's ``rows`` objects are one per non-blank line of ``data`` (the file's
    bytes), as :func:`read_jsonl` reads them: pyarrow also accepts several objects on one line,
    or one object over several lines, which :func:`read_jsonl` reports as malformed, and a CR
    that does not end a line is a line break for :func:`read_jsonl` only."""
    size = len(data)
    controls = []  # positions of the bytes up to CR: newlines, mostly
    for start in range(0, size, _CHUNK):
        controls.append(np.flatnonzero(data[start:start + _CHUNK] <= 13) + start)
    at = np.concatenate(controls)
    kind = data[at]
    if np.isin(kind, (11, 12)).any():  # line breaks for read_jsonl (never valid JSON anyway)
        return False
    cr = at[kind == 13]
    if len(cr) and (cr[-1] + 1 >= size or not (data[cr + 1] == 10).all()):
        return False
    nl = at[kind == 10]
    starts = np.concatenate([[0], nl + 1])
    ends = np.concatenate([nl, [size]])
    if starts[-1] == size:  # nothing after the last newline
        starts, ends = starts[:-1], ends[:-1]
    empty = ends == starts
    maybe_blank = ~empty & np.isin(data[np.minimum(starts, size - 1)], _WHITESPACE)
    blank = int(empty.sum())
    for i in np.flatnonzero(maybe_blank):
        if not bytes(data[starts[i]:ends[i]]).strip(b" \t\r"):
            blank += 1
    return rows == len(starts) - blank


def _json_lines_table(path: Path) -> pa.Table:
    """A JSON-lines file parsed by pyarrow (see :func:`_lines_match` for when that is exactly
    what :func:`read_jsonl` reads)."""
    import pyarrow.json as pa_json

    table = pa_json.read_json(pa.memory_map(str(path)))
    if table.num_rows < 2:  # one document: maybe an object keyed by id, read as such by _load_json
        raise _RowByRow
    return table


def _lines_match(path: Path, rows: int) -> bool:
    data = np.memmap(path, dtype=np.uint8, mode="r")
    try:
        return _one_object_per_line(data, rows)
    finally:
        del data


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


def _parquet_table(path: Path) -> pa.Table:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    if table.num_rows == 0:
        raise _RowByRow
    return table


def _unique_map(arr: pa.ChunkedArray | pa.Array, convert: Callable[[Any], Any],
                typ: pa.DataType) -> pa.ChunkedArray | pa.Array:
    """``convert`` applied to every distinct value (the same call the row-by-row reader makes
    for each row), spread back to the rows."""
    distinct = pc.unique(arr)
    mapped = pa.array([convert(v) for v in distinct.to_pylist()], type=typ)
    return pc.take(mapped, pc.index_in(arr, value_set=distinct))


def _numbers(arr: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Numbers as ``float(value)`` gives them; nulls, booleans, text and non-finite values are
    left to the row-by-row reader (which reports them)."""
    if arr.null_count:
        raise _RowByRow
    if pa.types.is_integer(arr.type):
        if len(arr) and max(abs(pc.min(arr).as_py()), abs(pc.max(arr).as_py())) > _MAX_EXACT_INT:
            raise _RowByRow
        return pc.cast(arr, pa.float64())
    if pa.types.is_floating(arr.type):
        arr = pc.cast(arr, pa.float64())
        if not pc.all(pc.is_finite(arr)).as_py():
            raise _RowByRow
        return arr
    raise _RowByRow


def _list_column(arr: pa.ChunkedArray, convert: Callable[[Any], Any] | None) -> list[list[Any] | None]:
    """Annotator lists: items converted (labels through ``convert`` once per distinct item, scores
    as numbers); a null or empty list is ``None``, as in :meth:`_Rows.items`."""
    arr = arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()
    offsets = np.asarray(arr.offsets, dtype=np.int64)
    start = int(offsets[0])
    values = arr.values.slice(start, int(offsets[-1]) - start)
    if convert is not None:
        if not (_is_text(values.type) or pa.types.is_integer(values.type) or pa.types.is_boolean(values.type)
                or pa.types.is_null(values.type)):
            raise _RowByRow
        distinct = pc.unique(values)
        mapped = np.array([convert(v) for v in distinct.to_pylist()] + [None], dtype=object)[:-1]
        items = mapped[np.asarray(pc.index_in(values, value_set=distinct))].tolist() if len(values) else []
    else:
        items = _numbers(values).to_numpy().tolist() if len(values) else []
    bounds = (offsets - start).tolist()
    valid = np.asarray(arr.is_valid()).tolist()
    with _gc_paused():  # a million new lists would otherwise set off many collections of the whole heap
        return [items[a:b] if ok and b > a else None for a, b, ok in zip(bounds[:-1], bounds[1:], valid)]


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


def _fast_read(path: Path, *, task_type: str, mapping: dict[str, str], label_map: dict[str, str] | None,
               labels: tuple[str, ...] | None, scale: tuple[float, float] | None, criterion: str | None,
               category: str | None, skip_empty: bool, id_from_row: bool = False) -> pd.DataFrame | None:
    """The frame :meth:`GenericAdapter.read` builds, computed column-wise with Arrow for JSON-lines
    and Parquet files whose mapped columns need no per-row Python work (text columns of text,
    labels of text / integers / booleans, numbers, annotator lists, integer counts, unique ids,
    ids from row numbers). ``None`` for anything else (other formats, dotted paths and ``@key``,
    several-column mappings, metadata, labels from annotator votes, missing or unconvertible
    values, ...): the row-by-row reader then reads the file and reports any error exactly as before."""
    if not FAST_PATH:
        return None
    options = dict(task_type=task_type, mapping=mapping, label_map=label_map, labels=labels, scale=scale,
                   criterion=criterion, category=category, skip_empty=skip_empty, id_from_row=id_from_row)
    try:
        if not path.is_file() or path.suffix.lower() == ".gz":
            return None
        fmt = detect_format(path)
        if fmt not in ("jsonl", "parquet"):
            return None
        # paths into records go to the row reader, decided before the file is read (a literal
        # column with a dotted name, seen in the schema or the first line, stays here)
        paths = [p for f, p in mapping.items() if (p.startswith("@") or "." in p)
                 and not (f == "example_id" and p == ROW_PATH)]
        if paths and not set(paths) <= _leading_names(path, fmt):
            return None
        if fmt == "parquet":
            return _columnar_frame(_parquet_table(path), path, **options)
        table = _json_lines_table(path)
        with ThreadPoolExecutor(max_workers=1) as pool:  # the line check runs beside the conversion
            lines = pool.submit(_lines_match, path, table.num_rows)
            df = _columnar_frame(table, path, **options)
            return df if lines.result() else None
    except (_RowByRow, InvalidInput, pa.ArrowException, OSError, ValueError, TypeError, OverflowError,
            UnicodeError):
        return None


def _leading_names(path: Path, fmt: str) -> set[str]:
    """Column names a file surely has, read cheaply: the Parquet schema, or the keys of the first
    JSON line (empty when that line is not an object)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return set(pq.read_schema(path).names)
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                first = json.loads(line)
                return set(first) if isinstance(first, dict) else set()
    return set()


def _columnar_frame(table: pa.Table, path: Path, *, task_type: str, mapping: dict[str, str],
                    label_map: dict[str, str] | None, labels: tuple[str, ...] | None,
                    scale: tuple[float, float] | None, criterion: str | None, category: str | None,
                    skip_empty: bool, id_from_row: bool = False) -> pd.DataFrame:
    names = table.column_names
    if len(set(names)) != len(names):
        raise _RowByRow
    n = table.num_rows
    row_ids = id_from_row or (mapping.get("example_id") == ROW_PATH and ROW_PATH not in names)
    columns: dict[str, str] = {}
    for f in COLUMNS[task_type]:
        if f == "example_id" and row_ids:
            continue
        column = mapping.get(f, f)
        if column in names:
            columns[f] = column
        elif f in mapping:
            raise _RowByRow  # a dotted path, several columns, or a missing column
    required = _REQUIRED[task_type]
    for f in required:
        if f not in columns:
            raise _RowByRow  # a missing column (reported), or a label / score from the annotators
    if task_type == "pointwise" and scale is None and not ("scale_min" in columns and "scale_max" in columns):
        raise _RowByRow
    # the columns used, each in one piece; the other columns are let go here
    table = _in_one_piece(table.select(list(dict.fromkeys(columns.values()))))
    src: dict[str, pa.ChunkedArray] = {}
    for f, column in columns.items():
        arr = table.column(column)
        if pa.types.is_dictionary(arr.type):
            arr = arr.cast(arr.type.value_type)
        src[f] = arr
    conv = _Rows(_Table(path, pd.DataFrame()), task_type, label_map, labels)
    out: dict[str, Any] = {}  # Arrow arrays, Python lists, or None (a column of nulls)

    for f in _TEXTS:
        if f not in src:
            continue
        arr = src[f]
        if pa.types.is_null(arr.type) and f not in required:
            out[f] = None
        elif not _is_text(arr.type) or (f in required and arr.null_count):
            raise _RowByRow
        else:
            out[f] = arr
    for f in _ANNOTATORS:
        if f in src:
            arr = src[f]
            if pa.types.is_null(arr.type):
                out[f] = None
            elif _is_list(arr.type):
                out[f] = _list_column(arr, (lambda v, f=f: conv.label(v, 0, f)) if f == "annotator_labels" else None)
            else:
                raise _RowByRow
    if task_type in ("pairwise", "classification"):
        arr = src["label"]
        if arr.null_count or not (_is_text(arr.type) or pa.types.is_integer(arr.type)
                                  or pa.types.is_boolean(arr.type)):
            raise _RowByRow
        out["label"] = _unique_map(arr, lambda v: conv.label(v, 0), pa.string())
    if task_type == "pointwise":
        scores = _numbers(src["score"])
        if scale is not None:
            lo, hi = (float(x) for x in scale)
            mins, maxs = pa.array(np.full(n, lo)), pa.array(np.full(n, hi))
        else:
            mins, maxs = _numbers(src["scale_min"]), _numbers(src["scale_max"])
        if not (pc.all(pc.less_equal(mins, maxs)).as_py() and pc.all(pc.less_equal(mins, scores)).as_py()
                and pc.all(pc.less_equal(scores, maxs)).as_py()):
            raise _RowByRow  # reported row by row
        out["score"], out["scale_min"], out["scale_max"] = scores, mins, maxs
        if criterion is not None or "criterion" not in out:
            out["criterion"] = pa.array(np.full(n, criterion or "overall", dtype=object), pa.string())
        elif out["criterion"] is None:
            out["criterion"] = pa.array(np.full(n, "overall", dtype=object), pa.string())
        else:
            out["criterion"] = pc.fill_null(out["criterion"], "overall")
    if category is not None:
        out["category"] = pa.array(np.full(n, category, dtype=object), pa.string())
    # num_annotators: the mapped counts, else the length of the annotator lists
    if "num_annotators" in src:
        arr = src["num_annotators"]
        if pa.types.is_null(arr.type):
            counts: list[Any] = [None] * n
        elif pa.types.is_integer(arr.type) and (arr.null_count == n or pc.min(arr).as_py() >= 0):
            counts = arr.to_pylist()
        else:
            raise _RowByRow
    else:
        lists = out.get("annotator_labels") or out.get("annotator_scores")
        counts = [len(row) if row else None for row in lists] if lists else [None] * n
    if "metadata" in src:
        if not pa.types.is_null(src["metadata"].type):
            raise _RowByRow  # JSON text per row
        out["metadata"] = None
    # example ids: row numbers, or the mapped column as text (unique), else content ids
    if row_ids:
        out["example_id"] = pa.array([str(i) for i in range(n)], pa.string())
    elif "example_id" in src:
        arr = src["example_id"]
        if pa.types.is_integer(arr.type):
            arr = pc.cast(arr, pa.string())
        if not _is_text(arr.type) or arr.null_count or len(pc.unique(arr)) != n:
            raise _RowByRow
        out["example_id"] = arr
    elif task_type == "pairwise":
        out["example_id"] = stable_ids(out["instruction"].to_pylist())
    else:
        out["example_id"] = stable_ids([f"{a}\x1f{b}" for a, b in zip(out["instruction"].to_pylist(),
                                                                       out["response"].to_pylist())])

    skipped = 0
    keep: np.ndarray | None = None
    if skip_empty:
        blank = np.zeros(n, dtype=bool)
        for f in (f for f in required if f in _TEXTS):
            arr = out[f]
            # text with an ASCII letter or digit is not blank; the rest is checked as str.strip() does
            maybe = np.flatnonzero(np.asarray(pc.invert(pc.match_substring_regex(arr, "[0-9A-Za-z]"))))
            for i, value in zip(maybe, pc.take(arr, pa.array(maybe, pa.int64())).to_pylist()):
                if not value.strip():
                    blank[i] = True
        keep = np.flatnonzero(~blank)
        skipped = n - len(keep)
        if not len(keep):
            raise _RowByRow  # reported
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
    df["num_annotators"] = pd.Series(counts if keep is None else [counts[i] for i in keep], dtype=object)
    if task_type == "classification":
        df.attrs["labels"] = labels or tuple(sorted(set(df["label"])))
    if task_type == "pointwise":
        df.attrs["scale"] = (float(df["scale_min"].min()), float(df["scale_max"].max()))
    df.attrs["skipped_rows"] = skipped
    return df


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
        path = Path(path)
        if task_type not in TASK_TYPES:
            raise InvalidInput(f"unknown task type {task_type!r}{_suggest(task_type, TASK_TYPES)}",
                               field="task_type", hint=f"one of {', '.join(TASK_TYPES)}")
        mapping = _check_mapping(mapping, task_type)
        skip_empty, id_from_row = _flag(skip_empty, "skip_empty"), _flag(id_from_row, "id_from_row")
        if id_from_row and "example_id" in mapping:
            raise InvalidInput(f"--id-from-row and --map example_id={mapping['example_id']} both set the example id",
                               field="example_id", hint="pass one of them (--map example_id=@row is --id-from-row)")
        labels = tuple(labels) if labels is not None else None
        label_map = self._check_label_map(label_map, task_type, labels)
        fast = _fast_read(path, task_type=task_type, mapping=mapping, label_map=label_map, labels=labels,
                          scale=scale, criterion=criterion, category=category, skip_empty=skip_empty,
                          id_from_row=id_from_row)
        if fast is not None:
            return fast
        table = load_table(path, split=split)
        n = len(table)
        if n == 0:
            raise InvalidInput("no rows", file=path)
        cols = {f: _resolve(table, f, mapping) for f in COLUMNS[task_type]}
        if id_from_row:
            cols["example_id"] = [pd.Series([str(i) for i in range(n)], dtype=object)]
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

        def values(f: str) -> np.ndarray:
            return raw[f][0]

        for f in _TEXTS:
            if f in raw:
                required = f in _REQUIRED[task_type]
                out[f] = [conv.text(v, i, f, required=required) for i, v in enumerate(values(f))]
        if "annotator_labels" in raw:
            out["annotator_labels"] = self._annotators(conv, raw["annotator_labels"], "annotator_labels", n)
        if "annotator_scores" in raw:
            out["annotator_scores"] = self._annotators(conv, raw["annotator_scores"], "annotator_scores", n)
        if task_type in ("pairwise", "classification"):
            self._labels(conv, out, values("label") if "label" in raw else None, n)
        if task_type == "pointwise":
            self._scores(conv, out, raw, scale, criterion, n)
        if category is not None:
            out["category"] = [category] * n
        out["num_annotators"] = self._counts(conv, raw, out, n)
        if "metadata" in raw:
            out["metadata"] = [None if _missing(v) else to_json(v if isinstance(v, Mapping) else _meta(v))
                               for v in values("metadata")]
        out["example_id"] = self._ids(conv, raw, out, n)

        skipped = 0
        keep = list(range(n))
        if skip_empty:
            texts = [f for f in _REQUIRED[task_type] if f in out and f in _TEXTS]
            keep = [i for i in keep if all(str(out[f][i]).strip() for f in texts)]
            skipped = n - len(keep)
            if not keep:
                raise InvalidInput(f"all {n} rows have a blank {' or '.join(texts)}", file=path)
        df = frame(({f: out[f][i] for f in out} for i in keep), COLUMNS[task_type])
        df["num_annotators"] = pd.Series([out["num_annotators"][i] for i in keep], dtype=object)
        if task_type == "classification":
            df.attrs["labels"] = labels or tuple(sorted(set(df["label"])))
        if task_type == "pointwise":
            df.attrs["scale"] = (float(df["scale_min"].min()), float(df["scale_max"].max()))
        df.attrs["skipped_rows"] = skipped
        return df

    # -- pieces of read()

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

    @staticmethod
    def _annotators(conv: _Rows, columns: list[np.ndarray], field: str, n: int) -> list[list[Any] | None]:
        """Per-row annotator lists from one list column or several scalar columns."""
        out: list[list[Any] | None] = []
        for i in range(n):
            if len(columns) == 1:
                items = conv.items(columns[0][i], i, field)
            else:
                items = [c[i] for c in columns if not _missing(c[i])] or None
            if items is not None:
                if field == "annotator_labels":
                    items = [conv.label(v, i, field) for v in items]
                else:
                    items = [conv.number(v, i, field) for v in items]
            out.append(items)
        return out

    @staticmethod
    def _labels(conv: _Rows, out: dict[str, list[Any]], column: np.ndarray | None, n: int) -> None:
        if column is not None:
            out["label"] = [conv.label(v, i) for i, v in enumerate(column)]
            return
        annotators = out["annotator_labels"]
        order = conv.labels or tuple(sorted({lab for row in annotators if row for lab in row}))
        pairwise = conv.task_type == "pairwise"
        labels = []
        for i, row in enumerate(annotators):
            if not row:
                raise conv.error("no label and no annotator labels", i, "label")
            labels.append(majority_label(row, tie_label="tie" if pairwise else None, order=order))
        out["label"] = labels

    @staticmethod
    def _scores(conv: _Rows, out: dict[str, list[Any]], raw: dict[str, list[np.ndarray]],
                scale: tuple[float, float] | None, criterion: str | None, n: int) -> None:
        if "score" in raw:
            scores = [conv.number(v, i, "score") for i, v in enumerate(raw["score"][0])]
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
            mins = [conv.number(v, i, "scale_min") for i, v in enumerate(raw["scale_min"][0])]
            maxs = [conv.number(v, i, "scale_max") for i, v in enumerate(raw["scale_max"][0])]
        for i, (s, lo, hi) in enumerate(zip(scores, mins, maxs)):
            if lo > hi:
                raise conv.error(f"scale minimum {lo:g} is above the maximum {hi:g}", i, "scale_min")
            if not lo <= s <= hi:
                raise conv.error(f"score {s:g} is outside the scale [{lo:g}, {hi:g}]", i, "score")
        out["score"], out["scale_min"], out["scale_max"] = scores, mins, maxs
        if criterion is not None or "criterion" not in out:
            out["criterion"] = [criterion or "overall"] * n
        else:
            out["criterion"] = [c if c is not None else "overall" for c in out["criterion"]]

    @staticmethod
    def _counts(conv: _Rows, raw: dict[str, list[np.ndarray]], out: dict[str, list[Any]], n: int) -> list[Any]:
        if "num_annotators" in raw:
            counts = []
            for i, v in enumerate(raw["num_annotators"][0]):
                if _missing(v):
                    counts.append(None)
                    continue
                number = conv.number(v, i, "num_annotators")
                if not number.is_integer() or number < 0:
                    raise conv.error(f"not a count: {v!r}", i, "num_annotators")
                counts.append(int(number))
            return counts
        lists = out.get("annotator_labels") or out.get("annotator_scores")
        return [len(row) if row else None for row in lists] if lists else [None] * n

    @staticmethod
    def _ids(conv: _Rows, raw: dict[str, list[np.ndarray]], out: dict[str, list[Any]], n: int) -> list[str]:
        if "example_id" in raw:
            ids = [conv.text(v, i, "example_id", required=True) for i, v in enumerate(raw["example_id"][0])]
            first: dict[str, int] = {}
            for i, eid in enumerate(ids):
                if eid in first:
                    raise conv.error(f"duplicate id {eid!r} (also in row {conv.table.where(first[eid])})", i,
                                     "example_id", hint="map example_id to a unique column, or leave it unmapped")
                first[eid] = i
            return ids
        if conv.table.keys is not None:
            return list(conv.table.keys)
        if conv.task_type == "pairwise":
            return stable_ids(out["instruction"])
        return stable_ids([f"{a}\x1f{b}" for a, b in zip(out["instruction"], out["response"])])


def _flag(value: bool | str, name: str) -> bool:
    """A yes/no option, also as ``--option NAME=true|false`` text."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text not in ("true", "false", "1", "0", "yes", "no"):
            raise InvalidInput(f"{name} takes true or false, got {value!r}", field=name)
        return text in ("true", "1", "yes")
    return bool(value)


def _meta(value: Any) -> dict[str, Any]:
    """A metadata cell that is not an object: a JSON object string, else wrapped as ``value``."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    return {"value": value}
