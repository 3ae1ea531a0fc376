"""Start-up time of the light CLI commands (what a user waits for before the first line).

    .venv/bin/python -m bench.cli_start --setup          # build the small bench registry once
    .venv/bin/python -m bench.cli_start [--repeat 5]     # time each light command

Each command runs as a fresh process (``python -m registry.cli.main ARGS``, what the ``autorater``
console script runs) against a small SQLite registry under ``--home`` (default
``.autorater/bench-cli``): LLMBar Natural registered, four baseline evaluators run on it and the
GPT-4 / ChatGPT Vanilla and CoT verdicts imported (8 runs). Printed per command: the median wall
time of ``--repeat`` runs and the 1-minute load average beside it (the machine may be shared;
a loaded machine makes every number larger). Data root: ``$AUTORATER_DATA`` or ``../shared/data``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATASET = "llmbar-natural"
LIGHT = (
    ("--help",),
    ("dataset", "list"),
    ("eval", "show", "1"),
    ("eval", "list"),
    ("leaderboard", "--dataset", DATASET),
    ("best", "--dataset", DATASET),
)


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ, AUTORATER_HOME=str(home), DVC_NO_ANALYTICS="1", HF_HUB_OFFLINE="1",
               OMP_NUM_THREADS="1", COLUMNS="120")
    for var in ("AUTORATER_DB_URL", "AUTORATER_STORE", "AUTORATER_DVC_REMOTE"):
        env.pop(var, None)
    return env


def autorater(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``autorater ARGS`` in a fresh process against the registry at ``home``."""
    return subprocess.run([sys.executable, "-m", "registry.cli.main", *args], env=_env(home), cwd=PROJECT_ROOT,
                          capture_output=True, text=True, check=check)


def setup(home: Path) -> None:
    """The small bench registry: one dataset, 4 baseline runs, 4 imported runs."""
    data = Path(os.environ.get("AUTORATER_DATA") or PROJECT_ROOT.parent / "shared" / "data")
    llmbar = data / "princeton-nlp__LLMBar/Dataset/LLMBar/Natural"
    autorater(home, "init")
    autorater(home, "dataset", "register", DATASET, "--source", "llmbar", "--path", str(llmbar / "dataset.json"))
    autorater(home, "evaluator", "create", "--baselines")
    for evaluator in ("random", "always-first", "longer", "shorter"):
        autorater(home, "eval", "run", "--evaluator", evaluator, "--dataset", DATASET)
    for judge in ("GPT-4", "ChatGPT"):
        for protocol in ("Vanilla", "CoT"):
            autorater(home, "eval", "import", str(llmbar / "evaluators" / judge / protocol / "result.json"),
                      "--format", "llmbar", "--dataset", DATASET,
                      "--evaluator", f"{judge.lower()}/llmbar-{protocol.lower()}")


def time_command(home: Path, args: tuple[str, ...], repeat: int) -> tuple[float, float, int]:
    """(median wall seconds, 1-minute load average before the runs, exit code of the last run)."""
    load = os.getloadavg()[0]
    walls, rc = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        rc = autorater(home, *args, check=False).returncode
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls), load, rc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=PROJECT_ROOT / ".autorater" / "bench-cli")
    parser.add_argument("--setup", action="store_true", help="Build the bench registry (once) and exit.")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    home = args.home.resolve()
    if args.setup:
        setup(home)
        print(f"bench registry ready at {home}")
        return
    if not (home / "registry.db").exists():
        raise SystemExit(f"no bench registry at {home}: run `python -m bench.cli_start --setup` first")
    print(f"| command | median wall s (of {args.repeat}) | load avg (1 min) | exit |")
    print("|---|---:|---:|---:|")
    for command in LIGHT:
        wall, load, rc = time_command(home, command, args.repeat)
        print(f"| `autorater {' '.join(command)}` | {wall:.2f} | {load:.2f} | {rc} |", flush=True)


if __name__ == "__main__":
    main()
