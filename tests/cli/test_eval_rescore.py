"""``autorater eval rescore``, the bias section of ``eval show`` and ``leaderboard --columns`` on a
real LLMBar registry (the service itself: tests/services/test_rescore.py)."""

from __future__ import annotations

import json

import pytest

from registry.services import datasets as svc
from registry.services.evaluation import run_evaluation
from registry.services.evaluators import ensure_baselines
from tests.cli.conftest import column_text
from tests.services.test_rescore import _as_before_issue_15


@pytest.fixture
def reg(sqlite_registry, data_root):
    svc.register_all(sqlite_registry, data_root, only={"llmbar-natural"})
    ensure_baselines(sqlite_registry, minilm=False)
    return sqlite_registry


def test_cli_rescore_show_and_leaderboard_columns(reg, cli_at):
    run = run_evaluation(reg, "longer", "llmbar-natural", n_boot=30)
    run_evaluation(reg, "always-second", "llmbar-natural", n_boot=30)
    _as_before_issue_15(reg, run.id)
    cli = cli_at(reg)
    got = cli("eval", "rescore", "--run", run.id, "--json")
    assert got.exit_code == 0, got.output
    body = json.loads(got.output)
    assert body["runs"][0]["run"] == run.id and "lc_accuracy" in body["runs"][0]["added"]
    shown = cli("eval", "show", run.id)
    assert shown.exit_code == 0 and "bias diagnostics" in shown.output
    bias_part = shown.output.split("bias diagnostics", 1)[1]
    assert "flip_rate" in bias_part and "lc_accuracy" in bias_part and "prob_prefer_first" in bias_part
    board = cli("leaderboard", "--dataset", "llmbar-natural", "--columns", "flip_rate,lc_accuracy")
    assert board.exit_code == 0, board.output
    assert column_text(board.output, "flip_rate") == "0.0001.000"          # longer never flips, always-second always
    assert len(column_text(board.output, "lc_accuracy")) == 10
    bad = cli("leaderboard", "--dataset", "llmbar-natural", "--columns", "flip_rat")
    assert bad.exit_code == 2 and "did you mean 'flip_rate'" in bad.output and "Traceback" not in bad.output
    none = cli("eval", "rescore")
    assert none.exit_code == 2 and "give run ids" in none.output
