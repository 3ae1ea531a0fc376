"""The generic adapter's columnar reader (JSON lines / Parquet read with pyarrow) gives exactly the
frame and the errors of the records reader; which reader reads a file is decided by its format,
mapping and column types, before any value is converted."""

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from registry.adapters.sources import generic as generic_module
from registry.adapters.sources import get_adapter
from registry.errors import InvalidInput

PANDALM = "WeOpenML__PandaLM/data/testset-v1.json"
LLMBAR = "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/dataset.json"


@pytest.fixture
def generic():
    return get_adapter("generic")


def _both(generic, monkeypatch, path, *, fast_expected=True, **kw):
    """(fast frame, row-by-row frame); checks whether the fast path was taken."""
    calls = []
    real = generic_module.load_table
    monkeypatch.setattr(generic_module, "load_table", lambda *a, **k: calls.append(1) or real(*a, **k))
    fast = generic.read(path, **kw)
    assert (not calls) == fast_expected, "fast path taken" if calls == [] else "fast path not taken"
    monkeypatch.setattr(generic_module, "FAST_PATH", False)
    try:
        slow = generic.read(path, **kw)
    finally:
        monkeypatch.setattr(generic_module, "FAST_PATH", True)
    return fast, slow


def _same(generic, monkeypatch, path, *, fast_expected=True, **kw):
    fast, slow = _both(generic, monkeypatch, path, fast_expected=fast_expected, **kw)
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    assert list(fast.dtypes) == list(slow.dtypes)
    assert fast.attrs == slow.attrs
    for col in fast.columns:  # same Python values, None where the reader gives None
        assert [repr(v) for v in fast[col].head(50)] == [repr(v) for v in slow[col].head(50)], col
    return fast


def _errors_same(generic, monkeypatch, path, *, fast_expected=None, **kw):
    calls = []
    real = generic_module.load_table
    monkeypatch.setattr(generic_module, "load_table", lambda *a, **k: calls.append(1) or real(*a, **k))
    with pytest.raises(InvalidInput) as fast:
        generic.read(path, **kw)
    if fast_expected is not None:  # the error comes from the reader chosen up front, not from a retry
        assert (not calls) == fast_expected
    monkeypatch.setattr(generic_module, "load_table", real)
    monkeypatch.setattr(generic_module, "FAST_PATH", False)
    with pytest.raises(InvalidInput) as slow:
        generic.read(path, **kw)
    monkeypatch.setattr(generic_module, "FAST_PATH", True)
    assert str(fast.value) == str(slow.value)
    return str(fast.value)


def _write_jsonl(path, rows, tail="\n"):
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + tail, encoding="utf-8")
    return path


def _real_pairs(data_root):
    """PandaLM rows in their own format (votes 0/1/2, some blank texts, six boolean responses)
    plus LLMBar Natural rows (label 1/2)."""
    rows = []
    for r in json.loads((data_root / PANDALM).read_text()):
        rows.append({"id": f"p{r['idx']}", "prompt": r["instruction"], "a": r["response1"], "b": r["response2"],
                     "winner": r["annotator1"], "votes": [r["annotator1"], r["annotator2"], r["annotator3"]],
                     "pair": r["cmp_key"]})
    for i, r in enumerate(json.loads((data_root / LLMBAR).read_text())):
        rows.append({"id": f"n{i}", "prompt": r["input"], "a": r["output_1"], "b": r["output_2"],
                     "winner": r["label"], "pair": None})
    return rows


MAP = {"example_id": "id", "instruction": "prompt", "response_a": "a", "response_b": "b", "label": "winner",
       "annotator_labels": "votes", "category": "pair"}
LABELS = {"0": "tie", "1": "A", "2": "B"}


def test_real_pairs_jsonl_and_parquet(generic, monkeypatch, tmp_path, data_root):
    rows = [r for r in _real_pairs(data_root) if all(isinstance(r[k], str) for k in ("a", "b"))]
    jl = _write_jsonl(tmp_path / "pairs.jsonl", rows)
    df = _same(generic, monkeypatch, jl, task_type="pairwise", mapping=MAP, label_map=LABELS)
    assert len(df) == len(rows) and len(df["annotator_labels"][0]) == 3 and df["annotator_labels"].iloc[-1] is None
    assert df["num_annotators"].iloc[0] == 3 and df["num_annotators"].iloc[-1] is None
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "pairs.parquet")
    _same(generic, monkeypatch, tmp_path / "pairs.parquet", task_type="pairwise", mapping=MAP, label_map=LABELS)
    # no id column: content ids; a category option; blank lines at the end and in between
    text = (tmp_path / "pairs.jsonl").read_text()
    lines = text.splitlines()
    (tmp_path / "gaps.jsonl").write_text("\n".join(lines[:5]) + "\n\n  \n" + "\n".join(lines[5:]) + "\n\n")
    no_id = {k: v for k, v in MAP.items() if k != "example_id"}
    _same(generic, monkeypatch, tmp_path / "gaps.jsonl", task_type="pairwise", mapping=no_id, label_map=LABELS,
          category="chat")


def test_skip_empty_on_real_rows(generic, monkeypatch, tmp_path, data_root):
    rows = [r for r in _real_pairs(data_root) if all(isinstance(r[k], str) for k in ("a", "b"))]
    rows[3]["a"] = " \u3000\n"  # Unicode whitespace only: blank for str.strip()
    rows[4]["b"] = "\u00e9"  # not blank, no ASCII letter
    path = _write_jsonl(tmp_path / "pairs.jsonl", rows)
    df = _same(generic, monkeypatch, path, task_type="pairwise", mapping=MAP, label_map=LABELS, skip_empty=True)
    assert df.attrs["skipped_rows"] > 40
    assert "p3" not in set(df["example_id"]) and "p4" in set(df["example_id"])


def test_classification_and_pointwise(generic, monkeypatch, tmp_path):
    rows = [{"doc": f"d{i}", "claim": f"c{i}", "ok": i % 3 == 0, "ref": None if i % 2 else f"r{i}"} for i in range(30)]
    path = _write_jsonl(tmp_path / "claims.jsonl", rows)
    mapping = {"instruction": "doc", "response": "claim", "label": "ok"}
    lm = {"true": "consistent", "false": "inconsistent"}
    _same(generic, monkeypatch, path, task_type="classification", mapping=mapping, label_map=lm)
    _same(generic, monkeypatch, path, task_type="classification", mapping=mapping, label_map=lm,
          labels=("inconsistent", "consistent"))
    scores = [{"src": f"s{i // 3}", "out": f"o{i}", "score": (i % 5) + 1, "lo": 1, "hi": 5,
               "ratings": [(i % 5) + 1, 3.5] if i % 4 else None, "crit": None if i % 2 else "coherence",
               "sys": f"m{i % 3}", "n": 2 if i % 4 else None} for i in range(40)]
    path = _write_jsonl(tmp_path / "scores.jsonl", scores)
    base = {"instruction": "src", "response": "out", "system_id": "sys", "annotator_scores": "ratings"}
    _same(generic, monkeypatch, path, task_type="pointwise", mapping=base, scale=(1, 5))
    _same(generic, monkeypatch, path, task_type="pointwise", mapping={**base, "scale_min": "lo", "scale_max": "hi",
                                                                     "criterion": "crit", "num_annotators": "n"})
    _same(generic, monkeypatch, path, task_type="pointwise", mapping={**base, "criterion": "crit"}, scale=(0, 10),
          criterion="fluency")


@pytest.mark.parametrize("case", ["two-on-a-line", "over-two-lines", "null-required", "duplicate-id",
                                  "label-not-mapped", "mixed-types", "one-row", "blank-all"])
def test_errors_and_odd_files(generic, monkeypatch, tmp_path, case):
    rows = [{"id": i, "q": f"q{i}", "a": "x", "b": "y", "w": 1 + i % 2} for i in range(6)]
    path = tmp_path / "pairs.jsonl"
    mapping = {"example_id": "id", "instruction": "q", "response_a": "a", "response_b": "b", "label": "w"}
    kw = dict(task_type="pairwise", mapping=mapping, label_map={"1": "A", "2": "B"})
    if case == "two-on-a-line":
        path.write_text(json.dumps(rows[0]) + " " + json.dumps(rows[1]) + "\n" + json.dumps(rows[2]) + "\n\n")
    elif case == "over-two-lines":
        path.write_text(json.dumps(rows[0]) + "\n" + json.dumps(rows[1], indent=1) + "\n")
    elif case == "null-required":
        rows[4]["b"] = None
        _write_jsonl(path, rows)
    elif case == "duplicate-id":
        rows[5]["id"] = 0
        _write_jsonl(path, rows)
    elif case == "label-not-mapped":
        rows[2]["w"] = 3
        _write_jsonl(path, rows)
    elif case == "mixed-types":  # not an error: 1 and "1" are the same label, read row by row
        rows[2]["w"] = "1"
        _write_jsonl(path, rows)
        _same(generic, monkeypatch, path, fast_expected=False, **kw)
        return
    elif case == "one-row":
        path.write_text(json.dumps({"k1": rows[0], "k2": rows[1]}))  # an object keyed by id, one line
        fast, slow = _both(generic, monkeypatch, path, fast_expected=False, task_type="pairwise",
                           mapping={k: v for k, v in mapping.items() if k != "example_id"},
                           label_map={"1": "A", "2": "B"})
        pd.testing.assert_frame_equal(fast, slow)
        assert list(fast["example_id"]) == ["k1", "k2"]
        return
    elif case == "blank-all":
        for r in rows:
            r["a"] = "  "
        _write_jsonl(path, rows)
        kw["skip_empty"] = True
    # a file pyarrow reads as one object per line is read, errors and all, by the columnar reader
    columnar = case not in ("two-on-a-line", "over-two-lines")
    message = _errors_same(generic, monkeypatch, path, fast_expected=columnar, **kw)
    assert str(path) in message


def test_not_taken_for_row_by_row_features(generic, monkeypatch, tmp_path):
    rows = [{"q": f"q{i}", "a": "x", "b": "y", "votes": ["A", "B", "A"], "meta": {"k": i}} for i in range(5)]
    path = _write_jsonl(tmp_path / "pairs.jsonl", rows)
    mapping = {"instruction": "q", "response_a": "a", "response_b": "b", "annotator_labels": "votes"}
    # label from the annotators' majority, metadata objects: row by row
    _same(generic, monkeypatch, path, fast_expected=False, task_type="pairwise", mapping=mapping)
    _same(generic, monkeypatch, path, fast_expected=False, task_type="pairwise",
          mapping={**mapping, "label": "a", "metadata": "meta"}, label_map={"x": "A", "A": "A", "B": "B"})


def test_line_endings(generic, monkeypatch, tmp_path):
    rows = [{"q": f"q{i}", "a": "x", "b": "y", "w": "A"} for i in range(4)]
    mapping = {"instruction": "q", "response_a": "a", "response_b": "b", "label": "w"}
    crlf = tmp_path / "crlf.jsonl"
    crlf.write_bytes(b"\r\n".join(json.dumps(r).encode() for r in rows) + b"\r\n\r\n")
    _same(generic, monkeypatch, crlf, task_type="pairwise", mapping=mapping)
    lone = tmp_path / "cr.jsonl"  # a lone CR ends a line for the row-by-row reader only
    lone.write_bytes(json.dumps(rows[0]).encode() + b"\r" + json.dumps(rows[1]).encode() + b"\n"
                     + json.dumps(rows[2]).encode() + b"\n")
    _same(generic, monkeypatch, lone, fast_expected=False, task_type="pairwise", mapping=mapping)


# ----------------------------------------------------------------------------- odd values, generated

_ODD = {
    "text": ["x", "  ", "", None, "ABSENT", 3, 2.5, 2.0, True, ["a"], "q\u2028r", "é"],
    "label": ["A", "B", "tie", "a", "C", 1, 2, 0, 1.0, 2.5, True, None, "ABSENT", " "],
    "score": [1, 3.5, 5, 0, 6, None, "ABSENT", "3", "x", True, 2**60],
    "count": [1, 3, 0, -1, 1.5, 2.0, None, "ABSENT", "2"],
    "meta": [None, "ABSENT", '{"k": 1}', "plain", "{bad"],
    "id": ["i", None, "ABSENT", 7, 7.0, 1.5],
    "votes": [["A", "B"], [], None, "ABSENT", ["A", None], ["X"], [1, 2], "[\"A\",\"B\"]", "A", [1.0, 2]],
    "ratings": [[1, 2], [3.5], [], None, "ABSENT", [1, None], ["2"], "[1, 2]", 3, [True]],
}
_KINDS = {"q": "text", "a": "text", "b": "text", "r": "text", "w": "label", "s": "score", "n": "count",
          "meta": "meta", "id": "id", "votes": "votes", "ratings": "ratings"}


def _odd_case(rng, k):
    pairwise = rng.random() < 0.6
    rows = []
    for i in range(rng.choice([2, 3, 6])):
        row = {"id": f"e{i}", "q": f"question {i}", "meta": rng.choice([None, '{"k": %d}' % i])}
        if pairwise:
            row.update(a=f"a {i}", b=f"b {i}", w=rng.choice(["A", "B", "tie"]), votes=rng.choice([["A", "B"], None]),
                       n=rng.choice([2, None]))
        else:
            row.update(r=f"r {i}", s=rng.choice([1, 2.5, 5]), ratings=rng.choice([[1, 2], None]))
        rows.append(row)
    for _ in range(rng.choice([0, 1, 1, 2])):
        row = rng.choice(rows)
        column = rng.choice([c for c in row if c in _KINDS])
        row[column] = rng.choice(_ODD[_KINDS[column]])
    for row in rows:
        for column in [c for c, v in row.items() if v == "ABSENT"]:
            del row[column]
    if pairwise:
        mapping = {"example_id": "id", "instruction": "q", "response_a": "a", "response_b": "b", "label": "w",
                   "annotator_labels": "votes", "num_annotators": "n", "metadata": "meta"}
        kw = {"task_type": "pairwise", "label_map": {"A": "A", "B": "B", "tie": "tie", "1": "A", "2": "B"}
              if rng.random() < 0.5 else None}
    else:
        mapping = {"example_id": "id", "instruction": "q", "response": "r", "score": "s",
                   "annotator_scores": "ratings", "metadata": "meta"}
        kw = {"task_type": "pointwise", "scale": (1, 5)}
    if rng.random() < 0.2:
        kw["skip_empty"] = True
    return rows, {**kw, "mapping": mapping}


@pytest.mark.parametrize("seed", range(4))
def test_generated_odd_values_read_and_refused_alike(generic, monkeypatch, tmp_path, seed):
    """Nulls, missing keys, numbers as text, bad labels, lists where text belongs...: the columnar
    reader's frame or error equals the records reader's, and it reads most of these files itself."""
    import random

    rng = random.Random(seed)
    columnar, errors = 0, 0
    for k in range(40):
        rows, kw = _odd_case(rng, k)
        path = tmp_path / f"case{k}.jsonl"
        path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
        calls = []
        real = generic_module.load_table
        monkeypatch.setattr(generic_module, "load_table", lambda *a, **k: calls.append(1) or real(*a, **k))
        try:
            fast = generic.read(path, **kw)
        except InvalidInput as exc:
            fast = exc
        monkeypatch.setattr(generic_module, "load_table", real)
        monkeypatch.setattr(generic_module, "FAST_PATH", False)
        try:
            slow = generic.read(path, **kw)
        except InvalidInput as exc:
            slow = exc
        monkeypatch.setattr(generic_module, "FAST_PATH", True)
        columnar += not calls
        if isinstance(slow, InvalidInput):
            errors += not calls
            assert isinstance(fast, InvalidInput) and str(fast) == str(slow), (rows, kw)
        else:
            assert isinstance(fast, pd.DataFrame), (rows, kw, fast)
            pd.testing.assert_frame_equal(fast, slow, check_exact=True)
            assert fast.attrs == slow.attrs
            for col in fast.columns:
                assert [repr(v) for v in fast[col]] == [repr(v) for v in slow[col]], (col, rows, kw)
    assert columnar >= 25 and errors >= 3     # the columnar reader read them, refusals included


def test_json_lines_read_by_records_when_pyarrow_changes_values(generic, monkeypatch, tmp_path):
    """Objects and dates in a used JSON-lines column: pyarrow's values differ from the JSON's (an
    object gains the other records' keys, a date becomes a timestamp), so the records reader takes
    the file, decided from the column types; Parquet objects are the same both ways."""
    base = [{"q": f"q{i}", "a": "x", "b": "y", "w": "A"} for i in range(4)]
    mapping = {"instruction": "q", "response_a": "a", "response_b": "b", "label": "w"}
    objects = _write_jsonl(tmp_path / "meta.jsonl", [dict(r, meta={"k": i} if i % 2 else {"j": 1})
                                                     for i, r in enumerate(base)])
    df = _same(generic, monkeypatch, objects, fast_expected=False, task_type="pairwise",
               mapping={**mapping, "metadata": "meta"})
    assert list(df["metadata"])[:2] == ['{"j": 1}', '{"k": 1}']
    dates = _write_jsonl(tmp_path / "dates.jsonl", [dict(r, q=f"2020-01-0{i + 1}T00:00:00") for i, r in enumerate(base)])
    df = _same(generic, monkeypatch, dates, fast_expected=False, task_type="pairwise", mapping=mapping)
    assert df["instruction"][0] == "2020-01-01T00:00:00"
    pq.write_table(pa.Table.from_pylist([dict(r, meta={"k": i}) for i, r in enumerate(base)]), tmp_path / "m.parquet")
    _same(generic, monkeypatch, tmp_path / "m.parquet", task_type="pairwise", mapping={**mapping, "metadata": "meta"})


def test_columnar_errors_name_the_row_of_a_missing_key_or_null(generic, monkeypatch, tmp_path):
    rows = [{"q": f"q{i}", "a": "x", "b": "y", "w": "A", "n": [-1, 2, 3, 2.5][i]} for i in range(4)]
    del rows[2]["w"]
    kw = dict(task_type="pairwise", mapping={"instruction": "q", "response_a": "a", "response_b": "b", "label": "w"})
    path = _write_jsonl(tmp_path / "absent.jsonl", rows)
    message = _errors_same(generic, monkeypatch, path, fast_expected=True, **kw)
    assert "row 3 (line 3)" in message and "no 'w' in the record" in message
    rows[2]["w"] = None
    message = _errors_same(generic, monkeypatch, _write_jsonl(path, rows), fast_expected=True, **kw)
    assert "row 3 (line 3)" in message and "missing value" in message
    # a count column of numbers: the value shown is the JSON's own (-1, not -1.0)
    rows[2]["w"] = "B"
    message = _errors_same(generic, monkeypatch, _write_jsonl(path, rows), fast_expected=True,
                           **{**kw, "mapping": {**kw["mapping"], "num_annotators": "n"}})
    assert "row 1 (line 1)" in message and message.endswith("not a count: -1")   # not -1.0
