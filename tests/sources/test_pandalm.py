import json

import pytest

from registry.adapters.sources import get_adapter
from registry.errors import InvalidInput

PATH = "WeOpenML__PandaLM/data/testset-v1.json"


@pytest.fixture(scope="module")
def df(data_root):
    adapter = get_adapter("pandalm")
    (d,) = adapter.catalog()
    assert d.name == "pandalm-test" and d.path == PATH
    return adapter.read(data_root / d.path, **d.options)


def test_rows_labels_and_skips(df):
    assert len(df) == 945  # 999 minus 54 rows with an empty response
    assert df["example_id"].is_unique
    assert df["label"].value_counts().to_dict() == {"B": 444, "A": 398, "tie": 103}
    assert (df["num_annotators"] == 3).all()
    assert df["annotator_labels"].map(len).eq(3).all()
    assert not {"18", "19", "25", "998"} & set(df["example_id"])  # empty response1 / response2
    for col in ("instruction", "response_a", "response_b"):
        assert df[col].str.strip().str.len().gt(0).all()


def test_annotators_and_majority_match_file(df, data_root):
    raw = {str(r["idx"]): r for r in json.loads((data_root / PATH).read_text())}
    votes = {0: "tie", 1: "A", 2: "B"}
    for row in df.itertuples():
        rec = raw[row.example_id]
        assert row.annotator_labels == [votes[rec[f"annotator{k}"]] for k in (1, 2, 3)]
    by_id = df.set_index("example_id")
    assert by_id.loc["222", "annotator_labels"] == ["B", "A", "B"] and by_id.loc["222", "label"] == "B"
    assert by_id.loc["183", "annotator_labels"] == ["A", "tie", "tie"] and by_id.loc["183", "label"] == "tie"
    assert by_id.loc["0", "label"] == "B"
    assert by_id.loc["0", "response_b"] == "If you have any questions, please let me know."
    assert by_id.loc["0", "instruction"] == raw["0"]["instruction"] + "\n\n" + raw["0"]["input"]
    assert by_id.loc["0", "category"] == "bloom-7b_llama-7b"
    assert json.loads(by_id.loc["0", "metadata"])["motivation_app"] == "Grammarly"


def test_blank_instruction_and_boolean_response(df):
    by_id = df.set_index("example_id")
    assert by_id.loc["466", "instruction"] == "Truthfulness"  # instruction " ", input "Truthfulness"
    assert by_id.loc["157", "response_a"] == "True"  # JSON true in the file
    assert by_id.loc["157", "annotator_labels"] == ["A", "A", "tie"]


def _write(tmp_path, records):
    p = tmp_path / "testset.json"
    p.write_text(json.dumps(records))
    return p


GOOD = {"idx": 7, "instruction": "Say hi", "input": "", "response1": "hi", "response2": "hello",
        "annotator1": 1, "annotator2": 0, "annotator3": 2, "cmp_key": "a_b", "motivation_app": "x"}


def test_three_way_split_is_tie(tmp_path):
    df = get_adapter("pandalm").read(_write(tmp_path, [GOOD]))
    assert df.loc[0, "label"] == "tie" and df.loc[0, "instruction"] == "Say hi"


def test_missing_annotator_names_field(tmp_path):
    rec = {k: v for k, v in GOOD.items() if k != "annotator2"}
    with pytest.raises(InvalidInput, match="annotator2"):
        get_adapter("pandalm").read(_write(tmp_path, [rec]))


def test_unknown_vote_names_field(tmp_path):
    with pytest.raises(InvalidInput) as err:
        get_adapter("pandalm").read(_write(tmp_path, [dict(GOOD, annotator3=3)]))
    assert err.value.field == "annotator3"
