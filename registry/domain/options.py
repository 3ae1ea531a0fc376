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
            raise InvalidInput(f"bad {option} item {item!r}: expected KEY=VALUE", field=option,
                               hint=f"e.g. {option} instruction=question" if option == "--map"
                               else f"e.g. {option} KEY=VALUE")
        if key in out and out[key] != value:
            raise InvalidInput(f"bad {option} item {item!r}: {key!r} is already mapped to {out[key]!r}",
                               field=option)
        out[key] = value
    return out


def json_value(text: str, *, option: str | None = None) -> Any:
    """A ``--config`` or ``--tag`` value: JSON when it parses (numbers, booleans, lists), else the text;
    JSON nested deeper than a reader follows is an :class:`InvalidInput` (naming ``option``)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise InvalidInput(f"{option or 'the'} value is JSON nested too deeply to read", field=option) from None
    except ValueError:
        return text


def parse_json_pairs(items: Sequence[str] | None, *, option: str) -> dict[str, Any]:
    """:func:`parse_pairs` whose values keep the type JSON gives them (:func:`json_value`)."""
    return {k: json_value(v, option=f"{option} {k}") for k, v in parse_pairs(items or [], option=option).items()}


MAX_DEPTH = 32
"""Deepest nesting of a stored configuration value (objects and lists)."""


def check_storable(value: Any, *, what: str = "the config", where: str = "") -> None:
    """``value`` (a configuration to store as JSON) holds only what every database stores and reads back
    as it was given: finite numbers (no NaN or infinity), text without NUL characters or lone surrogates
    (PostgreSQL's JSON refuses both), keys that are text, at most :data:`MAX_DEPTH` levels of nesting.
    Otherwise an :class:`InvalidInput` naming the dotted path of the offending value (walked without
    recursion: a value nested thousands of levels deep is refused, never a ``RecursionError``)."""
    pending: list[tuple[Any, str, int]] = [(value, where, 0)]
    while pending:
        item, path, depth = pending.pop()
        field = (path if len(path) <= 60 else path[:60] + "…") or None
        if depth > MAX_DEPTH:
            raise InvalidInput(f"{what} is nested more than {MAX_DEPTH} levels deep", field=field)
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidInput(f"{what} holds {item!r}: only finite numbers are stored", field=field)
        if isinstance(item, str):
            _check_text(item, what=what, field=field)
        elif isinstance(item, dict):
            for k, v in item.items():
                key_field = f"{path}.{ascii(k)}" if path else ascii(k)
                if not isinstance(k, str):
                    raise InvalidInput(f"{what} has a key that is not text: {k!r}", field=key_field)
                _check_text(k, what=f"{what}'s key", field=key_field)
                pending.append((v, f"{path}.{k}" if path else k, depth + 1))
        elif isinstance(item, (list, tuple)):
            pending.extend((v, f"{path}.{i}" if path else str(i), depth + 1) for i, v in enumerate(item))


def _check_text(text: str, *, what: str, field: str | None) -> None:
    if "\x00" in text:
        raise InvalidInput(f"{what} holds a NUL character", field=field)
    if any("\ud800" <= c <= "\udfff" for c in text):
        raise InvalidInput(f"{what} holds a lone surrogate (half of a UTF-16 pair), which is not text",
                           field=field)


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
