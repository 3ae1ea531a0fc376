"""Layering: SQL stays in the store. No module of the package outside the store (domain, services, CLI, the other adapters, the facade) nor of the flows
imports SQLAlchemy or the ORM rows (:mod:`registry.adapters.store.orm`) — not at the top, not
lazily inside a function, not relatively, not through ``importlib``; they talk to the database
through the entity methods and the unit of work of
:class:`registry.adapters.store.abstract.AbstractStore`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT as ROOT
from tests.layering import violations

LAYERS = ("registry/domain", "registry/services", "registry/cli", "flows")
STORE = "registry/adapters/store"
FORBIDDEN = ("sqlalchemy", "registry.adapters.store.orm")


def _violations(source: str, package: str = "registry.services") -> list[str]:
    return violations(source, FORBIDDEN, package)


def _modules() -> list[Path]:
    """Every module of the package outside the store (the layers above, the other adapters, the
    facade) and of the flows."""
    package = [p for p in (ROOT / "registry").rglob("*.py") if not p.is_relative_to(ROOT / STORE)]
    return sorted(package + list((ROOT / "flows").rglob("*.py")))


def test_the_layers_have_modules():
    found = {layer: [p for p in _modules() if p.is_relative_to(ROOT / layer)] for layer in LAYERS}
    assert all(len(v) >= 3 for v in found.values()), {k: len(v) for k, v in found.items()}


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_sql_outside_the_store(path):
    package = ".".join(path.relative_to(ROOT).parent.parts)
    bad = _violations(path.read_text(encoding="utf-8"), package)
    assert not bad, f"{path.relative_to(ROOT)} reaches past the store: {'; '.join(bad)}"


@pytest.mark.parametrize("source", [
    "import sqlalchemy as sa",
    "from sqlalchemy.orm import Session",
    "from registry.adapters.store.orm import SqlEvaluationRun",
    "from registry.adapters.store import orm",
    "def f():\n    from sqlalchemy import select\n    return select",
    "from ..adapters.store.orm import SqlJudgment",
    "from ..adapters.store import orm",
    "import importlib\nimportlib.import_module('sqlalchemy.orm')",
])
def test_the_check_sees_every_spelling(source):
    assert _violations(source)


def test_the_check_lets_the_store_interface_through():
    assert _violations("from registry.adapters.store.abstract import AbstractStore\n"
                       "from registry.domain.entities import JudgmentRecord\n"
                       "from ..adapters.store.abstract import AbstractStore\nfrom .app import Registry") == []
