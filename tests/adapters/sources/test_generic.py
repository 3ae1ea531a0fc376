import gzip
import json

import pandas as pd
import pytest

from registry.adapters.sources import get_adapter
from registry.adapters.sources.base import COLUMNS, TASK_TYPES, stable_ids
from registry.adapters.sources.generic import detect_format, parse_pairs
from registry.errors import InvalidInput

PANDALM = "WeOpenML__PandaLM/data/testset-v1.json"
PAIRS = [
    {"question": "What is 2+2?", "answer1": "4", "answer2": "5", "winner": "A>B", "votes": ["A>B", "A>B", "B>A"]},
    {"question": "Capital of France?", "answer1": "Lyon", "answer2": "Paris", "winner": "B>A", "votes": ["B>A"]},
    {"question": "Say hi", "answer1": "hi", "answer2": "hello", "winner": "A=B", "votes": ["A=B", "A>B"]},
]
PAIR_MAP = {"instruction": "question", "response_a": "answer1", "response_b": "answer2", "label": "winner"}
PAIR_LABELS = {"A>B": "A", "B>A": "B", "A=B": "tie"}


@pytest.fixture
def generic():
    return get_adapter("generic")


def _pairwise(generic, path, **kw):
    return generic.read(path, task_type="pairwise", **({"mapping": PAIR_MAP, "label_map": PAIR_LABELS} | kw))


def _error(call) -> str:
    with pytest.raises(InvalidInput) as exc:
        call()
    return str(exc.value)


def test_info_and_empty_catalog(generic):
    assert generic.catalog() == []
    assert set(generic.info.task_types) == set(TASK_TYPES)


def test_detect_format(tmp_path):
    cases = {"a.json": "json", "a.jsonl": "jsonl", "a.JSONL.gz": "jsonl", "a.csv": "csv", "a.csv.gz": "csv",
             "a.tsv": "tsv", "a.parquet": "parquet"}
    for name, fmt in cases.items():
        assert detect_format(tmp_path / name) == fmt
    message = _error(lambda: detect_format(tmp_path / "a.xlsx"))
    assert "a.xlsx" in message and "'.xlsx'" in message and "parquet" in message and "csv" in message


# ----------------------------------------------------------------------------- round-trips


def test_json_list_pairwise_with_annotators(generic, tmp_path):
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps(PAIRS))
    df = _pairwise(generic, path, mapping={**PAIR_MAP, "annotator_labels": "votes"}, category="chat")
    assert list(df.columns) == list(COLUMNS["pairwise"])
    assert list(df["label"]) == ["A", "B", "tie"]
    assert list(df["annotator_labels"]) == [["A", "A", "B"], ["B"], ["tie", "A"]]
    assert list(df["num_annotators"]) == [3, 1, 2]
    assert list(df["example_id"]) == stable_ids([r["question"] for r in PAIRS])
    assert set(df["category"]) == {"chat"}
    # no label column: majority of the annotators, no strict plurality -> tie
    no_label = {k: v for k, v in PAIR_MAP.items() if k != "label"} | {"annotator_labels": "votes"}
    df = generic.read(path, task_type="pairwise", mapping=no_label, label_map=PAIR_LABELS)
    assert list(df["label"]) == ["A", "B", "tie"]


def test_json_object_keyed_by_id_classification(generic, tmp_path):
    path = tmp_path / "claims.json"
    path.write_text(json.dumps({
        "d1": {"doc": "The sky is blue.", "claim": "The sky is blue.", "consistent": True, "meta": {"src": "x"}},
        "d2": {"doc": "Water is wet.", "claim": "Water is dry.", "consistent": False, "meta": {"src": "y"}},
    }))
    mapping = {"instruction": "doc", "response": "claim", "label": "consistent", "metadata": "meta"}
    df = generic.read(path, task_type="classification", mapping=mapping,
                      label_map={"true": "consistent", "false": "inconsistent"})
    assert list(df.columns) == list(COLUMNS["classification"])
    assert list(df["example_id"]) == ["d1", "d2"]
    assert list(df["label"]) == ["consistent", "inconsistent"]
    assert json.loads(df["metadata"][1]) == {"src": "y"}
    assert df.attrs["labels"] == ("consistent", "inconsistent")
    # a mapped id wins over the key; nested fields with dots
    df = generic.read(path, task_type="classification", mapping={**mapping, "example_id": "meta.src"},
                      label_map={"true": "consistent", "false": "inconsistent"})
    assert list(df["example_id"]) == ["x", "y"]


def test_jsonl_pointwise_also_named_json(generic, tmp_path):
    rows = [{"src": "doc one", "summary": "s1", "rating": 4, "sys": "m1"},
            {"src": "doc one", "summary": "s2", "rating": "2.5", "sys": "m2"},
            {"src": "doc two", "summary": "s1", "rating": 1, "sys": "m1"}]
    text = "\n".join(json.dumps(r) for r in rows) + "\n\n"
    mapping = {"instruction": "src", "response": "summary", "score": "rating", "system_id": "sys"}
    for name in ("scores.jsonl", "scores.json"):
        (tmp_path / name).write_text(text)
        df = generic.read(tmp_path / name, task_type="pointwise", mapping=mapping, scale=(1, 5),
                          criterion="coherence")
        assert list(df.columns) == list(COLUMNS["pointwise"])
        assert list(df["score"]) == [4.0, 2.5, 1.0]
        assert set(df["scale_min"]) == {1.0} and set(df["scale_max"]) == {5.0}
        assert set(df["criterion"]) == {"coherence"}
        assert list(df["system_id"]) == ["m1", "m2", "m1"]
        # several responses per prompt: the id hashes the response too
        assert df["example_id"].is_unique and not df["example_id"].str.contains(r"-\d$").any()


def test_csv_pairwise_with_list_strings_and_gzip(generic, tmp_path):
    df_in = pd.DataFrame(PAIRS)
    df_in["votes"] = [json.dumps(v) for v in df_in["votes"]]
    df_in.loc[1, "votes"] = "['B>A', 'B>A']"  # a Python list literal, as pandas.to_csv writes lists
    df_in["id"] = [10, 11, 12]
    path = tmp_path / "pairs.csv"
    df_in.to_csv(path, index=False)
    mapping = {**PAIR_MAP, "annotator_labels": "votes", "example_id": "id"}
    df = _pairwise(generic, path, mapping=mapping)
    assert list(df["label"]) == ["A", "B", "tie"]
    assert list(df["example_id"]) == ["10", "11", "12"]
    assert list(df["annotator_labels"]) == [["A", "A", "B"], ["B", "B"], ["tie", "A"]]
    gz = tmp_path / "pairs.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert _pairwise(generic, gz, mapping=mapping).equals(df)


def test_tsv_classification_identity_columns(generic, tmp_path):
    path = tmp_path / "labels.tsv"
    pd.DataFrame({"instruction": ["q1", "q1", "q2"], "response": ["a", "b", "c"],
                  "label": ["yes", "no", "yes"], "category": ["x", "y", "x"]}).to_csv(path, sep="\t", index=False)
    df = generic.read(path, task_type="classification")
    assert list(df["label"]) == ["yes", "no", "yes"]
    assert list(df["category"]) == ["x", "y", "x"]
    assert df.attrs["labels"] == ("no", "yes")
    assert df["example_id"].is_unique


def test_parquet_pointwise_with_annotator_lists_and_structs(generic, tmp_path):
    path = tmp_path / "scores.parquet"
    pd.DataFrame({
        "prompt": ["p1", "p2"], "output": ["o1", "o2"], "ratings": [[1.0, 2.0, 3.0], [5.0, 4.0]],
        "lo": [1, 1], "hi": [5, 5], "info": [{"id": 7, "model": "m"}, {"id": 8, "model": "n"}],
    }).to_parquet(path)
    mapping = {"instruction": "prompt", "response": "output", "annotator_scores": "ratings",
               "scale_min": "lo", "scale_max": "hi", "example_id": "info.id", "system_id": "info.model"}
    df = generic.read(path, task_type="pointwise", mapping=mapping)
    assert list(df["score"]) == [2.0, 4.5]  # mean of the annotators
    assert list(df["annotator_scores"]) == [[1.0, 2.0, 3.0], [5.0, 4.0]]
    assert list(df["num_annotators"]) == [3, 2]
    assert list(df["example_id"]) == ["7", "8"] and list(df["system_id"]) == ["m", "n"]
    assert set(df["criterion"]) == {"overall"} and df.attrs["scale"] == (1.0, 5.0)


def test_save_to_disk_folder(generic, tmp_path):
    import datasets

    datasets.Dataset.from_list(PAIRS).save_to_disk(str(tmp_path / "ds"))
    assert detect_format(tmp_path / "ds") == "hf"
    df = _pairwise(generic, tmp_path / "ds", mapping={**PAIR_MAP, "annotator_labels": "votes"})
    assert list(df["label"]) == ["A", "B", "tie"] and list(df["num_annotators"]) == [3, 1, 2]

    rows = [{"instruction": "i", "response": "r", "label": "yes"}]
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_list(rows * 2),
                               "test": datasets.Dataset.from_list(rows)})
    dd.save_to_disk(str(tmp_path / "dd"))
    assert len(generic.read(tmp_path / "dd", task_type="classification", split="test")) == 1
    message = _error(lambda: generic.read(tmp_path / "dd", task_type="classification"))
    assert "train" in message and "test" in message and "split" in message


# ----------------------------------------------------------------------------- real data


def test_pandalm_mapped_from_real_file(generic, data_root):
    path = data_root / PANDALM
    raw = json.loads(path.read_text())
    label_map = parse_pairs(["0=tie", "1=A", "2=B"], option="--label-map")
    mapping = parse_pairs(["response_a=response1", "response_b=response2", "label=annotator1"], option="--map")
    df = generic.read(path, task_type="pairwise", mapping=mapping, label_map=label_map)
    assert len(df) == 999 and df["example_id"].is_unique
    assert df["label"].value_counts().to_dict() == {"B": 475, "A": 427, "tie": 97}
    assert list(df["label"]) == [label_map[str(r["annotator1"])] for r in raw]
    # six responses are JSON booleans in the file: kept as their JSON text
    assert list(df["response_b"]) == [r["response2"] if isinstance(r["response2"], str) else "true" for r in raw]
    assert df["response_a"][157] == "true" and raw[157]["response1"] is True
    assert df["instruction"][0] == raw[0]["instruction"]
    # all three annotators, aggregated by majority vote (no strict plurality -> tie)
    mapping = {**mapping, "annotator_labels": "annotator1,annotator2,annotator3", "example_id": "idx"}
    del mapping["label"]
    df = generic.read(path, task_type="pairwise", mapping=mapping, label_map=label_map)
    assert set(df["num_annotators"]) == {3} and df["example_id"][5] == str(raw[5]["idx"])
    for i in (0, 91, 500, 998):
        votes = [label_map[str(raw[i][f"annotator{k}"])] for k in (1, 2, 3)]
        assert df["annotator_labels"][i] == votes
        top = max(set(votes), key=votes.count)
        assert df["label"][i] == (top if votes.count(top) > 1 else "tie")


def test_skip_empty_drops_blank_texts_of_real_file(generic, data_root):
    mapping = {"response_a": "response1", "response_b": "response2", "label": "annotator1"}
    df = generic.read(data_root / PANDALM, task_type="pairwise", mapping=mapping,
                      label_map={"0": "tie", "1": "A", "2": "B"}, skip_empty=True)
    assert len(df) == 999 - 55 and df.attrs["skipped_rows"] == 55  # 1 blank instruction, 54 blank responses
    assert (df["response_a"].str.strip().str.len() > 0).all()


# ----------------------------------------------------------------------------- errors


def test_parse_pairs():
    assert parse_pairs(["A=B=tie", "A>B=A"], option="--label-map") == {"A=B": "tie", "A>B": "A"}
    message = _error(lambda: parse_pairs(["instruction"], option="--map"))
    assert "--map" in message and "'instruction'" in message
    message = _error(lambda: parse_pairs(["=A"], option="--label-map"))
    assert "--label-map" in message and "'=A'" in message


def test_mapped_column_missing_suggests(generic, tmp_path):
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps(PAIRS))
    message = _error(lambda: _pairwise(generic, path, mapping={**PAIR_MAP, "response_a": "anwser1"}))
    assert str(path) in message and "'response_a'" in message and "'anwser1'" in message
    assert "did you mean 'answer1'" in message and "available columns: question, answer1" in message


def test_required_field_without_column(generic, tmp_path):
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps(PAIRS))
    mapping = {k: v for k, v in PAIR_MAP.items() if k != "response_b"}
    message = _error(lambda: _pairwise(generic, path, mapping=mapping))
    assert str(path) in message and "'response_b'" in message and "--map response_b=" in message
    message = _error(lambda: generic.read(path, task_type="pairwise", mapping={"respons_a": "answer1"}))
    assert "'respons_a'" in message and "did you mean 'response_a'" in message


def test_missing_value_names_row_and_field(generic, tmp_path):
    rows = [dict(r) for r in PAIRS]
    rows[1]["answer2"] = None
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps(rows))
    message = _error(lambda: _pairwise(generic, path))
    assert str(path) in message and "row 2," in message and "'response_b'" in message and "missing" in message
    # JSON lines: the line is named, blank lines counted
    jl = tmp_path / "pairs.jsonl"
    jl.write_text(json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n")
    message = _error(lambda: _pairwise(generic, jl))
    assert "row 2 (line 3)" in message and "'response_b'" in message


def test_csv_missing_value_names_line(generic, tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text('question,answer1,answer2,winner\n"multi\nline",a,b,A>B\nq2,a,,B>A\n')
    message = _error(lambda: _pairwise(generic, path))
    assert str(path) in message and "row 2 (line 4)" in message and "'response_b'" in message


def test_label_not_in_label_map(generic, tmp_path):
    rows = [dict(r) for r in PAIRS]
    rows[2]["winner"] = "A>>B"
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps(rows))
    message = _error(lambda: _pairwise(generic, path))
    assert str(path) in message and "row 3," in message and "'label'" in message and "'A>>B'" in message
    rows[2]["winner"] = "A=B"
    rows[0]["votes"] = ["A>B", "??"]
    path.write_text(json.dumps(rows))
    message = _error(lambda: _pairwise(generic, path, mapping={**PAIR_MAP, "annotator_labels": "votes"}))
    assert "row 1," in message and "'annotator_labels'" in message and "'??'" in message
    message = _error(lambda: _pairwise(generic, path, label_map={"A>B": "first"}))
    assert "A, B or tie" in message
    # without a label map pairwise labels must already be A/B/tie
    message = _error(lambda: generic.read(path, task_type="pairwise", mapping=PAIR_MAP))
    assert "row 1," in message and "'label'" in message and "--label-map" in message


def test_score_not_a_number_or_out_of_scale(generic, tmp_path):
    path = tmp_path / "scores.csv"
    path.write_text("instruction,response,score\nq,a,3\nq,b,three\n")
    message = _error(lambda: generic.read(path, task_type="pointwise", scale=(1, 5)))
    assert str(path) in message and "row 2 (line 3)" in message and "'score'" in message and "'three'" in message
    path.write_text("instruction,response,score\nq,a,3\nq,b,7\n")
    message = _error(lambda: generic.read(path, task_type="pointwise", scale=(1, 5)))
    assert "row 2 (line 3)" in message and "outside the scale [1, 5]" in message
    message = _error(lambda: generic.read(path, task_type="pointwise"))
    assert "scale" in message and str(path) in message


def test_duplicate_mapped_ids(generic, tmp_path):
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps([dict(r, id=1) for r in PAIRS]))
    message = _error(lambda: _pairwise(generic, path, mapping={**PAIR_MAP, "example_id": "id"}))
    assert "row 2," in message and "'example_id'" in message and "duplicate id '1'" in message


def test_reading_errors(generic, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[\n  {"question": "q",\n   "answer1": }\n]')
    message = _error(lambda: _pairwise(generic, bad))
    assert str(bad) in message and "line 3 column" in message
    lines = tmp_path / "bad.jsonl"
    lines.write_text(json.dumps(PAIRS[0]) + "\n" + json.dumps(PAIRS[1]) + "\n{oops\n")
    message = _error(lambda: _pairwise(generic, lines))
    assert str(lines) in message and "row 3" in message and "malformed JSON" in message
    latin = tmp_path / "latin.csv"
    latin.write_bytes("question,answer1,answer2,winner\ncafé,a,b,A>B\n".encode("latin-1"))
    message = _error(lambda: _pairwise(generic, latin))
    assert str(latin) in message and "UTF-8" in message and "line 2" in message
    csv = tmp_path / "bad.csv"
    csv.write_text('question,answer1,answer2,winner\n"multi\nline",a,b,A>B\n\nq,a,b,A>B,extra\n')
    message = _error(lambda: _pairwise(generic, csv))  # physical line, not pandas' record count
    assert str(csv) in message and "malformed CSV at line 5: Expected 4 fields, saw 5" in message
    csv.write_text('question,answer1,answer2,winner\nq,a,b,A>B\n"q2,a,b,A>B\n')
    assert "malformed CSV at line 3: EOF inside string" in _error(lambda: _pairwise(generic, csv))
    other = tmp_path / "data.xlsx"
    other.write_bytes(b"x")
    message = _error(lambda: _pairwise(generic, other))
    assert str(other) in message and "supported formats" in message and "tsv" in message
    message = _error(lambda: _pairwise(generic, tmp_path / "nope.json"))
    assert "does not exist" in message
    not_parquet = tmp_path / "x.parquet"
    not_parquet.write_text("hello")
    assert "Parquet" in _error(lambda: _pairwise(generic, not_parquet))
