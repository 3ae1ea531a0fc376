"""What a module imports, read from its syntax tree: the helper of the layering tests."""

from __future__ import annotations

import ast
from collections.abc import Sequence


def _absolute(node: ast.ImportFrom, package: str) -> str:
    """The absolute module of ``from ... import`` in a module of ``package``."""
    if node.level == 0:
        return node.module or ""
    parts = package.split(".")
    base = parts[: len(parts) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imported(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in ``tree``, a module of ``package``: at the top or
    inside a function; ``from a import b`` gives ``a`` and ``a.b``, relative ones made absolute;
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


def violations(source: str, forbidden: Sequence[str], package: str) -> list[str]:
    """``line N: import of X`` for every import of a module in (or under) ``forbidden``."""
    return [f"line {line}: import of {name}" for line, name in imported(ast.parse(source), package)
            if any(name == f or name.startswith(f + ".") for f in forbidden)]
