"""Unified multitask format, mixtures, row allocation, shuffled labels and tail-patch weights
(no torch; real registered rows from ../shared/data)."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from registry.domain.training import (
    Mixture,
    PatchDelta,
    TrainConfig,
    allocate_rows,
    classification_polarity,
    quick_metric,
    render_text,
    shuffle_targets,
    tail_patch_weights,
)
from registry.errors import InvalidInput
from registry.services.datasets import load_table
from registry.services.training import build_training_set, dataset_examples
from tests.training.conftest import tiny_mixture


# --------------------------------------------------------------------------- unified format
def test_pairwise_rows_become_bradley_terry_targets(catalog):
    version, rows = dataset_examples(catalog, "faireval")
    table = load_table(catalog, version.ref)
    assert len(rows) == version.row_count == table.num_rows
    labels = table.column("label").to_pylist()
    assert {r.task_type for r in rows} == {"pairwise"} and all(len(r.responses) == 2 for r in rows)
    assert [r.target for r in rows] == [{"A": 1.0, "B": 0.0, "tie": 0.5}[x] for x in labels]
    first = table.slice(0, 1).to_pylist()[0]
    assert rows[0].example_id == first["example_id"] and rows[0].responses == (first["response_a"],
                                                                               first["response_b"])
    text, target = render_text(rows[0])
    assert first["response_b"] in text and target == labels[0]


def test_pointwise_scores_are_normalized_by_the_scale(catalog):
    version, rows = dataset_examples(catalog, "bagel-quality")
    table = load_table(catalog, version.ref).to_pylist()
    assert len(rows) == len(table)
    for r, raw in zip(rows, table):
        assert r.target == pytest.approx((raw["score"] - raw["scale_min"]) / (raw["scale_max"] - raw["scale_min"]))
        assert 0.0 <= r.target <= 1.0
    assert min(r.target for r in rows) < 0.3 < 0.7 < max(r.target for r in rows)


def test_classification_targets_mean_acceptable(catalog):
    version, rows = dataset_examples(catalog, "summac-factcc")
    assert version.labels == ("consistent", "inconsistent")
    assert all(r.target == (1.0 if r.label == "consistent" else 0.0) for r in rows)
    assert {r.target for r in rows} == {0.0, 1.0}
    # the "bad" label may come first: the target still means acceptable
    assert classification_polarity(("hallucinated", "not_hallucinated")) == ("not_hallucinated", "hallucinated")
    assert classification_polarity(("flagged", "not_flagged")) == ("not_flagged", "flagged")
    assert classification_polarity(("x", "y"), positive_label="y") == ("y", "x")
    with pytest.raises(InvalidInput, match="positive_label"):
        classification_polarity(("x", "y"), positive_label="z")
    with pytest.raises(InvalidInput, match="exactly two"):
        classification_polarity(("a", "b", "c"))
    _, flipped = dataset_examples(catalog, "summac-factcc", positive_label="inconsistent")
    assert [r.target for r in flipped] == [1.0 - r.target for r in rows]


# --------------------------------------------------------------------------- mixtures
def test_mixture_round_trips_and_pins_versions(tmp_path):
    m = Mixture.from_dict({"components": ["faireval", {"dataset": "bagel-quality", "version": 1, "weight": 0.5}],
                           "held_out": ["llmbar-natural"], "max_rows_per_dataset": 10, "total_rows": 15})
    assert [c.dataset for c in m.components] == ["faireval", "bagel-quality@1"]
    assert Mixture.from_dict(m.to_dict()) == m
    path = tmp_path / "m.yaml"
    import yaml

    path.write_text(yaml.safe_dump(m.to_dict()))
    assert Mixture.from_yaml(path) == m


@pytest.mark.parametrize(("data", "field"), [
    ({"components": [{"dataset": "a"}], "held_out": ["a"]}, "held_out"),
    ({"components": [{"dataset": "a", "weight": 0}]}, "components[0].weight"),
    ({"components": [{"dataset": "a"}, {"dataset": "b", "weight": -1}]}, "components[1].weight"),
    ({"components": [{"dataset": "a", "weight": "heavy"}]}, "components[0].weight"),
    ({"components": [{"dataset": "a", "weight": math.nan}]}, "components[0].weight"),
    ({"components": [{"dataset": "a"}, {"dataset": "a@1"}]}, "components[1].dataset"),
    ({"components": [{"dataset": "a", "max_rows": 0}]}, "components[0].max_rows"),
    ({"components": [{"dataset": "a", "wieght": 2}]}, "components[0].wieght"),
    ({"components": []}, "components"),
    ({"components": ["a"], "total_rows": -5}, "total_rows"),
])
def test_mixture_errors_name_the_field(data, field, tmp_path):
    with pytest.raises(InvalidInput) as err:
        Mixture.from_dict(data)
    assert err.value.field == field and f"field {field!r}" in str(err.value)
    import yaml

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InvalidInput) as err:
        Mixture.from_yaml(path)
    assert err.value.file == str(path) and err.value.field == field


def test_unknown_datasets_are_named_with_suggestions(catalog):
    with pytest.raises(InvalidInput) as err:
        build_training_set(catalog, tiny_mixture(components=[{"dataset": "faireval"}, {"dataset": "bagel-qualty"}]))
    assert err.value.field == "components[1].dataset" and "bagel-quality" in str(err.value)
    with pytest.raises(InvalidInput) as err:
        build_training_set(catalog, tiny_mixture(held_out=["llmbar-natual"]))
    assert err.value.field == "held_out[0]" and "llmbar-natural" in str(err.value)


def test_allocation_is_proportional_and_water_fills():
    assert allocate_rows({"a": 100, "b": 100}, {"a": 1, "b": 3}, 40) == {"a": 10, "b": 30}
    # a small component gives its unused share to the others
    assert allocate_rows({"a": 5, "b": 1000, "c": 1000}, {"a": 1, "b": 1, "c": 1}, 65) == {"a": 5, "b": 30, "c": 30}
    assert allocate_rows({"a": 5, "b": 7}, {"a": 1, "b": 1}, 100) == {"a": 5, "b": 7}
    assert allocate_rows({"a": 5, "b": 7}, {"a": 1, "b": 1}, None) == {"a": 5, "b": 7}
    odd = allocate_rows({"a": 50, "b": 50, "c": 50}, {"a": 1, "b": 1, "c": 1}, 100)
    assert sum(odd.values()) == 100 and max(odd.values()) - min(odd.values()) == 1


def test_training_set_caps_weights_and_seed(catalog):
    ts = build_training_set(catalog, tiny_mixture(), seed=0)
    rows = {d["dataset"]: d["rows"] for d in ts.datasets}
    assert rows == {"faireval": 8, "summac-factcc": 8, "bagel-quality": 8}
    assert Counter(ex.dataset for ex in ts.examples) == Counter(rows)
    assert all(d["content_hash"] == catalog.store.get_version(d["ref"]).content_hash for d in ts.datasets)
    assert ts.held_out[0]["ref"] == "llmbar-natural@1"
    weighted = build_training_set(catalog, tiny_mixture(max_rows_per_dataset=None, total_rows=40), seed=0)
    got = {d["dataset"]: d["rows"] for d in weighted.datasets}
    assert got == {"faireval": 20, "summac-factcc": 10, "bagel-quality": 10}  # weights 2:1:1
    same = build_training_set(catalog, tiny_mixture(), seed=0)
    other = build_training_set(catalog, tiny_mixture(), seed=1)
    assert [e.example_id for e in same.examples] == [e.example_id for e in ts.examples]
    assert [e.example_id for e in other.examples] != [e.example_id for e in ts.examples]


def test_shuffled_labels_keep_the_distribution_but_not_the_pairing(catalog):
    ts = build_training_set(catalog, tiny_mixture(max_rows_per_dataset=60), seed=0)
    shuffled = shuffle_targets(ts.examples, seed=0)
    assert [e.example_id for e in shuffled] == [e.example_id for e in ts.examples]
    for ds in ("faireval", "summac-factcc", "bagel-quality"):
        before = sorted(e.target for e in ts.examples if e.dataset == ds)
        after = sorted(e.target for e in shuffled if e.dataset == ds)
        assert before == after
    changed = sum(a.target != b.target or a.responses != b.responses for a, b in zip(ts.examples, shuffled))
    assert changed > len(shuffled) // 3
    assert shuffle_targets(ts.examples, seed=0) == shuffled
    flagged = build_training_set(catalog, tiny_mixture(max_rows_per_dataset=60), seed=0, shuffle_labels=True)
    assert flagged.examples == shuffled


# --------------------------------------------------------------------------- tail-patch weights, metrics, config
def test_tail_patch_weights_keep_positive_deltas_only():
    deltas = [PatchDelta("a", 0.5, 0.56, 10), PatchDelta("b", 0.5, 0.52, 10), PatchDelta("c", 0.5, 0.4, 10),
              PatchDelta("d", 0.5, 0.5, 10)]
    w = tail_patch_weights(deltas)
    assert w == pytest.approx({"a": 0.75, "b": 0.25}) and sum(w.values()) == pytest.approx(1.0)
    assert tail_patch_weights(deltas, min_delta=0.03) == pytest.approx({"a": 1.0})
    none = tail_patch_weights([PatchDelta("a", 0.5, 0.4, 1), PatchDelta("b", 0.5, 0.5, 1)])
    assert none == {"a": 0.5, "b": 0.5}
    m = tiny_mixture().with_weights({"faireval": 0.75, "bagel-quality": 0.25}, total_rows=12)
    assert [(c.name, c.weight) for c in m.components] == [("faireval", 0.75), ("bagel-quality", 0.25)]
    assert m.total_rows == 12


def test_quick_metric():
    assert quick_metric("pairwise", [1.0, -2.0, 0.0, 3.0, 1.0], [1.0, 0.0, 1.0, 0.0, 0.5]) == ("accuracy", 0.625)
    name, rho = quick_metric("pointwise", [1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4])
    assert name == "spearman" and rho == pytest.approx(1.0)
    assert quick_metric("pointwise", [4, 3, 2, 1], [0.1, 0.2, 0.3, 0.4])[1] == pytest.approx(-1.0)
    # balanced accuracy: recall of class 1 = 1/2, of class 0 = 1
    assert quick_metric("classification", [1.0, -1.0, -1.0], [1.0, 1.0, 0.0]) == ("balanced_accuracy", 0.75)


def test_train_config_errors_name_the_field():
    for kwargs, field in (({"batch_size": 0}, "batch_size"), ({"max_length": 4}, "max_length"),
                          ({"lr": 0}, "lr"), ({"train_layers": -1}, "train_layers"), ({"lora": True}, "lora"),
                          ({"max_steps": 0}, "max_steps")):
        with pytest.raises(InvalidInput) as err:
            TrainConfig(**kwargs)
        assert err.value.field == field
