"""Judgments: what an evaluator says about one example, and the per-example prediction table
every evaluation run stores (as content-addressed Parquet).

Pairwise examples may be judged in two *orders*: ``order = 0`` shows the responses as given
(response_a first), ``order = 1`` shows them swapped. A verdict is always recorded in the
*original* orientation: ``"A"`` means the dataset's ``response_a`` is preferred, whatever order
it was shown in. ``None`` means the output could not be parsed (a parse failure).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from registry.domain.arrays import one_array

if TYPE_CHECKING:
    import numpy as np

ORDER_AS_GIVEN = 0
ORDER_SWAPPED = 1

#: Integer codes used by the vectorized metrics.
VERDICT_CODES: dict[str, int] = {"A": 0, "B": 1, "tie": 2}
FAIL = -1
"""Code of a parse failure (no verdict)."""

#: Columns of the stored prediction table (one row per example × order × sample).
PREDICTION_COLUMNS: dict[str, str] = {
    "example_id": "string",
    "order": "int8",
    "sample": "int16",
    "verdict": "string",      # pairwise "A" | "B" | "tie" | null (parse failure); classification label | null
    "score": "float64",       # pointwise score, classification score/probability, pairwise score margin
    "prob_a": "float64",      # pairwise P(response_a preferred) from logprobs, when available
    "parsed": "bool",         # False for a parse failure
    "raw": "string",          # raw model output (generative judges), else null
    "prompt_tokens": "int32",
    "completion_tokens": "int32",
    "seconds": "float64",     # wall time the judgment took when it was computed (cache keeps it)
}


@dataclass(frozen=True)
class Verdict:
    """One judgment of one example: what an evaluator plugin returns and an import reads, before it
    becomes a row of the prediction table (:data:`PREDICTION_COLUMNS`, with the example id, order
    and sample beside it).

    An evaluator judges an example *as shown* (the engine swaps the responses for order 1 and maps
    the verdict back with :func:`map_back`); an import holds what its file says and maps it the
    same way. Pairwise: ``label`` "A" / "B" / "tie" / ``None`` (parse failure), ``prob_a`` =
    P(response A is better) when the judge has one, ``score`` = a margin. Pointwise: ``score``.
    Classification: ``label`` and optionally ``score`` = P(labels[0]).
    """

    label: str | None = None
    """The verdict (pairwise A / B / tie, a classification label); ``None``: none parsed."""
    score: float | None = None
    """Pointwise rating, classification probability or pairwise margin."""
    prob_a: float | None = None
    """Pairwise P(response A is better), from the judge's log-probabilities."""
    parsed: bool = True
    """``False`` for a parse failure."""
    raw: str | None = None
    """The judge's raw output, when it has one."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    """Wall time attributed to this example (batch time divided evenly when batched)."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Judge-specific details (not stored in the prediction table)."""

    def swapped(self) -> Verdict:
        """The same judgment seen from the other order: A ↔ B and ``prob_a`` → 1 − ``prob_a``; a tie,
        a parse failure, the score and the raw output stay as they are."""
        return replace(self, label=map_back(self.label, ORDER_SWAPPED),
                       prob_a=None if self.prob_a is None else 1.0 - self.prob_a)


def encode_verdicts(verdicts) -> np.ndarray:
    """Verdict strings (or None) → int8 codes (A=0, B=1, tie=2, failure=-1)."""
    import numpy as np  # here, not at the top: the store reads cached verdicts on the CLI's light path

    return np.array([VERDICT_CODES.get(v, FAIL) if v is not None else FAIL for v in verdicts], dtype=np.int8)


#: Fields a judge sees, per task type: the judgment cache is keyed by a hash of these (not the
#: label), so editing a label re-scores without re-judging, and editing an input re-judges.
INPUT_FIELDS: dict[str, tuple[str, ...]] = {
    "pairwise": ("instruction", "response_a", "response_b", "reference"),
    "pointwise": ("instruction", "response", "reference", "criterion"),
    "classification": ("instruction", "response"),
}


def example_input_hashes(columns: dict[str, list], task_type: str,
                         fields: tuple[str, ...] | None = None) -> list[str]:
    """xxh3-128 hex of each example's judge-visible inputs (``columns`` maps field → values);
    ``fields`` narrows them for an evaluator that reads fewer (default :data:`INPUT_FIELDS`)."""
    import xxhash

    fields = [columns.get(f) for f in (fields or INPUT_FIELDS[task_type])]
    n = len(next(c for c in fields if c is not None))
    out = []
    for i in range(n):
        h = xxhash.xxh3_128()
        for col in fields:
            v = None if col is None else col[i]
            h.update(b"\x00" if v is None else b"\x01" + str(v).encode("utf-8"))
            h.update(b"\x1f")
        out.append(h.hexdigest())
    return out


def text_column(column, n: int | None = None):
    """An Arrow column as UTF-8 text the way ``str(value)`` writes each value (strings as they are,
    other types through Python's ``str``), nulls kept; ``None`` (no such column) stays ``None``."""
    import pyarrow as pa

    if column is None:
        return None
    column = one_array(column)  # one chunk (a chunk's table, `take`): no copy of the texts
    if pa.types.is_large_string(column.type) or pa.types.is_string(column.type):
        return column
    return pa.array([None if v is None else str(v) for v in column.to_pylist()], type=pa.string())


def _one_text_type(columns: list):
    """Arrow text columns (None: absent) as one type: ``string``, or ``large_string`` when any is."""
    import pyarrow as pa

    kind = pa.large_string() if any(c is not None and pa.types.is_large_string(c.type) for c in columns) \
        else pa.string()
    return kind, [c if c is None or c.type == kind else c.cast(kind) for c in columns]


def xxh_each(binary, digest):
    """``digest(bytes)`` of each value of an Arrow string/binary array (no null), without copying
    the values out one by one (memoryview slices of the data buffer)."""
    import numpy as np
    import pyarrow as pa

    if isinstance(binary, pa.ChunkedArray):
        binary = binary.combine_chunks()
    n = len(binary)
    if n == 0:
        return []
    large = pa.types.is_large_string(binary.type) or pa.types.is_large_binary(binary.type)
    _, offsets, data = binary.buffers()[:3]
    off = np.frombuffer(offsets, dtype=np.int64 if large else np.int32, count=binary.offset + n + 1)[binary.offset:]
    mv = memoryview(data) if data is not None else memoryview(b"")
    bounds = off.tolist()
    return [digest(mv[bounds[i]:bounds[i + 1]]) for i in range(n)]


def example_input_hash_array(columns, task_type: str, fields: tuple[str, ...] | None = None):
    """:func:`example_input_hashes` of a batch of rows at once, as an Arrow ``binary(16)`` array of
    the xxh3-128 digests (``bytes.fromhex`` of the hex ones). ``columns`` maps field → Arrow column
    (a table or record batch works: ``columns.column(name)`` where the field exists)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import xxhash

    names = columns.schema.names if hasattr(columns, "schema") else list(columns)
    n = columns.num_rows if hasattr(columns, "num_rows") else len(next(iter(columns.values())))
    if n == 0:
        return pa.array([], type=pa.binary(16))
    cols = [text_column((columns.column(f) if hasattr(columns, "column") else columns[f]) if f in names else None)
            for f in fields or INPUT_FIELDS[task_type]]
    kind, cols = _one_text_type(cols)
    # each field as its bytes ("\x00" missing, "\x01" + UTF-8 text) then "\x1f", in ONE join (one copy
    # of the texts): a column without nulls is joined as it is, its "\x01" prefix a literal part; a column
    # with some nulls gets a one-byte column of prefixes before it ("\x01" or "\x00") and is joined
    # with its nulls as "" ("\x00" + "" is the missing field's bytes); constants merged
    parts: list = []
    literal = ""
    for col in cols:
        if col is None or col.null_count == len(col):
            literal += "\x00\x1f"
            continue
        if col.null_count:
            if literal:
                parts.append(pa.scalar(literal, kind))
            literal = ""
            parts.append(pc.if_else(pc.is_valid(col), pa.scalar("\x01", kind), pa.scalar("\x00", kind)))
        else:
            literal += "\x01"
        if literal:
            parts.append(pa.scalar(literal, kind))
        parts.append(col)
        literal = "\x1f"
    parts.append(pa.scalar(literal, kind))
    if len(parts) == 1:  # every field missing: one value for all
        joined = pa.array([literal] * n, type=kind)
    else:
        joined = pc.binary_join_element_wise(*parts, pa.scalar("", kind), null_handling="replace",
                                             null_replacement="")
    return digest_array(xxh_each(joined, xxhash.xxh3_128_digest), n)


def digest_array(digests: list, n: int):
    """16-byte digests (a list of ``bytes``) as an Arrow ``binary(16)`` array, from one buffer."""
    import pyarrow as pa

    return pa.Array.from_buffers(pa.binary(16), n, [None, pa.py_buffer(b"".join(digests))])


def map_back(verdict: str | None, order: int) -> str | None:
    """A pairwise verdict on the shown order → the original orientation."""
    if order == ORDER_SWAPPED and verdict in ("A", "B"):
        return "B" if verdict == "A" else "A"
    return verdict
