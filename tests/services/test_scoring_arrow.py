"""The score step's Arrow paths (registry/services/scoring.py, issue 12 item 2) against the Python-list
paths they stand for: labels, annotator votes, verdicts and slice keys kept as Arrow arrays
(:class:`ArrowValues`), slices grouped by codes, whole-number floats coded by a count, the per-example
judgments from the verdict codes: the same values and the same metric records, bit for bit."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from registry.domain.metrics.slices import groups
from registry.services import scoring as S
from registry.services.standings import RunExamples


def ref_codes(values) -> tuple[np.ndarray, int]:
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        arr = np.where(np.isnan(arr), np.inf, arr)
    _, codes = np.unique(arr, return_inverse=True)
    return codes.astype(np.int64).ravel(), int(codes.max()) + 1 if len(codes) else 0


def test_arrow_values_read_as_the_list():
    arr = pa.array(["a", None, "b", "a", "c"])
    values = S.ArrowValues(arr)
    assert len(values) == 5 and list(values) == arr.to_pylist() and values[2] == "b" and values[-1] == "c"
    assert values == arr.to_pylist() and bool(values) and not bool(S.ArrowValues(pa.array([], pa.string())))
    part = values.at(np.array([4, 0, 1]))
    assert len(part) == 3 and list(part) == ["c", "a", None]
    assert list(part.at(np.array([2, 0]))) == [None, "c"]       # positions compose until read
    assert part.array.to_pylist() == ["c", "a", None]
    assert S._codes(part)[0].tolist() == S._codes(["c", "a", None])[0].tolist()


@pytest.mark.parametrize("values", [
    np.array([0.0, -0.0, 3.0, 1.0, 3.0]), np.array([-5.0, 2.0, 2.0]), np.array([1e17, 1e17 + 16, 1e17]),
    np.array([0.5, 1.0]), np.array([1.0, np.nan]), np.array([np.inf, 1.0]), np.array([7.0]),
    np.array([-(2.0**60), 2.0**60]), np.zeros(0), np.array([2.0, 1.0, 0.0]) * 1e6,
])
def test_codes_of_whole_floats_by_a_count(values):
    got, k = S._codes(values)
    want, k_want = ref_codes(values)
    assert k == k_want and got.dtype == np.int64
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("seed", range(3))
def test_codes_random_floats(seed):
    rng = np.random.default_rng(seed)
    n = 3000
    for values in (np.sign(rng.normal(size=n)), rng.integers(0, 4, n).astype(float),
                   rng.integers(-50, 50, n) * 1.0, rng.integers(0, 3, n) / 2):
        got, k = S._codes(values)
        want, k_want = ref_codes(values)
        assert k == k_want
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("per_row", [
    ["x", "y", None, "x", "", "é", "Y"], [None, None], [], [1, 2, 1, None], ["a", 1, None, "a"],
    [float("nan"), "a", "a"], [True, 1, "1"],
])
def test_slice_groups_are_the_groups_of_the_keys(per_row):
    rows = np.arange(len(per_row))[::-1]
    keys = [per_row[i] for i in rows]
    got, want = S._slice_groups(per_row, rows), groups(keys)
    assert got[1] == want[1] and [v for v, _ in got[0]] == [v for v, _ in want[0]]
    for (_, a), (_, b) in zip(got[0], want[0]):
        np.testing.assert_array_equal(a, b)
    if per_row and all(v is None or isinstance(v, str) for v in per_row):
        arrow = S._slice_groups(S.ArrowValues(pa.array(per_row, pa.string())), rows)
        assert [v for v, _ in arrow[0]] == [v for v, _ in want[0]] and arrow[1] == want[1]


def test_category_slicing_as_arrow_values():
    table = pa.table({"example_id": ["a", "b", "c", "d"], "category": ["x", None, "y", "x"]})
    [(column, values)] = S.resolve_slice_by(table, None)
    assert column == "category" and list(values) == ["x", None, "y", "x"]
    assert S.resolve_slice_by(pa.table({"category": ["x", None, "x"]}), None) == []
    assert S.resolve_slice_by(pa.table({"category": [1, 2]}), None) == [("category", [1, 2])]


def test_tie_labels_test():
    assert S._has_tie_labels(pa.table({"label": ["A", None, "tie"]}))
    assert not S._has_tie_labels(pa.table({"label": ["A", None, "Tie"]}))
    assert not S._has_tie_labels(pa.table({"label": pa.array([None, None], pa.string())}))
    assert not S._has_tie_labels(pa.table({"label": [1, 2]})) and not S._has_tie_labels(pa.table({"x": [1]}))


def _predictions(rng, n: int, samples: int = 1, simple: bool = False) -> tuple[pa.Table, pa.Table]:
    """A dataset and its predictions (``simple``: few verdicts and features, so that the combination of
    the bootstrap's partitions is small enough for counts mode)."""
    ids = [f"e{i}" for i in range(n)]
    pool = ["A", "B"] if simple else ["A", "B", "tie", None, "odd"]
    rows = []
    for order in (0, 1):
        for s in range(samples):
            for i in range(n):
                if rng.random() < 0.97:
                    rows.append({"example_id": ids[i], "order": order, "sample": s,
                                 "verdict": pool[int(rng.integers(0, len(pool)))], "score": None,
                                 "prob_a": float(rng.random()) if rng.random() < 0.2 and not simple else None,
                                 "prompt_tokens": 3, "completion_tokens": 1, "seconds": float(rng.integers(0, 3))})
    categories = ["c1", "c2", "c3", None]
    table = pa.table({"example_id": ids,
                      "label": [pool[int(rng.integers(0, min(3, len(pool))))] for _ in range(n)],
                      "category": [categories[int(rng.integers(0, 4))] for _ in range(n)],
                      "annotator_labels": pa.array([[pool[int(rng.integers(0, min(3, len(pool))))] for _ in range(0 if simple else int(rng.integers(0, 4)))]
                                                    for _ in range(n)], pa.list_(pa.string())),
                      "response_a": ["x" * (10 if simple else int(rng.integers(0, 80))) for _ in range(n)],
                      "response_b": ["- a\n- b" if rng.random() < 0.3 and not simple else "y" * int(rng.choice([10, 50]) if simple else rng.integers(0, 80))
                                     for _ in range(n)]})
    return table, pa.Table.from_pylist(rows)


@pytest.mark.parametrize("samples", [1, 3])
def test_aligned_verdicts_as_arrow_are_the_lists(samples):
    rng = np.random.default_rng(samples)
    table, predictions = _predictions(rng, 400, samples)
    arrays = S.PredictionArrays.from_predictions(table, predictions)
    plain, arrow = S.align_arrays(table.num_rows, arrays), S.align_arrays(table.num_rows, arrays, arrow=True)
    assert all(isinstance(v, S.ArrowValues) for v in arrow.verdict)
    assert [list(v) for v in arrow.verdict] == plain.verdict
    np.testing.assert_array_equal(arrow.rows, plain.rows)


def _records(metrics) -> list:
    return [(r.name, r.slice, r.value, r.ci_low, r.ci_high, r.n, r.extra) for r in metrics]


@pytest.mark.slow
def test_counts_mode_run_scores_the_same_through_the_lists(monkeypatch):
    """A run above LARGE_N with slices in counts mode: the records through the Arrow paths are those
    through the Python lists (labels, annotator labels and verdicts as lists, slice keys grouped in
    Python), and the per-example judgments from the verdict codes are RunExamples.from_aligned's bytes."""
    from registry.domain.metrics.bootstrap import LARGE_N

    rng = np.random.default_rng(0)
    n = 5 * LARGE_N                     # each of the 3 slices (a quarter of the examples each) above LARGE_N
    table, predictions = _predictions(rng, n, simple=True)
    arrow = S.compute_metrics("pairwise", table, predictions, seed=3, n_boot=40)
    assert any(r.slice == "category=c1" for r in arrow)
    align_arrays = S.align_arrays
    monkeypatch.setattr(S, "ARROW_FIELDS", {})
    monkeypatch.setattr(S, "align_arrays", lambda n_rows, arrays, arrow=False: align_arrays(n_rows, arrays))
    def python_groups(per_row, rows):
        keys = list(per_row)
        return groups([keys[i] for i in rows])

    monkeypatch.setattr(S, "_slice_groups", python_groups)
    lists = S.compute_metrics("pairwise", table, predictions, seed=3, n_boot=40)
    assert _records(arrow) == _records(lists)
    al = S.align(table, predictions)
    assert arrow.examples == lists.examples == RunExamples.from_aligned("pairwise", n, al, 3).encode()
