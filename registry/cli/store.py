"""``autorater store``: the DVC-tracked artifact store and its remote."""

from __future__ import annotations

from registry.cli.common import JSON_OPTION, console, new_app, open_registry, print_json

app = new_app("Artifact store (DVC): push to and pull from the remote.")


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
