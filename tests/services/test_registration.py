"""Registering dataset versions: idempotence, versioning with parents and row diffs, loading,
exporting, DVC push/pull — on SQLite and PostgreSQL, with real LLMBar data."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from registry.services import datasets as svc
from tests.conftest import db_counts, store_files

NATURAL = "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/dataset.json"


def _register(reg, path, name="llmbar-natural"):
    return svc.register_dataset_version(reg, name=name, source="llmbar", path=path)


def test_register_is_idempotent_and_loads_exact_rows(registry, data_root):
    src = data_root / NATURAL
    first = _register(registry, src)
    assert first.created and first.version.version == 1 and first.version.row_count == 100
    assert first.version.spec == "pairwise@1"
    assert first.version.validation["success"] and first.version.validation["failed"] == 0
    assert first.version.statistics["label_distribution"] == {"A": 42, "B": 58}
    again = _register(registry, src)
    assert not again.created and again.version.content_hash == first.version.content_hash
    assert db_counts(registry)["dataset_versions"] == 1

    df = svc.load_pandas(registry, "llmbar-natural@1")
    raw = json.loads(src.read_text())
    by_input = {r["input"]: r for r in raw}
    assert len(df) == 100 and list(df["example_id"]) == sorted(df["example_id"])
    for row in df.itertuples():
        r = by_input[row.instruction]
        assert (row.response_a, row.response_b, row.label) == (r["output_1"], r["output_2"], "AB"[r["label"] - 1])
    hf = svc.load_hf_dataset(registry, "llmbar-natural")
    assert hf.num_rows == 100 and hf["example_id"] == list(df["example_id"])


def test_changed_example_becomes_version_2_with_exact_diff(registry, data_root, tmp_path):
    src = data_root / NATURAL
    v1 = _register(registry, src).version
    raw = json.loads(src.read_text())
    raw[17]["output_2"] = raw[17]["output_2"] + " (edited)"
    copy = tmp_path / "dataset.json"
    copy.write_text(json.dumps(raw))
    r2 = _register(registry, copy)
    assert r2.created and r2.version.version == 2 and r2.version.parent_version == 1
    assert r2.version.content_hash != v1.content_hash
    assert r2.diff == {"added": 0, "removed": 0, "changed": 1, "unchanged": 99}
    diff = svc.diff_versions(registry, "llmbar-natural@1", "llmbar-natural@2")
    changed_id = svc.load_pandas(registry, "llmbar-natural@2").set_index("instruction").loc[raw[17]["input"], "example_id"]
    assert diff.changed == (changed_id,) and diff.added == () and diff.removed == ()
    # re-registering the original content is recognised as version 1, not a new version
    assert not _register(registry, src).created
    # a removed and an added example
    raw2 = raw[1:] + [{"input": "A brand new instruction", "output_1": "x", "output_2": "y", "label": 1}]
    copy.write_text(json.dumps(raw2))
    r3 = _register(registry, copy)
    assert r3.version.version == 3 and r3.diff["added"] == 1 and r3.diff["removed"] == 1
    assert [v.version for v in registry.store.list_versions("llmbar-natural")] == [1, 2, 3]


def test_row_order_does_not_change_content(registry, data_root, tmp_path):
    raw = json.loads((data_root / NATURAL).read_text())
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(raw))
    b.write_text(json.dumps(list(reversed(raw))))
    assert _register(registry, a).created
    assert not _register(registry, b).created


def test_export_roundtrip(sqlite_registry, data_root, tmp_path):
    _register(sqlite_registry, data_root / NATURAL)
    original = svc.load_pandas(sqlite_registry, "llmbar-natural")
    for fmt in ("parquet", "jsonl", "csv"):
        out = svc.export_version(sqlite_registry, "llmbar-natural@1", tmp_path / f"out.{fmt}")
        back = {"parquet": pd.read_parquet, "jsonl": lambda p: pd.read_json(p, lines=True),
                "csv": pd.read_csv}[fmt](out)
        assert list(back["example_id"]) == list(original["example_id"])
        assert list(back["label"]) == list(original["label"])


def test_dvc_push_and_pull_restore_a_version(sqlite_registry, data_root):
    reg = sqlite_registry
    v = _register(reg, data_root / NATURAL).version
    assert (reg.artifacts.root / (v.storage_uri + ".dvc")).exists()
    assert reg.artifacts.push() >= 1
    remote_files = [p for p in (reg.artifacts.remote and __import__("pathlib").Path(reg.artifacts.remote)).rglob("*") if p.is_file()]
    assert remote_files
    # lose the local copy and the cache: loading pulls it back from the remote
    (reg.artifacts.root / v.storage_uri).unlink()
    shutil.rmtree(reg.artifacts.root / ".dvc" / "cache")
    reg.artifacts.close()
    table = svc.load_table(reg, "llmbar-natural@1")
    assert table.num_rows == 100


def test_failed_registration_leaves_nothing(registry, data_root, tmp_path, monkeypatch):
    """A database failure after the Parquet file was written removes file, pointer and rows."""
    before_files, before_rows = store_files(registry), db_counts(registry)

    def boom(*a, **k):
        raise RuntimeError("simulated crash while writing the version row")

    monkeypatch.setattr(registry.store, "add_version", boom)
    with pytest.raises(RuntimeError):
        _register(registry, data_root / NATURAL)
    assert store_files(registry) == before_files
    assert db_counts(registry) == before_rows


def test_same_input_is_recognised_without_reading_it(sqlite_registry, data_root, monkeypatch):
    from registry.adapters.sources.llmbar import LLMBarAdapter

    first = _register(sqlite_registry, data_root / NATURAL)

    def must_not_read(*a, **k):
        raise AssertionError("the input was read again")

    monkeypatch.setattr(LLMBarAdapter, "read", must_not_read)
    again = _register(sqlite_registry, data_root / NATURAL)
    assert not again.created and again.version.content_hash == first.version.content_hash
    # another dataset name does not share the fingerprint: it reads (and here fails loudly)
    with pytest.raises(AssertionError, match="read again"):
        _register(sqlite_registry, data_root / NATURAL, name="natural-copy")
