"""``autorater report``: the self-contained HTML report of the registry (leaderboards, matrix, open
regressions; plots included, no network needed) to attach to a pull request or an e-mail."""

from __future__ import annotations

from pathlib import Path

import typer

from registry.cli.common import console, open_registry


def report(
    out: Path = typer.Option(..., "--out", "-o", help="The HTML file to write (outside the registry's store)."),
    datasets: str = typer.Option(None, "--datasets", "-d",
                                 help="Comma-separated NAME or NAME@VERSION (default: the latest version of "
                                      "every dataset with a run)."),
    task_type: str = typer.Option(None, "--task-type", "-t", help="pairwise | pointwise | classification."),
) -> None:
    """Write one self-contained HTML file: a leaderboard per dataset version (table and CI chart), the
    evaluator × dataset matrix of headline metrics and the open regressions."""
    names = [d.strip() for d in datasets.split(",") if d.strip()] if datasets else None
    path = open_registry().report(out, datasets=names, task_type=task_type)
    console.print(f"wrote {path} ({path.stat().st_size:,} bytes): open it in a browser, no network needed",
                  markup=False, highlight=False)
