"""``autorater regressions``: significant metric drops between a baseline run and a candidate run."""

from __future__ import annotations

import getpass

import typer
from rich.table import Table

from registry.cli.common import JSON_OPTION, cell, code_column, console, name_column, new_app, open_registry, print_json

app = new_app("Regressions: significant drops of a headline metric against a run's baselines.")


def _table(rows, title: str) -> Table:
    table = Table(title=title)
    code_column(table, "id", [r.id for r in rows])
    code_column(table, "status", [x for r in rows for x in (r.status, r.severity)])
    name_column(table, "evaluator / dataset")
    for col in ("change (95% CI)", "p", "against"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(str(r.id), f"{r.status}\n{r.severity}", f"{cell(r.evaluator)}\n{cell(r.dataset)}",
                      f"{cell(r.metric)} {r.baseline_value:.3f} → {r.candidate_value:.3f}\n"
                      f"{r.delta:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]", f"{r.p_value:.2g}",
                      f"{r.baseline_kind}\nrun {r.baseline_run_id} → {r.candidate_run_id}")
    return table


@app.command("list")
def regressions_list(
    status: str = typer.Option(None, "--status", help="open | acknowledged (default: both)."),
    evaluator: str = typer.Option(None, "--evaluator", "-e", help="Only this candidate evaluator."),
    dataset: str = typer.Option(None, "--dataset", "-d", help="Only this dataset: NAME (any version) or NAME@VERSION."),
    json_out: bool = JSON_OPTION,
) -> None:
    """List recorded regressions, newest first."""
    rows = open_registry().regressions(status=status, evaluator=evaluator, dataset=dataset)
    if json_out:
        print_json(rows)
        return
    console.print(_table(rows, f"regressions ({len(rows)})"))


@app.command("ack")
def regressions_ack(
    regression_id: int = typer.Argument(..., metavar="ID", help="Regression id (see `autorater regressions list`)."),
    note: str = typer.Option(..., "--note", "-m", help="Why the drop is expected or accepted."),
    by: str = typer.Option(None, "--by", help="Who acknowledges it (default: the current user)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Acknowledge a regression: it stays recorded but no longer blocks the champion alias."""
    r = open_registry().acknowledge(regression_id, note=note, by=by or _user())
    if json_out:
        print_json(r)
    else:
        console.print(f"regression {r.id} acknowledged by {r.ack_by}: {r.ack_note}", markup=False)


@app.command("detect")
def regressions_detect(
    run_id: int = typer.Argument(..., metavar="RUN", help="Evaluation run id (printed by `autorater eval run`)."),
    threshold: float = typer.Option(None, "--threshold", help="Smallest recorded drop (default $AUTORATER_REGRESSION_THRESHOLD or 0.02)."),
    alpha: float = typer.Option(None, "--alpha", help="Significance level (default $AUTORATER_REGRESSION_ALPHA or 0.05)."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap resamples of the paired test."),
    seed: int = typer.Option(0, help="Seed of the bootstrap."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Compare RUN with its baselines and record significant drops (idempotent)."""
    check = open_registry().detect_regressions(run_id, threshold=threshold, alpha=alpha, n_boot=n_boot, seed=seed)
    baselines, rows = check.baselines, check.regressions
    if json_out:
        print_json(check)
        return
    if not baselines:
        console.print(f"run {run_id} has no baseline run (no earlier dataset version, parent or champion "
                      "checkpoint, or earlier protocol version evaluated)")
        return
    console.print(f"run {run_id} compared with " + ", ".join(f"{b.kind} run {b.run}" for b in baselines))
    console.print(_table(rows, f"regressions ({len(rows)})") if rows else "no regression")


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return None
