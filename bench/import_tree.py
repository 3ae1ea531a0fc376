"""Batch import benchmark: `autorater eval import-tree` on the whole LLMBar tree in one process,
against single `autorater eval import` CLI calls (one process start-up per file), in the same run.

    .venv/bin/python -m bench.import_tree                 # all result files; 20 single CLI calls
    .venv/bin/python -m bench.import_tree --single 147    # time a single CLI call for every file

1. A throw-away registry (SQLite + DVC store under a temporary folder) with the 8 LLMBar sets
   registered (`register_all(only=…)`, not timed).
2. Batch: `autorater eval import-tree <data>/princeton-nlp__LLMBar --json` as ONE subprocess; every
   GPT-4 / ChatGPT `result.json` is matched to its dataset and imported (147 files). Timed end to end
   (interpreter start-up included).
3. Single: into a second, identical registry, `autorater eval import FILE --format llmbar --dataset D
   --evaluator E --json` as one subprocess per file, for the first `--single` files (spread over all
   sets); the sum over all files is the mean per file × the number of files (the work per file is the
   same kind) unless `--single` covers every file, in which case it is measured.

Both paths compute the same metrics (1,000 bootstrap resamples) and store the same predictions. The
load average is printed beside the timings (rule: run benchmarks alone).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.metaeval import PROJECT_ROOT, data_root
SETS = {  # registry name → folder under princeton-nlp__LLMBar/Dataset
    "llmbar-natural": "LLMBar/Natural", "llmbar-adversarial-neighbor": "LLMBar/Adversarial/Neighbor",
    "llmbar-adversarial-gptinst": "LLMBar/Adversarial/GPTInst", "llmbar-adversarial-gptout": "LLMBar/Adversarial/GPTOut",
    "llmbar-adversarial-manual": "LLMBar/Adversarial/Manual", "mtbench-human": "Processed/MT-Bench",
    "faireval": "Processed/FairEval", "llmeval2": "Processed/LLMEval^2",
}


def make_registry(home: Path, data: Path) -> dict[str, str]:
    from registry.config import Settings
    from registry.services import datasets as svc
    from registry.services.app import init_registry

    settings = Settings.from_env(home=str(home), db_url=f"sqlite:///{home / 'registry.db'}", store=str(home / "store"),
                                 dvc_remote=str(home / "remote"), data_root=str(data))
    reg = init_registry(settings)
    svc.register_all(reg, data, only=set(SETS))
    reg.close()
    return {**os.environ, "AUTORATER_HOME": str(home), "AUTORATER_DB_URL": settings.db_url,
            "AUTORATER_STORE": str(settings.store), "AUTORATER_DVC_REMOTE": str(settings.dvc_remote)}


def autorater(env: dict[str, str], *args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    res = subprocess.run([str(PROJECT_ROOT / ".venv/bin/autorater"), *args], env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(f"autorater {' '.join(args)} failed ({res.returncode}): {res.stderr[-2000:]}")
    return dt, res.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--single", type=int, default=20, help="files to import with one CLI call each")
    args = ap.parse_args()
    data = data_root()
    tree = data / "princeton-nlp__LLMBar"
    files = sorted(p for p in tree.glob("**/evaluators/*/*/result.json"))
    folder_of = {f"{tree / 'Dataset' / folder}": name for name, folder in SETS.items()}
    with tempfile.TemporaryDirectory() as tmp:
        env_batch = make_registry(Path(tmp) / "batch", data)
        env_single = make_registry(Path(tmp) / "single", data)
        load0 = os.getloadavg()
        batch_s, out = autorater(env_batch, "eval", "import-tree", str(tree), "--json")
        items = json.loads(out)
        status = {s: sum(i["status"] == s for i in items) for s in ("imported", "unchanged", "skipped", "failed")}
        step = max(1, len(files) // max(1, args.single))
        sample = files[::step][: args.single]
        single = []
        for f in sample:
            dataset = folder_of[str(f.parent.parent.parent.parent)]
            evaluator = f"{f.parent.parent.name.lower()}/llmbar-{f.parent.name.lower()}"
            dt, _ = autorater(env_single, "eval", "import", str(f), "--format", "llmbar", "--dataset", dataset,
                              "--evaluator", evaluator, "--json")
            single.append(dt)
        load1 = os.getloadavg()
    per_file = sum(single) / len(single)
    total_single = sum(single) if len(sample) == len(files) else per_file * len(files)
    print(f"files: {len(files)}; batch statuses: {status}")
    print(f"batch `eval import-tree` (one process): {batch_s:.1f} s = {batch_s / len(files) * 1000:.0f} ms per file")
    print(f"single `eval import` CLI calls: {len(sample)} timed, mean {per_file:.2f} s per file "
          f"(min {min(single):.2f}, max {max(single):.2f}); sum over {len(files)} files "
          f"{'measured' if len(sample) == len(files) else 'extrapolated'}: {total_single:.1f} s")
    print(f"ratio single-sum / batch: {total_single / batch_s:.1f}x")
    print(f"load average before {load0[0]:.2f} / after {load1[0]:.2f} (1 min); cores {os.cpu_count()}")


if __name__ == "__main__":
    main()
