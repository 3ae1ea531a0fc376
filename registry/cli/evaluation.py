"""``autorater eval | best | leaderboard``: run and import evaluations, run checkpoint × protocol × dataset matrices, rank evaluators."""

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
    check_regressions: bool = typer.Option(True, "--check-regressions/--no-check-regressions",
                                           help="Compare the run with its baselines and record regressions."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Run an evaluator on a dataset version (cached judgments are reused), then check the run
    for regressions against its baselines (previous dataset version, parent/champion checkpoint,
    previous protocol version); new regressions are recorded and notified."""
    from registry.services.evaluation import run_evaluation

    reg = open_registry()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True, disable=json_out) as progress:
        task = progress.add_task(f"{evaluator} on {dataset}", total=None)
        run = run_evaluation(reg, evaluator, dataset, seed=seed, n_boot=n_boot, batch_size=batch_size,
                             on_progress=lambda done, total: progress.update(task, completed=done, total=total))
    _print_run(run, json_out)
    if check_regressions and run.status == "succeeded":
        from registry.services.regressions import detect_regressions

        for r in detect_regressions(reg, run.id, seed=seed):
            err_console.print(f"[red]regression #{r.id}[/] ({r.severity}, {r.status}): {r.metric} {r.delta:+.3f} "
                              f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}], p={r.p_value:.3g} against run "
                              f"{r.baseline_run_id} ({r.baseline_kind}: {r.baseline_evaluator} on {r.baseline_dataset})")


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


def _config_value(text: str):
    """A ``--config`` value: JSON when it parses (numbers, booleans, lists), else the string."""
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text


def _print_matrix(result, json_out: bool) -> None:
    if json_out:
        print_json({"checkpoints": result.checkpoints, "protocols": result.protocols, "datasets": result.datasets,
                    "n_executed": result.n_executed, "cells": result.cells})
        return
    from rich.markup import escape

    metrics = sorted({c.metric for c in result.cells if c.metric})
    table = Table(title=f"matrix: headline metric per cell ({', '.join(metrics) or '-'}); dim = from an earlier run")
    table.add_column("evaluator")
    for d in result.datasets:
        table.add_column(escape(d), justify="right")
    for ev in result.evaluators:
        row = []
        for d in result.datasets:
            c = result.cell(ev, d)
            row.append({"ran": _fmt(c.value), "cached": f"[dim]{_fmt(c.value)}[/]", "failed": "[red]failed[/]",
                        "incompatible": "n/a"}[c.status])
        table.add_row(escape(ev), *row)
    console.print(table)
    console.print(f"{len(result.cells)} cells: ran {result.count('ran')} ({result.n_executed} judgments executed), "
                  f"from earlier runs {result.count('cached')}, failed {result.count('failed')}, "
                  f"incompatible {result.count('incompatible')}")
    for c in result.cells:
        if c.status == "failed":
            err_console.print(f"[red]failed[/] {escape(c.evaluator)} on {c.dataset}: {escape(str(c.error))}")


@eval_app.command("matrix")
def eval_matrix(
    checkpoints: str = typer.Option(..., "--checkpoints", "-c", help="Comma-separated checkpoints (AUTORATER@VERSION)."),
    protocols: str = typer.Option("all", "--protocols", "-p",
                                  help="Comma-separated protocols (NAME[@VERSION]) or 'all' (every generative-judge "
                                       "protocol that can judge the datasets)."),
    datasets: str = typer.Option(..., "--datasets", "-d", help="Comma-separated datasets (NAME[@VERSION])."),
    max_tokens: int = typer.Option(None, "--max-tokens", help="Cap every generation (decision and stages)."),
    config: list[str] = typer.Option(None, "--config", help="KEY=VALUE evaluator config, e.g. backend=openai, "
                                                            "device=cuda, orders=[0] (values are JSON when they parse)."),
    seed: int = typer.Option(0, help="Seed of the bootstrap and of coin flips."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap resamples for confidence intervals."),
    batch_size: int = typer.Option(64, "--batch-size", help="Examples per evaluator call."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Run every checkpoint × protocol on every dataset (ReIFE-style); cells already run are skipped."""
    from registry.adapters.sources.generic import parse_pairs
    from registry.services.matrix import run_matrix

    cfg = {k: _config_value(v) for k, v in parse_pairs(config or [], option="--config").items()}
    if max_tokens is not None:
        cfg["max_tokens"] = max_tokens
    reg = open_registry()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True, disable=json_out) as progress:
        cells = progress.add_task("cells", total=None)
        judgments = progress.add_task("judgments", total=None)

        def on_cell(done: int, total: int, what: str) -> None:
            progress.update(cells, completed=done, total=total, description=f"cells — {what}")
            progress.reset(judgments, total=None)

        result = run_matrix(reg, checkpoints, protocols, datasets, config=cfg, seed=seed, n_boot=n_boot,
                            batch_size=batch_size, on_cell=on_cell,
                            on_progress=lambda done, total: progress.update(judgments, completed=done, total=total))
    _print_matrix(result, json_out)
    if result.count("failed"):
        raise typer.Exit(1)
