"""Heuristic evaluators on hand-made examples: each rule, determinism, order behaviour."""

from __future__ import annotations

import math

import pytest

from registry.adapters.evaluators import EVALUATORS, TaskContext, build_evaluator
from registry.errors import InvalidInput, RegistryError

PAIRWISE = TaskContext("pairwise", labels=("A", "B", "tie"))
POINTWISE = TaskContext("pointwise", scale=(1.0, 5.0))
CLASSES = TaskContext("classification", labels=("consistent", "inconsistent"))


def pair(i: int, a: str, b: str) -> dict:
    return {"example_id": f"e{i}", "instruction": "Say something.", "response_a": a, "response_b": b,
            "label": "A", "category": None}


def point(i: int, response: str) -> dict:
    return {"example_id": f"p{i}", "instruction": "Summarize.", "response": response, "score": 3.0}


def swapped(ex: dict) -> dict:
    return {**ex, "response_a": ex["response_b"], "response_b": ex["response_a"]}


PAIRS = [pair(0, "short", "a much longer answer"), pair(1, "a much longer answer", "short"),
         pair(2, "same", "size"), pair(3, "", "x")]


def test_every_heuristic_is_registered_and_declares_task_types():
    for kind in ("random", "always-first", "always-second", "longer", "shorter"):
        ev = build_evaluator(kind)
        assert ev.kind == kind and ev.task_types and EVALUATORS.get(kind) is type(ev)


def test_always_first_and_second_ignore_content():
    first, second = build_evaluator("always-first"), build_evaluator("always-second")
    for examples in (PAIRS, [swapped(e) for e in PAIRS]):
        assert [v.label for v in first.judge(PAIRWISE, examples)] == ["A"] * 4
        assert [v.label for v in second.judge(PAIRWISE, examples)] == ["B"] * 4
    rows = [point(0, "anything"), point(1, "")]
    assert [v.label for v in first.judge(CLASSES, rows)] == ["consistent"] * 2
    assert [v.label for v in second.judge(CLASSES, rows)] == ["inconsistent"] * 2


def test_longer_and_shorter_pairwise():
    longer = build_evaluator("longer").judge(PAIRWISE, PAIRS)
    shorter = build_evaluator("shorter").judge(PAIRWISE, PAIRS)
    assert [v.label for v in longer] == ["B", "A", "tie", "B"]
    assert [v.label for v in shorter] == ["A", "B", "tie", "A"]
    assert [v.score for v in longer] == [-15.0, 15.0, 0.0, -1.0]  # margin in favour of A, in characters
    assert [v.score for v in shorter] == [15.0, -15.0, 0.0, 1.0]
    assert all(v.seconds >= 0 and v.parsed for v in longer + shorter)


def test_length_pointwise_is_monotone_and_inside_the_scale():
    rows = [point(i, "x" * n) for i, n in enumerate([0, 10, 300, 5000])]
    longer = [v.score for v in build_evaluator("longer").judge(POINTWISE, rows)]
    shorter = [v.score for v in build_evaluator("shorter").judge(POINTWISE, rows)]
    assert longer == sorted(longer) and len(set(longer)) == 4
    assert shorter == sorted(shorter, reverse=True) and len(set(shorter)) == 4
    assert all(1.0 <= s <= 5.0 for s in longer + shorter)
    assert longer[2] == pytest.approx(1.0 + 4.0 * (1 - math.exp(-300 / 500)))
    # without a scale: the length itself (rank-based correlations need no scaling)
    raw = build_evaluator("longer").judge(TaskContext("pointwise"), rows)
    assert [v.score for v in raw] == [0.0, 10.0, 300.0, 5000.0]


def test_random_is_reproducible_per_example_as_shown():
    rows = [pair(i, f"answer {i}", f"other {i}") for i in range(200)]
    ev = build_evaluator("random", {"seed": 7})
    first = [v.label for v in ev.judge(PAIRWISE, rows)]
    assert first == [v.label for v in build_evaluator("random", {"seed": 7}).judge(PAIRWISE, rows)]
    # one example at a time gives the same verdict as in a batch (needed for caching)
    assert [ev.judge(PAIRWISE, [r])[0].label for r in rows[:20]] == first[:20]
    assert set(first) == {"A", "B"} and 70 < first.count("A") < 130  # uniform, no ties
    assert first != [v.label for v in build_evaluator("random", {"seed": 8}).judge(PAIRWISE, rows)]
    assert first != [v.label for v in ev.judge(PAIRWISE, rows, sample=1)]
    # the other order is an independent draw, not a mirrored one
    other = [v.label for v in ev.judge(PAIRWISE, [swapped(r) for r in rows])]
    assert 0 < sum(a == b for a, b in zip(first, other)) < 200
    assert build_evaluator("random").fingerprint() != build_evaluator("random", {"seed": 1}).fingerprint()


def test_random_pointwise_and_classification():
    rows = [point(i, f"text {i}") for i in range(300)]
    scores = [v.score for v in build_evaluator("random").judge(POINTWISE, rows)]
    assert all(1.0 <= s < 5.0 for s in scores) and 2.5 < sum(scores) / len(scores) < 3.5
    labels = [v.label for v in build_evaluator("random").judge(CLASSES, rows)]
    assert set(labels) == set(CLASSES.labels) and 100 < labels.count("consistent") < 200
    assert labels == [v.label for v in build_evaluator("random").judge(CLASSES, rows)]


def test_unsupported_task_type_is_refused_with_a_clear_error():
    with pytest.raises(InvalidInput, match="cannot judge pointwise"):
        build_evaluator("always-first").judge(POINTWISE, [point(0, "x")])
    with pytest.raises(RegistryError, match="at least two labels"):
        build_evaluator("always-second").judge(TaskContext("classification", labels=("only",)), [point(0, "x")])
