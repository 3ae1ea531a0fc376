"""Re-scoring stored runs (``autorater eval rescore``, :mod:`registry.services.rescore`): old runs
made before the bias diagnostics get them from their stored predictions, every other metric keeps
its value, the standings and cached paired tests follow as when a run lands, errors change nothing;
and on the real GPT-4 LLMBar import the flip rate is 1 − the stored positional agreement."""

from __future__ import annotations

import json

import pytest

from registry.domain.metrics.bias import BIAS_METRICS
from registry.errors import InvalidInput, NotFound
from registry.services import datasets as svc
from registry.services.evaluation import run_evaluation
from registry.services.evaluators import ensure_baselines
from registry.services.imports import import_predictions
from registry.services.queries import leaderboard
from registry.services.rescore import rescore_runs

LLMBAR = "princeton-nlp__LLMBar/Dataset/LLMBar/Natural"


@pytest.fixture
def reg(sqlite_registry, data_root):
    svc.register_all(sqlite_registry, data_root, only={"llmbar-natural"})
    ensure_baselines(sqlite_registry, minilm=False)
    return sqlite_registry


def _as_before_issue_15(reg, run_id: int) -> None:
    """Store the run's metrics without the bias diagnostics, as a run scored before them has."""
    old = [m for m in reg.store.get_run(run_id).metrics if m.name not in BIAS_METRICS]
    reg.store.record_metrics(run_id, old)


def _values(run) -> dict:
    return {(m.name, m.slice): (m.value, m.ci_low, m.ci_high, m.n, json.dumps(m.extra, sort_keys=True))
            for m in run.metrics}


def test_old_runs_get_the_bias_metrics_and_keep_every_other_value(reg, data_root):
    runs = [run_evaluation(reg, name, "llmbar-natural", n_boot=60, seed=s)
            for s, name in enumerate(("longer", "always-first", "random"))]
    gpt4 = import_predictions(reg, "llmbar", data_root / LLMBAR / "evaluators/GPT-4/Vanilla_NoRules/result.json",
                              "llmbar-natural", evaluator="gpt-4/vanilla-norules", n_boot=80)
    runs.append(gpt4)
    before = {r.id: _values(reg.store.get_run(r.id)) for r in runs}
    for r in runs:
        _as_before_issue_15(reg, r.id)
    with pytest.raises(NotFound, match="no successful run .* has metric 'flip_rate'"):
        leaderboard(reg, "llmbar-natural", "flip_rate")
    generation = reg.store.standings_generation("pairwise")

    done = rescore_runs(reg, dataset="llmbar-natural")
    assert [r.run for r in done.runs] == [r.id for r in runs]
    for r in done.runs:
        assert set(r.added) == set(BIAS_METRICS) and r.changed == () and not r.replaced
        assert _values(reg.store.get_run(r.run)) == before[r.run]     # the very same records, new ones included
    assert done.added == tuple(sorted(BIAS_METRICS))
    assert reg.store.standings_generation("pairwise") > generation
    # the leaderboard ranks by a new metric at once (read from the standings the re-score rewrote)
    board = leaderboard(reg, "llmbar-natural", "flip_rate")
    assert {s.evaluator for s in board.standings} == {"longer", "always-first", "random", "gpt-4/vanilla-norules"}
    assert board.standings[0].evaluator in ("longer", "always-first")       # heuristics never flip
    assert board.standings[0].value == 0.0 and "flip_rate" in board.standings[0].metrics
    # the real GPT-4 run: no parse failures, so the flip rate is 1 − positional agreement (LLMBar: Agr. 97%)
    run = reg.store.get_run(gpt4.id)
    assert run.metric("flip_rate").value == pytest.approx(1 - run.metric("positional_agreement").value)
    assert run.metric("flip_rate").value == pytest.approx(0.03)
    # re-scoring again changes nothing, and one run can be named
    again = rescore_runs(reg, run_ids=[gpt4.id])
    assert again.runs[0].added == () and again.runs[0].changed == ()


def test_stored_values_are_kept_unless_replaced(reg):
    """A value scoring the predictions alone does not give (a jury's cost, from its members) is kept,
    listed as changed; ``replace=True`` stores the recomputed one."""
    from dataclasses import replace

    run = run_evaluation(reg, "longer", "llmbar-natural", n_boot=30)
    special = [replace(m, value=123.0) if m.name == "time_per_1000" else m
               for m in reg.store.get_run(run.id).metrics if m.name != "lc_accuracy"]
    reg.store.record_metrics(run.id, special)
    kept = rescore_runs(reg, run_ids=[run.id]).runs[0]
    assert kept.added == ("lc_accuracy",) and kept.changed == ("time_per_1000",) and not kept.replaced
    after = reg.store.get_run(run.id)
    assert after.metric("time_per_1000").value == 123.0 and after.metric("lc_accuracy") is not None
    assert [m.name for m in after.metrics][:3] == [m.name for m in run.metrics][:3]      # the scoring's order
    redone = rescore_runs(reg, run_ids=[run.id], replace=True).runs[0]
    assert redone.changed == ("time_per_1000",) and redone.replaced
    assert reg.store.get_run(run.id).metric("time_per_1000").value == run.metric("time_per_1000").value


def test_errors_name_the_problem_and_change_nothing(reg, monkeypatch):
    run = run_evaluation(reg, "longer", "llmbar-natural", n_boot=30)
    _as_before_issue_15(reg, run.id)
    with pytest.raises(InvalidInput, match="give run ids"):
        rescore_runs(reg)
    with pytest.raises(InvalidInput, match="one of them"):
        rescore_runs(reg, run_ids=[run.id], all_runs=True)
    with pytest.raises(NotFound):
        rescore_runs(reg, run_ids=[run.id, 999])
    with pytest.raises(NotFound):
        rescore_runs(reg, dataset="no-such-set")
    # a run whose predictions cannot be read: nothing is stored, not even for the good run before it
    other = run_evaluation(reg, "always-first", "llmbar-natural", n_boot=30)
    _as_before_issue_15(reg, other.id)
    from registry.services import evaluation

    real = evaluation.load_predictions

    def load(ctx, r):
        if r.id == other.id:
            raise NotFound(f"predictions of run {r.id} are missing")
        return real(ctx, r)

    monkeypatch.setattr(evaluation, "load_predictions", load)
    generation = reg.store.standings_generation("pairwise")
    with pytest.raises(InvalidInput, match=f"run {other.id} .* cannot be re-scored: predictions of run"):
        rescore_runs(reg, all_runs=True)
    assert reg.store.get_run(run.id).metric("flip_rate") is None
    assert reg.store.standings_generation("pairwise") == generation
