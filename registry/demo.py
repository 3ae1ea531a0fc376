"""The main job end to end on the embedded defaults (``make demo``).

1. initialise the registry (SQLite file + DVC-tracked store under ``$AUTORATER_HOME``);
2. register every dataset of the source catalog found in the data root (``../shared/data``);
3. register it all again: nothing new (content-addressed, idempotent);
4. edit one example in a copy of LLMBar Natural and register it: version 2, whose row diff
   names exactly that example;
5. create the baseline evaluators (seeded random, always first/second, longer, shorter, and the
   untrained MiniLM scorer) and run them on LLMBar Natural, a pointwise and a classification set;
6. import the real GPT-4 and ChatGPT verdicts shipped with LLMBar and PandaLM's predictions;
7. print leaderboards and the best evaluator with the ones statistically tied with it; judge
   analytics: bias columns, a perturbation probe and robustness, a jury, selective evaluation,
   a prediction-powered estimate, the imported LLMs' protocols compared (ranks after step 10);
8. train a MiniLM autorater FLAMe-style on a small mixture (LLMBar Natural held out), evaluate it
   (the run is checked for regressions) and try to promote it to ``champion``;
9. build a tiny generative judge and run a two-protocol matrix with it on LLMBar Adversarial Manual,
   fine-tune it with LoRA on a three-task mixture and judge the same set with both;
10. run the ``meta_evaluate`` Prefect flow over the missing pairs of two datasets;
11. push the store to the DVC remote;
12. write the self-contained HTML report of the registry (``$AUTORATER_HOME/report.html``) and print
    the one command that opens the web app on it.

Each step drives the real ``autorater`` CLI, as a user would.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

from typer.testing import CliRunner

from registry.cli.main import app
from registry.config import Settings


PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _run(runner: CliRunner, *args: str, allow_exit: tuple[int, ...] = (0,)) -> str:
    """Run ``autorater ARGS`` and echo it; an exit code not in ``allow_exit`` stops the demo
    (``checkpoint promote`` exits 1 when it refuses, ``eval matrix`` when a cell fails)."""
    print(f"\n$ autorater {' '.join(args)}", flush=True)
    result = runner.invoke(app, list(args), catch_exceptions=False)
    sys.stdout.write(result.stdout)
    if result.exit_code not in allow_exit:
        sys.stderr.write(result.stderr)
        raise SystemExit(result.exit_code)
    return result.stdout


def report_and_ui(runner: CliRunner, settings: Settings) -> tuple[Path, str]:
    """The demo's last step: ``autorater report`` of the registry it built (``report.html`` in its
    home) and the one command that opens the web app on that registry; returns both."""
    out = settings.home / "report.html"
    _run(runner, "report", "--out", str(out))
    env = [f"AUTORATER_HOME={shlex.quote(str(settings.home))}"]
    env += [f"{k}={shlex.quote(os.environ[k])}" for k in ("AUTORATER_DB_URL", "AUTORATER_STORE") if os.environ.get(k)]
    exe = Path(sys.executable).parent / "autorater"  # the venv's script: works without activating it
    program = "autorater"
    if exe.is_file():
        program = str(exe.relative_to(Path.cwd()) if exe.is_relative_to(Path.cwd()) else exe)
    command = f"{' '.join(env)} {shlex.quote(program)} ui"
    print(f"\nreport: {out} (one file, no network needed: open it in a browser or attach it)")
    print(f"web app on this registry: {command}   # then open http://127.0.0.1:8080/", flush=True)
    return out, command


def main() -> None:
    os.environ.setdefault("AUTORATER_HOME", ".autorater/demo")
    settings = Settings.from_env()
    # Prefect keeps its state (the temporary server's database) beside the registry's
    os.environ.setdefault("PREFECT_HOME", str(settings.home / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
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
    _run(runner, "leaderboard", "--dataset", "llmbar-natural",   # with the bias diagnostics (issue 15)
         "--columns", "flip_rate,lc_accuracy,prob_prefer_first,prob_prefer_longer_human_shorter")
    _run(runner, "leaderboard", "--dataset", "summeval-coherence")
    _run(runner, "best", "--dataset", "pandalm-test")
    _run(runner, "best", "--task-type", "pairwise")

    # Judge analytics: bias diagnostics stored with every pairwise run, a perturbation probe and the
    # judges' robustness to it, a jury of the imported judges, selective evaluation with a guarantee,
    # a prediction-powered estimate, and the protocols of the imported LLMs compared
    natural_ref = f"llmbar-natural@{out['version']}"
    _run(runner, "leaderboard", "--dataset", "llmbar-natural", "--columns",
         "flip_rate,prob_prefer_longer,lc_accuracy,parse_failure_rate")
    _run(runner, "dataset", "derive", "llmbar-natural-pad-worse", "--from", natural_ref, "--transform", "pad-worse")
    for evaluator in ("longer", "shorter", "random"):
        _run(runner, "eval", "run", "--evaluator", evaluator, "--dataset", "llmbar-natural-pad-worse")
    _run(runner, "analyze", "robustness", "--evaluator", "longer", "--evaluator", "shorter", "--evaluator", "random",
         "--parent", natural_ref, "--probe", "llmbar-natural-pad-worse")
    _run(runner, "evaluator", "create", "--jury", "gpt-4/llmbar-vanilla,gpt-4/llmbar-cot,chatgpt/llmbar-vanilla",
         "--combine", "majority", "--name", "demo-jury")
    _run(runner, "eval", "run", "--evaluator", "demo-jury", "--dataset", "llmbar-natural")
    _run(runner, "analyze", "jury", "--dataset", "llmbar-natural", "--max-size", "3")
    _run(runner, "analyze", "selective", "--evaluator", "gpt-4/llmbar-vanilla", "--dataset", "llmbar-natural",
         "--target", "0.9", "--delta", "0.1")
    _run(runner, "analyze", "ppi", "--evaluator", "gpt-4/llmbar-vanilla", "--dataset", "llmbar-natural",
         "--human-labels", "30")
    _run(runner, "analyze", "protocols", "--base", "llmbar-vanilla")

    # Training (FLAMe-style, frozen encoder: minutes on a CPU), regression checks, the champion alias
    mixture = PROJECT_ROOT / "mixtures" / "pairwise-small.yaml"
    trained = json.loads(_run(runner, "train", "run", "--mixture", str(mixture), "--autorater", "minilm-demo",
                              "--train-layers", "0", "--epochs", "3", "--batch-size", "32", "--head-lr", "2e-3",
                              "--json"))
    ref = trained["checkpoint"]
    _run(runner, "evaluator", "create", "--checkpoint", ref, "--protocol", "score-single-order",
         "--name", "minilm-demo")
    _run(runner, "eval", "run", "--evaluator", "minilm-demo", "--dataset", "llmbar-natural")
    _run(runner, "checkpoint", "promote", ref, allow_exit=(0, 1))
    _run(runner, "regressions", "list")

    # A generative judge: a tiny random-init chat model built here, under two ReIFE protocols
    with tempfile.TemporaryDirectory() as tmp:
        from registry.adapters.backends.tiny import build_tiny_causal_lm

        model = build_tiny_causal_lm(Path(tmp) / "tiny-judge", hidden_size=128, layers=4)
        _run(runner, "checkpoint", "register", "tiny-judge", "--kind", "llm-judge", "--path", str(model))
    _run(runner, "eval", "matrix", "--checkpoints", "tiny-judge@1", "--protocols", "pairwise-base,pairwise-cot",
         "--datasets", "llmbar-adversarial-manual", "--max-tokens", "8", allow_exit=(0, 1))
    # ... fine-tuned with LoRA on the protocols' prompts (a minute on a CPU), then judged beside its base:
    # the random base writes nothing the parser reads, the trained judge answers "A" or "B"
    lora = json.loads(_run(runner, "train", "lora", "--base", "tiny-judge@1", "--mixture",
                           str(PROJECT_ROOT / "mixtures" / "judge-tiny.yaml"), "--autorater", "tiny-judge-lora",
                           "--epochs", "20", "--lr", "5e-3", "--max-length", "192",
                           "--target-modules", "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj,lm_head",
                           "--json"))
    _run(runner, "eval", "matrix", "--checkpoints", f"tiny-judge@1,{lora['checkpoint']}", "--protocols",
         "pairwise-base", "--datasets", "llmbar-adversarial-manual", "--max-tokens", "6", allow_exit=(0, 1))

    # Continuous meta-evaluation: one Prefect flow run over the missing pairs of two datasets
    from flows import meta_evaluate

    meta_evaluate(datasets=["llmbar-adversarial-gptout", "llmbar-adversarial-manual"])
    _run(runner, "leaderboard", "--dataset", "llmbar-adversarial-gptout")
    _run(runner, "analyze", "ranks", "--datasets",
         "llmbar-natural,llmbar-adversarial-gptout,llmbar-adversarial-manual")
    _run(runner, "store", "push")
    print(f"\ndemo done: registry {settings.db_url}, store {settings.store}")
    report_and_ui(runner, settings)


if __name__ == "__main__":
    main()
