"""Figures of the web app and the HTML report: plain functions that return Plotly figure dicts, and
:func:`render` that embeds one in a page.

Nothing here imports FastAPI: the self-contained HTML report builds the same figures and embeds them
with the same :func:`render`, with :func:`plotly_js` and :data:`BOOT_JS` inlined instead of served.

A figure is embedded as a ``<div>`` and a ``<script type="application/json">`` holding its JSON
(``<``, ``>``, ``&``, U+2028 and U+2029 escaped, so a text such as ``</script>`` in a name or label
cannot end the script element); :data:`BOOT_JS` (``static/charts.js``) draws every embedded figure
with Plotly, so pages need no inline script (their Content-Security-Policy allows none).
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

Figure = dict[str, Any]
"""A Plotly figure as a plain dict: ``{"data": [...], "layout": {...}}``."""

STATIC = Path(__file__).parent / "static"
BOOT_JS = (STATIC / "charts.js").read_text(encoding="utf-8")
"""The script that draws every figure :func:`render` embedded (served as ``/static/charts.js``)."""

BLUE, GREY, GREEN, RED = "#2563eb", "#9aa4b2", "#15803d", "#b91c1c"
FONT = {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12}

_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_JSON_UNSAFE = re.compile("[<>&\u2028\u2029]")


def plotly_js_path() -> Path:
    """The ``plotly.min.js`` shipped in the installed ``plotly`` package."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@lru_cache(maxsize=1)
def plotly_js() -> bytes:
    """The bytes of :func:`plotly_js_path` (read once)."""
    return plotly_js_path().read_bytes()


def inline_scripts() -> Markup:
    """Plotly and :data:`BOOT_JS` as inline ``<script>`` elements, for a self-contained HTML file (the
    report) that draws the figures :func:`render` embedded with no network; put it after them.
    ``</script`` and ``<!--`` never occur in either script (checked: a :class:`ValueError` if they do)."""
    parts = []
    for js in (plotly_js().decode("utf-8"), BOOT_JS):
        low = js.lower()
        if "</script" in low or "<!--" in low:
            raise ValueError("a script holds '</script' or '<!--' and cannot be inlined as is")
        parts.append(f"<script>{js}</script>")
    return Markup("\n".join(parts))


def safe_json(obj: Any) -> str:
    """JSON of ``obj`` that is safe inside a ``<script>`` element (and in HTML generally): ``<``, ``>``,
    ``&``, U+2028 and U+2029 written as ``\\uXXXX`` escapes; NaN and infinities become ``null``."""
    text = json.dumps(_finite(obj), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return _JSON_UNSAFE.sub(lambda m: _JSON_ESCAPES[m.group()], text)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return _finite(obj.tolist())
    return obj


def render(figure: Figure, div_id: str, *, height: int | None = None, css_class: str = "chart") -> Markup:
    """A ``<div>`` for ``figure`` and the ``<script type="application/json">`` holding it, which
    :data:`BOOT_JS` draws; ``div_id`` must be unique in the page. The ``<div>`` gets ``height`` (default:
    the figure's own layout height): Plotly's responsive mode fills its div, so a div without a height
    draws the figure over what follows once the window is resized or printed."""
    height = height or (figure.get("layout") or {}).get("height")
    style = f' style="height:{int(height)}px"' if height else ""
    return Markup(f'<div class="{escape(css_class)}" id="{escape(div_id)}"{style}></div>'
                  f'<script type="application/json" class="plotly-figure" data-target="{escape(div_id)}">'
                  f"{safe_json(figure)}</script>")


def _text(values: Iterable[Any]) -> list[str]:
    """Names and labels as Plotly shows them: Plotly reads a few HTML tags in texts (``<b>``, ``<a>``)
    and decodes entities, so ``<``, ``>`` and ``&`` are written as entities to show them literally."""
    return [html.escape(str(v), quote=False) for v in values]


def _layout(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"font": FONT, "margin": {"l": 50, "r": 20, "t": 30, "b": 40},
                            "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "#fafbfc"}
    base.update(kw)
    return base


def label_distribution(counts: Mapping[str, int], *, title: str = "Human labels") -> Figure:
    """Bar chart of the label counts of a version (``statistics.label_distribution``)."""
    labels = list(counts)
    return {"data": [{"type": "bar", "x": _text(labels), "y": [counts[k] for k in labels], "marker": {"color": BLUE},
                      "text": [str(counts[k]) for k in labels], "textposition": "auto",
                      "hovertemplate": "%{x}: %{y}<extra></extra>"}],
            "layout": _layout(title={"text": title}, xaxis={"type": "category"}, yaxis={"title": {"text": "examples"}},
                              height=280)}


def score_summary(score: Mapping[str, Any], *, scale: Sequence[float] | None = None,
                  title: str = "Human scores") -> Figure:
    """Box of a pointwise version's human scores from its statistics (``statistics.score``: min,
    quartiles, max; the mean as a dashed line)."""
    qs = score.get("quantiles") or {}
    lo, hi, mean = score.get("min"), score.get("max"), score.get("mean")
    q1, med, q3 = qs.get("0.25", mean), qs.get("0.5", mean), qs.get("0.75", mean)
    trace: dict[str, Any] = {"type": "box", "name": "score", "orientation": "h", "marker": {"color": BLUE},
                             "lowerfence": [lo], "upperfence": [hi], "q1": [q1], "median": [med], "q3": [q3],
                             "y": ["score"], "showlegend": False}
    if mean is not None:
        trace["mean"] = [mean]
    xaxis: dict[str, Any] = {"title": {"text": "score"}}
    if scale and len(scale) == 2 and None not in scale:
        xaxis["range"] = [scale[0], scale[1]]
    return {"data": [trace], "layout": _layout(title={"text": title}, xaxis=xaxis, height=200)}


def text_lengths(quantiles: Mapping[str, Mapping[str, float]], *, title: str = "Text length (characters)") -> Figure:
    """One horizontal box per text field from the stored length quantiles (0, .25, .5, .75, .95, 1):
    whiskers at the minimum and maximum, the 95th percentile as a separate marker; log axis."""
    fields = list(quantiles)
    data: list[dict[str, Any]] = []

    def q(f: str, p: str) -> float | None:
        return quantiles[f].get(p, quantiles[f].get(p.rstrip("0").rstrip(".") if "." in p else p))

    data.append({"type": "box", "orientation": "h", "name": "length", "y": fields, "marker": {"color": BLUE},
                 "lowerfence": [max(q(f, "0.0") or 0, 1) for f in fields], "q1": [max(q(f, "0.25") or 0, 1) for f in fields],
                 "median": [max(q(f, "0.5") or 0, 1) for f in fields], "q3": [max(q(f, "0.75") or 0, 1) for f in fields],
                 "upperfence": [max(q(f, "1.0") or 0, 1) for f in fields], "showlegend": False,
                 "hoverinfo": "x+y"})
    data.append({"type": "scatter", "mode": "markers", "name": "95th percentile", "y": fields,
                 "x": [max(q(f, "0.95") or 0, 1) for f in fields],
                 "marker": {"symbol": "diamond", "color": RED, "size": 8},
                 "hovertemplate": "%{y}: 95%% ≤ %{x}<extra></extra>".replace("%%", "%")})
    return {"data": data, "layout": _layout(title={"text": title}, xaxis={"type": "log", "title": {"text": "characters"}},
                                            yaxis={"automargin": True}, height=120 + 45 * len(fields),
                                            legend={"orientation": "h", "y": -0.35})}


def leaderboard_ci(standings: Sequence[Mapping[str, Any]], *, metric: str, title: str | None = None,
                   mark_best: bool = True) -> Figure:
    """One marker per evaluator at its value with its 95% CI as error bars, best on top; the best and
    the evaluators tied with it in green (unless ``mark_best`` is False, e.g. for slices of one run).
    ``standings``: ``Standing.to_dict()``-like mappings (``evaluator``, ``value``, ``ci_low``, ``ci_high``)."""
    names = _text(s["evaluator"] for s in standings)
    values = [s.get("value") for s in standings]

    def err(side: str) -> list[float]:
        out = []
        for s, v in zip(standings, values):
            bound = s.get(side)
            out.append(abs((bound if bound is not None else v or 0) - (v or 0)) if v is not None else 0)
        return out

    colors = [GREEN if mark_best and (i == 0 or s.get("tied_with_best")) else BLUE for i, s in enumerate(standings)]
    trace = {"type": "scatter", "mode": "markers", "x": values, "y": names, "name": metric,
             "marker": {"color": colors, "size": 10},
             "error_x": {"type": "data", "symmetric": False, "array": err("ci_high"), "arrayminus": err("ci_low"),
                         "color": GREY, "thickness": 2, "width": 4},
             "customdata": [[s.get("ci_low"), s.get("ci_high")] for s in standings],
             "hovertemplate": "%{y}<br>" + metric + " %{x:.3f}<br>95% CI [%{customdata[0]:.3f}, %{customdata[1]:.3f}]"
                              "<extra></extra>"}
    return {"data": [trace],
            "layout": _layout(title={"text": title or f"{metric} with 95% CI"}, showlegend=False,
                              xaxis={"title": {"text": metric}, "zeroline": False},
                              yaxis={"type": "category", "autorange": "reversed", "automargin": True},
                              height=max(220, 90 + 34 * len(names)), margin={"l": 20, "r": 20, "t": 40, "b": 45})}


def confusion_matrix(labels: Sequence[str], predicted: Sequence[str], counts: Sequence[Sequence[int]], *,
                     title: str = "Confusion matrix") -> Figure:
    """Heatmap of ``counts[i][j]``: examples with human label ``labels[i]`` judged ``predicted[j]``."""
    return {"data": [{"type": "heatmap", "z": [list(r) for r in counts], "x": _text(predicted), "y": _text(labels),
                      "colorscale": "Blues", "reversescale": True, "showscale": False, "texttemplate": "%{z}",
                      "hovertemplate": "human %{y}, judged %{x}: %{z}<extra></extra>"}],
            "layout": _layout(title={"text": title},
                              xaxis={"title": {"text": "evaluator verdict"}, "type": "category", "automargin": True},
                              yaxis={"title": {"text": "human label"}, "type": "category", "autorange": "reversed",
                                     "automargin": True},
                              height=140 + 60 * max(len(labels), 1))}


def matrix_heatmap(evaluators: Sequence[str], datasets: Sequence[str], values: Sequence[Sequence[float | None]],
                   links: Sequence[Sequence[str | None]] | None = None, *, metric: str = "headline metric",
                   title: str = "Evaluators × datasets") -> Figure:
    """Heatmap of a headline metric, evaluators as rows and dataset versions as columns; ``links``
    (same shape, e.g. run page URLs) are carried as ``customdata``: :data:`BOOT_JS` opens a cell's
    link when it is clicked."""
    text = [["" if v is None else f"{v:.3f}" for v in row] for row in values]
    trace: dict[str, Any] = {"type": "heatmap", "z": [list(r) for r in values], "x": _text(datasets),
                             "y": _text(evaluators), "text": text, "texttemplate": "%{text}",
                             "colorscale": [[0, "#d73027"], [0.5, "#fee08b"], [1, "#1a9850"]], "colorbar": {"title": {"text": metric}},
                             "hovertemplate": "%{y} on %{x}: %{text}<extra></extra>", "xgap": 2, "ygap": 2}
    if links is not None:
        trace["customdata"] = [list(r) for r in links]
    return {"data": [trace],
            # the title above the column labels (which are on top, often tilted): both push the margin
            "layout": _layout(title={"text": title, "automargin": True, "yref": "container", "y": 1, "yanchor": "top", "pad": {"t": 8}},
                              xaxis={"type": "category", "side": "top", "automargin": True},
                              yaxis={"type": "category", "autorange": "reversed", "automargin": True},
                              height=max(260, 120 + 32 * len(evaluators)), margin={"l": 20, "r": 20, "t": 80, "b": 20})}


def score_scatter(human: Sequence[float], judged: Sequence[float], *, title: str = "Evaluator score × human score",
                  max_points: int = 3000) -> Figure:
    """One point per example: the human score against the evaluator's (the first ``max_points``
    examples with both)."""
    pairs = [(h, j) for h, j in zip(human, judged)
             if h is not None and j is not None and math.isfinite(h) and math.isfinite(j)][:max_points]
    return {"data": [{"type": "scatter", "mode": "markers", "x": [p[0] for p in pairs], "y": [p[1] for p in pairs],
                      "marker": {"color": BLUE, "size": 5, "opacity": 0.5},
                      "hovertemplate": "human %{x}<br>evaluator %{y:.3f}<extra></extra>"}],
            "layout": _layout(title={"text": title}, xaxis={"title": {"text": "human score"}},
                              yaxis={"title": {"text": "evaluator score"}}, height=340)}


def calibration(prob_a: Sequence[float], correct_a: Sequence[bool], *, bins: int = 10,
                title: str = "Calibration of prob_a") -> Figure:
    """Reliability diagram: mean ``prob_a`` against the share of examples where A is the human choice,
    in ``bins`` equal-width bins (bins with no example left out)."""
    sums = [0.0] * bins
    hits = [0] * bins
    ns = [0] * bins
    for p, y in zip(prob_a, correct_a):
        if p is None or not math.isfinite(p):
            continue
        b = min(int(p * bins), bins - 1)
        sums[b] += p
        hits[b] += bool(y)
        ns[b] += 1
    xs = [sums[b] / ns[b] for b in range(bins) if ns[b]]
    ys = [hits[b] / ns[b] for b in range(bins) if ns[b]]
    n = [ns[b] for b in range(bins) if ns[b]]
    return {"data": [{"type": "scatter", "mode": "lines", "x": [0, 1], "y": [0, 1], "name": "perfect",
                      "line": {"dash": "dot", "color": GREY}},
                     {"type": "scatter", "mode": "lines+markers", "x": xs, "y": ys, "name": "observed",
                      "text": [f"n={k}" for k in n], "marker": {"color": BLUE, "size": 8}}],
            "layout": _layout(title={"text": title}, xaxis={"title": {"text": "mean prob_a"}, "range": [0, 1]},
                              yaxis={"title": {"text": "share where A is the human choice"}, "range": [0, 1]},
                              height=320)}


def lineage_graph(checkpoint: str, parents: Sequence[str] = (), datasets: Sequence[str] = (),
                  held_out: Sequence[str] = (), *, links: Mapping[str, str] | None = None,
                  title: str = "Lineage") -> Figure:
    """A checkpoint's lineage as a graph: its parent chain on one row (oldest on the left, the
    checkpoint on the right), the dataset versions it was trained on above it and the held-out ones
    below, each joined to it by an edge. ``links`` (node → local URL) are opened on click."""
    chain = list(reversed(list(parents))) + [checkpoint]
    pos: dict[str, tuple[float, float]] = {c: (float(i), 0.0) for i, c in enumerate(chain)}
    last = float(len(chain) - 1)

    def spread(names: Sequence[str], y: float) -> None:
        n = len(names)
        for i, name in enumerate(names):
            x = last if n == 1 else last - (len(chain) - 1) / 2 + (i - (n - 1) / 2) * max(1.0, len(chain) / max(n, 1))
            pos.setdefault(name, (x, y))

    spread(list(datasets), 1.0)
    spread([h for h in held_out if h not in pos], -1.0)
    edge_x: list[float | None] = []
    edge_y: list[float | None] = []
    for a, b in [*zip(chain, chain[1:]), *((d, checkpoint) for d in datasets)]:
        edge_x += [pos[a][0], pos[b][0], None]
        edge_y += [pos[a][1], pos[b][1], None]

    def nodes(names: Sequence[str], name: str, color: str, symbol: str, *, stagger: bool = False) -> dict[str, Any]:
        # a row of many long names: labels alternately above and below, so neighbours do not overlap
        where = [("top center" if i % 2 == 0 else "bottom center") if stagger else "top center" for i in range(len(names))]
        return {"type": "scatter", "mode": "markers+text", "name": name, "x": [pos[n][0] for n in names],
                "y": [pos[n][1] for n in names], "text": _text(names), "textposition": where,
                "marker": {"size": 16, "color": color, "symbol": symbol, "line": {"width": 1, "color": "#fff"}},
                "customdata": [(links or {}).get(n) for n in names], "hovertemplate": "%{text}<extra>" + name + "</extra>"}

    data: list[dict[str, Any]] = [{"type": "scatter", "mode": "lines", "x": edge_x, "y": edge_y, "hoverinfo": "skip",
                                   "line": {"color": GREY, "width": 1.5}, "showlegend": False}]
    data.append(nodes(chain, "checkpoints", BLUE, "circle"))
    if datasets:
        data.append(nodes(list(datasets), "trained on", GREEN, "square", stagger=len(datasets) > 2))
    held = [h for h in held_out if pos.get(h, (0, 0))[1] == -1.0]
    if held:
        data.append(nodes(held, "held out", RED, "diamond", stagger=len(held) > 1))
    axis = {"visible": False, "zeroline": False}
    xs = [x for x, _ in pos.values()]  # every node inside the plot, with room for the labels centred on it
    return {"data": data, "layout": _layout(title={"text": title}, xaxis={**axis, "range": [min(xs) - 1, max(xs) + 1]},
                                            yaxis={**axis, "range": [-1.6, 1.6]}, height=360, showlegend=True,
                                            legend={"orientation": "h", "y": -0.05})}


__all__ = ["BOOT_JS", "Figure", "calibration", "inline_scripts", "confusion_matrix", "label_distribution", "leaderboard_ci", "lineage_graph",
           "matrix_heatmap", "plotly_js", "plotly_js_path", "render", "safe_json", "score_scatter", "score_summary", "text_lengths"]
