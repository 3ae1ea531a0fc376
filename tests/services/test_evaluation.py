"""Running evaluators through the engine: judgments, cache, predictions, metrics, runs."""

from __future__ import annotations

import json

import pytest

from registry.errors import InvalidInput
from registry.services import datasets as svc
from registry.services.evaluation import load_predictions, run_evaluation
from registry.services.evaluators import create_evaluator, ensure_baselines, register_checkpoint
from registry.services.queries import best_evaluator, leaderboard

NATURAL = "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/dataset.json"


def _input_keys(registry, ref):
    from registry.domain.judgments import example_input_hashes

    table = svc.load_table(registry, ref)
    return example_input_hashes({c: table.column(c).to_pylist() for c in table.column_names}, "pairwise")


@pytest.fixture
def baselines(registry, data_root):
    svc.register_all(registry, data_root, only={"llmbar-natural", "summeval-coherence", "summac-factcc"})
    return ensure_baselines(registry, minilm=False)


def test_heuristics_on_each_task_type(registry, baselines):
    always_first = run_evaluation(registry, "always-first", "llmbar-natural", n_boot=200)
    # always-first picks position 1 in both orders: accuracy is exactly ½, agreement 0, position bias 1
    assert always_first.metric("accuracy").value == pytest.approx(0.5)
    assert always_first.metric("positional_agreement").value == 0.0
    assert always_first.metric("prob_prefer_first").value == pytest.approx(1.0)
    assert always_first.n_judgments == 200 and always_first.n_executed == 200
    longer = run_evaluation(registry, "longer", "llmbar-natural", n_boot=200)
    assert longer.metric("positional_agreement").value == pytest.approx(1.0)
    assert longer.metric("prob_prefer_longer").value == pytest.approx(1.0)
    table = svc.load_table(registry, "llmbar-natural")
    preds = load_predictions(registry, longer)
    assert preds.num_rows == 200 and set(preds.column("order").to_pylist()) == {0, 1}
    # verdicts are stored in the original orientation: the longer response wins in both orders
    longer_side = {r["example_id"]: ("A" if len(r["response_a"]) > len(r["response_b"]) else "B")
                   for r in table.to_pylist() if len(r["response_a"]) != len(r["response_b"])}
    for r in preds.to_pylist():
        if r["example_id"] in longer_side:
            assert r["verdict"] == longer_side[r["example_id"]]
    pointwise = run_evaluation(registry, "longer", "summeval-coherence", n_boot=100)
    assert pointwise.metric("spearman") is not None and pointwise.metric("system_spearman") is not None
    clf = run_evaluation(registry, "always-first", "summac-factcc", n_boot=100)
    assert clf.metric("balanced_accuracy").value == pytest.approx(0.5)
    with pytest.raises(InvalidInput, match="cannot judge pointwise"):
        run_evaluation(registry, "always-first", "summeval-coherence")


def test_rerun_is_fully_cached_and_identical(registry, baselines):
    first = run_evaluation(registry, "random", "llmbar-natural", n_boot=100)
    second = run_evaluation(registry, "random", "llmbar-natural", n_boot=100)
    assert second.n_executed == 0 and second.n_cached == first.n_executed == 200
    assert second.predictions_sha256 == first.predictions_sha256
    assert second.metric("accuracy").value == first.metric("accuracy").value
    prov = second.provenance
    assert prov["evaluator_sha256"] and prov["dataset_sha256"] and prov["libraries"]["numpy"]
    assert prov["code_revision"] is None or len(prov["code_revision"].split("+")[0]) == 40


def test_new_version_with_one_percent_changed_rows_runs_only_those(registry, baselines, data_root, tmp_path):
    svc.register_all(registry, data_root, only={"wmt19-kk-en"})
    base = run_evaluation(registry, "longer", "wmt19-kk-en", n_boot=50)
    old_keys = set(_input_keys(registry, "wmt19-kk-en@1"))
    assert base.n_judgments == 2 * 9728 and base.n_executed == 2 * len(old_keys)  # repeated inputs judged once
    rows = json.loads((data_root / "neulab__BARTScore/WMT/kk-en/data.json").read_text())
    keys = sorted(rows)[: len(rows) // 100]                     # 1% of the examples (97)
    for k in keys:
        rows[k]["better"]["sys"] = rows[k]["better"]["sys"] + " (post-edited)"
    copy = tmp_path / "data.json"
    copy.write_text(json.dumps(rows))
    v2 = svc.register_dataset_version(registry, name="wmt19-kk-en", source="bartscore-wmt", path=copy)
    assert v2.version.version == 2 and v2.diff["changed"] == len(keys)
    rerun = run_evaluation(registry, "longer", "wmt19-kk-en@2", n_boot=50)
    new_keys = set(_input_keys(registry, "wmt19-kk-en@2"))
    changed = new_keys - old_keys
    assert 0 < len(changed) <= len(keys)
    assert rerun.n_executed == 2 * len(changed)                 # both orders of the changed examples only
    assert rerun.n_cached == 2 * len(new_keys & old_keys)
    assert rerun.dataset == "wmt19-kk-en@2"


def test_label_only_change_rescored_without_rejudging(registry, baselines, data_root, tmp_path):
    run_evaluation(registry, "always-second", "llmbar-natural", n_boot=50)
    raw = json.loads((data_root / NATURAL).read_text())
    raw[0]["label"] = 3 - raw[0]["label"]
    copy = tmp_path / "dataset.json"
    copy.write_text(json.dumps(raw))
    svc.register_dataset_version(registry, name="llmbar-natural", source="llmbar", path=copy)
    rerun = run_evaluation(registry, "always-second", "llmbar-natural@2", n_boot=50)
    assert rerun.n_executed == 0 and rerun.n_cached == 200


def test_failed_run_is_recorded(registry, baselines, monkeypatch):
    from registry.adapters.evaluators import heuristics

    def broken(self, ctx, examples, *, sample=0):
        raise RuntimeError("backend crashed")

    monkeypatch.setattr(heuristics.RandomEvaluator, "judge", broken)
    with pytest.raises(RuntimeError):
        run_evaluation(registry, "random", "llmbar-natural")
    with registry.store.session() as s:
        from registry.adapters.store.orm import SqlEvaluationRun

        run = s.query(SqlEvaluationRun).one()
        assert run.status == "failed" and "backend crashed" in run.error


def test_leaderboard_and_best(registry, baselines):
    for name in ("random", "always-first", "always-second", "longer", "shorter"):
        run_evaluation(registry, name, "llmbar-natural", n_boot=200)
    board = leaderboard(registry, "llmbar-natural", n_boot=200)
    values = [s.value for s in board.standings]
    assert values == sorted(values, reverse=True) and len(values) == 5
    assert board.standings[0].p_value is None
    assert all(s.p_value is not None for s in board.standings[1:])
    best = best_evaluator(registry, task_type="pairwise", n_boot=200)
    assert best.best.evaluator == board.best.evaluator and best.datasets == ("llmbar-natural@1",)
    # over two datasets: macro average, CI over datasets, only evaluators covering both are ranked
    svc.register_all(registry, registry.settings.data_root, only={"faireval"})
    for name in ("random", "longer", "shorter"):
        run_evaluation(registry, name, "faireval", n_boot=100)
    two = best_evaluator(registry, task_type="pairwise", n_boot=200)
    assert two.datasets == ("faireval@1", "llmbar-natural@1")
    assert {s.evaluator for s in two.standings} == {"random", "longer", "shorter"}
    for s in two.standings:
        per_dataset = [leaderboard(registry, d.split("@")[0], n_boot=50) for d in two.datasets]
        values = [next(x.value for x in b.standings if x.evaluator == s.evaluator) for b in per_dataset]
        assert s.value == pytest.approx(sum(values) / 2)


def test_checkpoint_registration_is_content_addressed_and_safe(registry, tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    from safetensors.numpy import save_file
    import numpy as np

    save_file({"w": np.ones((2, 2), dtype=np.float32)}, str(folder / "head.safetensors"))
    c1, created = register_checkpoint(registry, "toy", kind="encoder-scorer", path=folder)
    c2, again = register_checkpoint(registry, "toy", kind="encoder-scorer", path=folder)
    assert created and not again and c1.sha256 == c2.sha256 and c1.version == 1
    assert (registry.artifacts.root / (c1.uri + ".dvc")).exists()
    (folder / "weights.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(InvalidInput, match="pickle"):
        register_checkpoint(registry, "toy", kind="encoder-scorer", path=folder)
    ev1, _ = create_evaluator(registry, checkpoint="toy@1", protocol="score-both-orders", config={"batch_size": 8})
    ev2, created2 = create_evaluator(registry, checkpoint="toy@1", protocol="score-both-orders",
                                     config={"batch_size": 32}, name="other-name")
    assert not created2 and ev1.sha256 == ev2.sha256  # batch size does not change the evaluator hash


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_untrained_minilm_scorer_runs_and_shares_judgments_across_criteria(registry, tmp_path):
    rows = [{"id": f"d{i}", "doc": f"Document number {i} about topic {i % 3}.", "summary": "Short summary " * (i + 1),
             "s": 1 + (i % 5)} for i in range(12)]
    path = tmp_path / "scores.json"
    path.write_text(json.dumps(rows))
    for criterion in ("coherence", "fluency"):
        svc.register_dataset_version(registry, name=f"tiny-{criterion}", source="generic", path=path,
                                     task_type="pointwise",
                                     options={"mapping": {"example_id": "id", "instruction": "doc",
                                                          "response": "summary", "score": "s"},
                                              "scale": (1, 5), "criterion": criterion})
    ensure_baselines(registry, minilm=True)
    first = run_evaluation(registry, "minilm-untrained", "tiny-coherence", n_boot=50)
    assert first.n_executed == 12 and first.status == "succeeded"
    scores = load_predictions(registry, first).column("score").to_pylist()
    assert all(1 <= s <= 5 for s in scores)
    # the scorer reads instruction and response only: the other criterion reuses every judgment
    second = run_evaluation(registry, "minilm-untrained", "tiny-fluency", n_boot=50)
    assert second.n_executed == 0 and second.n_cached == 12
    assert load_predictions(registry, second).column("score").to_pylist() == scores
