import json

import pytest

from registry.adapters.sources import get_adapter
from registry.errors import InvalidInput

ROOT = "neulab__BARTScore"


@pytest.fixture(scope="module")
def wmt(data_root):
    adapter = get_adapter("bartscore-wmt")
    return {d.name: adapter.read(data_root / d.path, **d.options) for d in adapter.catalog()}


@pytest.fixture(scope="module")
def pointwise(data_root):
    adapter = get_adapter("bartscore")
    return {d.name: (d, adapter.read(data_root / d.path, **d.options)) for d in adapter.catalog()}


def test_wmt_sizes_and_positions(wmt):
    assert {k: len(v) for k, v in wmt.items()} == {"wmt19-kk-en": 9728, "wmt19-gu-en": 20110, "wmt19-lt-en": 21862}
    for name, df in wmt.items():
        assert df["example_id"].is_unique
        assert df["category"].eq(name.removeprefix("wmt19-")).all()
        share_b = (df["label"] == "B").mean()
        assert 0.45 < share_b < 0.55 and set(df["label"]) == {"A", "B"}


def test_wmt_better_translation_follows_label(wmt, data_root):
    raw = json.loads((data_root / ROOT / "WMT/kk-en/data.json").read_text())
    df = wmt["wmt19-kk-en"]
    for row in df.head(500).itertuples():
        rec = raw[row.example_id]
        better = row.response_a if row.label == "A" else row.response_b
        assert better == rec["better"]["sys"] and row.instruction == rec["src"] and row.reference == rec["ref"]
    first = df.set_index("example_id").loc["0"]
    assert first["label"] == "B"
    assert first["response_b"].startswith("A mobile - which allows medical organizations")
    assert json.loads(first["metadata"]) == {"system_a": "UMD.6736", "system_b": "CUNI-T2T-transfer-kken.6436"}


def test_pointwise_catalog_sizes_and_scales(pointwise):
    sizes = {name: len(df) for name, (_, df) in pointwise.items()}
    assert sizes == {
        **{f"summeval-{c}": 1600 for c in ("coherence", "consistency", "fluency", "relevance")},
        "realsumm-litepyramid-recall": 2400,
        **{f"newsroom-{c}": 420 for c in ("coherence", "fluency", "informativeness", "relevance")},
        **{f"bagel-{c}": 404 for c in ("informativeness", "naturalness", "quality")},
    }
    scales = {"summeval": (1, 5), "realsumm": (0, 1), "newsroom": (1, 5), "bagel": (1, 6)}
    systems = {"summeval": 16, "realsumm": 24, "newsroom": 7, "bagel": 0}
    for name, (d, df) in pointwise.items():
        corpus = name.split("-")[0]
        assert d.scale == scales[corpus]
        assert df["example_id"].is_unique
        assert df["score"].between(*d.scale).all()
        assert (df["scale_min"] == d.scale[0]).all() and (df["scale_max"] == d.scale[1]).all()
        assert (df["criterion"] == d.options["criterion"]).all()
        assert df["system_id"].nunique() == systems[corpus]
        assert df["score"].min() == d.scale[0] or corpus == "newsroom"  # real data reaches the bottom


def test_pointwise_spot_values(pointwise):
    se = pointwise["summeval-coherence"][1].set_index("example_id")
    row = se.loc["dm-test-8764fb95bfad8ee849274873a92fb8d6b400eee2/M11"]
    assert row["score"] == pytest.approx(4 / 3) and row["system_id"] == "M11" and row["num_annotators"] == 3
    assert row["reference"].startswith("Andros Townsend an 83rd minute sub")
    assert len(json.loads(row["metadata"])["other_references"]) == 10
    rel = pointwise["summeval-relevance"][1].set_index("example_id")
    assert rel.loc["dm-test-8764fb95bfad8ee849274873a92fb8d6b400eee2/M11", "score"] == pytest.approx(5 / 3)
    rs = pointwise["realsumm-litepyramid-recall"][1].set_index("example_id")
    assert rs.loc["52/presumm_out_trans_abs.txt", "score"] == pytest.approx(0.3)
    assert rs.loc["52/presumm_out_trans_abs.txt", "num_annotators"] is None
    bagel = pointwise["bagel-informativeness"][1].set_index("example_id")
    assert bagel.loc["0", "score"] == 6.0 and bagel.loc["0", "instruction"] == "inform(name=none,area=citycentre,near='X')"
    assert bagel.loc["0", "system_id"] is None
    assert pointwise["bagel-quality"][1].set_index("example_id").loc["0", "score"] == 5.0


def _summ(tmp_path, score):
    p = tmp_path / "SummEval" / "data.json"
    p.parent.mkdir()
    p.write_text(json.dumps({"d1": {"src": "doc", "ref_summ": "ref", "sys_summs": {
        "M1": {"sys_summ": "summary", "scores": {"coherence": score}}}}}))
    return p


def test_out_of_scale_score_names_field(tmp_path):
    with pytest.raises(InvalidInput, match="outside the scale") as err:
        get_adapter("bartscore").read(_summ(tmp_path, 7.0), criterion="coherence")
    assert err.value.field == "scores.coherence" and err.value.row == "d1/M1"


def test_missing_fields_are_named(tmp_path):
    df = get_adapter("bartscore").read(_summ(tmp_path, 2.0), criterion="coherence")  # corpus from folder
    assert df.loc[0, "example_id"] == "d1/M1" and df.loc[0, "score"] == 2.0
    with pytest.raises(InvalidInput, match="fluency"):
        get_adapter("bartscore").read(tmp_path / "SummEval" / "data.json", corpus="newsroom", criterion="fluency")
    p = tmp_path / "kk-en.json"
    p.write_text(json.dumps({"0": {"src": "s", "ref": "r", "better": {"sys": "a", "sys_name": "x"}}}))
    with pytest.raises(InvalidInput, match="worse"):
        get_adapter("bartscore-wmt").read(p)


def test_empty_output_is_kept_blank_source_skipped(tmp_path):
    from registry.adapters.sources.base import place_pair

    p = tmp_path / "kk-en.json"
    p.write_text(json.dumps({
        "0": {"src": "s", "ref": "r", "better": {"sys": "good", "sys_name": "x"},
              "worse": {"sys": "", "sys_name": "y"}},
        "1": {"src": " ", "ref": "r", "better": {"sys": "a", "sys_name": "x"}, "worse": {"sys": "b", "sys_name": "y"}},
    }))
    df = get_adapter("bartscore-wmt").read(p)
    assert list(df["example_id"]) == ["0"]
    assert tuple(df.loc[0, ["response_a", "response_b", "label"]]) == place_pair("0", "good", "")
    better = df.loc[0, "response_a"] if df.loc[0, "label"] == "A" else df.loc[0, "response_b"]
    assert better == "good" and "" in (df.loc[0, "response_a"], df.loc[0, "response_b"])
    p.write_text(json.dumps({"0": {"src": "s", "ref": "r", "better": {"sys": "a", "sys_name": "x"},
                                   "worse": {"sys": None, "sys_name": "y"}}}))
    with pytest.raises(InvalidInput, match="'sys'"):
        get_adapter("bartscore-wmt").read(p)
    summ = _summ(tmp_path, 3.0)
    data = json.loads(summ.read_text())
    data["d1"]["sys_summs"]["M1"]["sys_summ"] = ""
    summ.write_text(json.dumps(data))
    df = get_adapter("bartscore").read(summ, criterion="coherence")
    assert (df.loc[0, "response"], df.loc[0, "score"]) == ("", 3.0)
