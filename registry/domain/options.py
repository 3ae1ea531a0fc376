"""``KEY=VALUE`` items — the command line's ``--map``, ``--label-map``, ``--option``, ``--tag`` and
``--config`` — read one way everywhere (the CLI, the generic column mapper, the ``mapped`` import
format)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from registry.errors import InvalidInput


def parse_pairs(items: Sequence[str], *, option: str) -> dict[str, str]:
    """``["k=v", ...]`` → ``{k: v}``, split on the LAST ``=`` (so ``A=B=tie`` maps ``A=B``), except
    for ``--map FIELD=PATH``, split on the first: a field name never holds ``=``, a path may (LLMBar
    results: ``results.0.swap = False.winner``). Used for ``--map``, ``--label-map`` and ``--option``."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = str(item).partition("=") if option == "--map" else str(item).rpartition("=")
        if not sep or not key or not value:
            raise InvalidInput(f"bad {option} item {item!r}: expected KEY=VALUE",
                               hint=f"e.g. {option} instruction=question" if option == "--map"
                               else f"e.g. {option} KEY=VALUE")
        if key in out and out[key] != value:
            raise InvalidInput(f"bad {option} item {item!r}: {key!r} is already mapped to {out[key]!r}")
        out[key] = value
    return out


def json_value(text: str) -> Any:
    """A ``--config`` or ``--tag`` value: JSON when it parses (numbers, booleans, lists), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_json_pairs(items: Sequence[str] | None, *, option: str) -> dict[str, Any]:
    """:func:`parse_pairs` whose values keep the type JSON gives them (:func:`json_value`)."""
    return {k: json_value(v) for k, v in parse_pairs(items or [], option=option).items()}
