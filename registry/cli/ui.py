"""``autorater ui``: the REST API and web app of the registry the settings name."""

from __future__ import annotations

import typer

from registry.cli.common import console


def ui(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (default: this machine only)."),
    port: int = typer.Option(8080, "--port", help="Port to listen on."),
) -> None:
    """Serve the web app and the REST API (/api/v1, docs at /docs) until Ctrl-C. Writes need
    Authorization: Bearer $AUTORATER_API_TOKEN."""
    import uvicorn

    from registry.config import Settings
    from registry.web.app import create_app, tune_gc

    settings = Settings.from_env()
    app = create_app(settings)
    tune_gc()
    console.print(f"web app on http://{host}:{port}/ (API http://{host}:{port}/api/v1, docs /docs); "
                  f"registry {settings.db_url}. Ctrl-C stops.")
    uvicorn.run(app, host=host, port=port, log_level="warning")
