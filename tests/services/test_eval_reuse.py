"""What a run reuses from earlier runs and processes (issue 12 item 2), on real PandaLM data:

* the content-hash check of a version's file, passed once, is trusted by a later process while the
  file is unchanged (a marker keyed by path, inode, size, modification and change times) — a
  rewritten file is checked again and refused;
* the judge-input hashes and pairwise text features of a version (its input sidecar): a later run
  reads them instead of the texts, with the same predictions and metrics; another version (other
  content) has its own;
* the metric records of a run whose predictions are byte for byte the same, scored with the same
  seed and settings by the same code: reused, and equal to scoring them again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from registry.errors import IntegrityError

PANDALM = "pandalm-test"


def _registry(home: Path):
    from registry.config import Settings
    from registry.services.app import init_registry

    s = Settings.from_env(home=str(home), db_url=f"sqlite:///{home / 'registry.db'}", store=str(home / "store"),
                          dvc_remote=str(home / "remote"))
    return init_registry(s)


@pytest.fixture
def reg(tmp_path, data_root):
    from registry.services import datasets as svc
    from registry.services.evaluators import ensure_baselines

    r = _registry(tmp_path / "home")
    svc.register_all(r, data_root, only={PANDALM})
    ensure_baselines(r, minilm=False)
    yield r
    r.close()


def _records(run) -> list:
    return sorted(((m.name, m.slice, m.value, m.ci_low, m.ci_high, m.n, json.dumps(m.extra, sort_keys=True))
                   for m in run.metrics if m.name != "time_per_1000"), key=repr)


def _new_process():
    from registry.services.store_maintenance import _VERIFIED

    _VERIFIED.clear()


def _sidecars(reg) -> list[Path]:
    return sorted((reg.artifacts.root / "derived").glob("inputs-*.arrow"))


def test_a_checked_file_is_trusted_by_the_next_process_until_it_changes(reg, monkeypatch):
    import pyarrow.parquet as pq

    from registry.services import store_maintenance
    from registry.services.datasets import load_table
    from registry.services.evaluation import run_evaluation

    version = reg.store.get_version(PANDALM)
    _new_process()
    # registration left a check marker (it hashed these rows); without it, as for a copied file:
    shutil.rmtree(reg.artifacts.root / store_maintenance.VERIFIED_DIR, ignore_errors=True)
    calls = []
    real = store_maintenance.version_digest
    monkeypatch.setattr(store_maintenance, "version_digest", lambda *a: calls.append(1) or real(*a))
    load_table(reg, version.ref)
    assert len(calls) == 1
    _new_process()
    load_table(reg, version.ref)                 # the marker the first check left: not hashed again
    assert len(calls) == 1
    before = run_evaluation(reg, "random", PANDALM, n_boot=20, chunk_rows=300)
    assert before.n_executed == 1800 and len(_sidecars(reg)) == 1
    path = reg.artifacts.path(version.storage_uri)
    table = pq.read_table(path)
    path.chmod(0o644)
    pq.write_table(table.slice(1), path)         # a row fewer: another file, the marker no longer matches
    _new_process()
    with pytest.raises(IntegrityError, match="content hash differs"):
        load_table(reg, version.ref)
    _new_process()
    with pytest.raises(IntegrityError, match="content hash differs"):   # nor does a streamed run trust it
        run_evaluation(reg, "random", PANDALM, n_boot=20, chunk_rows=300)
    with pytest.raises(IntegrityError, match="content hash differs"):   # nor a new evaluator's (its texts judged)
        run_evaluation(reg, "longer", PANDALM, n_boot=20, chunk_rows=300)


def test_a_rerun_reads_the_input_sidecar_not_the_texts(reg, monkeypatch, tmp_path, data_root):
    from registry.services import evaluation, scoring, streaming
    from registry.services.evaluation import load_predictions, run_evaluation

    first = run_evaluation(reg, "random", PANDALM, seed=0, n_boot=50, chunk_rows=300)
    assert first.n_executed == 1800 and len(_sidecars(reg)) == 1
    _new_process()

    def no_texts(*a, **k):
        raise AssertionError("the texts were hashed")

    with monkeypatch.context() as m:
        m.setattr(streaming, "example_input_hash_array", no_texts)
        m.setattr(scoring, "text_features", no_texts)
        light = run_evaluation(reg, "random", PANDALM, seed=1, n_boot=50, chunk_rows=300)
    assert light.n_cached == 1800 and light.n_executed == 0
    assert "scores_reused_from" not in light.provenance          # another seed: scored
    assert load_predictions(reg, light).drop_columns(["seconds"]).equals(
        load_predictions(reg, first).drop_columns(["seconds"]))
    with monkeypatch.context() as m:             # a new evaluator: the texts judged, their hashes kept
        m.setattr(streaming, "example_input_hash_array", no_texts)
        judged = run_evaluation(reg, "longer", PANDALM, seed=1, n_boot=50, chunk_rows=300)
    assert judged.n_executed == 1800
    # the same run from the texts (no sidecar, scored again): the same records
    for f in _sidecars(reg):
        f.unlink()
    with monkeypatch.context() as m:
        m.setattr(evaluation, "reusable_scores", lambda *a, **k: None)
        full = run_evaluation(reg, "random", PANDALM, seed=1, n_boot=50, chunk_rows=250)
    assert _records(full) == _records(light)
    assert reg.store.run_examples([full.id])[full.id] == reg.store.run_examples([light.id])[light.id]
    assert len(_sidecars(reg)) == 1                              # written again by that run

    # a new version (one response edited): its own sidecar, its texts read, the edited pair judged
    from registry.adapters.sources import get_adapter
    from registry.services import datasets as svc

    d = get_adapter("pandalm").dataset_def(PANDALM)
    src = data_root / d.path
    copy = tmp_path / "edited" / src.name
    copy.parent.mkdir()
    shutil.copy(src, copy)
    rows = json.loads(copy.read_text())
    rows[0]["response1"] = rows[0]["response1"] + " (edited)"
    copy.write_text(json.dumps(rows))
    v2 = svc.register_dataset_version(reg, name=PANDALM, source="pandalm", path=copy)
    assert v2.created
    again = run_evaluation(reg, "random", v2.version.ref, seed=1, n_boot=50)
    assert again.n_executed == 2 and len(_sidecars(reg)) == 2


def test_scores_of_the_same_predictions_are_reused(reg, monkeypatch):
    from registry.services import evaluation
    from registry.services.evaluation import run_evaluation

    first = run_evaluation(reg, "random", PANDALM, seed=3, n_boot=40)
    again = run_evaluation(reg, "random", PANDALM, seed=3, n_boot=40)
    assert again.id != first.id and again.predictions_sha256 == first.predictions_sha256
    assert again.provenance["scores_reused_from"] == first.id
    assert _records(again) == _records(first)
    with monkeypatch.context() as m:             # scored again: the same records, the same examples
        m.setattr(evaluation, "reusable_scores", lambda *a, **k: None)
        scored = run_evaluation(reg, "random", PANDALM, seed=3, n_boot=40)
    assert "scores_reused_from" not in scored.provenance
    assert _records(scored) == _records(again)
    examples = reg.store.run_examples([first.id, again.id, scored.id])
    assert examples[again.id] == examples[first.id] == examples[scored.id]
    # other settings: scored
    assert "scores_reused_from" not in run_evaluation(reg, "random", PANDALM, seed=4, n_boot=40).provenance
    assert "scores_reused_from" not in run_evaluation(reg, "random", PANDALM, seed=3, n_boot=41).provenance
    sliced = run_evaluation(reg, "random", PANDALM, seed=3, n_boot=40, slice_by=["category"], min_slice_size=5)
    assert "scores_reused_from" not in sliced.provenance


def test_sorted_search_is_searchsorted():
    import numpy as np

    from registry.adapters.store.judgment_segments import sorted_search

    rng = np.random.default_rng(12)
    hay = np.sort(rng.integers(0, 2**63, 50_000, dtype=np.int64).astype(np.uint64))
    for n in (0, 1, 63, 64, 5_000):
        needles = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)
        needles[: n // 3] = hay[rng.integers(0, len(hay), n // 3)]          # present, and repeated
        needles[n // 3: n // 2] = needles[: n // 2 - n // 3]
        assert sorted_search(hay, needles).tolist() == np.searchsorted(hay, needles).tolist()
    assert sorted_search(np.zeros(0, np.uint64), np.arange(100, dtype=np.uint64)).tolist() == [0] * 100


# ----------------------------------------------------------------------------- the caches in store gc
def _cache_files(reg, folder: str) -> list[str]:
    root = reg.artifacts.root
    return sorted(p.relative_to(root).as_posix() for p in (root / folder).glob("*"))


def _delete_dataset(reg, name: str) -> None:
    """What removing a dataset would do (no command removes one): its row gone with its versions,
    runs and what hangs off them (the schema's cascades)."""
    import sqlite3

    with sqlite3.connect(reg.settings.db_url.removeprefix("sqlite:///")) as db:
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("DELETE FROM datasets WHERE name = ?", (name,))
    db.close()


def test_gc_removes_the_sidecar_and_markers_of_a_deleted_version(reg):
    from registry.services.evaluation import run_evaluation
    from registry.services.store_maintenance import collect_garbage

    run_evaluation(reg, "random", PANDALM, n_boot=20, chunk_rows=300)
    sidecars, markers = _cache_files(reg, "derived"), _cache_files(reg, ".verified")
    assert len(sidecars) == 1 and markers                    # the version's file checked (and the predictions')
    kept = collect_garbage(reg, grace_s=0)
    assert (kept.sidecars, kept.markers) == ((), ()) and _cache_files(reg, "derived") == sidecars
    assert _cache_files(reg, ".verified") == markers         # live: their files as they were checked

    _delete_dataset(reg, PANDALM)
    assert collect_garbage(reg).removed == 0                 # young: an hour's grace by default
    dry = collect_garbage(reg, grace_s=0, dry_run=True)
    assert list(dry.sidecars) == sidecars and sorted(dry.markers) == markers
    assert dry.to_dict()["sidecars"] == sidecars and sorted(dry.to_dict()["markers"]) == markers
    assert _cache_files(reg, "derived") == sidecars and _cache_files(reg, ".verified") == markers
    done = collect_garbage(reg, grace_s=0)
    assert list(done.sidecars) == sidecars and sorted(done.markers) == markers and done.orphans
    assert done.removed == len(done.orphans) + len(done.cache_objects) + len(sidecars) + len(markers)
    assert _cache_files(reg, "derived") == [] and _cache_files(reg, ".verified") == []
    assert collect_garbage(reg, grace_s=0).removed == 0


def test_gc_removes_markers_of_changed_files_and_strays(reg):
    import os

    from registry.services.evaluation import run_evaluation
    from registry.services.store_maintenance import collect_garbage

    run = run_evaluation(reg, "random", PANDALM, n_boot=20, chunk_rows=300)
    version = reg.store.get_version(PANDALM)
    sidecars, markers = _cache_files(reg, "derived"), _cache_files(reg, ".verified")
    root = reg.artifacts.root
    stray = [root / "derived" / "inputs-0123456789abcdef-x.arrow.1f2e.tmp",   # a killed write of the old code
             root / "derived" / f"inputs-{'f' * 16}-{'0' * 24}.arrow",       # another version's
             root / ".verified" / ("e" * 64)]                                 # a marker without its path
    for p in stray:
        p.write_bytes(b"")
    os.utime(reg.artifacts.path(run.predictions_uri))       # the predictions file touched: its check is void
    os.chmod(reg.artifacts.path(version.storage_uri), 0o444)  # a change time moved on: void too
    done = collect_garbage(reg, grace_s=0)
    assert sorted(done.sidecars) == sorted(p.relative_to(root).as_posix() for p in stray[:2])
    assert ".verified/" + "e" * 64 in done.markers and set(done.markers) - {".verified/" + "e" * 64} == set(markers)
    assert _cache_files(reg, "derived") == sidecars and _cache_files(reg, ".verified") == []
    _new_process()
    again = run_evaluation(reg, "longer", PANDALM, n_boot=20, chunk_rows=300)   # checked again, marked again
    assert again.status == "succeeded" and len(_cache_files(reg, ".verified")) == len(markers)
    assert collect_garbage(reg, grace_s=0).removed == 0


def test_a_killed_sidecar_write_leaves_only_a_tmp_file(reg):
    """The sidecar is written in ``store/tmp`` and renamed into place: a run killed while writing
    it leaves a temporary file there (swept by ``store gc``), never a part in ``store/derived``."""
    import numpy as np
    import pyarrow as pa

    from registry.services.store_maintenance import collect_garbage
    from registry.services.streaming import InputSidecar

    version = reg.store.get_version(PANDALM)
    building = InputSidecar(reg, version, None).builder()
    building.add(pa.array([b"0" * 16], pa.binary(16)), {}, np.array([True]))   # killed here
    root = reg.artifacts.root
    assert building.tmp.parent == root / "tmp" and building.tmp.exists()
    assert _cache_files(reg, "derived") == []
    done = collect_garbage(reg, grace_s=0)
    assert done.tmp == (building.tmp.name,) and done.sidecars == () and not building.tmp.exists()
