"""Immutable stored files, ``store verify`` and ``store gc`` (the "Hold up" issue: a stored version
rewritten in place was read back as registered; kills left temp files and orphans in the store)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pytest

from registry.errors import IntegrityError
from tests.cli.conftest import PREFS, register_prefs, runs_registry, write_prefs_csv  # noqa: F401 (fixture)
from tests.conftest import PROJECT_ROOT, store_files

HOUR = 3600.0


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _age(path: Path, seconds: float) -> None:
    """Make ``path`` (and what it holds) look ``seconds`` old."""
    when = time.time() - seconds
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(p, (when, when), follow_symlinks=False)


def _other_prefs(reg, tmp_path: Path, name: str = "other-prefs"):
    from registry.services.datasets import register_dataset_version
    from tests.cli.conftest import GENERIC_MAP

    rows = [dict(r, prompt=r["prompt"] + " (other)") for r in PREFS]
    mapping = dict(pair.split("=") for pair in GENERIC_MAP[1::2])
    return register_dataset_version(reg, name=name, source="generic", path=write_prefs_csv(tmp_path / "o.csv", rows),
                                    task_type="pairwise", options={"mapping": mapping}).version


def _overwrite(target: Path, source: Path) -> None:
    """What ``dataset export --out <stored file>`` did: rewrite a stored file in place."""
    os.chmod(target, 0o644)
    shutil.copyfile(source, target)


# ----------------------------------------------------------------------------- read-only files
def test_stored_files_are_read_only_and_dvc_tracked(runs_registry):
    reg = runs_registry
    version = reg.store.get_version("my-prefs")
    run = reg.store.list_runs()[0]
    for relpath in (version.storage_uri, run.predictions_uri):
        path = reg.artifacts.path(relpath)
        assert _mode(path) == 0o444, relpath
        assert Path(str(path) + ".dvc").exists() and _mode(Path(str(path) + ".dvc")) & stat.S_IWUSR


def test_dvc_tracks_a_read_only_file_again(sqlite_registry, tmp_path):
    """Placing the same content again (its pointer lost) re-tracks the read-only file."""
    reg = sqlite_registry
    version = register_prefs(reg, tmp_path)
    path = reg.artifacts.path(version.storage_uri)
    Path(str(path) + ".dvc").unlink()
    tmp = reg.artifacts.write_parquet_tmp(reg.artifacts.read_parquet(version.storage_uri))
    with reg.artifacts.placing(tmp, version.storage_uri):
        pass
    assert Path(str(path) + ".dvc").exists() and _mode(path) == 0o444


def test_pytest_cleanup_can_delete_a_store(sqlite_registry, tmp_path):
    """Read-only files in writable folders: their owner (an unprivileged user when the tests run as
    root) deletes the store with a plain ``rmtree`` — stricter than pytest's temporary-folder
    cleanup, which also makes folders writable and retries."""
    reg = sqlite_registry
    register_prefs(reg, tmp_path)
    store = Path(reg.artifacts.root)
    assert any(_mode(p) == 0o444 for p in store.rglob("*.parquet"))
    if os.geteuid() != 0:
        shutil.rmtree(store)
    else:  # root ignores file modes: delete a copy (modes kept) as an unprivileged owner
        nobody = 65534
        store = Path(tempfile.mkdtemp()) / "store"
        shutil.copytree(reg.artifacts.root, store, symlinks=True)
        for p in [store.parent, store, *store.rglob("*")]:
            os.lchown(p, nobody, nobody)
        assert any(_mode(p) == 0o444 for p in store.rglob("*.parquet"))
        pid = os.fork()  # a child that drops root (the interpreter itself is not readable by nobody)
        if pid == 0:
            try:
                os.setgid(nobody)
                os.setuid(nobody)
                shutil.rmtree(store)
            finally:
                os._exit(0 if not store.exists() else 1)
        assert os.waitpid(pid, 0)[1] == 0
        store.parent.rmdir()
    assert not store.exists()


# ----------------------------------------------------------------------------- verified on load
def test_a_rewritten_version_is_refused_when_loaded(sqlite_registry, tmp_path):
    """Old code: loading B@1 returned A's rows once B's Parquet file had been overwritten."""
    from registry.services.datasets import load_table
    from registry.services.store_maintenance import _VERIFIED

    reg = sqlite_registry
    a = register_prefs(reg, tmp_path)
    b = _other_prefs(reg, tmp_path)
    _VERIFIED.clear()  # a fresh process
    _overwrite(reg.artifacts.path(b.storage_uri), reg.artifacts.path(a.storage_uri))
    with pytest.raises(IntegrityError) as caught:
        load_table(reg, b.ref)
    message = str(caught.value)
    assert caught.value.exit_code == 8
    assert b.ref in message and b.storage_uri in message and "store verify" in message and "store pull" in message
    assert load_table(reg, a.ref).num_rows == len(PREFS)


def test_the_check_runs_once_per_process_per_file(sqlite_registry, tmp_path, monkeypatch):
    from registry.services import store_maintenance
    from registry.services.datasets import load_table

    reg = sqlite_registry
    v = register_prefs(reg, tmp_path)
    store_maintenance._VERIFIED.clear()
    # registration left a check marker (it hashed these rows); without it, as for a copied file:
    shutil.rmtree(reg.artifacts.root / store_maintenance.VERIFIED_DIR, ignore_errors=True)
    calls = []
    real = store_maintenance.version_digest
    monkeypatch.setattr(store_maintenance, "version_digest", lambda *a: calls.append(1) or real(*a))
    for _ in range(3):
        load_table(reg, v.ref)
    assert len(calls) == 1
    path = reg.artifacts.path(v.storage_uri)
    before = path.stat()
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes())  # rewritten, its modification time then put back: checked again
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    load_table(reg, v.ref)
    assert len(calls) == 2


def test_rewritten_predictions_are_refused_when_loaded(runs_registry):
    from registry.services.evaluation import load_predictions
    from registry.services.store_maintenance import _VERIFIED

    reg = runs_registry
    first, second = reg.store.list_runs()[:2]
    assert first.predictions_uri != second.predictions_uri
    _VERIFIED.clear()
    _overwrite(reg.artifacts.path(first.predictions_uri), reg.artifacts.path(second.predictions_uri))
    with pytest.raises(IntegrityError, match=f"run {first.id}.*{first.predictions_uri}"):
        load_predictions(reg, first)
    assert load_predictions(reg, second).num_rows > 0


# ----------------------------------------------------------------------------- verify
def test_verify_passes_on_a_clean_store(runs_registry, tmp_path):
    from registry.services.evaluators import register_checkpoint
    from registry.services.store_maintenance import verify_store

    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "w.safetensors").write_bytes(b"weights")
    register_checkpoint(runs_registry, "stored", kind="llm-judge", path=folder)
    result = verify_store(runs_registry)
    assert result.ok and result.checked == 1 + 3 + 1, result.problems  # version, 3 predictions, 1 folder
    assert result.to_dict() == {"ok": True, "checked": 5, "problems": []}


def test_verify_finds_every_kind_of_damage(runs_registry, tmp_path):
    from registry.services.evaluators import register_checkpoint
    from registry.services.store_maintenance import verify_store

    reg = runs_registry
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "w.safetensors").write_bytes(b"weights")
    ckpt, _ = register_checkpoint(reg, "stored", kind="llm-judge", path=folder)
    version = reg.store.get_version("my-prefs")
    runs = reg.store.list_runs()
    _overwrite(reg.artifacts.path(runs[0].predictions_uri), reg.artifacts.path(runs[1].predictions_uri))
    reg.artifacts.path(runs[2].predictions_uri).unlink()
    os.chmod(reg.artifacts.path(version.storage_uri), 0o644)
    reg.artifacts.path(version.storage_uri).write_bytes(b"PAR1 truncated")
    (reg.artifacts.path(ckpt.uri) / "extra.json").write_text("{}")
    result = verify_store(reg)
    found = {(p.kind, p.ref, p.problem) for p in result.problems}
    assert not result.ok and found == {
        ("predictions", f"run {runs[0].id}", "changed"), ("predictions", f"run {runs[2].id}", "missing"),
        ("dataset", version.ref, "unreadable"), ("checkpoint", ckpt.ref, "changed")}


def test_verify_sees_a_version_with_other_rows(sqlite_registry, tmp_path):
    from registry.services.store_maintenance import verify_store

    reg = sqlite_registry
    a, b = register_prefs(reg, tmp_path), _other_prefs(reg, tmp_path)
    _overwrite(reg.artifacts.path(b.storage_uri), reg.artifacts.path(a.storage_uri))
    (problem,) = verify_store(reg).problems
    assert (problem.kind, problem.ref, problem.path, problem.problem) == ("dataset", b.ref, b.storage_uri, "changed")


# ----------------------------------------------------------------------------- gc
def test_gc_removes_old_tmp_leftovers_only(sqlite_registry):
    from registry.services.store_maintenance import collect_garbage

    reg = sqlite_registry
    tmp = reg.artifacts.root / "tmp"
    (tmp / "old.parquet").write_bytes(b"x")
    (tmp / "old-folder" / "c").mkdir(parents=True)
    (tmp / "old-folder" / "c" / "w.safetensors").write_bytes(b"w")
    os.chmod(tmp / "old-folder" / "c" / "w.safetensors", 0o444)
    _age(tmp / "old.parquet", 2 * HOUR)
    _age(tmp / "old-folder", 2 * HOUR)
    (tmp / "young.parquet").write_bytes(b"being written")
    dry = collect_garbage(reg, dry_run=True)
    assert dry.tmp == ("old-folder", "old.parquet") and (tmp / "old.parquet").exists()
    done = collect_garbage(reg)
    assert done.tmp == ("old-folder", "old.parquet") and sorted(os.listdir(tmp)) == ["young.parquet"]


def test_opening_a_registry_sweeps_old_tmp_leftovers(sqlite_registry):
    from registry.services.app import RegistryContext

    reg = sqlite_registry
    tmp = reg.artifacts.root / "tmp"
    (tmp / "killed.parquet").write_bytes(b"x")
    _age(tmp / "killed.parquet", 2 * HOUR)
    (tmp / "live.parquet").write_bytes(b"y")
    RegistryContext.open(reg.settings).close()
    assert sorted(os.listdir(tmp)) == ["live.parquet"]


def _place_without_commit(reg, table: pa.Table, relpath: str) -> None:
    """A registration killed after its file was placed and tracked, before its database commit."""
    tmp = reg.artifacts.write_parquet_tmp(table)
    with reg.artifacts.placing(tmp, relpath):
        pass


def test_gc_removes_an_orphan_with_its_pointer_and_cache_object(runs_registry):
    from registry.services.store_maintenance import collect_garbage, verify_store

    reg = runs_registry
    before = store_files(reg)
    cache_before = sorted(p for p in (reg.artifacts.root / ".dvc" / "cache").rglob("*") if p.is_file())
    relpath = reg.artifacts.relpath_for("datasets", "f" * 64, ".parquet")
    _place_without_commit(reg, pa.table({"x": [1, 2, 3]}), relpath)
    assert set(store_files(reg)) - set(before) == {relpath, relpath + ".dvc"}
    assert collect_garbage(reg).removed == 0  # young: perhaps a live registration about to commit
    dry = collect_garbage(reg, grace_s=0, dry_run=True)
    assert dry.orphans == (relpath,) and len(dry.cache_objects) == 1 and reg.artifacts.exists(relpath)
    done = collect_garbage(reg, grace_s=0)
    assert done.orphans == (relpath,) and done.cache_objects == dry.cache_objects
    assert store_files(reg) == before
    assert sorted(p for p in (reg.artifacts.root / ".dvc" / "cache").rglob("*") if p.is_file()) == cache_before
    assert verify_store(reg).ok
    assert collect_garbage(reg, grace_s=0).removed == 0


def test_gc_removes_an_orphan_checkpoint_folder(sqlite_registry, tmp_path):
    from registry.adapters.artifacts.store import folder_files
    from registry.services.evaluators import register_checkpoint
    from registry.services.store_maintenance import collect_garbage, verify_store

    reg = sqlite_registry
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "w.safetensors").write_bytes(b"kept weights")
    (kept / "config.json").write_text('{"shared": true}')
    ckpt, _ = register_checkpoint(reg, "kept", kind="llm-judge", path=kept)
    before = store_files(reg)
    cache = reg.artifacts.root / ".dvc" / "cache"
    cache_before = sorted(p for p in cache.rglob("*") if p.is_file())
    orphan = tmp_path / "orphan"
    orphan.mkdir()
    (orphan / "w.safetensors").write_bytes(b"orphan weights")
    (orphan / "config.json").write_text('{"shared": true}')  # the same bytes as a kept checkpoint's file
    relpath = reg.artifacts.relpath_for("checkpoints", "e" * 64, "")
    with reg.artifacts.staging_folder(folder_files(orphan)) as (staged, _):
        reg.artifacts.place_folder(staged, relpath)
    reg.artifacts.track(relpath)  # killed here, before the database row
    reg.artifacts.protect(relpath)
    done = collect_garbage(reg, grace_s=0)
    assert done.orphans == (relpath,) and len(done.cache_objects) == 2  # its listing and its own weights
    assert store_files(reg) == before and sorted(p for p in cache.rglob("*") if p.is_file()) == cache_before
    assert verify_store(reg).ok and reg.artifacts.exists(ckpt.uri)


def test_gc_after_a_sigkill_between_placing_and_commit(sqlite_registry, tmp_path):
    """A real kill: a process places a Parquet file, then dies by SIGKILL before any commit."""
    from registry.services.store_maintenance import collect_garbage

    reg = sqlite_registry
    register_prefs(reg, tmp_path)
    before = store_files(reg)
    code = (
        "import os, signal, pyarrow as pa\n"
        "from registry.services.app import RegistryContext\n"
        "from registry.config import Settings\n"
        f"reg = RegistryContext.open(Settings.from_env(home={str(reg.settings.home)!r}, db_url={reg.settings.db_url!r}, "
        f"store={str(reg.settings.store)!r}, dvc_remote={reg.settings.dvc_remote!r}))\n"
        "tmp = reg.artifacts.write_parquet_tmp(pa.table({'x': [1]}))\n"
        "with reg.artifacts.placing(tmp, 'datasets/ab/' + 'ab' * 32 + '.parquet'):\n"
        "    left = reg.artifacts.write_parquet_tmp(pa.table({'y': [2]}))  # a second write, in flight\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    left = set(store_files(reg)) - set(before)
    assert {p.split("/")[0] for p in left} == {"datasets", "tmp"}
    done = collect_garbage(reg, grace_s=0)
    assert len(done.orphans) == 1 and len(done.tmp) == 1 and len(done.cache_objects) == 1
    assert store_files(reg) == before


def test_gc_refuses_a_negative_grace(sqlite_registry):
    from registry.errors import InvalidInput
    from registry.services.store_maintenance import collect_garbage

    with pytest.raises(InvalidInput, match="grace"):
        collect_garbage(sqlite_registry, grace_s=-1)
