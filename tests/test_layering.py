"""Layering: SQL stays in the store. No module of the domain, the services, the CLI or the flows
imports SQLAlchemy or the ORM rows (:mod:`registry.adapters.store.orm`) — not at the top, not
lazily inside a function; they talk to the database through the entity methods and the unit of
work of :class:`registry.adapters.store.abstract.AbstractStore`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("registry/domain", "registry/services", "registry/cli", "flows")
FORBIDDEN = ("sqlalchemy", "registry.adapters.store.orm")


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in ``tree``, ``from a import b`` giving ``a.b`` too."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


def _violations(source: str) -> list[str]:
    return [f"line {line}: import of {name}" for line, name in _imported(ast.parse(source))
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)]


def _modules() -> list[Path]:
    return sorted(p for layer in LAYERS for p in (ROOT / layer).rglob("*.py"))


def test_the_layers_have_modules():
    found = {layer: [p for p in _modules() if p.is_relative_to(ROOT / layer)] for layer in LAYERS}
    assert all(len(v) >= 3 for v in found.values()), {k: len(v) for k, v in found.items()}


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_sql_outside_the_store(path):
    bad = _violations(path.read_text(encoding="utf-8"))
    assert not bad, f"{path.relative_to(ROOT)} reaches past the store: {'; '.join(bad)}"


@pytest.mark.parametrize("source", [
    "import sqlalchemy as sa",
    "from sqlalchemy.orm import Session",
    "from registry.adapters.store.orm import SqlEvaluationRun",
    "from registry.adapters.store import orm",
    "def f():\n    from sqlalchemy import select\n    return select",
])
def test_the_check_sees_every_spelling(source):
    assert _violations(source)


def test_the_check_lets_the_store_interface_through():
    assert _violations("from registry.adapters.store.abstract import AbstractStore\n"
                       "from registry.domain.entities import JudgmentRecord") == []
