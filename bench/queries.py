"""`best` and `leaderboard` on large registries (issue 12, item 3): the growth curve of the query
times from 100 evaluators × 10 dataset versions to 10,000 × 100, on SQLite and on PostgreSQL.

    .venv/bin/python -m bench.queries --quick                        # a small run (SQLite)
    .venv/bin/python -m bench.queries --sizes 100x10,1000x50,10000x100
    AUTORATER_PG_PORT=55445 scripts/with-postgres.sh .venv/bin/python -m bench.queries --backend postgresql
    .venv/bin/python -m bench.queries --registry /tmp/copy-of-10k --old /tmp/old_registry_code --repeat 5

``--registry DIR`` reuses a registry built by ``bench/web.py --best-workdir DIR`` (work on a copy: runs
land on it) and times each query in a new Python process (what every CLI call and CI job pays; the
process's own figures for opening the registry and for the query, and its wall time), this code against
an older ``registry`` package (``--old``: ``git archive REV registry migrations alembic.ini | tar -x -C
DIR``), alternating; then runs land one at a time and the first ``best --task-type`` after each is timed.

Each registry is built like this: real datasets of the three task types are registered and the
`random` baseline is run on each (a real run: its metrics are the template of the synthetic runs'
metrics — same names, slices and extras); V synthetic dataset versions copy them (their rows are
the real rows, so their example counts are real ones); E evaluators each get one succeeded run on
every version, written straight into the store's tables in bulk (runs, metrics, the standings row
and the per-example judgments, exactly the rows the store writes when a run finishes): verdicts,
labels or scores drawn per example around each evaluator's quality, the headline metric computed
from them (a normal-approximation 95% CI instead of the bootstrap, for speed). With
``--predictions`` (default for registries of at most 2,000 runs) every run also gets its
predictions Parquet, so today's computation (``fresh=True``) is timed beside the standings and the
two answers are compared.

Times are of the service functions (:func:`registry.services.queries.best_evaluator`,
:func:`~registry.services.queries.leaderboard`) in this process: the first call (``cold``:
computing and caching the paired tests or the task-type ranking) and the p50/p95 of the repeated
calls after it, with the load average beside them (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BASES = ("llmbar-natural", "summeval-coherence", "summac-factcc", "llmbar-adversarial-neighbor", "pandalm-test",
         "bagel-quality", "mtbench-human", "summac-xsumfaith", "hh-rlhf-harmless", "newsroom-coherence",
         "llmeval2", "summedits-news", "faireval", "topical-chat-overall", "prometheus-hhh-alignment",
         "llmbar-adversarial-gptout")
"""Real datasets the synthetic versions copy (all three task types; 47 to 2,312 examples)."""
QUICK_BASES = ("llmbar-natural", "summac-factcc", "summeval-coherence", "pandalm-test")
A, B, TIE, FAIL = 0, 1, 2, -1


def data_root() -> Path:
    env = os.environ.get("AUTORATER_DATA")
    for cand in ([Path(env)] if env else []) + [PROJECT_ROOT.parent / "shared" / "data"]:
        if cand.is_dir():
            return cand.resolve()
    sys.exit("real data not found: set AUTORATER_DATA or put it at ../shared/data")


def load() -> str:
    return "%.2f %.2f %.2f" % os.getloadavg()


# ----------------------------------------------------------------------------- bulk rows
class Writer:
    """Bulk inserts on the store's engine: executemany on SQLite, COPY on PostgreSQL."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.pg = engine.dialect.name == "postgresql"

    def insert(self, table: str, columns: list[str], rows: list[tuple]) -> None:
        if not rows:
            return
        with self.engine.begin() as conn:
            raw = conn.connection.dbapi_connection
            if self.pg:
                with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
                    for r in rows:
                        cp.write_row(r)
            else:
                marks = ", ".join("?" * len(columns))
                raw.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    def next_id(self, table: str) -> int:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return int(conn.execute(text(f"SELECT COALESCE(MAX(id), 0) FROM {table}")).scalar()) + 1

    def sync_sequence(self, table: str) -> None:
        if not self.pg:
            return
        from sqlalchemy import text

        with self.engine.begin() as conn:
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                              f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"))


# ----------------------------------------------------------------------------- synthetic judgments
def _pairwise(labels: np.ndarray, q: np.ndarray, rng) -> tuple[list[np.ndarray], np.ndarray, bool]:
    """Verdicts (E, n) per order around each evaluator's accuracy q, and the headline's per-example credit."""
    e, n = len(q), len(labels)
    tie_labels = bool((labels == TIE).any())
    orders = []
    for _ in range(2):
        u = rng.random((e, n))
        wrong = np.where(labels == TIE, rng.integers(0, 2, (e, n)), 1 - np.clip(labels, 0, 1)).astype(np.int8)
        v = np.where(u < q[:, None], labels[None, :], wrong).astype(np.int8)
        v[u > 0.97] = TIE
        v[u > 0.99] = FAIL
        orders.append(v)
    if tie_labels:      # the headline is accuracy_3way: a verdict scores when it equals the 3-way label
        credit = np.mean([(v == labels).astype(np.float64) for v in orders], axis=0)
    else:               # ReIFE accuracy: ½ for a tie or a failure
        credit = np.mean([np.where((v == TIE) | (v == FAIL), 0.5, (v == labels).astype(np.float64))
                          for v in orders], axis=0)
    return orders, credit, tie_labels


def _mean_ci(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = x.shape[1]
    value = x.mean(axis=1)
    half = 1.96 * x.std(axis=1, ddof=1) / np.sqrt(n)
    return value, value - half, value + half


def _balanced(y: np.ndarray, p: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Balanced accuracy (mean recall over the classes present; a failure is wrong) per row of p."""
    recalls, var = [], []
    for c in range(k):
        m = y == c
        if m.any():
            r = (p[:, m] == c).mean(axis=1)
            recalls.append(r)
            var.append(r * (1 - r) / m.sum())
    value = np.mean(recalls, axis=0)
    half = 1.96 * np.sqrt(np.sum(var, axis=0)) / len(recalls)
    return value, value - half, value + half


def _spearman(h: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from scipy.stats import rankdata

    rh = rankdata(h)
    rp = rankdata(pred, axis=1)
    rh, rp = rh - rh.mean(), rp - rp.mean(axis=1, keepdims=True)
    r = (rp @ rh) / np.sqrt((rp ** 2).sum(axis=1) * (rh ** 2).sum())
    z, se = np.arctanh(np.clip(r, -0.999999, 0.999999)), 1 / np.sqrt(max(len(h) - 3, 1))
    return r, np.tanh(z - 1.96 * se), np.tanh(z + 1.96 * se)


# ----------------------------------------------------------------------------- the registry
def build(reg, n_evaluators: int, n_versions: int, *, bases: tuple[str, ...], predictions: bool,
          seed: int = 0, log=print) -> dict:
    """Fill ``reg`` (see the module docstring); returns timings."""
    from sqlalchemy import insert, select

    from registry.adapters.store.orm import SqlDataset, SqlDatasetVersion, SqlEvaluator, SqlProtocol
    from registry.services import datasets as svc
    from registry.services.datasets import load_table
    from registry.services.evaluation import run_evaluation, task_context
    from registry.services.evaluators import ensure_baselines
    from registry.services.scoring import headline_for
    from registry.services.standings import RunExamples

    t0 = time.perf_counter()
    result = svc.register_all(reg, data_root(), only=set(bases))
    if result.failed:
        raise SystemExit(f"registering the base datasets failed: {result.failed}")
    ensure_baselines(reg, minilm=False)
    templates = {b: run_evaluation(reg, "random", b, n_boot=200) for b in bases}
    setup = time.perf_counter() - t0
    log(f"  setup (register {len(bases)} real datasets, one real run each): {setup:.1f} s")

    t1 = time.perf_counter()
    store, w = reg.store, Writer(reg.store.engine)
    rng = np.random.default_rng(seed)
    quality = rng.uniform(0.55, 0.92, n_evaluators)
    with store.session() as s:
        protocol = SqlProtocol(name="bench", version=1, sha256=uuid.uuid4().hex * 2, config={},
                               description="bench.queries")
        s.add(protocol)
        s.flush()
        base_rows = {b: s.scalar(select(SqlDatasetVersion).join(SqlDataset).where(SqlDataset.name == b)) for b in bases}
        versions = []
        for i in range(n_versions):
            base = base_rows[bases[i % len(bases)]]
            ds = SqlDataset(name=f"bench-{i:03d}-{base.dataset.name}", task_type=base.dataset.task_type,
                            description=f"bench.queries copy of {base.dataset.name}")
            s.add(ds)
            s.flush()
            row = SqlDatasetVersion(dataset=ds, version=1, **{c: getattr(base, c) for c in (
                "content_hash", "row_count", "spec_name", "spec_version", "spec_sha256", "storage_uri", "labels",
                "statistics", "validation_report", "diff_from_parent", "provenance")})
            s.add(row)
            s.flush()
            versions.append((row.id, f"{ds.name}@1", base.dataset.name, ds.task_type))
        names = [f"bench/judge-{e:05d}" for e in range(n_evaluators)]
        s.execute(insert(SqlEvaluator), [{"name": n, "kind": "external", "protocol_id": protocol.id, "config": {},
                                          "sha256": uuid.uuid4().hex * 2, "active": True} for n in names])
        ids = dict(s.execute(select(SqlEvaluator.name, SqlEvaluator.id).where(SqlEvaluator.name.in_(names))).all())
    evaluator_ids = np.array([ids[n] for n in names])
    run_id = w.next_id("evaluation_runs")
    now = time.time()
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(now, UTC)
    run_cols = ["id", "evaluator_id", "dataset_version_id", "status", "started_at", "finished_at", "seconds",
                "n_examples", "n_judgments", "n_executed", "n_cached", "prompt_tokens", "completion_tokens", "seed",
                "predictions_uri", "predictions_sha256", "provenance"]
    metric_cols = ["run_id", "name", "slice", "value", "ci_low", "ci_high", "n", "extra"]
    standing_cols = ["dataset_version_id", "evaluator_id", "run_id", "metric", "value", "ci_low", "ci_high", "n",
                     "n_aligned", "n_rows", "coverage", "metrics"]
    example_cols = ["run_id", "dataset_version_id", "encoding", "data"]
    counts = {"runs": 0, "metrics": 0, "bytes": 0}
    tables = {}
    for vi, (version_id, ref, base, task_type) in enumerate(versions):
        version = store.get_version(ref)
        if base not in tables:
            tables[base] = load_table(reg, base)
        table = tables[base]
        n = table.num_rows
        headline = headline_for(version)
        template = templates[base].metrics
        vrng = np.random.default_rng([seed, vi])
        q = np.clip(quality + vrng.normal(0, 0.02, n_evaluators), 0.3, 0.99)
        rows_idx = np.arange(n, dtype=np.int64)
        extra_cols: dict = {}
        if task_type == "pairwise":
            from registry.domain.judgments import encode_verdicts

            labels = encode_verdicts(table.column("label").to_pylist())
            orders, credit, _ = _pairwise(labels, q, vrng)
            value, lo, hi = _mean_ci(credit)
            n_metric = n

            def examples(e: int, s: int) -> RunExamples:
                return RunExamples("pairwise", n, rows_idx, s, verdicts=(orders[0][e], orders[1][e]))
        elif task_type == "classification":
            classes = list(task_context(version).labels)
            index = {c: i for i, c in enumerate(classes)}
            y = np.array([index[v] for v in table.column("label").to_pylist()])
            k = len(classes)
            u = vrng.random((n_evaluators, n))
            other = (y[None, :] + vrng.integers(1, k, (n_evaluators, n))) % k
            p = np.where(u < q[:, None], y[None, :], other)
            p[u > 0.99] = k                                   # a parse failure
            value, lo, hi = _balanced(y, p, k)
            n_metric = n
            vocab = [np.str_(c) for c in classes]

            def examples(e: int, s: int) -> RunExamples:
                return RunExamples("classification", n, rows_idx, s,
                                   predictions=[vocab[c] if c < k else None for c in p[e].tolist()])
        else:
            h = np.asarray(table.column("score").to_pylist(), dtype=np.float64)
            noise = (1.0 - q) * 6 * np.nanstd(h)
            pred = h[None, :] + vrng.normal(0, 1, (n_evaluators, n)) * noise[:, None]
            finite = np.isfinite(h)
            value, lo, hi = _spearman(h[finite], pred[:, finite])
            n_metric = int(finite.sum())

            def examples(e: int, s: int) -> RunExamples:
                return RunExamples("pointwise", n, rows_idx, s, scores=pred[e])
        runs, metric_rows, standing_rows, example_rows = [], [], [], []
        for e in range(n_evaluators):
            rid = run_id
            run_id += 1
            uri = digest = None
            ex = examples(e, 0)
            if predictions:
                uri, digest = _write_predictions(reg, _prediction_table(table, ex))
            runs.append((rid, int(evaluator_ids[e]), version_id, "succeeded", stamp, stamp, 1.0, n, 2 * n, 0, 0, 0, 0,
                         0, uri, digest, json.dumps({"bench": "queries"})))
            whole = {}
            for m in template:
                val, mlo, mhi, mn, extra = m.value, m.ci_low, m.ci_high, m.n, m.extra
                if m.slice == "all" and m.name == headline:
                    val, mlo, mhi, mn = float(value[e]), float(lo[e]), float(hi[e]), n_metric
                elif m.name == "coverage":
                    val, extra = 1.0, {**extra, "aligned": n, "judged": n, "rows": n}
                metric_rows.append((rid, m.name, m.slice, val, mlo, mhi, mn, json.dumps(extra)))
                if m.slice == "all":
                    whole[m.name] = val
            standing_rows.append((version_id, int(evaluator_ids[e]), rid, headline, float(value[e]), float(lo[e]),
                                  float(hi[e]), n_metric, n, n, 1.0, json.dumps(whole)))
            blob = ex.encode()
            counts["bytes"] += len(blob)
            example_rows.append((rid, version_id, "examples/1", blob))
        w.insert("evaluation_runs", run_cols, runs)
        w.insert("metrics", metric_cols, metric_rows)
        w.insert("standings", standing_cols, standing_rows)
        w.insert("run_examples", example_cols, example_rows)
        counts["runs"] += len(runs)
        counts["metrics"] += len(metric_rows)
        if (vi + 1) % max(1, n_versions // 10) == 0:
            log(f"  {vi + 1}/{n_versions} versions, {counts['runs']:,} runs, "
                f"{time.perf_counter() - t1:.0f} s (load {load()})")
    for table_name in ("evaluation_runs", "metrics", "standings"):
        w.sync_sequence(table_name)
    if w.pg:
        from sqlalchemy import text

        with reg.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    return {"setup_s": round(setup, 1), "build_s": round(time.perf_counter() - t1, 1), **counts,
            "versions": [v[1] for v in versions]}


def _write_predictions(reg, table) -> tuple[str, str]:
    """The predictions Parquet where the store keeps it (content-addressed, as `eval run` writes it),
    without `dvc add` (seconds per file once there are thousands; the queries only read the file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from registry.hashing import sha256_bytes

    sink = pa.BufferOutputStream()
    pq.write_table(table.replace_schema_metadata(None), sink, compression="zstd")
    blob = sink.getvalue().to_pybytes()
    digest = sha256_bytes(blob)
    relpath = reg.artifacts.relpath_for("predictions", digest, ".parquet")
    path = reg.artifacts.root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    return relpath, digest


def _prediction_table(table, ex):
    """The predictions Parquet rows a run with these per-example judgments has."""
    import pyarrow as pa

    from registry.domain.judgments import VERDICT_CODES
    from registry.services.evaluation import PREDICTION_SCHEMA

    ids = table.column("example_id").to_pylist()
    names = {code: name for name, code in VERDICT_CODES.items()}
    data: dict[str, list] = {c: [] for c in PREDICTION_SCHEMA.names}
    orders = ex.verdicts or (None,)
    for o, codes in enumerate(orders):
        for j, row in enumerate(ex.rows.tolist()):
            data["example_id"].append(ids[row])
            data["order"].append(o)
            data["sample"].append(0)
            if codes is not None:
                verdict, score = names.get(int(codes[j])), None
            elif ex.predictions is not None:
                verdict, score = ex.predictions[j], None
                verdict = None if verdict is None else str(verdict)
            else:
                verdict, score = None, float(ex.scores[j])
            data["verdict"].append(verdict)
            data["score"].append(score)
            data["prob_a"].append(None)
            data["parsed"].append(verdict is not None or score is not None)
            data["raw"].append(None)
            data["prompt_tokens"].append(0)
            data["completion_tokens"].append(0)
            data["seconds"].append(0.0)
    return pa.Table.from_pydict(data, schema=PREDICTION_SCHEMA)


# ----------------------------------------------------------------------------- timing
def timed(fn, repeat: int) -> dict:
    """The first call (cold), then the p50/p95 of ``repeat`` more."""
    t = time.perf_counter()
    answer = fn()
    cold = time.perf_counter() - t
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    return {"cold_ms": round(cold * 1000, 2), "p50_ms": round(statistics.median(times) * 1000, 2),
            "p95_ms": round(p95 * 1000, 2), "load": load(), "answer": answer}


def agree(new, old) -> bool:
    """Ranking order, values, CIs and tied set equal; p-values equal where the new path tested."""
    if [s.evaluator for s in new.standings] != [s.evaluator for s in old.standings]:
        return False
    for a, b in zip(new.standings, old.standings):
        if (a.value, a.ci_low, a.ci_high, a.tied_with_best) != (b.value, b.ci_low, b.ci_high, b.tied_with_best):
            return False
        if a.p_value is not None and a.p_value != b.p_value:
            return False
    return True


def run_size(backend: str, n_evaluators: int, n_versions: int, *, repeat: int, predictions: bool | None,
             bases: tuple[str, ...], keep: bool, log=print) -> dict:
    from registry.config import Settings
    from registry.services.app import init_registry
    from registry.services.queries import best_evaluator, leaderboard

    home = Path(tempfile.mkdtemp(prefix=f"bench-queries-{n_evaluators}x{n_versions}-"))
    pg_admin, db_name = os.environ.get("AUTORATER_TEST_PG_URL"), None
    if backend == "postgresql":
        import sqlalchemy as sa

        if not pg_admin:
            raise SystemExit("PostgreSQL: run under scripts/with-postgres.sh (AUTORATER_TEST_PG_URL)")
        db_name = f"bench_q_{n_evaluators}x{n_versions}_{uuid.uuid4().hex[:6]}"
        admin = sa.create_engine(pg_admin, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{db_name}"'))
        url = sa.engine.make_url(pg_admin).set(database=db_name).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{home / 'registry.db'}"
    settings = Settings.from_env(home=str(home), db_url=url, store=str(home / "store"),
                                 dvc_remote=str(home / "remote"), data_root=str(data_root()))
    reg = init_registry(settings)
    if predictions is None:
        predictions = n_evaluators * n_versions <= 2000
    log(f"{backend} {n_evaluators:,} evaluators × {n_versions} versions (home {home})")
    try:
        built = build(reg, n_evaluators, n_versions, bases=bases, predictions=predictions, log=log)
        log(f"  built {built['runs']:,} runs, {built['metrics']:,} metric rows, "
            f"{built['bytes'] / 2**20:.0f} MiB per-example judgments in {built['build_s']} s (load {load()})")
        pairwise = [v for v in built["versions"] if reg.store.get_version(v).task_type == "pairwise"]
        target = max(pairwise, key=lambda v: reg.store.get_version(v).row_count)
        queries = {
            "best --dataset": lambda: best_evaluator(reg, dataset=target),
            "best --task-type pairwise": lambda: best_evaluator(reg, task_type="pairwise"),
            "leaderboard --dataset": lambda: leaderboard(reg, target),
            "best --dataset, limit 50": lambda: best_evaluator(reg, dataset=target, limit=50),
            "best --task-type pairwise, limit 50": lambda: best_evaluator(reg, task_type="pairwise", limit=50),
        }
        out = {"backend": backend, "evaluators": n_evaluators, "versions": n_versions, "target": target,
               "target_rows": reg.store.get_version(target).row_count, **{k: v for k, v in built.items()
                                                                           if k != "versions"}, "queries": {}}
        from registry.services import queries as q

        memo = q.MEMO_SIZE
        for name, fn in queries.items():
            q.MEMO_SIZE = 0            # the store read: what every call of a new process (the CLI) pays
            got = timed(fn, repeat)
            answer = got.pop("answer")
            q.MEMO_SIZE = memo         # a long-lived process: the answer kept while nothing landed
            fn()
            warm = timed(fn, repeat)
            warm.pop("answer")
            got.update({"memo_p50_ms": warm["p50_ms"], "memo_p95_ms": warm["p95_ms"]})
            got["standings"] = len(answer.standings)
            got["tested"] = sum(1 for s in answer.standings[1:] if s.p_value is not None)
            got["tied"] = len(answer.tied)
            out["queries"][name] = got
            log(f"  {name:26s} first {got['cold_ms']:8.1f} ms | store read p50 {got['p50_ms']:7.2f} p95 "
                f"{got['p95_ms']:7.2f} ms | in-process p50 {warm['p50_ms']:6.2f} p95 {warm['p95_ms']:6.2f} ms | "
                f"{got['standings']:,} standings, {got['tested']:,} tested, {got['tied']} tied (load {got['load']})")
        q.MEMO_SIZE = 0
        if predictions:
            fresh = {
                "best --dataset": lambda: best_evaluator(reg, dataset=target, fresh=True),
                "best --task-type pairwise": lambda: best_evaluator(reg, task_type="pairwise", fresh=True),
                "leaderboard --dataset": lambda: leaderboard(reg, target, fresh=True),
            }
            fresh["best --dataset, limit 50"] = lambda: best_evaluator(reg, dataset=target, fresh=True, limit=50)
            fresh["best --task-type pairwise, limit 50"] = lambda: best_evaluator(reg, task_type="pairwise", fresh=True,
                                                                                   limit=50)
            for name, fn in fresh.items():
                got = timed(fn, max(2, repeat // 10))
                same = agree(queries[name](), got.pop("answer"))
                out["queries"][name]["fresh_p50_ms"] = got["p50_ms"]
                out["queries"][name]["same_as_fresh"] = same
                log(f"  {name:26s} fresh (today's computation) p50 {got['p50_ms']:9.1f} ms; same answer: {same}"
                    f" (load {got['load']})")
        q.MEMO_SIZE = memo
        return out
    finally:
        reg.close()
        if not keep:
            shutil.rmtree(home, ignore_errors=True)
            if db_name:
                import sqlalchemy as sa

                admin = sa.create_engine(pg_admin, isolation_level="AUTOCOMMIT")
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))


# ----------------------------------------------------------------------------- a kept registry, new processes
_ASK = r"""
import json, os, sys, time
t0 = time.perf_counter()
from registry import api
from registry.config import Settings
from registry.services import queries as q
home, data, what, target, n_boot, limit, new = sys.argv[1:8]
limit = None if limit == "none" else int(limit)
kw = {"limit": limit} if new == "1" else {}
ctx = api.open(settings=Settings.from_env(home=home, data_root=data))._ctx
t1 = time.perf_counter()
if what == "leaderboard":
    r = q.leaderboard(ctx, target, n_boot=int(n_boot), **kw)
elif what == "best-dataset":
    r = q.best_evaluator(ctx, dataset=target, n_boot=int(n_boot), **kw)
else:
    r = q.best_evaluator(ctx, task_type=target, n_boot=int(n_boot), **kw)
r = r.head(limit)
t2 = time.perf_counter()
print(json.dumps({"open_ms": (t1 - t0) * 1000, "query_ms": (t2 - t1) * 1000, "best": r.best.evaluator,
                  "tied": list(r.to_dict()["tied_with_best"]), "total": r.to_dict()["standings_total"],
                  "head": [s.evaluator for s in r.standings]}))
"""


def _ask(home: Path, what: str, target: str, *, n_boot: int, limit: int | None, code: str | None) -> dict:
    """One query in a new Python process (``code``: a folder holding another ``registry`` package, e.g.
    an older commit's); its own timing of opening the registry and of the query, and the process's wall time."""
    import subprocess

    env = dict(os.environ)
    if code:
        env["PYTHONPATH"] = code
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _ASK, str(home), str(data_root()), what, target, str(n_boot),
                          "none" if limit is None else str(limit), "0" if code else "1"],
                         env=env, cwd=code or PROJECT_ROOT, capture_output=True, text=True, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    got["process_ms"] = (time.perf_counter() - t) * 1000
    return got


def _land(reg, target: str, evaluator: str, shift: float) -> int:
    """A run of ``evaluator`` lands on ``target``: a copy of its latest run there (metrics, per-example
    judgments) with the headline moved by ``shift``, recorded as the store records an imported run."""
    from datetime import datetime, timezone

    from registry.domain.entities import MetricRecord
    from registry.services.scoring import headline_for

    store = reg.store
    run = next(r for r in store.latest_runs(datasets=[target]) if r.evaluator == evaluator)
    headline = headline_for(store.get_version(target))

    class Metrics(list):
        examples = store.run_examples([run.id]).get(run.id)

    metrics = Metrics(MetricRecord(m.name, m.value + shift if m.name == headline and m.slice == "all" else m.value,
                                   m.ci_low, m.ci_high, m.n, m.slice, dict(m.extra or {})) for m in run.metrics)
    now = datetime.now(timezone.utc)
    new = store.add_finished_run(evaluator=evaluator, dataset=target, started_at=now, finished_at=now, seconds=0.0,
                                 seed=run.seed, n_examples=run.n_examples, n_judgments=run.n_examples,
                                 predictions_uri="", predictions_sha256="", provenance={"bench": "landing"},
                                 metrics=metrics)
    return new.id


def kept_registry(home: Path, *, old: str, repeat: int, log=print) -> dict:
    """New-process timings of ``best`` (limit 50) and ``leaderboard`` on the kept registry in ``home`` (e.g.
    bench/web.py's --best-workdir; it is changed: runs land on it), this code against ``old`` (a folder with
    an older ``registry`` package) alternating, then the first ``best --task-type`` after a run lands.
    The old code asks with ``n_boot=999`` so that its cached answers do not share keys with this code's
    (``n_boot=1000``, the default; the cost is the same)."""
    from registry import api
    from registry.config import Settings

    meta = json.loads((home / "bench-web.json").read_text())
    target = meta["target"]
    out: dict = {"home": str(home), "evaluators": meta["evaluators"], "versions": meta["versions"], "target": target,
                 "load_before": load(), "fresh_process": {}, "after_landing": []}
    asks = [("best-dataset", target, 50), ("best-task-type", "pairwise", 50), ("leaderboard", target, None)]
    codes = {"new": None, "old": old}
    for what, tgt, limit in asks:                  # compute and cache what each code caches
        for name, code in codes.items():
            got = _ask(home, what, tgt, n_boot=999 if code else 1000, limit=limit, code=code)
            log(f"  warm-up {what:15s} {name}: query {got['query_ms']:9.1f} ms (load {load()})")
    for what, tgt, limit in asks:
        times: dict[str, list[dict]] = {"new": [], "old": []}
        for _ in range(repeat):
            for name, code in codes.items():
                times[name].append(_ask(home, what, tgt, n_boot=999 if code else 1000, limit=limit, code=code))
        row = {}
        for name, got in times.items():
            row[name] = {k: round(statistics.median(g[k] for g in got), 2) for k in ("open_ms", "query_ms", "process_ms")}
        row["same_answer"] = all(times["new"][0][k] == times["old"][0][k] for k in ("best", "total", "head"))
        row["ratio_query"] = round(row["old"]["query_ms"] / row["new"]["query_ms"], 1)
        out["fresh_process"][f"{what} limit={limit}"] = row
        log(f"  new process, {what:15s} limit {limit}: query p50 old {row['old']['query_ms']:9.1f} ms, new "
            f"{row['new']['query_ms']:7.2f} ms ({row['ratio_query']}x); whole process old {row['old']['process_ms']:.0f}"
            f" ms, new {row['new']['process_ms']:.0f} ms; same answer {row['same_answer']} (load {load()})")
    reg = api.open(settings=Settings.from_env(home=str(home), data_root=str(data_root())))._ctx
    try:
        board = reg.store.standings([target])
        others = sorted(r.evaluator for r in board)[1:4]
        for i, who in enumerate(others):
            for name, code in codes.items():
                _land(reg, target, who, 1e-4 * (i + 1))
                got = _ask(home, "best-task-type", "pairwise", n_boot=999 if code else 1000, limit=50, code=code)
                out["after_landing"].append({"code": name, "evaluator": who, "query_ms": round(got["query_ms"], 1)})
                log(f"  a run of {who} lands on {target}; first best --task-type ({name} code): "
                    f"{got['query_ms'] / 1000:7.2f} s (load {load()})")
    finally:
        reg.close()
    out["load_after"] = load()
    return out


_LAND = r"""
import json, sys
home, data, target, evaluator, shift, root = sys.argv[1:7]
sys.path.append(root)              # bench.queries; the registry package stays the one PYTHONPATH names
from bench.queries import _land
from registry import api
from registry.config import Settings
reg = api.open(settings=Settings.from_env(home=home, data_root=data))._ctx
print(json.dumps({"run": _land(reg, target, evaluator, float(shift))}))
"""


def _land_in(home: Path, target: str, evaluator: str, shift: float, code: str | None) -> int:
    """:func:`_land` in a new process running ``code``'s ``registry`` package (``None``: this one)."""
    import subprocess

    env = dict(os.environ)
    if code:
        env["PYTHONPATH"] = code
    out = subprocess.run([sys.executable, "-c", _LAND, str(home), str(data_root()), target, evaluator, str(shift),
                          str(PROJECT_ROOT)],
                         env=env, cwd=code or PROJECT_ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["run"]


def landings(home: Path, old_home: Path, *, old: str, n: int, log=print) -> dict:
    """The first ``best --task-type pairwise`` (limit 50, a new process) after a run lands, this code on the
    kept registry ``home`` against ``old`` (an older ``registry`` package) on ``old_home`` (a second copy of
    the same registry at that code's schema), alternating: the same runs land on both copies (revision 0007
    and later: the new code reads only the standings rows written since its cached ranking)."""
    meta = json.loads((home / "bench-web.json").read_text())
    target = meta["target"]
    out: dict = {"home": str(home), "old_home": str(old_home), "target": target, "load_before": load(),
                 "warm_up": {}, "after_landing": []}
    homes = {"new": (home, None), "old": (old_home, old)}
    for name, (where, code) in homes.items():        # each computes and caches the ranking once
        got = _ask(where, "best-task-type", "pairwise", n_boot=1000, limit=50, code=code)
        out["warm_up"][name] = round(got["query_ms"], 1)
        log(f"  warm-up best --task-type ({name} code): {got['query_ms'] / 1000:7.2f} s (load {load()})")
    with sqlite3.connect(home / "registry.db") as conn:
        names = [r[0] for r in conn.execute(
            "SELECT e.name FROM standings s JOIN evaluators e ON e.id = s.evaluator_id JOIN dataset_versions v "
            "ON v.id = s.dataset_version_id JOIN datasets d ON d.id = v.dataset_id WHERE d.name = ? AND "
            "v.version = ? ORDER BY e.name LIMIT ?", (*target.split("@"), n + 1))]
    answers: dict[str, list] = {"new": [], "old": []}
    for i, who in enumerate(names[1:n + 1]):
        for name, (where, code) in homes.items():
            _land_in(where, target, who, 1e-4 * (i + 1), code)
            got = _ask(where, "best-task-type", "pairwise", n_boot=1000, limit=50, code=code)
            answers[name].append((got["best"], got["tied"], got["total"], got["head"]))
            out["after_landing"].append({"code": name, "evaluator": who, "query_ms": round(got["query_ms"], 1)})
            log(f"  a run of {who} lands on {target}; first best --task-type ({name} code): "
                f"{got['query_ms'] / 1000:7.2f} s (load {load()})")
    out["same_answers"] = answers["new"] == answers["old"]
    log(f"  same answers (best, tied, total, first 50): {out['same_answers']}")
    out["load_after"] = load()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100x10,1000x50,10000x100", help="EVALUATORSxVERSIONS,… (default: %(default)s)")
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    ap.add_argument("--quick", action="store_true", help="a small run: 50×4 on four real datasets")
    ap.add_argument("--repeat", type=int, default=30, help="timed calls after the first (default: %(default)s)")
    ap.add_argument("--predictions", action=argparse.BooleanOptionalAction, default=None,
                    help="write every run's predictions Parquet and time today's computation beside (default: "
                         "for registries of at most 2,000 runs)")
    ap.add_argument("--keep", action="store_true", help="keep the registries (their folder is printed)")
    ap.add_argument("--out", help="append the results as JSON lines to this file")
    ap.add_argument("--registry", help="time new processes on this kept registry (bench/web.py --best-workdir; runs "
                                       "land on it) against --old instead of building registries")
    ap.add_argument("--old", help="with --registry: a folder holding the older registry package to compare with")
    ap.add_argument("--old-registry", help="with --registry and --old: only the first best --task-type after each "
                                           "of --landings runs lands, the old code on this second copy (its schema)")
    ap.add_argument("--landings", type=int, default=3, help="with --old-registry: runs landed (default: %(default)s)")
    args = ap.parse_args(argv)
    if args.registry and args.old_registry:
        print(f"bench.queries: {' '.join(sys.argv)}; load {load()}; {os.cpu_count()} CPUs", flush=True)
        result = landings(Path(args.registry), Path(args.old_registry), old=args.old, n=args.landings,
                          log=lambda m: print(m, flush=True))
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(result) + "\n")
        return 0
    if args.registry:
        print(f"bench.queries: {' '.join(sys.argv)}; load {load()}; {os.cpu_count()} CPUs", flush=True)
        result = kept_registry(Path(args.registry), old=args.old, repeat=args.repeat,
                               log=lambda m: print(m, flush=True))
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(result) + "\n")
        return 0
    sizes = [(50, 4)] if args.quick else [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",")]
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    bases = QUICK_BASES if args.quick else BASES
    print(f"bench.queries: {' '.join(sys.argv)}; load {load()}; {os.cpu_count()} CPUs", flush=True)
    for backend in backends:
        for e, v in sizes:
            result = run_size(backend, e, v, repeat=args.repeat, predictions=args.predictions, bases=bases,
                              keep=args.keep, log=lambda m: print(m, flush=True))
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
