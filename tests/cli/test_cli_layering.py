"""The command line is a thin layer over the Python API (:mod:`registry.api`): no module of
``registry/cli`` imports an adapter or a service — not at the top, not lazily inside a function,
not relatively, not through ``importlib`` — so every command is a call that a Python user (and
the coming REST layer) can make the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

import registry.cli
from tests.layering import violations

CLI = Path(registry.cli.__file__).resolve().parent
FORBIDDEN = ("registry.adapters", "registry.services")


def _violations(source: str) -> list[str]:
    return violations(source, FORBIDDEN, "registry.cli")


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
