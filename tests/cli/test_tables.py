"""Defect 13 of issue 11: at 80 columns the CLI's tables fold long names and references onto
the next line instead of cutting them to an ellipsis, so rows whose names share a long prefix
never read the same (the leaderboard and ``best`` tables are tested with their commands)."""

from __future__ import annotations

from tests.cli.conftest import LONG_A, LONG_B, column_text, register_prefs

PREFIX = "tiny-judge-with-a-rather-long-shared-prefix"


def _whole(out: str, header: str, *names: str) -> None:
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    text = column_text(out, header).replace(" ", "")
    for name in names:
        assert name in text, (name, out)


def test_evaluator_checkpoint_and_dataset_lists_keep_names_whole(runs_registry, cli_at, tmp_path):
    from registry.services.evaluators import register_checkpoint

    reg = runs_registry
    for suffix in ("a", "b"):
        register_checkpoint(reg, f"{PREFIX}-{suffix}", kind="always-first")
        register_prefs(reg, tmp_path, name=f"{PREFIX}-dataset-{suffix}")
    cli = cli_at(reg)
    _whole(cli("evaluator", "list").stdout, "evaluator", LONG_A, LONG_B, "always-first")
    _whole(cli("checkpoint", "list").stdout, "checkpoint", f"{PREFIX}-a@1", f"{PREFIX}-b@1", "always-first@1")
    _whole(cli("dataset", "list").stdout, "name", f"{PREFIX}-dataset-a", f"{PREFIX}-dataset-b", "my-prefs")
    _whole(cli("protocol", "list").stdout, "protocol", "score-both-orders@1", "score-single-order@1")
    _whole(cli("sources", "list").stdout, "name", "prometheus-hhh", "codegen-conala", "bartscore-wmt")


def test_regressions_table_keeps_names_whole():
    import datetime
    import io

    from rich.console import Console

    from registry.cli.regressions import _table
    from registry.domain.entities import Regression

    def regression(i: int, evaluator: str) -> Regression:
        return Regression(
            id=i, metric="accuracy", delta=-0.4, ci_low=-0.6, ci_high=-0.2, p_value=0.001, method="paired_bootstrap",
            severity="major", baseline_kind="champion", baseline_run_id=1, candidate_run_id=1 + i,
            evaluator=evaluator, baseline_evaluator="always-first", dataset=f"{PREFIX}-dataset@1",
            baseline_dataset=f"{PREFIX}-dataset@1", baseline_value=0.9, candidate_value=0.5, n_shared=4,
            threshold=0.02, alpha=0.05, status="open", created_at=datetime.datetime(2025, 1, 1))

    out = io.StringIO()
    Console(file=out, width=80).print(_table([regression(1, LONG_A), regression(2, LONG_B)], "regressions (2)"))
    _whole(out.getvalue(), "evaluator / dataset", LONG_A, LONG_B, f"{PREFIX}-dataset@1")
