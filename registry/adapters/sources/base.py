"""The contract every source adapter fulfils, and helpers they share.

A *source* is a public collection of human judgments in its own format. Its adapter turns the
source's files into rows of one standardized task type (``pairwise``, ``pointwise`` or
``classification``; fields in ``dataset_specs/``). A source that holds several criteria or
subsets yields several datasets, one per criterion or subset, as FLAMe does.

Adapters return a :class:`pandas.DataFrame` with the standardized columns below; the
registry then casts it to the spec's Arrow schema, validates it with Great Expectations,
orders it canonically and stores it. Adapters raise :class:`registry.errors.InvalidInput`
naming file, row and field for anything they cannot read.

Standardized columns (``None`` where a field does not apply):

* all task types: ``example_id`` (str, stable across versions: the source's id, else
  :func:`content_id`), ``instruction`` (str), ``category`` (str | None), ``num_annotators``
  (int | None), ``metadata`` (str | None, a JSON object of source-specific extras);
* ``pairwise``: ``response_a``, ``response_b`` (str), ``label`` ("A" | "B" | "tie"),
  ``reference`` (str | None), ``annotator_labels`` (list[str] | None);
* ``pointwise``: ``response`` (str), ``score`` (float), ``criterion`` (str), ``scale_min``,
  ``scale_max`` (float), ``reference`` (str | None), ``system_id`` (str | None),
  ``annotator_scores`` (list[float] | None);
* ``classification``: ``response`` (str), ``label`` (str, one of the dataset's ``labels``),
  ``annotator_labels`` (list[str] | None).

Empty judged responses (``response_a``/``response_b``, ``response``) are real data (a model that
output nothing) and are kept as ``""`` (read them with ``require_text(..., allow_empty=True)``);
instructions and ids must be non-blank. Sources that always list the preferred response first
are positioned with :func:`place_pair`; scores are read with :func:`checked_score`.

Aggregation of several annotators (stated once, used by every adapter):
:func:`majority_label` (strict plurality, otherwise ``tie`` for pairwise or the first label in
the dataset's label order for classification) and the mean for scores.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import stat
import zlib
import math
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import xxhash

from registry.domain.types import PAIRWISE_LABELS, TASK_TYPES, TaskType  # noqa: F401 (re-exported)
from registry.errors import InvalidInput


@dataclass(frozen=True)
class SourceInfo:
    """What a source is and where it publicly comes from (shown by ``autorater sources list``)."""

    name: str
    """Adapter name used on the command line, e.g. ``llmbar``."""
    title: str
    """Human title, e.g. ``LLMBar``."""
    origin: str
    """Public URL the files can be fetched from."""
    license: str
    """SPDX id or short licence name of the source data."""
    citation: str
    """Short citation (authors, title, venue, year)."""
    task_types: tuple[TaskType, ...]
    """Task types this adapter produces."""
    description: str = ""
    """One sentence on what the judgments are."""


@dataclass(frozen=True)
class DatasetDef:
    """One dataset an adapter produces from one file (or folder) of the source."""

    name: str
    """Registry dataset name, lowercase with dashes, e.g. ``llmbar-adversarial-neighbor``."""
    task_type: TaskType
    path: str
    """Path of the input file or folder, relative to the data root in the catalog."""
    description: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Keyword options passed to :meth:`SourceAdapter.read` (e.g. ``criterion``)."""
    labels: tuple[str, ...] | None = None
    """Allowed labels for classification datasets (pairwise always uses A/B/tie)."""
    scale: tuple[float, float] | None = None
    """(min, max) score scale for pointwise datasets."""


class SourceAdapter(ABC):
    """Turns one public source's files into standardized rows."""

    info: ClassVar[SourceInfo]

    @abstractmethod
    def catalog(self) -> list[DatasetDef]:
        """Every dataset this source yields from its standard layout (paths relative to the
        data root, as in ``../shared/data``)."""

    @abstractmethod
    def read(self, path: Path, **options: Any) -> pd.DataFrame:
        """Read one dataset from ``path`` into standardized columns (see module docstring)."""

    def dataset_def(self, name: str) -> DatasetDef | None:
        """The catalog entry called ``name``, if any."""
        return next((d for d in self.catalog() if d.name == name), None)


# ----------------------------------------------------------------------------- helpers


def content_id(*parts: object, prefix: str = "h") -> str:
    """A stable example id from content, for sources without ids: ``h-<16 hex>``."""
    h = xxhash.xxh3_64()
    for part in parts:
        h.update(str(part).encode("utf-8"))
        h.update(b"\x1f")
    return f"{prefix}-{h.hexdigest()}"


def stable_ids(keys: Sequence[object], prefix: str = "h") -> list[str]:
    """Content ids for sources without ids: hash of each row's *key* content (e.g. the prompt,
    so that editing a response or label keeps the id and shows as "changed" in a diff);
    repeated keys get ``-2``, ``-3``... in file order."""
    seen: Counter[str] = Counter()
    out = []
    for key in keys:
        base = content_id(key, prefix=prefix)
        seen[base] += 1
        out.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return out


# ----------------------------------------------------------------------------- reading inputs


@dataclass
class InputReport:
    """What reading the inputs of one registration or import found (:func:`reading_inputs`)."""

    max_bytes: int
    """The size limit of one input file or folder."""
    replaced_surrogates: int = 0
    """Lone surrogates (``\\ud800`` escapes without their pair) replaced with U+FFFD."""


_READING: ContextVar[InputReport | None] = ContextVar("autorater_reading_inputs", default=None)


@contextmanager
def reading_inputs(max_mb: float | None = None) -> Iterator[InputReport]:
    """Within: inputs are checked against ``max_mb`` (default: the ``AUTORATER_MAX_INPUT_MB``
    setting) and the text repairs of :func:`repair_text` are counted in the report."""
    report = InputReport(max_bytes=int((_env_max_mb() if max_mb is None else max_mb) * 2**20))
    token = _READING.set(report)
    try:
        yield report
    finally:
        _READING.reset(token)


def _env_max_mb() -> float:
    from registry.config import max_input_mb

    return max_input_mb()


def max_input_bytes() -> int:
    """The size limit of one input: the current :func:`reading_inputs`'s, else the setting's."""
    report = _READING.get()
    return report.max_bytes if report is not None else int(_env_max_mb() * 2**20)


def _mb(size: int) -> str:
    return f"{size / 2**20:,.3g} MB"


_FILE_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"))


def check_input(path: Path | str, *, folders: bool = False, max_bytes: int | None = None) -> os.stat_result:
    """The ``os.stat`` of an input ``path``, checked before it is opened: it must be a regular file
    (a symlink is judged by its target) of at most the input size limit, or a folder where
    ``folders``; a FIFO, a device, a socket, a dangling link or a link loop is an
    :class:`InvalidInput` naming the path (never a read that blocks or does not end)."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InvalidInput("file does not exist", file=path, hint="check --path or --data") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read: {exc.strerror or exc}", file=path) from None
    if stat.S_ISDIR(st.st_mode):
        if folders:
            return st
        raise InvalidInput("is a folder, not a regular file (this input must be a file)", file=path)
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _FILE_KINDS if test(st.st_mode)), "a special file")
        raise InvalidInput(f"is {kind}, not a regular file: only regular files (and folders where a format needs "
                           "one) are read", file=path)
    limit = max_input_bytes() if max_bytes is None else max_bytes
    if st.st_size > limit:
        raise InvalidInput(f"the file is {_mb(st.st_size)}, over the input size limit of {_mb(limit)}", file=path,
                           hint="raise AUTORATER_MAX_INPUT_MB to read it")
    return st


def check_input_folder(path: Path | str, *, depth: int = 3) -> int:
    """Check every entry of an input folder (and of its sub-folders, ``depth`` levels) with
    :func:`check_input`; the total size of its files must be within the limit. Returns the total."""
    path = Path(path)
    check_input(path, folders=True)
    limit, total = max_input_bytes(), 0
    pending = [(path, 0)]
    while pending:
        folder, level = pending.pop()
        for entry in sorted(folder.iterdir()):
            st = check_input(entry, folders=level < depth)
            if stat.S_ISDIR(st.st_mode):
                pending.append((entry, level + 1))
                continue
            total += st.st_size
            if total > limit:
                raise InvalidInput(f"the folder holds over {_mb(limit)}, the input size limit", file=path,
                                   hint="raise AUTORATER_MAX_INPUT_MB to read it")
    return total


_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def repair_text(value: Any) -> Any:
    """``value`` (parsed JSON) with every lone surrogate in its texts and keys replaced with U+FFFD.

    JSON may escape half of a UTF-16 surrogate pair alone (``"a\\ud800"``); Python keeps it as a
    code point no UTF-8 file or Arrow column can hold. The rule, applied where JSON is parsed
    (:func:`parse_json`): such a code point becomes U+FFFD (the replacement character), counted in
    the current :func:`reading_inputs` report (a version's provenance records the count)."""
    if isinstance(value, str):
        fixed, n = _SURROGATE.subn("\ufffd", value)
        if n:
            report = _READING.get()
            if report is not None:
                report.replaced_surrogates += n
        return fixed
    if isinstance(value, dict):
        return {repair_text(k): repair_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [repair_text(v) for v in value]
    return value


def _read_within(fh: Any, limit: int, path: Path) -> bytes:
    """All of a stream (an uncompressing one), refused once it passes ``limit`` bytes."""
    chunks, total = [], 0
    while chunk := fh.read(1 << 24):
        total += len(chunk)
        if total > limit:
            raise InvalidInput(f"the file is over the input size limit of {_mb(limit)} once uncompressed",
                               file=path, hint="raise AUTORATER_MAX_INPUT_MB to read it")
        chunks.append(chunk)
    return b"".join(chunks)


def read_text(path: Path) -> str:
    """Read a UTF-8 text file (``.gz`` transparently) or raise a clear encoding error; the file must
    pass :func:`check_input`, and a ``.gz`` file stay within the size limit once uncompressed."""
    path = Path(path)
    check_input(path)
    limit = max_input_bytes()
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                raw = _read_within(fh, limit, path)
        else:
            raw = path.read_bytes()  # a regular file within the limit (checked above)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise InvalidInput(f"truncated or corrupt gzip file ({exc})", file=path,
                           hint="compress the file again, or give it uncompressed") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read file: {exc}", file=path) from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InvalidInput(
            f"not valid UTF-8 (byte {exc.start}, line {line}: {exc.reason})",
            file=path,
            row=line,
            hint="re-encode the file as UTF-8",
        ) from exc


def parse_json(text: str, *, file: Path, row: int | None = None) -> Any:
    """``json.loads`` with the registry's errors: JSON nested deeper than the parser can follow is
    refused (never a ``RecursionError``); malformed JSON raises ``json.JSONDecodeError`` for the caller
    to name the line; an escaped lone surrogate becomes U+FFFD (:func:`repair_text`)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise InvalidInput("JSON nested too deeply to read (thousands of levels)", file=file, row=row) from None
    return repair_text(value) if _SURROGATE_ESCAPE.search(text) else value


def read_json(path: Path) -> Any:
    """Parse a JSON file; a syntax error names the line and column."""
    text = read_text(path)
    try:
        return parse_json(text, file=path)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                           file=path, row=exc.lineno) from exc


def read_jsonl(path: Path) -> list[Any]:
    """Parse a JSON-lines file (also when it is named ``.json``); errors name the line."""
    rows = []
    # split on \n, \r\n and \r only: U+2028 and friends may appear raw inside JSON strings
    for lineno, line in enumerate(re.split(r"\r\n|\r|\n", read_text(path)), start=1):
        if not line.strip():
            continue
        try:
            rows.append(parse_json(line, file=path, row=lineno))
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"malformed JSON line: {exc.msg} (column {exc.colno})",
                               file=path, row=lineno) from exc
    return rows


def read_json_or_jsonl(path: Path) -> Any:
    """Parse a file that is either one JSON document or JSON lines, whatever its suffix."""
    text = read_text(path)
    try:
        return parse_json(text, file=path)
    except json.JSONDecodeError:
        return read_jsonl(path)


def require(record: Mapping[str, Any], key: str, *, file: Path, row: int | str) -> Any:
    """``record[key]``, or an error naming file, row and the missing field."""
    try:
        return record[key]
    except (KeyError, TypeError, IndexError):
        raise InvalidInput("missing field", file=file, row=row, field=key) from None


def map_label(raw: Any, mapping: Mapping[Any, str], *, file: Path, row: int | str, field: str) -> str:
    """``mapping[raw]``, or an ``InvalidInput`` naming the field and the accepted values.

    A boolean never matches an integer key (``True`` is not the label ``1``)."""
    expected = ", ".join(repr(k) for k in mapping)
    if isinstance(raw, bool) and any(isinstance(k, int) and not isinstance(k, bool) for k in mapping):
        raise InvalidInput(f"boolean {raw!r} is not a label; expected one of {expected}",
                           file=file, row=row, field=field)
    try:
        return mapping[raw]
    except (KeyError, TypeError):
        raise InvalidInput(f"unknown label {raw!r}; expected one of {expected}",
                           file=file, row=row, field=field) from None


def require_text(record: Mapping[str, Any], key: str, *, file: Path, row: int | str,
                 allow_empty: bool = False) -> str:
    """``record[key]`` as a non-empty string, or an ``InvalidInput`` naming file, row and field.

    With ``allow_empty`` (for judged responses, which may be empty: a model that output nothing)
    ``""`` and whitespace are accepted as they are; ``None`` and non-strings are still rejected."""
    value = require(record, key, file=file, row=row)
    if not isinstance(value, str):
        what = "a string" if allow_empty else "a non-empty string"
        raise InvalidInput(f"expected {what}, got {value!r:.40}", file=file, row=row, field=key)
    if not allow_empty and not value.strip():
        raise InvalidInput(f"expected a non-empty string, got {value!r:.40}", file=file, row=row, field=key)
    return value


def checked_score(value: Any, scale: tuple[float, float], *, file: Path, row: int | str, field: str) -> float:
    """``value`` as a float inside ``scale``, or an error naming file, row and field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(f"score {value!r} is not a number", file=file, row=row, field=field)
    if not scale[0] <= value <= scale[1]:
        raise InvalidInput(f"score {value!r} outside the scale {scale[0]:g}..{scale[1]:g}",
                           file=file, row=row, field=field)
    return float(value)


def place_pair(key: str, preferred: str, other: str) -> tuple[str, str, str]:
    """``(response_a, response_b, label)`` for a pair whose source lists the preferred answer
    first: the preferred one goes second (label ``B``) when the xxh3-64 hash of ``key`` (the
    example id) is odd, else first (label ``A``). Deterministic, about half of each."""
    if xxhash.xxh3_64_intdigest(key.encode("utf-8")) & 1:
        return other, preferred, "B"
    return preferred, other, "A"


def majority_label(labels: Sequence[str], *, tie_label: str | None = "tie",
                   order: Sequence[str] = ()) -> str:
    """The most frequent label. Without a strict plurality, ``tie_label`` (pairwise), else the
    first tied label in ``order`` (classification)."""
    counts = Counter(labels)
    if not counts:
        raise ValueError("no labels")
    (top, n), *rest = counts.most_common()
    if rest and rest[0][1] == n:
        if tie_label is not None:
            return tie_label
        tied = {lab for lab, c in counts.items() if c == n}
        return next((lab for lab in order if lab in tied), sorted(tied)[0])
    return top


def to_json(extra: Mapping[str, Any] | None) -> str | None:
    """Serialize source-specific extras for the ``metadata`` column (sorted keys)."""
    if not extra:
        return None
    return json.dumps(extra, sort_keys=True, ensure_ascii=False, default=str)


def frame(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    """Build a DataFrame with exactly ``columns`` (missing ones become ``None``)."""
    df = pd.DataFrame.from_records(list(rows))
    for col in columns:
        if col not in df.columns:
            df[col] = None
    return df[list(columns)]


COMMON_COLUMNS = ("example_id", "instruction", "category", "num_annotators", "metadata")
COLUMNS: dict[TaskType, tuple[str, ...]] = {
    "pairwise": COMMON_COLUMNS + ("response_a", "response_b", "label", "reference", "annotator_labels"),
    "pointwise": COMMON_COLUMNS + ("response", "score", "criterion", "scale_min", "scale_max",
                                   "reference", "system_id", "annotator_scores"),
    "classification": COMMON_COLUMNS + ("response", "label", "annotator_labels"),
}


def iter_records(data: Any, *, file: Path) -> Iterator[tuple[int | str, Mapping[str, Any]]]:
    """(row key, record) pairs from a list of records or a dict keyed by id."""
    if isinstance(data, list):
        yield from enumerate(data)
    elif isinstance(data, dict):
        yield from data.items()
    else:
        raise InvalidInput(f"expected a list or an object of records, got {type(data).__name__}", file=file)
