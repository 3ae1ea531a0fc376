"""Start-up time of the light CLI commands (what a user waits for before the first line).

    .venv/bin/python -m bench.cli_start --setup          # build the small bench registry once
    .venv/bin/python -m bench.cli_start [--repeat 5]     # time each light command

Each command runs as a fresh process (``python -m registry.cli.main ARGS``, what the ``autorater``
console script runs) against a small SQLite registry under ``--home`` (default
``.autorater/bench-cli``): LLMBar Natural registered, four baseline evaluators run on it and the
GPT-4 / ChatGPT Vanilla and CoT verdicts imported (8 runs). Printed per command: the median wall
time of ``--repeat`` runs and the 1-minute load average beside it (the machine may be shared;
a loaded machine makes every number larger), twice:

* ``cached``: with Python's bytecode cache (a normal install; kept under ``--home``, one untimed
  warm-up run first);
* ``no cache``: with ``PYTHONDONTWRITEBYTECODE=1``, as some sandboxes run it — every project
  module is compiled from source at each start.

``--code DIR`` times another checkout of the project (e.g. a ``git worktree`` of an older commit)
against the same registry. Data root: ``$AUTORATER_DATA`` or ``../shared/data``.
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


def _env(home: Path, bytecode: bool) -> dict[str, str]:
    env = dict(os.environ, AUTORATER_HOME=str(home), DVC_NO_ANALYTICS="1", HF_HUB_OFFLINE="1",
               OMP_NUM_THREADS="1", COLUMNS="120")
    for var in ("AUTORATER_DB_URL", "AUTORATER_STORE", "AUTORATER_DVC_REMOTE", "PYTHONDONTWRITEBYTECODE",
                "PYTHONPYCACHEPREFIX"):
        env.pop(var, None)
    if bytecode:
        env["PYTHONPYCACHEPREFIX"] = str(home / "pycache")  # outside the source tree
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def autorater(home: Path, *args: str, check: bool = True, code: Path = PROJECT_ROOT,
              bytecode: bool = True) -> subprocess.CompletedProcess:
    """Run ``autorater ARGS`` in a fresh process (the project checkout ``code`` first on the
    path) against the registry at ``home``."""
    return subprocess.run([sys.executable, "-m", "registry.cli.main", *args], env=_env(home, bytecode), cwd=code,
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


def time_command(home: Path, args: tuple[str, ...], repeat: int, code: Path,
                 bytecode: bool) -> tuple[float, float, int]:
    """(median wall seconds, 1-minute load average before the runs, exit code of the last run)."""
    if bytecode:
        autorater(home, *args, check=False, code=code, bytecode=True)  # warm-up: writes the bytecode cache
    load = os.getloadavg()[0]
    walls, rc = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        rc = autorater(home, *args, check=False, code=code, bytecode=bytecode).returncode
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls), load, rc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=PROJECT_ROOT / ".autorater" / "bench-cli")
    parser.add_argument("--setup", action="store_true", help="Build the bench registry (once) and exit.")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--code", type=Path, default=PROJECT_ROOT, help="Project checkout whose code runs.")
    args = parser.parse_args()
    home = args.home.resolve()
    if args.setup:
        setup(home)
        print(f"bench registry ready at {home}")
        return
    if not (home / "registry.db").exists():
        raise SystemExit(f"no bench registry at {home}: run `python -m bench.cli_start --setup` first")
    code = args.code.resolve()
    print(f"code: {code}; median wall s of {args.repeat} fresh processes; load: 1-minute load average")
    print("| command | cached s | load | no cache s | load | exit |")
    print("|---|---:|---:|---:|---:|---:|")
    for command in LIGHT:
        cached, load_c, rc_c = time_command(home, command, args.repeat, code, bytecode=True)
        plain, load_p, rc_p = time_command(home, command, args.repeat, code, bytecode=False)
        print(f"| `autorater {' '.join(command)}` | {cached:.2f} | {load_c:.2f} | {plain:.2f} | {load_p:.2f} | "
              f"{rc_c if rc_c else rc_p} |", flush=True)


if __name__ == "__main__":
    main()
