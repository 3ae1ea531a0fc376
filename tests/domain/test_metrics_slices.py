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


def test_sliced_has_no_cap_and_reports_what_it_skipped():
    from registry.domain.metrics.slices import MAX_LISTED_SKIPS, sliced

    rng = np.random.default_rng(0)
    n = 60 * 12 + 5
    cats = [f"c{i // 12:02d}" for i in range(60 * 12)] + ["tiny"] * 3 + [None] * 2     # 60 slices of 12, one of 3
    labels = rng.integers(0, 2, n).astype(np.int8)
    verdicts = rng.integers(0, 2, n).astype(np.int8)
    out, report = sliced(lambda idx: accuracy(labels[idx], verdicts[idx]), cats, field="topic", min_size=10)
    assert len(out) == 60 and out[0].slice == "topic=c00" and out[0].n == 12
    assert out[7].value == pytest.approx(np.mean(labels[84:96] == verdicts[84:96]))
    assert (report.computed, report.missing, report.min_size) == (60, 2, 10)
    assert report.as_dict()["skipped"] == [{"slice": "topic=tiny", "n": 3, "reason": "fewer than 10 examples"}]
    # an unbounded number of skipped slices is counted in full, listed up to a bound
    _, many = sliced(lambda idx: accuracy(labels[idx], verdicts[idx]), list(range(n)), field="row", min_size=2)
    stored = many.as_dict()
    assert many.computed == 0 and stored["skipped_total"] == n
    assert len(stored["skipped"]) == MAX_LISTED_SKIPS and stored["skipped_not_listed"] == n - MAX_LISTED_SKIPS
