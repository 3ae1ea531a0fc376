"""``autorater dataset``: register, list, show, diff and export dataset versions."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from registry.cli.common import JSON_OPTION, cell, console, err_console, name_column, new_app, open_registry, print_json
from registry.domain.options import parse_pairs, score_scale
from registry.errors import InvalidInput

app = new_app("Standardized human-judgment datasets and their versions.")


def _pairs(items: list[str] | None, option: str) -> dict[str, str]:
    return parse_pairs(items or [], option=option)


@app.command("register")
def register(
    name: str = typer.Argument(..., help="Dataset name, e.g. llmbar-natural or my-chat-prefs."),
    source: str = typer.Option(..., "--source", "-s", help="Source adapter (see `autorater sources list`)."),
    path: Path = typer.Option(..., "--path", "-p", help="Input file or folder."),
    task_type: str = typer.Option(None, "--task-type", "-t", help="pairwise | pointwise | classification."),
    mapping: list[str] = typer.Option(
        None, "--map", help="FIELD=PATH for the generic adapter (repeatable): a column name (a literal name wins, "
        "dots and all), a dotted path with list indices into JSON records (judgments.0.decision), @row (the "
        "record's 0-based position in the file) or @key (its key in a JSON object of lists, e.g. a category)."),
    id_from_row: bool = typer.Option(
        False, "--id-from-row", help="Generic adapter: each row's 0-based position in the file (\"0\", \"1\", ...; "
        "the CSV header and blank JSON lines not counted) is its example id, so that judge outputs that line up "
        "by row order import with `eval import --map example_id=@row`. Not with --map example_id=..."),
    label_map: list[str] = typer.Option(None, "--label-map", help="SOURCE_VALUE=LABEL, e.g. 'A>B=A' (repeatable)."),
    labels: str = typer.Option(None, "--labels", help="Comma-separated label set (classification)."),
    scale: str = typer.Option(None, "--scale", help="MIN,MAX score scale (pointwise)."),
    option: list[str] = typer.Option(None, "--option", "-o", help="KEY=VALUE adapter option (repeatable)."),
    description: str = typer.Option(None, "--description", help="What the dataset is."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Register the content of PATH as the next version of dataset NAME (idempotent)."""
    opts: dict = dict(_pairs(option, "--option"))
    if mapping:
        opts["mapping"] = _pairs(mapping, "--map")
    if id_from_row:
        if source != "generic":
            raise InvalidInput("--id-from-row applies to --source generic", field="--id-from-row")
        opts["id_from_row"] = True
    if label_map:
        opts["label_map"] = _pairs(label_map, "--label-map")
    label_set = tuple(x.strip() for x in labels.split(",") if x.strip()) if labels else None
    if label_set:
        opts["labels"] = label_set
    if scale is not None:
        opts["scale"] = score_scale(scale, option="--scale")
    reg = open_registry()
    with console.status(f"registering {escape(name)} from {escape(str(path))}"):
        r = reg.register_dataset(name, source=source, path=path, options=opts, task_type=task_type,
                                 labels=label_set, description=description)
    if json_out:
        print_json(r)
    elif r.created:
        console.print(f"registered [bold]{r.version.ref}[/] ({r.version.row_count} rows, "
                      f"sha256 {r.version.content_hash[:12]})" + (f", diff from parent: {r.diff}" if r.diff else ""))
    else:
        console.print(f"unchanged: same content as [bold]{r.version.ref}[/]")


@app.command("register-all")
def register_all(
    data: Path = typer.Option(None, "--data", help="Data root (default AUTORATER_DATA or ../shared/data)."),
    only: list[str] = typer.Option(None, "--only", help="Only these datasets or sources (repeatable)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Register every dataset of the source catalog found under the data root."""
    from registry.api import catalog_datasets

    reg = open_registry()
    root = data or reg.settings.data_root
    if root is None:
        raise InvalidInput("no data root: pass --data DIR or set AUTORATER_DATA")
    entries = catalog_datasets(only)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=json_out, disable=json_out) as progress:
        task = progress.add_task("registering", total=len(entries))

        def step(name: str, status: str) -> None:
            progress.update(task, advance=1, description=f"{status:>10} {name}")

        result = reg.register_all(root, on_progress=step, only=only)
    if json_out:
        print_json(result)
    else:
        console.print(f"{len(result.registered)} new version(s), {len(result.unchanged)} unchanged, "
                      f"{len(result.skipped)} skipped, {len(result.failed)} failed")
        for d, why in result.failed:
            err_console.print(f"[red]failed[/] {d}: {escape(str(why))}", highlight=False)
    if result.failed:
        raise typer.Exit(2)


@app.command("list")
def list_datasets(
    task_type: str = typer.Option(None, "--task-type", "-t", help="Only this task type."),
    json_out: bool = JSON_OPTION,
) -> None:
    """List datasets with their latest version and the adapter and file it was read from."""
    rows = open_registry().datasets(task_type)
    if json_out:
        print_json(rows)
        return
    table = Table(title=f"datasets ({len(rows)})")
    name_column(table, "name")
    table.add_column("task type")
    name_column(table, "source")
    for col in ("version", "rows", "sha256"):
        table.add_column(col)
    for r in rows:
        table.add_row(cell(r.name), r.task_type, cell(_source_text(r.source, r.source_file)), cell(r.latest_version),
                      cell(r.rows), (r.content_hash or "")[:12])
    console.print(table)


def _source_text(source: str | None, source_file: str | None) -> str | None:
    """The adapter, and for a user's own file (``generic``) the file's name, e.g. ``generic: prefs.csv``."""
    if source == "generic" and source_file:
        return f"{source}: {Path(source_file).name}"
    return source


@app.command("show")
def show(ref: str = typer.Argument(..., help="NAME or NAME@VERSION."), json_out: bool = JSON_OPTION) -> None:
    """Show a version: hash, parent, source adapter and file, statistics, validation report, provenance."""
    details = open_registry().dataset(ref)
    v, source, source_file = details.version, details.source, details.source_file
    if json_out:
        print_json(details)
        return
    console.print(f"[bold]{escape(v.ref)}[/] {v.task_type}, {v.row_count} rows, spec {v.spec}")
    console.print(f"sha256 {v.content_hash}\nstored {v.storage_uri}\ncreated {v.created_at:%Y-%m-%d %H:%M:%S}")
    console.print(f"source {source or '-'}" + (f", file {source_file}" if source_file else ""), highlight=False,
                  markup=False)
    if v.parent_version:
        console.print(f"parent version {v.parent_version}; diff {v.diff_from_parent}")
    lineage = v.provenance.get("derived_from") if isinstance(v.provenance, dict) else None
    if isinstance(lineage, dict):
        console.print(_lineage_text(lineage), highlight=False, markup=False)
    if v.labels:
        console.print(f"labels {list(v.labels)}")
    console.print("statistics:", v.statistics)
    failed = v.validation.get("failed", 0)
    console.print(f"validation: {len(v.validation.get('expectations', []))} expectations, {failed} failed "
                  f"({v.validation.get('engine', '')})")


@app.command("diff")
def diff(
    ref_a: str = typer.Argument(..., help="NAME@V1"),
    ref_b: str = typer.Argument(..., help="NAME@V2"),
    limit: int = typer.Option(20, help="Ids shown per kind (all with --json)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Row-level diff between two versions: added, removed and changed example ids."""
    result = open_registry().diff(ref_a, ref_b)
    if json_out:
        print_json(result)
        return
    d = result.rows
    console.print(f"{ref_a} → {ref_b}: {d.summary()}")
    for kind, ids in (("added", d.added), ("removed", d.removed), ("changed", d.changed)):
        for i in ids[:limit]:
            console.print(f"  {kind:>7} {i}", highlight=False)
        if len(ids) > limit:
            console.print(f"  … {len(ids) - limit} more {kind}")


@app.command("export")
def export(
    ref: str = typer.Argument(..., help="NAME or NAME@VERSION."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (.parquet, .jsonl or .csv)."),
    fmt: str = typer.Option(None, "--format", "-f", help="parquet | jsonl | csv (default from --out)."),
) -> None:
    """Write the exact registered rows of a version to a file."""
    path = open_registry().export(ref, out, fmt)
    console.print(f"wrote {path}", markup=False)


def _lineage_text(lineage: dict) -> str:
    """A probe's lineage on one line: parent, transform, parameters, seed."""
    params = ", ".join(f"{k}={v}" for k, v in (lineage.get("params") or {}).items())
    return (f"derived from {lineage.get('parent')} (sha256 {str(lineage.get('parent_content_hash', ''))[:12]}) by "
            f"{lineage.get('transform')}" + (f" ({params})" if params else "") + f", seed {lineage.get('seed')}; "
            f"{lineage.get('rows_changed')} of {lineage.get('rows')} rows changed")


@app.command("derive")
def derive(
    name: str = typer.Argument(..., help="Name of the probe dataset, e.g. llmbar-natural-swap."),
    source_ref: str = typer.Option(..., "--from", help="Parent pairwise version NAME@VERSION (or NAME: latest)."),
    transform: str = typer.Option(..., "--transform", "-t", help="swap | pad-worse | pad-better | truncate-better "
                                  "| format-worse."),
    param: list[str] = typer.Option(None, "--param", "-p", help="KEY=VALUE transform parameter (repeatable): "
                                    "pad-*: ratio (1.5), min_chars (100); truncate-better: keep (0.5); "
                                    "format-worse: bold_words (2)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the transform's random draws."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Derive a perturbation probe of a pairwise version as the next version of dataset NAME, its
    lineage (parent, transform, parameters, seed) recorded; the same derivation again is unchanged."""
    params = _pairs(param, "--param")
    reg = open_registry()
    with console.status(f"deriving {escape(name)} from {escape(source_ref)} by {escape(transform)}"):
        d = reg.derive_dataset(name, source_ref=source_ref, transform=transform, params=params, seed=seed)
    if json_out:
        print_json(d)
    elif d.created:
        console.print(f"registered [bold]{escape(d.version.ref)}[/] ({d.version.row_count} rows, sha256 "
                      f"{d.version.content_hash[:12]}): {escape(_lineage_text(d.lineage))}")
    else:
        console.print(f"unchanged: the same derivation is [bold]{escape(d.version.ref)}[/]")
