"""run_suite hands GX only the columns its expectations read, in a frame that answers a repeated
row selection from its last one: the report is exactly the one of the full, plain pandas frame
(25,000 rows: large enough for the kept selection to be used)."""

import numpy as np
import pandas as pd
import pytest

from registry.adapters.validation import gx
from registry.adapters.validation.spec import load_spec
from registry.config import PROJECT_ROOT


def _reference(table, spec, rules):
    derived = gx._derived(table, spec, rules)
    validation = gx._validation_definition(spec, rules, tuple(derived))
    return gx._run(validation, gx._frame(table, derived), table, spec)


def _pairwise(n, broken):
    rng = np.random.default_rng(n)
    rows = {
        "example_id": [f"id-{i:05d}" for i in range(n)],
        "instruction": [f"question {i}\n" for i in range(n)],
        "response_a": [f"answer {i}" for i in range(n)],
        "response_b": [f"other answer {i}" for i in range(n)],
        "label": list(rng.choice(["A", "B", "tie"], n)),
        "reference": [None if i % 3 else f"ref {i}" for i in range(n)],
        "category": ["chat"] * n,
        "annotator_labels": [None if i % 2 else ["A", "B", "A"] for i in range(n)],
        "num_annotators": pd.Series([None if i % 2 else 3 for i in range(n)], dtype=object),
        "metadata": [None] * n,
    }
    df = pd.DataFrame(rows)
    if broken:
        df.loc[5, "response_a"] = "  \n"
        df.loc[7, "label"] = "C"
        df.loc[9, "example_id"] = "id-00003"
        df.at[10, "annotator_labels"] = ["A", "Z"]
        df.at[12, "num_annotators"] = 2
        df.loc[14, "reference"] = " "
    return df


@pytest.mark.parametrize("broken", [False, True])
@pytest.mark.parametrize("n", [40, 25_000])
def test_report_equals_full_frame(n, broken):
    spec = load_spec(PROJECT_ROOT / "dataset_specs", "pairwise")
    rules = gx.Rules()
    table = gx.to_arrow(_pairwise(n, broken), spec)
    report = gx.run_suite(table, spec, rules)
    assert report == _reference(table, spec, rules)
    assert report["success"] is (not broken)
    if broken:
        assert report["failed"] >= 5


def test_pointwise_and_classification_reports_equal_full_frame():
    spec = load_spec(PROJECT_ROOT / "dataset_specs", "pointwise")
    n = 200
    df = pd.DataFrame({
        "example_id": [f"p{i}" for i in range(n)], "instruction": ["doc"] * n, "response": [f"s{i}" for i in range(n)],
        "score": [float(i % 5 + 1) for i in range(n)], "criterion": ["coherence"] * n,
        "scale_min": [1.0] * n, "scale_max": [5.0] * n, "reference": [None] * n, "system_id": ["m"] * n,
        "annotator_scores": [[1.0, 2.0] if i % 2 else None for i in range(n)],
        "num_annotators": pd.Series([2 if i % 2 else None for i in range(n)], dtype=object),
        "category": [None] * n, "metadata": [None] * n})
    df.loc[3, "score"] = 9.0
    table = gx.to_arrow(df, spec)
    rules = gx.Rules()
    assert gx.run_suite(table, spec, rules) == _reference(table, spec, rules)
    spec = load_spec(PROJECT_ROOT / "dataset_specs", "classification")
    df = pd.DataFrame({"example_id": [f"c{i}" for i in range(n)], "instruction": ["doc"] * n,
                       "response": ["claim"] * n, "label": ["yes" if i % 2 else "no" for i in range(n)],
                       "annotator_labels": [None] * n, "num_annotators": [None] * n, "category": [None] * n,
                       "metadata": [None] * n})
    table = gx.to_arrow(df, spec)
    rules = gx.Rules(labels=("no", "yes"))
    assert gx.run_suite(table, spec, rules) == _reference(table, spec, rules)
