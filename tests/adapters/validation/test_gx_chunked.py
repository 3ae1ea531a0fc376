"""ChunkedReport runs the suite on what the chunks leave: every row's ids, labels, counts and derived
columns, and for the row-wise text checks (null, blank, length) only the rows that may fail them.
Values at the edges of those checks — Unicode and control whitespace, a final newline, lengths at
and beyond the bounds, empty and null texts — spread over many chunks give the report of the suite
run by GX on the whole table."""

import numpy as np
import pyarrow as pa
import pytest

from registry.adapters.validation import gx
from registry.adapters.validation.spec import load_spec
from registry.config import PROJECT_ROOT

EDGES = ["\u3000", "\x1c", " \n", "\t\r\n", "", "x\n", "\n x", "é", "  ok  ", "\u00a0\u2003", "a" * 40, "a" * 41]
"""Texts GX may call blank or too long (max 40 characters here) and near misses."""


def _table(n: int) -> pa.Table:
    spec = load_spec(PROJECT_ROOT / "dataset_specs", "pairwise")
    rng = np.random.default_rng(7)
    texts = [f"text {i}" for i in range(n)]
    for i, at in enumerate(rng.choice(n, len(EDGES) * 3, replace=False)):
        texts[at] = EDGES[i % len(EDGES)]
    ids = [f"id-{i}" for i in range(n)]
    ids[17], ids[400], ids[401] = " ", "\u3000", "i" * 41
    nulls = [None if i in (33, 777) else t for i, t in enumerate(texts)]
    columns = {
        "example_id": ids, "instruction": texts, "response_a": texts[::-1], "response_b": nulls,
        "label": list(rng.choice(["A", "B", "tie", "C"], n, p=[0.4, 0.4, 0.19, 0.01])),
        "reference": [None if i % 3 else t for i, t in enumerate(texts)],
        "category": ["chat"] * n, "annotator_labels": [None if i % 2 else ["A", "B", "A"] for i in range(n)],
        "num_annotators": [None if i % 2 else (3 if i % 50 else 2) for i in range(n)], "metadata": [None] * n,
    }
    return pa.Table.from_pydict(columns, schema=spec.arrow_schema()), spec


@pytest.mark.parametrize("budget", [0, 20_000, 1 << 30])
def test_chunked_report_equals_whole_table_run(budget):
    table, spec = _table(1200)
    rules = gx.Rules(max_text_chars=40)
    whole = gx.run_suite(table, spec, rules)
    report = gx.ChunkedReport(spec, rules, budget=budget)
    for start in range(0, table.num_rows, 97):
        report.add(table.slice(start, 97), start)
    unique = next(c for c in whole["expectations"] if c["expectation"] == "expect_column_values_to_be_unique")
    merged = report.report({"example_id": (unique["unexpected_count"], unique["failing_rows"])})
    assert merged == whole
    failed = {(c["expectation"], c.get("column")) for c in whole["expectations"] if not c["success"]}
    assert ("expect_column_values_to_not_match_regex", "instruction") in failed
    assert ("expect_column_value_lengths_to_be_between", "response_a") in failed
    assert ("expect_column_values_to_not_be_null", "response_b") in failed
    assert ("expect_column_values_to_not_match_regex", "example_id") in failed
