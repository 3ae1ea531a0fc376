"""``retrain_autorater`` as a real Prefect run: train the MiniLM scorer briefly on a real mixture,
register it, evaluate it on held-out data, and move the champion alias by the champion rule."""

from __future__ import annotations

import pytest

from flows import retrain_autorater
from registry.services import datasets as svc
from tests.flows.helpers import DATA, succeeded

pytestmark = pytest.mark.slow

TINY = {"seed": 0, "max_steps": 2, "batch_size": 4, "max_length": 24, "train_layers": 0}


def test_retrain_trains_evaluates_and_applies_the_champion_rule(flow_sqlite_registry, data_root, tmp_path):
    reg = flow_sqlite_registry
    for name in ("faireval", "llmbar-adversarial-manual", "summac-factcc"):
        source, path = DATA[name]
        svc.register_dataset_version(reg, name=name, source=source, path=data_root / path)
    mixture = {"name": "tiny", "components": [{"dataset": "faireval"}], "held_out": ["llmbar-adversarial-manual"]}
    held_out = ["llmbar-adversarial-manual", "summac-factcc"]

    first = retrain_autorater(autorater="scorer", mixture=mixture, config=TINY, datasets=held_out, n_boot=50,
                              model_cards_dir=str(tmp_path / "cards"))
    assert first["checkpoint"] == "scorer@1" and first["training"]["created"]
    assert first["training"]["rows_used"] > 0
    ev = first["evaluator"]
    assert succeeded(reg) == {(ev, "llmbar-adversarial-manual@1"): 1, (ev, "summac-factcc@1"): 1}
    assert first["decision"]["promoted"] and "no champion yet" in first["decision"]["reason"]
    assert "champion" in reg.store.get_checkpoint("scorer@1").aliases
    assert (tmp_path / "cards" / "scorer.md").is_file()
    ckpt = reg.store.get_checkpoint("scorer@1")
    assert ckpt.lineage["mixture"]["name"] == "tiny" and ckpt.lineage["datasets"][0]["dataset"].startswith("faireval")

    # a second checkpoint from the first, trained on shuffled labels: the rule compares it with the champion
    second = retrain_autorater(autorater="scorer", mixture=mixture, config={**TINY, "seed": 1, "shuffle_labels": True},
                               parent="scorer@1", datasets=held_out, n_boot=50)
    assert second["checkpoint"] == "scorer@2"
    assert len(second["evaluation"]["succeeded"]) == 2
    decision = second["decision"]
    assert decision["previous_champion"] == "scorer@1" and len(decision["shared"]) == 2
    champion = "scorer@2" if decision["promoted"] else "scorer@1"
    assert "champion" in reg.store.get_checkpoint(champion).aliases
    if decision["promoted"]:
        assert decision["candidate_score"] > decision["champion_score"] and not decision["open_regressions"]
    else:
        assert "candidate" in reg.store.get_checkpoint("scorer@2").aliases
    # every regression the flow reported is one of the candidate's runs against a baseline of scorer@1
    for r in second["evaluation"]["regressions"]:
        assert r["evaluator"] == second["evaluator"] and r["baseline_kind"] in ("parent_checkpoint", "champion")
    assert set(decision["open_regressions"]) == {r["id"] for r in second["evaluation"]["regressions"]}


def test_retrain_with_lora_adapts_a_generative_judge(flow_sqlite_registry, data_root, tmp_path):
    from registry.adapters.backends.tiny import build_tiny_causal_lm
    from registry.services.evaluators import register_checkpoint

    reg = flow_sqlite_registry
    for name in ("faireval", "llmbar-adversarial-manual"):
        source, path = DATA[name]
        svc.register_dataset_version(reg, name=name, source=source, path=data_root / path)
    base, _ = register_checkpoint(reg, "tiny-judge", kind="llm-judge", path=build_tiny_causal_lm(tmp_path / "m"))
    mixture = {"name": "pairs", "components": [{"dataset": "faireval"}], "held_out": ["llmbar-adversarial-manual"],
               "max_rows_per_dataset": 8}
    out = retrain_autorater(autorater="tiny-judge-lora", mixture=mixture, parent=base.ref, method="lora",
                            config={"max_steps": 2, "batch_size": 4, "max_length": 96, "target_modules": ["q_proj"]},
                            protocol="pairwise-base", datasets=["llmbar-adversarial-manual"], n_boot=20)
    assert out["checkpoint"] == "tiny-judge-lora@1" and out["training"]["metrics"]["steps"] == 2
    ckpt = reg.store.get_checkpoint("tiny-judge-lora@1")
    assert ckpt.kind == "llm-judge" and ckpt.lineage["method"] == "causal-lm-lora" and ckpt.lineage["parent"] == base.ref
    assert succeeded(reg) == {(out["evaluator"], "llmbar-adversarial-manual@1"): 1}
    assert out["decision"]["promoted"]          # the first checkpoint of its autorater, no open regression
