"""FLAMe-scale benchmark: a collection of ~100 datasets and 5.3M human judgments, end to end.

    .venv/bin/python -m bench.flame_scale --quick                  # 100 datasets, 100k rows
    .venv/bin/python -m bench.flame_scale --total-rows 500000      # medium
    .venv/bin/python -m bench.flame_scale --out flame.json         # FLAMe scale: 5.3M rows, 102 datasets

Phases, each timed with the load average beside it:

1. **generate** — REAL rows of every catalog dataset (all three task types), read with the project's
   own adapters (``catalog_entries()``), are replicated into ``--datasets`` datasets holding
   ``--total-rows`` rows in all, sized as in FLAMe (102 tasks, 5.3M judgments, a few huge, most small):
   3 large datasets (the largest real source of each task type, ~19% of the rows each: ~1M at
   5.3M) and a tail whose sizes fall geometrically down to 300 rows (~145k → 300 at 5.3M). Tail
   datasets take the catalog's sources round-robin over the task types. Each row gets a new unique
   id ``<source id>:r<replica>`` and a short tag ``[<dataset>:<row>]`` appended to its instruction:
   without it the replicas would be the same judge input, which the judgment cache judges once, and
   evaluation would do a fraction of the work a real collection needs. Responses, labels and
   scores are untouched.
   Input format: **Parquet** by default (``--format jsonl`` for JSON lines). A collection like
   FLAMe's is a standardized, typed corpus; as JSON lines 5.3M rows are several times larger
   on disk and their generation alone would take minutes; and the cost of parsing JSON text is
   measured on its own by ``bench/ingest.py``.
2. **register** — every file through ``register_dataset_version`` (source ``generic``, standardized
   column names, the task type and the source's labels), validation included, each dataset on its
   own as ``register_all`` does, in a process pool of ``--workers`` (largest first).
3. **evaluate** — the heuristic baselines (``evaluator create --baselines`` without MiniLM: random,
   always-first, always-second, longer, shorter, each on the task types it judges) on every dataset:
   ``run_evaluation`` per (evaluator, dataset) pair of ``missing_pairs``, in the same kind of pool.
4. **best** — ``best_evaluator(reg, task_type=...)`` for each task type.

Recorded: wall time per phase, rows/s (the collection's human-judgment rows over the phase's
time; evaluate also verdicts/s), peak RSS (``ru_maxrss`` of the driver and of its reaped children,
the largest single process; and the largest sum of RSS over the driver and its pool, sampled from
/proc every 0.5 s: the machine's real peak), the input and registry sizes on disk, the slowest
datasets and pairs. Fresh SQLite registry in a temporary folder (removed unless ``--keep``).
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
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

os.environ.setdefault("DVC_NO_ANALYTICS", "1")

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from bench.ingest import data_root  # noqa: E402

TASK_TYPES = ("pairwise", "pointwise", "classification")
TEXTS = {"pairwise": ("instruction", "response_a", "response_b"),
         "pointwise": ("instruction", "response"), "classification": ("instruction", "response")}
CHUNK = 100_000  # rows per generated chunk (bounded memory while writing the 1M-row files)
GIB = 2**30


def revision() -> str:
    """The commit the run measures, ``+dirty`` when registry/ has uncommitted changes."""
    import subprocess

    git = ["git", "-C", str(Path(__file__).resolve().parent.parent)]
    try:
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "registry"], capture_output=True, text=True).stdout
    except OSError:
        return "unknown"
    return head + ("+dirty" if dirty.strip() else "")


def loadavg() -> str:
    return "%.2f %.2f %.2f" % os.getloadavg()


# ----------------------------------------------------------------------------- the collection


@dataclass
class Base:
    """A catalog dataset's real rows (blank texts and all-null columns dropped)."""

    name: str
    task_type: str
    table: pa.Table
    labels: tuple[str, ...] | None


@dataclass
class Planned:
    name: str
    base: Base
    rows: int
    path: Path | None = None


def real_bases(root: Path) -> list[Base]:
    """Every catalog dataset whose files exist, read with its adapter."""
    from registry.adapters.sources import get_adapter
    from registry.services.datasets import catalog_entries

    bases = []
    for adapter, d in catalog_entries():
        if not (root / d.path).exists():
            continue
        t = pa.Table.from_pandas(get_adapter(adapter).read(root / d.path, **d.options), preserve_index=False)
        for c in TEXTS[d.task_type]:
            t = t.filter(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(pc.fill_null(t[c], ""))), 0))
        t = t.select([c for c in t.column_names if t[c].null_count < len(t)])
        labels = d.labels
        if d.task_type == "classification" and labels is None:
            labels = tuple(sorted(str(v) for v in pc.unique(t["label"]).to_pylist() if v is not None))
        bases.append(Base(d.name, d.task_type, t, labels))
    if not bases:
        sys.exit(f"no catalog data under {root}")
    return bases


def plan_sizes(total: int, n: int, *, large: int = 3, large_share: float = 0.57, smallest: int = 300) -> list[int]:
    """``large`` datasets sharing ``large_share`` of the rows, then ``n - large`` sizes falling
    geometrically (by a constant ratio) to ``smallest`` (lower when the rows are too few), summing
    to ``total``. Largest first."""
    big = [int(total * large_share / large)] * large
    rest, m = total - sum(big), n - large
    lo = max(1, min(smallest, rest // (3 * m)))
    lo_r, hi_r = 1.0, 2.0  # bisect the ratio r: lo * (1 + r + … + r^(m-1)) = rest
    for _ in range(100):
        r = (lo_r + hi_r) / 2
        lo_r, hi_r = (r, hi_r) if lo * (r**m - 1) / (r - 1) < rest else (lo_r, r)
    tail = [max(1, round(lo * r**j)) for j in range(m - 1, -1, -1)]
    tail[0] += rest - sum(tail)
    return big + tail


def plan_collection(bases: list[Base], total: int, n: int) -> list[Planned]:
    """The large datasets replicate the largest source of each task type; the tail takes the
    sources round-robin over the task types (each type cycling through its own)."""
    sizes = plan_sizes(total, n)
    by_type = {t: [b for b in bases if b.task_type == t] for t in TASK_TYPES}
    picks = [max(by_type[t], key=lambda b: b.table.num_rows) for t in TASK_TYPES]
    j = 0
    while len(picks) < n:
        t = TASK_TYPES[j % 3]
        picks.append(by_type[t][(j // 3) % len(by_type[t])])
        j += 1
    return [Planned(f"flame-{k:03d}-{b.name}"[:128], b, rows) for k, (b, rows) in enumerate(zip(picks, sizes))]


def write_dataset(p: Planned, k: int, folder: Path, fmt: str) -> Path:
    """``p.rows`` rows of ``p.base``: a seeded shuffle of its rows, cycled (replica = pass number),
    with new ids and tagged instructions; written by chunks of CHUNK rows."""
    base = p.base.table
    m = base.num_rows
    order = np.random.default_rng(k).permutation(m)
    path = folder / f"{p.name}.{fmt}"
    writer = None
    with open(path, "wb") as fh:
        for start in range(0, p.rows, CHUNK):
            i = np.arange(start, min(start + CHUNK, p.rows))
            chunk = base.take(pa.array(order[i % m]))
            text = pa.large_string()  # some sources' columns are large_string: join in that type
            replica = pc.cast(pa.array(i // m), text)
            row = pc.cast(pa.array(i), text)
            ids = pc.binary_join_element_wise(pc.cast(chunk["example_id"], text), replica, pa.scalar(":r", text))
            tag = pc.binary_join_element_wise(pa.scalar(f" [{k}:", text), row, pa.scalar("]", text),
                                              pa.scalar("", text))
            instr = pc.binary_join_element_wise(pc.cast(chunk["instruction"], text), tag, pa.scalar("", text))
            chunk = chunk.set_column(chunk.column_names.index("example_id"), "example_id", ids)
            chunk = chunk.set_column(chunk.column_names.index("instruction"), "instruction", instr)
            if fmt == "parquet":
                writer = writer or pq.ParquetWriter(fh, chunk.schema)
                writer.write_table(chunk, row_group_size=CHUNK)
            else:
                chunk.to_pandas().to_json(fh, orient="records", lines=True, force_ascii=False)
        if writer is not None:
            writer.close()
    return path


# ----------------------------------------------------------------------------- the pool

_REG = None  # each pool process opens the registry once


def _open(settings) -> None:
    global _REG
    import great_expectations  # noqa: F401  (imported here, not timed with the first dataset)

    import registry.services.datasets  # noqa: F401
    import registry.services.evaluation  # noqa: F401
    from registry.services.app import RegistryContext

    _REG = RegistryContext.open(settings)


def _rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB → GiB


def _register(name: str, path: str, task_type: str, labels: tuple[str, ...] | None, base: str) -> dict[str, Any]:
    from registry.services.datasets import register_dataset_version

    t = time.perf_counter()
    r = register_dataset_version(_REG, name=name, source="generic", path=Path(path), task_type=task_type,
                                 labels=labels, description=f"replicated from {base} (bench.flame_scale)")
    return {"dataset": name, "task_type": task_type, "rows": r.version.row_count, "seconds": time.perf_counter() - t,
            "created": r.created, "peak_rss_gib": _rss()}


def _evaluate(evaluator: str, dataset: str, task_type: str) -> dict[str, Any]:
    from registry.services.evaluation import run_evaluation

    t = time.perf_counter()
    run = run_evaluation(_REG, evaluator, dataset)
    return {"evaluator": evaluator, "dataset": dataset, "task_type": task_type, "rows": run.n_examples,
            "verdicts": run.n_judgments, "seconds": time.perf_counter() - t, "peak_rss_gib": _rss()}


def run_pool(fn, jobs: list[tuple], workers: int, settings, label: str) -> list[dict[str, Any]]:
    """``fn(*job)`` for every job (given largest first) in a pool of ``workers`` spawned processes."""
    out: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_open,
                             initargs=(settings,)) as pool:
        futures = [pool.submit(fn, *job) for job in jobs]
        for f in as_completed(futures):
            out.append(f.result())
            if len(out) % max(1, len(jobs) // 10) == 0 or len(out) == len(jobs):
                print(f"  {label}: {len(out)}/{len(jobs)} done, {time.perf_counter() - t0:.0f} s, "
                      f"load {loadavg()}", flush=True)
    return out


class RssSampler(threading.Thread):
    """The largest sum of RSS over this process and its descendants (sampled every 0.5 s)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self._stop_evt = threading.Event()

    def run(self) -> None:
        while not self._stop_evt.wait(0.5):
            self.sample()

    def sample(self) -> None:
        me, total = psutil.Process(), 0
        for proc in [me, *me.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        self.peak = max(self.peak, total)

    def take(self) -> float:
        """The peak since the last call, in GiB (then starts over)."""
        self.sample()
        peak, self.peak = self.peak, 0
        return peak / GIB

    def stop(self) -> None:
        self._stop_evt.set()


def disk_bytes(path: Path) -> int:
    """Allocated bytes under ``path``, each inode once (DVC's cache may hard-link the store's files)."""
    seen, total = set(), 0
    paths = [path] if path.is_file() else (Path(d, f) for d, _, files in os.walk(path) for f in files)
    for f in paths:
        st = os.lstat(f)
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--total-rows", type=int, default=5_300_000, help="human judgments in all (default: %(default)s)")
    ap.add_argument("--datasets", type=int, default=102, help="datasets (default: %(default)s, as FLAMe)")
    ap.add_argument("--workers", type=int, default=2, help="pool processes (default: %(default)s)")
    ap.add_argument("--format", choices=("parquet", "jsonl"), default="parquet",
                    help="input files (default: %(default)s)")
    ap.add_argument("--quick", action="store_true", help="100 datasets, 100,000 rows")
    ap.add_argument("--out", type=Path, help="write the results to this JSON file")
    ap.add_argument("--keep", action="store_true", help="keep the inputs and the registry (the folder is printed)")
    args = ap.parse_args(argv)
    if args.quick:
        args.total_rows, args.datasets = 100_000, 100
    if args.datasets < 4 or args.total_rows < 10 * args.datasets:
        ap.error("need at least 4 datasets and 10 rows per dataset")

    from registry.config import Settings
    from registry.services.app import init_registry
    from registry.services.evaluators import ensure_baselines
    from registry.services.matrix import missing_pairs
    from registry.services.queries import best_evaluator

    root = data_root()
    work = Path(tempfile.mkdtemp(prefix="bench-flame-"))
    home = work / "registry"
    settings = Settings.from_env(home=home, db_url=f"sqlite:///{home / 'registry.db'}", store=home / "store",
                                 dvc_remote=str(home / "remote"), data_root=root)
    sampler = RssSampler()
    sampler.start()
    phases: dict[str, dict[str, Any]] = {}
    started, code = time.perf_counter(), revision()
    print(f"bench.flame_scale: {args.total_rows:,} rows in {args.datasets} datasets, {args.workers} workers, "
          f"{args.format}; {platform.machine()}, {os.cpu_count()} cores; code {code}; {work}; load {loadavg()}",
          flush=True)

    def phase(name: str, t0: float, **extra: Any) -> None:
        s = time.perf_counter() - t0
        phases[name] = {"seconds": s, "rows_per_s": args.total_rows / s, "peak_rss_sum_gib": sampler.take(),
                        "loadavg_after": loadavg(), **extra}
        print(f"== {name}: {s:,.1f} s, {args.total_rows / s:,.0f} rows/s, peak RSS (sum) "
              f"{phases[name]['peak_rss_sum_gib']:.2f} GiB, load {loadavg()}", flush=True)

    try:
        # 1. generate
        t0 = time.perf_counter()
        bases = real_bases(root)
        plan = plan_collection(bases, args.total_rows, args.datasets)
        inputs = work / "inputs"
        inputs.mkdir()
        for k, p in enumerate(plan):
            p.path = write_dataset(p, k, inputs, args.format)
        real = {t: sum(b.table.num_rows for b in bases if b.task_type == t) for t in TASK_TYPES}
        per_type = {t: [sum(p.rows for p in plan if p.base.task_type == t), sum(p.base.task_type == t for p in plan)]
                    for t in TASK_TYPES}
        print(f"  {len(bases)} real sources, real rows per type {real}; collection rows/datasets per type "
              f"{per_type}; sizes {plan[0].rows:,} … {plan[3].rows:,} … {plan[-1].rows:,}", flush=True)
        phase("generate", t0, input_bytes=disk_bytes(inputs), real_rows=real, per_type=per_type)
        print(f"  inputs: {phases['generate']['input_bytes'] / 2**20:,.0f} MiB", flush=True)

        # 2. register
        t0 = time.perf_counter()
        init_registry(settings).close()
        jobs = [(p.name, str(p.path), p.base.task_type, p.base.labels, p.base.name)
                for p in sorted(plan, key=lambda p: -p.rows)]
        registered = run_pool(_register, jobs, args.workers, settings, "register")
        phase("register", t0, datasets=registered)

        # 3. evaluate
        t0 = time.perf_counter()
        reg = init_registry(settings)
        try:
            evaluators = [e.name for e in ensure_baselines(reg, minilm=False)]
            rows = {p.name: p.rows for p in plan}
            pairs = sorted(missing_pairs(reg), key=lambda q: -rows[q.dataset.split("@")[0]])
        finally:
            reg.close()
        runs = run_pool(_evaluate, [(q.evaluator, q.dataset, q.task_type) for q in pairs], args.workers, settings,
                        "evaluate")
        verdicts = sum(r["verdicts"] for r in runs)
        phase("evaluate", t0, evaluators=evaluators, pairs=len(runs), row_evaluations=sum(r["rows"] for r in runs),
              verdicts=verdicts, runs=runs)
        phases["evaluate"]["verdicts_per_s"] = verdicts / phases["evaluate"]["seconds"]

        # 4. best
        t0 = time.perf_counter()
        reg = init_registry(settings)
        answers = {}
        try:
            for t in TASK_TYPES:
                t1 = time.perf_counter()
                ranking = best_evaluator(reg, task_type=t)
                b = ranking.best
                answers[t] = {"best": b.evaluator if b else None, "metric": ranking.metric,
                              "value": b.value if b else None, "datasets": len(ranking.datasets),
                              "tied": [s.evaluator for s in ranking.tied], "seconds": time.perf_counter() - t1}
        finally:
            reg.close()
        phase("best", t0, answers=answers)
        total_s = time.perf_counter() - started
    finally:
        sampler.stop()
    registry_bytes = {p.name: disk_bytes(p) for p in sorted(home.iterdir())}
    peak_single = max(_rss(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20)
    peak_sum = max(ph["peak_rss_sum_gib"] for ph in phases.values())

    print(f"\nbench.flame_scale: {args.total_rows:,} rows, {args.datasets} datasets, {args.workers} workers, "
          f"{args.format}; load {loadavg()}")
    print(f"{'phase':<10} {'wall':>10} {'share':>6} {'rows/s':>10} {'peak RSS sum':>13}  load after")
    for name, ph in phases.items():
        print(f"{name:<10} {ph['seconds']:8.1f} s {100 * ph['seconds'] / total_s:5.1f}% {ph['rows_per_s']:10,.0f} "
              f"{ph['peak_rss_sum_gib']:9.2f} GiB  {ph['loadavg_after']}")
    ev = phases["evaluate"]
    print(f"end to end {total_s:,.1f} s ({total_s / 60:.1f} min; target ≤ 30 min: "
          f"{'met' if total_s <= 1800 else 'NOT met'}); peak RSS: sum over driver + pool {peak_sum:.2f} GiB "
          f"(target ≤ 8 GiB: {'met' if peak_sum <= 8 else 'NOT met'}), "
          f"largest process {peak_single:.2f} GiB")
    print(f"evaluate: {ev['pairs']} pairs ({len(ev['evaluators'])} baselines), "
          f"{ev['row_evaluations']:,} row evaluations, {ev['verdicts']:,} verdicts = "
          f"{ev['verdicts_per_s']:,.0f} verdicts/s")
    print("registry on disk: " + ", ".join(f"{k} {v / 2**20:,.1f} MiB" for k, v in registry_bytes.items())
          + f"; inputs {phases['generate']['input_bytes'] / 2**20:,.1f} MiB")
    for t, a in answers.items():
        print(f"best {t}: {a['best']} ({a['metric']} {a['value']:.3f} over {a['datasets']} datasets; tied {a['tied']}) "
              f"in {a['seconds']:.2f} s")
    print("slowest registrations: " + "; ".join(
        f"{r['dataset']} ({r['rows']:,} rows) {r['seconds']:.1f} s"
        for r in sorted(phases["register"]["datasets"], key=lambda r: -r["seconds"])[:5]))
    print("slowest evaluations: " + "; ".join(
        f"{r['evaluator']} on {r['dataset']} ({r['rows']:,} rows) {r['seconds']:.1f} s"
        for r in sorted(ev["runs"], key=lambda r: -r["seconds"])[:5]))
    by_type = {t: sum(r["seconds"] for r in ev["runs"] if r["task_type"] == t) for t in TASK_TYPES}
    print("evaluation time by task type (summed over pairs): "
          + ", ".join(f"{t} {s:,.0f} s" for t, s in by_type.items()))

    if args.out:
        args.out.write_text(json.dumps({
            "total_rows": args.total_rows, "datasets": args.datasets, "workers": args.workers, "format": args.format,
            "seconds": total_s, "peak_rss_sum_gib": peak_sum, "peak_rss_single_gib": peak_single,
            "registry_bytes": registry_bytes, "phases": phases, "cores": os.cpu_count(), "code": code,
            "date": _dt.datetime.now().isoformat(timespec="seconds")}, indent=1, default=str))
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
