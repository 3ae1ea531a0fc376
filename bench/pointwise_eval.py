"""Pointwise evaluation at scale: the bootstrap of the example-level correlations (issue 12).

Two measurements, each printing ``uptime``'s load average before and after:

- ``--micro SIZES`` (e.g. ``40000,200000,1000000``): the B = 1000 resampled Pearson, Spearman and
  Kendall τ-b of n examples, old code against new in one process. The data: the human scores of
  the largest real pointwise source (wmt-mqm-ted-zh-en, 51 distinct MQM scores) replicated to n,
  against two predictions — ``length`` (the response's length, as the ``longer`` baseline scores:
  few distinct values) and ``random`` (uniform: every value distinct, the most cells). *Old*: the
  ``_resampled`` of ``registry/domain/metrics/pointwise.py`` at ``--old-rev`` (read with
  ``git show`` and executed as a module beside the current package): its Pearson (already
  O(B·n)) on B = 1000, its Spearman and Kendall (a sort / scipy call per resample) on
  ``--old-samples`` resamples (linear in them: ×1000/that is printed as the B = 1000 estimate);
  *new*: :func:`~registry.domain.metrics.rank_resample.resampled_correlations` on all 1000, per
  metric and the three in one pass (as ``correlations`` does).
- ``--rows N``: N real pointwise rows replicated as ``bench/flame_scale.py`` does (new ids, tagged
  instructions), registered in a fresh registry, then ``run_evaluation`` of each of ``--evaluators``
  (heuristic baselines; n_boot 1000, default slicing) in a child process per ``--pythonpath`` (a
  folder holding a copy of ``registry/``, e.g. one with the old metric code, and links to
  ``migrations`` and ``alembic.ini``), in the order given, timed in the child. A run's scores are
  reused only under the same scoring code, so run each code once per evaluator.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "wmt-mqm-ted-zh-en"
METHODS = ("pearson", "spearman", "kendall")


def load() -> str:
    return "%.2f %.2f %.2f" % os.getloadavg()


def _source_table():
    import pyarrow as pa

    from bench.ingest import data_root
    from registry.adapters.sources import get_adapter
    from registry.services.datasets import catalog_entries

    root = data_root()
    for adapter, d in catalog_entries():
        if d.name == SOURCE:
            return pa.Table.from_pandas(get_adapter(adapter).read(root / d.path, **d.options), preserve_index=False)
    sys.exit(f"{SOURCE} not found under {root}")


def old_module(rev: str) -> types.ModuleType:
    """``registry/domain/metrics/pointwise.py`` at ``rev``, executed as a module."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:registry/domain/metrics/pointwise.py"],
                         capture_output=True, text=True, check=True).stdout
    mod = types.ModuleType("old_pointwise")
    exec(compile(src, f"{rev}:pointwise.py", "exec"), mod.__dict__)
    return mod


def micro(sizes: list[int], old_samples: int, rev: str, predictions: list[str]) -> None:
    from registry.domain.metrics.bootstrap import Bootstrap
    from registry.domain.metrics.rank_resample import Cells, resampled_correlations

    table = _source_table()
    human = np.asarray(table["score"].to_pylist(), float)
    length = np.array([len(r or "") for r in table["response"].to_pylist()], float)
    ok = np.isfinite(human)
    human, length = human[ok], length[ok]
    old = old_module(rev)
    from scipy import stats  # noqa: F401  (imported before the timings: the old code imports it in the call)
    print(f"micro: human scores of {SOURCE} ({len(human)} rows, {len(np.unique(human))} distinct) replicated; "
          f"old = {rev}'s _resampled (Spearman, Kendall on {old_samples} resamples ×1000/{old_samples}), "
          f"new on 1000; load {load()}")
    print(f"{'n':>9} {'prediction':>10} {'metric':>9} {'old s (B=1000)':>15} {'new s':>8} {'speed-up':>9}")
    for n in sizes:
        rng = np.random.default_rng(n)
        rows = np.resize(rng.permutation(len(human)), n)
        h = human[rows]
        for name, p in (("length", length[rows]), ("random", rng.random(n))):
            if name not in predictions:
                continue
            t = time.perf_counter()
            cells = Cells.of(h, p)
            prep = time.perf_counter() - t
            news, olds = {}, {}
            for m in METHODS:
                t = time.perf_counter()
                got = resampled_correlations([m], h, p, Bootstrap.draw(n, 1000, seed=0), cells)[m]
                news[m] = time.perf_counter() - t
                # Pearson was O(B·n) already (timed on B = 1000); the others on old_samples, ×1000/that
                k = 1000 if m == "pearson" else old_samples
                t = time.perf_counter()
                want = old._resampled(m, h, p, Bootstrap.draw(n, k, seed=0))[:old_samples]
                olds[m] = (time.perf_counter() - t) * 1000 / k
                same = got[:old_samples] - want
                assert np.nanmax(np.abs(same)) < 1e-12, m   # the same resamples' statistics
                assert np.array_equal(np.isnan(got[:old_samples]), np.isnan(want)), m
                print(f"{n:>9,} {name:>10} {m:>9} {olds[m]:>15.1f} {news[m]:>8.2f} {olds[m] / news[m]:>8.0f}×",
                      flush=True)
            t = time.perf_counter()
            resampled_correlations(list(METHODS), h, p, Bootstrap.draw(n, 1000, seed=0), cells)
            both = time.perf_counter() - t
            print(f"{n:>9,} {name:>10} {'all three':>9} {sum(olds.values()):>15.1f} {both:>8.2f} "
                  f"{sum(olds.values()) / both:>8.0f}×   (cells: {cells.m:,}, {len(cells.levels)} levels, "
                  f"{prep:.2f} s to build; load {load()})", flush=True)


def build(rows: int, folder: Path) -> tuple[Path, str]:
    """A fresh registry holding ``rows`` replicated real pointwise rows; (home, dataset name)."""
    from bench.flame_scale import Planned, real_bases, write_dataset
    from bench.ingest import data_root
    from registry.services.app import init_registry
    from registry.services.datasets import register_dataset_version
    from registry.services.evaluators import ensure_baselines

    base = next(b for b in real_bases(data_root()) if b.name == SOURCE)
    name = f"pointwise-{rows}"
    path = write_dataset(Planned(name, base, rows), 0, folder, "parquet")
    home = folder / "registry"
    reg = init_registry(_settings(home))
    try:
        t = time.perf_counter()
        register_dataset_version(reg, name=name, source="generic", path=path, task_type="pointwise",
                                 labels=base.labels, description=f"replicated from {SOURCE} (bench.pointwise_eval)")
        ensure_baselines(reg, minilm=False)
        print(f"registered {rows:,} rows in {time.perf_counter() - t:.1f} s; load {load()}", flush=True)
    finally:
        reg.close()
    return home, name


def _settings(home: Path):
    from bench.ingest import data_root
    from registry.config import Settings

    return Settings.from_env(home=home, db_url=f"sqlite:///{home / 'registry.db'}", store=home / "store",
                             dvc_remote=str(home / "remote"), data_root=data_root())


def evaluate_child(home: str, dataset: str, evaluator: str) -> None:
    """In the child: one ``run_evaluation`` of ``evaluator``, timed (imports not timed)."""
    import registry.domain.metrics.pointwise as pw
    from registry.services.app import init_registry
    from registry.services.evaluation import run_evaluation

    reg = init_registry(_settings(Path(home)))
    try:
        before = load()
        t = time.perf_counter()
        run = run_evaluation(reg, evaluator, dataset)
        s = time.perf_counter() - t
        metrics = {m.name: m for m in run.metrics if m.slice == "all"} if hasattr(run, "metrics") else {}
        spear = metrics.get("spearman")
        print(f"  run_evaluation({evaluator}, {dataset}): {s:.1f} s, {run.n_examples:,} examples; code {pw.__file__}; "
              f"spearman {getattr(spear, 'value', float('nan')):.6f} "
              f"[{getattr(spear, 'ci_low', float('nan')):.6f}, {getattr(spear, 'ci_high', float('nan')):.6f}]; "
              f"load {before} → {load()}", flush=True)
    finally:
        reg.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--micro", help="comma-separated example counts for the old/new micro-benchmark")
    ap.add_argument("--predictions", default="length,random", help="micro: which predictions (default: %(default)s)")
    ap.add_argument("--old-samples", type=int, default=20, help="resamples the old code is timed on")
    ap.add_argument("--old-rev", default="d570c72", help="revision of the old pointwise.py (default: %(default)s)")
    ap.add_argument("--rows", type=int, help="rows of the replicated pointwise dataset for run_evaluation")
    ap.add_argument("--pythonpath", action="append", default=[],
                    help="run the evaluation with this PYTHONPATH first (repeatable; '' = this checkout)")
    ap.add_argument("--evaluators", default="longer", help="--rows: baselines to run, in order (default: %(default)s)")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        evaluate_child(*args.child)
        return 0
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    if args.micro:
        micro([int(s) for s in args.micro.split(",")], args.old_samples, args.old_rev, args.predictions.split(","))
    if args.rows:
        with tempfile.TemporaryDirectory(prefix="bench-pointwise-") as tmp:
            home, name = build(args.rows, Path(tmp))
            for evaluator in args.evaluators.split(","):
                for path in args.pythonpath or [""]:
                    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (path, str(ROOT)) if p))
                    print(f"PYTHONPATH={path or '(this checkout)'}", flush=True)
                    child = [sys.executable, "-m", "bench.pointwise_eval", "--child", str(home), name, evaluator]
                    subprocess.run(child, env=env, cwd=tmp, check=True)   # not ROOT: its registry/ would come first
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
