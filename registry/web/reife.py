"""The ReIFE analyses (``analyze ranks``, ``analyze protocols``) as the HTML report's section and the web
app's ``/analysis`` page show them: one context for the shared template ``_reife.html`` — the results
of the Python API (an analysis the registry cannot answer yet carries the reason instead) and a
heatmap of Kendall's τ between the datasets' rankings (:func:`registry.web.charts.matrix_heatmap`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from registry.errors import RegistryError
from registry.web import charts

if TYPE_CHECKING:
    from registry.api import Registry

N_BOOT = 200
"""Resamples of the examples behind the page's and the report's CIs (the command line defaults to 1000)."""
MAX_CELLS = 5000
"""Latest runs (evaluator × dataset cells) above which the report and the page skip the analyses (each
reads every run's per-example values) and point to the command line instead."""


def reife_context(reg: Registry, *, datasets: Sequence[str] | None = None, evaluators: str | None = None,
                  base: str | None = None, n_boot: int = N_BOOT, chart_id: str = "chart-reife-tau") -> dict[str, Any]:
    """``{"ranks", "ranks_error", "protocols", "protocols_error", "figure"}`` for ``_reife.html``."""
    out: dict[str, Any] = {"ranks": None, "ranks_error": None, "protocols": None, "protocols_error": None,
                           "figure": None, "n_boot": n_boot}
    cells = len(reg.headline_matrix().cells)
    if cells > MAX_CELLS and not datasets and not evaluators:
        why = (f"{cells} evaluator × dataset runs are more than the page computes ({MAX_CELLS}); choose datasets or "
               "evaluators, or run `autorater analyze ranks` / `autorater analyze protocols`")
        out["ranks_error"] = out["protocols_error"] = why
        return out
    try:
        ranks = reg.analyze_ranks(datasets=list(datasets) if datasets else None, evaluators=evaluators, n_boot=n_boot)
    except RegistryError as exc:
        out["ranks_error"] = str(exc)
    else:
        out["ranks"] = ranks
        view = ranks.view("datasets")
        if view.pairs:
            rows = list(ranks.datasets)
            out["figure"] = charts.render(charts.matrix_heatmap(
                rows, rows, view.matrix(rows), metric="Kendall τ-b",
                title=f"Kendall τ-b between the evaluators' rankings ({ranks.metric})"), chart_id)
    try:
        out["protocols"] = reg.analyze_protocols(datasets=list(datasets) if datasets else None, evaluators=evaluators,
                                                 base=base, n_boot=n_boot)
    except RegistryError as exc:
        out["protocols_error"] = str(exc)
    return out


__all__ = ["N_BOOT", "reife_context"]
