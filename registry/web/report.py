"""The self-contained HTML report (``autorater report``): the leaderboards of chosen dataset versions
(table + CI error-bar chart), the evaluator × dataset matrix of headline metrics and the open
regressions, in ONE file that needs no network to be read — Plotly and the drawing script are inlined
(:func:`registry.web.charts.inline_scripts`), the web app's stylesheet too.

Everything comes from the Python API (:class:`registry.api.Registry`); the page is rendered by the web
app's Jinja2 environment (autoescape on, the same ``num``/``when`` filters), so every name and text is
escaped, and figures are embedded with :func:`registry.web.charts.render` (their JSON through
:func:`registry.web.charts.safe_json`). :meth:`registry.api.Registry.report` writes it to a file.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from registry.domain.serialization import to_jsonable
from registry.domain.types import TaskType
from registry.errors import InvalidInput, NotFound
from registry.web import charts

if TYPE_CHECKING:
    from collections.abc import Sequence

    from registry.api import Registry

TEMPLATE = "report.html"
TASK_TYPES = typing.get_args(TaskType)
_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^/\s]*@")


@dataclass(frozen=True)
class Board:
    """One leaderboard of the report: the version, its ranking and its chart (``None`` without runs)."""

    ref: str
    task_type: str
    ranking: Any
    figure: Markup | None


def redact(url: str) -> str:
    """A database URL with its password (``scheme://user:PASSWORD@host``) replaced by ``***``."""
    return _PASSWORD.sub(r"\1***@", url)


def _chosen(reg: Registry, datasets: Sequence[str] | None, task_type: str | None, matrix) -> list[tuple[str, str]]:
    """``(name@version, task type)`` of the leaderboards: the named datasets (``NAME`` is its latest
    version), else the latest version of every dataset with a run (of ``task_type``)."""
    if not datasets:
        with_runs = {c.dataset for c in matrix.cells}
        types = {d.name: d.task_type for d in reg.datasets(task_type)}
        return [(ref, types.get(ref.split("@")[0], task_type or "")) for ref in matrix.datasets if ref in with_runs]
    out: list[tuple[str, str]] = []
    for name in datasets:
        version = reg.dataset(name.strip()).version
        if task_type and version.task_type != task_type:
            raise InvalidInput(f"dataset {version.ref} is {version.task_type}, not {task_type}", field="datasets",
                               hint="leave out --task-type or name datasets of that task type")
        if version.ref not in (ref for ref, _ in out):
            out.append((version.ref, version.task_type))
    return out


def _board(reg: Registry, ref: str, task_type: str, index: int) -> Board:
    try:
        ranking = reg.leaderboard(ref)
    except NotFound:  # a named version without any run
        ranking = None
    figure = None
    if ranking is not None and ranking.standings:
        rows = [to_jsonable(s) for s in ranking.standings]
        figure = charts.render(charts.leaderboard_ci(rows, metric=ranking.metric, title=f"{ranking.metric} on {ref} with 95% CI"),
                        f"chart-leaderboard-{index}")
    return Board(ref=ref, task_type=task_type, ranking=ranking, figure=figure)


def _matrix(matrix, refs: Sequence[str]) -> dict[str, Any]:
    """The headline matrix restricted to the report's dataset versions (those that are the latest
    of their dataset: the matrix holds the latest versions only)."""
    columns = [d for d in matrix.datasets if d in set(refs)]
    cells = {(c.evaluator, c.dataset): c for c in matrix.cells if c.dataset in columns}
    evaluators = [e for e in matrix.evaluators if any((e, d) in cells for d in columns)]
    values = [[cells[(e, d)].value if (e, d) in cells else None for d in columns] for e in evaluators]
    headlines = {c.dataset: c.metric for c in cells.values()}
    metric = ", ".join(sorted(set(headlines.values()))) or "headline metric"
    figure = charts.render(charts.matrix_heatmap(evaluators, columns, values, metric=metric), "chart-matrix") if evaluators else None
    return {"datasets": columns, "evaluators": evaluators, "cells": cells, "headlines": headlines, "figure": figure,
            "not_latest": [r for r in refs if r not in columns]}


def _stylesheet() -> Markup:
    """The web app's stylesheet, inlined (our own file: checked to hold no ``</style``)."""
    css = (charts.STATIC / "app.css").read_text(encoding="utf-8")
    if "</style" in css.lower():
        raise ValueError("app.css holds '</style' and cannot be inlined")
    return Markup(css)  # noqa: S704 - the package's own stylesheet, not user content


def _reife(reg: Registry, refs: Sequence[str] | None) -> dict[str, Any]:
    """The ReIFE analyses section (:mod:`registry.web.reife`) over the report's datasets (all: the defaults)."""
    from registry.web.reife import reife_context

    return reife_context(reg, datasets=refs)


def build_report(reg: Registry, datasets: Sequence[str] | None = None, task_type: str | None = None, *,
                 now: datetime | None = None) -> str:
    """The report as one HTML document (a ``str``): header (registry, date, counts), a leaderboard
    per dataset version (``datasets``: ``NAME`` or ``NAME@VERSION``; default the latest version of every
    dataset with a run, of ``task_type`` when given), the evaluator × dataset matrix of headline
    metrics, the ReIFE analyses (rank stability, protocols) and the open regressions. An unknown dataset is :class:`NotFound`; an unknown task type,
    or a named dataset of another task type, :class:`InvalidInput`."""
    from registry import __version__
    from registry.web.pages import templates  # the web app's environment: autoescape, num/when filters

    if task_type is not None and task_type not in TASK_TYPES:
        raise InvalidInput(f"unknown task type {task_type!r}; one of {list(TASK_TYPES)}", field="task_type")
    matrix = reg.headline_matrix(task_type=task_type)
    chosen = _chosen(reg, [d for d in datasets or () if d.strip()], task_type, matrix)
    boards = [_board(reg, ref, tt, i) for i, (ref, tt) in enumerate(chosen, 1)]
    info = reg.info()
    evaluators = reg.evaluators()
    context = {
        "generated": now or datetime.now(timezone.utc), "version": __version__,  # noqa: UP017
        "db_url": redact(info.db_url), "store": info.store, "counts": info.counts,
        "n_evaluators": len(evaluators), "kinds": {e.name: e.kind for e in evaluators},
        "task_type": task_type, "named": bool(datasets), "boards": boards,
        "matrix": _matrix(matrix, [b.ref for b in boards]), "regressions": reg.regressions(status="open"),
        "css": _stylesheet(), "scripts": charts.inline_scripts(),
        "reife": _reife(reg, [b.ref for b in boards] if datasets else None)}
    return templates.env.get_template(TEMPLATE).render(context)


__all__ = ["Board", "build_report", "redact"]
