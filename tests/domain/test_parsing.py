"""The pure output parsers of generative judges, on many real-looking strings."""

from __future__ import annotations

import pytest

from registry.domain.parsing import parse_label, parse_pairwise, parse_rating


@pytest.mark.parametrize("text, expected", [
    ("Output (a)", "A"),
    ("Output (b)", "B"),
    ("output(B)", "B"),
    ("Output (a) is better.", "A"),
    ("[[A]]", "A"),
    ("[[B]]", "B"),
    ("[[C]]", "tie"),
    ("[[tie]]", "tie"),
    ("Explanation: both are fine, Output (a) is long.\nFinal verdict: [[B]]", "B"),
    ("A", "A"),
    ("B.", "B"),
    ("  **B**  ", "B"),
    ('"A"', "A"),
    ("tie", "tie"),
    ("A\n\nBecause it answers the question.", "A"),
    ("B) is more helpful", "B"),
    ("Answer: B", "B"),
    ("Assistant A is better.", "A"),
    ("The better response is Response B", "B"),
])
def test_pairwise_verdicts(text, expected):
    assert parse_pairwise(text) == (expected, True)


@pytest.mark.parametrize("text", [
    "", "   ", None, "I cannot decide.", "A good answer would mention Paris.", "Both are good",
    "Output (a) or Output (b)",  # both mentioned: ambiguous
    "[[A]] ... no wait [[B]]",  # unique rule
    "Assistant A is accurate but Assistant B is concise.",
    "Output (c)", "[[D]]", "Bob",
])
def test_pairwise_failures(text):
    assert parse_pairwise(text) == (None, False)


def test_pairwise_last_mention_rule_for_cot():
    cot = ("Assistant A answers directly, Output (a) style. [[A]] would be the format. "
           "But B is more accurate.\nFinal verdict: [[B]]")
    assert parse_pairwise(cot, mention="last") == ("B", True)
    assert parse_pairwise(cot) == (None, False)  # unique: A and B both bracketed
    # a higher tier decides even when a lower tier's mention comes later
    assert parse_pairwise("[[A]]. Output (b) was shorter.", mention="last") == ("A", True)
    assert parse_pairwise("Output (a) ... Output (b)", mention="last") == ("B", True)
    with pytest.raises(ValueError):
        parse_pairwise("[[A]]", mention="first")  # type: ignore[arg-type]


@pytest.mark.parametrize("text, expected", [
    ("Rating: 7", 7.0),
    ("rating:7", 7.0),
    ("Score = 3.5", 3.5),
    ("[[7]]", 7.0),
    ("Rating: [[10]]", 10.0),
    ("Score: 8/10", 8.0),
    ("I'd say 6/10.", 6.0),
    ("6 out of 10", 6.0),
    ("9", 9.0),
    ("  4. ", 4.0),
    ("The summary is accurate. [RESULT] 5", 5.0),
    ("Rating: 2 at first, but on reflection Rating: 8", 8.0),  # last mention
    ("Rating: 7 (three issues, 2/10 each)", 7.0),  # the Rating tier decides
])
def test_ratings(text, expected):
    assert parse_rating(text, 1, 10) == (expected, True)


@pytest.mark.parametrize("text", [
    "", None, "great answer", "Rating: eleven", "4/5",  # denominator is not the scale max
    "Rating: 11", "Rating: 0", "[[-3]]", "12",
])
def test_rating_failures(text):
    assert parse_rating(text, 1, 10) == (None, False)


def test_rating_clamp_and_unique():
    assert parse_rating("Rating: 11", 1, 10, out_of_scale="clamp") == (10.0, True)
    assert parse_rating("Rating: 0", 1, 10, out_of_scale="clamp") == (1.0, True)
    assert parse_rating("Rating: 3 ... Rating: 4", 1, 10, mention="unique") == (None, False)
    assert parse_rating("4/5", 1, 5) == (4.0, True)
    with pytest.raises(ValueError):
        parse_rating("3", 1, 5, out_of_scale="wrap")  # type: ignore[arg-type]


LABELS = ("consistent", "inconsistent")


@pytest.mark.parametrize("text, labels, expected", [
    ("consistent", LABELS, "consistent"),
    ("Inconsistent.", LABELS, "inconsistent"),
    ("The claim is CONSISTENT with the source", LABELS, "consistent"),
    ("[[inconsistent]] although it looks consistent at first", LABELS, "inconsistent"),
    ("Yes", ("Yes", "No"), "Yes"),
    ("no, it is not", ("Yes", "No"), "No"),
    ("It is not harmful.", ("harmful", "not harmful"), "not harmful"),
    ("It is harmful.", ("harmful", "not harmful"), "harmful"),
])
def test_labels(text, labels, expected):
    assert parse_label(text, labels) == (expected, True)


@pytest.mark.parametrize("text, labels", [
    ("", LABELS), (None, LABELS), ("partly consistent, partly inconsistent", LABELS),
    ("consistently wrong", LABELS), ("self-consistent", LABELS), ("maybe", ("Yes", "No")),
    ("consistent", ()),
])
def test_label_failures(text, labels):
    assert parse_label(text, labels) == (None, False)


def test_label_last_mention():
    assert parse_label("consistent? no: inconsistent", LABELS, mention="last") == ("inconsistent", True)
