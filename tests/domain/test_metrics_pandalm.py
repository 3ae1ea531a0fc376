"""PandaLM: shipped judge predictions against the 3-annotator majority (DESIGN.md §6)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from registry.domain.metrics import majority_vote, modes, pandalm_agreement, parse_pandalm_predictions
from registry.domain.metrics.pandalm import pandalm_human_votes, prediction_field
from registry.errors import InvalidInput

A, B, T, F = 0, 1, 2, -1


@pytest.fixture(scope="module")
def pandalm_files(data_root):
    d = data_root / "WeOpenML__PandaLM" / "data"
    load = lambda name: json.loads((d / name).read_text())  # noqa: E731
    return load("testset-v1.json"), load("gpt-3.5-turbo-testset-v1.json"), load("pandalm-7b-testset-v1.json")


def test_published_majority_agreement(pandalm_files):
    testset, gpt, pandalm = pandalm_files
    g = pandalm_agreement(testset, gpt)
    p = pandalm_agreement(testset, pandalm)
    assert g.n == p.n == 999
    assert round(100 * g.value, 1) == 69.8 and round(g.value * 999) == 697
    assert round(100 * p.value, 1) == 66.8 and round(p.value * 999) == 667
    assert g.extra["unparsed"] == 25 and p.extra["unparsed"] == 0      # gpt_result "garbage"
    assert g.ci_low < g.value < g.ci_high


def test_prediction_fields_and_codes(pandalm_files):
    _, gpt, pandalm = pandalm_files
    assert prediction_field(gpt[0]) == "gpt_result" and prediction_field(pandalm[0]) == "pandalm_result"
    codes = parse_pandalm_predictions([{"idx": 0, "x_result": "Tie"}, {"idx": 1, "x_result": "garbage"},
                                       {"idx": 2, "x_result": 2}, {"idx": 3, "x_result": "1"}])
    assert codes == {0: T, 1: F, 2: B, 3: A}
    with pytest.raises(InvalidInput, match="_result"):
        prediction_field({"idx": 0, "a_result": 1, "b_result": 2})


def test_majority_vote_tie_rule():
    votes = np.array([[A, A, B], [T, T, A], [A, B, T], [B, F, F], [F, F, F], [A, B, F]], np.int8)
    assert majority_vote(votes).tolist() == [A, T, T, B, T, T]       # no strict plurality → tie
    assert modes(votes)[2].tolist() == [True, True, True]
    assert modes(votes)[4].tolist() == [False, False, False]


def test_human_votes_are_read_from_all_three_annotators(pandalm_files):
    idx, votes = pandalm_human_votes(pandalm_files[0])
    assert votes.shape == (999, 3) and idx[0] == 0
    assert set(np.unique(votes).tolist()) == {A, B, T}
