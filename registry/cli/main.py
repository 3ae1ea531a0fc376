"""``autorater``: the command line of the Autorater Registry."""

from __future__ import annotations

import typer

from registry import __version__
from registry.cli import analyze, backends, datasets, evaluation, evaluators, regressions, report, serve, sources, store, training, ui
from registry.cli import metrics as metrics_cli
from registry.cli.common import JSON_OPTION, console, new_app, print_json

app = new_app("Autorater Registry: versioned human-judgment datasets and autorater checkpoints "
              "with continuous meta-evaluation.")
app.add_typer(sources.app, name="sources")
app.add_typer(datasets.app, name="dataset")
app.add_typer(store.app, name="store")
app.add_typer(evaluators.checkpoint_app, name="checkpoint")
app.add_typer(evaluators.protocol_app, name="protocol")
app.add_typer(evaluators.evaluator_app, name="evaluator")
app.add_typer(evaluation.eval_app, name="eval")
app.add_typer(regressions.app, name="regressions")
app.add_typer(backends.app, name="backend")
app.add_typer(training.app, name="train")
app.add_typer(metrics_cli.app, name="metrics")
app.add_typer(analyze.app, name="analyze")
app.command("best")(evaluation.best)
app.command("leaderboard")(evaluation.leaderboard)
app.command("serve")(serve.serve)
app.command("ui")(ui.ui)
app.command("report")(report.report)
db_app = new_app("Database schema (Alembic migrations).")
app.add_typer(db_app, name="db")


@app.command()
def init(json_out: bool = JSON_OPTION) -> None:
    """Create or upgrade the registry database and the DVC-tracked artifact store."""
    from registry import api

    with api.init() as reg:
        info = reg.info()
    if json_out:
        print_json(info)
    else:
        console.print(f"registry ready: database {info.db_url}, store {info.store}")


@app.command()
def version() -> None:
    """Print the package version."""
    console.print(__version__)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from registry.api import upgrade_schema

    console.print(f"database at revision {upgrade_schema(revision).current}")


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="Target revision, or 'base'.")) -> None:
    """Revert migrations down to REVISION."""
    from registry.api import downgrade_schema

    console.print(f"database at revision {downgrade_schema(revision).current}")


@db_app.command("current")
def db_current(json_out: bool = JSON_OPTION) -> None:
    """Show the database's revision and the code's head revision."""
    from registry.api import schema_revision

    info = schema_revision()
    if json_out:
        print_json(info)
    else:
        console.print(f"current {info.current}  head {info.head}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
