"""Real Prefect runs of the flows (temporary Prefect server) on real data and real evaluators."""

from __future__ import annotations

import json

import pytest

from flows import meta_evaluate, nightly_sweep, register_dataset
from registry.services import datasets as svc
from registry.services.evaluators import ensure_baselines
from tests.conftest import db_counts, store_files
from tests.flows.helpers import DATA, compatible, run_counts, succeeded

pytestmark = pytest.mark.slow


def _register(reg, data_root, *names):
    refs = {}
    for name in names:
        source, path = DATA[name]
        v = svc.register_dataset_version(reg, name=name, source=source, path=data_root / path).version
        refs[v.ref] = v.task_type
    return refs


def test_register_dataset_flow_registers_once_and_failed_validation_leaves_nothing(
        flow_sqlite_registry, data_root, tmp_path):
    reg = flow_sqlite_registry
    source, path = DATA["llmbar-natural"]
    state = register_dataset(name="llmbar-natural", source=source, path=str(data_root / path), return_state=True)
    assert state.is_completed()
    out = state.result()
    assert out["created"] and out["ref"] == "llmbar-natural@1" and out["row_count"] == 100
    again = register_dataset(name="llmbar-natural", source=source, path=str(data_root / path))
    assert not again["created"] and again["content_hash"] == out["content_hash"]
    counts, files = db_counts(reg), store_files(reg)

    bad = tmp_path / "bad.json"   # label "C" is not a pairwise label: the spec validation rejects it
    bad.write_text(json.dumps([{"id": "e1", "q": "Say hi.", "a1": "hi", "a2": "hello", "win": "A"},
                               {"id": "e2", "q": "Count.", "a1": "1 2 3", "a2": "1 2", "win": "C"}]))
    failed = register_dataset(
        name="prefs", source="generic", path=str(bad), task_type="pairwise",
        options={"mapping": {"example_id": "id", "instruction": "q", "response_a": "a1", "response_b": "a2",
                             "label": "win"}},
        return_state=True)
    assert failed.is_failed()
    with pytest.raises(Exception, match="label"):
        failed.result()
    assert db_counts(reg) == counts and store_files(reg) == files
    assert [d.name for d in reg.store.list_datasets()] == ["llmbar-natural"]


def test_meta_evaluate_runs_only_missing_pairs(flow_registry, data_root):
    reg = flow_registry
    refs = _register(reg, data_root, "llmbar-adversarial-manual", "summac-factcc", "qags-cnndm-consistency")
    evaluators = ensure_baselines(reg, minilm=False)
    expected = compatible(evaluators, refs)
    # always-first / always-second judge no pointwise data: the matrix is not the full product
    assert len(expected) < len(evaluators) * len(refs)

    first = meta_evaluate(n_boot=50)
    assert first["planned"] == len(expected) and not first["failed"]
    assert {(s["evaluator"], s["dataset"]) for s in first["succeeded"]} == expected
    assert succeeded(reg) == {pair: 1 for pair in expected}

    second = meta_evaluate(n_boot=50)
    assert second["planned"] == 0 and second["succeeded"] == []
    assert sum(run_counts(reg).values()) == len(expected)

    # a new version of one dataset: only its column is due again
    source, path = DATA["llmbar-natural"]
    new = svc.register_dataset_version(reg, name="llmbar-adversarial-manual", source=source,
                                       path=data_root / path).version
    assert new.ref == "llmbar-adversarial-manual@2"
    third = meta_evaluate(n_boot=50)
    assert {(s["evaluator"], s["dataset"]) for s in third["succeeded"]} == {
        (e.name, new.ref) for e in evaluators}
    assert sum(succeeded(reg).values()) == len(expected) + len(evaluators)


def test_meta_evaluate_filters_and_nightly_sweep_completes_the_matrix(flow_sqlite_registry, data_root):
    reg = flow_sqlite_registry
    refs = _register(reg, data_root, "llmbar-adversarial-manual", "faireval", "summac-factcc")
    evaluators = ensure_baselines(reg, minilm=False)

    only = meta_evaluate(evaluators=["longer"], datasets=["faireval"], n_boot=50)
    assert [(s["evaluator"], s["dataset"]) for s in only["succeeded"]] == [("longer", "faireval@1")]
    by_ckpt = meta_evaluate(checkpoints=["random@1"], n_boot=50)
    assert {(s["evaluator"], s["dataset"]) for s in by_ckpt["succeeded"]} == {("random", r) for r in refs}

    sweep = nightly_sweep(n_boot=50)
    expected = compatible(evaluators, refs)
    assert len(sweep["succeeded"]) == len(expected) - 1 - len(refs)
    assert succeeded(reg) == {pair: 1 for pair in expected}
