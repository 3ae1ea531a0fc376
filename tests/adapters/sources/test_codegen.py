import json

import pytest

from registry.adapters.sources import COLUMNS, get_adapter
from registry.errors import InvalidInput


def _read(data_root):
    adapter = get_adapter("codegen-conala")
    [d] = adapter.catalog()
    return d, adapter.read(data_root / d.path, **d.options)


def test_conala_reads_all_systems(data_root):
    d, df = _read(data_root)
    assert d.name == "conala-usefulness" and d.scale == (0.0, 4.0)
    assert list(df.columns) == list(COLUMNS["pointwise"])
    assert len(df) == 472 * 6 == 2832  # nothing skipped, the two empty tranx-annot outputs included
    assert df["system_id"].value_counts().to_dict() == {s: 472 for s in (
        "snippet", "baseline", "tranx-annot", "best-tranx", "best-tranx-rerank", "codex")}
    assert df["example_id"].is_unique
    assert df["score"].between(0, 4).all() and (df["scale_min"] == 0).all() and (df["scale_max"] == 4).all()
    assert (df["criterion"] == "usefulness").all()
    assert (df["response"].str.strip().str.len() > 0).sum() == len(df) - 2
    assert (df["num_annotators"] == df["annotator_scores"].map(len)).all()
    assert df["num_annotators"].between(2, 10).all()
    means = df.groupby("system_id")["score"].mean()
    assert means.idxmax() == "snippet" and means.idxmin() == "baseline"
    assert round(means["codex"], 4) == 2.5473


def test_conala_empty_generated_code_is_kept(data_root):
    _, df = _read(data_root)
    empty = df[df["response"] == ""].set_index("instruction")
    assert list(empty["system_id"]) == ["tranx-annot", "tranx-annot"]
    # record 128: graded 0 by all five graders; record 396: by all three
    row = empty.loc["Update datetime field in `MyModel` to be the existing `timestamp` plus 100 years"]
    assert row["score"] == 0.0 and list(row["annotator_scores"]) == [0.0] * 5 and row["num_annotators"] == 5
    assert row["reference"] == "MyModel.objects.update(timestamp=F('timestamp') + timedelta(days=36524.25))"
    assert json.loads(row["metadata"]) == {
        "graders": ["grader11", "grader4", "grader12", "grader8", "grader3"], "published_grade": 0}
    row = empty.loc["How to delete all instances of a character in a string in python?"]
    assert row["score"] == 0.0 and list(row["annotator_scores"]) == [0.0] * 3


def test_conala_aggregates_graders_by_mean(data_root):
    _, df = _read(data_root)
    first = df[df["instruction"] == "send a signal `signal.SIGUSR1` to the current process"].set_index("system_id")
    base = first.loc["baseline"]  # {"grader11": 0, "grader4": 0, "grader8": 1}
    assert list(base["annotator_scores"]) == [0.0, 0.0, 1.0]
    assert base["score"] == pytest.approx(1 / 3)
    assert json.loads(base["metadata"]) == {"graders": ["grader11", "grader4", "grader8"], "published_grade": 0}
    assert base["reference"] == "os.kill(os.getpid(), signal.SIGUSR1)"
    ref = first.loc["snippet"]  # the human reference, graded [4, 4, 1, 4]
    assert ref["score"] == 3.25 and ref["response"] == "os.kill(os.getpid(), signal.SIGUSR1)"
    assert "published_grade" not in json.loads(ref["metadata"])
    # a reference with several solutions is joined by newlines
    multi = df[(df["system_id"] == "snippet") & df["response"].str.startswith("res = {k: v for k, v")]
    assert multi.iloc[0]["response"].count("\n") == 1


def test_conala_bad_input(tmp_path):
    adapter = get_adapter("codegen-conala")
    record = {"intent": "i", "snippet": ["x"], "baseline": "a", "tranx-annot": "b", "best-tranx": "c",
              "best-tranx-rerank": "d", "codex": "e"}
    grades = {f"grade-{s}": {"g1": 1} for s in ("snippet", "baseline", "tranx-annot", "best-tranx",
                                                 "best-tranx-rerank", "codex")}
    path = tmp_path / "conala-human-grades.json"
    path.write_text(json.dumps([{**record, **grades}]))
    assert len(adapter.read(path)) == 6
    path.write_text(json.dumps([{**record, "codex": "", **grades}]))
    assert adapter.read(path).set_index("system_id").loc["codex", "response"] == ""
    path.write_text(json.dumps([{**record, "codex": None, **grades}]))
    with pytest.raises(InvalidInput, match="'codex'"):
        adapter.read(path)
    path.write_text(json.dumps([{**record, "intent": " ", **grades}]))
    with pytest.raises(InvalidInput, match="'intent'"):
        adapter.read(path)
    del grades["grade-codex"]
    path.write_text(json.dumps([{**record, **grades}]))
    with pytest.raises(InvalidInput, match="'grade-codex'"):
        adapter.read(path)
    grades["grade-codex"] = {"g1": 7}
    path.write_text(json.dumps([{**record, **grades}]))
    with pytest.raises(InvalidInput, match="not a number in 0-4"):
        adapter.read(path)
