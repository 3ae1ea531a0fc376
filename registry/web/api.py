"""REST API under ``/api/v1``: every handler a thin call of the Python API (:class:`registry.api.Registry`);
JSON shapes equal to the CLI's ``--json`` (``to_jsonable`` of the same result objects)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from registry.domain.serialization import to_jsonable
from registry.web.app import ReadAccess, get_registry

router = APIRouter(dependencies=[ReadAccess])


@router.get("/info")
def info(reg=Depends(get_registry)) -> Any:
    """The registry: database, store, counts."""
    return to_jsonable(reg.info())
