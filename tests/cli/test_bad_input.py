"""Every kind of bad input gets one clear error naming file, row and field, a non-zero exit
without a traceback, and leaves the registry (SQL rows and store files) unchanged."""

from __future__ import annotations

import json

import pytest

from tests.conftest import db_counts, store_files

GOOD = [
    {"id": "e1", "q": "Say hi.", "a1": "hi", "a2": "hello there", "win": "A>B"},
    {"id": "e2", "q": "Count to 3.", "a1": "1 2 3", "a2": "1 2", "win": "B>A"},
    {"id": "e3", "q": "Name a colour.", "a1": "red", "a2": "blue", "win": "A=B"},
]
PAIR_ARGS = ["--task-type", "pairwise", "--map", "example_id=id", "--map", "instruction=q",
             "--map", "response_a=a1", "--map", "response_b=a2", "--map", "label=win",
             "--label-map", "A>B=A", "--label-map", "B>A=B", "--label-map", "A=B=tie"]


def _write(tmp_path, rows, name="in.json"):
    path = tmp_path / name
    path.write_text(json.dumps(rows))
    return path


@pytest.fixture
def baseline(registry, cli, tmp_path):
    """A registry with one good version; returns a checker that nothing changed."""
    ok = cli("dataset", "register", "prefs", "--source", "generic", "--path", _write(tmp_path, GOOD, "good.json"), *PAIR_ARGS)
    assert ok.exit_code == 0, ok.output
    files, counts = store_files(registry), db_counts(registry)

    def unchanged():
        assert store_files(registry) == files
        assert db_counts(registry) == counts
        assert [v.version for v in registry.store.list_versions("prefs")] == [1]
    return unchanged


def _fails(result, *needles):
    assert result.exit_code != 0
    text = result.stderr if hasattr(result, "stderr") else result.output
    assert "Traceback" not in result.output and "Traceback" not in text
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text!r}"
    return text


def test_malformed_json(cli, tmp_path, baseline):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"id": "e1", "q": "x",\n "a1": "y" "a2": "z"}]')
    _fails(cli("dataset", "register", "prefs", "--source", "generic", "--path", bad, *PAIR_ARGS),
           "bad.json", "malformed JSON", "line 2")
    baseline()


def test_wrong_encoding(cli, tmp_path, baseline):
    bad = tmp_path / "latin1.json"
    bad.write_bytes(json.dumps([{**GOOD[0], "q": "Café?"}], ensure_ascii=False).encode("latin-1"))
    _fails(cli("dataset", "register", "prefs", "--source", "generic", "--path", bad, *PAIR_ARGS),
           "latin1.json", "UTF-8")
    baseline()


def test_missing_field_in_source_adapter(cli, tmp_path, baseline):
    bad = tmp_path / "llmbar.json"
    bad.write_text(json.dumps([{"input": "x", "output_1": "a", "output_2": "b", "label": 1},
                               {"input": "y", "output_1": "a", "label": 2}]))
    _fails(cli("dataset", "register", "prefs", "--source", "llmbar", "--path", bad),
           "llmbar.json", "row 1", "output_2", "missing field")
    baseline()


def test_unknown_label(cli, tmp_path, baseline):
    rows = GOOD + [{"id": "e4", "q": "Pick.", "a1": "x", "a2": "y", "win": "A>>B"}]
    _fails(cli("dataset", "register", "prefs", "--source", "generic", "--path", _write(tmp_path, rows), *PAIR_ARGS),
           "in.json", "row 4", "label", "A>>B")
    baseline()


def test_unknown_label_without_label_map_is_caught_by_validation(cli, tmp_path, baseline):
    rows = [dict(r, win=w) for r, w in zip(GOOD, ["A", "B", "C"])]
    args = [a for a in PAIR_ARGS if "=" not in a or a.startswith(("example_id", "instruction", "response", "label="))]
    args = [a for a in args if a != "--label-map"]
    text = _fails(cli("dataset", "register", "prefs", "--source", "generic", "--path", _write(tmp_path, rows), *args),
                  "in.json", "label")
    assert "'C'" in text or "C" in text
    baseline()


def test_score_outside_scale(cli, tmp_path, registry):
    rows = [{"id": f"p{i}", "src": f"doc {i}", "out": f"summary {i}", "s": s} for i, s in enumerate([1, 3, 5, 6.5])]
    files, counts = store_files(registry), db_counts(registry)
    _fails(cli("dataset", "register", "scores", "--source", "generic", "--path", _write(tmp_path, rows),
               "--task-type", "pointwise", "--map", "example_id=id", "--map", "instruction=src",
               "--map", "response=out", "--map", "score=s", "--scale", "1,5"),
           "in.json", "row 4", "score")
    assert store_files(registry) == files and db_counts(registry) == counts


def test_duplicate_ids(cli, tmp_path, baseline):
    rows = GOOD + [dict(GOOD[1], q="Another prompt")]
    _fails(cli("dataset", "register", "prefs", "--source", "generic", "--path", _write(tmp_path, rows), *PAIR_ARGS),
           "in.json", "example_id", "e2")
    baseline()


def test_duplicate_ids_caught_by_validation(registry, tmp_path):
    """The spec's uniqueness expectation also guards adapters that produce duplicate ids."""
    import pandas as pd

    from registry.adapters.validation.gx import Rules, validate
    from registry.adapters.validation.spec import load_spec
    from registry.errors import ValidationFailed

    df = pd.DataFrame({"example_id": ["x", "y", "x"], "instruction": ["a", "b", "c"], "response_a": ["1"] * 3,
                       "response_b": ["2"] * 3, "label": ["A", "B", "tie"]})
    with pytest.raises(ValidationFailed) as err:
        validate(df, load_spec(registry.settings.specs_dir, "pairwise"), Rules(), file="x.json")
    assert "duplicate example id 'x'" in str(err.value) and "row 1" in str(err.value)
    unique = next(c for c in err.value.report["expectations"] if c["expectation"] == "expect_column_values_to_be_unique")
    assert unique["unexpected_count"] == 2 and not unique["success"]


def test_empty_text(cli, tmp_path, baseline):
    rows = GOOD + [{"id": "e4", "q": "   ", "a1": "x", "a2": "y", "win": "A>B"}]
    _fails(cli("dataset", "register", "prefs", "--source", "generic", "--path", _write(tmp_path, rows), *PAIR_ARGS),
           "in.json", "row 4", "instruction", "blank")
    baseline()


def test_field_over_size_limit(cli, tmp_path, baseline, monkeypatch):
    monkeypatch.setenv("AUTORATER_MAX_TEXT_CHARS", "1000")
    rows = GOOD + [{"id": "e4", "q": "Write a lot.", "a1": "x" * 1001, "a2": "y", "win": "A>B"}]
    _fails(cli("dataset", "register", "prefs", "--source", "generic", "--path", _write(tmp_path, rows), *PAIR_ARGS),
           "in.json", "row 4", "response_a", "1000")
    baseline()


def test_mapping_to_missing_column(cli, tmp_path, baseline):
    args = [a if a != "response_b=a2" else "response_b=answer2" for a in PAIR_ARGS]
    _fails(cli("dataset", "register", "prefs", "--source", "generic", "--path", _write(tmp_path, GOOD), *args),
           "in.json", "response_b", "answer2", "a2")
    baseline()


def test_unknown_source_suggests(cli, tmp_path, baseline):
    _fails(cli("dataset", "register", "prefs", "--source", "llmbr", "--path", _write(tmp_path, GOOD)),
           "llmbr", "did you mean", "llmbar")
    baseline()


def test_unknown_dataset_and_version(cli, baseline):
    _fails(cli("dataset", "show", "prefz"), "prefz", "did you mean", "prefs")
    _fails(cli("dataset", "show", "prefs@7"), "no version 7")
    baseline()
