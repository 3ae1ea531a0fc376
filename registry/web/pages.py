"""Server-rendered pages (Jinja2 templates in ``registry/web/templates``, assets in ``static``).

Every page calls the Python API (:class:`registry.api.Registry`, the app's open registry) directly and
renders its typed results; figures come from :mod:`registry.web.charts` (Plotly, served locally from the
installed ``plotly`` package). Dataset texts are user content: templates autoescape everything and no
user text is ever marked safe; pages carry a Content-Security-Policy that allows no inline script.

Writes from a browser (acknowledging a regression) need the login cookie (:data:`TOKEN_COOKIE`, set
by ``/login`` when the token matches, compared in constant time) and a CSRF token: a random value in
its own HttpOnly SameSite=Strict cookie that the form repeats in a hidden field, compared in constant
time.
"""

from __future__ import annotations

import bisect
import hmac
import json
import math
import re
import secrets
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Undefined

from registry.domain.serialization import to_jsonable
from registry.errors import InvalidInput, NotFound, RegistryError
from registry.web import charts
from registry.web.app import TEMPLATES, TOKEN_COOKIE, get_registry, require_read, token_matches

CSRF_COOKIE = "autorater_csrf"
"""Cookie holding the per-browser CSRF token that forms repeat in their ``csrf`` field."""
PAGE_ROWS = 20
"""Rows per page of the row browser, the diff and the disagreements."""
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
"""Pages load scripts only from this server (Plotly injects its own styles)."""
MATRIX_ROWS = 30
"""Evaluators per page of the matrix."""
RUNS_SHOWN = 50
"""Runs listed on a dataset page (newest first; the leaderboard ranks them all)."""
TEXT_FIELDS = ("instruction", "response_a", "response_b", "response", "reference", "text", "source")

def require_page_read(request: Request) -> None:
    """Reads as :func:`registry.web.app.require_read` checks them; a browser (``Accept: text/html``)
    without the token is sent to the login page instead of a 401 problem."""
    try:
        require_read(request)
    except HTTPException as exc:
        if exc.status_code == 401 and "text/html" in request.headers.get("accept", ""):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise HTTPException(303, "log in first", headers={"Location": f"/login?{urlencode({'next': target})}"}) from exc
        raise


router = APIRouter(include_in_schema=False)
"""Every page: the public ones (login, Plotly's script) and :data:`pages` (reads)."""
pages = APIRouter(dependencies=[Depends(require_page_read)], include_in_schema=False)
templates = Jinja2Templates(directory=str(TEMPLATES))  # autoescape on for .html


# ---------------------------------------------------------------------------- template helpers
def _url(value: Any) -> str:
    """One path segment (or a ``{name:path}`` tail) URL-encoded: ``/``, ``@``, spaces, markup included."""
    return quote(str(value), safe="")


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        if value != 0 and abs(value) < 10 ** -digits:
            return f"{value:.2e}"
        return f"{value:.{digits}f}"
    return str(value)


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC") if value.tzinfo else value.strftime("%Y-%m-%d %H:%M")
    return "–" if value is None else str(value)


def _pretty(value: Any) -> str:
    return json.dumps(to_jsonable(value), indent=2, ensure_ascii=False, default=str)


templates.env.filters.update(url=_url, num=_num, when=_when, pretty=_pretty)
def _qs(**params: Any) -> str:
    """A query string of the given parameters, leaving out empty and undefined ones."""
    return urlencode({k: v for k, v in params.items() if not isinstance(v, Undefined) and v not in (None, "")})


templates.env.globals.update(qs=_qs)


def _logged_in(request: Request) -> bool:
    return token_matches(request, request.cookies.get(TOKEN_COOKIE))


def _csrf_token(request: Request) -> str:
    """The browser's CSRF token (a new one when it has none; :func:`_page` sets the cookie)."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not token:
        token = secrets.token_urlsafe(32)
        request.state.new_csrf = token
    return token


def _csrf_ok(request: Request, given: str | None) -> bool:
    expected = request.cookies.get(CSRF_COOKIE)
    return bool(expected and given) and hmac.compare_digest(str(given).encode(), expected.encode())


def _secure_headers(response: Response, request: Request) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    new = getattr(request.state, "new_csrf", None)
    if new:
        response.set_cookie(CSRF_COOKIE, new, httponly=True, samesite="strict", path="/")
    return response


def _page(request: Request, template: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    ctx = {"logged_in": _logged_in(request), "csrf": _csrf_token(request), "path": request.url.path, **context}
    return _secure_headers(templates.TemplateResponse(request, template, ctx, status_code=status), request)


def _error(request: Request, exc: Exception, status: int | None = None) -> HTMLResponse:
    from registry.web.app import status_of

    code = status or (status_of(exc) if isinstance(exc, RegistryError) else 400)
    return _page(request, "error.html", {"status": code, "message": str(exc)}, status=code)


# ---------------------------------------------------------------------------- public: assets, login
@router.get("/static/vendor/plotly.min.js")
def plotly_js() -> Response:
    """Plotly's bundled ``plotly.min.js`` from the installed ``plotly`` package (cached for a year)."""
    import plotly

    return Response(charts.plotly_js(), media_type="text/javascript",
                    headers={"Cache-Control": "public, max-age=31536000, immutable",
                             "ETag": f'"plotly-{plotly.__version__}"', "X-Content-Type-Options": "nosniff"})


_LOCAL_PATH = re.compile(r"/[^\\\s\x00-\x1f\x7f]*")
"""A path on this server: no backslash, whitespace or control character (browsers drop tabs and
newlines, so ``/\t/host`` would become ``//host``)."""


def _local_next(target: str | None) -> str:
    """Where to go after logging in: a local path only (no ``//host`` or scheme)."""
    if target and _LOCAL_PATH.fullmatch(target) and not target.startswith("//"):
        return target
    return "/"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> HTMLResponse:  # noqa: A002
    return _page(request, "login.html", {"next": _local_next(next), "failed": False,
                                         "configured": request.app.state.web.token is not None})


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, token: str = Form(""), csrf: str = Form(""), next: str = Form("/")) -> Response:  # noqa: A002
    """Set the HttpOnly, SameSite=Strict login cookie when ``token`` is the configured token."""
    if not _csrf_ok(request, csrf):
        return _page(request, "login.html", {"next": _local_next(next), "failed": True, "configured": True,
                                             "message": "the form expired; try again"}, status=403)
    if not token_matches(request, token):
        return _page(request, "login.html", {"next": _local_next(next), "failed": True,
                                             "configured": request.app.state.web.token is not None,
                                             "message": "wrong token"}, status=403)
    response = RedirectResponse(_local_next(next), status_code=303)
    response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict", path="/")
    response.set_cookie(CSRF_COOKIE, secrets.token_urlsafe(32), httponly=True, samesite="strict", path="/")
    return _secure_headers(response, request)


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    if not _csrf_ok(request, csrf):
        return _error(request, InvalidInput("the form expired; reload the page"), 403)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(TOKEN_COOKIE, path="/")
    return _secure_headers(response, request)


# ---------------------------------------------------------------------------- overview, catalog
@pages.get("/", response_class=HTMLResponse)
def overview(request: Request, reg=Depends(get_registry)) -> HTMLResponse:
    info = reg.info()
    datasets = reg.datasets()
    return _page(request, "overview.html", {
        "info": info, "counts": info.counts, "datasets": datasets, "runs": reg.runs(limit=12),
        "open_regressions": reg.regressions(status="open"), "n_evaluators": len(reg.evaluator_kinds())})


@pages.get("/datasets", response_class=HTMLResponse)
def catalog(request: Request, q: str = "", task_type: str = "", source: str = "",
            reg=Depends(get_registry)) -> HTMLResponse:
    everything = reg.datasets()
    try:
        shown = reg.datasets(task_type or None, source=source or None, q=q.strip() or None)
    except RegistryError as exc:
        return _error(request, exc)
    return _page(request, "catalog.html", {
        "datasets": shown, "total": len(everything), "q": q, "task_type": task_type, "source": source,
        "task_types": sorted({d.task_type for d in everything} | {"pairwise", "pointwise", "classification"}),
        "sources": sorted({d.source for d in everything if d.source})})


@pages.get("/datasets/{name:path}", response_class=HTMLResponse)
def dataset_page(request: Request, name: str, version: int | None = None, reg=Depends(get_registry)) -> HTMLResponse:
    try:
        details = reg.dataset(f"{name}@{version}" if version else name)
    except RegistryError as exc:
        return _error(request, exc)
    v = details.version
    stats = v.statistics or {}
    figures = []
    if stats.get("label_distribution"):
        figures.append(charts.render(charts.label_distribution(stats["label_distribution"]), "chart-labels"))
    if stats.get("score"):
        figures.append(charts.render(charts.score_summary(stats["score"], scale=stats.get("scale")), "chart-scores"))
    if stats.get("text_length_chars"):
        figures.append(charts.render(charts.text_lengths(stats["text_length_chars"]), "chart-lengths"))
    versions = reg.versions(name)
    runs = reg.runs(dataset=v.ref, limit=RUNS_SHOWN)
    return _page(request, "dataset.html", {
        "d": details, "v": v, "stats": stats, "figures": figures, "versions": list(reversed(versions)),
        "runs": runs, "validation": v.validation or {}, "agreement": stats.get("inter_annotator")})


@pages.get("/rows/{ref:path}", response_class=HTMLResponse)
def rows_page(request: Request, ref: str, page: int = Query(1, ge=1), label: str = "", category: str = "",
              reg=Depends(get_registry)) -> HTMLResponse:
    try:
        v = reg.dataset(ref).version
        where = {"category": category} if category else None
        got = reg.rows(v.ref, offset=(page - 1) * PAGE_ROWS, limit=PAGE_ROWS, label=label or None, where=where)
        if not got.rows and got.total and page > 1:  # past the end: the last page
            page = math.ceil(got.total / PAGE_ROWS)
            got = reg.rows(v.ref, offset=(page - 1) * PAGE_ROWS, limit=PAGE_ROWS, label=label or None, where=where)
    except RegistryError as exc:
        return _error(request, exc)
    stats = v.statistics or {}
    columns = list(got.rows[0]) if got.rows else []
    texts = [c for c in TEXT_FIELDS if c in columns]
    other = [c for c in columns if c not in texts and c != "example_id"]
    return _page(request, "rows.html", {
        "v": v, "rows": got.rows, "texts": texts, "other": other, "page": page,
        "pages": max(1, math.ceil(got.total / PAGE_ROWS)), "n": got.total, "label": label, "category": category,
        "labels": sorted(stats.get("label_distribution") or {}), "categories": sorted(stats.get("categories") or {})})


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    return json.dumps(to_jsonable(value), ensure_ascii=False, default=str)


@pages.get("/diff", response_class=HTMLResponse)
def diff_page(request: Request, a: str = "", b: str = "", page: int = Query(1, ge=1),
              reg=Depends(get_registry)) -> HTMLResponse:
    if not a or not b:
        return _error(request, InvalidInput("choose two versions: /diff?a=NAME@V1&b=NAME@V2"), 422)
    try:
        diff = reg.diff(a, b, fields=True)
        context = reg.load_table(b)
    except RegistryError as exc:
        return _error(request, exc)
    import pyarrow as pa
    import pyarrow.compute as pc

    changes = list(diff.changes or ())
    pages_n = max(1, math.ceil(len(changes) / PAGE_ROWS))
    page = min(page, pages_n)
    shown = changes[(page - 1) * PAGE_ROWS: page * PAGE_ROWS]
    wanted = pa.array([c.example_id for c in shown], pa.string())
    rows = {r["example_id"]: r for r in context.filter(pc.is_in(context.column("example_id"), wanted)).to_pylist()}
    entries = []
    for c in shown:
        row = rows.get(c.example_id, {})
        entries.append({"id": c.example_id,
                        "changed": [{"name": k, "old": _show(f.get("from")), "new": _show(f.get("to"))}
                                    for k, f in c.fields.items()],
                        "same": [{"name": k, "value": _show(row[k])} for k in row
                                 if k != "example_id" and k not in c.fields and row[k] is not None]})
    name = a.split("@")[0]
    return _page(request, "diff.html", {
        "a": a, "b": b, "diff": diff, "summary": diff.rows.summary(), "entries": entries, "page": page,
        "pages": pages_n, "name": name, "added": diff.rows.added[:200], "removed": diff.rows.removed[:200]})


# ---------------------------------------------------------------------------- leaderboard, best
def _metric_names(reg, task_type: str) -> list[str]:
    return [m.name for m in reg.metrics(task_type)]


@pages.get("/leaderboard/{ref:path}", response_class=HTMLResponse)
def leaderboard_page(request: Request, ref: str, metric: str = "", kind: str = "", columns: str = "",
                     reg=Depends(get_registry)) -> HTMLResponse:
    more = [c.strip() for c in columns.split(",") if c.strip()]     # optional metric columns (bias diagnostics…)
    try:
        details = reg.dataset(ref)
        board = reg.leaderboard(details.version.ref, metric or None, columns=more)
        everyone = board.standings
        if kind:  # ranked again among that kind: its own best, ties and paired tests
            board = reg.best(dataset=details.version.ref, metric=metric or None, backend=[kind])
    except RegistryError as exc:
        return _error(request, exc)
    kinds = reg.evaluator_kinds()
    standings = list(board.standings)
    rows = [to_jsonable(s) for s in standings]
    figure = charts.render(charts.leaderboard_ci(rows, metric=board.metric), "chart-leaderboard") if rows else None
    return _page(request, "leaderboard.html", {
        "v": details.version, "board": board, "standings": standings, "kinds": kinds, "kind": kind,
        "all_kinds": sorted({kinds.get(s.evaluator, "") for s in everyone} - {""}),
        "metric": board.metric, "metrics": _metric_names(reg, details.version.task_type), "figure": figure,
        "best": board.best, "columns": more})


@pages.get("/best", response_class=HTMLResponse)
def best_page(request: Request, task_type: str = "", dataset: str = "", metric: str = "", coverage: str = "",
              kind: str = "", exclude_imported: bool = False, max_cost: str = "",
              reg=Depends(get_registry)) -> HTMLResponse:
    """Which evaluator is best for a task type (macro average over its datasets) or a dataset, by a
    metric, among the evaluators of a kind, without imported predictions, under a cost cap."""
    datasets = reg.datasets()
    answer, error = None, None
    if task_type or dataset:
        try:
            cap = None
            if max_cost.strip():
                try:
                    cap = float(max_cost)
                except ValueError:
                    raise InvalidInput(f"the cost cap must be a number of dollars, got {max_cost!r}",
                                       field="max_cost") from None
            answer = reg.best(dataset=dataset or None, task_type=None if dataset else task_type,
                              metric=metric or None, coverage=None if dataset else (coverage or None),
                              backend=[kind] if kind else None, exclude_imported=exclude_imported,
                              max_cost_per_1k=cap)
        except RegistryError as exc:
            error = str(exc)
    tt = task_type or next((d.task_type for d in datasets if d.name == dataset.split("@")[0]), "pairwise")
    figure = None
    if answer is not None and answer.standings:
        figure = charts.render(charts.leaderboard_ci([to_jsonable(s) for s in answer.standings], metric=answer.metric),
                               "chart-best")
    return _page(request, "best.html", {
        "datasets": datasets, "task_types": sorted({d.task_type for d in datasets}), "task_type": task_type,
        "dataset": dataset, "metric": metric, "metrics": _metric_names(reg, tt), "answer": answer, "error": error,
        "figure": figure, "coverage": coverage, "kind": kind, "kinds": sorted(set(reg.evaluator_kinds().values())),
        "exclude_imported": exclude_imported, "max_cost": max_cost})


# ---------------------------------------------------------------------------- runs
@dataclass
class Disagreement:
    """One example the evaluator judged otherwise than the humans."""

    example_id: str
    row: dict[str, Any]
    label: Any
    verdicts: dict[int, Any]
    """Order → verdict (in the original orientation: ``A`` is the dataset's ``response_a``)."""
    scores: dict[int, Any]


def _per_order(predictions) -> dict[str, dict[int, tuple[Any, Any, Any]]]:
    """example id → order → (majority verdict over samples, mean score, mean prob_a)."""
    cols = predictions.select([c for c in ("example_id", "order", "verdict", "score", "prob_a")
                               if c in predictions.column_names]).to_pydict()
    grouped: dict[tuple[str, int], list[int]] = {}
    for i, (eid, order) in enumerate(zip(cols["example_id"], cols["order"])):
        grouped.setdefault((eid, int(order)), []).append(i)
    out: dict[str, dict[int, tuple[Any, Any, Any]]] = {}
    for (eid, order), idx in grouped.items():
        verdicts = Counter(cols["verdict"][i] for i in idx if cols["verdict"][i] is not None).most_common()
        verdict = verdicts[0][0] if verdicts and (len(verdicts) == 1 or verdicts[0][1] > verdicts[1][1]) else None

        def mean(name: str) -> float | None:
            vals = [cols[name][i] for i in idx if name in cols and cols[name][i] is not None]
            return sum(vals) / len(vals) if vals else None

        out.setdefault(eid, {})[order] = (verdict, mean("score"), mean("prob_a"))
    return out


@pages.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: int, page: int = Query(1, ge=1), reg=Depends(get_registry)) -> HTMLResponse:
    try:
        run = reg.run(run_id)
        details = reg.dataset(run.dataset)
    except RegistryError as exc:
        return _error(request, exc)
    v = details.version
    from registry.services.scoring import headline_for

    headline = headline_for(v)
    from registry.domain.metrics.bias import BIAS_GROUP

    bias = {m.name: m for m in run.metrics if m.slice == "all" and m.name in BIAS_GROUP}
    overall = [m for m in run.metrics if m.slice == "all" and m.name not in bias]
    overall.sort(key=lambda m: (m.name != headline, m.name))
    slices: dict[str, list[Any]] = {}
    for m in run.metrics:
        if m.slice != "all":
            slices.setdefault(m.slice, []).append(m)
    by_slice = [{"evaluator": m.slice, "value": m.value, "ci_low": m.ci_low, "ci_high": m.ci_high}
                for m in run.metrics if m.slice != "all" and m.name == headline and m.value is not None]
    slice_figure = None
    if len(by_slice) >= 2:
        slice_figure = charts.render(charts.leaderboard_ci(by_slice, metric=headline, title=f"{headline} by slice",
                                                           mark_best=False),
                                     "chart-slices")
    ctx: dict[str, Any] = {"run": run, "v": v, "headline": headline, "overall": overall, "slices": slices,
                           "bias": [bias[name] for name in BIAS_GROUP if name in bias],
                           "bias_definitions": _bias_definitions(),
                           "slice_figure": slice_figure,
                           "evaluator": _evaluator_or_none(reg, run.evaluator), "figures": [],
                           "disagreements": [], "n_disagree": 0, "page": 1, "pages": 1, "texts": [],
                           "orders": [], "note": None}
    if not run.predictions_uri:
        return _page(request, "run.html", ctx)
    if v.task_type == "pointwise":
        ctx["note"] = "pointwise runs are judged by correlation: there is no per-example disagreement to list"
    try:
        predictions = reg.predictions(run_id)
        table = reg.load_table(v.ref)
    except RegistryError as exc:
        ctx["note"] = f"predictions unavailable: {exc}"
    else:
        if v.task_type in ("pairwise", "classification"):
            _disagreements(ctx, table, predictions, page)
        else:
            per = _per_order(predictions)
            human = dict(zip(table.column("example_id").to_pylist(), table.column("score").to_pylist()))
            ids = [e for e in table.column("example_id").to_pylist() if e in per]
            judged = [next((t[1] for _, t in sorted(per[e].items()) if t[1] is not None), None) for e in ids]
            ctx["figures"] = [charts.render(charts.score_scatter([human[e] for e in ids], judged), "chart-scores")]
    return _page(request, "run.html", ctx)


def _bias_definitions() -> dict[str, str]:
    """The catalog's one-line definition of each bias diagnostic (the run page's "Bias" panel)."""
    from registry.domain.metrics.bias import BIAS_GROUP
    from registry.domain.metrics.catalog import METRICS

    return {name: METRICS[name].definition for name in BIAS_GROUP}


def _evaluator_or_none(reg, name: str):
    try:
        return reg.evaluator(name)
    except NotFound:
        return None


def _disagreements(ctx: dict[str, Any], table, predictions, page: int) -> None:
    per = _per_order(predictions)
    orders = sorted({o for d in per.values() for o in d})
    label_of = dict(zip(table.column("example_id").to_pylist(), table.column("label").to_pylist()))
    labels = sorted({str(x) for x in label_of.values() if x is not None})
    verdict_values = sorted({str(t[0]) for d in per.values() for t in d.values() if t[0] is not None})
    predicted = verdict_values + (["no verdict"] if any(t[0] is None for d in per.values() for t in d.values()) else [])
    counts = [[0] * len(predicted) for _ in labels]
    disagree_ids = []
    probs, a_human = [], []
    for eid, by_order in per.items():
        label = label_of.get(eid)
        if label is None:
            continue
        wrong = False
        for order, (verdict, _score, prob) in by_order.items():
            col = predicted.index("no verdict" if verdict is None else str(verdict))
            counts[labels.index(str(label))][col] += 1
            if verdict != label:
                wrong = True
            if prob is not None and label in ("A", "B"):
                probs.append(prob)
                a_human.append(label == "A")
        if wrong:
            disagree_ids.append(eid)
    which = "both orders" if len(orders) == 2 else ("one order" if len(orders) == 1 else f"{len(orders)} orders")
    figures = [charts.render(charts.confusion_matrix(labels, predicted, counts,
                                                     title=f"Human label × verdict ({which})"), "chart-confusion")]
    if len(probs) >= 10:
        figures.append(charts.render(charts.calibration(probs, a_human), "chart-calibration"))
    order_index = {e: i for i, e in enumerate(table.column("example_id").to_pylist())}
    disagree_ids.sort(key=lambda e: order_index.get(e, 0))
    pages_n = max(1, math.ceil(len(disagree_ids) / PAGE_ROWS))
    page = min(page, pages_n)
    shown = disagree_ids[(page - 1) * PAGE_ROWS: page * PAGE_ROWS]
    rows = {i: table.slice(order_index[i], 1).to_pylist()[0] for i in shown if i in order_index}
    ctx.update(figures=figures, n_disagree=len(disagree_ids), page=page, pages=pages_n, orders=orders,
               texts=[c for c in TEXT_FIELDS if c in table.column_names],
               disagreements=[Disagreement(example_id=e, row=rows.get(e, {}), label=label_of.get(e),
                                           verdicts={o: per[e][o][0] for o in per[e]},
                                           scores={o: per[e][o][1] for o in per[e]}) for e in shown])


# ---------------------------------------------------------------------------- regressions
@pages.get("/regressions", response_class=HTMLResponse)
def regressions_page(request: Request, status: str = "", reg=Depends(get_registry)) -> HTMLResponse:
    try:
        found = reg.regressions(status=status or None)
    except RegistryError as exc:
        return _error(request, exc)
    return _page(request, "regressions.html", {"regressions": found, "status": status,
                                               "acked": request.query_params.get("acked")})


@pages.post("/regressions/{regression_id}/ack", response_class=HTMLResponse)
def acknowledge(request: Request, regression_id: int, note: str = Form(""), by: str = Form(""),
                csrf: str = Form(""), reg=Depends(get_registry)) -> Response:
    """Acknowledge a regression from the page's form: the login cookie and the CSRF token are both needed."""
    if not _logged_in(request):
        return _error(request, InvalidInput("log in first: acknowledging needs the write token"), 401)
    if not _csrf_ok(request, csrf):
        return _error(request, InvalidInput("missing or wrong CSRF token: reload the page and try again"), 403)
    if not note.strip():
        return _error(request, InvalidInput("a note is required", field="note"), 422)
    try:
        reg.acknowledge(regression_id, note=note.strip(), by=by.strip() or None)
    except RegistryError as exc:
        return _error(request, exc)
    return _secure_headers(RedirectResponse(f"/regressions?{urlencode({'acked': regression_id})}", status_code=303),
                           request)


# ---------------------------------------------------------------------------- matrix, checkpoints
@pages.get("/matrix", response_class=HTMLResponse)
def matrix_page(request: Request, task_type: str = "", page: int = Query(1, ge=1), dataset: str = "",
                reg=Depends(get_registry)) -> HTMLResponse:
    """Evaluators × datasets (a page of :data:`MATRIX_ROWS` evaluators), and checkpoints × protocols on
    one dataset (the ReIFE view of ``eval matrix`` runs)."""
    try:
        m = reg.headline_matrix(task_type=task_type or None)
    except RegistryError as exc:
        return _error(request, exc)
    judged = {c.dataset: c.metric for c in m.cells}  # dataset → its headline metric
    datasets = [d for d in m.datasets if d in judged]
    pages_n = max(1, math.ceil(len(m.evaluators) / MATRIX_ROWS))
    page = min(page, pages_n)
    evaluators = list(m.evaluators)[(page - 1) * MATRIX_ROWS: page * MATRIX_ROWS]
    # the page's cells only (the matrix's cells are sorted by evaluator)
    lo = bisect.bisect_left(m.cells, evaluators[0], key=lambda c: c.evaluator) if evaluators else 0
    hi = bisect.bisect_right(m.cells, evaluators[-1], key=lambda c: c.evaluator) if evaluators else 0
    cells = {(c.evaluator, c.dataset): c for c in m.cells[lo:hi]}
    headlines = judged
    values = [[cells[(e, d)].value if (e, d) in cells else None for d in datasets] for e in evaluators]
    links = [[f"/runs/{cells[(e, d)].run}" if (e, d) in cells else None for d in datasets] for e in evaluators]
    metric = ", ".join(sorted(set(headlines.values()))) or "headline metric"
    figure = charts.render(charts.matrix_heatmap(evaluators, datasets, values, links, metric=metric),
                           "chart-matrix") if evaluators else None
    # checkpoints × protocols on one dataset version
    chosen = dataset if dataset in datasets else (datasets[0] if datasets else "")
    by_name = {e.name: e for e in reg.evaluators()}
    grid: dict[tuple[str, str], Any] = {}
    for c in m.cells:
        if c.dataset != chosen:
            continue
        ev = by_name.get(c.evaluator)
        if ev is not None and ev.checkpoint:
            grid.setdefault((ev.checkpoint, ev.protocol), c)
    checkpoints = sorted({k for k, _ in grid})
    protocols = sorted({p for _, p in grid})
    reife = None
    if grid:
        reife = charts.render(charts.matrix_heatmap(
            checkpoints, protocols, [[grid[(k, p)].value if (k, p) in grid else None for p in protocols] for k in checkpoints],
            [[f"/runs/{grid[(k, p)].run}" if (k, p) in grid else None for p in protocols] for k in checkpoints],
            metric=headlines.get(chosen, "headline metric"), title=f"Checkpoints × protocols on {chosen}"),
            "chart-protocols")
    return _page(request, "matrix.html", {
        "datasets": datasets, "evaluators": evaluators, "cells": cells, "headlines": headlines, "figure": figure,
        "task_type": task_type, "task_types": ["pairwise", "pointwise", "classification"], "page": page,
        "pages": pages_n, "n_evaluators": len(m.evaluators), "chosen": chosen, "reife": reife,
        "checkpoints": checkpoints, "protocols": protocols, "grid": grid})


@pages.get("/analysis", response_class=HTMLResponse)
def analysis_page(request: Request, datasets: str = "", evaluators: str = "", base: str = "",
                  reg=Depends(get_registry)) -> HTMLResponse:
    """The ReIFE analyses (``analyze ranks``, ``analyze protocols``; :mod:`registry.web.reife`)."""
    from registry.web.reife import reife_context

    names = [d.strip() for d in datasets.split(",") if d.strip()]
    reife = reife_context(reg, datasets=names or None, evaluators=evaluators.strip() or None, base=base.strip() or None)
    return _page(request, "analysis.html", {"reife": reife, "datasets": datasets, "evaluators": evaluators,
                                            "base": base})


@pages.get("/checkpoints", response_class=HTMLResponse)
def checkpoints_page(request: Request, reg=Depends(get_registry)) -> HTMLResponse:
    return _page(request, "checkpoints.html", {"checkpoints": reg.checkpoints()})


@pages.get("/checkpoints/{ref:path}", response_class=HTMLResponse)
def checkpoint_page(request: Request, ref: str, reg=Depends(get_registry)) -> HTMLResponse:
    try:
        details = reg.checkpoint_details(ref)
    except RegistryError as exc:
        return _error(request, exc)
    ckpt = details.checkpoint
    lineage = ckpt.lineage or {}
    trained_on = [_version_ref(d) for d in lineage.get("datasets") or ()] or list(details.training_datasets)
    held_out = [_version_ref(d) for d in lineage.get("held_out") or ()]
    parents = [p.ref for p in details.parents]
    links = {c: f"/checkpoints/{_url(c)}" for c in [ckpt.ref, *parents]}
    links.update({d: f"/datasets/{_url(d.split('@')[0])}" for d in [*trained_on, *held_out]})
    figure = None
    if parents or trained_on or held_out:
        figure = charts.render(charts.lineage_graph(ckpt.ref, parents, trained_on, held_out, links=links),
                               "chart-lineage")
    evaluators = [e for e in reg.evaluators() if e.checkpoint == ckpt.ref]
    card = details.model_card_text
    return _page(request, "checkpoint.html", {
        "c": ckpt, "chain": [ckpt, *details.parents], "lineage": lineage, "trained_on": trained_on,
        "held_out": held_out, "evaluators": evaluators, "figure": figure, "card": _markdown(card) if card else None})


def _version_ref(entry: Any) -> str:
    """``name@version`` of a lineage entry (a mapping with ``dataset``/``version``, or a text)."""
    if isinstance(entry, Mapping):
        name, version = entry.get("dataset") or entry.get("name"), entry.get("version")
        return f"{name}@{version}" if version is not None else str(name)
    return str(entry)


def _markdown(text: str) -> Any:
    """A model card rendered from Markdown with raw HTML disabled (markdown-it escapes it, and refuses
    ``javascript:`` links)."""
    from markdown_it import MarkdownIt
    from markupsafe import Markup

    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    return Markup(md.render(text))  # noqa: S704 - html disabled: every tag in the card is escaped


router.include_router(pages)

__all__ = ["CSRF_COOKIE", "router"]
