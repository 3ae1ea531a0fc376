"""Evaluation benchmark: a heuristic ``eval run`` and its fully cached re-run on N real pairs.

    .venv/bin/python -m bench.evaluate --pairs 50000
    .venv/bin/python -m bench.evaluate --pairs 1000000
    .venv/bin/python -m bench.evaluate --quick            # 5,000 pairs, a smoke check
    .venv/bin/python -m bench.evaluate --pairs 50000 --large-n 1000000000   # the bootstrap in index mode

1. Builds a pairwise Parquet file of N pairs from REAL rows — every LLMBar set and the PandaLM test
   set, read with the project's adapters (:func:`bench.ingest.real_rows`) — replicated with new
   unique example ids; replica r > 0 of a row also gets `` [r<r>]`` appended to its prompt, so its
   judge-visible input (and so its judgment cache key) is new: N pairs are 2N judgments to make,
   not a few thousand judged once and reused.
2. Registers it through the real service (``generic`` source, as ``bench.ingest`` does) into a
   fresh SQLite registry (not timed).
3. In a fresh subprocess each (imports not timed — pandas among them, which pyarrow imports lazily at
   the process's first ``pa.array()`` call, 0.2–0.45 s once per process; peak RSS is the child's own
   ``VmHWM``, see :func:`peak_rss_mib`):
   * **heuristic**: ``run_evaluation`` of a new ``random`` evaluator (a new seed: nothing cached),
     both orders — judgments/s = 2N / the call's wall time;
   * **cached**: the same evaluator again in a new process: every judgment comes from the cache, the
     inputs' hashes from the version's input sidecar (the texts are not read), and the metric records
     from the heuristic run (same predictions, seed and scoring: ``scores_reused_from``);
   * **parquet floor**: in the heuristic run's process, right after it, the time to write the very
     predictions table it produced with the store's Parquet options (``PARQUET_OPTIONS``), the
     cost any run pays to store its predictions; the run's time is given as a multiple of it.
4. Prints a table, and the goals — heuristic ≥ 200,000 judgments/s, cached ≥ 1,000,000/s, peak
   RSS ≤ ``AUTORATER_MEMORY_MB`` — as met or not, with the load average beside each timing (the
   machine may be shared).

Data root: ``$AUTORATER_DATA`` or ``../shared/data``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("DVC_NO_ANALYTICS", "1")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
GOAL_JUDGED, GOAL_CACHED = 200_000, 1_000_000


def _settings(home: Path, root: Path | None = None):
    from registry.config import Settings

    return Settings.from_env(home=str(home), db_url=f"sqlite:///{home / 'registry.db'}", store=str(home / "store"),
                             dvc_remote=str(home / "remote"), data_root=str(root) if root else None)


# ----------------------------------------------------------------------------- the dataset
def build_pairs(n: int, folder: Path) -> Path:
    """N pairs replicated from the real rows, each replica's prompt marked (module docstring)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from bench.ingest import data_root, real_rows

    rows = real_rows(data_root())
    base = len(rows)
    fields = ("prompt", "output_1", "output_2", "preference", "votes", "subset")
    table = pa.Table.from_pylist([{k: r.get(k) for k in fields} for r in rows])
    path = folder / f"pairs-{n}.parquet"
    step = 200_000
    with pq.ParquetWriter(path, table.schema.insert(0, pa.field("id", pa.string()))) as w:
        for start in range(0, n, step):
            idx = list(range(start, min(n, start + step)))
            part = table.take(pa.array([i % base for i in idx]))
            marks = pa.array(["" if i < base else f" [r{i // base}]" for i in idx])
            part = part.set_column(0, "prompt", pc.binary_join_element_wise(part.column("prompt"), marks, ""))
            ids = pa.array([f"{rows[i % base]['base_id']}:r{i // base}" for i in idx])
            w.write_table(part.add_column(0, "id", ids))
    return path


def register(home: Path, path: Path) -> dict[str, Any]:
    from bench.ingest import LABEL_MAP, MAPPING
    from registry.services.app import RegistryContext, init_registry
    from registry.services.datasets import register_dataset_version
    from registry.services.evaluators import ensure_baselines

    # `autorater init`, then `autorater dataset register`: the process that creates the store keeps the
    # DVC cache type it had before configuring it (copies); a later one hard-links, as users' do
    init_registry(_settings(home)).close()
    reg = RegistryContext.open(_settings(home))
    try:
        t = time.perf_counter()
        r = register_dataset_version(reg, name="bench-pairs", source="generic", path=path, task_type="pairwise",
                                     options={"mapping": MAPPING, "label_map": LABEL_MAP})
        seconds = time.perf_counter() - t
        ensure_baselines(reg, minilm=False)
        return {"rows": r.version.row_count, "seconds": seconds, "ref": r.version.ref}
    finally:
        reg.close()


# ----------------------------------------------------------------------------- one measurement
def peak_rss_mib() -> float:
    """This process's peak resident memory: ``VmHWM`` of ``/proc/self/status`` (Linux). Not
    ``ru_maxrss``: Linux carries it over fork and exec, so a child started by a parent holding 2 GiB
    (this script, after registering 1M rows) reports at least 2 GiB whatever it uses itself."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(home: Path, evaluator: str, seed: int, n_boot: int, floor: bool, chunk_rows: int | None = None,
          large_n: int | None = None) -> dict[str, Any]:
    """One ``run_evaluation`` in this (fresh) process; printed as JSON for the parent (``large_n``:
    the bootstrap's counts-mode threshold, :data:`registry.domain.metrics.bootstrap.LARGE_N`)."""
    import pandas  # noqa: F401 - an import like the others: pyarrow imports it at its first pa.array() call
    import pyarrow.parquet as pq

    import registry.domain.metrics.bootstrap as boot

    from registry.adapters.artifacts.store import PARQUET_OPTIONS
    from registry.services.app import init_registry
    from registry.services.evaluation import load_predictions, run_evaluation
    from registry.services.evaluators import create_evaluator

    if large_n is not None:
        boot.LARGE_N = large_n
    reg = init_registry(_settings(home))
    try:
        name = f"{evaluator}-s{seed}"
        create_evaluator(reg, checkpoint=evaluator, protocol="score-both-orders", name=name, config={"seed": seed})
        load_before = os.getloadavg()[0]
        c0, t0 = time.process_time(), time.perf_counter()
        run = run_evaluation(reg, name, "bench-pairs", n_boot=n_boot, **({"chunk_rows": chunk_rows} if chunk_rows else {}))
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        out = {"seconds": seconds, "cpu": cpu, "n_judgments": run.n_judgments, "n_executed": run.n_executed,
               "n_cached": run.n_cached, "load": [load_before, os.getloadavg()[0]],
               "peak_rss_mib": peak_rss_mib(), "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "memory_mb": getattr(reg.settings, "memory_mb", 2048.0), "accuracy": run.metric("accuracy").value,
               "streaming": (run.provenance or {}).get("streaming"), "large_n": boot.LARGE_N,
               "scores_reused_from": (run.provenance or {}).get("scores_reused_from")}
        if floor:
            table = load_predictions(reg, run)
            tmp = Path(tempfile.mkdtemp()) / "floor.parquet"
            t = time.perf_counter()
            pq.write_table(table, tmp, **PARQUET_OPTIONS)
            out["parquet_floor"] = time.perf_counter() - t
            out["predictions_mib"] = tmp.stat().st_size / 2**20
            shutil.rmtree(tmp.parent, ignore_errors=True)
        return out
    finally:
        reg.close()


def measure(home: Path, evaluator: str, seed: int, n_boot: int, floor: bool, large_n: int | None = None
            ) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.evaluate", "--child", str(home), "--evaluator", evaluator,
           "--seed", str(seed), "--n-boot", str(n_boot)] + (["--floor"] if floor else []) + \
          (["--large-n", str(large_n)] if large_n is not None else [])
    t = time.perf_counter()
    done = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        sys.exit(f"measurement failed:\n{done.stdout}\n{done.stderr}")
    got = json.loads(done.stdout.strip().splitlines()[-1])
    got["process_wall"] = wall
    return got


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=50_000)
    ap.add_argument("--quick", action="store_true", help="5,000 pairs, one repetition")
    ap.add_argument("--repeat", type=int, default=2, help="measurements of each kind (default 2)")
    ap.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of the runs (eval run's default)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--evaluator", default="random", help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--chunk-rows", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--large-n", type=int, default=None,
                    help="examples from which the bootstrap works in counts mode (default: the module's "
                         "LARGE_N; a huge value measures index mode, as before counts mode)")
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.evaluator, args.seed, args.n_boot, args.floor, args.chunk_rows,
                               args.large_n)))
        return 0
    if args.quick:
        args.pairs, args.repeat = 5_000, 1

    work = Path(tempfile.mkdtemp(prefix="bench-evaluate-", dir=args.workdir))
    try:
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}; "
              f"date {_dt.datetime.now().isoformat(timespec='seconds')}; load average {os.getloadavg()[0]:.1f}")
        t = time.perf_counter()
        path = build_pairs(args.pairs, work)
        print(f"input: {args.pairs:,} pairs replicated from the real LLMBar + PandaLM rows, "
              f"{path.stat().st_size / 2**20:,.0f} MiB Parquet (built in {time.perf_counter() - t:.1f} s)")
        reg = register(work / "home", path)
        print(f"registered {reg['ref']} ({reg['rows']:,} rows) in {reg['seconds']:.1f} s (not counted below)")
        path.unlink()
        results: dict[str, list[dict[str, Any]]] = {"heuristic": [], "cached": []}
        for k in range(args.repeat):
            seed = 100 + k
            results["heuristic"].append(measure(work / "home", "random", seed, args.n_boot, floor=True,
                                                large_n=args.large_n))
            results["cached"].append(measure(work / "home", "random", seed, args.n_boot, floor=False,
                                             large_n=args.large_n))
        report(args, results)
        if args.json:
            args.json.write_text(json.dumps({"pairs": args.pairs, "n_boot": args.n_boot, "results": results,
                                             "registration": reg, "cores": os.cpu_count(),
                                             "date": _dt.datetime.now().isoformat(timespec="seconds")}, indent=2))
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def report(args, results: dict[str, list[dict[str, Any]]]) -> None:
    judged = results["heuristic"]
    cached = results["cached"]
    print(f"\n{args.pairs:,} pairs = {judged[0]['n_judgments']:,} judgments (random, both orders, "
          f"n_boot {args.n_boot}); AUTORATER_MEMORY_MB = {judged[0]['memory_mb']:g}; "
          f"bootstrap counts mode from {judged[0].get('large_n', 0):,} examples")
    print(f"{'measurement':<34} {'run_evaluation':>14} {'judgments/s':>12} {'CPU':>7} {'process':>8} "
          f"{'peak RSS':>9} {'load (before/after)':>20}")
    for kind, rows in (("heuristic (nothing cached)", judged), ("cached re-run", cached)):
        for r in rows:
            rate = r["n_judgments"] / r["seconds"]
            print(f"{kind:<34} {r['seconds']:12.2f} s {rate:12,.0f} {r['cpu']:6.1f}s {r['process_wall']:7.1f}s "
                  f"{r['peak_rss_mib']:6.0f} MiB {r['load'][0]:9.2f} / {r['load'][1]:.2f}")
            assert r["n_executed" if kind.startswith("heuristic") else "n_cached"] > 0, r
            steps = ((r.get("streaming") or {}).get("seconds")) or {}
            if steps:
                reused = r.get("scores_reused_from")
                print("    steps (s): " + ", ".join(f"{k} {v:.2f}" for k, v in steps.items())
                      + (f" (metric records reused from run {reused})" if reused else ""))
    for r in judged:
        print(f"  parquet floor: writing the run's predictions ({r['predictions_mib']:.1f} MiB) with PARQUET_OPTIONS "
              f"{r['parquet_floor']:.2f} s; the run took {r['seconds'] / r['parquet_floor']:.1f}x that")
    best_j = max(r["n_judgments"] / r["seconds"] for r in judged)
    best_c = max(r["n_judgments"] / r["seconds"] for r in cached)
    peak = max(r["peak_rss_mib"] for r in judged + cached)
    limit = judged[0]["memory_mb"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print(f"goals: heuristic >= {GOAL_JUDGED:,}/s: {best_j:,.0f}/s {verdict(best_j >= GOAL_JUDGED)}; "
          f"cached >= {GOAL_CACHED:,}/s: {best_c:,.0f}/s {verdict(best_c >= GOAL_CACHED)}; "
          f"peak RSS <= {limit:g} MiB: {peak:,.0f} MiB {verdict(peak <= limit)} (best of {len(judged)})")


if __name__ == "__main__":
    raise SystemExit(main())
