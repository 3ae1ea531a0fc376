"""Hostile files get a clear error (exit 2, file/row/field named), never a traceback, and leave the
registry unchanged (issue "Hold up": deeply nested JSON, truncated or corrupt gzip, an empty LLMBar
file, an LLMBar result whose winner is a list)."""

from __future__ import annotations

import gzip
import json

import pytest


NATURAL = "princeton-nlp__LLMBar/Dataset/LLMBar/Natural"
GENERIC = ("--source", "generic", "--task-type", "pairwise", "--map", "instruction=q", "--map", "response_a=a",
           "--map", "response_b=b", "--map", "label=w", "--map", "example_id=id")
ROW = b'{"q": "a question", "a": "x", "b": "y", "w": "A", "id": "%d"}\n'


def _files(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 6000 + "]" * 6000)
    data = gzip.compress(b"".join(ROW % i for i in range(200)))
    truncated = tmp_path / "truncated.jsonl.gz"
    truncated.write_bytes(data[: len(data) // 2])
    corrupt = tmp_path / "corrupt.jsonl.gz"
    corrupt.write_bytes(data[:10] + b"garbage" * 30)
    return {"deep": (deep, "nested too deeply"),
            "truncated": (truncated, "truncated or corrupt gzip"), "corrupt": (corrupt, "truncated or corrupt gzip")}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_malformed_files_are_clear_errors(cli, registry, tmp_path):
    before = registry.store.counts()
    for name, (path, expected) in _files(tmp_path).items():
        res = cli("dataset", "register", f"x-{name}", "--path", path, *GENERIC)
        assert res.exit_code == 2, (name, res.stdout, res.stderr)
        assert expected in res.stderr and path.name in res.stderr and "Traceback" not in res.stderr, name
    res = cli("dataset", "register", "x-deep-llmbar", "--source", "llmbar", "--path", tmp_path / "deep.json")
    assert res.exit_code == 2 and "nested too deeply" in res.stderr
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    res = cli("dataset", "register", "x-empty", "--source", "llmbar", "--path", empty)
    assert res.exit_code == 2 and "holds no examples" in res.stderr
    assert registry.store.counts() == before


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_malformed_llmbar_results_are_clear_errors(cli, registry, data_root, tmp_path):
    assert cli("dataset", "register", "llmbar-natural", "--source", "llmbar", "--path",
               data_root / NATURAL / "dataset.json").exit_code == 0
    before = registry.store.counts()
    records = json.loads((data_root / NATURAL / "evaluators/GPT-4/Vanilla/result.json").read_text())
    records[3]["results"][-1]["swap = False"]["winner"] = [1, 2]
    bad = tmp_path / "result.json"
    bad.write_text(json.dumps(records))
    res = cli("eval", "import", bad, "--format", "llmbar", "--dataset", "llmbar-natural", "--evaluator", "j")
    assert res.exit_code == 2 and "row 3" in res.stderr and "winner" in res.stderr and "not list" in res.stderr
    assert res.stderr.count("row 3") == 1  # the file is added to the message once, not the location twice
    res = cli("eval", "import", _files(tmp_path)["deep"][0], "--format", "llmbar", "--dataset", "llmbar-natural",
              "--evaluator", "j")
    assert res.exit_code == 2 and "nested too deeply" in res.stderr
    assert registry.store.counts() == before
