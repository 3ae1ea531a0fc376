"""``autorater metrics``: the metric catalog — every metric a run can store, with its one meaning."""

from __future__ import annotations

import typer
from rich.table import Table

from registry.cli.common import JSON_OPTION, console, new_app, print_json

app = new_app("The metric catalog: every metric a run can store, its definition and its source.")


@app.command("list")
def list_metrics(
    task_type: str = typer.Option(None, "--task-type", "-t", help="pairwise | pointwise | classification "
                                  "(default: every task type)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """List every metric with its task types, kind (mean of per-example values, or another
    statistic), one-line definition and source; the headline metrics are marked."""
    from registry.api import metric_catalog

    infos = metric_catalog(task_type)
    if json_out:
        print_json(infos)
        return
    title = f"metrics of {task_type} datasets" if task_type else "metrics"
    table = Table(title=f"{title} (* headline; accuracy_3way on sets whose human labels include ties)",
                  show_lines=True)
    # names never wrap or shrink: the column is as wide as the longest name; the definition wraps,
    # with the kind, task types and source under it
    table.add_column("name", no_wrap=True, min_width=max((len(m.name) for m in infos), default=4) + 1)
    table.add_column("definition", overflow="fold")
    for m in infos:
        facts = f"{m.kind} · {', '.join(m.task_types)} · source: {m.source}"
        table.add_row(m.name + ("*" if m.headline else ""), f"{m.definition}\n[dim]{facts}[/]")
    console.print(table)
