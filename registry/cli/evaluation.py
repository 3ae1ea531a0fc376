"""``autorater eval | best | leaderboard``: run and import evaluations, run checkpoint × protocol × dataset matrices, rank evaluators."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from registry.cli.common import (
    JSON_OPTION,
    code_column,
    console,
    err_console,
    name_column,
    new_app,
    open_registry,
    print_json,
)
from registry.domain.options import parse_json_pairs, parse_pairs
from registry.errors import InvalidInput

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
    from registry.domain.metrics.bias import BIAS_GROUP

    bias = {m.name: m for m in run.metrics if m.name in BIAS_GROUP and m.slice == "all"}
    for title, metrics in ((None, [m for m in run.metrics if not (m.name in bias and m.slice == "all")]),
                           ("bias diagnostics", [bias[name] for name in BIAS_GROUP if name in bias])):
        if not metrics:
            continue
        table = Table(title=title)
        for col in ("metric", "slice", "value", "95% CI", "n"):
            table.add_column(col, overflow="fold")
        for m in metrics:
            ci = f"[{_fmt(m.ci_low)}, {_fmt(m.ci_high)}]" if m.ci_low is not None else "-"
            table.add_row(escape(m.name), escape(m.slice), _fmt(m.value), ci, str(m.n))
        console.print(table)
    coverage = run.metric("coverage")
    for report in ((coverage.extra or {}).get("slices") or []) if coverage else []:
        if report.get("skipped_total"):
            shown = ", ".join(f"{escape(str(s['slice']))} (n={s['n']})" for s in report["skipped"][:5])
            more = f" and {report['skipped_total'] - 5} more" if report["skipped_total"] > 5 else ""
            console.print(f"slices by {escape(str(report['column']))}: {report['computed']} computed, "
                          f"{report['skipped_total']} skipped (fewer than {report['min_size']} examples): "
                          f"{shown}{more}", highlight=False)
    for w in (run.provenance or {}).get("warnings") or []:
        err_console.print(f"[yellow]warning[/]: {escape(w)}", highlight=False, soft_wrap=True)


@eval_app.command("run")
def eval_run(
    evaluator: str = typer.Option(..., "--evaluator", "-e", help="Evaluator name (see `autorater evaluator list`)."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="NAME or NAME@VERSION (default latest)."),
    seed: int = typer.Option(0, help="Seed of the bootstrap and of coin flips."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap resamples for confidence intervals."),
    batch_size: int = typer.Option(64, "--batch-size", help="Examples per evaluator call."),
    check_regressions: bool = typer.Option(True, "--check-regressions/--no-check-regressions",
                                           help="Compare the run with its baselines and record regressions."),
    slice_by: list[str] = typer.Option(None, "--slice-by", help="Also store the headline metrics per value of this "
                                       "dataset column or metadata key (metadata.KEY); repeatable "
                                       "(default: category, when the dataset has several)."),
    min_slice_size: int = typer.Option(10, "--min-slice-size", help="Skip slices with fewer judged examples "
                                       "(the skipped ones are listed in coverage's extra)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Run an evaluator on a dataset version (cached judgments are reused), then check the run
    for regressions against its baselines (previous dataset version, parent/champion checkpoint,
    previous protocol version); new regressions are recorded and notified."""
    reg = open_registry()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True, disable=json_out) as progress:
        task = progress.add_task(f"{evaluator} on {dataset}", total=None)
        run = reg.evaluate(evaluator, dataset, seed=seed, n_boot=n_boot, batch_size=batch_size,
                           on_progress=lambda done, total: progress.update(task, completed=done, total=total),
                           slice_by=slice_by or None, min_slice_size=min_slice_size)
    _print_run(run, json_out)
    if check_regressions and run.status == "succeeded":
        for r in reg.detect_regressions(run.id, seed=seed).regressions:
            err_console.print(f"[red]regression #{r.id}[/] ({r.severity}, {r.status}): {r.metric} {r.delta:+.3f} "
                              f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}], p={r.p_value:.3g} against run "
                              f"{r.baseline_run_id} ({r.baseline_kind}: {r.baseline_evaluator} on {r.baseline_dataset})")


@eval_app.command("import")
def eval_import(
    paths: list[str] = typer.Argument(..., help="Prediction file(s) or glob patterns (a ReIFE file's _swap twin is "
                                                "found beside it). Several LLMBar result.json files may be given "
                                                "without --dataset/--evaluator: both are inferred from the layout."),
    fmt: str = typer.Option(..., "--format", "-f", help="llmbar | pandalm | unieval | reife | mapped."),
    dataset: str = typer.Option(None, "--dataset", "-d", help="NAME or NAME@VERSION the predictions are for."),
    evaluator: str = typer.Option(None, "--evaluator", "-e",
                                  help="Name of the external evaluator, e.g. gpt-4/llmbar-vanilla."),
    option: list[str] = typer.Option(None, "--option", "-o", help="KEY=VALUE reader option: criterion=…, subset=… "
                                                                  "(unieval); other formats take none."),
    mapping: list[str] = typer.Option(None, "--map", help="FIELD=COLUMN for the mapped format: example_id, verdict_0, "
                                                          "verdict_1, score_0, score_1, prob_a_0, prob_a_1, raw_0, "
                                                          "raw_1. COLUMN may be a dotted path (judgments.0.decision), "
                                                          "@row (row order) or @key (dict-of-lists files)."),
    label_map: list[str] = typer.Option(None, "--label-map", help="VALUE=LABEL for the mapped format."),
    unmapped: str = typer.Option("error", "--unmapped", help="Verdicts that are not labels after --label-map: "
                                                              "'error' (default: list them) or 'failure' (count "
                                                              "them as parse failures)."),
    swapped_verdicts: str = typer.Option("as-original", "--swapped-verdicts",
                                         help="What an order-1 (swapped) verdict refers to: 'as-original' (the "
                                              "original response; default) or 'as-positions' (the position shown)."),
    slice_by: list[str] = typer.Option(None, "--slice-by", help="Metadata column to slice the metrics by "
                                                                 "(repeatable; default: category)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Import an external evaluator's predictions as an evaluation run. Imports are content-addressed:
    importing the same file with the same options again returns the existing run."""
    import glob

    files: list[Path] = []
    for p in paths:
        # a path that exists is that file, even when its name holds glob characters ("x[1].json")
        matched = sorted(glob.glob(p, recursive=True)) if glob.has_magic(p) and not Path(p).exists() else [p]
        if not matched:
            raise InvalidInput(f"the pattern {p!r} matches no file", field="paths")
        files += [Path(m) for m in matched]
    reg = open_registry()
    if len(files) > 1 or dataset is None or evaluator is None:
        if fmt != "llmbar" or option or mapping or label_map:
            raise InvalidInput("give --dataset and --evaluator (and one file); only LLMBar result.json files can be "
                               "imported several at once, with both inferred from the layout", field="dataset")
        if dataset or evaluator:
            raise InvalidInput("--dataset and --evaluator are inferred for several files; omit them", field="dataset")
        _print_batch(_run_batch(reg, files, json_out), json_out)
        return
    options: dict = dict(parse_pairs(option or [], option="--option"))
    if fmt == "mapped":
        options["mapping"] = parse_pairs(mapping or [], option="--map")
        if label_map:
            options["label_map"] = parse_pairs(label_map, option="--label-map")
        if unmapped != "error":
            options["unmapped"] = unmapped
        if swapped_verdicts != "as-original":
            options["swapped_verdicts"] = swapped_verdicts
    elif mapping or label_map or unmapped != "error" or swapped_verdicts != "as-original":
        raise InvalidInput("--map, --label-map, --unmapped and --swapped-verdicts are for --format mapped",
                           field="map")
    run = reg.import_predictions(fmt, files[0], dataset, evaluator=evaluator, options=options,
                                 slice_by=slice_by or None)
    if json_out:  # the table form prints the warnings itself
        for w in run.provenance.get("warnings") or []:
            err_console.print(f"[yellow]warning[/]: {escape(w)}", highlight=False, soft_wrap=True)
    _print_run(run, json_out)


def _run_batch(reg, files_or_root, json_out: bool):
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True, disable=json_out) as progress:
        task = progress.add_task("importing", total=None)

        def on_progress(done: int, total: int, what: str) -> None:
            progress.update(task, completed=done, total=total, description=f"importing {Path(what).parent.name}")

        return reg.import_tree(files_or_root, on_progress=on_progress)


def _print_batch(items, json_out: bool) -> None:
    if json_out:
        print_json(items)
    else:
        from rich.markup import escape

        table = Table(title="batch import")
        for col in ("status", "evaluator", "dataset", "run", "headline", "file / message"):
            table.add_column(col, overflow="fold")
        for it in items:
            table.add_row(it.status, escape(it.evaluator or "-"), escape(it.dataset or "-"),
                          str(it.run_id or "-"), f"{it.headline} {_fmt(it.value)}" if it.headline else "-",
                          escape(it.message or it.path))
        console.print(table)
        counts = {s: sum(it.status == s for it in items) for s in ("imported", "unchanged", "skipped", "failed")}
        console.print(", ".join(f"{n} {s}" for s, n in counts.items()))
    if any(it.status == "failed" for it in items):
        raise typer.Exit(1)


@eval_app.command("import-tree")
def eval_import_tree(
    root: Path = typer.Argument(..., help="Folder to search for evaluators/<judge>/<protocol>/result.json."),
    fmt: str = typer.Option("llmbar", "--format", "-f", help="Layout of the tree (llmbar)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Import every LLMBar judge result under ROOT in one process: each file is matched to its registered
    dataset (the one registered from the dataset.json of its folder, else by content) and imported as
    evaluator <judge>/llmbar-<protocol>; files already imported are reported unchanged, files that match
    no registered dataset are skipped. Exit 1 if any file failed."""
    reg = open_registry()
    if fmt != "llmbar":
        reg.import_tree(root, fmt=fmt)  # raises the explanation
    _print_batch(_run_batch(reg, root, json_out), json_out)


@eval_app.command("show")
def eval_show(run_id: int = typer.Argument(..., help="Run id."), json_out: bool = JSON_OPTION) -> None:
    """Show a run: status, counts, cost, provenance and every metric with its CI."""
    _print_run(open_registry().run(run_id), json_out)


@eval_app.command("rescore")
def eval_rescore(
    run: list[int] = typer.Option(None, "--run", "-r", help="Run id to re-score (repeat the option for several)."),
    all_runs: bool = typer.Option(False, "--all", help="Re-score every succeeded run of the registry."),
    dataset: str = typer.Option(None, "--dataset", "-d", help="Re-score every succeeded run of NAME[@VERSION]."),
    replace: bool = typer.Option(False, "--replace", help="Also store the recomputed values of the metrics a run "
                                 "already has (default: keep them, add the missing ones, list those that differ)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Compute stored runs' metrics again from their predictions with today's scoring code and store
    the ones each run lacks (e.g. the bias diagnostics for runs made before them), in one
    transaction; each run keeps its seed, bootstrap resamples and slicing, and leaderboards see the
    new values at once. Values that differ from the stored ones are listed (kept unless --replace)."""
    result = open_registry().rescore(run or None, all_runs=all_runs, dataset=dataset, replace=replace)
    if json_out:
        print_json(result)
        return
    table = Table(title=f"re-scored {len(result.runs)} run(s)")
    for col in ("run", "evaluator", "dataset", "metrics", "added", "changed"):
        table.add_column(col, overflow="fold")
    for r in result.runs:
        table.add_row(str(r.run), escape(r.evaluator), escape(r.dataset), str(r.metrics),
                      escape(", ".join(r.added)) or "-", escape(", ".join(r.changed)) or "-")
    console.print(table)


def _print_ranking(ranking, json_out: bool, columns: list[str] | None = None) -> None:
    if json_out:
        print_json(ranking)
        return
    from rich.markup import escape

    table = Table(title=escape(f"{ranking.scope} — {ranking.metric}"))
    # names fold instead of ending in an ellipsis: two evaluators never read the same at any width
    table.add_column("#", justify="right")
    table.add_column("evaluator", overflow="fold", min_width=12)
    table.add_column(escape(ranking.metric), overflow="fold", min_width=5)
    for col in ("95% CI", "n", "vs best", "p", "tied"):
        table.add_column(col, overflow="fold")
    for i, s in enumerate(ranking.standings, start=1):
        untested = i > 1 and s.p_value is None
        table.add_row(str(i), escape(s.evaluator), _fmt(s.value), f"[{_fmt(s.ci_low)}, {_fmt(s.ci_high)}]", str(s.n),
                      _fmt(-s.difference if s.difference is not None else None),
                      "n/a" if untested else _fmt(s.p_value), "yes" if s.tied_with_best else "")
    console.print(table)
    if columns:  # leaderboard --columns: the other metrics of the same standings, in the same order
        more = Table(title="other metrics")
        more.add_column("#", justify="right")
        more.add_column("evaluator", overflow="fold", min_width=12)
        for col in columns:
            more.add_column(escape(col), overflow="fold", min_width=5)
        for i, s in enumerate(ranking.standings, start=1):
            more.add_row(str(i), escape(s.evaluator), *(_fmt((s.metrics or {}).get(c)) for c in columns))
        console.print(more)
    _print_tests(ranking)


def _print_tests(ranking) -> None:
    """Which paired test the p-values come from, or why a row has none."""
    from rich.markup import escape

    if ranking.test and len(ranking.standings) > 1:
        console.print(escape(f"paired test against the best: {ranking.test}"), highlight=False)
    for s in ranking.standings[1:]:
        if s.test and s.test != ranking.test:
            console.print(escape(f"{s.evaluator}: {s.test}"), highlight=False)


def _print_coverage(ranking) -> None:
    """The datasets a task-type ranking used and skipped, and the evaluators it left out."""
    from rich.markup import escape

    if ranking.coverage is None:
        return
    console.print(escape(f"datasets used (coverage {ranking.coverage}): {', '.join(ranking.datasets)}"),
                  highlight=False)
    by_reason: dict[str, list[str]] = {}
    for sk in ranking.skipped:  # datasets skipped for the same reason on one line
        by_reason.setdefault(sk.reason, []).append(sk.dataset)
    for reason, names in by_reason.items():
        what = f"skipped {names[0]}: {reason}" if len(names) == 1 else f"skipped ({reason}): {', '.join(names)}"
        console.print(escape(what), highlight=False)
    for lo in ranking.left_out:
        console.print(escape(f"left out {lo.evaluator}: no run on {', '.join(lo.missing)}"), highlight=False)


BEST_TEXT_LIMIT = 20
"""Standings `best` without --json reads (issue 12: a bounded read whatever the number of evaluators):
the tied evaluators among them with their p-values, any tied one ranked past them by name."""


def best(
    dataset: str = typer.Option(None, "--dataset", "-d", help="Dataset NAME[@VERSION]."),
    task_type: str = typer.Option(None, "--task-type", "-t", help="pairwise | pointwise | classification."),
    metric: str = typer.Option(None, "--metric", "-m", help="Metric to rank by (default: the headline; see "
                                                            "`autorater metrics list`)."),
    coverage: str = typer.Option(None, "--coverage", help="Task types: 'common' (default) averages over the datasets "
                                 "that the most evaluators all have and leaves out evaluators missing one; 'all' "
                                 "averages over every dataset and ranks only evaluators with runs on all of them."),
    datasets: str = typer.Option(None, "--datasets", help="D1,D2,… (NAME[@VERSION]): average over these datasets "
                                 "(coverage 'all' unless --coverage common)."),
    limit: int = typer.Option(None, "--limit", min=1, help="--json: list only the first N standings (the best, "
                              "every name tied with it and standings_total stay whole; default: all), as the "
                              "REST API's /best?limit=N. Text: read the first N (default 20); tied ones ranked "
                              "past them are named without their p-value."),
    max_cost: float = typer.Option(None, "--max-cost-per-1000", "--max-cost-per-1k",
                                   help="Rank only runs whose dollars per 1000 examples are known and at most this "
                                        "(price_per_1000; $0 for local evaluators without a price; a jury: its "
                                        "members' sum, unknown when one member's is)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Best evaluator for a dataset or a task type, with its CI and the evaluators tied with it;
    for a task type, also the datasets used and skipped and the evaluators left out. Juries rank
    with the single evaluators; ``--json`` gives each standing's evaluator ``kind``."""
    from rich.markup import escape

    reg = open_registry()
    ranking = reg.best(dataset=dataset, task_type=task_type, metric=metric, coverage=coverage,
                       datasets=datasets.split(",") if datasets else None, max_cost_per_1k=max_cost,
                       limit=limit if json_out else (limit or BEST_TEXT_LIMIT))
    if json_out:
        _print_ranking(ranking, True)
        return
    b = ranking.best
    over = f" over {len(ranking.datasets)} dataset(s)" if ranking.coverage else ""
    console.print(escape(f"best for {ranking.scope} by {ranking.metric}{over}: ") + f"[bold]{escape(b.evaluator)}[/] "
                  f"{_fmt(b.value)} [{_fmt(b.ci_low)}, {_fmt(b.ci_high)}]", highlight=False)
    others = ranking.standings[1:]
    if others and all(s.p_value is None for s in others):
        tied = f"not tested ({ranking.test or others[0].test})"
    else:
        names = [f"{s.evaluator} (p={_fmt(s.p_value)})" for s in ranking.tied]
        shown = {s.evaluator for s in ranking.tied}
        if beyond := [e for e in (ranking.all_tied or ()) if e not in shown]:   # tied, ranked past the limit
            names.append(", ".join(beyond) + f" (p-values: --json, or --limit beyond {len(ranking.standings)})")
        tied = ", ".join(names) or "none"
    console.print(escape(f"statistically tied with it: {tied}"), highlight=False)
    if others and ranking.test and not ranking.test.startswith("no paired test"):
        console.print(escape(f"paired test against the best: {ranking.test}"), highlight=False)
    _print_coverage(ranking)


def leaderboard(
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset NAME[@VERSION]."),
    metric: str = typer.Option(None, "--metric", "-m", help="Metric to rank by (default: the headline; see "
                                                            "`autorater metrics list`)."),
    columns: str = typer.Option(None, "--columns", help="M1,M2,…: more metrics shown beside the ranked one (e.g. the "
                                "bias diagnostics flip_rate,lc_accuracy,prob_prefer_first; `autorater metrics list`)."),
    limit: int = typer.Option(None, "--limit", min=1, help="Only the first N standings (--json: the best, every name "
                              "tied with it and standings_total stay whole; default: all)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Every evaluator on a dataset version, ranked, with CIs and the paired test of the same
    metric against the best (which test is printed below the table)."""
    extra = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    _print_ranking(open_registry().leaderboard(dataset, metric, columns=extra, limit=limit), json_out, extra)


@eval_app.command("compare")
def eval_compare(
    run_a: int = typer.Argument(..., help="First run id."),
    run_b: int = typer.Argument(..., help="Second run id (same dataset version)."),
    metric: str = typer.Option(None, "--metric", "-m", help="Metric to compare (default: the dataset's headline); "
                                                            "every test is on it."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap resamples."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Paired comparison of two runs on their shared examples, on one metric: a paired bootstrap
    (per-example values, or the statistic recomputed on each resample) and McNemar's test where
    the metric is a mean of 0/1 correctness."""
    from rich.markup import escape

    c = open_registry().compare(run_a, run_b, metric=metric, n_boot=n_boot)
    if json_out:
        print_json(c)
        return
    pb, mc = c.paired_bootstrap, c.mcnemar
    console.print(escape(f"{c.dataset}, {c.metric} on {c.n_shared} shared examples: run {c.run_a} {_fmt(c.value_a)} vs "
                         f"run {c.run_b} {_fmt(c.value_b)}"), highlight=False)
    console.print(escape(f"{pb['test']}: difference {_fmt(pb['difference'])} [{_fmt(pb.get('ci_low'))}, "
                         f"{_fmt(pb.get('ci_high'))}], p = {_fmt(pb['p_value'])}"), highlight=False)
    if mc["applies"]:
        console.print(escape(f"McNemar ({mc['method']}) on {mc['metric']}: difference {_fmt(mc['difference'])}, "
                             f"p = {_fmt(mc['p_value'])}, only run {c.run_a} right: {mc['only_a']}, only run "
                             f"{c.run_b} right: {mc['only_b']}"), highlight=False)
    else:
        console.print(escape(f"McNemar does not apply: {mc['reason']}"), highlight=False)


def _print_matrix(result, json_out: bool) -> None:
    if json_out:
        print_json(result)
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
    cfg = parse_json_pairs(config, option="--config")
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

        result = reg.matrix(checkpoints, protocols, datasets, config=cfg, seed=seed, n_boot=n_boot,
                            batch_size=batch_size, on_cell=on_cell,
                            on_progress=lambda done, total: progress.update(judgments, completed=done, total=total))
    _print_matrix(result, json_out)
    if result.count("failed"):
        raise typer.Exit(1)


@eval_app.command("list")
def eval_list(
    dataset: str = typer.Option(None, "--dataset", "-d", help="Only runs on NAME (any version) or NAME@VERSION."),
    evaluator: str = typer.Option(None, "--evaluator", "-e", help="Only runs of this evaluator."),
    status: str = typer.Option(None, "--status", "-s", help="Only runs with this status: running | succeeded | failed."),
    limit: int = typer.Option(None, "--limit", "-n", min=1, help="At most this many runs (the newest)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """List evaluation runs, newest first: evaluator, dataset@version, status, counts, headline
    metric (with its 95% CI in --json) and start/finish times."""
    from rich.markup import escape

    rows = open_registry().runs(dataset=dataset, evaluator=evaluator, status=status, limit=limit)
    if json_out:
        print_json(rows)
        return
    table = Table(title=f"evaluation runs ({len(rows)}), newest first")
    code_column(table, "run", [r.id for r in rows])
    name_column(table, "evaluator\ndataset")
    code_column(table, "status", [r.status for r in rows])
    code_column(table, "examples\njudgments", [n for r in rows for n in (r.n_examples, r.n_judgments)],
                justify="right")
    name_column(table, "headline")
    table.add_column("started\nfinished", overflow="fold")
    for r in rows:
        table.add_row(str(r.id), f"{escape(r.evaluator)}\n{escape(r.dataset)}", r.status,
                      f"{r.n_examples}\n{r.n_judgments}", f"{r.headline}\n{_fmt(r.value)}",
                      f"{_when(r.started_at)}\n{_when(r.finished_at)}")
    console.print(table)


def _when(t) -> str:
    return "-" if t is None else f"{t:%Y-%m-%d %H:%M:%S}"
