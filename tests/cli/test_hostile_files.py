"""Hostile files get a clear error (exit 2, file/row/field named), never a traceback, and leave the
registry unchanged (issue "Hold up": deeply nested JSON, truncated or corrupt gzip, an empty LLMBar
file, an LLMBar result whose winner is a list, lone surrogates, bad export targets, a non-finite
score scale, FIFOs, devices and files over the size limit, an empty ``datasets`` folder)."""

from __future__ import annotations

import gzip
import json
import os
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import db_counts, store_files


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


# ----------------------------------------------------------------------------- lone surrogates

PAIRS = [{"q": "a question \\ud800", "a": "x", "b": "y \\udfff", "w": "A", "id": "1"},
         {"q": "another question", "a": "x2", "b": "y2", "w": "B", "id": "2"}]


def _surrogate_file(tmp_path, name: str, lines: bool) -> Path:
    """Records whose texts hold escaped lone surrogates (as JSON writes them: ``"\\ud800"``)."""
    rows = [json.dumps({k: v.encode().decode("unicode_escape") for k, v in r.items()}) for r in PAIRS]
    path = tmp_path / name
    path.write_text("\n".join(rows) + "\n" if lines else "[" + ", ".join(rows) + "]")
    assert "\\ud800" in path.read_text()
    return path


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_lone_surrogates_become_replacement_characters(cli, registry, tmp_path):
    """An escaped lone surrogate in a text (JSON, JSON lines, an imported raw output) is replaced with
    U+FFFD and counted, never a UnicodeEncodeError traceback."""
    for i, (name, lines) in enumerate((("s.json", False), ("s.jsonl", True))):
        res = cli("dataset", "register", f"sur-{i}", "--path", _surrogate_file(tmp_path, name, lines), *GENERIC)
        assert res.exit_code == 0 and "Traceback" not in res.output, (res.stdout, res.stderr)
        rows = registry.store.get_version(f"sur-{i}").storage_uri
        table = registry.artifacts.read_parquet(rows).to_pylist()
        by_id = {r["example_id"]: r for r in table}
        assert by_id["1"]["instruction"] == "a question \ufffd" and by_id["1"]["response_b"] == "y \ufffd"
        report = registry.store.get_version(f"sur-{i}").validation
        assert report["input_repairs"] == {"lone_surrogates_replaced_with_U+FFFD": 2}
    raw = tmp_path / "raw.json"
    raw.write_text('[{"id": "1", "v": "A", "raw": "A \\udc00"}, {"id": "2", "v": "B", "raw": "B"}]')
    res = cli("eval", "import", raw, "--format", "mapped", "--dataset", "sur-0", "--evaluator", "sur-judge",
              "--map", "example_id=id", "--map", "verdict_0=v", "--map", "raw_0=raw", "--json")
    assert res.exit_code == 0 and "Traceback" not in res.output, (res.stdout, res.stderr)
    run = registry.store.get_run(json.loads(res.stdout)["id"])
    raws = registry.artifacts.read_parquet(run.predictions_uri).column("raw").to_pylist()
    assert "A \ufffd" in raws
    assert any("U+FFFD" in w for w in run.provenance["warnings"])


MODERATION_SEXUAL = "7bf969204de9643523d51881abae57328874ebf07ccdbbfca3f396974f94043b"
"""Content hash of moderation-sexual before lone surrogates were replaced (its texts hold escaped
surrogate pairs and escaped backslashes, no lone surrogate: replacing them changes nothing)."""


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_moderation_data_still_registers_unchanged(cli, registry, data_root):
    res = cli("dataset", "register-all", "--data", data_root, "--only", "moderation-sexual", "--json")
    assert res.exit_code == 0, (res.stdout, res.stderr)
    version = registry.store.get_version("moderation-sexual")
    assert version.content_hash == MODERATION_SEXUAL and "input_repairs" not in version.validation


# ----------------------------------------------------------------------------- dataset export targets


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_export_to_a_bad_target_is_a_clear_error(cli, registry, tmp_path):
    """A folder, /proc, a 300-character name, /dev/full and any path in the store: exit 2 naming the
    path, nothing written, no stored file changed; a good export replaces its target whole."""
    data = tmp_path / "in.jsonl"
    data.write_bytes(b"".join(ROW % i for i in range(5)))
    assert cli("dataset", "register", "exp", "--path", data, *GENERIC).exit_code == 0
    stored = registry.artifacts.path(registry.store.get_version("exp").storage_uri)
    before, files, counts = stored.read_bytes(), store_files(registry, caches=False), db_counts(registry)
    listing = sorted(tmp_path.iterdir())
    folder = tmp_path / "a-folder"
    folder.mkdir()
    targets = [folder, Path("/proc/x.parquet"), tmp_path / ("x" * 296 + ".csv"), Path("/dev/full"), stored,
               stored.parent / "new.parquet", registry.artifacts.root / "elsewhere" / "x.jsonl"]
    for target in targets:
        res = cli("dataset", "export", "exp", "--out", target, "--format", "parquet")
        assert res.exit_code == 2 and "Traceback" not in res.output, (target, res.stdout, res.stderr)
        assert str(target) in res.stderr.replace("\n", ""), (target, res.stderr)
    assert stored.read_bytes() == before and store_files(registry, caches=False) == files and db_counts(registry) == counts
    assert sorted(tmp_path.iterdir()) == sorted([*listing, folder])  # no temporary file left anywhere
    assert not list(folder.iterdir())
    out = tmp_path / "out" / "exp.csv"
    for _ in range(2):  # written, then replaced
        res = cli("dataset", "export", "exp", "--out", out)
        assert res.exit_code == 0 and out.read_text().count("\n") == 6, (res.stdout, res.stderr)
    assert [p.name for p in out.parent.iterdir()] == ["exp.csv"]  # no temporary file left


# ----------------------------------------------------------------------------- the score scale


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("scale", ["-inf,inf", "1,inf", "1,1e309", "nan,5", "5,1", "3,3", "1", "1,2,3", "a,b"])
def test_scale_must_be_finite_and_ordered(cli, registry, tmp_path, scale):
    data = tmp_path / "p.json"
    data.write_text(json.dumps([{"q": "q", "r": "r", "s": 3}, {"q": "q2", "r": "r2", "s": 4}]))
    counts = db_counts(registry)
    res = cli("dataset", "register", "pw", "--source", "generic", "--task-type", "pointwise", "--path", data,
              "--map", "instruction=q", "--map", "response=r", "--map", "score=s", f"--scale={scale}")
    assert res.exit_code == 2 and "--scale" in res.stderr and "Traceback" not in res.output, (scale, res.stderr)
    assert db_counts(registry) == counts


def test_scale_option_of_the_python_api_is_checked(sqlite_registry, tmp_path):
    from registry.errors import InvalidInput
    from registry.services.datasets import register_dataset_version

    data = tmp_path / "p.json"
    data.write_text(json.dumps([{"q": "q", "r": "r", "s": 3}, {"q": "q2", "r": "r2", "s": 4}]))
    mapping = {"instruction": "q", "response": "r", "score": "s"}
    with pytest.raises(InvalidInput, match="finite"):
        register_dataset_version(sqlite_registry, name="pw", source="generic", path=data, task_type="pointwise",
                                 options={"mapping": mapping, "scale": (float("-inf"), float("inf"))})
    ok = register_dataset_version(sqlite_registry, name="pw", source="generic", path=data, task_type="pointwise",
                                  options={"mapping": mapping, "scale": "1,5"})
    assert ok.created and ok.version.statistics


# ----------------------------------------------------------------------------- input paths


def _fifo(path: Path) -> Path:
    """A FIFO at ``path``; a thread opens and closes its writing end after 5 s, so that a reader that
    (wrongly) opened it ends instead of blocking the test forever."""
    os.mkfifo(path)

    def release() -> None:
        time.sleep(5)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        except OSError:
            pass  # nobody is reading: nothing to release

    threading.Thread(target=release, daemon=True).start()
    return path


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_inputs_must_be_regular_files_within_the_size_limit(cli, registry, tmp_path, monkeypatch):
    """A FIFO, a link to /dev/zero, a dangling link, a file over AUTORATER_MAX_INPUT_MB (compressed or
    not): exit 2 naming the path, checked before the file is opened, registry unchanged."""
    files, counts = store_files(registry), db_counts(registry)
    zero = tmp_path / "zero.jsonl"
    zero.symlink_to("/dev/zero")
    dangling = tmp_path / "gone.jsonl"
    dangling.symlink_to(tmp_path / "nowhere.jsonl")
    big = tmp_path / "big.jsonl"
    big.write_bytes(b"".join(ROW % i for i in range(40)))  # ~2.6 KB
    bomb = tmp_path / "bomb.jsonl.gz"
    bomb.write_bytes(gzip.compress(b"".join(ROW % i for i in range(40)) + b" " * 50_000))
    monkeypatch.setenv("AUTORATER_MAX_INPUT_MB", "0.002")  # 2 KB
    cases = {_fifo(tmp_path / "fifo.jsonl"): "FIFO", zero: "character device", dangling: "does not exist",
             big: "input size limit", bomb: "once uncompressed"}
    for path, expected in cases.items():
        res = cli("dataset", "register", "in", "--path", path, *GENERIC)
        assert res.exit_code == 2 and expected in res.stderr and path.name in res.stderr, (path, res.stderr)
        assert "Traceback" not in res.output, path
    res = cli("eval", "import", _fifo(tmp_path / "fifo.json"), "--format", "mapped", "--dataset", "x",
              "--evaluator", "j", "--map", "example_id=id", "--map", "verdict_0=v")
    assert res.exit_code == 2 and "FIFO" in res.stderr and "Traceback" not in res.output, res.stderr
    # a catalog file of the data root that is a FIFO: that dataset fails, nothing hangs
    root = tmp_path / "root"
    (root / "openai__moderation-api-release" / "data").mkdir(parents=True)
    _fifo(root / "openai__moderation-api-release" / "data" / "samples-1680.jsonl.gz")
    res = cli("dataset", "register-all", "--data", root, "--only", "moderation-sexual")
    assert res.exit_code == 2 and "FIFO" in res.stderr and "Traceback" not in res.output, res.stderr
    assert store_files(registry) == files and db_counts(registry) == counts


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_empty_datasets_metadata_is_a_clear_error(cli, registry, tmp_path):
    """A ``datasets`` folder whose state.json and dataset_info.json are ``{}``: exit 2 naming the folder."""
    folder = tmp_path / "hf"
    folder.mkdir()
    for name in ("state.json", "dataset_info.json"):
        (folder / name).write_text("{}")
    counts = db_counts(registry)
    res = cli("dataset", "register", "hf", "--path", folder, *GENERIC)
    assert res.exit_code == 2 and "datasets folder" in res.stderr and "hf" in res.stderr, res.stderr
    assert "Traceback" not in res.output and db_counts(registry) == counts
