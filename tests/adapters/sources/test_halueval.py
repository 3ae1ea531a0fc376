import json

import pytest

from registry.adapters.sources import COLUMNS, get_adapter
from registry.errors import InvalidInput


def test_halueval_reads_general(data_root):
    adapter = get_adapter("halueval")
    [d] = adapter.catalog()
    df = adapter.read(data_root / d.path, **d.options)
    assert d.name == "halueval-general" and d.labels == ("hallucinated", "not_hallucinated")
    assert list(df.columns) == list(COLUMNS["classification"])
    assert len(df) == 4507
    assert df["label"].value_counts().to_dict() == {"not_hallucinated": 3692, "hallucinated": 815}
    assert df["example_id"].is_unique
    assert (df["response"].str.strip().str.len() > 0).all()
    # the 3 lines with a broken ID ("" or "ID") get content ids; the others keep theirs
    assert df["example_id"].str.startswith("h-").sum() == 3
    assert list(df["example_id"].iloc[[0, 1973, 1975]]) == ["1", "1974", "1976"]
    assert df["example_id"].iloc[1974].startswith("h-")


def test_halueval_rows_match_file(data_root):
    adapter = get_adapter("halueval")
    path = data_root / adapter.catalog()[0].path
    raw = [json.loads(line) for line in path.read_text().splitlines()]
    df = adapter.read(path)
    assert list(df["instruction"]) == [r["user_query"] for r in raw]
    assert list(df["label"]) == [{"yes": "hallucinated", "no": "not_hallucinated"}[r["hallucination"]] for r in raw]
    spans = [json.loads(m)["hallucination_spans"] for m in df["metadata"] if isinstance(m, str)]
    assert len(spans) == 802 and all(spans)


def test_halueval_bad_input(tmp_path):
    adapter = get_adapter("halueval")
    path = tmp_path / "general_data.json"
    path.write_text(json.dumps({"ID": "1", "user_query": "q", "chatgpt_response": "r"}) + "\n")
    with pytest.raises(InvalidInput, match="'hallucination'"):
        adapter.read(path)
    path.write_text(json.dumps({"ID": "1", "user_query": "q", "chatgpt_response": "r",
                                "hallucination": "maybe"}) + "\n")
    with pytest.raises(InvalidInput, match="unknown label 'maybe'"):
        adapter.read(path)
    path.write_text('{"ID": "1", "user_query": "q",\n')
    with pytest.raises(InvalidInput, match="row 1"):
        adapter.read(path)


def test_halueval_empty_response_is_kept(tmp_path):
    adapter = get_adapter("halueval")
    path = tmp_path / "general_data.json"
    path.write_text(json.dumps({"ID": "1", "user_query": "q", "chatgpt_response": "", "hallucination": "no"}) + "\n")
    df = adapter.read(path)
    assert (df.loc[0, "response"], df.loc[0, "label"]) == ("", "not_hallucinated")
    path.write_text(json.dumps({"ID": "1", "user_query": "q", "chatgpt_response": None, "hallucination": "no"}) + "\n")
    with pytest.raises(InvalidInput, match="'chatgpt_response'"):
        adapter.read(path)
