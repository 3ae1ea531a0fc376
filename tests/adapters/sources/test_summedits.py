import json

import pytest

from registry.adapters.sources import COLUMNS, get_adapter
from registry.errors import InvalidInput


def test_summedits_catalog_reads_every_domain(data_root):
    adapter = get_adapter("summedits")
    sizes = {}
    for d in adapter.catalog():
        df = adapter.read(data_root / d.path, **d.options)
        assert list(df.columns) == list(COLUMNS["classification"])
        assert set(df["label"]) == set(d.labels) == {"consistent", "inconsistent"}
        assert df["example_id"].is_unique
        assert (df["response"].str.strip().str.len() > 0).all()
        assert df["category"].nunique() == 1
        sizes[d.name] = (len(df), int((df["label"] == "consistent").sum()))
    assert sizes == {
        "summedits-ectsum": (668, 242), "summedits-news": (819, 321), "summedits-podcast": (500, 163),
        "summedits-qmsumm": (431, 183), "summedits-sales-call": (520, 173),
        "summedits-sales-email": (613, 179), "summedits-samsum": (664, 242),
        "summedits-scitldr": (466, 145),
    }
    assert sum(n for n, _ in sizes.values()) == 4681


def test_summedits_rows_match_file(data_root):
    adapter = get_adapter("summedits")
    d = adapter.dataset_def("summedits-samsum")
    raw = json.loads((data_root / d.path).read_text())
    df = adapter.read(data_root / d.path, **d.options)
    assert list(df["example_id"]) == [r["id"] for r in raw]
    second = df.iloc[1]
    assert second["example_id"] == "samsum_train_13731241_0"
    assert second["label"] == "inconsistent" and second["category"] == "samsum"
    assert second["response"].startswith("Ann orders Mike to buy butter")
    meta = json.loads(second["metadata"])
    assert meta["split"] == "evaluation" and meta["original_summary"].startswith("Ann asks Mike")


def test_summedits_bad_input(tmp_path):
    adapter = get_adapter("summedits")
    path = tmp_path / "summedits_x.json"
    path.write_text(json.dumps([{"id": "a", "doc": "d", "label": 1}]))
    with pytest.raises(InvalidInput, match="'summary'"):
        adapter.read(path)
    path.write_text(json.dumps([{"id": "a", "doc": "d", "summary": "s", "label": "yes"}]))
    with pytest.raises(InvalidInput, match="field 'label'"):
        adapter.read(path)


def test_summedits_empty_summary_is_kept(tmp_path):
    path = tmp_path / "summedits_x.json"
    path.write_text(json.dumps([{"id": "a", "doc": "d", "summary": "", "label": 0}]))
    df = get_adapter("summedits").read(path)
    assert (df.loc[0, "response"], df.loc[0, "label"]) == ("", "inconsistent")
