"""The main job end to end on the embedded defaults (``make demo``).

1. initialise the registry (SQLite file + DVC-tracked store under ``$AUTORATER_HOME``);
2. register every dataset of the source catalog found in the data root (``../shared/data``);
3. register it all again: nothing new (content-addressed, idempotent);
4. edit one example in a copy of LLMBar Natural and register it: version 2, whose row diff
   names exactly that example;
5. create the baseline evaluators (seeded random, always first/second, longer, shorter, and the
   untrained MiniLM scorer) and run them on LLMBar Natural, a pointwise and a classification set;
6. import the real GPT-4 and ChatGPT verdicts shipped with LLMBar and PandaLM's predictions;
7. print leaderboards and the best evaluator with the ones statistically tied with it;
8. push the store to the DVC remote.

Each step drives the real ``autorater`` CLI, as a user would.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from typer.testing import CliRunner

from registry.cli.main import app
from registry.config import Settings


def _run(runner: CliRunner, *args: str) -> str:
    print(f"\n$ autorater {' '.join(args)}", flush=True)
    result = runner.invoke(app, list(args), catch_exceptions=False)
    sys.stdout.write(result.stdout)
    if result.exit_code != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(result.exit_code)
    return result.stdout


def main() -> None:
    os.environ.setdefault("AUTORATER_HOME", ".autorater/demo")
    settings = Settings.from_env()
    if settings.data_root is None:
        raise SystemExit("no data root: set AUTORATER_DATA to the folder of public human-judgment data")
    runner = CliRunner()
    _run(runner, "init")
    _run(runner, "sources", "list")
    _run(runner, "dataset", "register-all", "--data", str(settings.data_root))
    again = json.loads(_run(runner, "dataset", "register-all", "--json"))
    assert not again["registered"], "a second register-all must register nothing new"

    natural = settings.data_root / "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/dataset.json"
    rows = json.loads(natural.read_text())
    rows[0]["output_1"] += " (edited by the demo)"
    with tempfile.TemporaryDirectory() as tmp:
        edited = Path(tmp) / "dataset.json"
        edited.write_text(json.dumps(rows))
        out = json.loads(_run(runner, "dataset", "register", "llmbar-natural", "--source", "llmbar",
                              "--path", str(edited), "--json"))
    _run(runner, "dataset", "diff", f"llmbar-natural@{out['version'] - 1}", f"llmbar-natural@{out['version']}")
    _run(runner, "dataset", "list")
    _run(runner, "dataset", "show", "pandalm-test")

    _run(runner, "evaluator", "create", "--baselines")
    for evaluator in ("random", "always-first", "longer", "shorter", "minilm-untrained"):
        _run(runner, "eval", "run", "--evaluator", evaluator, "--dataset", "llmbar-natural")
    for evaluator in ("random", "longer"):
        _run(runner, "eval", "run", "--evaluator", evaluator, "--dataset", "summeval-coherence")
    for evaluator in ("random", "always-first"):
        _run(runner, "eval", "run", "--evaluator", evaluator, "--dataset", "summac-factcc")
    judges = settings.data_root / "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/evaluators"
    for judge in ("GPT-4", "ChatGPT"):
        for protocol in ("Vanilla", "CoT", "Swap", "Metrics_Reference"):
            _run(runner, "eval", "import", str(judges / judge / protocol / "result.json"), "--format", "llmbar",
                 "--dataset", "llmbar-natural", "--evaluator", f"{judge.lower()}/llmbar-{protocol.lower()}")
    panda = settings.data_root / "WeOpenML__PandaLM/data"
    for name in ("gpt-3.5-turbo", "pandalm-7b"):
        _run(runner, "eval", "import", str(panda / f"{name}-testset-v1.json"), "--format", "pandalm",
             "--dataset", "pandalm-test", "--evaluator", f"{name}/pandalm")
    _run(runner, "leaderboard", "--dataset", "llmbar-natural")
    _run(runner, "leaderboard", "--dataset", "summeval-coherence")
    _run(runner, "best", "--dataset", "pandalm-test")
    _run(runner, "best", "--task-type", "pairwise")
    _run(runner, "store", "push")
    print(f"\ndemo done: registry {settings.db_url}, store {settings.store}")


if __name__ == "__main__":
    main()
