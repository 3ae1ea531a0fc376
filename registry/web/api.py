"""REST API under ``/api/v1``: every handler a thin call of the Python API (:class:`registry.api.Registry`);
JSON shapes equal to the CLI's ``--json`` (``to_jsonable`` of the same result objects).

Reads (``ReadAccess``: open, or the token when ``AUTORATER_API_PUBLIC_READ`` is off):

- ``GET /sources``, ``/metrics``; ``/datasets`` (``task_type``, ``source``, ``q``), ``/datasets/diff?a=&b=``,
  ``/datasets/{name}`` (latest version's details and every version), ``/datasets/{ref}/rows``
  (``label``, ``slice=column=value``; paginated);
- ``/checkpoints``, ``/checkpoints/{ref}``; ``/protocols``, ``/protocols/{ref}``; ``/evaluators``,
  ``/evaluators/{name}`` (names may hold ``/`` and ``@``);
- ``/runs`` (``dataset``, ``evaluator``, ``status``; paginated), ``/runs/{id}``, ``/runs/{id}/predictions``
  (``disagree``; paginated); ``/leaderboard``, ``/best``, ``/regressions``, ``/matrix``;
  ``/aliases/{autorater}/{alias}``; ``/jobs/{id}``.

Writes (``WriteAccess``: always ``Authorization: Bearer <AUTORATER_API_TOKEN>``):

- ``POST /regressions/{id}/ack``; ``PUT /aliases/{autorater}/{alias}`` (``champion`` through the
  promotion rule); ``POST /evaluators``; ``POST /datasets/{name}/versions`` (multipart upload, generic
  mapping); ``POST /runs`` (202, a job: ``GET /jobs/{id}``; a Prefect flow run when ``PREFECT_API_URL`` is
  set, as under ``autorater serve``, else a background thread of this server).

``/best`` takes, besides ``dataset`` / ``task_type`` / ``metric`` / ``coverage`` / ``datasets`` (the
answer of ``autorater best``), the filters ``max_cost_per_1k``, ``backend`` (kinds or generation
backends, repeated or comma-separated), ``exclude_imported`` and ``slice`` (one dataset).

Pagination: ``limit`` (default 50, at most 500) and ``cursor``, an opaque token from the previous
page's ``next_cursor`` (``null`` after the last page). Errors are ``application/problem+json``
(:mod:`registry.web.app`); a JSON write body over 1 MiB and an upload over ``AUTORATER_MAX_UPLOAD_MB``
are 413 problems, refused before they are read whole. A NaN or infinite statistic is ``null``.
"""

from __future__ import annotations

import base64
import bisect
import binascii
import itertools
import json
import math
import os
import re
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from registry.domain.serialization import to_jsonable
from registry.errors import InvalidInput, NotFound, RegistryError
from registry.web.app import ReadAccess, WriteAccess, get_registry, problem

MAX_JSON_BODY = 1 << 20
"""Largest request body of the JSON write endpoints (the upload endpoint has its own limit)."""


class _BoundedBodyRoute(APIRoute):
    """A route that reads a JSON body only up to :data:`MAX_JSON_BODY` (a larger one, declared or
    streamed, is a 413 problem, never read whole into memory); the multipart upload streams its own."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not self.methods & {"POST", "PUT", "PATCH"} or self.path.endswith("/versions"):
            return handler

        async def bounded(request: Request) -> Response:
            too_large = problem(413, "PayloadTooLarge", f"the request body is over {MAX_JSON_BODY} bytes")
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_JSON_BODY:
                return too_large
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_JSON_BODY:
                    return too_large
            request._body = bytes(body)  # what Request.body() returns from now on
            return await handler(request)

        return bounded


def _finite(data: Any) -> Any:
    """JSON data with every NaN or infinite float replaced by ``None``."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_finite(v) for v in data]
    return data


class JSONData(JSONResponse):
    """The API's JSON: what ``--json`` prints, except that a NaN or infinite number (an undefined
    statistic, which Python's ``json`` writes as the non-standard ``NaN``) is ``null``."""

    def render(self, content: Any) -> bytes:
        try:
            return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
        except ValueError:
            return json.dumps(_finite(content), ensure_ascii=False, allow_nan=False,
                              separators=(",", ":")).encode("utf-8")


router = APIRouter(dependencies=[ReadAccess], route_class=_BoundedBodyRoute, default_response_class=JSONData)
Reg = Annotated[Any, Depends(get_registry)]
"""The app's open :class:`registry.api.Registry`."""

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Page size (default {DEFAULT_LIMIT}, at most {MAX_LIMIT}).")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page (opaque).")]


# ---------------------------------------------------------------------- pagination
def encode_cursor(offset: int) -> str:
    """The opaque cursor of the page that starts at ``offset``."""
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The offset a cursor of :func:`encode_cursor` stands for (0 without one); anything else is a 422."""
    if cursor is None or cursor == "":
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        text = ""
    m = re.fullmatch(r"o:(\d{1,12})", text)
    if m is None:
        raise InvalidInput("not a cursor of this API; pass the next_cursor of the previous page, or none for the "
                           "first page", field="cursor")
    return int(m.group(1))


def _next_cursor(next_offset: int | None) -> str | None:
    return None if next_offset is None else encode_cursor(next_offset)


def _page(items: list[Any], offset: int, limit: int) -> dict[str, Any]:
    """A page of a list read ``limit + 1`` long from ``offset`` (the extra item says there is a next page)."""
    more = len(items) > limit
    return {"items": to_jsonable(items[:limit]), "limit": limit,
            "next_cursor": encode_cursor(offset + limit) if more else None}


def _rows_page(page: Any) -> dict[str, Any]:
    return {**to_jsonable(page), "next_cursor": _next_cursor(page.next_offset)}


def _slice(value: str | None) -> dict[str, str] | None:
    if value is None:
        return None
    column, sep, wanted = value.partition("=")
    if not sep or not column.strip():
        raise InvalidInput(f"slice must be COLUMN=VALUE (e.g. category=Natural), got {value!r}", field="slice")
    return {column.strip(): wanted}


def _names(values: list[str] | None) -> list[str] | None:
    """Repeated or comma-separated query values."""
    out = [x.strip() for v in values or () for x in v.split(",") if x.strip()]
    return out or None


# ---------------------------------------------------------------------- catalog and datasets
@router.get("/info")
def info(reg: Reg) -> Any:
    """The registry: database, store, counts."""
    return to_jsonable(reg.info())


@router.get("/sources")
def sources(reg: Reg) -> Any:
    """Every source adapter with origin, licence, citation and datasets (``autorater sources list --json``)."""
    return to_jsonable(reg.sources())


@router.get("/metrics")
def metrics(reg: Reg, task_type: str | None = None) -> Any:
    """The metric catalog (``autorater metrics list --json``)."""
    return to_jsonable(reg.metrics(task_type))


@router.get("/datasets")
def datasets(reg: Reg, task_type: str | None = None, source: str | None = None,
             q: Annotated[str | None, Query(description="Text the dataset name holds (case-insensitive).")] = None) -> Any:
    """Datasets with their latest version (``autorater dataset list --json``), filtered."""
    return to_jsonable(reg.datasets(task_type, source=source, q=q))


@router.get("/datasets/diff")
def dataset_diff(reg: Reg, a: Annotated[str, Query(description="NAME@VERSION (from)")],
                 b: Annotated[str, Query(description="NAME@VERSION (to)")]) -> Any:
    """Added, removed and changed example ids from ``a`` to ``b`` (``autorater dataset diff --json``) and,
    under ``changes``, each changed example's changed fields with old and new values."""
    return to_jsonable(reg.diff(a, b, fields=True))


@router.get("/datasets/{name}")
def dataset(reg: Reg, name: str) -> Any:
    """Dataset ``name`` (or ``name@version``): that version's details (``autorater dataset show --json``:
    statistics, validation report, provenance) and every version, oldest first."""
    details = reg.dataset(name)
    return {**to_jsonable(details), "versions": to_jsonable(reg.versions(details.version.dataset))}


@router.get("/datasets/{ref}/rows")
def dataset_rows(reg: Reg, ref: str, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
                 label: str | None = None,
                 slice: Annotated[str | None, Query(description="COLUMN=VALUE, e.g. category=Natural")] = None) -> Any:  # noqa: A002
    """The rows of version ``ref`` in canonical order, paginated; ``label`` and ``slice`` filter them."""
    page = reg.rows(ref, offset=decode_cursor(cursor), limit=limit, label=label, where=_slice(slice))
    return _rows_page(page)


# ---------------------------------------------------------------------- checkpoints, protocols, evaluators
@router.get("/checkpoints")
def checkpoints(reg: Reg, autorater: str | None = None) -> Any:
    """Checkpoints with their aliases (``autorater checkpoint list --json``)."""
    return to_jsonable(reg.checkpoints(autorater))


@router.get("/checkpoints/{ref}")
def checkpoint(reg: Reg, ref: str) -> Any:
    """Checkpoint ``AUTORATER[@VERSION|@ALIAS]`` with aliases, lineage, parent chain, training dataset
    versions and model card text."""
    return to_jsonable(reg.checkpoint_details(ref))


@router.get("/protocols")
def protocols(reg: Reg) -> Any:
    """Registered protocols (``autorater protocol list --json``)."""
    return to_jsonable(reg.protocols())


@router.get("/protocols/{ref}")
def protocol(reg: Reg, ref: str) -> Any:
    """Protocol ``NAME[@VERSION]`` with its configuration and its prompt templates as text (``prompt``)."""
    return to_jsonable(reg.protocol_details(ref))


@router.get("/evaluators")
def evaluators(reg: Reg) -> Any:
    """Every evaluator (``autorater evaluator list --json``)."""
    return to_jsonable(reg.evaluators())


@router.get("/evaluators/{name:path}")
def evaluator(reg: Reg, name: str) -> Any:
    """Evaluator ``name`` (names may hold ``/`` and ``@``, e.g. ``gpt-4/llmbar-vanilla``)."""
    return to_jsonable(reg.evaluator(name))


# ---------------------------------------------------------------------- runs and queries
@router.get("/runs")
def runs(reg: Reg, dataset: str | None = None, evaluator: str | None = None, status: str | None = None,
         limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> Any:
    """Runs, newest first, with their headline metric (``autorater eval list --json``), paginated."""
    offset = decode_cursor(cursor)
    rows = reg.runs(dataset=dataset, evaluator=evaluator, status=status, limit=offset + limit + 1)
    return _page(rows[offset:], offset, limit)


@router.get("/runs/{run_id}")
def run(reg: Reg, run_id: int) -> Any:
    """Run ``run_id``: status, counts, cost, provenance, every metric (and slice) with its CI
    (``autorater eval show --json``)."""
    return to_jsonable(reg.run(run_id))


@router.get("/runs/{run_id}/predictions")
def run_predictions(reg: Reg, run_id: int, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
                    disagree: Annotated[bool, Query(description="Only verdicts that differ from the human label.")] = False
                    ) -> Any:
    """The run's per-example predictions with the human label, paginated."""
    page = reg.prediction_rows(run_id, offset=decode_cursor(cursor), limit=limit, disagree=disagree)
    return _rows_page(page)


@router.get("/leaderboard")
def leaderboard(reg: Reg, dataset: str, metric: str | None = None) -> Any:
    """Evaluators on a dataset version ranked by ``metric`` (``autorater leaderboard --json``)."""
    return ranking_response(reg.leaderboard(dataset, metric))


ENCODED_RANKINGS = 8
"""Rankings whose encoded JSON is kept (see :func:`ranking_response`)."""
_encoded: OrderedDict[int, tuple[Any, bytes]] = OrderedDict()
_encoded_lock = threading.Lock()


def ranking_response(ranking: Any) -> Response:
    """The JSON of a :class:`~registry.services.queries.Ranking`, encoded once per ranking object: the
    queries hand back the same (frozen) object until a run lands — and the same cut copy of it per
    ``limit`` (:meth:`~registry.services.queries.Ranking.head`) — and encoding 10,000 standings with
    their metrics takes far longer than the query (bench/web.py)."""
    with _encoded_lock:
        hit = _encoded.get(id(ranking))
        if hit is not None and hit[0] is ranking:
            _encoded.move_to_end(id(ranking))
            return Response(hit[1], media_type="application/json")
    body = JSONData(to_jsonable(ranking)).body
    with _encoded_lock:
        _encoded[id(ranking)] = (ranking, body)  # (the ranking kept alive: its id is not reused meanwhile)
        while len(_encoded) > ENCODED_RANKINGS:
            _encoded.popitem(last=False)
    return Response(body, media_type="application/json")


@router.get("/best")
def best(reg: Reg, dataset: str | None = None, task_type: str | None = None, metric: str | None = None,
         coverage: str | None = None,
         datasets: Annotated[list[str] | None, Query(description="NAME[@VERSION], repeated or comma-separated")] = None,
         max_cost_per_1k: Annotated[float | None, Query(ge=0, description="Dollars per 1000 examples at most")] = None,
         backend: Annotated[list[str] | None, Query(description="Evaluator kinds or generation backends")] = None,
         exclude_imported: bool = False,
         slice: Annotated[str | None, Query(description="COLUMN=VALUE slice of the runs (with dataset)")] = None,  # noqa: A002
         limit: Annotated[int, Query(ge=1, description=f"Standings listed (default {DEFAULT_LIMIT}); the best, "
                                     "tied_with_best and standings_total are always whole")] = DEFAULT_LIMIT,
         ) -> Any:
    """The best evaluator for a dataset or a task type with those tied with it (``autorater best --json
    --limit N`` when no filter is given); filters: ``max_cost_per_1k``, ``backend``, ``exclude_imported``, and
    ``slice`` (rank one dataset on a slice of its runs' metrics; no paired test there). ``standings`` lists the
    first ``limit`` (default 50) of ``standings_total``: a task type of 10,000 evaluators answered whole is
    over a megabyte."""
    return ranking_response(reg.best(dataset=dataset, task_type=task_type, metric=metric, coverage=coverage,
                                     datasets=_names(datasets), backend=_names(backend),
                                     exclude_imported=exclude_imported, max_cost_per_1k=max_cost_per_1k, slice=slice,
                                     limit=limit))


@router.get("/regressions")
def regressions(reg: Reg, status: str | None = None, evaluator: str | None = None, dataset: str | None = None) -> Any:
    """Recorded regressions, newest first (``autorater regressions list --json``)."""
    return to_jsonable(reg.regressions(status=status, evaluator=evaluator, dataset=dataset))


@router.get("/matrix")
def matrix(reg: Reg, task_type: str | None = None, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> Any:
    """Evaluators × the latest version of every dataset: the headline metric of each latest run, a page of
    ``limit`` evaluators (in name order) at a time with all their cells."""
    offset = decode_cursor(cursor)
    m = reg.headline_matrix(task_type=task_type)
    names = m.evaluators[offset:offset + limit]
    lo = bisect.bisect_left(m.cells, names[0], key=lambda c: c.evaluator) if names else 0
    hi = bisect.bisect_right(m.cells, names[-1], key=lambda c: c.evaluator) if names else 0
    return {"datasets": list(m.datasets), "evaluators": list(names), "cells": to_jsonable(list(m.cells[lo:hi])),
            "evaluators_total": len(m.evaluators), "limit": limit,
            "next_cursor": encode_cursor(offset + limit) if offset + limit < len(m.evaluators) else None}


@router.get("/aliases/{autorater}/{alias}")
def alias(reg: Reg, autorater: str, alias: str) -> Any:
    """The checkpoint an alias (e.g. ``champion``) points at, and the evaluators with their configs that use it."""
    return to_jsonable(reg.alias(autorater, alias))


# ---------------------------------------------------------------------- writes
class AckBody(BaseModel):
    """Acknowledgement of a regression."""

    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=4000, description="Why the drop is expected or accepted.")
    by: str | None = Field(None, max_length=200, description="Who acknowledges it.")


@router.post("/regressions/{regression_id}/ack", dependencies=[WriteAccess])
def acknowledge(reg: Reg, regression_id: int, body: AckBody) -> Any:
    """Acknowledge a regression (``autorater regressions ack --json``): it stays recorded but no longer
    blocks the champion alias."""
    return to_jsonable(reg.acknowledge(regression_id, note=body.note, by=body.by))


class AliasBody(BaseModel):
    """Where an alias should point."""

    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, description="Checkpoint version of the autorater.")
    metric: str | None = Field(None, description="champion only: the metric the promotion rule compares.")


@router.put("/aliases/{autorater}/{alias}", dependencies=[WriteAccess])
def move_alias(reg: Reg, autorater: str, alias: str, body: AliasBody) -> Any:
    """Point ``alias`` at ``autorater@version`` as ``autorater checkpoint alias`` does; ``champion`` goes
    through the promotion rule (``autorater checkpoint promote``): the decision is returned, and a
    refusal is a 409 problem carrying it under ``decision``."""
    result = reg.move_alias(f"{autorater}@{body.version}", alias, metric=body.metric)
    data = to_jsonable(result)
    if isinstance(data, dict) and data.get("promoted") is False:
        return problem(409, "PromotionRefused", str(data.get("reason")), decision=_finite(data))
    return data


class EvaluatorBody(BaseModel):
    """An evaluator to create (``autorater evaluator create``)."""

    model_config = ConfigDict(extra="forbid")
    checkpoint: str = Field(min_length=1, max_length=300, description="AUTORATER[@VERSION|@ALIAS]")
    protocol: str = Field("score-both-orders", min_length=1, max_length=300)
    name: str | None = Field(None, max_length=300)
    config: dict[str, Any] | None = None
    price_per_1k_tokens: float | None = None


@router.post("/evaluators", dependencies=[WriteAccess], status_code=201)
def create_evaluator(reg: Reg, body: EvaluatorBody) -> Any:
    """Create an evaluator (idempotent: 200 with ``created`` false when it exists); configs holding a
    secret are refused as by the command line (422)."""
    r = reg.create_evaluator(checkpoint=body.checkpoint, protocol=body.protocol, name=body.name, config=body.config,
                             price_per_1k_tokens=body.price_per_1k_tokens)
    return JSONData(to_jsonable(r), status_code=201 if r.created else 200,
                        headers={"Location": f"/api/v1/evaluators/{quote(r.entity.name, safe='/@')}"})


# ------------------------------------------------------------------ upload
class UploadTooLarge(RegistryError):
    """An upload over ``AUTORATER_MAX_UPLOAD_MB`` (answered 413)."""

    code = "upload_too_large"
    http_status = 413


def max_upload_bytes() -> int:
    """``AUTORATER_MAX_UPLOAD_MB`` (default 100) in bytes."""
    raw = os.environ.get("AUTORATER_MAX_UPLOAD_MB", "100")
    try:
        mb = float(raw)
    except ValueError:
        mb = 100.0
    return int(max(mb, 0) * 2**20)


MAX_FIELD_BYTES = 1 << 20
"""Largest form field besides the file."""
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _safe_filename(name: str | None) -> str:
    """The uploaded file's name reduced to a safe base name (its suffixes tell the generic reader the format)."""
    base = _SAFE_NAME.sub("_", Path((name or "upload").replace("\\", "/")).name).strip("._") or "upload"
    return base[-120:]


@dataclass
class _Multipart:
    """A multipart body read as it streams in: the part named ``file`` written to ``folder`` (stopped at
    ``max_bytes`` with :class:`UploadTooLarge`), the other parts kept as text fields."""

    folder: Path
    max_bytes: int
    fields: dict[str, str] = field(default_factory=dict)
    file: Path | None = None
    size: int = 0
    _headers: dict[str, str] = field(default_factory=dict)
    _header: bytes = b""
    _hv: bytes = b""
    _name: str | None = None
    _buf: bytearray | None = None
    _out: Any = None

    def parser(self, boundary: bytes):
        from python_multipart.multipart import MultipartParser

        callbacks = {
            "on_part_begin": self._begin, "on_header_field": self._hfield, "on_header_value": self._hvalue,
            "on_header_end": self._hend, "on_headers_finished": self._headers_done, "on_part_data": self._data,
            "on_part_end": self._end,
        }
        return MultipartParser(boundary, callbacks)

    def _begin(self) -> None:
        self._headers, self._header, self._hv = {}, b"", b""

    def _hfield(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _hvalue(self, data: bytes, start: int, end: int) -> None:
        self._hv += data[start:end]

    def _hend(self) -> None:
        self._headers[self._header.decode("latin-1").lower()] = self._hv.decode("latin-1")
        self._header, self._hv = b"", b""

    def _headers_done(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(self._headers.get("content-disposition", ""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        self._name = name
        if filename is not None and name == "file":
            if self.file is not None:
                raise InvalidInput("send one file (the part named 'file')", field="file")
            self.file = self.folder / _safe_filename(filename.decode("utf-8", "replace"))
            self._out = self.file.open("wb")
            self._buf = None
        else:
            self._buf = bytearray()

    def _data(self, data: bytes, start: int, end: int) -> None:
        n = end - start
        if self._out is not None:
            self.size += n
            if self.size > self.max_bytes:
                raise UploadTooLarge(f"the upload is larger than {self.max_bytes // 2**20} MB "
                                     "(AUTORATER_MAX_UPLOAD_MB); register a file this large with the command line")
            self._out.write(data[start:end])
        elif self._buf is not None:
            if len(self._buf) + n > MAX_FIELD_BYTES:
                raise InvalidInput(f"form field {self._name!r} is over {MAX_FIELD_BYTES} bytes", field=self._name)
            self._buf += data[start:end]

    def _end(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        elif self._buf is not None and self._name:
            try:
                self.fields[self._name] = bytes(self._buf).decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(f"form field {self._name!r} is not UTF-8 text", field=self._name) from None
            self._buf = None

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


def _json_field(fields: dict[str, str], name: str, kind: type) -> Any:
    text = fields.get(name)
    if text is None or not text.strip():
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"{name} must be JSON ({exc})", field=name) from None
    if not isinstance(value, kind):
        raise InvalidInput(f"{name} must be a JSON {'object' if kind is dict else 'list'}", field=name)
    return value


def _generic_options(fields: dict[str, str]) -> tuple[dict[str, Any], tuple[str, ...] | None]:
    """The generic adapter's options from the form, as ``dataset register --source generic`` builds them."""
    from registry.domain.options import score_scale

    allowed = {"task_type", "map", "label_map", "labels", "scale", "id_from_row", "description"}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise InvalidInput(f"unknown form field(s) {unknown}; allowed: file, {', '.join(sorted(allowed))}",
                           field=unknown[0])
    opts: dict[str, Any] = {}
    mapping = _json_field(fields, "map", dict)
    if mapping:
        opts["mapping"] = {str(k): str(v) for k, v in mapping.items()}
    label_map = _json_field(fields, "label_map", dict)
    if label_map:
        opts["label_map"] = {str(k): str(v) for k, v in label_map.items()}
    labels = None
    if fields.get("labels", "").strip():
        text = fields["labels"].strip()
        raw = _json_field(fields, "labels", list) if text.startswith("[") else text.split(",")
        labels = tuple(str(x).strip() for x in raw if str(x).strip()) or None
        if labels:
            opts["labels"] = labels
    if fields.get("scale", "").strip():
        text = fields["scale"].strip()
        opts["scale"] = score_scale(_json_field(fields, "scale", list) if text.startswith("[") else text, option="scale")
    if fields.get("id_from_row", "").strip().lower() in ("1", "true", "yes", "on"):
        opts["id_from_row"] = True
    return opts, labels


def _as_uploaded(exc: InvalidInput, folder: Path, filename: str) -> InvalidInput:
    """The error naming the uploaded file by its name instead of the server's temporary path."""
    import copy

    if exc.file is None or not exc.file.startswith(str(folder)):
        return exc
    out = copy.copy(exc)
    InvalidInput.__init__(out, exc.detail, file=filename, row=exc.row, field=exc.field, hint=exc.hint)
    return out


UPLOAD_BATCH = 1 << 20
"""Bytes of an upload handed to the multipart parser (which writes the file) per worker-thread call."""


def _staging_folder(staging: Path) -> Path:
    """A new temporary folder for one upload inside the store's ``tmp`` folder."""
    staging.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="upload-", dir=staging))


def _discard(body: _Multipart, folder: Path) -> None:
    body.close()
    shutil.rmtree(folder, ignore_errors=True)


@router.post("/datasets/{name}/versions", dependencies=[WriteAccess], status_code=201, openapi_extra={
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"], "properties": {
            "file": {"type": "string", "format": "binary"},
            "task_type": {"type": "string", "enum": ["pairwise", "pointwise", "classification"]},
            "map": {"type": "string", "description": 'JSON object FIELD → column, e.g. {"instruction": "question"}'},
            "label_map": {"type": "string", "description": 'JSON object SOURCE_VALUE → LABEL'},
            "labels": {"type": "string", "description": "comma-separated label set (classification)"},
            "scale": {"type": "string", "description": "MIN,MAX (pointwise)"},
            "id_from_row": {"type": "boolean"}, "description": {"type": "string"}}}}}}})
async def upload_version(request: Request, name: str, reg: Reg) -> Any:
    """Register an uploaded file as the next version of dataset ``name`` with the generic column mapping,
    as ``autorater dataset register NAME --source generic`` does (201; 200 with ``created`` false when the
    content is already registered).

    The body streams into a temporary folder inside the store's ``tmp`` folder (written by worker threads,
    off the event loop) and stops at ``AUTORATER_MAX_UPLOAD_MB`` (default 100) with a 413; the temporary file
    is always removed, and a rejected upload (too large, bad form, failed validation) registers nothing."""
    ctype = request.headers.get("content-type", "")
    from python_multipart.multipart import parse_options_header

    kind, options = parse_options_header(ctype)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidInput("send multipart/form-data with a 'file' part and the mapping fields", field="file")
    limit = max_upload_bytes()
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + MAX_FIELD_BYTES * 8:
        raise UploadTooLarge(f"the upload is larger than {limit // 2**20} MB (AUTORATER_MAX_UPLOAD_MB)")
    folder = await run_in_threadpool(_staging_folder, Path(reg.settings.store) / "tmp")
    body = _Multipart(folder=folder, max_bytes=limit)
    try:
        from python_multipart.exceptions import MultipartParseError

        parser = body.parser(boundary)
        try:
            # the parser writes the file part to disk: in a worker thread, a batch of chunks at a time, so a
            # large upload never blocks the event loop (the other requests) on the disk
            pending = bytearray()
            async for chunk in request.stream():
                pending += chunk
                if len(pending) >= UPLOAD_BATCH:
                    await run_in_threadpool(parser.write, bytes(pending))
                    pending.clear()
            if pending:
                await run_in_threadpool(parser.write, bytes(pending))
            await run_in_threadpool(parser.finalize)
        except MultipartParseError as exc:
            raise InvalidInput(f"the multipart body is malformed ({exc})", field="file") from None
        await run_in_threadpool(body.close)
        if body.file is None:
            raise InvalidInput("no file: send the data as the multipart part named 'file'", field="file")
        opts, labels = _generic_options(body.fields)
        try:
            result = await run_in_threadpool(
                reg.register_dataset, name, source="generic", path=body.file, options=opts,
                task_type=body.fields.get("task_type") or None, labels=labels,
                description=body.fields.get("description") or None)
        except InvalidInput as exc:
            raise _as_uploaded(exc, folder, body.file.name) from None
    finally:
        import anyio

        with anyio.CancelScope(shield=True):    # removed even when the client went away mid-upload
            await run_in_threadpool(_discard, body, folder)
    return JSONData(to_jsonable(result), status_code=201 if result.created else 200,
                        headers={"Location": f"/api/v1/datasets/{quote(result.version.ref, safe='@')}"})


# ------------------------------------------------------------------ evaluation jobs
RUN_DEPLOYMENT = "meta-evaluate/on-evaluator"
"""The deployment of :mod:`flows.deployments` (served by ``autorater serve``) that ``POST /runs`` creates a
flow run of when a Prefect API is configured, with ``evaluators=[E]`` and ``datasets=[NAME@VERSION]``."""
_PREFECT_STATUS = {"SCHEDULED": "queued", "PENDING": "queued", "PAUSED": "queued", "RUNNING": "running",
                   "CANCELLING": "running", "COMPLETED": "succeeded", "FAILED": "failed", "CRASHED": "failed",
                   "CANCELLED": "failed"}
"""A job's status for each Prefect state type of its flow run."""


class PrefectUnavailable(RegistryError):
    """The configured Prefect API cannot start or report a flow run (answered 503)."""

    code = "prefect_unavailable"
    http_status = 503


@dataclass
class Job:
    """An evaluation started over the API: a background thread of this server, or a Prefect flow run."""

    id: int
    evaluator: str
    dataset: str
    """``name@version`` (resolved when the job was accepted)."""
    status: str = "queued"
    """``queued``, ``running``, ``succeeded`` or ``failed``."""
    run_id: int | None = None
    error: str | None = None
    regressions: list[int] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    via: str = "thread"
    """``thread`` (a worker of this server) or ``prefect`` (a flow run of :data:`RUN_DEPLOYMENT`)."""
    flow_run_id: str | None = None
    flow_run_state: str | None = None
    """The Prefect state type of the flow run (``SCHEDULED``, ``RUNNING``, ``COMPLETED``, …) when last read."""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "evaluator": self.evaluator, "dataset": self.dataset, "status": self.status,
                "run_id": self.run_id, "error": self.error, "regressions": list(self.regressions),
                "created_at": self.created_at, "finished_at": self.finished_at,
                "run": f"/api/v1/runs/{self.run_id}" if self.run_id is not None else None, "via": self.via,
                "flow_run_id": self.flow_run_id, "flow_run_state": self.flow_run_state}


class Jobs:
    """The app's job table. Without a Prefect API each job runs in a daemon thread of this process (the
    registry's exactly-once claim keeps two evaluations of one pair from running at once). With one
    (:attr:`~registry.web.app.WebSettings.prefect_api_url`), a job is a flow run of :data:`RUN_DEPLOYMENT`
    that the deployments' runner (``autorater serve``) executes; its status is read from Prefect when the
    job is asked for. Jobs are not kept over a restart; the runs (and flow runs) they made are."""

    def __init__(self, prefect_api_url: str | None = None) -> None:
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.prefect_api_url = prefect_api_url

    def _add(self, **fields: Any) -> Job:
        with self._lock:
            job = Job(id=next(self._ids), **fields)
            self._jobs[job.id] = job
        return job

    def start(self, reg: Any, evaluator: str, dataset: str) -> Job:
        """The evaluation as a flow run when a Prefect API is configured, else in a thread of this process."""
        if self.prefect_api_url:
            return self._start_flow_run(evaluator, dataset)
        job = self._add(evaluator=evaluator, dataset=dataset)
        threading.Thread(target=self._work, args=(reg, job), name=f"autorater-job-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: int) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id} in this server (jobs are kept until it restarts)")
        return job

    @staticmethod
    def _work(reg: Any, job: Job) -> None:
        job.status = "running"
        try:
            run = reg.evaluate(job.evaluator, job.dataset)
            job.run_id = run.id
            if run.status == "succeeded":
                job.regressions = [r.id for r in reg.detect_regressions(run.id).regressions]
            job.status, job.error = run.status, run.error
        except Exception as exc:  # noqa: BLE001 - the job records any failure
            job.status = "failed"
            job.error = str(exc) if isinstance(exc, RegistryError) else f"unexpected {type(exc).__name__}: {exc}"
        finally:
            job.finished_at = time.time()

    # -------------------------------------------------------------- Prefect
    def _client(self):  # noqa: ANN202 - prefect's SyncPrefectClient, imported only in this mode
        from prefect.client.orchestration import SyncPrefectClient

        return SyncPrefectClient(self.prefect_api_url)

    def _unavailable(self, exc: Exception) -> PrefectUnavailable:
        return PrefectUnavailable(f"the Prefect API at {self.prefect_api_url} did not answer ({type(exc).__name__}: "
                                  f"{exc}); start `autorater serve`, or set AUTORATER_API_RUNS=thread to run "
                                  "evaluations in this server")

    def _start_flow_run(self, evaluator: str, dataset: str) -> Job:
        """What ``prefect.deployments.run_deployment(RUN_DEPLOYMENT, parameters=..., timeout=0)`` does: a
        scheduled flow run of the deployment, returned at once."""
        from prefect.exceptions import ObjectNotFound

        try:
            with self._client() as client:
                try:
                    deployment = client.read_deployment_by_name(RUN_DEPLOYMENT)
                except ObjectNotFound:
                    raise PrefectUnavailable(
                        f"the Prefect API at {self.prefect_api_url} has no deployment {RUN_DEPLOYMENT!r}: "
                        "run `autorater serve` (which serves it), or set AUTORATER_API_RUNS=thread") from None
                flow_run = client.create_flow_run_from_deployment(
                    deployment.id, parameters={"evaluators": [evaluator], "datasets": [dataset]},
                    tags=["autorater", "rest-api"])
        except RegistryError:
            raise
        except Exception as exc:  # noqa: BLE001 - an unreachable or failing Prefect API
            raise self._unavailable(exc) from None
        state = flow_run.state.type.value if flow_run.state is not None else None
        return self._add(evaluator=evaluator, dataset=dataset, via="prefect", flow_run_id=str(flow_run.id),
                         flow_run_state=state)

    def refresh(self, reg: Any, job: Job) -> None:
        """A flow run job's state from Prefect and, once it has one, its run (and that run's regressions)."""
        if job.via != "prefect" or job.finished_at is not None:
            return
        from uuid import UUID

        try:
            with self._client() as client:
                flow_run = client.read_flow_run(UUID(job.flow_run_id))
        except Exception as exc:  # noqa: BLE001
            raise self._unavailable(exc) from None
        state = flow_run.state
        job.flow_run_state = state.type.value if state is not None else None
        status = _PREFECT_STATUS.get(job.flow_run_state or "", "queued")
        if status == "running":
            running = reg.runs(evaluator=job.evaluator, dataset=job.dataset, status="running", limit=1)
            job.run_id = running[0].id if running else None
        elif status == "succeeded":
            # the flow runs the pair unless it has a succeeded run already: either way, that run is the answer
            done = reg.runs(evaluator=job.evaluator, dataset=job.dataset, status="succeeded", limit=1)
            if done:
                job.run_id = done[0].id
                job.regressions = [r.id for r in reg.regressions(evaluator=job.evaluator, dataset=job.dataset)
                                   if r.candidate_run_id == job.run_id]
            else:
                status = "failed"
                job.error = (f"flow run {job.flow_run_id} completed without a run of {job.evaluator} on "
                             f"{job.dataset} (an inactive evaluator or a jury is not run by the flow)")
        elif status == "failed":
            job.error = f"flow run {job.flow_run_id} {job.flow_run_state}: {state.message if state else ''}".strip()
            failed = reg.runs(evaluator=job.evaluator, dataset=job.dataset, limit=1)
            job.run_id = failed[0].id if failed and failed[0].status == "failed" else None
        job.status = status
        if status in ("succeeded", "failed"):
            job.finished_at = time.time()


_jobs_lock = threading.Lock()


def get_jobs(request: Request) -> Jobs:
    """The app's job table (created on first use, in the run mode of the app's settings)."""
    with _jobs_lock:
        jobs = getattr(request.app.state, "jobs", None)
        if jobs is None:
            jobs = request.app.state.jobs = Jobs(request.app.state.web.prefect_api_url)
    return jobs


class RunBody(BaseModel):
    """An evaluation to start (``autorater eval run``)."""

    model_config = ConfigDict(extra="forbid")
    evaluator: str = Field(min_length=1, max_length=300)
    dataset: str = Field(min_length=1, max_length=300, description="NAME or NAME@VERSION (default latest)")


@router.post("/runs", dependencies=[WriteAccess], status_code=202)
def start_run(reg: Reg, body: RunBody, jobs: Annotated[Jobs, Depends(get_jobs)]) -> Any:
    """Start ``evaluator`` on ``dataset``: 202 with the job, ``Location: /api/v1/jobs/{id}``; poll the job for
    its status and its ``run_id``. With a Prefect API (``PREFECT_API_URL``; ``autorater serve``) the job is a
    flow run of the ``meta-evaluate/on-evaluator`` deployment (``flow_run_id``), which runs the pair unless it
    has a succeeded run already (the job then gives that run); without one, a background worker of this
    server runs it as ``autorater eval run`` does (regressions checked after). A 503 problem when the Prefect
    API does not answer or does not serve the deployment."""
    ev = reg.evaluator(body.evaluator)
    version = reg.dataset(body.dataset).version
    job = jobs.start(reg, ev.name, version.ref)
    return JSONData(job.to_dict(), status_code=202, headers={"Location": f"/api/v1/jobs/{job.id}"})


@router.get("/jobs/{job_id}")
def job(job_id: int, reg: Reg, jobs: Annotated[Jobs, Depends(get_jobs)]) -> Any:
    """A job's status and, once known, its run id (the run's own status while it runs); for a flow run job
    also the flow run's Prefect state (``flow_run_state``), read now."""
    j = jobs.get(job_id)
    jobs.refresh(reg, j)
    data = j.to_dict()
    if j.via == "thread" and j.run_id is None and j.status == "running":
        running = reg.runs(evaluator=j.evaluator, dataset=j.dataset, status="running", limit=1)
        if running:
            data["run_id"] = running[0].id
            data["run"] = f"/api/v1/runs/{running[0].id}"
    return data
