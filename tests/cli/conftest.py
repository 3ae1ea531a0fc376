"""Fixtures of the CLI tests: a small registry built from files written in the test (no real data
needed), with evaluators whose names share a long prefix."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

#: Two evaluator names that read the same when cut at 80 columns (defect 13 of issue 11).
LONG_A = "tiny-judge@1/pairwise-cot-with-a-long-suffix-a"
LONG_B = "tiny-judge@1/pairwise-cot-with-a-long-suffix-b"

PREFS = [
    {"id": "q1", "prompt": "Name a prime number.", "first": "7", "second": "a banana", "winner": "A"},
    {"id": "q2", "prompt": "What is 2 + 2?", "first": "five", "second": "4", "winner": "B"},
    {"id": "q3", "prompt": "Capital of France?", "first": "Paris", "second": "Lyon is the capital city", "winner": "A"},
    {"id": "q4", "prompt": "Opposite of hot?", "first": "warm-ish", "second": "cold", "winner": "B"},
]


def write_prefs_csv(path: Path, rows: list[dict] = PREFS) -> Path:
    """A small pairwise preference file in a user's own column names (for ``--source generic``)."""
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


GENERIC_MAP = ("--map", "example_id=id", "--map", "instruction=prompt", "--map", "response_a=first",
               "--map", "response_b=second", "--map", "label=winner")


def register_prefs(reg, tmp_path: Path, name: str = "my-prefs"):
    """Register the preference file as dataset ``name`` through the service (generic adapter)."""
    from registry.services.datasets import register_dataset_version

    mapping = dict(pair.split("=") for pair in GENERIC_MAP[1::2])
    return register_dataset_version(reg, name=name, source="generic", path=write_prefs_csv(tmp_path / "prefs.csv"),
                                    task_type="pairwise", options={"mapping": mapping}).version


@pytest.fixture
def runs_registry(sqlite_registry, tmp_path):
    """A registry with the preference set registered and three runs on it, oldest first:
    ``always-first``, ``LONG_A`` (prefers the longer response) and ``LONG_B`` (the shorter)."""
    from registry.services.evaluation import run_evaluation
    from registry.services.evaluators import create_evaluator, register_checkpoint

    reg = sqlite_registry
    register_prefs(reg, tmp_path)
    for kind, name in (("always-first", "always-first"), ("longer", LONG_A), ("shorter", LONG_B)):
        ckpt, _ = register_checkpoint(reg, kind, kind=kind)
        create_evaluator(reg, checkpoint=ckpt.ref, protocol="score-both-orders", name=name)
    for name in ("always-first", LONG_A, LONG_B):
        run_evaluation(reg, name, "my-prefs", n_boot=50)
    return reg


@pytest.fixture
def cli_at(monkeypatch):
    """``cli_at(reg)`` → a function running ``autorater ARGS`` in-process against registry ``reg``
    on an 80-column terminal (``COLUMNS=80``; the shared rich console is set to that width too,
    since rich reads ``COLUMNS`` only when a console is created)."""
    from typer.testing import CliRunner

    from registry.cli import common
    from registry.cli.main import app
    from tests.conftest import point_env_at

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(common.console, "width", 80)

    def bind(reg):
        point_env_at(monkeypatch, reg.settings)
        runner = CliRunner()

        def run(*args):
            return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

        return run

    return bind


def column_text(output: str, header: str) -> str:
    """Every line of a rendered rich table's column ``header`` joined, with the cell padding
    removed: a value folded over several lines reads whole again, a value cut to an ellipsis
    does not."""
    lines = output.splitlines()
    head = next(i for i, line in enumerate(lines)
                if line.startswith("┃") and header in [c.strip() for c in line.split("┃")])
    index = [c.strip() for c in lines[head].split("┃")].index(header)
    cells = [line.split("│")[index].strip() for line in lines[head + 1:] if line.startswith("│")]
    return "".join(cells)
