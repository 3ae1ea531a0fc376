"""Plain JSON data from entities and result objects.

:func:`to_jsonable` is the one rule that turns what the registry returns into what ``--json``
prints; :meth:`Serializable.to_dict` of every entity and result object uses it too, so the Python
API and the command line cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from pathlib import PurePath
from typing import Any

JsonValue = dict[str, Any] | list[Any] | str | int | float | bool | None


def to_jsonable(obj: Any) -> JsonValue:
    """``obj`` as JSON-ready data: a :class:`Serializable` by its ``to_dict()``, other dataclasses
    field by field, tuples as lists, sets sorted, datetimes in ISO 8601, paths as text, dictionary
    keys as the text JSON writes for them, and anything else as ``str(obj)``."""
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    if isinstance(obj, Serializable):
        return obj.to_dict()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return fields_dict(obj)
    if isinstance(obj, dict):
        return {_key(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return [to_jsonable(v) for v in sorted(obj)]
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, PurePath):
        return str(obj)
    return str(obj)


def fields_dict(obj: Any) -> dict[str, JsonValue]:
    """Every field of dataclass instance ``obj``, in declaration order, as JSON-ready data."""
    return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def _key(key: Any) -> str:
    # the text json.dumps writes for a non-string key (1 → "1", True → "true", None → "null")
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (bool, int, float)):
        return json.dumps(key)
    return str(key)


class Serializable:
    """Mixin of the frozen dataclasses the registry returns: :meth:`to_dict` gives the JSON that the
    command line prints for the same object with ``--json``. Classes whose JSON is not simply their
    fields (derived values, renamed keys) override it."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """The object as JSON-ready data (what ``--json`` prints)."""
        return fields_dict(self)
