"""A fully cached re-run (issue 12, item 2): every judgment and the inputs' hashes kept, so the run
reads only the example ids, looks every row up (repeated inputs too) and writes one slot after the
other straight into the predictions file (no spill file). Its predictions must be byte for byte
those of the run that judged them (so that run's metric records are reused)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

WMT = "wmt19-kk-en"  # pointwise, with repeated inputs


def _registry(home: Path):
    from registry.config import Settings
    from registry.services.app import init_registry

    s = Settings.from_env(home=str(home), db_url=f"sqlite:///{home / 'registry.db'}", store=str(home / "store"),
                          dvc_remote=str(home / "remote"))
    return init_registry(s)


def _chunk(rng, n: int, slot: int) -> pa.Table:
    from registry.services.evaluation import PREDICTION_SCHEMA

    return pa.table({
        "example_id": pa.array([f"ex{rng.integers(1 << 30)}" for _ in range(n)]),
        "order": pa.array(np.full(n, slot, np.int8)), "sample": pa.array(np.zeros(n, np.int16)),
        "verdict": pa.array(rng.choice(["A", "B", "tie"], n)), "score": pa.array(rng.random(n)),
        "prob_a": pa.nulls(n, pa.float64()), "parsed": pa.array(np.ones(n, bool)), "raw": pa.nulls(n, pa.string()),
        "prompt_tokens": pa.array(np.zeros(n, np.int32)), "completion_tokens": pa.array(np.zeros(n, np.int32)),
        "seconds": pa.array(np.zeros(n)),
    }, schema=PREDICTION_SCHEMA)


def test_slots_written_one_after_the_other_give_the_spilled_file(tmp_path, monkeypatch):
    from registry.services import streaming
    from registry.services.streaming import PredictionWriter

    monkeypatch.setattr(streaming, "ROW_GROUP_ROWS", 700)  # several row groups, one across the slots
    rng = np.random.default_rng(5)
    chunks = [[_chunk(rng, n, slot) for n in (300, 450, 1)] for slot in range(3)]
    spilled = PredictionWriter(tmp_path / "a", 3, buffer_bytes=1 << 20)
    for k in range(3):                      # chunk by chunk, every slot: slots 1 and 2 spilled
        for slot in range(3):
            spilled.write(slot, chunks[slot][k])
    direct = PredictionWriter(tmp_path / "b", 3, buffer_bytes=1 << 20)
    for slot in range(3):                   # slot by slot, each straight into the file
        if slot:
            direct.next_slot()
        for k in range(3):
            direct.write(slot, chunks[slot][k])
    a, b = spilled.close(), direct.close()
    assert a.read_bytes() == b.read_bytes()
    assert not list((tmp_path / "b").glob("*.arrow")) and not list((tmp_path / "a").glob("*.arrow"))

    late = PredictionWriter(tmp_path / "c", 2, buffer_bytes=1 << 20)
    late.write(1, chunks[1][0])             # slot 1 spilled: it can no longer go straight into the file
    with pytest.raises(RuntimeError):
        late.next_slot()
    late.discard()


def test_a_cached_rerun_with_repeated_inputs_writes_the_judged_file(tmp_path, data_root, monkeypatch):
    from registry.services import datasets as svc
    from registry.services import evaluation, streaming
    from registry.services.evaluation import load_predictions, run_evaluation
    from registry.services.evaluators import ensure_baselines
    from registry.services.store_maintenance import _VERIFIED

    reg = _registry(tmp_path / "home")
    try:
        svc.register_all(reg, data_root, only={WMT})
        ensure_baselines(reg, minilm=False)
        judged = run_evaluation(reg, "random", WMT, seed=2, n_boot=40, chunk_rows=1000)
        assert judged.n_executed > 0
        passes = []
        real = streaming._passes

        def counted(pf, rows, light, slots, writer):
            passes.append(light)
            yield from real(pf, rows, light, slots, writer)

        monkeypatch.setattr(streaming, "_passes", counted)
        _VERIFIED.clear()                   # a new process: the check marker and the sidecar on disk
        with monkeypatch.context() as m:    # metric records scored again: the same records
            m.setattr(evaluation, "reusable_scores", lambda *a, **k: None)
            again = run_evaluation(reg, "random", WMT, seed=2, n_boot=40, chunk_rows=1000)
        assert passes == [True]             # only the example ids read: every judgment was cached
        assert again.predictions_sha256 == judged.predictions_sha256
        assert (again.n_executed, again.n_cached) == (0, judged.n_executed)
        key = sorted((m.name, m.slice, m.value, m.ci_low, m.ci_high, m.n) for m in judged.metrics
                     if m.name != "time_per_1000")
        assert sorted((m.name, m.slice, m.value, m.ci_low, m.ci_high, m.n) for m in again.metrics
                      if m.name != "time_per_1000") == key

        # another evaluator on the same version: its judgments are missing, so the kept inputs are
        # de-duplicated again (each repeated input judged once): as on a registry without the sidecar
        longer = run_evaluation(reg, "longer", WMT, seed=2, n_boot=40, chunk_rows=1000)
        assert passes[1:] == [True, False]  # a light pass, stopped at the first missing judgment
        fresh = _registry(tmp_path / "fresh")
        try:
            svc.register_all(fresh, data_root, only={WMT})
            ensure_baselines(fresh, minilm=False)
            alone = run_evaluation(fresh, "longer", WMT, seed=2, n_boot=40, chunk_rows=1000)
            got, want = load_predictions(reg, longer), load_predictions(fresh, alone)
        finally:
            fresh.close()
        timed = [c for c in got.column_names if c != "seconds"]   # the judge's own time differs
        assert got.select(timed).equals(want.select(timed))
        assert (longer.n_executed, longer.n_cached) == (alone.n_executed, alone.n_cached)
    finally:
        reg.close()
