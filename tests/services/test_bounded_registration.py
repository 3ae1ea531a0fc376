"""Bounded-memory registration (issue 12 item 1): an input registered with a tiny memory setting —
read, validated, hashed, sorted and written in many chunks, runs spilled to disk and merged — is
stored exactly as the whole-table functions store it: content hash, row hashes, canonical order,
statistics, validation report, Parquet bytes and the diff from the parent (real datasets of every
task type, through catalog adapters and the generic reader)."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from registry.adapters.artifacts.store import PARQUET_OPTIONS
from registry.adapters.sources import get_adapter
from registry.adapters.sources.generic import GenericAdapter
from registry.adapters.validation.gx import ChunkedReport, Rules, run_suite, to_arrow, validate
from registry.adapters.validation.spec import load_spec
from registry.domain.statistics import compute_statistics
from registry.domain.versioning import canonical_order, content_hash, diff_rows, row_hashes
from registry.errors import InvalidInput, ValidationFailed
from registry.services import datasets as svc
from registry.services import ingest as ingest_mod

TINY_MB = 1.0
"""AUTORATER_MEMORY_MB of the chunked registrations: chunks of ~87 KB (catalog files are 0.1–1.3 MB)."""
NATURAL = "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/dataset.json"
PANDALM = "WeOpenML__PandaLM/data/testset-v1.json"


@pytest.fixture
def tiny(sqlite_registry):
    """A registry whose registrations run with AUTORATER_MEMORY_MB=1, counting chunks and spills."""
    reg = sqlite_registry
    reg.settings = dataclasses.replace(reg.settings, memory_mb=TINY_MB)
    return reg


@pytest.fixture
def counted(monkeypatch):
    """Counts of validated chunks and spilled runs of the registrations in a test."""
    counts = {"chunks": 0, "spills": 0}
    add, spill = ChunkedReport.add, ingest_mod.Ingest._spill

    def counting_add(self, *a, **k):
        counts["chunks"] += 1
        return add(self, *a, **k)

    def counting_spill(self, *a, **k):
        counts["spills"] += 1
        return spill(self, *a, **k)

    monkeypatch.setattr(ChunkedReport, "add", counting_add)
    monkeypatch.setattr(ingest_mod.Ingest, "_spill", counting_spill)
    return counts


def whole_table(reg, source: str, path: Path, name: str, *, options=None, task_type=None, labels=None):
    """What registering ``path`` stored before chunking, computed with the whole-table functions:
    (content hash, statistics, report, Parquet bytes, canonical table)."""
    adapter = get_adapter(source)
    ddef = adapter.dataset_def(name)
    opts = dict(ddef.options if ddef else {}) | dict(options or {})
    task_type = task_type or (ddef.task_type if ddef else adapter.info.task_types[0])
    if source == "generic":
        opts["task_type"] = task_type
    labels = labels or (ddef.labels if ddef else None)
    df = adapter.read(path, **opts)
    if task_type == "classification" and labels is None:
        labels = tuple(sorted(str(v) for v in pd.unique(df["label"].dropna())))
    spec = load_spec(reg.settings.specs_dir, task_type)
    table, report = validate(df, spec, Rules(labels=labels, max_text_chars=reg.settings.max_text_chars),
                             file=str(path))
    table = canonical_order(table)
    buf = io.BytesIO()
    pq.write_table(table, buf, **PARQUET_OPTIONS)
    return content_hash(spec.ref, table, row_hashes(table)), compute_statistics(table, task_type), report, \
        buf.getvalue(), table


def assert_stored_as_whole(reg, version, expected) -> None:
    digest, stats, report, parquet, table = expected
    stored = reg.artifacts.path(version.storage_uri)
    assert version.content_hash == digest
    assert version.statistics == stats
    assert {k: v for k, v in version.validation.items() if k != "input_repairs"} == report
    assert stored.read_bytes() == parquet
    back = pq.read_table(stored)
    assert back.equals(table)
    assert (row_hashes(back) == row_hashes(table)).all()


CATALOG = [
    ("llmbar", "llmbar-natural", 1),            # pairwise
    ("pandalm", "pandalm-test", 1),             # pairwise, three annotators (agreement statistics)
    ("bartscore", "summeval-coherence", 16),    # pointwise, annotator scores, systems
    ("summac", "summac-summeval", 1),           # classification
    ("moderation", "moderation-sexual", 1),     # classification, a .jsonl.gz file
]


@pytest.mark.parametrize("source,name,memory_mb", CATALOG)
def test_catalog_dataset_in_many_chunks_is_stored_as_whole(tiny, counted, data_root, source, name, memory_mb):
    tiny.settings = dataclasses.replace(tiny.settings, memory_mb=memory_mb)
    adapter = get_adapter(source)
    path = data_root / adapter.dataset_def(name).path
    r = svc.register_dataset_version(tiny, name=name, source=source, path=path)
    assert r.created and counted["chunks"] >= 2 and counted["spills"] >= 1, counted
    assert_stored_as_whole(tiny, r.version, whole_table(tiny, source, path, name))


def test_default_memory_and_tiny_memory_store_the_same(sqlite_registry, tmp_path, data_root):
    from registry.services.app import init_registry

    path = data_root / PANDALM
    big = svc.register_dataset_version(sqlite_registry, name="pandalm-test", source="pandalm", path=path).version
    other = init_registry(dataclasses.replace(sqlite_registry.settings, home=tmp_path / "h2", store=tmp_path / "h2" / "s",
                                              db_url=f"sqlite:///{tmp_path / 'h2.db'}", memory_mb=TINY_MB))
    try:
        small = svc.register_dataset_version(other, name="pandalm-test", source="pandalm", path=path).version
        assert (small.content_hash, small.statistics, small.validation, small.row_count, small.labels) == \
            (big.content_hash, big.statistics, big.validation, big.row_count, big.labels)
        assert other.artifacts.path(small.storage_uri).read_bytes() == \
            sqlite_registry.artifacts.path(big.storage_uri).read_bytes()
    finally:
        other.close()


def test_new_version_diff_from_parent_in_chunks(tiny, counted, data_root, tmp_path):
    src = data_root / NATURAL
    v1 = svc.register_dataset_version(tiny, name="llmbar-natural", source="llmbar", path=src).version
    raw = json.loads(src.read_text())
    raw[17]["output_2"] += " (edited)"
    raw[40]["label"] = 3 - raw[40]["label"]
    raw = raw[1:] + [{"input": "A brand new instruction", "output_1": "x", "output_2": "y", "label": 1}]
    copy = tmp_path / "dataset.json"
    copy.write_text(json.dumps(raw))
    r2 = svc.register_dataset_version(tiny, name="llmbar-natural", source="llmbar", path=copy)
    expected = whole_table(tiny, "llmbar", copy, "llmbar-natural")
    assert_stored_as_whole(tiny, r2.version, expected)
    old = pq.read_table(tiny.artifacts.path(v1.storage_uri))
    new = expected[-1]
    want = diff_rows(old.column("example_id"), row_hashes(old), new.column("example_id"), row_hashes(new)).summary()
    assert r2.diff == want == {"added": 1, "removed": 1, "changed": 2, "unchanged": 97}
    assert r2.version.diff_from_parent == want and r2.version.parent_version == 1


def test_many_row_groups_merged_from_many_runs(tiny, counted, data_root, monkeypatch):
    """Small row groups: every output row group is merged from slices of many spilled runs; the file
    is the one pyarrow writes for the whole table with that row-group size."""
    monkeypatch.setitem(PARQUET_OPTIONS, "row_group_size", 100)
    path = data_root / PANDALM
    r = svc.register_dataset_version(tiny, name="pandalm-test", source="pandalm", path=path)
    expected = whole_table(tiny, "pandalm", path, "pandalm-test")
    assert pq.ParquetFile(tiny.artifacts.path(r.version.storage_uri)).num_row_groups == 10
    assert_stored_as_whole(tiny, r.version, expected)


# ----------------------------------------------------------------------------- the generic reader


def _real_pairs(data_root: Path) -> list[dict]:
    """Real LLMBar + PandaLM rows in their own conventions (as bench/ingest.py writes them)."""
    from bench.ingest import real_rows

    rows = real_rows(data_root)
    return [{"id": f"r{i}", **{k: v for k, v in r.items() if k != "base_id"}} for i, r in enumerate(rows)]


MAPPING = {"example_id": "id", "instruction": "prompt", "response_a": "output_1", "response_b": "output_2",
           "label": "preference", "annotator_labels": "votes", "category": "subset"}
LABEL_MAP = {"0": "tie", "1": "A", "2": "B"}


def _write(path: Path, rows: list[dict]) -> Path:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif path.suffix == ".csv":
        df = pd.DataFrame(rows)
        df["votes"] = df["votes"].map(lambda v: json.dumps(v) if isinstance(v, list) else None)
        df.to_csv(path, index=False)
    else:
        pq.write_table(pa.Table.from_pandas(pd.DataFrame(rows), preserve_index=False), path, row_group_size=500)
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_generic_file_in_chunks_is_stored_as_whole(tiny, counted, data_root, tmp_path, suffix):
    """LLMBar rows (no votes) come first, PandaLM rows (three votes) after: the first chunks have no
    'votes' column, later ones do, as in the whole file."""
    tiny.settings = dataclasses.replace(tiny.settings, memory_mb=2)  # ~15 chunks of 2.2 MB
    path = _write(tmp_path / f"pairs{suffix}", _real_pairs(data_root))
    options = {"mapping": MAPPING, "label_map": LABEL_MAP}
    r = svc.register_dataset_version(tiny, name="pairs", source="generic", path=path, task_type="pairwise",
                                     options=options)
    assert counted["chunks"] >= 8 and counted["spills"] >= 8, counted
    assert_stored_as_whole(tiny, r.version, whole_table(tiny, "generic", path, "pairs", options=options,
                                                        task_type="pairwise"))


def _frames_equal(path: Path, size: int = 30_000, **options) -> int:
    g = GenericAdapter()
    whole = g.read(path, **options)
    parts = list(g.read_chunks(path, chunk_bytes=size, **options))
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole.reset_index(drop=True))
    return len(parts)


def test_generic_chunks_read_as_the_whole_file(data_root, tmp_path):
    rows = _real_pairs(data_root)
    no_ids = [{k: v for k, v in r.items() if k != "id"} for r in rows] * 2     # repeated prompts: -2, -3 ids
    unmapped = {k: v for k, v in MAPPING.items() if k != "example_id"}
    path = _write(tmp_path / "no-ids.jsonl", no_ids)
    assert _frames_equal(path, task_type="pairwise", mapping=unmapped, label_map=LABEL_MAP) > 10
    assert _frames_equal(path, task_type="pairwise", mapping=unmapped, label_map=LABEL_MAP, id_from_row=True) > 10
    blank = [dict(r) for r in rows]
    for r in blank[::7]:
        r["prompt"] = "  "
    path = _write(tmp_path / "blank.jsonl", blank)
    assert _frames_equal(path, task_type="pairwise", mapping=MAPPING, label_map=LABEL_MAP, skip_empty=True) > 10
    # classification with its labels from the data; pointwise with a path into the records
    cls = [{"id": r["id"], "q": r["prompt"], "a": r["output_1"], "lab": ["yes", "no", "maybe"][i % 3]}
           for i, r in enumerate(rows)]
    path = _write(tmp_path / "cls.jsonl", cls)
    assert _frames_equal(path, task_type="classification",
                         mapping={"example_id": "id", "instruction": "q", "response": "a", "label": "lab"}) > 10
    pw = [{"id": r["id"], "q": r["prompt"], "a": r["output_1"], "s": {"v": i % 5 + 1}} for i, r in enumerate(rows)]
    path = _write(tmp_path / "pw.jsonl", pw)
    assert _frames_equal(path, task_type="pointwise", scale=(1, 5),
                         mapping={"example_id": "id", "instruction": "q", "response": "a", "score": "s.v"}) > 10


def _same_error(path: Path, size: int = 30_000, **options) -> str:
    g = GenericAdapter()
    with pytest.raises(InvalidInput) as whole:
        g.read(path, **options)
    with pytest.raises(InvalidInput) as chunked:
        list(g.read_chunks(path, chunk_bytes=size, **options))
    assert str(chunked.value) == str(whole.value)
    return str(whole.value)


def test_generic_errors_in_later_chunks_name_the_row_in_the_file(data_root, tmp_path):
    rows = _real_pairs(data_root)
    options = {"task_type": "pairwise", "mapping": MAPPING, "label_map": LABEL_MAP}
    dup = [dict(r) for r in rows]
    dup[1500]["id"] = dup[3]["id"]
    for suffix in (".jsonl", ".csv", ".parquet"):
        message = _same_error(_write(tmp_path / f"dup{suffix}", dup), **options)
        assert "duplicate id 'r3' (also in row 4" in message and "row 1501" in message
    bad = [dict(r) for r in rows]
    bad[1700]["preference"] = 7
    assert "label '7' is not in the label map" in _same_error(_write(tmp_path / "bad.jsonl", bad), **options)
    path = _write(tmp_path / "broken.jsonl", rows)
    text = path.read_text().splitlines()
    path.write_text("\n".join(text[:1600] + ['{"id": "x", "prompt": '] + text[1600:]) + "\n")
    assert "row 1601: malformed JSON line" in _same_error(path, **options)
    path.write_bytes(path.read_bytes().replace(b'{"id": "x", "prompt": ', b'{"id": "x\xff"}'))
    assert "not valid UTF-8" in _same_error(path, **options)


def test_generic_inputs_without_rows_read_as_whole(tmp_path):
    """An empty file, blank lines, a header alone, one JSON document over many lines: the errors (or
    rows) of the whole-file read."""
    cases = {"empty.jsonl": "", "blank.jsonl": "\n\n  \n", "header.csv": "id,prompt\n",
             "doc.jsonl": json.dumps([{"id": "1", "prompt": "p", "output_1": "a", "output_2": "b", "preference": 1},
                                      {"id": "2", "prompt": "q", "output_1": "c", "output_2": "d", "preference": 2}],
                                     indent=2)}
    mapping = {k: v for k, v in MAPPING.items() if k not in ("annotator_labels", "category")}
    options = {"task_type": "pairwise", "mapping": mapping, "label_map": LABEL_MAP}
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        if name == "doc.jsonl":
            assert _frames_equal(path, size=50, **options) == 1
        else:
            _same_error(path, **options)


def test_generic_chunk_edge_cases_read_as_whole(tmp_path):
    """Found by fuzzing the chunked reader against the whole-file one: a JSON line nested thousands deep
    alone in its block, a Parquet file that does not open, a CSV without the mapped id column."""
    mapping = {"example_id": "id", "instruction": "q", "response": "r", "label": "y"}
    options = {"task_type": "classification", "mapping": mapping}
    rows = [json.dumps({"id": f"r{i}", "q": "question", "r": "response", "y": "pos"}) for i in range(6)]
    rows[3] = rows[3][:-1] + ', "z": ' + "[" * 6000 + "]" * 6000 + "}"
    deep = tmp_path / "deep.jsonl"
    deep.write_text("\n".join(rows) + "\n")
    # even in a field no mapping reads: both readers refuse it the same way, naming the row (pyarrow, which
    # once read it, is no longer given lines nested deeper than 64: it slows quadratically and crashes)
    assert "nested too deeply" in _same_error(deep, size=200, **options)
    rows[3] = rows[3][:-1].replace("[" * 6000 + "]" * 6000, "[" * 100 + "]" * 100) + "}"
    deep.write_text("\n".join(rows) + "\n")  # 100 levels: read by the records reader, the same rows
    assert _frames_equal(deep, size=200, **options) > 1
    rows[3] = json.dumps({"id": "r3", "q": "question", "r": "response"})[:-1] + ', "y": ' + "[" * 6000 + "]" * 6000 + "}"
    deep.write_text("\n".join(rows) + "\n")
    assert "nested too deeply" in _same_error(deep, size=200, **options)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR")
    assert "cannot read Parquet" in _same_error(broken, **options)
    no_id = tmp_path / "no-id.tsv"
    no_id.write_text("q\tr\ty\n" + "".join(f"question {i}\tresponse\tpos\n" for i in range(50)))
    assert "mapped to column 'id'" in _same_error(no_id, size=100, **options)


# ----------------------------------------------------------------------------- validation in chunks


class _Frame:
    """An adapter that reads a given frame (cut into chunks by the registration)."""

    def __init__(self, df: pd.DataFrame) -> None:
        self.df = df

    def read(self, path, **options):
        return self.df


def _ingest(reg, df, task_type, *, labels=None, max_text_chars=None, memory_mb=TINY_MB):
    spec = load_spec(reg.settings.specs_dir, task_type)
    return ingest_mod.ingest(reg.artifacts, _Frame(df), Path("in.jsonl"), {}, spec=spec, task_type=task_type,
                             labels=labels, max_text_chars=max_text_chars or reg.settings.max_text_chars,
                             memory_mb=memory_mb)


def _whole_failure(reg, df, task_type, *, labels=None, max_text_chars=None):
    spec = load_spec(reg.settings.specs_dir, task_type)
    with pytest.raises(InvalidInput) as whole:
        validate(df, spec, Rules(labels=labels, max_text_chars=max_text_chars or reg.settings.max_text_chars),
                 file="in.jsonl")
    return whole.value


def _catalog_frame(data_root: Path, source: str, name: str) -> pd.DataFrame:
    adapter = get_adapter(source)
    ddef = adapter.dataset_def(name)
    return adapter.read(data_root / ddef.path, **ddef.options)


def test_failures_across_chunks_read_as_the_whole_report(tiny, counted, data_root):
    """Failing rows in many chunks, duplicate ids in different chunks: the same report (counts, the
    first failing rows with their row numbers in the input) and the same message."""
    df = get_adapter("pandalm").read(data_root / PANDALM)
    df.loc[[5, 400, 998], "example_id"] = df.loc[[300, 2, 7], "example_id"].to_numpy()
    with pytest.raises(ValidationFailed) as chunked:
        _ingest(tiny, df, "pairwise", max_text_chars=400)
    whole = _whole_failure(tiny, df, "pairwise", max_text_chars=400)
    assert counted["chunks"] >= 10
    assert chunked.value.report == whole.report and str(chunked.value) == str(whole)
    unique = next(c for c in whole.report["expectations"] if c["expectation"] == "expect_column_values_to_be_unique")
    assert unique["unexpected_count"] == 6 and [r["_row"] for r in unique["failing_rows"]] == [3, 6, 8, 301, 401]
    assert any(c["unexpected_count"] > 100 for c in whole.report["expectations"])


def test_classification_labels_from_the_data_checked_in_chunks(tiny, counted, data_root):
    """Labels found in the data: every chunk is read before the suite (which checks labels) runs on
    them; failures spread over the chunks read as the whole input's."""
    df = _catalog_frame(data_root, "summac", "summac-summeval")
    spec = load_spec(tiny.settings.specs_dir, "classification")
    labels = tuple(sorted(str(v) for v in pd.unique(df["label"].dropna())))
    with pytest.raises(ValidationFailed) as chunked:
        _ingest(tiny, df, "classification", max_text_chars=1500)
    whole = _whole_failure(tiny, df, "classification", labels=labels, max_text_chars=1500)
    assert counted["chunks"] >= 5
    assert chunked.value.report == whole.report and str(chunked.value) == str(whole)
    ok = _ingest(tiny, df, "classification")
    try:
        assert ok.labels == labels
        assert ok.report == run_suite(to_arrow(df, spec), spec, Rules(labels=labels))
    finally:
        ok.parquet.unlink()


def test_cast_error_is_the_whole_inputs(tiny, data_root):
    """A value that is not of its field's type in two chunks: the error of the first field in spec
    order, at its first bad row in the input (as casting the whole input names it)."""
    df = _catalog_frame(data_root, "bartscore", "summeval-coherence")
    df["score"] = df["score"].astype(object)
    df["num_annotators"] = df["num_annotators"].astype(object)
    df.loc[1200, "score"] = "high"
    df.loc[1300, "num_annotators"] = "three"
    with pytest.raises(InvalidInput) as chunked:
        _ingest(tiny, df, "pointwise", memory_mb=16)
    spec = load_spec(tiny.settings.specs_dir, "pointwise")
    with pytest.raises(InvalidInput) as whole:
        to_arrow(df, spec, file="in.jsonl")
    assert str(chunked.value) == str(whole.value) and ("row 1201" in str(whole.value) or "row 1301" in str(whole.value))


def test_chunk_size_follows_the_memory_setting():
    assert ingest_mod.chunk_bytes(2048) == 2048 * 2**20 // ingest_mod.CHUNK_SHARE
    assert ingest_mod.chunk_bytes(1) == max(ingest_mod.MIN_CHUNK_BYTES, 2**20 // ingest_mod.CHUNK_SHARE)
    frame = pd.DataFrame({"a": np.arange(1000), "b": ["x" * 100] * 1000})
    parts = list(ingest_mod.frame_chunks(frame, 20_000))
    assert len(parts) > 5 and pd.concat(parts).equals(frame)
