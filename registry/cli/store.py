"""``autorater store``: the DVC-tracked artifact store and its remote."""

from __future__ import annotations

from registry.cli.common import JSON_OPTION, console, open_registry, print_json
from registry.cli.common import new_app

app = new_app("Artifact store (DVC): push to and pull from the remote.")


@app.command()
def push(json_out: bool = JSON_OPTION) -> None:
    """Upload every stored artifact to the DVC remote (AUTORATER_DVC_REMOTE)."""
    reg = open_registry()
    n = reg.artifacts.push()
    print_json({"pushed": n, "remote": reg.settings.dvc_remote}) if json_out else console.print(
        f"pushed {n} file(s) to {reg.settings.dvc_remote}")


@app.command()
def pull(json_out: bool = JSON_OPTION) -> None:
    """Download every tracked artifact from the DVC remote."""
    reg = open_registry()
    n = reg.artifacts.pull()
    print_json({"pulled": n, "remote": reg.settings.dvc_remote}) if json_out else console.print(
        f"pulled {n} file(s) from {reg.settings.dvc_remote}")
