"""Per-category slices of any metric."""

from __future__ import annotations

import numpy as np
import pytest

from registry.domain.metrics import accuracy, by_slice, pairwise_accuracy_many, reife_metrics

A, B = 0, 1


def test_accuracy_per_category():
    labels = np.array([A, A, B, B, A, B], np.int8)
    verdicts = np.array([A, B, B, B, A, A], np.int8)
    cats = ["natural", "natural", "natural", "adversarial", "adversarial", None]
    out = by_slice(accuracy, cats, labels, verdicts, include_all=True)
    assert [m.slice for m in out] == ["all", "category=adversarial", "category=natural"]
    assert [m.value for m in out] == pytest.approx([4 / 6, 1.0, 2 / 3])
    assert [m.n for m in out] == [6, 2, 3]


def test_dict_results_many_runs_and_min_size():
    labels = np.array([A, B, A, B], np.int8)
    v = np.array([[A, B, B, B], [A, A, A, A]], np.int8)
    cats = np.array(["x", "x", "y", "y"], dtype=object)
    many = by_slice(pairwise_accuracy_many, cats, labels, v, v, field="dataset")
    assert [m.slice for m in many] == ["dataset=x", "dataset=y"]
    assert many[0].values.tolist() == [1.0, 0.5] and many[1].values.tolist() == [0.5, 0.5]
    out = by_slice(reife_metrics, cats, labels, v[0], v[0], min_size=3)
    assert out == []
    out = by_slice(reife_metrics, cats, labels, v[0], v[0], include=("accuracy", "alpha"))
    assert [(m.name, m.slice) for m in out] == [("accuracy", "category=x"), ("alpha", "category=x"),
                                                ("accuracy", "category=y"), ("alpha", "category=y")]
