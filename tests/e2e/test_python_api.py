"""The Python API (:mod:`registry.api`) is what the README shows and what the CLI prints: the
README's "Python API" snippet runs as written against a throw-away registry on the real
LLMBar-Natural data, its results have their types, and each one's ``to_dict()`` is the ``--json``
output of the same command."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

import registry
from registry.cli.main import app
from tests.conftest import PROJECT_ROOT

NATURAL_GPT4 = "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/evaluators/GPT-4/Vanilla/result.json"


def readme_snippet() -> str:
    """The first ``python`` block of the README's "Python API" section."""
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def snippet(tmp_path_factory, data_root):
    """The README snippet run in a fresh registry home (``AUTORATER_*`` pointing there, the real data
    as the data root): its variables, what it printed, and the environment the CLI then uses."""
    home = tmp_path_factory.mktemp("api") / "home"
    with pytest.MonkeyPatch.context() as mp:
        for var in ("AUTORATER_DB_URL", "AUTORATER_STORE", "AUTORATER_DVC_REMOTE"):
            mp.delenv(var, raising=False)
        mp.setenv("AUTORATER_HOME", str(home))
        mp.setenv("AUTORATER_DATA", str(data_root))
        namespace: dict = {}
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(readme_snippet(), "README.md#python-api", "exec"), namespace)  # noqa: S102
        yield namespace, printed.getvalue(), mp


def cli_json(*args: object):
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_snippet_ran_and_printed_the_best_evaluator(snippet):
    ns, printed, _ = snippet
    assert ns["board"].best.evaluator in printed
    lines = printed.splitlines()
    assert f"{ns['board'].best.evaluator} {ns['board'].best.value} []" in lines
    assert f"{ns['comparison'].metric} {ns['comparison'].paired_bootstrap['p_value']}" in lines


def test_the_snippet_returns_typed_frozen_results(snippet):
    ns, _, _ = snippet
    assert [d.name for d in ns["pairwise"]] == ["llmbar-natural"]
    assert all(isinstance(d, registry.DatasetSummary) for d in ns["pairwise"])
    assert {e.name for e in ns["baselines"]} >= {"longer", "random", "minilm-untrained"}
    assert all(isinstance(e, registry.Evaluator) for e in ns["baselines"])
    assert isinstance(ns["run"], registry.EvaluationRun) and ns["run"].status == "succeeded"
    assert isinstance(ns["gpt4"], registry.EvaluationRun) and ns["gpt4"].evaluator == "gpt-4/llmbar-vanilla"
    assert isinstance(ns["board"], registry.Ranking) and isinstance(ns["best"], registry.Ranking)
    assert {s.evaluator for s in ns["board"].standings} >= {"longer", "gpt-4/llmbar-vanilla"}
    assert isinstance(ns["comparison"], registry.Comparison) and ns["comparison"].n_shared > 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        ns["run"].status = "failed"


def test_to_dict_is_the_cli_json_of_the_same_call(snippet, data_root):
    ns, _, _ = snippet
    run, gpt4 = ns["run"], ns["gpt4"]
    assert [d.to_dict() for d in ns["pairwise"]] == cli_json("dataset", "list", "--task-type", "pairwise", "--json")
    assert [e.to_dict() for e in ns["baselines"]] == cli_json("evaluator", "create", "--baselines", "--json")
    assert run.to_dict() == cli_json("eval", "show", run.id, "--json")
    with registry.open() as reg:  # an import again returns the stored run (the first one's times carry a zone)
        again = reg.import_predictions("llmbar", data_root / NATURAL_GPT4, "llmbar-natural",
                                       evaluator="gpt-4/llmbar-vanilla")
    assert again.id == gpt4.id
    assert again.to_dict() == cli_json("eval", "import", data_root / NATURAL_GPT4, "--format", "llmbar", "--dataset",
                                       "llmbar-natural", "--evaluator", "gpt-4/llmbar-vanilla", "--json")
    assert ns["board"].to_dict() == cli_json("leaderboard", "--dataset", "llmbar-natural", "--json")
    assert ns["best"].to_dict() == cli_json("best", "--task-type", "pairwise", "--json")
    assert ns["comparison"].to_dict() == cli_json("eval", "compare", run.id, gpt4.id, "--json")
    assert ns["board"].to_dict()["tied_with_best"] == [s.evaluator for s in ns["board"].tied]


def test_more_calls_agree_with_the_cli(snippet):
    ns, _, _ = snippet
    with registry.open() as reg:
        again = reg.register_all(only=["llmbar-natural"])
        assert again.to_dict() == cli_json("dataset", "register-all", "--only", "llmbar-natural", "--json")
        assert again.to_dict()["unchanged"] == ["llmbar-natural@1"] and not again.registered
        assert reg.dataset("llmbar-natural").to_dict() == cli_json("dataset", "show", "llmbar-natural", "--json")
        same = reg.diff("llmbar-natural@1", "llmbar-natural")
        assert same.rows.unchanged == ns["pairwise"][0].rows and not same.rows.changed
        assert same.to_dict() == cli_json("dataset", "diff", "llmbar-natural@1", "llmbar-natural", "--json")
        assert [r.to_dict() for r in reg.runs()] == cli_json("eval", "list", "--json")
        assert reg.runs(evaluator="longer")[0].id == ns["run"].id
        assert [c.to_dict() for c in reg.checkpoints()] == cli_json("checkpoint", "list", "--json")
        assert [p.to_dict() for p in reg.protocols()] == cli_json("protocol", "list", "--json")
        assert [m.to_dict() for m in reg.metrics("pairwise")] == cli_json("metrics", "list", "-t", "pairwise", "--json")
        assert [s.to_dict() for s in reg.sources()] == cli_json("sources", "list", "--json")
        assert reg.detect_regressions(ns["run"].id).to_dict() == cli_json("regressions", "detect", ns["run"].id, "--json")
        made = reg.create_evaluator(checkpoint="longer@1", protocol="score-single-order", name="longer-one-order")
        assert isinstance(made, registry.Registered) and made.created and made.entity.name == "longer-one-order"
        assert cli_json("evaluator", "create", "--checkpoint", "longer@1", "--protocol", "score-single-order",
                        "--json") == {**made.to_dict(), "created": False}
        rows = reg.load_table("llmbar-natural")
        assert rows.num_rows == ns["pairwise"][0].rows
    assert registry.schema_revision().to_dict() == cli_json("db", "current", "--json")


def test_errors_are_registry_errors(snippet, tmp_path):
    with registry.open() as reg:
        with pytest.raises(registry.NotFound, match="nope"):
            reg.leaderboard("nope")
        with pytest.raises(registry.InvalidInput):
            reg.best(task_type="pairwise", coverage="most")
    with pytest.raises(registry.RegistryError, match="autorater init"):
        registry.open(f"sqlite:///{tmp_path / 'empty.db'}", home=tmp_path)


def test_print_json_writes_what_it_wrote_before():
    """The CLI's JSON comes from :func:`~registry.domain.serialization.to_jsonable` now; it writes what
    ``json.dumps(default=…)`` with ``dataclasses.asdict`` wrote before (dates, tuples, paths, sets,
    non-text keys, unknown objects)."""
    from registry.cli.common import print_json

    def before(o):
        if dataclasses.is_dataclass(o):
            return dataclasses.asdict(o)
        if isinstance(o, datetime):
            return o.isoformat()
        if isinstance(o, (Path, set)):
            return str(o) if isinstance(o, Path) else sorted(o)
        if isinstance(o, tuple):
            return list(o)
        return str(o)

    when = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    run = registry.EvaluationRun(
        id=1, evaluator="e", dataset="d@1", status="succeeded", started_at=when, finished_at=None, seconds=1.5,
        n_examples=2, n_judgments=4, n_executed=4, n_cached=0, prompt_tokens=0, completion_tokens=0, cost_usd=None,
        seed=0, predictions_uri=None, predictions_sha256=None, error=None,
        provenance={"files": (Path("/x/a.json"),), "labels": {"B", "A"}, 1: True, "when": when, "obj": object},
        metrics=(registry.MetricRecord("accuracy", 0.5, 0.25, 0.75, 2, extra={"k": (1, 2)}),))
    data = [run, {"p": Path("out.csv"), "t": (1, "a"), None: 2.5}]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_json(data)
    assert out.getvalue() == json.dumps(data, default=before, indent=2, ensure_ascii=False) + "\n"
    assert json.loads(json.dumps(data[0], default=before)) == run.to_dict()


def test_import_registry_is_light_and_exports_its_api():
    code = ("import sys, registry; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'pandas', 'pyarrow', 'sqlalchemy', "
            "'scipy', 'torch', 'great_expectations', 'dvc', 'prefect', 'typer', 'rich'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    assert out.stdout.strip() == "[]"
    missing = [n for n in registry.__all__ if not hasattr(registry, n)]
    assert missing == []
    for name in ("Registry", "open", "init", "Ranking", "Comparison", "BatchItem", "MatrixResult", "Registration",
                 "Registered", "DatasetVersion", "EvaluationRun"):
        assert name in registry.__all__
    results = [getattr(registry, n) for n in registry.__all__ if n != "Settings"
               and isinstance(getattr(registry, n), type) and dataclasses.is_dataclass(getattr(registry, n))]
    assert len(results) > 30
    no_to_dict = [t.__name__ for t in results if not callable(getattr(t, "to_dict", None))]
    assert no_to_dict == []
