"""The FastAPI app that serves the REST API and the web pages of one registry.

``create_app()`` opens the registry the settings name (``AUTORATER_*``) once, shares it between
requests (its services open a unit of work per call) and closes it at shutdown. Errors the registry
raises on purpose become ``application/problem+json`` responses (RFC 9457) with the status of their
class; anything else is a 500 problem without a stack trace.

Security (see ``README`` "Web app and REST API"):

- binds to 127.0.0.1 unless told otherwise (``autorater ui --host``);
- writes need ``Authorization: Bearer <token>`` with the token of ``AUTORATER_API_TOKEN`` (compared in
  constant time); without a configured token every write is refused;
- reads need the token too once one is set, unless ``AUTORATER_API_PUBLIC_READ=1`` opens them (with no
  token configured there is nothing to check: reads are open, writes refused); a browser gives the token
  once on the login page and carries it in an HttpOnly, SameSite=Strict cookie (:data:`TOKEN_COOKIE`).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from registry.config import Settings
from registry.errors import (
    AlreadyExists,
    DatabaseError,
    IntegrityError,
    InvalidInput,
    NotFound,
    RegistryError,
    SchemaOutOfDate,
)

WEB_ROOT = Path(__file__).parent
TEMPLATES = WEB_ROOT / "templates"
STATIC = WEB_ROOT / "static"
PROBLEM = "application/problem+json"

STATUS: list[tuple[type[RegistryError], int]] = [
    (NotFound, 404),
    (AlreadyExists, 409),
    (InvalidInput, 422),
    (SchemaOutOfDate, 503),
    (IntegrityError, 500),
    (DatabaseError, 503),
]
"""HTTP status of each error class (first match; any other ``RegistryError``: 400)."""


@dataclass(frozen=True)
class WebSettings:
    """What the web layer reads besides the registry's settings."""

    token: str | None = None
    """Bearer token writes need (``AUTORATER_API_TOKEN``); ``None``: writes are refused."""
    public_read: bool = False
    """Whether reads need no token (``AUTORATER_API_PUBLIC_READ=1``; always when no token is set)."""
    prefect_api_url: str | None = None
    """The Prefect API on which ``POST /api/v1/runs`` creates a flow run of the ``meta-evaluate`` deployment
    (``PREFECT_API_URL``, which ``autorater serve`` sets for its own server; ``AUTORATER_API_RUNS=thread``
    leaves it out); ``None``: the run is a background thread of this process."""

    @property
    def reads_open(self) -> bool:
        return self.public_read or self.token is None

    @classmethod
    def from_env(cls, **overrides: Any) -> WebSettings:
        token = overrides.get("token", os.environ.get("AUTORATER_API_TOKEN") or None)
        public = overrides.get("public_read")
        if public is None:
            public = os.environ.get("AUTORATER_API_PUBLIC_READ", "").strip().lower() in ("1", "true", "yes", "on")
        prefect = overrides.get("prefect_api_url")
        if prefect is None and os.environ.get("AUTORATER_API_RUNS", "").strip().lower() != "thread":
            prefect = os.environ.get("PREFECT_API_URL") or None
        return cls(token=token or None, public_read=bool(public), prefect_api_url=prefect or None)


def status_of(exc: RegistryError) -> int:
    explicit = getattr(exc, "http_status", None)  # an error of the web layer that names its own (413)
    if isinstance(explicit, int):
        return explicit
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def problem(status: int, title: str, detail: str | None = None, **extra: Any) -> JSONResponse:
    """An RFC 9457 problem response."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail is not None:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def registry_problem(exc: RegistryError) -> JSONResponse:
    extra: dict[str, Any] = {"code": exc.code}
    if isinstance(exc, InvalidInput):
        extra.update(file=exc.file, row=exc.row, field=exc.field, hint=exc.hint)
    return problem(status_of(exc), type(exc).__name__, str(exc), **extra)


def get_registry(request: Request):
    """The app's open registry (a FastAPI dependency)."""
    return request.app.state.registry


TOKEN_COOKIE = "autorater_token"
"""Cookie in which a browser carries the token after the login page (HttpOnly, SameSite=Strict)."""


def _bearer(request: Request, *, cookie: bool) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(TOKEN_COOKIE) or None if cookie else None


def token_matches(request: Request, given: str | None) -> bool:
    """Whether ``given`` is the configured token (constant time)."""
    token = request.app.state.web.token
    return token is not None and given is not None and hmac.compare_digest(given.encode(), token.encode())


def _check_token(request: Request, *, cookie: bool = True) -> None:
    web: WebSettings = request.app.state.web
    given = _bearer(request, cookie=cookie)
    if given is None:
        raise HTTPException(401, "this needs Authorization: Bearer <token> (the token of AUTORATER_API_TOKEN)",
                            headers={"WWW-Authenticate": "Bearer"})
    if not token_matches(request, given):
        raise HTTPException(403, "wrong token" if web.token else "writes are disabled: AUTORATER_API_TOKEN is not set")


def require_read(request: Request) -> None:
    """Reads: the token (header or login cookie) unless reads are open (:attr:`WebSettings.reads_open`)."""
    if not request.app.state.web.reads_open:
        _check_token(request)


def require_write(request: Request) -> None:
    """Writes: always the token — the ``Authorization: Bearer`` header, or the login cookie (the pages'
    forms, which also carry a CSRF token: :mod:`registry.web.pages`)."""
    _check_token(request)


ReadAccess = Depends(require_read)
WriteAccess = Depends(require_write)


GC_THRESHOLD = (50_000, 20, 20)
"""Collection thresholds of a process that serves the app (see :func:`tune_gc`)."""


def tune_gc() -> None:
    """Keep the garbage collector's full passes off the request path of a serving process: the objects
    alive at start-up (imports, the open registry) move to the permanent generation and collections run
    less often. A full pass over a process holding memoised rankings and matrices took ~100 ms and was
    the whole p95 tail of the pages (25 → 110 ms for the same read; bench/web.py). Called by
    ``autorater ui`` and ``autorater serve``, which own their process — never on import."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def create_app(settings: Settings | None = None, *, registry: Any = None, web: WebSettings | None = None) -> FastAPI:
    """The app for the registry of ``settings`` (default: the ``AUTORATER_*`` environment), or for an
    already open ``registry`` (left open at shutdown)."""
    from registry import api as registry_api

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = registry is None
        app.state.registry = registry_api.open(settings=settings or Settings.from_env()) if own else registry
        try:
            yield
        finally:
            if own:
                app.state.registry.close()

    app = FastAPI(title="Autorater Registry", version="1", lifespan=lifespan, docs_url="/docs", redoc_url=None,
                  openapi_url="/api/v1/openapi.json")
    app.state.web = web or WebSettings.from_env()
    if registry is not None:
        app.state.registry = registry

    @app.exception_handler(RegistryError)
    async def _registry_error(request: Request, exc: RegistryError) -> JSONResponse:
        return registry_problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        return problem(422, "InvalidInput", f"{'.'.join(first['loc'])}: {first['msg']}", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = problem(exc.status_code, {401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}.get(
            exc.status_code, "HTTPError"), str(exc.detail))
        for k, v in (exc.headers or {}).items():
            response.headers[k] = v
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return problem(500, "InternalError", f"unexpected {type(exc).__name__}; see the server log")

    from registry.web import api, pages

    app.include_router(api.router, prefix="/api/v1")
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


__all__ = ["PROBLEM", "TOKEN_COOKIE", "ReadAccess", "WebSettings", "WriteAccess", "create_app", "get_registry", "problem",
           "registry_problem", "require_read", "require_write", "status_of", "token_matches", "tune_gc"]
