"""The vectorised per-example steps of scoring (registry/services/scoring.py) against the Python code
they replaced, kept here as reference implementations: the same values, bit for bit, on random and
edge-case inputs (empty, all missing, ties, None verdicts, unknown labels, mixed types)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from registry.domain.judgments import FAIL, VERDICT_CODES
from registry.services import scoring as S
from registry.services.scoring import PredictionArrays


# ------------------------------------------------------------------ the replaced Python versions
def ref_codes(values) -> tuple[np.ndarray, int]:
    arr = np.asarray(values)
    if arr.dtype == object or arr.dtype.kind in "US":
        arr = np.array(["\x00" if v is None else str(v) for v in values])
    if arr.dtype.kind == "f":
        arr = np.where(np.isnan(arr), np.inf, arr)
    _, codes = np.unique(arr, return_inverse=True)
    return codes.astype(np.int64).ravel(), int(codes.max()) + 1 if len(codes) else 0


def ref_encode_verdicts(verdicts) -> np.ndarray:
    return np.array([VERDICT_CODES.get(v, FAIL) if v is not None else FAIL for v in verdicts], dtype=np.int8)


def ref_annotator_votes(annotators: list) -> np.ndarray | None:
    lengths = np.fromiter((len(a) if a else 0 for a in annotators), dtype=np.int64, count=len(annotators))
    if not (lengths >= 2).any():
        return None
    votes = np.full((len(annotators), int(lengths.max())), FAIL, dtype=np.int8)
    votes[np.arange(votes.shape[1])[None, :] < lengths[:, None]] = ref_encode_verdicts(
        [v for a in annotators if a for v in a])
    return votes


def ref_coverage_counts(table: pa.Table, arrays: PredictionArrays, task_type: str) -> tuple[int, int]:
    known = arrays.pos >= 0
    any_prediction = np.unique(arrays.pos[known])
    judged = np.unique(arrays.pos[known & S._usable_rows(task_type, arrays)])
    ids = table.column("example_id").to_pylist()
    if len(set(ids)) != len(ids):
        return len({ids[i] for i in any_prediction}), len({ids[i] for i in judged})
    return len(any_prediction), len(judged)


def ref_column_at(table: pa.Table, name: str, rows) -> list:
    if name not in table.column_names:
        return [None] * len(rows)
    values = table.column(name).to_pylist()
    return [values[i] for i in rows]


def same_codes(values) -> None:
    got, k = S._codes(values)
    want, k_want = ref_codes(values)
    assert k == k_want
    assert got.dtype == want.dtype == np.int64
    np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------------------------------ inputs
VERDICTS = ["A", "B", "tie", None, "a", "", "unknown", "Tie", "B "]


def random_verdicts(rng, n: int, pool=VERDICTS) -> list:
    return [pool[i] for i in rng.integers(0, len(pool), n)]


EDGE_LISTS = [
    [], [None], [None, None, None], ["A"], ["A", "A", "A"], ["tie", "A", "B", None, "tie"],
    ["", None, "\x00", "a\x00", "a"],          # numpy's texts drop trailing NULs: "" == "\x00" == None
    ["b", "a", "é", "Z", "ä", "😀", "z"],      # non-ASCII order (code points)
    ["1", "10", "2", None],
    np.array(["B", "A", "A"]), np.array([], dtype="<U1"),
    np.array(["A", None, "B"], dtype=object),
]


# ------------------------------------------------------------------------------------ _codes
@pytest.mark.parametrize("values", EDGE_LISTS, ids=range(len(EDGE_LISTS)))
def test_codes_edge_cases_strings(values):
    same_codes(values)


@pytest.mark.parametrize("values", [
    [1, 2, None], [1, "a", None], [True, False, None], [1.5, float("nan"), None], [b"a", b"b"],
    np.array([3, 1, 3, 7], dtype=np.int64), np.array([], dtype=np.int64), np.array([-2, 5, -2]),
    np.array([2**62, 1, 2**62]), np.array([0, 0, 0], dtype=np.int8), np.array([5], dtype=np.uint64),
    np.array([True, True]), np.array([False, True, False]), np.array([], dtype=bool),
    np.array([0.5, np.nan, -1.0, 0.5]), np.array([np.nan, np.nan]), np.array([-1.0, 0.0, 1.0, 0.0]),
    np.array([b"x", b"y", b"x"]),
], ids=range(18))
def test_codes_edge_cases_other_types(values):
    same_codes(values)


@pytest.mark.parametrize("seed", range(5))
def test_codes_random(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    same_codes(random_verdicts(rng, n))
    same_codes(np.array(random_verdicts(rng, n, ["A", "B", "tie"])))
    same_codes(rng.integers(0, 50, n))
    same_codes(rng.integers(0, 50, n).astype(np.int8))
    same_codes(rng.integers(-5, 5, n))
    same_codes(rng.integers(0, 2**40, n))                  # beyond the counting range: np.unique
    same_codes(rng.integers(0, 2, n).astype(bool))
    same_codes(np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 4, n).astype(float)))


def test_joint_matches_reference():
    rng = np.random.default_rng(7)
    parts = [S._codes(random_verdicts(rng, 500)), S._codes(rng.integers(0, 3, 500)), S._codes(rng.integers(0, 2, 500))]

    def ref_joint(parts):
        code, k = np.zeros(len(parts[0][0]), np.int64), 1
        for c, m in parts:
            code, k = code * m + c, k * m
        return ref_codes(code)[0]

    np.testing.assert_array_equal(S._joint(parts), ref_joint(parts))


# ----------------------------------------------------------------------------- verdict codes
@pytest.mark.parametrize("values", EDGE_LISTS + [[1, "A"], [0, 1], [True, None]], ids=range(len(EDGE_LISTS) + 3))
def test_verdict_codes_edge_cases(values):
    got = S.verdict_codes(values)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, ref_encode_verdicts(values))


@pytest.mark.parametrize("seed", range(5))
def test_verdict_codes_random(seed):
    rng = np.random.default_rng(seed)
    values = random_verdicts(rng, int(rng.integers(1, 5000)))
    np.testing.assert_array_equal(S.verdict_codes(values), ref_encode_verdicts(values))
    np.testing.assert_array_equal(S.verdict_codes(pa.array(values, pa.string())), ref_encode_verdicts(values))


# --------------------------------------------------------------------------- annotator votes
ANNOTATOR_CASES = [
    [], [None], [None, None], [[], []], [["A"], ["B"]],              # none with two annotators: None
    [["A", "B"], None, [], ["tie", None, "A"], ["x", "B", "B", "A"]],
    [[None, None], [None]], [["A", "A"], ["B", "B"]],
]


@pytest.mark.parametrize("annotators", ANNOTATOR_CASES, ids=range(len(ANNOTATOR_CASES)))
def test_annotator_votes_edge_cases(annotators):
    column = pa.array(annotators, pa.list_(pa.string()))
    want = ref_annotator_votes(annotators)
    got = S.annotator_vote_matrix(column)
    if want is None:
        assert got is None
    else:
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("seed", range(4))
def test_annotator_votes_random_and_taken(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 2000))
    annotators = [None if rng.random() < 0.1 else random_verdicts(rng, int(rng.integers(0, 6))) for _ in range(n)]
    column = pa.chunked_array([pa.array(annotators[: n // 2], pa.list_(pa.string())),
                               pa.array(annotators[n // 2:], pa.list_(pa.string()))])
    rows = np.sort(rng.choice(n, size=max(1, n // 3), replace=False))
    for col, values in ((column, annotators), (column.take(pa.array(rows)), [annotators[i] for i in rows])):
        want, got = ref_annotator_votes(values), S.annotator_vote_matrix(col)
        assert (want is None) == (got is None)
        if want is not None:
            np.testing.assert_array_equal(got, want)


def test_annotator_votes_not_lists_falls_back():
    assert S.annotator_vote_matrix(pa.array([None, None], pa.string())) is None


# ------------------------------------------------------------------------------------ column_at
def test_column_at_matches_reference():
    rng = np.random.default_rng(3)
    table = pa.table({"label": random_verdicts(rng, 300), "annotator_labels":
                      [random_verdicts(rng, 3) if i % 4 else None for i in range(300)]})
    for rows in (np.arange(300), np.sort(rng.choice(300, 40, replace=False)), np.zeros(0, np.int64), [5, 5, 0]):
        for name in ("label", "annotator_labels", "missing"):
            assert S.column_at(table, name, rows) == ref_column_at(table, name, rows)


# ------------------------------------------------------------------------------------- coverage
def _arrays(task_type: str, n_rows: int, rng, *, unknown: bool = True) -> tuple[pa.Table, PredictionArrays]:
    ids = [f"e{i}" for i in range(n_rows)]
    m = int(rng.integers(0, 3 * n_rows + 1))
    pred_ids = [ids[i] if (i < n_rows and not (unknown and rng.random() < 0.05)) else "nope"
                for i in rng.integers(0, max(n_rows, 1), m)] if n_rows else ["nope"] * m
    verdict = random_verdicts(rng, m, ["A", "B", "tie", None, "x"])
    score = [None if rng.random() < 0.2 else float(rng.integers(1, 6)) for _ in range(m)]
    prob = [None if rng.random() < 0.5 else float(rng.random()) for _ in range(m)]
    predictions = pa.table({
        "example_id": pa.array(pred_ids, pa.string()), "order": pa.array(rng.integers(0, 2, m), pa.int8()),
        "verdict": pa.array(verdict, pa.string()), "score": pa.array(score, pa.float64()),
        "prob_a": pa.array(prob, pa.float64()), "prompt_tokens": pa.array([1] * m, pa.int64()),
        "completion_tokens": pa.array([2] * m, pa.int64()), "seconds": pa.array([0.5] * m, pa.float64())})
    table = pa.table({"example_id": pa.array(ids, pa.string())})
    return table, PredictionArrays.from_predictions(table, predictions)


@pytest.mark.parametrize("task_type", ["pairwise", "pointwise", "classification"])
@pytest.mark.parametrize("seed", range(4))
def test_coverage_matches_reference(task_type, seed):
    rng = np.random.default_rng(seed)
    for n_rows in (0, 1, 7, 400):
        table, arrays = _arrays(task_type, n_rows, rng)
        got = S._coverage(task_type, table, arrays, 0, [])
        any_n, judged_n = ref_coverage_counts(table, arrays, task_type)
        assert (got.extra["with_predictions"], got.extra["judged"]) == (any_n, judged_n)
        assert got.value == (judged_n / n_rows if n_rows else None)


def test_coverage_repeated_ids_and_no_predictions():
    rng = np.random.default_rng(11)
    table, arrays = _arrays("pairwise", 50, rng)
    dup = pa.table({"example_id": pa.array([f"e{i % 20}" for i in range(50)], pa.string())})
    got = S._coverage("pairwise", dup, arrays, 0, [])
    assert (got.extra["with_predictions"], got.extra["judged"]) == ref_coverage_counts(dup, arrays, "pairwise")
    empty = PredictionArrays.from_predictions(table, pa.table({
        "example_id": pa.array([], pa.string()), "order": pa.array([], pa.int8()), "verdict": pa.array([], pa.string()),
        "score": pa.array([], pa.float64()), "prob_a": pa.array([], pa.float64()),
        "prompt_tokens": pa.array([], pa.int64()), "completion_tokens": pa.array([], pa.int64()),
        "seconds": pa.array([], pa.float64())}))
    got = S._coverage("pairwise", table, empty, 0, [])
    assert (got.extra["with_predictions"], got.extra["judged"], got.value) == (0, 0, 0.0)


# ------------------------------------------------------------------ the run's codes and classes
def _aligned(rng, n: int) -> S.Aligned:
    v = [random_verdicts(rng, n, ["A", "B", "tie", None]) for _ in range(2)]
    return S.Aligned(rows=np.arange(n), verdict=v, score=[np.full(n, np.nan)] * 2,
                     prob_a=[np.where(rng.random(n) < 0.3, rng.random(n), np.nan) for _ in range(2)],
                     seconds=rng.integers(0, 3, n).astype(float), tokens=np.full(n, 7.0))


@pytest.mark.parametrize("seed", range(3))
def test_run_scores_codes_and_classes_match_reference(seed):
    from registry.domain.metrics.builtin import annotator_votes

    rng = np.random.default_rng(seed)
    n = 300
    annotators = [None if i % 7 == 0 else random_verdicts(rng, int(rng.integers(1, 5))) for i in range(n)]
    table = pa.table({"example_id": [f"e{i}" for i in range(n)],
                      "label": random_verdicts(rng, n, ["A", "B", "tie", None, "odd"]),
                      "annotator_labels": pa.array(annotators, pa.list_(pa.string()))})
    feats = {f: (rng.integers(0, 900, n).astype(float), rng.random(n) < 0.3) for f in ("response_a", "response_b")}
    al = _aligned(rng, n)
    run = S.run_scores("pairwise", table, al, seed=seed, n_boot=20, features=feats)
    np.testing.assert_array_equal(run.label_codes, ref_encode_verdicts(run.human["label"]))
    for got, v in zip(run.verdict_codes, run.verdicts):
        np.testing.assert_array_equal(got, ref_encode_verdicts(v))
    # the classes: as example_classes computes them from the Python lists
    human = S.human_values("pairwise", table, al.rows, feats)
    want = S.example_classes("pairwise", human, al, seed, votes=annotator_votes(list(human["annotator_labels"])))
    got = S.example_classes("pairwise", human, al, seed,
                            votes=S.annotator_vote_matrix(table.column("annotator_labels")))
    assert len(got) == len(want)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------- streaming: the hashes already seen
class RefSeenKeys:
    """The replaced ``_SeenKeys.add``: every kept hash sorted again at each chunk."""

    def __init__(self) -> None:
        self.hi = np.zeros(0, np.uint64)
        self.lo = np.zeros(0, np.uint64)

    def add(self, hi, lo) -> None:
        if not len(hi):
            return
        h, low = np.concatenate([self.hi, hi]), np.concatenate([self.lo, lo])
        order = np.lexsort((low, h))
        self.hi, self.lo = h[order], low[order]


@pytest.mark.parametrize("seed", range(4))
def test_seen_keys_merge_matches_full_sort(seed):
    from registry.services.streaming import _SeenKeys

    rng = np.random.default_rng(seed)
    seen, ref = _SeenKeys(), RefSeenKeys()
    # few distinct high words (seed 0, 1): equal high words with other low words, kept and new
    top = 2**64 - 1 if seed >= 2 else 6
    for _ in range(12):
        n = int(rng.integers(0, 300))
        hi = rng.integers(0, top, n, dtype=np.uint64)
        lo = rng.integers(0, 2**64 - 1, n, dtype=np.uint64)
        keep = ~seen.contains(hi, lo)                       # what stream_run adds: new, distinct hashes
        pairs = {}
        for h, low in zip(hi[keep].tolist(), lo[keep].tolist()):
            pairs.setdefault((h, low), None)
        add_hi = np.array([p[0] for p in pairs], np.uint64)
        add_lo = np.array([p[1] for p in pairs], np.uint64)
        seen.add(add_hi, add_lo)
        ref.add(add_hi, add_lo)
        np.testing.assert_array_equal(seen.hi, ref.hi)
        np.testing.assert_array_equal(seen.lo, ref.lo)
        assert seen.contains(add_hi, add_lo).all()


def test_coverage_missing_ids():
    rng = np.random.default_rng(12)
    table, arrays = _arrays("classification", 30, rng, unknown=False)
    for ids in ([None] + [f"e{i}" for i in range(1, 30)], [None, None] + [f"e{i}" for i in range(2, 30)]):
        t = pa.table({"example_id": pa.array(ids, pa.string())})
        got = S._coverage("classification", t, arrays, 0, [])
        assert (got.extra["with_predictions"], got.extra["judged"]) == ref_coverage_counts(t, arrays, "classification")
