"""``autorater sources``: the source catalog."""

from __future__ import annotations

from rich.table import Table

from registry.cli.common import JSON_OPTION, cell, code_column, console, name_column, new_app, print_json

app = new_app("Public sources of human judgments and their adapters.")


@app.command("list")
def list_sources(json_out: bool = JSON_OPTION) -> None:
    """List every source adapter with its public origin, licence, citation and datasets."""
    from registry.api import source_catalog

    rows = source_catalog()
    if json_out:
        print_json(rows)
        return
    table = Table(title="sources")
    name_column(table, "name")
    table.add_column("task types", overflow="fold")
    code_column(table, "datasets", [len(r.datasets) for r in rows])
    for col in ("licence", "origin"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(cell(r.name), ", ".join(r.task_types), str(len(r.datasets)), cell(r.license), cell(r.origin))
    console.print(table)
