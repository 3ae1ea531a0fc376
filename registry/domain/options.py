"""``KEY=VALUE`` items — the command line's ``--map``, ``--label-map``, ``--option``, ``--tag`` and
``--config`` — read one way everywhere (the CLI, the generic column mapper, the ``mapped`` import
format)."""

from __future__ import annotations

import json
import math
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


def score_scale(value: str | Sequence[Any], *, option: str = "scale") -> tuple[float, float]:
    """A score scale ``MIN,MAX`` (text, or a pair of numbers) as two finite floats with MIN < MAX;
    anything else (``-inf,inf``, ``1,1e309``, ``5,1``, one number) is an :class:`InvalidInput` naming
    ``option``."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        if len(parts) != 2 or any(isinstance(p, bool) for p in parts):
            raise ValueError
        lo, hi = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise InvalidInput(f"{option} takes MIN,MAX (e.g. 1,5), got {value!r}", field=option) from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise InvalidInput(f"{option} {value!r}: the scale's ends must be finite numbers", field=option,
                           hint="e.g. 1,5")
    if not lo < hi:
        raise InvalidInput(f"{option} {value!r}: the minimum must be below the maximum", field=option,
                           hint="e.g. 1,5")
    return lo, hi
