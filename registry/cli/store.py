"""``autorater store``: the DVC-tracked artifact store and its remote."""

from __future__ import annotations

import typer
from rich.table import Table

from registry.cli.common import JSON_OPTION, cell, code_column, console, name_column, new_app, open_registry, print_json
from registry.errors import IntegrityError

app = new_app("Artifact store (DVC): push to and pull from the remote, verify, collect garbage.")


@app.command()
def push(json_out: bool = JSON_OPTION) -> None:
    """Upload every stored artifact to the DVC remote (AUTORATER_DVC_REMOTE)."""
    r = open_registry().push()
    print_json(r) if json_out else console.print(f"pushed {r.pushed} file(s) to {r.remote}")


@app.command()
def pull(json_out: bool = JSON_OPTION) -> None:
    """Download every tracked artifact from the DVC remote."""
    r = open_registry().pull()
    print_json(r) if json_out else console.print(f"pulled {r.pulled} file(s) from {r.remote}")


@app.command()
def verify(json_out: bool = JSON_OPTION) -> None:
    """Re-hash every stored dataset version, predictions file and checkpoint folder against the hash
    the database records; lists each one missing, changed or unreadable (exit 8 if any)."""
    r = open_registry().verify_store()
    if json_out:
        print_json(r)
    elif r.ok:
        console.print(f"ok: {r.checked} stored file(s) match their recorded hashes")
    else:
        table = Table(title=f"store problems ({len(r.problems)} of {r.checked} checked)")
        cells = [(p.kind, p.ref, p.problem, p.path, p.detail) for p in r.problems]
        code_column(table, "kind", [c[0] for c in cells])
        name_column(table, "ref")
        code_column(table, "problem", [c[2] for c in cells])
        name_column(table, "path")
        table.add_column("detail", overflow="fold")
        for c in cells:
            table.add_row(*(cell(v) for v in c))
        console.print(table)
        console.print("changed or missing files: `autorater store pull` restores them from the remote")
    if not r.ok:
        raise typer.Exit(IntegrityError.exit_code)


@app.command()
def gc(
    grace: float = typer.Option(3600.0, "--grace", min=0,
                                help="Only remove what is older than this many seconds (a live writer's files "
                                     "are younger)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be removed; remove nothing."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Remove what killed writers left in the store: store/tmp leftovers, files no database row
    references (with their .dvc pointers), unreferenced DVC cache objects, input sidecars of
    versions no longer registered and check markers of files gone or changed; and mark the runs
    still 'running' whose process died failed (abandoned)."""
    r = open_registry().collect_garbage(grace_s=grace, dry_run=dry_run)
    if json_out:
        print_json(r)
        return
    verb = "would remove" if dry_run else "removed"
    for label, items in (("temporary", r.tmp), ("orphan", r.orphans), ("cache object", r.cache_objects),
                         ("stale input sidecar", r.sidecars), ("stale check marker", r.markers)):
        for item in items:
            console.print(f"{verb} {label} {cell(item)}", soft_wrap=True, highlight=False)  # whole paths
    if r.reaped:
        ids = ", ".join(str(i) for i in r.reaped)
        console.print(f"{'would mark' if dry_run else 'marked'} {len(r.reaped)} abandoned run(s) failed "
                      f"(their process died while running): {ids}", highlight=False)
    console.print(f"{verb} {r.removed} item(s) older than {grace:g} s")
