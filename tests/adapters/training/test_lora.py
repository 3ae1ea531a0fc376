"""LoRA fine-tuning of a causal-LM judge (peft) on registered real data: a tiny random chat model
built here learns to answer the registry's protocol prompts (pairwise-base, pointwise-rating,
classification-direct) in their formats; the merged safetensors checkpoint is registered with its
lineage and parent, loads in the transformers backend and is meta-evaluated by the llm-judge
evaluator like any other judge."""

from __future__ import annotations

import json

import pytest
import yaml

from registry.domain.training import LoRAConfig, Mixture, UnifiedExample, judge_example
from registry.errors import InvalidInput

TINY_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head")
"""A random tiny model's output head caps its logits (≈ ±1 over 600 tokens), so its head is adapted too;
real LLMs use the default ``all-linear``."""


def _mixture(max_rows: int = 24) -> Mixture:
    return Mixture.from_dict({"name": "judge-tiny", "max_rows_per_dataset": max_rows,
                              "components": [{"dataset": "faireval"}, {"dataset": "summac-factcc"},
                                             {"dataset": "bagel-quality"}],
                              "held_out": ["llmbar-natural"]})


@pytest.fixture(scope="module")
def judge_base(catalog, tmp_path_factory):
    """A tiny random chat model (hidden 128 × 4 layers) registered as an llm-judge checkpoint."""
    from registry.adapters.backends.tiny import build_tiny_causal_lm
    from registry.services.evaluators import register_checkpoint

    folder = build_tiny_causal_lm(tmp_path_factory.mktemp("lora-base") / "m", hidden_size=128, layers=4, seed=3)
    return register_checkpoint(catalog, "lora-base", kind="llm-judge", path=folder)[0]


def test_judge_examples_render_each_protocols_answer():
    pair = UnifiedExample("pairwise", "d", "e1", "Say hi.", ("hi", "bye"), 1.0, "A")
    values, answer = judge_example(pair)
    assert (values["response_a"], values["response_b"], answer) == ("hi", "bye", "A")
    values, answer = judge_example(pair, swap=True)        # the answer follows the order
    assert (values["response_a"], values["response_b"], answer) == ("bye", "hi", "B")
    assert judge_example(UnifiedExample("pairwise", "d", "e2", "q", ("a", "b"), 0.5, "tie")) is None
    point = UnifiedExample("pointwise", "d", "e3", "src", ("out",), 0.75, "4.333333", (1.0, 5.0), "coherence")
    values, answer = judge_example(point)
    assert answer == "Rating: 4.3" and (values["scale_min"], values["scale_max"], values["criterion"]) == \
        ("1", "5", "coherence")
    cls = UnifiedExample("classification", "d", "e4", "doc", ("claim",), 0.0, "inconsistent")
    values, answer = judge_example(cls, labels=["consistent", "inconsistent"])
    assert answer == "inconsistent" and values["labels"] == "consistent, inconsistent"
    with pytest.raises(InvalidInput, match="scale"):
        judge_example(UnifiedExample("pointwise", "d", "e5", "src", ("out",), 0.5, "3"))


def test_lora_config_errors_name_the_field():
    for bad, field in (({"rank": 0}, "rank"), ({"dropout": 1.0}, "dropout"), ({"dtype": "float16"}, "dtype"),
                       ({"max_length": 4}, "max_length"), ({"target_modules": ()}, "target_modules")):
        with pytest.raises(InvalidInput) as err:
            LoRAConfig(**bad)
        assert err.value.field == field


def test_training_items_use_the_protocol_prompts(catalog):
    from registry.services.training import build_training_set, judge_items

    ts = build_training_set(catalog, _mixture(6), seed=0)
    items = judge_items(catalog, ts, both_orders=True)
    by_task = {t: [i for i in items if i.task_type == t] for t in ("pairwise", "pointwise", "classification")}
    n_pairs = sum(1 for ex in ts.examples if ex.task_type == "pairwise" and ex.label != "tie")
    assert len(by_task["pairwise"]) == 2 * n_pairs and {i.answer for i in by_task["pairwise"]} <= {"A", "B"}
    assert all(i.answer.startswith("Rating: ") for i in by_task["pointwise"]) and by_task["pointwise"]
    assert {i.answer for i in by_task["classification"]} <= {"consistent", "inconsistent"}
    assert "Select the output, A or B" in by_task["pairwise"][0].messages[-1]["content"]
    assert "Allowed labels: " in by_task["classification"][0].messages[-1]["content"]
    one = judge_items(catalog, ts, both_orders=False, seed=0)
    assert len([i for i in one if i.task_type == "pairwise"]) == n_pairs


def test_lora_is_deterministic_and_refuses_non_judges(catalog, judge_base):
    from registry.services.evaluators import checkpoint_folder
    from registry.services.training import train_llm_judge

    cfg = LoRAConfig(seed=0, max_steps=3, batch_size=4, lr=1e-2, max_length=128, target_modules=TINY_TARGETS)
    first = train_llm_judge(catalog, autorater="lora-det", base=judge_base.ref, mixture=_mixture(6), config=cfg)
    again = train_llm_judge(catalog, autorater="lora-det", base=judge_base.ref, mixture=_mixture(6), config=cfg)
    assert again.checkpoint_sha256 == first.checkpoint_sha256  # same merged weights, config and tokenizer
    assert (checkpoint_folder(catalog, again.checkpoint) / "adapter" / "adapter_model.safetensors").read_bytes() == \
        (checkpoint_folder(catalog, first.checkpoint) / "adapter" / "adapter_model.safetensors").read_bytes()
    other = train_llm_judge(catalog, autorater="lora-det", base=judge_base.ref, mixture=_mixture(6),
                            config=LoRAConfig(**{**cfg.to_dict(), "seed": 1}))
    assert other.checkpoint_sha256 != first.checkpoint_sha256
    assert first.metrics["steps"] == 3 and first.metrics["trainable_parameters"] < first.metrics["total_parameters"]
    folder = checkpoint_folder(catalog, first.checkpoint)
    assert (folder / "adapter" / "adapter_model.safetensors").is_file()
    assert json.loads((folder / "adapter" / "adapter_config.json").read_text())["r"] == 8
    assert not [p for p in folder.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl")]
    # the base's tokenizer and chat template are kept byte for byte
    base = checkpoint_folder(catalog, judge_base)
    assert (folder / "tokenizer.json").read_bytes() == (base / "tokenizer.json").read_bytes()

    from registry.services.evaluators import ensure_baselines

    encoder = next(e for e in ensure_baselines(catalog, minilm=True) if e.kind == "encoder-scorer")
    with pytest.raises(InvalidInput, match="LoRA trains a local llm-judge") as err:
        train_llm_judge(catalog, autorater="lora-bad", base=encoder.checkpoint, mixture=_mixture(6), config=cfg)
    assert err.value.field == "base"


def _parse_rate(reg, run) -> float:
    from registry.services.evaluation import load_predictions

    parsed = load_predictions(reg, run).column("parsed").to_pylist()
    return sum(bool(p) for p in parsed) / len(parsed)


@pytest.mark.slow  # ≈ 1 min of training on 2 cores, then six evaluation runs
def test_lora_judge_learns_every_protocol_format_and_is_meta_evaluated(catalog, judge_base, tmp_path):
    from registry.services.evaluation import run_evaluation
    from registry.services.evaluators import create_evaluator
    from registry.services.training import train_llm_judge

    cfg = LoRAConfig(seed=0, epochs=20, batch_size=8, lr=5e-3, max_length=192, target_modules=TINY_TARGETS)
    res = train_llm_judge(catalog, autorater="lora-judge", base=judge_base.ref, mixture=_mixture(), config=cfg,
                          model_cards_dir=tmp_path / "cards")
    assert res.metrics["final_loss"] < 0.5 * res.metrics["first_loss"]
    assert res.rows_used == 72 and res.metrics["rows_trained"] > res.rows_used
    ckpt = res.checkpoint
    assert ckpt.kind == "llm-judge" and ckpt.lineage["method"] == "causal-lm-lora"
    assert ckpt.lineage["parent"] == judge_base.ref and ckpt.lineage["config"]["rank"] == 8
    assert {d["dataset"] for d in ckpt.lineage["datasets"]} == {"faireval", "summac-factcc", "bagel-quality"}
    card = (tmp_path / "cards" / "lora-judge.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["pipeline_tag"] == "text-generation" and "lora" in front["tags"] and "LoRA" in card

    config = {"max_tokens": 6, "max_input_tokens": 192}
    rates = {}
    for ref in (judge_base.ref, ckpt.ref):
        for protocol, dataset in (("pairwise-base", "llmbar-natural"), ("classification-direct", "summac-factcc"),
                                  ("pointwise-rating", "bagel-quality")):
            ev, _ = create_evaluator(catalog, checkpoint=ref, protocol=protocol, config=config)
            run = run_evaluation(catalog, evaluator=ev.name, dataset=dataset, n_boot=50)
            assert run.status == "succeeded"
            rates[ref, protocol] = _parse_rate(catalog, run)
            if ref == ckpt.ref and protocol == "pairwise-base":
                natural = run
    # the random base writes nothing any parser reads; the trained judge answers in each protocol's format
    assert all(rates[judge_base.ref, p] < 0.2 for p in ("pairwise-base", "classification-direct",
                                                        "pointwise-rating")), rates
    assert all(rates[ckpt.ref, p] > 0.9 for p in ("pairwise-base", "classification-direct",
                                                  "pointwise-rating")), rates
    # held-out LLMBar Natural (never trained on) is meta-evaluated with CIs like any judge
    acc = natural.metric("accuracy")
    assert acc.ci_low is not None and 0.0 <= acc.ci_low <= acc.value <= acc.ci_high <= 1.0


def test_cli_train_lora_and_its_errors(cli, registry, data_root, tmp_path):
    from registry.adapters.backends.tiny import build_tiny_causal_lm
    from registry.services.datasets import register_dataset_version

    register_dataset_version(registry, name="faireval", source="llmbar",
                             path=data_root / "princeton-nlp__LLMBar/Dataset/Processed/FairEval/dataset.json")
    model = build_tiny_causal_lm(tmp_path / "m")
    assert cli("checkpoint", "register", "tj", "--kind", "llm-judge", "--path", str(model)).exit_code == 0
    mix = tmp_path / "mix.yaml"
    mix.write_text("name: m\ncomponents: [{dataset: faireval}]\nmax_rows_per_dataset: 4\n")
    out = cli("train", "lora", "--base", "tj@1", "--mixture", str(mix), "--autorater", "tj-lora", "--steps", "2",
              "--batch-size", "2", "--max-length", "96", "--target-modules", "q_proj,v_proj,lm_head", "--json")
    assert out.exit_code == 0, out.output
    info = json.loads(out.stdout)
    assert info["checkpoint"] == "tj-lora@1" and info["parent"] == "tj@1" and info["metrics"]["steps"] == 2
    shown = registry.store.get_checkpoint("tj-lora@1")
    assert shown.kind == "llm-judge" and shown.lineage["config"]["target_modules"] == ["q_proj", "v_proj", "lm_head"]
    assert "tj-lora" in cli("checkpoint", "list").stdout
    bad = cli("train", "lora", "--base", "tj@1", "--mixture", str(mix), "--autorater", "x", "--rank", "0")
    assert bad.exit_code == 2 and "rank" in bad.output
    missing = cli("train", "lora", "--base", "nope@1", "--mixture", str(mix), "--autorater", "x")
    assert missing.exit_code == 3 and "nope" in missing.output


def test_lora_model_card_front_matter_is_yaml():
    import yaml

    from registry.domain.training import ModelCardInfo, render_model_card

    info = ModelCardInfo(autorater="j", base_model="tiny@1", mixture=_mixture(), datasets=[
        {"dataset": "faireval", "version": 1, "content_hash": "ab" * 32, "task_type": "pairwise", "rows": 24,
         "weight": 1.0}], config=LoRAConfig(target_modules=("q_proj", "lm_head")), metrics={"final_loss": 0.3},
        method="causal-lm-lora")
    card = render_model_card(info)
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["pipeline_tag"] == "text-generation" and "lora" in front["tags"]
    assert front["autorater_registry"]["training"]["target_modules"] == ["q_proj", "lm_head"]
    assert "modules q_proj, lm_head" in card and "`pairwise-base` (pairwise)" in card
