"""Training sets from registered data (no torch; real registered rows from ../shared/data): the
unified multitask format, mixtures resolved against the registry, row caps and weights, shuffled
labels."""

from __future__ import annotations

from collections import Counter

import pytest

from registry.domain.training import classification_polarity, render_text, shuffle_targets
from registry.errors import InvalidInput
from registry.services.datasets import load_table
from registry.services.training import build_training_set, dataset_examples
from tests.conftest import tiny_mixture


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


def test_unknown_datasets_are_named_with_suggestions(catalog):
    with pytest.raises(InvalidInput) as err:
        build_training_set(catalog, tiny_mixture(components=[{"dataset": "faireval"}, {"dataset": "bagel-qualty"}]))
    assert err.value.field == "components[1].dataset" and "bagel-quality" in str(err.value)
    with pytest.raises(InvalidInput) as err:
        build_training_set(catalog, tiny_mixture(held_out=["llmbar-natual"]))
    assert err.value.field == "held_out[0]" and "llmbar-natural" in str(err.value)


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
