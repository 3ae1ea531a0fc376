"""LLMBar: every shipped statistics.json is reproduced from its result.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from registry.domain.judgments import FAIL
from registry.domain.metrics import (
    Bootstrap,
    llmbar_metrics,
    llmbar_statistics,
    parse_llmbar_result,
    positional_agreement,
)
from registry.errors import InvalidInput
from tests.conftest import _data_root

_ROOT = _data_root()
_LLMBAR = _ROOT / "princeton-nlp__LLMBar" / "Dataset" if _ROOT else None
EVALUATOR_DIRS = sorted(p.parent for p in _LLMBAR.rglob("evaluators/*/*/statistics.json")) if _LLMBAR else []


def _load(directory: Path):
    records = json.loads((directory / "result.json").read_text())
    stats = json.loads((directory / "statistics.json").read_text())
    return records, stats


def test_every_statistics_file_is_covered(data_root):
    found = sorted(p.parent for p in (data_root / "princeton-nlp__LLMBar" / "Dataset").rglob("statistics.json"))
    assert found, "no LLMBar statistics.json files found"
    assert found == EVALUATOR_DIRS
    assert all((d / "result.json").is_file() for d in found)
    # 8 datasets × {GPT-4, ChatGPT} × their protocols, as shipped
    assert len({d.parent.parent.parent for d in found}) == 8


@pytest.mark.parametrize("directory", EVALUATOR_DIRS, ids=lambda d: "/".join(d.relative_to(_LLMBAR).parts))
def test_statistics_json_reproduced(directory):
    records, expected = _load(directory)
    got = llmbar_statistics(*parse_llmbar_result(records))
    assert set(expected) <= set(got)
    for key, want in expected.items():
        if isinstance(want, str):       # "95 / 100 = 95.0%": the exact printed string
            assert got[key] == want, key
        else:                           # sklearn's κ, same formula
            assert got[key] == pytest.approx(want, abs=1e-12), key


def test_gpt4_vanilla_natural_published_numbers(data_root):
    d = data_root / "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/evaluators/GPT-4/Vanilla"
    records, _ = _load(d)
    labels, v0, v1 = parse_llmbar_result(records)
    stats = llmbar_statistics(labels, v0, v1)
    assert stats["correct_average"] == "95.5%" and stats["equal"] == "95 / 100 = 95.0%"   # DESIGN §6
    metrics = {m.name: m for m in llmbar_metrics(labels, v0, v1, boot=Bootstrap.draw(len(labels), 500, seed=0))}
    assert metrics["correct_average"].value == pytest.approx(0.955)
    assert metrics["equal"].value == pytest.approx(0.95)
    assert metrics["correct_average"].ci_low < 0.955 < metrics["correct_average"].ci_high
    # the correct κ against the label is far above LLMBar's misaligned compatibility figure
    assert metrics["cohen_kappa_average"].value > 0.85 > metrics["llmbar_kappa_average"].value
    assert metrics["llmbar_kappa_average"].value == pytest.approx(0.26962395517254417, abs=1e-12)
    assert np.isnan(metrics["llmbar_kappa_average"].ci_low)           # compatibility figure: no CI
    # without parse failures the two κ between the orders coincide
    assert metrics["llmbar_kappa_agreement"].value == pytest.approx(0.897708674304419, abs=1e-12)
    assert metrics["cohen_kappa_agreement"].value == pytest.approx(metrics["llmbar_kappa_agreement"].value)
    # one name, one meaning: LLMBar's compatibility κ never appears under a bare ``kappa_*`` name
    assert not {name for name in metrics if name.startswith("kappa_")}
    assert set(metrics["llmbar_kappa_average"].extra) >= {"llmbar_kappa_False", "llmbar_kappa_True"}
    assert metrics["cohen_kappa_agreement"].ci_low < metrics["cohen_kappa_agreement"].value


def test_two_failures_count_as_equal_in_llmbar_only(data_root):
    """LLMBar compares raw winners, so None == None agrees; our positional agreement does not."""
    d = data_root / "princeton-nlp__LLMBar/Dataset/Processed/LLMEval^2/evaluators/ChatGPT/Vanilla_NoRules"
    records, expected = _load(d)
    labels, v0, v1 = parse_llmbar_result(records)
    n = len(labels)
    both_failed = int(((v0 == FAIL) & (v1 == FAIL)).sum())
    assert both_failed == 5
    printed_equal = int(expected["equal"].split(" / ")[0])
    m = {x.name: x for x in llmbar_metrics(labels, v0, v1, boot=Bootstrap.draw(n, 10))}
    assert round(m["equal"].value * n) == printed_equal
    strict = positional_agreement(v0, v1, boot=Bootstrap.draw(n, 10))
    assert round(strict.value * n) == printed_equal - both_failed


def _rec(label, *stages):
    return {"label": label, "results": list(stages)}


def _judged(w0, w1, **more):
    return {"swap = False": {"winner": w0}, "swap = True": {"winner": w1}, **more}


def test_parser_reads_the_final_stage_and_failures():
    records = [
        _rec(1, ["metrics text", "stop"], _judged("1", "1")),                  # Metrics: auxiliary first
        _rec(2, _judged("1", "2"), _judged("2", "2")),                         # Swap: synthesis replaces
        _rec(1, _judged(None, "1")),                                           # parse failure
        _rec(2, {"score_1": ["7", "stop"], "score_2": ["7", "stop"], **_judged("2", "1")}),  # tied rating
        _rec("1", _judged("3", "2")),                                          # odd winner
    ]
    labels, v0, v1 = parse_llmbar_result(records)
    assert labels.tolist() == [0, 1, 0, 1, 0]
    assert v0.tolist() == [0, 1, FAIL, 1, FAIL]
    assert v1.tolist() == [0, 1, 0, 0, 1]
    stats = llmbar_statistics(labels, v0, v1)
    assert stats["correct_False"] == "3 / 5 = 60.0%"
    assert stats["correct_True"] == "3 / 5 = 60.0%"
    assert stats["correct_both"] == "2 / 5 = 40.0%"
    assert stats["equal"] == "2 / 5 = 40.0%"
    assert stats["correct_average"] == "60.0%"


@pytest.mark.parametrize("bad, where", [
    ([{"label": 1}], "row 0"),
    ([{"label": 3, "results": [_judged("1", "1")]}], "field 'label'"),
    ([{"label": 1, "results": [["text", "stop"]]}], "field 'results'"),
    ([{"label": 1, "results": [{"swap = False": {}, "swap = True": {"winner": "1"}}]}], "missing 'winner'"),
])
def test_parser_names_the_bad_row(bad, where):
    with pytest.raises(InvalidInput, match=where):
        parse_llmbar_result(bad)


def test_compat_kappa_differs_from_correct_kappa_by_construction():
    labels = np.array([0, 1, 0, 1], np.int8)
    stats = llmbar_statistics(labels, labels, labels)            # a perfect judge
    assert stats["cohen_kappa_average"] == pytest.approx(1.0)
    assert stats["kappa_agreement"] == pytest.approx(1.0)
    # LLMBar maps "2" → 0 but keeps label 2, so a perfect judge gets κ = 1/3, not 1
    assert stats["kappa_average"] == pytest.approx(1 / 3)
