"""``row_hashes`` (built column-wise with Arrow) equals the documented per-row encoding written as
a plain loop: each field as ``<byte length>:<bytes>`` (``-:`` for null), text as UTF-8, numbers
and booleans as little-endian bytes, lists as their JSON text, hashed with XXH3-64. These values
are stored content hashes, so any change of the bytes must fail here."""

import json
import random
import struct

import numpy as np
import pyarrow as pa
import pytest
import xxhash

from registry.adapters.sources import get_adapter
from registry.domain import versioning
from registry.domain.versioning import row_hashes

_PACK = {pa.int8(): "<b", pa.int16(): "<h", pa.int32(): "<i", pa.int64(): "<q", pa.uint8(): "<B",
         pa.uint32(): "<I", pa.float32(): "<f", pa.float64(): "<d"}


def _field(value, t: pa.DataType) -> bytes | None:
    if value is None:
        return None
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return value.encode("utf-8")
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return value
    if pa.types.is_boolean(t):
        return struct.pack("<b", int(value))
    if t in _PACK:
        return struct.pack(_PACK[t], value)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return json.dumps(value).encode()
    return json.dumps(value, sort_keys=True, default=str).encode()


def _loop_hashes(table: pa.Table) -> np.ndarray:
    types = [f.type for f in table.schema]
    out = []
    for row in zip(*(table.column(i).to_pylist() for i in range(table.num_columns)), strict=True):
        encoded = b""
        for value, t in zip(row, types, strict=True):
            data = _field(value, t)
            encoded += b"-:" if data is None else b"%d:" % len(data) + data
        out.append(xxhash.xxh3_64_intdigest(encoded))
    return np.array(out, dtype=np.uint64)


def _real_table(data_root) -> pa.Table:
    """PandaLM's test set through its adapter (texts, labels, annotator lists, JSON metadata), with
    number, boolean and list columns of other types holding nulls, -0.0, NaN and long texts."""
    adapter = get_adapter("pandalm")
    (d,) = adapter.catalog()
    df = adapter.read(data_root / d.path)
    table = pa.Table.from_pandas(df, preserve_index=False)
    n = table.num_rows
    rng = random.Random(7)
    labels = table.column("annotator_labels").to_pylist()
    table = table.set_column(table.column_names.index("annotator_labels"), "annotator_labels",
                             pa.array([None if i % 5 == 0 else v for i, v in enumerate(labels)], pa.list_(pa.string())))
    texts = table.column("response_a").to_pylist()
    texts[3] = "é" * 70_000  # a long value (140,000 bytes)
    texts[4] = None
    texts[5] = ""
    table = table.set_column(table.column_names.index("response_a"), "response_a", pa.array(texts, pa.string()))
    extra = {
        "count": pa.array([None if i % 7 == 0 else rng.randrange(-10**6, 10**6) for i in range(n)], pa.int32()),
        "big": pa.array([rng.randrange(-2**62, 2**62) for _ in range(n)], pa.int64()),
        "score": pa.array([[0.0, -0.0, float("nan"), None, 1.5][i % 5] if i % 2 else rng.random() for i in range(n)],
                          pa.float64()),
        "half": pa.array([None if i % 3 == 0 else rng.random() for i in range(n)], pa.float32()),
        "flag": pa.array([None if i % 4 == 0 else bool(i % 3) for i in range(n)], pa.bool_()),
        "weights": pa.array([None if i % 6 == 0 else [rng.random(), -0.0, float(i)][: i % 4] for i in range(n)],
                            pa.list_(pa.float64())),
        "ranks": pa.array([[i, -i, None][: i % 3] for i in range(n)], pa.list_(pa.int64())),
        "nested": pa.array([{"k": i, "v": str(i)} if i % 2 else None for i in range(n)],
                           pa.struct([("k", pa.int64()), ("v", pa.string())])),
    }
    for name, column in extra.items():
        table = table.append_column(name, column)
    return table


def test_row_hashes_equal_the_documented_encoding_on_real_data(data_root):
    table = _real_table(data_root)
    want = _loop_hashes(table)
    assert (row_hashes(table) == want).all()
    # the same rows in many pieces, and a table of a few slices
    pieces = pa.concat_tables([table.slice(i, 37) for i in range(0, table.num_rows, 37)])
    assert (row_hashes(pieces) == want).all()
    assert (row_hashes(table.slice(3, 5)) == want[3:8]).all()


def test_row_hashes_of_values_longer_than_the_prefix_table(data_root, monkeypatch):
    """Lengths past the looked-up prefixes are formatted; the bytes are the same."""
    table = _real_table(data_root).slice(0, 120)
    want = _loop_hashes(table)
    monkeypatch.setattr(versioning, "_PREFIX_TABLE_MAX", 50)
    assert (row_hashes(table) == want).all()


@pytest.mark.parametrize("rows", [1, 2, 1025])
def test_row_hashes_small_tables_and_all_null_columns(rows):
    table = pa.table({"example_id": [f"r{i}" for i in range(rows)],
                      "empty": pa.array([None] * rows, pa.string()),
                      "votes": pa.array([None] * rows, pa.list_(pa.string())),
                      "n": pa.array([None] * rows, pa.int32())})
    assert (row_hashes(table) == _loop_hashes(table)).all()
    assert row_hashes(table)[0] == xxhash.xxh3_64_intdigest(b"2:r0-:-:-:")
