"""Training rules of the domain (no torch, no registry): mixtures and their errors, row allocation,
tail-patch weights, the quick probe metric and the training config's checks."""

from __future__ import annotations

import math

import pytest

from registry.domain.training import (
    Mixture,
    PatchDelta,
    TrainConfig,
    allocate_rows,
    quick_metric,
    tail_patch_weights,
)
from registry.errors import InvalidInput
from tests.conftest import tiny_mixture


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


def test_allocation_is_proportional_and_water_fills():
    assert allocate_rows({"a": 100, "b": 100}, {"a": 1, "b": 3}, 40) == {"a": 10, "b": 30}
    # a small component gives its unused share to the others
    assert allocate_rows({"a": 5, "b": 1000, "c": 1000}, {"a": 1, "b": 1, "c": 1}, 65) == {"a": 5, "b": 30, "c": 30}
    assert allocate_rows({"a": 5, "b": 7}, {"a": 1, "b": 1}, 100) == {"a": 5, "b": 7}
    assert allocate_rows({"a": 5, "b": 7}, {"a": 1, "b": 1}, None) == {"a": 5, "b": 7}
    odd = allocate_rows({"a": 50, "b": 50, "c": 50}, {"a": 1, "b": 1, "c": 1}, 100)
    assert sum(odd.values()) == 100 and max(odd.values()) - min(odd.values()) == 1


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
