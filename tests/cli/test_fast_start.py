"""Fast start (issue 11): the light commands import no heavy library. Each command runs in a fresh
Python process against a small registry, which then reports the modules it loaded. Times are
measured by ``bench/cli_start.py`` (recorded in ``bench/RESULTS.md``), not asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.cli.conftest import GENERIC_MAP, LONG_A, write_prefs_csv

HEAVY = ("torch", "transformers", "sentence_transformers", "great_expectations", "prefect", "dvc", "datasets")
"""Imported only by the commands that use them (training, judging, validation, flows, the store)."""
SLOW = ("scipy", "pandas", "alembic")
"""A further quarter to half a second each: not needed by commands that only read the database."""

_DRIVER = """
import json, sys
from typer.testing import CliRunner
from registry.cli.main import app
result = CliRunner().invoke(app, sys.argv[1:])
watched = set(json.loads(sys.stdin.read()))
print(json.dumps({"exit_code": result.exit_code, "output": result.output[-2000:],
                  "loaded": sorted({m.split(".")[0] for m in sys.modules} & watched)}))
"""


def _loaded(reg, *args: str) -> list[str]:
    env = dict(os.environ, AUTORATER_HOME=str(reg.settings.home), AUTORATER_DB_URL=reg.settings.db_url,
               AUTORATER_STORE=str(reg.settings.store), AUTORATER_DVC_REMOTE=reg.settings.dvc_remote)
    proc = subprocess.run([sys.executable, "-c", _DRIVER, *args], input=json.dumps(HEAVY + SLOW), env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["exit_code"] == 0, report["output"]
    return report["loaded"]


@pytest.fixture
def light(runs_registry):
    run_id = runs_registry.store.list_runs(evaluator=LONG_A)[0].id
    return runs_registry, run_id


def test_light_commands_import_no_heavy_library(light):
    reg, run_id = light
    sql_only = (("--help",), ("dataset", "list"), ("dataset", "show", "my-prefs"), ("eval", "show", str(run_id)),
                ("eval", "list"))
    for args in sql_only:
        assert _loaded(reg, *args) == [], args
    for args in (("leaderboard", "--dataset", "my-prefs"), ("best", "--dataset", "my-prefs")):
        heavy = [m for m in _loaded(reg, *args) if m in HEAVY]
        assert heavy == [], args


def test_the_check_sees_a_heavy_import(light, tmp_path):
    """The check above can fail: registering a file validates it, which loads Great Expectations."""
    reg, _ = light
    prefs = write_prefs_csv(tmp_path / "more-prefs.csv")
    loaded = _loaded(reg, "dataset", "register", "more-prefs", "--source", "generic", "--path", str(prefs),
                     "--task-type", "pairwise", *GENERIC_MAP)
    assert "great_expectations" in loaded


def test_schema_fast_path_agrees_with_alembic():
    from registry.adapters.store import db
    from registry.adapters.store.sqlalchemy_store import head_from_files

    assert head_from_files() == db.head_revision()
