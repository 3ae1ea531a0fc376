import json

import pytest

from registry.adapters.sources import COLUMNS, get_adapter
from registry.errors import InvalidInput

ROOT = "tingofurro__summac/data"


def _read(data_root, name):
    adapter = get_adapter("summac")
    d = adapter.dataset_def(name)
    return adapter.read(data_root / d.path, **d.options)


def test_summac_catalog_reads_every_subset(data_root):
    adapter = get_adapter("summac")
    sizes = {}
    for d in adapter.catalog():
        df = adapter.read(data_root / d.path, **d.options)
        assert list(df.columns) == list(COLUMNS["classification"])
        assert d.labels == ("consistent", "inconsistent")
        assert set(df["label"]) == set(d.labels)
        assert df["example_id"].is_unique
        assert (df["instruction"].str.strip().str.len() > 0).all()
        assert (df["response"].str.strip().str.len() > 0).all()
        assert (df["num_annotators"] == df["annotator_labels"].map(len)).all()
        sizes[d.name] = (len(df), int((df["label"] == "consistent").sum()))
    assert sizes == {"summac-factcc": (311, 274), "summac-polytope": (634, 42),
                     "summac-summeval": (100, 63), "summac-xsumfaith": (485, 50)}


def test_summac_labels_and_ids_match_file(data_root):
    raw = json.loads((data_root / ROOT / "factcc.json").read_text())
    df = _read(data_root, "summac-factcc")
    assert list(df["example_id"]) == list(raw)
    assert list(df["label"]) == [{1: "consistent", 0: "inconsistent"}[r["label"]] for r in raw.values()]
    assert df.iloc[0]["response"].startswith("trey made the prom-posal")


def test_summac_summeval_annotators_follow_the_5_rule(data_root):
    df = _read(data_root, "summac-summeval").set_index("example_id")
    row = df.loc["summeval_2"]  # expert scores [3, 5, 5], SummaC label 1
    assert list(row["annotator_labels"]) == ["inconsistent", "consistent", "consistent"]
    assert row["label"] == "consistent" and row["category"] == "M11"
    assert json.loads(row["metadata"])["annotations"] == [3, 5, 5]


def test_summac_xsumfaith_keeps_source_label(data_root):
    df = _read(data_root, "summac-xsumfaith").set_index("example_id")
    row = df.loc["xsumfaith_227"]  # [1, 1, 0, 0, 0]: SummaC says consistent (most common type NULL)
    assert row["label"] == "consistent"
    assert list(row["annotator_labels"]).count("consistent") == 2 and row["num_annotators"] == 5


def test_summac_bad_input(tmp_path):
    adapter = get_adapter("summac")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"x_0": {"document": "d", "claim": "c", "annotations": [1]}}))
    with pytest.raises(InvalidInput, match="'label'"):
        adapter.read(path)
    path.write_text(json.dumps({"x_0": {"document": "d", "claim": "c", "annotations": [1], "label": 2}}))
    with pytest.raises(InvalidInput, match="unknown label 2"):
        adapter.read(path)
    path.write_text(json.dumps({"x_0": {"document": " ", "claim": "c", "annotations": [1], "label": 1}}))
    with pytest.raises(InvalidInput, match="'document'"):
        adapter.read(path)


def test_summac_empty_claim_kept_boolean_label_rejected(tmp_path):
    adapter = get_adapter("summac")
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"x_0": {"document": "d", "claim": "", "annotations": [0], "label": 0}}))
    df = adapter.read(path)
    assert (df.loc[0, "response"], df.loc[0, "label"]) == ("", "inconsistent")
    path.write_text(json.dumps({"x_0": {"document": "d", "claim": "c", "annotations": [1], "label": True}}))
    with pytest.raises(InvalidInput, match="boolean True") as err:
        adapter.read(path)
    assert err.value.field == "label"
    path.write_text(json.dumps({"x_0": {"document": "d", "claim": None, "annotations": [1], "label": 1}}))
    with pytest.raises(InvalidInput, match="'claim'"):
        adapter.read(path)
