"""``autorater dataset derive`` and ``autorater analyze robustness`` on real LLMBar Natural: the
--json shapes, the lineage in ``dataset show``, one-line errors and an unchanged registry."""

from __future__ import annotations

import json

import pytest

from tests.services.conftest import NATURAL


@pytest.fixture
def natural(sqlite_registry, data_root):
    from registry.services.datasets import register_dataset_version

    register_dataset_version(sqlite_registry, name="llmbar-natural", source="llmbar", path=data_root / NATURAL)
    return sqlite_registry


def test_derive_show_and_robustness(natural, cli_at):
    from registry.services.evaluation import run_evaluation
    from registry.services.evaluators import create_evaluator, register_checkpoint

    cli = cli_at(natural)
    r = cli("dataset", "derive", "natural-pad", "--from", "llmbar-natural@1", "--transform", "pad-worse",
            "--param", "ratio=2", "--param", "min_chars=50", "--seed", "4", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert set(d) == {"dataset", "version", "ref", "created", "content_hash", "rows", "lineage"}
    assert d["ref"] == "natural-pad@1" and d["created"] is True and d["rows"] == 100
    assert d["lineage"]["params"] == {"ratio": 2.0, "min_chars": 50} and d["lineage"]["seed"] == 4
    again = cli("dataset", "derive", "natural-pad", "--from", "llmbar-natural@1", "--transform", "pad-worse",
                "--param", "ratio=2", "--param", "min_chars=50", "--seed", "4")
    assert again.exit_code == 0 and "unchanged" in again.stdout and "natural-pad@1" in again.stdout
    shown = cli("dataset", "show", "natural-pad@1")
    text = " ".join(shown.stdout.split())
    assert "derived from llmbar-natural@1" in text and "by pad-worse (ratio=2.0, min_chars=50), seed 4" in text
    shown_json = json.loads(cli("dataset", "show", "natural-pad@1", "--json").stdout)
    assert shown_json["source"] == "derived"
    assert shown_json["provenance"]["derived_from"]["transform"] == "pad-worse"

    ckpt, _ = register_checkpoint(natural, "longer", kind="longer")
    create_evaluator(natural, checkpoint=ckpt.ref, protocol="score-both-orders", name="longer")
    missing = cli("analyze", "robustness", "--evaluator", "longer", "--parent", "llmbar-natural@1",
                  "--probe", "natural-pad@1")
    assert missing.exit_code == 3 and "Traceback" not in missing.output
    assert "autorater eval run --evaluator longer --dataset llmbar-natural@1" in missing.output
    for ref in ("llmbar-natural@1", "natural-pad@1"):
        run_evaluation(natural, "longer", ref, n_boot=50)
    out = cli("analyze", "robustness", "-e", "longer", "--parent", "llmbar-natural@1", "--probe", "natural-pad@1",
              "--n-boot", "100", "--json")
    assert out.exit_code == 0, out.output
    rob = json.loads(out.stdout)
    assert rob["transform"] == "pad-worse" and rob["metric"] == "accuracy" and rob["skipped"] == []
    (row,) = rob["rows"]
    assert row["evaluator"] == "longer" and row["probe_value"] == 0.0 and row["drop"] == row["parent_value"] > 0.5
    assert row["n_shared"] == 100 and 0 < row["p_value"] < 0.05
    table = cli("analyze", "robustness", "--all", "--parent", "llmbar-natural@1", "--probe", "natural-pad@1")
    assert table.exit_code == 0 and "longer" in table.stdout and "drop [95% CI]" in table.stdout


@pytest.mark.parametrize(("args", "code", "message"), [
    (("--transform", "shuffle"), 2, "unknown probe transform 'shuffle'"),
    (("--transform", "truncate-better", "--param", "keep=2"), 2, "keep must be in (0, 1)"),
    (("--transform", "swap", "--param", "keep"), 2, "expected KEY=VALUE"),
    (("--transform", "swap", "--from", "nope@1"), 3, "nope"),
])
def test_derive_errors_are_one_line(natural, cli_at, args, code, message):
    cli = cli_at(natural)
    base = ["dataset", "derive", "probe"]
    if "--from" not in args:
        base += ["--from", "llmbar-natural@1"]
    r = cli(*base, *args)
    assert r.exit_code == code and message in r.output and "Traceback" not in r.output
    assert [d.name for d in natural.store.list_datasets()] == ["llmbar-natural"]


def test_robustness_needs_evaluators(natural, cli_at):
    cli = cli_at(natural)
    r = cli("analyze", "robustness", "--parent", "llmbar-natural@1", "--probe", "llmbar-natural@1")
    assert r.exit_code == 2 and "--evaluator NAME" in r.output
    r = cli("analyze", "robustness", "--all", "-e", "x", "--parent", "llmbar-natural@1", "--probe", "llmbar-natural@1")
    assert r.exit_code == 2 and "not both" in r.output
