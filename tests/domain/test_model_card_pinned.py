"""The model card's YAML front matter (written with PyYAML) parses to the same content as the
hand-written YAML it replaced, and the card's body is unchanged (``model_card_pinned.json``).

One value differs on purpose: the hand-written YAML wrote ``lr: 3e-05``, which YAML 1.1 (PyYAML,
the Hub) reads as the *string* "3e-05"; PyYAML writes ``3.0e-05``, the number."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from registry.domain.training import LoRAConfig, Mixture, ModelCardInfo, TrainConfig, render_model_card

PINNED = Path(__file__).with_name("model_card_pinned.json")


def _mixture() -> Mixture:
    return Mixture.from_dict({"name": "mix: \"odd\" name", "version": 3, "max_rows_per_dataset": 50,
                              "components": [{"dataset": "faireval", "weight": 2.5}, {"dataset": "summac-factcc"}],
                              "held_out": ["llmbar-natural", "mtbench-human"]})


DATASETS = [
    {"dataset": "faireval", "version": 1, "content_hash": "ab" * 32, "task_type": "pairwise", "rows": 24,
     "weight": 0.7142857142857143},
    {"dataset": "summac-factcc", "version": 2, "content_hash": "cd" * 32, "task_type": "classification", "rows": 50,
     "weight": 1},
]


def cards() -> dict[str, str]:
    """Cards of both training methods, with odd strings, numbers YAML could misread and empty fields."""
    encoder = ModelCardInfo(
        autorater="scorer: v2 — “café”", base_model="sentence-transformers/all-MiniLM-L6-v2", mixture=_mixture(),
        datasets=DATASETS, config=TrainConfig(seed=7, lr=3e-05, max_steps=12, shuffle_labels=True, threads=None),
        metrics={"loss_pairwise": 0.123456789, "rows_per_second": 1234.5, "steps": 12, "seconds": 1e-07},
        eval_metrics=[{"dataset": "llmbar-natural", "metric": "accuracy", "value": 0.4912345678, "ci_low": 0.39,
                       "ci_high": 0.59, "n": 100},
                      {"dataset": "mtbench-human", "metric": "accuracy_3way", "value": 1, "ci_low": 1.0,
                       "ci_high": 1.0, "n": 3}],
        checkpoint_sha256="0" * 64, parent=None, code_revision="1.0")
    lora = ModelCardInfo(
        autorater="j", base_model="tiny@1", mixture=_mixture(), datasets=DATASETS[:1],
        config=LoRAConfig(target_modules=("q_proj", "lm_head"), lr=2e-4), metrics={"final_loss": 0.3},
        method="causal-lm-lora", parent="j@1", code_revision=None)
    return {"encoder": render_model_card(encoder), "lora": render_model_card(lora)}


def _split(card: str) -> tuple[dict, str]:
    _, front, body = card.split("---\n", 2)
    return yaml.safe_load(front), body


def test_model_card_front_matter_and_body_pinned():
    want = json.loads(PINNED.read_text())
    for name, card in cards().items():
        front, body = _split(card)
        assert card.startswith("---\n")
        assert json.loads(json.dumps(front)) == want[name]["front"], name
        assert body == want[name]["body"], name
    encoder = _split(cards()["encoder"])[0]
    assert encoder["autorater_registry"]["parent"] == "" and encoder["autorater_registry"]["training"]["threads"] is None
    assert encoder["model-index"][0]["results"][0]["metrics"][0] == {"type": "accuracy", "value": 0.491235}
    assert encoder["autorater_registry"]["training"]["lr"] == 3e-05      # a number, not the text "3e-05"


if __name__ == "__main__":
    PINNED.write_text(json.dumps({name: dict(zip(("front", "body"), _split(card))) for name, card in cards().items()},
                                 indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {PINNED}")
