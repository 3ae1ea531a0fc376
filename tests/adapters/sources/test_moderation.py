import gzip
import json

import pytest

from registry.adapters.sources import COLUMNS, get_adapter
from registry.errors import InvalidInput


def test_moderation_catalog_reads_every_category(data_root):
    adapter = get_adapter("moderation")
    sizes = {}
    for d in adapter.catalog():
        df = adapter.read(data_root / d.path, **d.options)
        assert list(df.columns) == list(COLUMNS["classification"])
        assert set(df["label"]) == set(d.labels) == {"flagged", "not_flagged"}
        assert df["example_id"].is_unique
        assert df["instruction"].nunique() == 1 and df["instruction"].iloc[0].startswith("Does the following")
        assert (df["response"].str.strip().str.len() > 0).all()
        sizes[d.name] = (len(df), int((df["label"] == "flagged").sum()))
    # texts without a key for the category are left out of that category
    assert sizes == {
        "moderation-sexual": (984, 237), "moderation-hate": (771, 162), "moderation-violence": (1450, 94),
        "moderation-harassment": (1444, 76), "moderation-self-harm": (1447, 51),
        "moderation-sexual-minors": (994, 85), "moderation-hate-threatening": (761, 41),
        "moderation-violence-graphic": (1447, 24),
    }


def test_moderation_rows_match_file(data_root):
    adapter = get_adapter("moderation")
    d = adapter.dataset_def("moderation-self-harm")
    raw = [json.loads(line) for line in gzip.open(data_root / d.path, "rt", encoding="utf-8")]
    df = adapter.read(data_root / d.path, **d.options)
    kept = [r for r in raw if "SH" in r]
    assert list(df["response"]) == [r["prompt"] for r in kept]
    assert list(df["label"]) == ["flagged" if r["SH"] else "not_flagged" for r in kept]
    assert "self-harm" in df["instruction"].iloc[0] and "suicide" in df["instruction"].iloc[0]
    assert json.loads(df["metadata"].iloc[0])["flags"]["SH"] == 1
    # a text repeated in the file keeps two rows
    assert df["example_id"].str.endswith("-2").sum() == 2


def test_moderation_bad_input(tmp_path):
    adapter = get_adapter("moderation")
    path = tmp_path / "samples.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"S": 1}) + "\n")
    with pytest.raises(InvalidInput, match="'prompt'"):
        adapter.read(path, category="S")
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"prompt": "t", "S": 2}) + "\n")
    with pytest.raises(InvalidInput, match="field 'S'"):
        adapter.read(path, category="S")
    with pytest.raises(InvalidInput, match="unknown category"):
        adapter.read(path, category="X")


def test_moderation_empty_text_kept_boolean_flag_rejected(tmp_path):
    adapter = get_adapter("moderation")
    path = tmp_path / "samples.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"prompt": "", "S": 0}) + "\n")
    df = adapter.read(path, category="S")
    assert (df.loc[0, "response"], df.loc[0, "label"]) == ("", "not_flagged")
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"prompt": "t", "S": True}) + "\n")
    with pytest.raises(InvalidInput, match="boolean True") as err:
        adapter.read(path, category="S")
    assert err.value.field == "S"
