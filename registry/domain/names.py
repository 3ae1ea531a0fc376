"""The naming rule of datasets, autoraters and evaluators: the same on every backend.

A **name** is 1 to :data:`MAX_NAME_CHARS` ASCII letters, digits, ``.``, ``_`` and ``-``, starting
with a letter or digit (:data:`NAME_PATTERN`): no whitespace, no ``/`` or ``@`` (``x@2`` would read
as version 2 of ``x``), no leading dot (so never ``.`` or ``..``). An **evaluator** name may also
have the form of the names the registry gives evaluators, ``<autorater>@<version>/<protocol>``: one
or more names joined by ``/``, the first of which may carry ``@<version>``
(:data:`EVALUATOR_PATTERN`), e.g. ``gpt-4/llmbar-vanilla`` or ``minilm-scorer@2/score-single-order``.

The rule is checked when a thing is created (:func:`validate_name`); a name that breaks it but
already exists (created before the rule) keeps working wherever it is referred to.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

from registry.errors import InvalidInput

NameKind = Literal["dataset", "autorater", "evaluator"]

MAX_NAME_CHARS = 128
"""Longest name (every backend stores it whole)."""
_SLUG = r"[A-Za-z0-9][A-Za-z0-9._-]*"
NAME_PATTERN = re.compile(_SLUG)
"""A dataset or autorater name (whole match)."""
EVALUATOR_PATTERN = re.compile(rf"{_SLUG}(?:@[0-9]+)?(?:/{_SLUG})*")
"""An evaluator name (whole match): names joined by ``/``, the first may carry ``@<version>``."""

RULE = (f"1 to {MAX_NAME_CHARS} letters, digits, '.', '_' or '-', starting with a letter or digit "
        "(no spaces, '/' or '@')")
EVALUATOR_RULE = f"{RULE}; or such names joined by '/', the first may end in @VERSION (e.g. judge@1/pairwise-base)"


def is_valid_name(kind: NameKind, name: object) -> bool:
    """Whether ``name`` follows the naming rule of ``kind``."""
    if not isinstance(name, str) or len(name) > MAX_NAME_CHARS:
        return False
    pattern = EVALUATOR_PATTERN if kind == "evaluator" else NAME_PATTERN
    return pattern.fullmatch(name) is not None


def validate_name(kind: NameKind, name: object, *, field: str | None = None) -> str:
    """``name`` if it follows the naming rule of ``kind``, else :class:`InvalidInput` naming the field
    (``field``, default ``kind``) and the rule."""
    if is_valid_name(kind, name):
        return name  # type: ignore[return-value]
    rule = EVALUATOR_RULE if kind == "evaluator" else RULE
    article = "an" if kind[0] in "aeiou" else "a"
    if isinstance(name, str) and not name.strip():
        problem = f"the {kind} name is empty" + (f" ({name!r})" if name else "")
    else:
        shown = repr(name) if not isinstance(name, str) or len(name) <= 60 else \
            f"{name[:40]!r}… ({len(name)} characters)"
        problem = f"invalid {kind} name {shown}"
    raise InvalidInput(f"{problem}: {article} {kind} name is {rule}", field=field or kind)


def validate_new_name(kind: NameKind, name: object, exists: Callable[[str], bool], *,
                      field: str | None = None) -> str:
    """:func:`validate_name` for a thing about to be created, except that a name which already exists
    (created before the rule; ``exists`` asks the store) is accepted as it is."""
    if is_valid_name(kind, name):
        return name  # type: ignore[return-value]
    storable = isinstance(name, str) and name.strip() and len(name) <= 256 and "\x00" not in name
    if storable and exists(name):  # type: ignore[arg-type]
        return name  # type: ignore[return-value]
    return validate_name(kind, name, field=field)


__all__ = ["EVALUATOR_PATTERN", "MAX_NAME_CHARS", "NAME_PATTERN", "NameKind", "is_valid_name", "validate_name",
           "validate_new_name"]
