"""How many generated inputs the fuzz tests tried, printed at the end of the run.

Each fuzz test adds to :data:`TRIED` (target → inputs). The total is written in the terminal summary
("fuzz: N generated inputs tried ..."), also under pytest-xdist: every worker hands its counts to the
controller (``workeroutput``), which adds them up. The hooks are imported by ``tests/conftest.py``
(the controller of an xdist run loads only that conftest), so they run once per session.
"""

from __future__ import annotations

from collections import Counter

import pytest

TRIED: Counter[str] = Counter()
"""Inputs tried per target (``sources/llmbar``, ``imports/mapped``, ``evaluators``, ``cli`` ...)."""
ACCEPTED: Counter[str] = Counter()
"""Of which accepted (valid inputs, registered / imported / created)."""
SECONDS: Counter[str] = Counter()
"""CPU seconds of the fuzz tests (this process's, per test)."""

_KEY = "autorater_fuzz_tried"


def count(target: str, n: int = 1) -> None:
    """One more input (``n`` more) tried on ``target``."""
    TRIED[target] += n


def accepted(target: str) -> None:
    """The last input tried on ``target`` was accepted."""
    ACCEPTED[target] += 1


def pytest_sessionfinish(session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the counts to the controller
        workeroutput[_KEY] = {"tried": dict(TRIED), "accepted": dict(ACCEPTED), "seconds": dict(SECONDS)}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """(xdist controller) a worker finished: add its counts."""
    counts = getattr(node, "workeroutput", {}).get(_KEY, {})
    TRIED.update(counts.get("tried", {}))
    ACCEPTED.update(counts.get("accepted", {}))
    SECONDS.update(counts.get("seconds", {}))


def pytest_terminal_summary(terminalreporter) -> None:
    if not TRIED or hasattr(terminalreporter.config, "workeroutput"):
        return
    total = sum(TRIED.values())
    by_kind: Counter[str] = Counter()
    for target, n in TRIED.items():
        by_kind[target.split("/")[0]] += n
    parts = ", ".join(f"{kind} {n:,}" for kind, n in sorted(by_kind.items()))
    terminalreporter.write_line(f"fuzz: {total:,} generated inputs tried ({parts}); {sum(ACCEPTED.values()):,} "
                                f"were valid and accepted, the others refused; {sum(SECONDS.values()):,.0f} CPU "
                                "seconds")
