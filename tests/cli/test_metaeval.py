"""The meta-evaluation commands through the CLI runner."""

from __future__ import annotations

import json

import pytest

NATURAL = "princeton-nlp__LLMBar/Dataset/LLMBar/Natural"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_checkpoint_evaluator_eval_best_leaderboard(cli, data_root):
    assert cli("dataset", "register", "llmbar-natural", "--source", "llmbar",
               "--path", data_root / NATURAL / "dataset.json").exit_code == 0
    out = json.loads(cli("checkpoint", "register", "longest", "--kind", "longer", "--json").stdout)
    assert out["created"] and out["version"] == 1 and out["format"] == "builtin"
    ev = json.loads(cli("evaluator", "create", "--checkpoint", "longest@1", "--protocol", "score-both-orders",
                        "--name", "longest-both", "--json").stdout)
    assert ev["created"] and ev["protocol"] == "score-both-orders@1"
    protocols = {p["name"] for p in json.loads(cli("protocol", "list", "--json").stdout)}
    assert {"score-both-orders", "score-single-order", "external"} <= protocols
    run = json.loads(cli("eval", "run", "--evaluator", "longest-both", "--dataset", "llmbar-natural",
                         "--n-boot", "100", "--json").stdout)
    assert run["status"] == "succeeded" and run["n_judgments"] == 200
    shown = json.loads(cli("eval", "show", str(run["id"]), "--json").stdout)
    assert shown["id"] == run["id"] and any(m["name"] == "accuracy" for m in shown["metrics"])
    imported = cli("eval", "import", data_root / NATURAL / "evaluators/GPT-4/Vanilla/result.json",
                   "--format", "llmbar", "--dataset", "llmbar-natural", "--evaluator", "gpt-4/vanilla", "--json")
    assert imported.exit_code == 0, imported.stderr
    assert json.loads(imported.stdout)["n_examples"] == 100
    cmp = json.loads(cli("eval", "compare", str(json.loads(imported.stdout)["id"]), str(run["id"]), "--n-boot", "200",
                         "--metric", "correct_both", "--json").stdout)   # McNemar needs 0/1 correctness
    assert cmp["n_shared"] == 100 and cmp["paired_bootstrap"]["difference"] > 0.3
    assert cmp["paired_bootstrap"]["p_value"] < 0.01 and cmp["mcnemar"]["p_value"] < 0.01
    assert cmp["mcnemar"]["only_a"] > cmp["mcnemar"]["only_b"]
    board = json.loads(cli("leaderboard", "--dataset", "llmbar-natural", "--json").stdout)
    assert [s["evaluator"] for s in board["standings"]] == ["gpt-4/vanilla", "longest-both"]
    best = json.loads(cli("best", "--task-type", "pairwise", "--json").stdout)
    assert best["best"]["evaluator"] == "gpt-4/vanilla" and best["tied_with_best"] == []
    text = cli("best", "--dataset", "llmbar-natural").stdout
    assert "gpt-4/vanilla" in text and "tied" in text
    # aliases move
    cli("checkpoint", "register", "longest", "--kind", "longer")
    assert cli("checkpoint", "alias", "longest@1", "champion").exit_code == 0
    listing = json.loads(cli("checkpoint", "list", "--json").stdout)
    assert next(c for c in listing if c["autorater"] == "longest")["aliases"] == ["champion"]
    # errors: unknown evaluator with a suggestion; unknown import format
    bad = cli("eval", "run", "--evaluator", "longest-bot", "--dataset", "llmbar-natural")
    assert bad.exit_code == 3 and "did you mean" in bad.stderr
    bad = cli("eval", "import", data_root / NATURAL / "dataset.json", "--format", "llmbr",
              "--dataset", "llmbar-natural", "--evaluator", "x")
    assert bad.exit_code == 3 and "llmbar" in bad.stderr
