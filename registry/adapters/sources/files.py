"""Reading source files: the format of a path, and its records or columns.

Formats (:func:`detect_format`, by suffix; ``.gz`` is looked through for the text formats): JSON
(a list of records; an object keyed by id; an object of lists of records, e.g. a key per
category; or JSON lines under a ``.json`` name), JSON lines, CSV, TSV, Parquet, and a folder
written by Hugging Face ``datasets``' ``save_to_disk`` (a ``DatasetDict`` needs ``split`` unless it
has one split).

Two forms of the same file:

* :func:`load_table` — a :class:`SourceTable` of records (JSON, JSON lines, Parquet, ``datasets``)
  or of CSV / TSV cells as text; fields are reached by column name, dotted path with list indices
  (``judgments.0.decision``), ``@row`` or ``@key`` (:meth:`SourceTable.column`);
* :func:`read_parquet_table` and :func:`read_json_lines_table` — the file as Arrow columns, for the
  generic mapper's columnar reader. A JSON-lines file has this form only when pyarrow reads it as
  exactly what :func:`~registry.adapters.sources.base.read_jsonl` reads: one object per non-blank
  line, each column of one JSON type.

Rows are named in messages as people count them (:meth:`SourceTable.where`): 1-based, with the
line (CSV, TSV, JSON lines) or the key (objects) where the file has one.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from registry.adapters.sources.base import check_input, check_input_folder, parse_json, read_jsonl, read_text
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

ROW_PATH = "@row"
"""Pseudo-path of a record's 0-based position in the file, as text (``"0"``, ``"1"``, ...): the
example id ``--id-from-row`` registers, for judge outputs that line up with a dataset by row order."""
KEY_PATH = "@key"
"""Pseudo-path of a record's key in a JSON object: the group (e.g. category) of a dict-of-lists
file, or the id of an object keyed by id."""

ABSENT = object()
"""A path that leads nowhere in a record (missing key, index out of range), unlike a JSON null."""


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


# ----------------------------------------------------------------------------- paths into records


def _index(part: str) -> int | None:
    """A path part as a list index (``0``, ``-1``), else ``None``."""
    return int(part) if part.lstrip("-").isdigit() else None


def get_path(record: Any, parts: list[str]) -> Any:
    """The value at a dotted path (``judgments.0.decision``) or :data:`ABSENT`; at each level an
    object key that is the literal rest of the path (``"a.b"``) wins over splitting it."""
    for at, part in enumerate(parts):
        if isinstance(record, Mapping):
            if at < len(parts) - 1:
                rest = ".".join(parts[at:])
                if rest in record:
                    return record[rest]
            if part not in record:
                return ABSENT
            record = record[part]
        elif isinstance(record, (list, tuple)):
            index = _index(part)
            if index is None or not -len(record) <= index < len(record):
                return ABSENT
            record = record[index]
        else:
            return ABSENT
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
            return f" ({here!r} is {sketch(record)}, not an object or a list)"
    return ""


def sketch(value: Any, depth: int = 0, limit: int = 240) -> str:
    """A short type sketch of a JSON value: ``{"id": str, "judgments": [{"score": int, ...}], ...}``."""
    if isinstance(value, Mapping):
        if depth >= 4:
            return "{...}"
        shown = 6 if depth == 0 else 2
        items = [f"{json.dumps(str(k), ensure_ascii=False)}: {sketch(v, depth + 1)}"
                 for k, v in list(value.items())[:shown]]
        text = "{" + ", ".join(items + (["..."] if len(value) > shown else [])) + "}"
    elif isinstance(value, (list, tuple)):
        text = "[]" if not value else "[...]" if depth >= 4 else f"[{sketch(value[0], depth + 1)}]"
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


# ----------------------------------------------------------------------------- the table of records


@dataclass
class SourceTable:
    """A loaded source table (CSV cells, or JSON / Parquet / datasets records), and how to name a row.

    The generic mapper's columnar reader holds its rows as Arrow columns and uses a table without
    records or cells, for messages only: ``record_at`` reads one record when a message shows it."""

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
    record_at: Callable[[int], Mapping[str, Any]] | None = None
    """Record ``i``, read on demand (a table without ``records`` whose messages show one)."""
    offset: int = 0
    """Position in the file of the first row (a chunk of a larger file names its rows in the file)."""
    _line_cache: list[int] | None = None
    _names: list[str] | None = None

    def __len__(self) -> int:
        if self.records is not None:
            return len(self.records)
        return 0 if self.df is None else len(self.df)

    def where(self, i: int) -> str | int:
        """How a human names row ``i`` (0-based) in messages."""
        key = self.keys or self.groups
        n = self.offset + i + 1
        if key is not None:
            return f"{n} (key {key[i]!r})"
        if self.lines is not None:
            if self._line_cache is None:
                self._line_cache = self.lines() or []
            if i < len(self._line_cache):
                return f"{n} (line {self._line_cache[i]})"
        return n

    def record(self, i: int) -> Mapping[str, Any]:
        """Record ``i`` (an empty one past the end)."""
        if self.records is not None:
            return self.records[i] if i < len(self.records) else {}
        return self.record_at(i) if self.record_at is not None else {}

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
        list indices into records), one per row, :data:`ABSENT` where a record lacks it; ``None``
        when no row has it."""
        if self.records is not None and path in self.names():
            return pd.Series([rec.get(path, ABSENT) for rec in self.records], dtype=object)
        if self.df is not None and path in self.df.columns:
            return self.df[path]
        if path == ROW_PATH:
            return pd.Series([str(self.offset + i) for i in range(len(self))], dtype=object)
        if path == KEY_PATH:
            key = self.keys or self.groups
            if key is None:
                raise InvalidInput(f"{KEY_PATH} is the key of a record in a JSON object (an object keyed by id, "
                                   "or an object of lists), and this file has none", file=self.file,
                                   field=field, hint="map a column or a dotted path instead")
            return pd.Series(key, dtype=object)
        if self.records is not None and "." in path:
            parts = path.split(".")
            values = [get_path(rec, parts) for rec in self.records]
            if any(v is not ABSENT for v in values):
                return pd.Series(values, dtype=object)
        return None

    def absent(self, i: int, field: str, path: str, *, suggest: str = "", hint: str | None = None) -> InvalidInput:
        """The error for ``path`` leading nowhere in record ``i``, showing what the records hold."""
        if self.records is None and self.record_at is None:
            return InvalidInput(f"no column {path!r}{suggest}; the columns are {', '.join(self.names())}",
                                file=self.file, field=field, hint=hint)
        record = self.record(i)
        message = f"no {path!r} in the record{_why_absent(record, path.split('.'))}; " \
                  f"the records look like {sketch(record)}"
        if self.top is not None:
            message += f"; the file is an object of lists {self.top} ({KEY_PATH} is a record's key)"
        return InvalidInput(message + suggest, file=self.file, row=self.where(i), field=field, hint=hint)


def _is_dict_of_lists(data: Mapping[str, Any]) -> bool:
    """An object whose values are lists of records (a key per category, say), at least one record."""
    return bool(data) and all(isinstance(v, list) and all(isinstance(r, Mapping) for r in v) for v in data.values()) \
        and any(data.values())


def _from_records(path: Path, data: Any, lines: list[int] | None = None, offset: int = 0) -> SourceTable:
    keys = groups = top = None
    if isinstance(data, dict):
        if data and all(isinstance(v, Mapping) for v in data.values()):
            keys, data = [str(k) for k in data], list(data.values())
        elif _is_dict_of_lists(data):
            top = sketch(data)
            groups = [str(k) for k, items in data.items() for _ in items]
            data = [rec for items in data.values() for rec in items]
        else:  # a single record (one-line JSON lines file)
            data = [data]
    if not isinstance(data, list):
        raise InvalidInput(f"expected a list of records, an object keyed by id or an object of lists of records, "
                           f"got {type(data).__name__}", file=path)
    table = SourceTable(path, records=data, keys=keys, groups=groups, top=top,
                        lines=(lambda: lines) if lines is not None else None, offset=offset)
    for i, rec in enumerate(data):
        if not isinstance(rec, Mapping):
            raise InvalidInput(f"expected a record (JSON object), got {type(rec).__name__}", file=path,
                               row=table.where(i))
    return table


_LINE_BREAK = re.compile(r"\r\n|\r|\n")
"""Where a JSON-lines file breaks lines (as :func:`~registry.adapters.sources.base.read_jsonl`):
U+2028 and friends may appear raw inside JSON strings."""


def json_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) of each non-blank line of a JSON-lines file."""
    return [(n, line) for n, line in enumerate(_LINE_BREAK.split(text), start=1) if line.strip()]


def _load_json(path: Path) -> SourceTable:
    text = read_text(path)
    try:
        return _from_records(path, parse_json(text, file=path))
    except json.JSONDecodeError as exc:
        if not exc.msg.startswith("Extra data"):  # one malformed document, not JSON lines
            raise InvalidInput(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                               file=path, row=exc.lineno) from exc
    lines = [n for n, _ in json_lines(text)]
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


def _load_csv(path: Path, sep: str) -> SourceTable:
    text = read_text(path)
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError as exc:
        raise InvalidInput("empty file (no header row)", file=path) from exc
    except pd.errors.ParserError as exc:
        raise _csv_error(exc, text, sep, path) from exc
    return SourceTable(path, _csv_cells(df), lines=lambda: _csv_lines(text, sep))


def _csv_cells(df: pd.DataFrame) -> pd.DataFrame:
    """Cells read as text: ``None`` for an empty one, column names as text, rows numbered from 0."""
    df = df.astype(object).where(df.notna(), None)
    df.columns = [str(c) for c in df.columns]
    return df.reset_index(drop=True)


def _csv_error(exc: Exception, text: str, sep: str, path: Path) -> InvalidInput:
    """pandas' parse error as an :class:`InvalidInput` naming the line."""
    # pandas counts records (a blank line is one): "line N" from 1, "row N" (unclosed quote) from 0
    m = re.search(r"(line|row) (\d+)", str(exc))
    line = None
    if m:
        record = int(m.group(2)) - (m.group(1) == "line")
        records = _csv_records(text, sep)
        line = records[record][0] if record < len(records) else record + 1
    kind = "TSV" if sep == "\t" else "CSV"
    detail = re.sub(r"^Error tokenizing data\. C error: | (in line|starting at row) \d+", "", str(exc).strip())
    return InvalidInput(f"malformed {kind}" + (f" at line {line}" if line else "") + f": {detail}",
                        file=path, row=line, hint="check the quoting and the number of fields")


def read_parquet_table(path: Path) -> pa.Table:
    """A Parquet file as Arrow columns (an unreadable file is an :class:`InvalidInput`)."""
    import pyarrow.parquet as pq

    check_input(path)
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InvalidInput(f"cannot read Parquet: {exc}", file=path) from exc


def _load_hf(path: Path, split: str | None) -> SourceTable:
    import datasets

    check_input_folder(path)
    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as exc:  # noqa: BLE001 - malformed metadata fails in many ways (KeyError on `{}` files)
        detail = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc) or type(exc).__name__
        raise InvalidInput(f"cannot load datasets folder: {detail}", file=path,
                           hint="write it again with datasets' save_to_disk") from None
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


def load_table(path: Path, *, split: str | None = None) -> SourceTable:
    """Load any supported file (see :func:`detect_format`) as a table of records or CSV cells."""
    path = Path(path)
    check_input(path, folders=True)
    fmt = detect_format(path)
    if fmt in ("json", "jsonl"):
        return _load_json(path)
    if fmt in ("csv", "tsv"):
        return _load_csv(path, "," if fmt == "csv" else "\t")
    if fmt == "parquet":
        return _from_records(path, read_parquet_table(path).to_pylist())
    return _load_hf(path, split)


# ----------------------------------------------------------------------------- JSON lines as columns

_WHITESPACE = np.array([ord(" "), ord("\t"), ord("\r")], dtype=np.uint8)
_CHUNK = 1 << 20
"""Bytes looked at per step of :func:`_marks` (its buffers are reused: they stay in the CPU's cache)."""


@dataclass(frozen=True)
class _Marks:
    """The structure bytes of some JSON-lines bytes, found in one pass (:func:`_marks`): every bracket
    (``[ ] { }``) and every line break byte (LF, VT, FF, CR), in order; a few a line."""

    at: np.ndarray
    """Their positions (int64)."""
    kind: np.ndarray
    """Their bytes (uint8)."""

    def of(self, *kinds: int) -> np.ndarray:
        """Positions of the marks that are one of ``kinds``."""
        return self.at[np.isin(self.kind, kinds)]


def _marks(data: np.ndarray) -> _Marks:
    """:class:`_Marks` of ``data``: one pass over the bytes, :data:`_CHUNK` at a time. A byte ``b`` is a
    bracket when ``((b | 32) - 123) & 0xFD`` is 0 (``[`` and ``{`` give 0, ``]`` and ``}`` 2; no other
    byte does, in uint8 arithmetic) and a line break byte when ``b - 10`` is at most 3."""
    size = len(data)
    step = max(1, min(_CHUNK, size))
    work, low = np.empty(step, dtype=np.uint8), np.empty(step, dtype=np.uint8)
    hit, also = np.empty(step, dtype=bool), np.empty(step, dtype=bool)
    found = []
    for start in range(0, size, step):
        piece = data[start:start + step]
        n = len(piece)
        w, lo, h, a = work[:n], low[:n], hit[:n], also[:n]
        np.bitwise_or(piece, 32, out=w)
        np.subtract(w, 123, out=w)
        np.bitwise_and(w, 0xFD, out=w)
        np.equal(w, 0, out=h)
        np.subtract(piece, 10, out=lo)
        np.less_equal(lo, 3, out=a)
        np.logical_or(h, a, out=h)
        found.append(np.flatnonzero(h) + start)
    at = np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
    return _Marks(at, data[at])


def _line_breaks(data: np.ndarray, marks: _Marks | None = None) -> tuple[int, int]:
    """(line breaks as :func:`json_lines` counts them, line feeds) in ``data``."""
    marks = _marks(data) if marks is None else marks
    feeds = int(np.count_nonzero(marks.kind == 10))
    cr = marks.of(13)
    after = cr[cr + 1 < len(data)] + 1
    return feeds + len(cr) - int(np.count_nonzero(data[after] == 10)), feeds


def _object_lines(data: np.ndarray, marks: _Marks | None = None) -> int | None:
    """How many non-blank lines the bytes ``data`` of a JSON-lines file have, as
    :func:`~registry.adapters.sources.base.read_jsonl` splits them; ``None`` when a byte breaks a
    line for it but not for pyarrow (a vertical tab, a form feed, a CR not followed by LF)."""
    size = len(data)
    marks = _marks(data) if marks is None else marks
    if np.isin(marks.kind, (11, 12)).any():  # line breaks for read_jsonl (never valid JSON anyway)
        return None
    cr = marks.of(13)
    if len(cr) and (cr[-1] + 1 >= size or not (data[cr + 1] == 10).all()):
        return None
    nl = marks.of(10)
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
    return len(starts) - blank


MAX_PYARROW_NESTING = 64
"""Deepest nesting of brackets a JSON-lines block may have for pyarrow's JSON reader to read it (deeper: the
records reader, whose parser refuses what it cannot follow)."""


def safe_for_pyarrow(data: np.ndarray, marks: _Marks | None = None) -> bool:
    """Whether pyarrow's JSON reader (26.0) may be given the JSON-lines bytes ``data``: every non-blank line
    starts with ``{`` (after spaces and tabs) — a block that starts with ``null`` crashes the process, a
    segmentation fault — and brackets nest at most :data:`MAX_PYARROW_NESTING` deep (its converter takes
    time quadratic in the depth, 15 s at 12,000 levels, and overflows its stack, another segmentation fault,
    at 100,000; brackets inside strings are counted too, which only sends such a file to the records
    reader). ``marks``: :func:`_marks` of ``data``, when already found."""
    size = len(data)
    if not size:
        return True
    marks = _marks(data) if marks is None else marks
    starts = np.concatenate([[0], marks.of(10) + 1])
    starts = starts[starts < size]
    first = data[starts]
    ok = (first == 123) | (first == 10) | (first == 13)  # "{", or a blank line
    for i in starts[~ok]:  # a line that starts with something else: look past its spaces and tabs
        j = int(i)
        while j < size and data[j] in (32, 9):
            j += 1
        if j < size and data[j] not in (123, 10, 13):
            return False
    return _nesting_ok(data, marks)


def _nesting_ok(data: np.ndarray, marks: _Marks | None = None) -> bool:
    """Whether no line of ``data`` nests brackets deeper than :data:`MAX_PYARROW_NESTING` (each line
    counted from level 0: its own object), nor closes more than it opened by as much: the levels are
    followed over the brackets alone (:func:`_marks`, a few a line), each line's from the level its
    newline left."""
    marks = _marks(data) if marks is None else marks
    keep = marks.kind > 13  # the brackets (not the line break bytes)
    brackets = marks.at[keep]
    if len(brackets) <= MAX_PYARROW_NESTING:
        return True  # no line can break the limit
    levels = np.cumsum(np.where(marks.kind[keep] | 32 == 123, 1, -1))
    newlines = marks.of(10)
    if len(newlines):  # each line starts again from 0: subtract the level at its newline
        before = np.searchsorted(brackets, newlines)  # brackets before each newline
        base = np.concatenate([[0], levels])[np.concatenate([[0], before])]  # level where each line starts
        levels -= base[np.searchsorted(newlines, brackets)]
    return not (levels.max() > MAX_PYARROW_NESTING or levels.min() < -MAX_PYARROW_NESTING)


def read_json_lines_table(path: Path) -> pa.Table | None:
    """A JSON-lines file as Arrow columns, or ``None`` when that is not the file
    :func:`~registry.adapters.sources.base.read_jsonl` reads: pyarrow cannot parse it into typed
    columns (malformed JSON, a column whose values change JSON type, ``NaN``), its objects are not one
    per non-blank line (two on one line, one over several, a lone CR), or it holds fewer than two
    (one document may be an object keyed by id). The guard and the line count share one pass over
    the bytes (:func:`_marks`), before pyarrow parses."""
    import pyarrow.json as pa_json

    check_input(path)
    lines: int | None = 0
    if path.stat().st_size:
        data = np.memmap(path, dtype=np.uint8, mode="r")
        try:
            marks = _marks(data)
            if not safe_for_pyarrow(data, marks):
                return None  # a line that is not an object, or nesting pyarrow may crash on: the records reader
            lines = _object_lines(data, marks)
        finally:
            del data
        if lines is None:
            return None  # line breaks pyarrow does not see
    try:
        table = pa_json.read_json(pa.memory_map(str(path)))
    except pa.ArrowInvalid:       # not typed JSON lines: the records reader reads (or reports) it
        return None
    if table.num_rows < 2 or lines != table.num_rows or not names_are_text(table.schema):
        return None
    return table


def names_are_text(schema: pa.Schema) -> bool:
    """Whether every field name of ``schema`` (nested ones too) is UTF-8: pyarrow's JSON reader checks
    the values' bytes, not the keys', and a name that is not UTF-8 raises ``UnicodeDecodeError`` when
    read. ``False`` sends the bytes to the records reader, whose error names the byte and line."""
    def ok(field: pa.Field) -> bool:
        field.name  # noqa: B018 - decodes it
        t = field.type
        if pa.types.is_struct(t):
            return all(ok(t.field(i)) for i in range(t.num_fields))
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            return ok(t.value_field)
        return True

    try:
        return all(ok(schema.field(i)) for i in range(len(schema)))
    except UnicodeDecodeError:
        return False


def json_lines_where(path: Path) -> tuple[Callable[[], list[int]], Callable[[int], Mapping[str, Any]]]:
    """(line numbers of the records, record ``i``) of a JSON-lines file, both read when first asked
    (a columnar reader's messages)."""
    cache: dict[str, list[tuple[int, str]]] = {}

    def lines() -> list[tuple[int, str]]:
        if "lines" not in cache:
            cache["lines"] = json_lines(read_text(path))
        return cache["lines"]

    return (lambda: [n for n, _ in lines()]), (lambda i: json.loads(lines()[i][1]))


def leading_names(path: Path, fmt: str) -> set[str]:
    """Column names a file surely has, read cheaply: the Parquet schema, or the keys of the first
    JSON line (empty when that line is not an object)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return set(pq.read_schema(path).names)
        except (OSError, pa.ArrowException):
            return set()      # unreadable: reported when the file is read
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                try:
                    first = json.loads(line)
                except (ValueError, RecursionError):
                    return set()      # malformed or nested too deeply: reported when the file is read
                return set(first) if isinstance(first, dict) else set()
    return set()


# ----------------------------------------------------------------------------- a large file in chunks
# The registration reads JSON-lines, CSV / TSV and Parquet files a chunk at a time (the generic
# mapper's ``read_chunks``); a chunk's rows are named by their row and line in the whole file.


@dataclass(frozen=True)
class LineBlock:
    """Whole lines of a file: a piece of it that ends with a line feed (or at the end of the file)."""

    data: bytes | memoryview
    first_line: int
    """Line number of its first line, counted as :func:`json_lines` counts (``\\r\\n``, ``\\r``, ``\\n``)."""
    start: int
    """Offset of its first byte in the file."""
    line_feeds: int
    """Line feeds before it in the file (how :func:`read_text` numbers the line of a bad byte)."""
    _found: dict[str, _Marks] = field(default_factory=dict, compare=False, repr=False)

    def marks(self) -> _Marks:
        """:func:`_marks` of its bytes, found once (by the first to ask: the parse of the block, or
        :func:`line_blocks` counting its lines)."""
        if "marks" not in self._found:
            self._found["marks"] = _marks(np.frombuffer(self.data, dtype=np.uint8))
        return self._found["marks"]

    def lines(self, path: Path) -> list[tuple[int, str]]:
        """(line number, text) of each non-blank line, as :func:`json_lines` gives them for the file
        ``path``; bytes that are not UTF-8 are :func:`read_text`'s error, naming their byte and line."""
        data = bytes(self.data)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = self.line_feeds + data[: exc.start].count(b"\n") + 1
            raise InvalidInput(f"not valid UTF-8 (byte {self.start + exc.start}, line {line}: {exc.reason})",
                               file=path, row=line, hint="re-encode the file as UTF-8") from exc
        return [(self.first_line + n - 1, line) for n, line in json_lines(text)]


def line_blocks(path: Path, size: int) -> Iterator[LineBlock]:
    """``path`` in blocks of about ``size`` bytes (at least one whole line each), read in turn. A block
    is a view of the file mapped into memory (no copy); once the consumer asks for the next one, the
    pages of the previous one are let go (``MADV_DONTNEED``: the resident memory stays at about one
    block; a later look at an old block, for a message, reads it again from the file)."""
    import mmap

    check_input(path)
    size = max(1, int(size))
    with open(path, "rb") as fh:
        total = os.fstat(fh.fileno()).st_size
        if not total:
            return
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    page = mmap.PAGESIZE
    start, line, feeds = 0, 1, 0
    try:
        while start < total:
            end = min(total, start + size)
            cut = end if end == total else mm.rfind(b"\n", start, end) + 1
            if cut <= start:  # a line longer than a block: to its end
                at = mm.find(b"\n", end)
                cut = total if at < 0 else at + 1
            view = memoryview(mm)[start:cut]
            block = LineBlock(view, line, start, feeds)
            del view
            yield block
            # its lines, counted on the marks the consumer's parse found (else found here)
            breaks, lf = _line_breaks(np.frombuffer(block.data, dtype=np.uint8), block.marks())
            block._found.clear()  # (a few MB a block)
            del block
            if hasattr(mm, "madvise"):
                first = start - start % page
                mm.madvise(mmap.MADV_DONTNEED, first, cut - first)
            start, line, feeds = cut, line + breaks, feeds + lf
    finally:
        try:
            mm.close()
        except BufferError:  # a block still referenced (a message may read it): closed when let go
            pass


def typed_block(block: LineBlock) -> pa.Table | None:
    """A block of a JSON-lines file as Arrow columns, or ``None`` where :func:`read_json_lines_table`
    would not read it so (pyarrow cannot type it, or its objects are not one per non-blank line)."""
    import pyarrow.json as pa_json

    data, marks = np.frombuffer(block.data, dtype=np.uint8), block.marks()  # one pass over the bytes
    if not safe_for_pyarrow(data, marks):
        return None  # a line that is not an object, or nesting pyarrow may crash on: the records reader
    lines = _object_lines(data, marks)
    if lines is None:
        return None  # line breaks pyarrow does not see
    try:
        table = pa_json.read_json(pa.BufferReader(pa.py_buffer(block.data)))
    except pa.ArrowInvalid:
        return None
    return table if lines == table.num_rows and names_are_text(table.schema) else None


def block_where(path: Path, block: LineBlock, offset: int) -> SourceTable:
    """The table naming the rows of a block of JSON lines (whose first record is record ``offset`` of
    the file) in messages: rows and lines in the file, a record read when a message shows it."""
    cache: dict[str, list[tuple[int, str]]] = {}

    def lines() -> list[tuple[int, str]]:
        if "lines" not in cache:
            cache["lines"] = block.lines(path)
        return cache["lines"]

    return SourceTable(path, lines=lambda: [n for n, _ in lines()], record_at=lambda i: json.loads(lines()[i][1]),
                       offset=offset)


def block_records(path: Path, block: LineBlock, offset: int) -> SourceTable:
    """A block of JSON lines as records (as :func:`load_table` reads the file: each line parsed, an error
    naming its line), its rows named in the file."""
    rows = []
    numbered = block.lines(path)
    for lineno, line in numbered:
        try:
            rows.append(parse_json(line, file=path, row=lineno))
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"malformed JSON line: {exc.msg} (column {exc.colno})", file=path, row=lineno) from exc
    return _from_records(path, rows, lines=[n for n, _ in numbered], offset=offset)


def records_table(path: Path, records: list[Any], offset: int = 0) -> SourceTable:
    """A chunk of a file's records (record ``offset`` of the file first), as :func:`load_table` reads them."""
    return _from_records(path, records, offset=offset)


def _bytes_per_line(path: Path) -> float:
    """Average bytes per line of the first MB of ``path``."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 20)
    return max(1.0, len(head) / max(1, head.count(b"\n")))


def csv_chunks(path: Path, sep: str, size: int) -> Iterator[pd.DataFrame]:
    """CSV / TSV cells as text (as :func:`load_table` reads them), about ``size`` bytes of the file at a
    time: pandas' chunked reader over the file, so the cells are those of the whole-file read; a
    parse error names its line in the file."""
    check_input(path)
    rows = max(1, int(size / _bytes_per_line(path)))
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh, \
                pd.read_csv(fh, sep=sep, dtype=str, keep_default_na=False, na_values=[""], chunksize=rows) as reader:
            for df in reader:
                held = [_csv_cells(df)]
                del df
                yield held.pop()
    except UnicodeDecodeError:
        read_text(path)  # names the byte and line
        raise
    except pd.errors.EmptyDataError as exc:
        raise InvalidInput("empty file (no header row)", file=path) from exc
    except pd.errors.ParserError as exc:
        raise _csv_error(exc, read_text(path), sep, path) from exc


def csv_lines(path: Path, sep: str) -> list[int]:
    """Start line of each data row of a CSV / TSV file (for messages: reads the file whole)."""
    return _csv_lines(read_text(path), sep)


def parquet_chunks(path: Path, size: int) -> Iterator[pa.Table]:
    """A Parquet file as Arrow columns, about ``size`` bytes (uncompressed) at a time."""
    import pyarrow.parquet as pq

    check_input(path)
    try:
        f = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        read_parquet_table(path)  # a file that does not open: the whole-file read's message
        raise InvalidInput(f"cannot read Parquet: {exc}", file=path) from exc
    try:
        with f:
            meta = f.metadata
            per_row = sum(meta.row_group(g).total_byte_size for g in range(meta.num_row_groups)) / max(1, meta.num_rows)
            for batch in f.iter_batches(batch_size=max(1, int(size / max(1.0, per_row)))):
                held = [pa.Table.from_batches([batch])]
                del batch
                yield held.pop()
    except (OSError, pa.ArrowException) as exc:
        raise InvalidInput(f"cannot read Parquet: {exc}", file=path) from exc


__all__ = ["ABSENT", "KEY_PATH", "ROW_PATH", "SUPPORTED_FORMATS", "LineBlock", "SourceTable", "block_records",
           "block_where", "csv_chunks", "csv_lines", "detect_format", "get_path", "json_lines", "json_lines_where",
           "leading_names", "line_blocks", "load_table", "parquet_chunks", "read_json_lines_table",
           "read_parquet_table", "records_table", "sketch", "typed_block"]
