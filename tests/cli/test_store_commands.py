"""``autorater store verify`` and ``autorater store gc`` (the "Hold up" issue), and a changed stored
file refused where a command loads it."""

from __future__ import annotations

import json
import os
import shutil
import time

import pyarrow as pa

from tests.conftest import store_files


def _rewrite_predictions(reg) -> int:
    first, second = reg.store.list_runs()[:2]
    target = reg.artifacts.path(first.predictions_uri)
    os.chmod(target, 0o644)
    shutil.copyfile(reg.artifacts.path(second.predictions_uri), target)
    return first.id


def test_store_verify_ok_then_damaged(runs_registry, cli_at):
    cli = cli_at(runs_registry)
    ok = cli("store", "verify")
    assert ok.exit_code == 0 and "ok: 4 stored file(s) match" in ok.output
    run_id = _rewrite_predictions(runs_registry)
    bad = cli("store", "verify")
    assert bad.exit_code == 8, bad.output
    assert f"run {run_id}" in bad.output and "changed" in bad.output and "store pull" in bad.output
    data = json.loads(cli("store", "verify", "--json").output)
    assert data["ok"] is False and data["checked"] == 4
    assert [(p["kind"], p["ref"], p["problem"]) for p in data["problems"]] == [("predictions", f"run {run_id}", "changed")]


def test_a_command_loading_a_rewritten_version_exits_8(runs_registry, cli_at, tmp_path):
    from registry.services.store_maintenance import _VERIFIED

    reg = runs_registry
    version = reg.store.get_version("my-prefs")
    path = reg.artifacts.path(version.storage_uri)
    os.chmod(path, 0o644)
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    pq.write_table(table.slice(0, 2), path)  # two rows fewer: still a valid Parquet file
    _VERIFIED.clear()
    result = cli_at(reg)("dataset", "export", "my-prefs", "--out", str(tmp_path / "out.parquet"))
    assert result.exit_code == 8 and "my-prefs@1" in result.output and "store verify" in result.output
    assert not (tmp_path / "out.parquet").exists()


def test_store_gc(runs_registry, cli_at):
    reg = runs_registry
    cli = cli_at(reg)
    before = store_files(reg)
    tmp = reg.artifacts.write_parquet_tmp(pa.table({"x": [1]}))  # a write killed ten minutes ago
    old = time.time() - 600  # (every command sweeps what is over an hour old when it opens the registry)
    os.utime(tmp, (old, old))
    relpath = reg.artifacts.relpath_for("predictions", "c" * 64, ".parquet")
    placed = reg.artifacts.write_parquet_tmp(pa.table({"y": [2]}))
    with reg.artifacts.placing(placed, relpath):  # killed before its run was committed (young)
        pass
    assert json.loads(cli("store", "gc", "--json").output)["removed"] == 0  # an hour's grace by default
    dry = json.loads(cli("store", "gc", "--dry-run", "--grace", "60", "--json").output)
    assert dry["tmp"] == [tmp.name] and dry["orphans"] == [] and dry["dry_run"] is True and tmp.exists()
    out = cli("store", "gc", "--grace", "0")
    assert out.exit_code == 0, out.output
    assert f"removed temporary {tmp.name}" in out.output and f"removed orphan {relpath}" in out.output
    assert "removed 3 item(s)" in out.output  # tmp file, orphan (+ pointer), its cache object
    assert store_files(reg) == before
    assert cli("store", "verify").exit_code == 0
    again = json.loads(cli("store", "gc", "--grace", "0", "--json").output)
    assert again["removed"] == 0


def test_store_gc_refuses_a_negative_grace(runs_registry, cli_at):
    result = cli_at(runs_registry)("store", "gc", "--grace", "-5")
    assert result.exit_code == 2


def test_store_gc_marks_abandoned_runs_failed(runs_registry, cli_at):
    """``store gc`` also reaps: a ``running`` row whose process died (nobody holds its pair's claim)
    is marked failed as abandoned and named in the output and the JSON (``--dry-run``: named, left
    running); a live run (its claim held) is left alone; the grace period does not apply."""
    from registry.adapters.store.sqlalchemy_store import SqlAlchemyStore
    from registry.services.claims import ABANDONED

    reg = runs_registry
    cli = cli_at(reg)
    store = reg.store
    first, second = store.list_runs()[:2]
    dead = store.start_run(first.evaluator, first.dataset, seed=0)  # as a SIGKILLed `eval run` leaves it
    live = store.start_run(second.evaluator, second.dataset, seed=0)
    other = SqlAlchemyStore(reg.settings.db_url)  # the live run's process, holding its claim
    try:
        with other.claim_pair(second.evaluator, second.dataset) as got:
            assert got
            dry = json.loads(cli("store", "gc", "--dry-run", "--json").output)
            assert dry["reaped"] == [dead.id] and dry["removed"] == 0
            assert store.get_run(dead.id).status == "running"
            out = cli("store", "gc")  # default grace (an hour): the reaping does not wait for it
            assert out.exit_code == 0, out.output
            assert f"marked 1 abandoned run(s) failed (their process died while running): {dead.id}" in out.output
            assert (store.get_run(dead.id).status, store.get_run(dead.id).error) == ("failed", ABANDONED)
            assert store.get_run(live.id).status == "running"
        again = json.loads(cli("store", "gc", "--json").output)  # the holder is gone now
        assert again["reaped"] == [live.id] and store.get_run(live.id).status == "failed"
        assert json.loads(cli("store", "gc", "--json").output)["reaped"] == []
    finally:
        other.close()


def test_store_gc_removes_stale_evaluation_caches(runs_registry, cli_at):
    """A sidecar of no registered version and a marker vouching for no file: listed under their own
    keys by ``--dry-run --json`` (the other keys as before), removed by ``store gc``; the live ones stay."""
    reg = runs_registry
    cli = cli_at(reg)
    root = reg.artifacts.root
    live = [p for p in store_files(reg) if p.startswith(("derived/", ".verified/"))]
    assert any(p.startswith(".verified/") for p in live)       # the runs checked their files
    sidecar = root / "derived" / f"inputs-{'a' * 16}-{'b' * 24}.arrow"
    sidecar.parent.mkdir(exist_ok=True)
    sidecar.write_bytes(b"of a version deleted")
    marker = root / ".verified" / ("c" * 64)
    marker.write_text('{"path": "datasets/zz/gone.parquet", "expected": "0"}')
    assert json.loads(cli("store", "gc", "--json").output)["removed"] == 0   # young
    dry = json.loads(cli("store", "gc", "--dry-run", "--grace", "0", "--json").output)
    assert {"removed", "tmp", "orphans", "cache_objects", "reaped", "dry_run", "grace_s"} <= set(dry)
    assert dry["sidecars"] == [f"derived/{sidecar.name}"] and dry["markers"] == [f".verified/{marker.name}"]
    assert dry["removed"] == 2 and sidecar.exists() and marker.exists()
    out = cli("store", "gc", "--grace", "0")
    assert out.exit_code == 0, out.output
    assert f"removed stale input sidecar derived/{sidecar.name}" in out.output
    assert f"removed stale check marker .verified/{marker.name}" in out.output and "removed 2 item(s)" in out.output
    assert not sidecar.exists() and not marker.exists()
    assert [p for p in store_files(reg) if p.startswith(("derived/", ".verified/"))] == live
