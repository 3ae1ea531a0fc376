"""docs/reliability.md stays true: every test it names (``tests/….py::test_name``) exists, and every
guarantee it lists (a ``- `` item outside "Not covered") names at least one."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "reliability.md"
REF = re.compile(r"(tests/[\w/]+\.py)::(\w+)")
UNCOVERED = "## Not covered"


def _items(text: str) -> list[str]:
    """The list items (a ``- `` line and its indented continuation lines) before "Not covered"."""
    items: list[str] = []
    inside = False
    for line in text.split(UNCOVERED)[0].splitlines():
        if line.startswith("- "):
            items.append(line)
            inside = True
        elif inside and line.startswith("  ") and line.strip():
            items[-1] += " " + line.strip()
        else:
            inside = False
    return items


def test_every_named_test_exists():
    text = DOC.read_text(encoding="utf-8")
    refs = set(REF.findall(text))
    assert len(refs) >= 30, f"only {len(refs)} test references found in {DOC}"
    missing = []
    for path, name in sorted(refs):
        file = PROJECT_ROOT / path
        if not file.is_file():
            missing.append(f"{path} (no such file)")
        elif not re.search(rf"^\s*(async\s+)?def {re.escape(name)}\(|^[\w, ]*\b{re.escape(name)}\b[\w, ]* = ",
                           file.read_text(encoding="utf-8"), re.M):  # a def, or a test made by a factory
            missing.append(f"{path}::{name} (no such test)")
    assert not missing, "docs/reliability.md names tests that do not exist: " + ", ".join(missing)


def test_every_guarantee_names_a_test():
    text = DOC.read_text(encoding="utf-8")
    assert UNCOVERED in text
    items = _items(text)
    assert len(items) >= 20
    bare = [item.strip()[:80] for item in items if not REF.search(item)]
    assert not bare, "guarantees in docs/reliability.md without a test: " + " | ".join(bare)
