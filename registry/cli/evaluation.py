"""``autorater eval | best | leaderboard``: run and import evaluations, rank evaluators."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from registry.cli.common import JSON_OPTION, console, err_console, new_app, open_registry, print_json

eval_app = new_app("Evaluation runs: run an evaluator on a dataset version, import predictions, inspect runs.")


def _fmt(x: float | None, nd: int = 3) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def _print_run(run, json_out: bool) -> None:
    if json_out:
        print_json(run)
        return
    console.print(f"run [bold]{run.id}[/] {run.evaluator} on {run.dataset}: {run.status}, "
                  f"{run.n_examples} examples, {run.n_judgments} judgments "
                  f"({run.n_executed} executed, {run.n_cached} cached), {_fmt(run.seconds, 1)} s")
    table = Table()
    for col in ("metric", "slice", "value", "95% CI", "n"):
        table.add_column(col)
    for m in run.metrics:
        ci = f"[{_fmt(m.ci_low)}, {_fmt(m.ci_high)}]" if m.ci_low is not None else "-"
        table.add_row(m.name, m.slice, _fmt(m.value), ci, str(m.n))
    console.print(table)


@eval_app.command("run")
def eval_run(
    evaluator: str = typer.Option(..., "--evaluator", "-e", help="Evaluator name (see `autorater evaluator list`)."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="NAME or NAME@VERSION (default latest)."),
    seed: int = typer.Option(0, help="Seed of the bootstrap and of coin flips."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap resamples for confidence intervals."),
    batch_size: int = typer.Option(64, "--batch-size", help="Examples per evaluator call."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Run an evaluator on a dataset version (cached judgments are reused)."""
    from registry.services.evaluation import run_evaluation

    reg = open_registry()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True, disable=json_out) as progress:
        task = progress.add_task(f"{evaluator} on {dataset}", total=None)
        run = run_evaluation(reg, evaluator, dataset, seed=seed, n_boot=n_boot, batch_size=batch_size,
                             on_progress=lambda done, total: progress.update(task, completed=done, total=total))
    _print_run(run, json_out)


@eval_app.command("import")
def eval_import(
    path: Path = typer.Argument(..., help="Prediction file (a ReIFE file's _swap twin is found beside it)."),
    fmt: str = typer.Option(..., "--format", "-f", help="llmbar | pandalm | unieval | reife | mapped."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="NAME or NAME@VERSION the predictions are for."),
    evaluator: str = typer.Option(..., "--evaluator", "-e", help="Name of the external evaluator, e.g. gpt-4/llmbar-vanilla."),
    option: list[str] = typer.Option(None, "--option", "-o", help="KEY=VALUE reader option, e.g. criterion=coherence."),
    mapping: list[str] = typer.Option(None, "--map", help="FIELD=COLUMN for the mapped format (example_id, verdict_0, ...)."),
    label_map: list[str] = typer.Option(None, "--label-map", help="VALUE=LABEL for the mapped format."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Import an external evaluator's predictions as an evaluation run."""
    from registry.adapters.sources.generic import parse_pairs
    from registry.services.imports import import_predictions

    options: dict = dict(parse_pairs(option or [], option="--option"))
    if mapping:
        options["mapping"] = parse_pairs(mapping, option="--map")
    if label_map:
        options["label_map"] = parse_pairs(label_map, option="--label-map")
    run = import_predictions(open_registry(), fmt, path, dataset, evaluator=evaluator, options=options)
    _print_run(run, json_out)


@eval_app.command("show")
def eval_show(run_id: int = typer.Argument(..., help="Run id."), json_out: bool = JSON_OPTION) -> None:
    """Show a run: status, counts, cost, provenance and every metric with its CI."""
    _print_run(open_registry().store.get_run(run_id), json_out)


def _print_ranking(ranking, json_out: bool) -> None:
    if json_out:
        print_json({"scope": ranking.scope, "metric": ranking.metric, "datasets": ranking.datasets,
                    "best": ranking.best, "tied_with_best": [s.evaluator for s in ranking.tied],
                    "standings": ranking.standings})
        return
    table = Table(title=f"{ranking.scope} — {ranking.metric}")
    for col in ("#", "evaluator", ranking.metric, "95% CI", "n", "vs best", "p", "tied"):
        table.add_column(col)
    for i, s in enumerate(ranking.standings, start=1):
        table.add_row(str(i), s.evaluator, _fmt(s.value), f"[{_fmt(s.ci_low)}, {_fmt(s.ci_high)}]", str(s.n),
                      _fmt(-s.difference if s.difference is not None else None),
                      _fmt(s.p_value), "yes" if s.tied_with_best else "")
    console.print(table)


def best(
    dataset: str = typer.Option(None, "--dataset", "-d", help="Dataset NAME[@VERSION]."),
    task_type: str = typer.Option(None, "--task-type", "-t", help="pairwise | pointwise | classification."),
    metric: str = typer.Option(None, "--metric", "-m", help="Metric to rank by (default: the task type's headline)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Best evaluator for a dataset or a task type, with its CI and the evaluators tied with it."""
    from registry.services.queries import best_evaluator

    ranking = best_evaluator(open_registry(), dataset=dataset, task_type=task_type, metric=metric)
    if json_out:
        _print_ranking(ranking, True)
        return
    b = ranking.best
    over = f" over {len(ranking.datasets)} dataset(s): {', '.join(ranking.datasets)}" if task_type else ""
    console.print(f"best for {ranking.scope} by {ranking.metric}{over}: [bold]{b.evaluator}[/] "
                  f"{_fmt(b.value)} [{_fmt(b.ci_low)}, {_fmt(b.ci_high)}]")
    tied = ", ".join(f"{s.evaluator} (p={_fmt(s.p_value)})" for s in ranking.tied)
    console.print(f"statistically tied with it: {tied or 'none'}")


def leaderboard(
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset NAME[@VERSION]."),
    metric: str = typer.Option(None, "--metric", "-m", help="Metric to rank by (default: the headline)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Every evaluator on a dataset version, ranked, with CIs and paired tests against the best."""
    from registry.services.queries import leaderboard as lb

    _print_ranking(lb(open_registry(), dataset, metric), json_out)


@eval_app.command("compare")
def eval_compare(
    run_a: int = typer.Argument(..., help="First run id."),
    run_b: int = typer.Argument(..., help="Second run id (same dataset version)."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap resamples."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Paired comparison of two runs on their shared examples (paired bootstrap, McNemar)."""
    from registry.services.queries import compare_runs

    c = compare_runs(open_registry(), run_a, run_b, n_boot=n_boot)
    if json_out:
        print_json(c)
        return
    pb = c.paired_bootstrap
    console.print(f"{c.dataset}, {c.metric} on {c.n_shared} shared examples: run {c.run_a} {_fmt(c.value_a)} vs "
                  f"run {c.run_b} {_fmt(c.value_b)}; difference {_fmt(pb['difference'])} "
                  f"[{_fmt(pb.get('ci_low'))}, {_fmt(pb.get('ci_high'))}], p = {_fmt(pb['p_value'])} (paired bootstrap)")
    if c.mcnemar:
        console.print(f"McNemar ({c.mcnemar['method']}): p = {_fmt(c.mcnemar['p_value'])}, only run {c.run_a} right: "
                      f"{c.mcnemar['only_a']}, only run {c.run_b} right: {c.mcnemar['only_b']}")
