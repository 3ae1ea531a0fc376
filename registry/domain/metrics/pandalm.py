"""Scoring the judge predictions shipped with the PandaLM test set against its human majority.

``testset-v1.json`` rows carry ``idx`` and ``annotator1..3`` ∈ {0 (tie), 1, 2}. The prediction
files hold one row per ``idx`` with the verdict in the field ending in ``_result``:
``gpt-3.5-turbo-testset-v1.json`` has ``gpt_result`` ∈ {"1", "2", "Tie", "garbage"} and
``pandalm-7b-testset-v1.json`` has ``pandalm_result`` ∈ {0, 1, 2}.

Rule: the human label is the strict plurality of the three votes, ``tie`` when no category has
more votes than every other (three different votes; no such row in v1). A prediction is correct
when it equals that label — a tie prediction counts when the majority is tie — and a verdict
that is not 1/2/tie ("garbage") or a missing row is wrong. Over the 999 rows this gives
69.77% for GPT-3.5 (697/999) and 66.77% for PandaLM-7B (667/999), the figures DESIGN.md §6 quotes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from registry.domain.judgments import FAIL, VERDICT_CODES
from registry.domain.metrics.annotators import majority_vote
from registry.domain.metrics.bootstrap import Bootstrap
from registry.domain.metrics.pairwise import accuracy
from registry.domain.metrics.value import MetricValue
from registry.errors import InvalidInput

A, B, TIE = VERDICT_CODES["A"], VERDICT_CODES["B"], VERDICT_CODES["tie"]
_CODES: dict[Any, int] = {0: TIE, 1: A, 2: B, "0": TIE, "1": A, "2": B, "tie": TIE, "Tie": TIE}
ANNOTATORS = ("annotator1", "annotator2", "annotator3")


def _code(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):  # true/false, lists: not votes
        return FAIL
    return _CODES.get(value.strip() if isinstance(value, str) else value, FAIL)


def pandalm_human_votes(records: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Test-set rows → (idx (n,), votes (n, 3) int8 codes)."""
    idx = np.empty(len(records), dtype=np.int64)
    votes = np.empty((len(records), len(ANNOTATORS)), dtype=np.int8)
    for i, rec in enumerate(records):
        if "idx" not in rec:
            raise InvalidInput("missing 'idx'", row=i, field="idx")
        idx[i] = rec["idx"]
        for j, key in enumerate(ANNOTATORS):
            if key not in rec:
                raise InvalidInput(f"missing {key!r}", row=i, field=key)
            votes[i, j] = _code(rec[key])
    return idx, votes


def prediction_field(record: Mapping[str, Any]) -> str:
    """The verdict field of a prediction row: the one key ending in ``_result``."""
    if not isinstance(record, Mapping):
        raise InvalidInput(f"expected a prediction record (JSON object), got {type(record).__name__}", row=0)
    keys = [k for k in record if k.endswith("_result")]
    if len(keys) != 1:
        raise InvalidInput(f"expected exactly one '*_result' field, found {keys}", field="*_result")
    return keys[0]


def parse_pandalm_predictions(records: Sequence[Mapping[str, Any]], field: str | None = None) -> dict[int, int]:
    """Prediction rows → {idx: verdict code}; unparsable verdicts become FAIL."""
    if not records:
        return {}
    field = field or prediction_field(records[0])
    out = {}
    for i, rec in enumerate(records):
        if not isinstance(rec, Mapping) or "idx" not in rec or field not in rec:
            raise InvalidInput(f"expected a record with 'idx' and {field!r}", row=i)
        out[prediction_idx(rec["idx"], row=i)] = _code(rec[field])
    return out


def prediction_idx(value: Any, *, row: int) -> int:
    """A prediction row's ``idx`` (an integer, or its text) as an int, else an :class:`InvalidInput`."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        raise InvalidInput(f"idx {value!r} is not an integer", row=row, field="idx")
    return int(value)


def pandalm_agreement(testset: Sequence[Mapping[str, Any]], predictions: Sequence[Mapping[str, Any]],
                      *, boot: Bootstrap | None = None, field: str | None = None) -> MetricValue:
    """Accuracy of a prediction file against the 3-annotator majority (see the module rule)."""
    idx, votes = pandalm_human_votes(testset)
    labels = majority_vote(votes, no_majority=TIE)
    pred = parse_pandalm_predictions(predictions, field)
    verdicts = np.array([pred.get(int(i), FAIL) for i in idx], dtype=np.int8)
    mv = accuracy(labels, verdicts, boot=boot, name="majority_agreement")
    return replace(mv, extra={**mv.extra, "missing_predictions": int(sum(int(i) not in pred for i in idx)),
                              "unparsed": int((verdicts == FAIL).sum()), "tie_rule": "strict plurality, else tie"})
