"""``autorater analyze robustness``: an evaluator's accuracy drop from a dataset version to a
perturbation probe of it (``autorater dataset derive``), with the paired test (see
:mod:`registry.cli.analyze`)."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from registry.cli.analyze import app
from registry.cli.common import number as _num
from registry.cli.common import JSON_OPTION, cell, code_column, console, name_column, open_registry, print_json
from registry.errors import InvalidInput


def _p(value: float | None) -> str:
    if value is None or value != value:
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


@app.command("robustness")
def robustness(
    evaluator: list[str] = typer.Option(None, "--evaluator", "-e", help="Evaluator name (repeatable)."),
    all_evaluators: bool = typer.Option(False, "--all", help="Every evaluator with runs on both versions."),
    parent: str = typer.Option(..., "--parent", help="The parent version NAME@VERSION."),
    probe: str = typer.Option(..., "--probe", help="The probe version NAME@VERSION (`autorater dataset derive`)."),
    metric: str = typer.Option(None, "--metric", "-m", help="Metric (default: the parent's headline, accuracy)."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap resamples of the paired test."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    json_out: bool = JSON_OPTION,
) -> None:
    """An evaluator's drop (parent − probe) from a version to a probe of it, on the examples both of
    its latest runs judged, with a paired-bootstrap CI and p-value (McNemar's where it applies), and
    the flip rate: the share of those examples whose per-example credit changed."""
    if all_evaluators and evaluator:
        raise InvalidInput("pass --evaluator NAME or --all, not both", field="--all")
    if not all_evaluators and not evaluator:
        raise InvalidInput("name an evaluator (--evaluator NAME, repeatable) or pass --all", field="--evaluator")
    r = open_registry().robustness(None if all_evaluators else evaluator, parent=parent, probe=probe, metric=metric,
                                   n_boot=n_boot, seed=seed)
    if json_out:
        print_json(r)
        return
    what = f"{r.transform} probe" if r.transform else "probe"
    table = Table(title=f"robustness: {r.metric} on {escape(r.parent)} → {escape(r.probe)} ({escape(what)})")
    name_column(table, "evaluator", min_width=12)
    mcnemar = any(x.mcnemar_p is not None for x in r.rows)
    values = [(_num(x.parent_value), _num(x.probe_value), f"{_num(x.drop)} [{_num(x.ci_low)}, {_num(x.ci_high)}]",
               _p(x.p_value), *((_p(x.mcnemar_p),) if mcnemar else ()), _num(x.flip_rate, 2), str(x.n_shared))
              for x in r.rows]
    headers = ("parent", "probe", "drop [95% CI]", "p", *(("McNemar p",) if mcnemar else ()), "flips", "n")
    for i, header in enumerate(headers):
        if header.startswith("drop"):  # the widest: it may wrap (CI on its own line) so the table fits 80 columns
            table.add_column(header, justify="right", overflow="fold", min_width=6)
        else:
            code_column(table, header, [v[i] for v in values], justify="right")
    for x, v in zip(r.rows, values, strict=True):
        table.add_row(cell(x.evaluator), *v)
    console.print(table)
    for name, why in r.skipped:
        console.print(f"skipped {name}: {why}", highlight=False, markup=False)
