"""Server-rendered pages (Jinja2 templates in ``registry/web/templates``, assets in ``static``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from registry.web.app import TEMPLATES, ReadAccess, get_registry

router = APIRouter(dependencies=[ReadAccess], include_in_schema=False)
templates = Jinja2Templates(directory=str(TEMPLATES))  # autoescape on for .html


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, reg=Depends(get_registry)) -> HTMLResponse:
    return templates.TemplateResponse(request, "overview.html", {"info": reg.info()})
