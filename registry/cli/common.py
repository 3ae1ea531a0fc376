"""What every CLI command shares: the error boundary, JSON output, opening the registry."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from registry.domain.serialization import to_jsonable
from registry.errors import RegistryError

if TYPE_CHECKING:
    from registry.api import Registry

console = Console()
err_console = Console(stderr=True)


class ErrorBoundaryGroup(TyperGroup):
    """Turns :class:`RegistryError` into one clear line on stderr and the error's exit code —
    never a traceback."""

    def invoke(self, ctx):  # noqa: D102
        try:
            return super().invoke(ctx)
        except RegistryError as exc:
            # the message names files and quotes values: printed as text (a path like "a[/b]" is no markup)
            err_console.print(f"[bold red]error[/] [dim]({exc.code})[/]: {escape(str(exc))}", highlight=False,
                              soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None


def new_app(help_text: str) -> typer.Typer:
    return typer.Typer(cls=ErrorBoundaryGroup, help=help_text, no_args_is_help=True,
                       pretty_exceptions_enable=False, add_completion=False)


def print_json(data: Any) -> None:
    """Machine-readable output for ``--json``: the data of :func:`~registry.domain.serialization.to_jsonable`,
    the same as the ``to_dict()`` of the Python API's result objects."""
    sys.stdout.write(json.dumps(to_jsonable(data), indent=2, ensure_ascii=False) + "\n")


def open_registry() -> Registry:
    """The registry the settings (``AUTORATER_*``) name, closed when the command ends."""
    import click

    from registry import api

    reg = api.open()
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(reg.close)
    return reg


JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON.")


def name_column(table: Table, header: str, **options: Any) -> None:
    """Add a column of names or references (dataset@version, evaluator, checkpoint, file) to ``table``.

    On a narrow terminal a long value folds onto the next line instead of being cut to an
    ellipsis, so two rows whose names share a long prefix never read the same; the column shares
    the width left by the :func:`code_column` columns with the table's other wrapping columns
    (the widest give way first)."""
    table.add_column(header, overflow="fold", **options)


def code_column(table: Table, header: str, values: Iterable[object], **options: Any) -> None:
    """Add a column of short codes (a hash prefix, a status, a count, yes/no) to ``table``: it
    keeps the width of its longest value while wrapping columns give way (``values`` are its
    cells); only when even that cannot fit does it fold, never cut."""
    width = max(len(line) for v in (header, *values) if v is not None for line in str(v).splitlines() or [""])
    table.add_column(header, overflow="fold", width=width, **options)


def number(value: float | None, digits: int = 3) -> str:
    """A number of a table with ``digits`` decimals; ``-`` for none or NaN."""
    return "-" if value is None or value != value else f"{value:.{digits}f}"


def cell(value: object) -> str:
    """``value`` as table text shown literally (a name like ``judge[v2]`` is not rich markup)."""
    return "-" if value is None else escape(str(value))
