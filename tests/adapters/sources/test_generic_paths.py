"""Paths into records for the generic mapper and :func:`select_fields`: dotted paths with list
indices, objects of lists (``@key``), row numbers (``@row``, ``--id-from-row``) and the error that
shows a file's layout when a path leads nowhere."""

import json

import pandas as pd
import pytest

from registry.adapters.sources import generic as generic_module
from registry.adapters.sources import get_adapter
from registry.adapters.sources.generic import parse_pairs, select_fields
from registry.errors import InvalidInput

NATURAL = "princeton-nlp__LLMBar/Dataset/LLMBar/Natural"

CHATS = [
    {"id": "c1", "turns": [{"role": "user", "content": "Say hi"}, {"role": "a", "content": "hi"},
                           {"role": "b", "content": "hello"}],
     "judgments": [{"score": 4, "decision": "A"}, {"score": 2, "decision": "B"}]},
    {"id": "c2", "turns": [{"role": "user", "content": "2+2?"}, {"role": "a", "content": "5"},
                           {"role": "b", "content": "4"}],
     "judgments": [{"score": 1, "decision": "B"}]},
    {"id": "c3", "turns": [{"role": "user", "content": "Capital of France?"}, {"role": "a", "content": "Paris"},
                           {"role": "b", "content": "Lyon"}],
     "judgments": [{"score": 5, "decision": "A"}]},
]
CHAT_MAP = {"instruction": "turns.0.content", "response_a": "turns.1.content", "response_b": "turns.-1.content",
            "label": "judgments.0.decision", "example_id": "id"}


@pytest.fixture
def generic():
    return get_adapter("generic")


def _error(call) -> str:
    with pytest.raises(InvalidInput) as exc:
        call()
    return str(exc.value)


def _write(path, records, *, lines=False):
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n" if lines else json.dumps(records))
    return path


def test_dotted_paths_with_list_indices_in_json_and_jsonl(generic, tmp_path, monkeypatch):
    frames = []
    for name, lines in (("chats.json", False), ("chats.jsonl", True)):
        path = _write(tmp_path / name, CHATS, lines=lines)
        df = generic.read(path, task_type="pairwise", mapping=CHAT_MAP)
        assert list(df["instruction"]) == ["Say hi", "2+2?", "Capital of France?"]
        assert list(df["response_a"]) == ["hi", "5", "Paris"]
        assert list(df["response_b"]) == ["hello", "4", "Lyon"]  # -1: the last turn
        assert list(df["label"]) == ["A", "B", "A"] and list(df["example_id"]) == ["c1", "c2", "c3"]
        frames.append(df)
    pd.testing.assert_frame_equal(frames[0], frames[1])
    # JSON lines with paths into the records go to the row reader before pyarrow reads the file
    monkeypatch.setattr(generic_module, "read_json_lines_table", lambda path: pytest.fail("columnar reader used"))
    generic.read(tmp_path / "chats.jsonl", task_type="pairwise", mapping=CHAT_MAP)


def test_paths_into_parquet_records(generic, tmp_path):
    path = tmp_path / "chats.parquet"
    pd.DataFrame(CHATS).to_parquet(path)
    df = generic.read(path, task_type="pairwise", mapping=CHAT_MAP)
    assert list(df["label"]) == ["A", "B", "A"] and list(df["response_b"]) == ["hello", "4", "Lyon"]


def test_literal_dotted_column_wins(generic, tmp_path, monkeypatch):
    rows = [{"q": f"question {i}", "r": f"answer {i}", "meta.label": lab, "meta": {"label": "no"}}
            for i, lab in enumerate(["yes", "no", "yes"])]
    mapping = {"instruction": "q", "response": "r", "label": "meta.label"}
    df = generic.read(_write(tmp_path / "x.json", rows), task_type="classification", mapping=mapping)
    assert list(df["label"]) == ["yes", "no", "yes"]
    # JSON lines: the literal column is seen in the first line, the columnar reader stays in use
    jl = _write(tmp_path / "x.jsonl", rows, lines=True)
    real = generic_module.read_json_lines_table
    used = []
    monkeypatch.setattr(generic_module, "read_json_lines_table", lambda path: used.append(path) or real(path))
    assert list(generic.read(jl, task_type="classification", mapping=mapping)["label"]) == ["yes", "no", "yes"]
    assert used == [jl]
    # nested levels too: a key with a dot inside an object
    nested = [{"q": "q", "r": "r", "meta": {"a.b": "yes", "a": {"b": "no"}}}]
    df = generic.read(_write(tmp_path / "n.json", nested), task_type="classification",
                      mapping={"instruction": "q", "response": "r", "label": "meta.a.b"})
    assert list(df["label"]) == ["yes"]
    # CSV headers with dots are columns as they always were
    csv = tmp_path / "x.csv"
    csv.write_text("q,r,meta.label\nq1,r1,yes\nq2,r2,no\n")
    assert list(generic.read(csv, task_type="classification", mapping=mapping)["label"]) == ["yes", "no"]


def test_dict_of_lists_with_key(generic, tmp_path):
    data = {"math": [{"q": "1+1", "a": "2", "ok": "yes"}, {"q": "2+2", "a": "5", "ok": "no"}],
            "empty": [],
            "code": [{"q": "print 1", "a": "1", "ok": "yes"}]}
    path = tmp_path / "by_category.json"
    path.write_text(json.dumps(data))
    mapping = {"instruction": "q", "response": "a", "label": "ok", "category": "@key"}
    df = generic.read(path, task_type="classification", mapping=mapping)
    assert list(df["instruction"]) == ["1+1", "2+2", "print 1"]  # file order
    assert list(df["category"]) == ["math", "math", "code"]
    assert df["example_id"].is_unique and not df["example_id"].isin(["math", "code"]).any()
    # the key names the row in messages
    data["code"][0]["ok"] = None
    path.write_text(json.dumps(data))
    message = _error(lambda: generic.read(path, task_type="classification", mapping=mapping))
    assert "row 3 (key 'code')" in message and "'label'" in message and "missing value" in message
    # @key where the file has no keys
    flat = _write(tmp_path / "flat.json", [{"q": "q", "a": "a", "ok": "yes"}])
    message = _error(lambda: generic.read(flat, task_type="classification", mapping=mapping))
    assert str(flat) in message and "'category'" in message and "@key" in message


def test_row_numbers_as_ids(generic, tmp_path, monkeypatch):
    rows = [{"question": f"q{i}", "answer": "" if i == 1 else f"a{i}", "label": "yes"} for i in range(4)]
    mapping = {"instruction": "question", "response": "answer"}
    csv = tmp_path / "rows.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    for path in (_write(tmp_path / "rows.json", rows), _write(tmp_path / "rows.jsonl", rows, lines=True), csv):
        kw = dict(task_type="classification", mapping=mapping)
        if path.suffix != ".csv":  # an empty CSV cell is a missing value, not a blank text
            df = generic.read(path, id_from_row=True, skip_empty=True, **kw)
            assert list(df["example_id"]) == ["0", "2", "3"]  # the source rows, blank row 1 skipped
        df = generic.read(path, id_from_row=True, **({**kw, "mapping": {**mapping, "response": "label"}}))
        assert list(df["example_id"]) == ["0", "1", "2", "3"]
        at_row = generic.read(path, **({**kw, "mapping": {**mapping, "response": "label", "example_id": "@row"}}))
        pd.testing.assert_frame_equal(df, at_row)
    # the columnar JSON-lines reader gives the row ids itself, as the row reader does
    jl = tmp_path / "rows.jsonl"
    kw = dict(task_type="classification", mapping={**mapping, "response": "label"})
    monkeypatch.setattr(generic_module, "load_table", lambda *a, **k: pytest.fail("row reader used"))
    fast = generic.read(jl, id_from_row=True, **kw)
    monkeypatch.undo()
    monkeypatch.setattr(generic_module, "FAST_PATH", False)
    slow = generic.read(jl, id_from_row="true", **kw)
    pd.testing.assert_frame_equal(fast, slow)
    assert list(slow["example_id"]) == ["0", "1", "2", "3"]
    message = _error(lambda: generic.read(jl, task_type="classification", mapping={**mapping, "example_id": "id"},
                                          id_from_row=True))
    assert "--id-from-row" in message and "example_id" in message
    assert "true or false" in _error(lambda: generic.read(jl, task_type="classification", id_from_row="maybe"))


def test_missing_path_shows_the_layout(generic, tmp_path):
    records = [dict(r) for r in CHATS]
    records[2] = {**records[2], "judgments": [{"score": 5}]}
    path = _write(tmp_path / "x.json", records)
    message = _error(lambda: generic.read(path, task_type="pairwise", mapping=CHAT_MAP))
    assert message.startswith(f"file {path}, row 3, field 'label': no 'judgments.0.decision' in the record")
    assert "('judgments.0' has no 'decision')" in message
    assert 'the records look like {"id": str, "turns": [{"role": str, "content": str}], ' \
           '"judgments": [{"score": int}]}' in message
    # a list too short, in a JSON-lines file: the line is named
    records[2]["judgments"] = []
    jl = _write(tmp_path / "x.jsonl", records, lines=True)
    message = _error(lambda: generic.read(jl, task_type="pairwise", mapping=CHAT_MAP))
    assert "row 3 (line 3), field 'label'" in message and "'judgments' is a list of 0 items: no index 0" in message
    # a path in no record: the first record, and what the user may have meant
    message = _error(lambda: generic.read(path, task_type="pairwise",
                                          mapping={**CHAT_MAP, "label": "judgement.0.decision"}))
    assert "row 1, field 'label': no 'judgement.0.decision' in the record" in message
    assert "did you mean 'judgments.0.decision'" in message
    # an optional field whose path is missing in some records is None there; a JSON null stays "missing"
    df = generic.read(_write(tmp_path / "ok.json", CHATS), task_type="pairwise",
                      mapping={**CHAT_MAP, "label": "judgments.-1.decision", "reference": "judgments.1.decision"})
    assert list(df["label"]) == ["B", "B", "A"]
    assert [None if pd.isna(v) else v for v in df["reference"]] == ["B", None, None]
    records[2]["judgments"] = [{"decision": None}]
    path.write_text(json.dumps(records))
    message = _error(lambda: generic.read(path, task_type="pairwise", mapping=CHAT_MAP))
    assert "row 3, field 'label': missing value" in message
    # a long record is sketched in a line
    wide = _write(tmp_path / "wide.json", [{f"column_{i}": {"x": [1]} for i in range(40)}])
    message = _error(lambda: select_fields(wide, {"label": "nope.x"}))
    assert '"column_5": {"x": [int]}, ...}' in message and "(51 more)" in message and len(message) < 1000


def test_missing_path_in_dict_of_lists_shows_the_top_level(tmp_path):
    path = tmp_path / "groups.json"
    path.write_text(json.dumps({"helpful": [{"prompt": "p", "verdict": {"winner": "A"}}],
                                "harmless": [{"prompt": "q", "verdict": {}}]}))
    message = _error(lambda: select_fields(path, {"label": "verdict.winner"}))
    assert "row 2 (key 'harmless'), field 'label': no 'verdict.winner' in the record ('verdict' has no 'winner')" \
        in message
    assert 'the file is an object of lists {"helpful": [{"prompt": str, "verdict": {"winner": str}}], ' \
           '"harmless": [{"prompt": str, "verdict": {}}]} (@key is a record\'s key)' in message


def test_select_fields_every_kind_of_path(tmp_path):
    path = _write(tmp_path / "chats.jsonl", CHATS, lines=True)
    out = select_fields(path, {"example_id": "@row", "id": "id", "winner": "judgments.0.decision",
                               "second": "judgments.1.score"}, optional={"second"})
    assert out == {"example_id": ["0", "1", "2"], "id": ["c1", "c2", "c3"], "winner": ["A", "B", "A"],
                   "second": [2, None, None]}
    message = _error(lambda: select_fields(path, {"second": "judgments.1.score"}))
    assert "row 2 (line 2), field 'second': no 'judgments.1.score'" in message
    csv = tmp_path / "preds.csv"
    csv.write_text("id,a.b\n10,x\n11,\n")
    assert select_fields(csv, {"id": "id", "v": "a.b", "r": "@row"}) == \
        {"id": ["10", "11"], "v": ["x", None], "r": ["0", "1"]}
    message = _error(lambda: select_fields(csv, {"v": "a.c"}))
    assert str(csv) in message and "'v'" in message and "'a.c'" in message and "a.b" in message
    groups = tmp_path / "groups.json"
    groups.write_text(json.dumps({"x": [{"v": 1}, {"v": 2}], "y": [{"v": 3}]}))
    assert select_fields(groups, {"k": "@key", "v": "v", "r": "@row"}) == \
        {"k": ["x", "x", "y"], "v": [1, 2, 3], "r": ["0", "1", "2"]}
    keyed = tmp_path / "keyed.json"
    keyed.write_text(json.dumps({"d1": {"v": 1}, "d2": {"v": 2}}))
    assert select_fields(keyed, {"k": "@key"}) == {"k": ["d1", "d2"]}


def test_map_paths_may_hold_equals_signs():
    assert parse_pairs(["label=results.0.swap = False.winner"], option="--map") == \
        {"label": "results.0.swap = False.winner"}
    assert parse_pairs(["A=B=tie"], option="--label-map") == {"A=B": "tie"}


def test_select_fields_on_a_real_nested_result_file(data_root):
    """LLMBar's result files nest each judge's verdicts: results.0.<order>.winner."""
    result = data_root / NATURAL / "evaluators/GPT-4/Vanilla/result.json"
    raw = json.loads(result.read_text())
    out = select_fields(result, {"row": "@row", "first": "results.0.swap = False.winner",
                                 "swapped": "results.0.swap = True.winner"})
    assert out["row"] == [str(i) for i in range(100)]
    assert out["first"] == [r["results"][0]["swap = False"]["winner"] for r in raw]
    assert out["swapped"] == [r["results"][0]["swap = True"]["winner"] for r in raw]
    message = _error(lambda: select_fields(result, {"winner": "results.0.winner"}))
    assert "row 1, field 'winner': no 'results.0.winner' in the record ('results.0' has no 'winner')" in message
    assert '"results": [{"swap = False": {"completion": [...], "winner": str}, "swap = True": {' in message
    assert "did you mean 'results.0.swap = True.winner', 'results.0.swap = False.winner'" in message


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_register_with_id_from_row_via_cli(cli, registry, data_root, tmp_path):
    from registry.services.datasets import load_table

    dataset = data_root / NATURAL / "dataset.json"
    args = ["dataset", "register", "nat-rows", "--source", "generic", "--path", dataset, "--task-type", "pairwise",
            "--map", "instruction=input", "--map", "response_a=output_1", "--map", "response_b=output_2",
            "--label-map", "1=A", "--label-map", "2=B"]
    both = cli(*args, "--map", "example_id=input", "--id-from-row")
    assert both.exit_code == 2 and "--id-from-row" in both.output and "example_id" in both.output
    other = cli("dataset", "register", "x", "--source", "llmbar", "--path", dataset, "--id-from-row")
    assert other.exit_code == 2 and "--source generic" in other.output
    assert cli("dataset", "list", "--json").stdout.strip() == "[]"  # nothing registered by the errors
    res = cli(*args, "--id-from-row", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["rows"] == 100
    rows = {r["example_id"]: r for r in load_table(registry, "nat-rows").to_pylist()}
    raw = json.loads(dataset.read_text())
    assert sorted(rows, key=int) == [str(i) for i in range(100)]
    assert all(rows[str(i)]["instruction"] == r["input"] for i, r in enumerate(raw))
    # --map example_id=@row is the same content
    again = cli(*args, "--map", "example_id=@row", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["created"] is False
    help_text = cli("dataset", "register", "--help").stdout
    assert "--id-from-row" in help_text and "@row" in help_text and "judgments.0.decision" in help_text
