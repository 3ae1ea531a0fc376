"""The nesting check that keeps deeply nested JSON lines from pyarrow's reader (a segmentation fault at
100,000 levels, time quadratic in the depth) — per line, exact, and at any piece size."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from registry.adapters.sources import files
from registry.adapters.sources.files import MAX_PYARROW_NESTING, safe_for_pyarrow


def _reference(blob: bytes) -> bool:
    for line in blob.split(b"\n"):
        depth = 0
        for c in line:
            depth += (c in b"[{") - (c in b"]}")
            if abs(depth) > MAX_PYARROW_NESTING:
                return False
    return True


def _bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.uint8)


@pytest.mark.parametrize("piece", [1, 3, 7, 64, 1 << 24])
def test_nesting_check_matches_a_line_by_line_count(monkeypatch, piece):
    monkeypatch.setattr(files, "_CHUNK", piece)
    rng = random.Random(piece)
    seen = set()
    for _ in range(400):
        blob = b"".join(rng.choices([b"[", b"{", b"]", b"}", b"\n", b"a"], weights=[5, 5, 3, 3, 0.05, 1],
                                    k=rng.randint(0, 400)))
        want = _reference(blob)
        assert files._nesting_ok(_bytes(blob)) == want, blob
        seen.add(want)
    assert seen == {True, False}


def test_unbalanced_brackets_in_texts_do_not_add_up_over_lines():
    """A text with an unclosed bracket on every line (code, smileys) is read by pyarrow however many
    lines there are: each line is counted from level 0 (the first cut counted over the whole file and
    sent a million-row file to the slow reader)."""
    line = json.dumps({"id": 1, "t": "f(x[0] {"}).encode() + b"\n"
    assert safe_for_pyarrow(_bytes(line * 10_000))


def test_a_deep_line_is_refused_and_a_shallow_one_kept():
    ok = b'{"a":' * (MAX_PYARROW_NESTING - 1) + b"1" + b"}" * (MAX_PYARROW_NESTING - 1) + b"\n"
    deep = b'{"a":' * (MAX_PYARROW_NESTING + 5) + b"1" + b"}" * (MAX_PYARROW_NESTING + 5) + b"\n"
    assert safe_for_pyarrow(_bytes(ok * 50))
    assert not safe_for_pyarrow(_bytes(ok * 50 + deep + ok))
    many = b'{"a":[' + b"[1]," * 500 + b"1]}\n"  # many brackets, shallow
    assert safe_for_pyarrow(_bytes(many * 20))


def _reference_lines(blob: bytes) -> tuple[int | None, tuple[int, int]]:
    """(non-blank lines or None, (line breaks, line feeds)), counted line by line."""
    breaks = (blob.count(b"\n") + blob.count(b"\r") - blob.count(b"\r\n"), blob.count(b"\n"))
    if b"\x0b" in blob or b"\x0c" in blob or blob.replace(b"\r\n", b"").count(b"\r"):
        return None, breaks
    lines = blob.split(b"\n")[:-1] if blob.endswith(b"\n") else blob.split(b"\n")
    return sum(1 for line in lines if line.strip(b" \t\r")), breaks


@pytest.mark.parametrize("piece", [1, 5, 1 << 20])
def test_one_pass_serves_the_guard_the_line_count_and_the_line_breaks(monkeypatch, piece):
    """The guard, the object-line count and the line breaks of a block are read off one pass over its
    bytes (``_marks``); each agrees with a line-by-line count, at any piece size."""
    monkeypatch.setattr(files, "_CHUNK", piece)
    rng = random.Random(piece)
    alphabet = [b"[", b"{", b"]", b"}", b"\n", b"a", b"\r", b"\r\n", b" ", b"\t", b"\x0b", b"\x0c", b'{"a": 1}\n']
    seen = set()
    for _ in range(300):
        weights = [rng.random() for _ in alphabet]
        blob = b"".join(rng.choices(alphabet, weights=weights, k=rng.randint(0, 200)))
        data = _bytes(blob)
        marks = files._marks(data)
        lines, breaks = _reference_lines(blob)
        assert files._object_lines(data, marks) == lines, blob
        assert files._line_breaks(data, marks) == breaks, blob
        assert files._nesting_ok(data, marks) == _reference(blob), blob
        seen.add(lines is None)
    assert seen == {True, False}


def test_a_key_that_is_not_utf8_goes_to_the_records_reader_and_is_refused_naming_its_line(tmp_path, sqlite_registry):
    """pyarrow's JSON reader checks the values' bytes but not the keys': a key with a byte that is not
    UTF-8 gave a table whose column names raise UnicodeDecodeError (a traceback, found by the fuzz
    tests). Such bytes go to the records reader, which refuses them naming the byte and line."""
    from registry.errors import InvalidInput
    from registry.services.datasets import register_dataset_version

    rows = [b'{"id": "r%d", "q": "question", "r": "answer", "s": 3.0%s}' % (i, b', "\xffsys": "x"' if i == 3 else b"")
            for i in range(6)]
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"\n".join(rows) + b"\n")
    assert files.read_json_lines_table(path) is None
    with pytest.raises(InvalidInput) as caught:
        register_dataset_version(sqlite_registry, name="keys", source="generic", path=path, task_type="pointwise",
                                 options={"mapping": {"example_id": "id", "instruction": "q", "response": "r",
                                                      "score": "s"}, "scale": "1,5"})
    message = str(caught.value)
    assert "UTF-8" in message and "line 4" in message and "data.jsonl" in message
    assert sqlite_registry.store.latest_version("keys") is None
