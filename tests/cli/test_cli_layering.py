"""The command line is a thin layer over the Python API (:mod:`registry.api`): no module of
``registry/cli`` imports an adapter or a service — not at the top, not lazily inside a function,
not relatively, not through ``importlib`` — so every command is a call that a Python user (and
the coming REST layer) can make the same way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import registry.cli

CLI = Path(registry.cli.__file__).resolve().parent
FORBIDDEN = ("registry.adapters", "registry.services")


def _absolute(node: ast.ImportFrom, package: str) -> str:
    """The absolute module of ``from ... import`` in a module of ``package``."""
    if node.level == 0:
        return node.module or ""
    parts = package.split(".")
    base = parts[: len(parts) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _imported(tree: ast.AST, package: str = "registry.cli") -> list[tuple[int, str]]:
    """(line, dotted name) of every import in ``tree``: ``from a import b`` gives ``a`` and ``a.b``;
    ``importlib.import_module("x")`` and ``__import__("x")`` give ``x``."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, package)
            out.append((node.lineno, module))
            out += [(node.lineno, f"{module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                out.append((node.lineno, node.args[0].value))
    return out


def _violations(source: str) -> list[str]:
    return [f"line {line}: import of {name}" for line, name in _imported(ast.parse(source))
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)]


def _modules() -> list[Path]:
    return sorted(CLI.rglob("*.py"))


def test_the_cli_has_its_modules():
    names = {p.stem for p in _modules()}
    assert {"main", "common", "datasets", "evaluation", "evaluators", "backends"} <= names, names


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_cli_module_imports_no_adapter_or_service(path):
    bad = _violations(path.read_text(encoding="utf-8"))
    assert not bad, f"registry/cli/{path.name} goes around the Python API (registry.api): {'; '.join(bad)}"


@pytest.mark.parametrize("source", [
    "from registry.adapters.sources.generic import parse_pairs",
    "import registry.services.datasets",
    "from registry import services",
    "from registry.adapters import store",
    "def f():\n    from registry.services.queries import leaderboard\n    return leaderboard",
    "from ..adapters.store import db",
    "from ..services import app",
    "import importlib\nimportlib.import_module('registry.adapters.backends.vllm_backend')",
    "__import__('registry.services.training')",
])
def test_the_check_sees_every_spelling(source):
    assert _violations(source)


def test_the_check_lets_the_api_through():
    assert _violations("from registry import api\nfrom registry.api import open\nfrom .common import console\n"
                       "from registry.domain.options import parse_pairs\nimport registry.errors") == []
