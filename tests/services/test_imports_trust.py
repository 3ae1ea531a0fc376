"""Imports a user can trust: strict mappings, explicit conventions, idempotent and batch imports
(issue "Imports and queries a user can trust", defects 1, 3, 5, 9 and the import capabilities)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from registry.services import datasets as svc
from registry.services.imports import convention_warning, import_predictions, import_tree

NATURAL = "princeton-nlp__LLMBar/Dataset/LLMBar/Natural"
SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def natural(registry, data_root):
    svc.register_all(registry, data_root, only={"llmbar-natural"})
    table = svc.load_table(registry, "llmbar-natural")
    return table.column("example_id").to_pylist(), table.column("label").to_pylist()


def _write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _flip(v: str) -> str:
    return {"A": "B", "B": "A"}.get(v, v)


def _counts(reg):
    return reg.store.counts()


# ------------------------------------------------------------------ defect 1 and 5: strict mappings


@SQLITE
@pytest.mark.parametrize("bad", [["verdict_x=b"], ["verdict_=b"], ["verdict_7=b"], ["bogus=b"], ["score_zero=b"]])
def test_unknown_map_field_is_a_clear_error(cli, registry, natural, tmp_path, bad):
    ids, labels = natural
    f = _write_csv(tmp_path / "p.csv", ["id", "a", "b"], [[i, lab, lab] for i, lab in zip(ids, labels)])
    before = _counts(registry)
    args = ["eval", "import", f, "--format", "mapped", "--dataset", "llmbar-natural", "--evaluator", "x",
            "--map", "example_id=id", "--map", "verdict_0=a"]
    for item in bad:
        args += ["--map", item]
    res = cli(*args)
    assert res.exit_code == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr and "unknown field" in res.stderr
    assert "verdict_0" in res.stderr and "score_0" in res.stderr and "example_id" in res.stderr  # lists the fields
    assert _counts(registry) == before


@SQLITE
def test_empty_map_column_and_empty_evaluator(cli, registry, natural, tmp_path):
    ids, labels = natural
    f = _write_csv(tmp_path / "p.csv", ["id", "a"], [[i, lab] for i, lab in zip(ids, labels)])
    res = cli("eval", "import", f, "--format", "mapped", "--dataset", "llmbar-natural", "--evaluator", "x",
              "--map", "example_id=id", "--map", "verdict_0=a", "--map", "verdict_1= ")
    assert res.exit_code == 2 and "names no column" in res.stderr
    res = cli("eval", "import", f, "--format", "mapped", "--dataset", "llmbar-natural", "--evaluator", " ",
              "--map", "example_id=id", "--map", "verdict_0=a")
    assert res.exit_code == 2 and "evaluator name is empty" in res.stderr


@SQLITE
def test_unknown_reader_option_is_an_error(cli, registry, natural, data_root):
    before = _counts(registry)
    res = cli("eval", "import", data_root / NATURAL / "evaluators/GPT-4/Vanilla/result.json", "--format", "llmbar",
              "--dataset", "llmbar-natural", "--evaluator", "gpt-4/v", "--option", "foo=bar")
    assert res.exit_code == 2 and "no option 'foo'" in res.stderr and "options: none" in res.stderr
    res = cli("eval", "import", data_root / NATURAL / "evaluators/GPT-4/Vanilla/result.json", "--format", "llmbar",
              "--dataset", "llmbar-natural", "--evaluator", "gpt-4/v", "--map", "example_id=id")
    assert res.exit_code == 2 and "for --format mapped" in res.stderr
    assert _counts(registry) == before


@SQLITE
def test_unmapped_values_are_listed_unless_failure_is_asked(cli, registry, natural, tmp_path):
    ids, labels = natural
    codes = {"A": "1", "B": "2", "tie": "0"}
    rows = [[i, codes[lab] if k % 10 else "banana"] for k, (i, lab) in enumerate(zip(ids, labels))]
    f = _write_csv(tmp_path / "p.csv", ["id", "winner"], rows)
    base = ["eval", "import", f, "--format", "mapped", "--dataset", "llmbar-natural", "--evaluator", "judge",
            "--map", "example_id=id", "--map", "verdict_0=winner", "--label-map", "1=A", "--label-map", "2=B"]
    before = _counts(registry)
    res = cli(*base)
    assert res.exit_code == 2
    assert "'banana' ×10" in res.stderr and "--unmapped failure" in res.stderr and "row 0" in res.stderr
    assert _counts(registry) == before
    # a bare "1" without a label map is not a verdict either
    res = cli("eval", "import", f, "--format", "mapped", "--dataset", "llmbar-natural", "--evaluator", "judge",
              "--map", "example_id=id", "--map", "verdict_0=winner")
    assert res.exit_code == 2 and "'1' ×" in res.stderr and "'2' ×" in res.stderr
    res = cli(*base, "--unmapped", "failure", "--json")
    assert res.exit_code == 0, res.stderr
    run = json.loads(res.stdout)
    assert run["provenance"]["unmapped_values"] == {"banana": 10}
    acc = next(m for m in run["metrics"] if m["name"] == "accuracy_strict" and m["slice"] == "all")
    assert acc["value"] == pytest.approx(0.9)  # the ten failures count wrong
    strict = next(m for m in run["metrics"] if m["name"] == "accuracy" and m["slice"] == "all")
    assert strict["value"] == pytest.approx(0.95)  # ReIFE: ½ credit for a failure


@SQLITE
def test_bad_scores_name_row_and_field(cli, registry, natural, tmp_path):
    ids, labels = natural
    for bad, expect in (("abc", "'abc' is not a number"), ("inf", "not a finite number")):
        rows = [[i, "0.5" if k != 3 else bad] for k, i in enumerate(ids)]
        f = _write_csv(tmp_path / f"p-{bad}.csv", ["id", "p"], rows)
        res = cli("eval", "import", f, "--format", "mapped", "--dataset", "llmbar-natural", "--evaluator", "j",
                  "--map", "example_id=id", "--map", "prob_a_0=p")
        assert res.exit_code == 2 and "row 3" in res.stderr and "prob_a_0" in res.stderr and expect in res.stderr
    rows = [[i, "1.5"] for i in ids]
    f = _write_csv(tmp_path / "p-range.csv", ["id", "p"], rows)
    res = cli("eval", "import", f, "--format", "mapped", "--dataset", "llmbar-natural", "--evaluator", "j",
              "--map", "example_id=id", "--map", "prob_a_0=p")
    assert res.exit_code == 2 and "outside [0.0, 1.0]" in res.stderr


@SQLITE
@pytest.mark.parametrize("path_kind", ["folder", "fifo"])
def test_import_path_must_be_a_regular_file(cli, registry, natural, tmp_path, path_kind):
    import os

    target = tmp_path / "p"
    if path_kind == "folder":
        target.mkdir()
    else:
        os.mkfifo(target)
    res = cli("eval", "import", target, "--format", "mapped", "--dataset", "llmbar-natural", "--evaluator", "j",
              "--map", "example_id=id", "--map", "verdict_0=a")
    assert res.exit_code == 2 and "not a regular file" in res.stderr


# ------------------------------------------------------------------ defect 3 and 9: timestamps, idempotency


@SQLITE
def test_import_timestamps_and_idempotency(registry, natural, data_root, tmp_path):
    result = data_root / NATURAL / "evaluators/GPT-4/Vanilla/result.json"
    first = import_predictions(registry, "llmbar", result, "llmbar-natural", evaluator="gpt-4/llmbar-vanilla",
                               n_boot=50)
    assert first.finished_at >= first.started_at
    assert first.seconds >= 0 and (first.finished_at - first.started_at).total_seconds() >= first.seconds - 0.5
    runs_before = _counts(registry)
    again = import_predictions(registry, "llmbar", result, "llmbar-natural", evaluator="gpt-4/llmbar-vanilla",
                               n_boot=50)
    assert again.id == first.id and _counts(registry) == runs_before
    # a copy of the same bytes elsewhere is the same import; other bytes or settings are a new run
    copy = tmp_path / "result.json"
    shutil.copy(result, copy)
    assert import_predictions(registry, "llmbar", copy, "llmbar-natural", evaluator="gpt-4/llmbar-vanilla",
                              n_boot=50).id == first.id
    other_seed = import_predictions(registry, "llmbar", result, "llmbar-natural", evaluator="gpt-4/llmbar-vanilla",
                                    n_boot=50, seed=1)
    assert other_seed.id != first.id
    records = json.loads(result.read_text())
    records[0]["output_1"], records[0]["output_2"] = records[0]["output_2"], records[0]["output_1"]
    copy.write_text(json.dumps(records))
    assert import_predictions(registry, "llmbar", copy, "llmbar-natural", evaluator="gpt-4/llmbar-vanilla",
                              n_boot=50).id not in (first.id, other_seed.id)


# ------------------------------------------------------------------ swapped-order conventions


@SQLITE
def test_swapped_verdict_conventions(cli, registry, natural, tmp_path):
    ids, labels = natural
    # a judge that is right in both orders, with order-1 verdicts written as the positions shown
    positions = _write_csv(tmp_path / "positions.csv", ["id", "v0", "v1"],
                           [[i, lab, _flip(lab)] for i, lab in zip(ids, labels)])
    original = _write_csv(tmp_path / "original.csv", ["id", "v0", "v1"],
                          [[i, lab, lab] for i, lab in zip(ids, labels)])
    args = ["--format", "mapped", "--dataset", "llmbar-natural", "--map", "example_id=id", "--map", "verdict_0=v0",
            "--map", "verdict_1=v1", "--json"]
    wrong = cli("eval", "import", positions, "--evaluator", "judge-default", *args)
    assert wrong.exit_code == 0 and "--swapped-verdicts as-positions" in wrong.stderr  # the warning
    assert json.loads(wrong.stdout)["provenance"]["warnings"]
    right = cli("eval", "import", positions, "--evaluator", "judge-positions", "--swapped-verdicts", "as-positions",
                *args)
    ref = cli("eval", "import", original, "--evaluator", "judge-original", *args)
    assert right.exit_code == 0 and ref.exit_code == 0 and "warning" not in right.stderr + ref.stderr

    def metric(res, name):
        return next(m["value"] for m in json.loads(res.stdout)["metrics"] if m["name"] == name and m["slice"] == "all")

    assert metric(right, "correct_both") == metric(ref, "correct_both") == 1.0
    assert metric(wrong, "correct_both") == 0.0 and metric(wrong, "correct_True") == 0.0


def test_convention_warning_only_when_far_below_chance():
    labels = ["A", "B"] * 50
    assert convention_warning(labels, labels, [_flip(x) for x in labels], "as-original")
    assert convention_warning(labels, labels, labels, "as-original") is None
    noisy = [x if k % 2 else _flip(x) for k, x in enumerate(labels)]  # 50%: chance, no warning
    assert convention_warning(labels, labels, noisy, "as-original") is None


# ------------------------------------------------------------------ row order and nested JSON


@SQLITE
def test_row_order_alignment(cli, registry, data_root, tmp_path):
    src = json.loads((data_root / NATURAL / "dataset.json").read_text())
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"q": r["input"], "a": r["output_1"], "b": r["output_2"],
                                        "w": "A" if str(r["label"]) == "1" else "B"}) + "\n" for r in src))
    reg = cli("dataset", "register", "rows", "--source", "generic", "--path", data, "--task-type", "pairwise",
              "--map", "instruction=q", "--map", "response_a=a", "--map", "response_b=b", "--map", "label=w",
              "--id-from-row", "--json")
    assert reg.exit_code == 0, reg.stderr
    preds = tmp_path / "preds.jsonl"  # one verdict per line, in the dataset's row order, no ids at all
    preds.write_text("".join(json.dumps({"judge": {"decisions": ["A" if str(r["label"]) == "1" else "B"]}}) + "\n"
                             for r in src))
    res = cli("eval", "import", preds, "--format", "mapped", "--dataset", "rows", "--evaluator", "row-judge",
              "--map", "example_id=@row", "--map", "verdict_0=judge.decisions.0", "--json")
    assert res.exit_code == 0, res.stderr
    run = json.loads(res.stdout)
    assert run["n_examples"] == len(src)
    assert next(m["value"] for m in run["metrics"] if m["name"] == "accuracy" and m["slice"] == "all") == 1.0


@SQLITE
def test_missing_nested_path_shows_the_layout(cli, registry, natural, tmp_path):
    ids, labels = natural
    f = tmp_path / "p.json"
    f.write_text(json.dumps([{"id": i, "judgments": [{"decision": lab}]} for i, lab in zip(ids, labels)]))
    ok = cli("eval", "import", f, "--format", "mapped", "--dataset", "llmbar-natural", "--evaluator", "nested",
             "--map", "example_id=id", "--map", "verdict_0=judgments.0.decision", "--json")
    assert ok.exit_code == 0, ok.stderr
    bad = cli("eval", "import", f, "--format", "mapped", "--dataset", "llmbar-natural", "--evaluator", "nested2",
              "--map", "example_id=id", "--map", "verdict_0=judgments.0.verdict")
    assert bad.exit_code == 2 and "judgments.0.verdict" in bad.stderr and "decision" in bad.stderr


# ------------------------------------------------------------------ batch imports


@SQLITE
def test_import_tree_matches_datasets_and_is_idempotent(cli, registry, data_root, tmp_path):
    svc.register_all(registry, data_root, only={"llmbar-natural", "llmbar-adversarial-manual"})
    # a small tree in the LLMBar layout: two judges on Natural, one on Manual, and one result of an
    # unregistered set (skipped), copied so the sibling dataset.json of Natural is absent (matched by content)
    llmbar = data_root / "princeton-nlp__LLMBar/Dataset/LLMBar"
    picks = [("Natural", "GPT-4", "Vanilla"), ("Natural", "ChatGPT", "Vanilla"),
             ("Adversarial/Manual", "GPT-4", "Vanilla"), ("Adversarial/Neighbor", "GPT-4", "Vanilla")]
    for folder, judge, protocol in picks:
        dst = tmp_path / "tree" / folder / "evaluators" / judge / protocol / "result.json"
        dst.parent.mkdir(parents=True)
        shutil.copy(llmbar / folder / "evaluators" / judge / protocol / "result.json", dst)
    res = cli("eval", "import-tree", tmp_path / "tree", "--json")
    assert res.exit_code == 0, res.stderr
    items = {(Path(i["path"]).parts[-5], i["evaluator"]): i for i in json.loads(res.stdout)}
    assert items[("Natural", "gpt-4/llmbar-vanilla")]["dataset"] == "llmbar-natural@1"
    assert items[("Natural", "chatgpt/llmbar-vanilla")]["status"] == "imported"
    assert items[("Manual", "gpt-4/llmbar-vanilla")]["dataset"] == "llmbar-adversarial-manual@1"
    assert items[("Neighbor", "gpt-4/llmbar-vanilla")]["status"] == "skipped"
    gpt4 = registry.store.get_run(items[("Natural", "gpt-4/llmbar-vanilla")]["run_id"])
    assert gpt4.metric("correct_average").value == pytest.approx(0.955)  # LLMBar's published figure
    again = json.loads(cli("eval", "import-tree", tmp_path / "tree", "--json").stdout)
    assert sorted(i["status"] for i in again) == ["skipped", "unchanged", "unchanged", "unchanged"]
    # several files at once through eval import (datasets and evaluators inferred)
    files = sorted((tmp_path / "tree").glob("**/result.json"))
    res = cli("eval", "import", *files[:2], "--format", "llmbar")
    assert res.exit_code == 0 and "unchanged" in res.stdout


@SQLITE
def test_import_tree_on_the_real_layout_finds_registered_sets(registry, data_root):
    svc.register_all(registry, data_root, only={"llmbar-adversarial-manual"})
    root = data_root / "princeton-nlp__LLMBar/Dataset/LLMBar/Adversarial/Manual"
    items = import_tree(registry, root, n_boot=20)
    expected = sorted(root.glob("evaluators/*/*/result.json"))
    assert len(items) == len(expected) >= 20
    assert {i.status for i in items} == {"imported"}
    assert {i.dataset for i in items} == {"llmbar-adversarial-manual@1"}
    assert {i.evaluator.split("/")[0] for i in items} >= {"gpt-4", "chatgpt"}


@SQLITE
def test_import_slices_and_eval_show_lists_skipped_slices(cli, registry, tmp_path):
    rows = [{"id": f"e{i}", "q": f"question {i}", "a": f"answer a {i}", "b": f"answer b {i}", "w": "A" if i % 3 else "B",
             "cat": "big" if i < 30 else "small"} for i in range(33)]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli("dataset", "register", "sliced", "--source", "generic", "--path", data, "--task-type", "pairwise",
               "--map", "example_id=id", "--map", "instruction=q", "--map", "response_a=a", "--map", "response_b=b",
               "--map", "label=w", "--map", "category=cat").exit_code == 0
    preds = _write_csv(tmp_path / "p.csv", ["id", "v"], [[r["id"], "A"] for r in rows])
    res = cli("eval", "import", preds, "--format", "mapped", "--dataset", "sliced", "--evaluator", "always-a",
              "--map", "example_id=id", "--map", "verdict_0=v", "--slice-by", "category", "--json")
    assert res.exit_code == 0, res.stderr
    run = json.loads(res.stdout)
    slices = {m["slice"] for m in run["metrics"] if m["name"] == "accuracy"}
    assert slices == {"all", "category=big"}
    shown = cli("eval", "show", str(run["id"]))
    assert "1 skipped" in shown.stdout and "category=small (n=3)" in shown.stdout


@SQLITE
def test_run_timestamps_are_utc_whichever_way_they_are_read(registry, natural, data_root):
    result = data_root / NATURAL / "evaluators/GPT-4/Vanilla/result.json"
    first = import_predictions(registry, "llmbar", result, "llmbar-natural", evaluator="gpt-4/llmbar-vanilla",
                               n_boot=20)
    again = import_predictions(registry, "llmbar", result, "llmbar-natural", evaluator="gpt-4/llmbar-vanilla",
                               n_boot=20)
    shown = registry.store.get_run(first.id)
    for run in (first, again, shown):
        assert run.started_at.utcoffset().total_seconds() == 0 and run.finished_at.utcoffset().total_seconds() == 0
    assert first.started_at == shown.started_at and first.finished_at == again.finished_at
