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


def test_rows_labels_and_nothing_skipped(df):
    assert len(df) == 999  # every row, the 54 with an empty response included
    assert df["example_id"].is_unique
    assert df["label"].value_counts().to_dict() == {"B": 472, "A": 422, "tie": 105}
    assert (df["num_annotators"] == 3).all()
    assert df["annotator_labels"].map(len).eq(3).all()
    assert df["instruction"].str.strip().str.len().gt(0).all()
    assert (df["response_a"] == "").sum() == 29 and (df["response_b"] == "").sum() == 25
    assert not ((df["response_a"] == "") & (df["response_b"] == "")).any()
    # a response is either "" or has visible text (no whitespace-only answers in v1)
    for col in ("response_a", "response_b"):
        assert (df[col].eq("") | df[col].str.strip().str.len().gt(0)).all()


def test_empty_responses_are_kept_with_their_labels(df, data_root):
    raw = {str(r["idx"]): r for r in json.loads((data_root / PATH).read_text())}
    by_id = df.set_index("example_id")
    empty = by_id[(by_id["response_a"] == "") | (by_id["response_b"] == "")]
    assert sorted(empty.index, key=int)[:4] == ["18", "19", "25", "301"]
    for example_id, row in empty.iterrows():
        rec = raw[example_id]
        assert (row["response_a"], row["response_b"]) == (rec["response1"], rec["response2"])
    # idx 18: empty response1, all three annotators prefer response2
    assert by_id.loc["18", "response_a"] == "" and by_id.loc["18", "response_b"].startswith("Some popular careers")
    assert by_id.loc["18", "annotator_labels"] == ["B", "B", "B"] and by_id.loc["18", "label"] == "B"
    # idx 301: empty response2, yet two of three annotators prefer it
    assert by_id.loc["301", "response_b"] == ""
    assert by_id.loc["301", "annotator_labels"] == ["B", "A", "A"] and by_id.loc["301", "label"] == "A"
    # the file's own votes: mostly for the non-empty side
    assert empty.loc[empty["response_a"] == "", "label"].value_counts().to_dict() == {"B": 28, "A": 1}
    assert empty.loc[empty["response_b"] == "", "label"].value_counts().to_dict() == {"A": 23, "tie": 2}


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


def test_blank_instruction_is_skipped_empty_response_kept(tmp_path):
    recs = [dict(GOOD, idx=1, instruction=" ", input=""), dict(GOOD, idx=2, response2="")]
    df = get_adapter("pandalm").read(_write(tmp_path, recs))
    assert list(df["example_id"]) == ["2"] and df.loc[0, "response_b"] == ""


def test_null_response_names_field(tmp_path):
    with pytest.raises(InvalidInput) as err:
        get_adapter("pandalm").read(_write(tmp_path, [dict(GOOD, response1=None)]))
    assert err.value.field == "response1"


def test_missing_annotator_names_field(tmp_path):
    rec = {k: v for k, v in GOOD.items() if k != "annotator2"}
    with pytest.raises(InvalidInput, match="annotator2"):
        get_adapter("pandalm").read(_write(tmp_path, [rec]))


def test_unknown_vote_names_field(tmp_path):
    with pytest.raises(InvalidInput) as err:
        get_adapter("pandalm").read(_write(tmp_path, [dict(GOOD, annotator3=3)]))
    assert err.value.field == "annotator3"
