"""Row hashes, content hash and statistics computed column-wise keep their documented semantics
(and the statistics equal the row-by-row agreement functions)."""

import json
import random

import numpy as np
import pyarrow as pa
import pytest

from registry.domain import statistics
from registry.domain.agreement import (
    alpha_nominal_from_counts,
    krippendorff_alpha_nominal,
    mean_pairwise_agreement,
    pairwise_agreement_from_counts,
)
from registry.domain.versioning import canonical_order, content_hash, diff_rows, row_hashes

PANDALM = "WeOpenML__PandaLM/data/testset-v1.json"


def _table():
    return pa.table({
        "example_id": ["a", "b", "c", "d", "e", "f", "g"],
        "text": ["", None, "1:", "1", "", None, "é\n"],
        "other": [None, "", "x", ":x", None, "", "1"],
        "count": pa.array([1, None, 3, 3, 1, None, 0], pa.int32()),
        "score": [0.0, -0.0, None, 1.5, 0.0, -0.0, float("nan")],
        "votes": pa.array([["A"], None, [], ["A", "B"], ["A"], None, ["tie"]], pa.list_(pa.string())),
        "flag": [True, None, False, True, True, None, False],
    })


def test_row_hashes_tell_rows_apart_and_ignore_layout():
    t = _table()
    h = row_hashes(t)
    assert h.dtype == np.uint64 and len(set(h.tolist())) == t.num_rows
    # the same rows in other chunks give the same hashes
    chunked = pa.concat_tables([t.slice(0, 2), t.slice(2, 3), t.slice(5)])
    assert (row_hashes(chunked) == h).all()
    # equal rows -> equal hashes (rows a and e differ only by id; b and f too)
    same_ids = t.set_column(0, "example_id", pa.array(["x"] * t.num_rows))
    hs = row_hashes(same_ids)
    assert hs[0] == hs[4] and hs[1] == hs[5] and hs[0] != hs[1]
    # null and empty text, "1:" + "" and "1" + ":"-prefixed text, 0.0 and -0.0 differ
    for i, j in ((0, 1), (2, 3)):
        assert hs[i] != hs[j]
    # any one changed field changes the hash
    for name in t.column_names[1:]:
        col = t.column(name).to_pylist()
        col[3] = next(v for v in col if repr(v) != repr(col[3]))
        changed = row_hashes(t.set_column(t.column_names.index(name), name, pa.array(col, t.schema.field(name).type)))
        assert changed[3] != h[3] and (np.delete(changed, 3) == np.delete(h, 3)).all(), name


def test_content_hash_is_idempotent_and_order_free():
    t = _table()
    ordered = canonical_order(t)
    digest = content_hash("pairwise@1", ordered, row_hashes(ordered))
    shuffled = canonical_order(t.take(pa.array([6, 3, 0, 5, 1, 4, 2])))
    assert content_hash("pairwise@1", shuffled, row_hashes(shuffled)) == digest
    edited = t.set_column(1, "text", pa.array(["", None, "1:", "1", "", None, "é"]))
    edited = canonical_order(edited)
    assert content_hash("pairwise@1", edited, row_hashes(edited)) != digest
    d = diff_rows(ordered.column("example_id"), row_hashes(ordered), edited.column("example_id"), row_hashes(edited))
    assert d.changed == ("g",) and d.unchanged == 6


def _votes_table(units):
    return pa.table({"annotator_labels": pa.array(units, pa.list_(pa.string()))})


def _reference(units):
    pairable = [u for u in units if u and len(u) >= 2]
    if not pairable:
        return None
    return {"units": len(pairable), "annotators_per_unit": round(float(np.mean([len(u) for u in pairable])), 2),
            "krippendorff_alpha_nominal": statistics._round(krippendorff_alpha_nominal(pairable)),
            "pairwise_percent_agreement": statistics._round(mean_pairwise_agreement(pairable))}


def test_agreement_statistics_equal_row_by_row_functions(data_root):
    raw = json.loads((data_root / PANDALM).read_text())
    names = {0: "tie", 1: "A", 2: "B"}
    units = [[names[r[f"annotator{k}"]] for k in (1, 2, 3)] for r in raw] + [None, [], ["A"]]
    assert statistics._annotator_agreement(_votes_table(units), "pairwise") == _reference(units)
    counts, lengths, _ = statistics._label_units(_votes_table(units).column(0))
    pairable = [u for u in units if u and len(u) >= 2]
    assert alpha_nominal_from_counts(counts) == krippendorff_alpha_nominal(pairable)
    assert pairwise_agreement_from_counts(counts) == pytest.approx(mean_pairwise_agreement(pairable), abs=1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_agreement_statistics_random(seed):
    rng = random.Random(seed)
    labels = rng.choice([["A", "B", "tie"], ["x"], ["yes", "no", "10", "9"]])
    units = [None if rng.random() < 0.2 else [rng.choice(labels) for _ in range(rng.randint(0, 6))]
             for _ in range(rng.randint(1, 200))]
    assert statistics._annotator_agreement(_votes_table(units), "classification") == _reference(units)
