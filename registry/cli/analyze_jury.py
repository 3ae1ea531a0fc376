"""``autorater analyze jury``: the best jury of judges under a cost budget (see
:mod:`registry.cli.analyze`; the math is in :mod:`registry.domain.jury`, the gathering in
:mod:`registry.services.jury`)."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from registry.cli.analyze import app
from registry.cli.common import number as _num
from registry.cli.common import (
    JSON_OPTION,
    cell,
    code_column,
    console,
    name_column,
    open_registry,
    print_json,
)


def _price(value: float | None) -> str:
    return "unknown" if value is None else f"${value:.4g}"


@app.command("jury")
def jury(
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset NAME[@VERSION] (pairwise)."),
    budget: float = typer.Option(None, "--budget", help="Dollars per 1000 examples the jury may cost at most (the "
                                                        "members' summed price_per_1000; candidates of unknown "
                                                        "cost are left out under a budget)."),
    combine: str = typer.Option("majority", "--combine", help="majority | weighted | stacked."),
    max_size: int = typer.Option(5, "--max-size", help="Largest jury searched (majority: odd sizes only)."),
    candidates: str = typer.Option(None, "--candidates", help="E1,E2,…: search juries of these evaluators only "
                                                              "(default: every evaluator with a run on the dataset)."),
    folds: int = typer.Option(5, "--folds", help="Cross-fitting folds (weighted, stacked)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the folds and of the bootstrap."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap resamples for the CIs and the paired test."),
    top: int = typer.Option(5, "--top", help="How many of the best juries to list."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Search juries of 2..MAX_SIZE of the evaluators run on a dataset (exhaustively, over the 12 most
    accurate) within a cost budget; report the best one's out-of-fold accuracy with its bootstrap CI
    and the paired test against the best single evaluator, and the next best juries."""
    names = [c.strip() for c in candidates.split(",") if c.strip()] if candidates else None
    r = open_registry().analyze_jury(dataset, budget=budget, members=names, combine=combine, max_size=max_size,
                                     folds=folds, seed=seed, n_boot=n_boot, top=top)
    if json_out:
        print_json(r)
        return
    budget_text = f", budget {_price(r.budget)} per 1000" if r.budget is not None else ""
    table = Table(title=escape(f"{r.combine} juries on {r.dataset} ({r.n_examples} examples, {r.n_subsets} juries "
                               f"searched{budget_text})"))
    table.add_column("#", justify="right")
    name_column(table, "jury")
    rows = [(_num(s.accuracy), f"[{_num(s.ci_low)}, {_num(s.ci_high)}]", _price(s.price_per_1000)) for s in r.top]
    single = r.best_single
    rows.append((_num(single.accuracy), f"[{_num(single.ci_low)}, {_num(single.ci_high)}]",
                 _price(single.price_per_1000)))
    for i, header in enumerate(("accuracy", "95% CI", "$/1000")):
        code_column(table, header, [row[i] for row in rows], justify="right")
    for i, (s, row) in enumerate(zip(r.top, rows), start=1):
        table.add_row(str(i), cell(" + ".join(s.members)), *row)
    table.add_row("single", cell(single.evaluator), *rows[-1])
    console.print(table)
    t = r.test
    better = "better than" if t.difference > 0 and t.p_value < 0.05 else \
        "worse than" if t.difference < 0 and t.p_value < 0.05 else "not distinguishable from"
    console.print(f"best jury − best single: {t.difference:+.3f} [{t.ci_low:+.3f}, {t.ci_high:+.3f}], "
                  f"p={t.p_value:.3g} ({t.method}, paired over {t.n} examples): the jury is {better} the best single "
                  "evaluator", highlight=False, markup=False)
    for e in r.excluded:
        console.print(f"left out {e.evaluator}: {e.reason}", highlight=False, markup=False)
    for note in r.notes:
        console.print(f"note: {note}", highlight=False, markup=False)
