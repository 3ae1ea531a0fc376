"""What every CLI command shares: the error boundary, JSON output, opening the registry."""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from registry.errors import RegistryError

console = Console()
err_console = Console(stderr=True)


class ErrorBoundaryGroup(TyperGroup):
    """Turns :class:`RegistryError` into one clear line on stderr and the error's exit code —
    never a traceback."""

    def invoke(self, ctx):  # noqa: D102
        try:
            return super().invoke(ctx)
        except RegistryError as exc:
            err_console.print(f"[bold red]error[/] [dim]({exc.code})[/]: {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None


def new_app(help_text: str) -> typer.Typer:
    return typer.Typer(cls=ErrorBoundaryGroup, help=help_text, no_args_is_help=True,
                       pretty_exceptions_enable=False, add_completion=False)


def _default(o: Any) -> Any:
    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)
    if isinstance(o, datetime):
        return o.isoformat()
    if isinstance(o, (Path, set)):
        return str(o) if isinstance(o, Path) else sorted(o)
    if isinstance(o, tuple):
        return list(o)
    return str(o)


def print_json(data: Any) -> None:
    """Machine-readable output for ``--json``."""
    sys.stdout.write(json.dumps(data, default=_default, indent=2, ensure_ascii=False) + "\n")


def open_registry():
    from registry.services.app import Registry

    return Registry.open()


JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON.")
