import json

import pytest

from registry.adapters.sources import get_adapter
from registry.adapters.sources.unieval import example_ids
from registry.errors import InvalidInput

ROOT = "maszhongming__UniEval/reproduce"


@pytest.fixture(scope="module")
def sets(data_root):
    adapter = get_adapter("unieval")
    return {d.name: (d, adapter.read(data_root / d.path, **d.options)) for d in adapter.catalog()}


def test_catalog_sizes_and_scales(sets):
    dialogue = {"understandability": (0, 1), "naturalness": (1, 3), "coherence": (1, 3), "engagingness": (1, 3),
                "groundedness": (0, 1), "overall": (1, 5)}
    expected = {
        **{f"topical-chat-{c}": (360, s) for c, s in dialogue.items()},
        **{f"sf{d}-{c}": (n, (1, 6)) for d, n in (("hot", 875), ("res", 1181))
           for c in ("informativeness", "naturalness", "overall")},
        "qags-cnndm-consistency": (235, (0, 1)), "qags-xsum-consistency": (239, (0, 1)),
    }
    assert {name: (len(df), d.scale) for name, (d, df) in sets.items()} == expected
    for d, df in sets.values():
        assert df["example_id"].is_unique
        assert df["score"].between(*d.scale).all()
        assert df["score"].min() == d.scale[0] and df["score"].max() == d.scale[1]  # the full range occurs
        assert (df["criterion"] == d.options["criterion"]).all()


def test_spot_values(sets):
    tc = sets["topical-chat-engagingness"][1]
    assert tc["system_id"].value_counts().eq(60).all() and tc["system_id"].nunique() == 6
    first = tc.iloc[0]
    assert first["system_id"] == "Original Ground Truth" and first["score"] == 3.0 and first["num_annotators"] == 3
    assert first["instruction"].startswith("dialogue history:\nso , i 'm reading the latest film from studio ghibli")
    assert "\n\nfact:\nfrom left , emma baker" in first["instruction"]
    hot = sets["sfhot-informativeness"][1].set_index("example_id")
    assert hot.loc["0", "score"] == 4.5 and hot.loc["0", "instruction"] == "confirm(area='cathedral hill')"
    assert hot.loc["0", "reference"] == "Confirms the area cathedral hill ." and hot.loc["0", "system_id"] is None
    assert sets["sfhot-naturalness"][1].set_index("example_id").loc["0", "score"] == 3.5
    xsum = sets["qags-xsum-consistency"][1]
    assert set(xsum["score"]) == {0.0, 1.0} and (xsum["system_id"] == "0").all()


def test_prediction_files_map_onto_example_ids(sets, data_root):
    for d, df in sets.values():
        rel = d.path.removeprefix(f"{ROOT}/data/").removesuffix(".json")
        pred = json.loads((data_root / ROOT / "unieval_predict" / f"{rel}_result.json").read_text())
        assert example_ids(pred) == list(df["example_id"])
        assert [p["scores"][d.options["criterion"]] for p in pred] == list(df["score"])


def _write(tmp_path, records):
    p = tmp_path / "data2text" / "sfhot.json"
    p.parent.mkdir(exist_ok=True)
    p.write_text(json.dumps(records))
    return p


REC = {"doc_id": 0, "source": "inform(x=1)", "reference": "r", "system_output": "out",
       "scores": {"informativeness": 4.0, "naturalness": 3.0, "overall": 2.0}}


def test_missing_output_names_field(tmp_path):
    rec = {k: v for k, v in REC.items() if k != "system_output"}
    with pytest.raises(InvalidInput, match="system_output") as err:
        get_adapter("unieval").read(_write(tmp_path, [rec]), criterion="overall")  # subset from the path
    assert err.value.row == 0


def test_out_of_scale_and_duplicate_ids(tmp_path):
    with pytest.raises(InvalidInput, match="outside the scale"):
        get_adapter("unieval").read(_write(tmp_path, [dict(REC, scores={"overall": 9})]), criterion="overall")
    with pytest.raises(InvalidInput, match="duplicate doc_id"):
        get_adapter("unieval").read(_write(tmp_path, [REC, REC]), criterion="overall")


def test_empty_output_is_kept_null_output_rejected(tmp_path):
    df = get_adapter("unieval").read(_write(tmp_path, [dict(REC, system_output="")]), criterion="overall")
    assert (df.loc[0, "response"], df.loc[0, "score"]) == ("", 2.0)
    with pytest.raises(InvalidInput, match="system_output"):
        get_adapter("unieval").read(_write(tmp_path, [dict(REC, system_output=None)]), criterion="overall")
