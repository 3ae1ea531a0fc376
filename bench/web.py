"""Latency of the REST API and the web pages over real HTTP, beside the same query through the Python
API (issue 14, item 6).

    .venv/bin/python -m bench.web                                   # 1,000 evaluators × 100 versions
    .venv/bin/python -m bench.web --workdir /tmp/bw --reuse         # build once, measure again later
    .venv/bin/python -m bench.web --best-size 10000x100 --best-workdir /tmp/bw10k --reuse
    .venv/bin/python -m bench.web --json bench/out/web.json --profile "page /matrix"
    .venv/bin/python -m bench.web --workdir .autorater/bench-web/1k-pg --reuse \
        --db-url postgresql+psycopg://postgres@127.0.0.1:55461/bench_web_1k     # the same on PostgreSQL
    .venv/bin/python -m bench.web --workdir DIR --build-only                    # build (or check) only

The registry is built by :func:`bench.queries.build` (16 real datasets, E synthetic evaluators × V
synthetic dataset versions, one succeeded run each with its metrics, standings row and per-example
judgments) in a SQLite registry under ``--workdir`` — or in the PostgreSQL database of ``--db-url`` (dropped
and created again for a build; the store stays under ``--workdir``) — and ``--reuse`` opens one built before.
The app of
:func:`registry.web.app.create_app` is served by uvicorn on 127.0.0.1 in a thread of this process and
asked over real HTTP by a keep-alive ``httpx.Client``. After a warm-up, each request is timed ``-n``
times, alternating with the Python API calls its handler makes (the same query, in the same process,
on the same open registry: the memo of :mod:`registry.services.queries` is on for both), so the
difference is what HTTP, the web framework, serialisation to JSON or rendering the page add. For the
API a third column (``+JSON``) times the Python call and the encoding of its answer into the API's
JSON body (``to_jsonable`` and the API's encoder, as the handler does): what is left is HTTP and the
framework.

``--best-size EXV`` builds (or reuses, ``--best-workdir``) a second registry just for ``GET /best``
(a dataset and a task type) at that size: the issue's target is the HTTP overhead there (≤ 5 ms at
p50 at 10,000 × 100). Its build takes ~15 minutes on two cores; its time is printed. ``/best`` lists the
first ``limit`` standings (default 50, as the Python call beside it: ``best(..., limit=50)``); the row
``api best?task_type (all)`` asks for every standing (``limit=100000``, over a megabyte at 10,000
evaluators) and is shown for comparison, not held to the target.

``--profile NAME`` samples every thread's Python stack every millisecond while that request (a name
of the table, e.g. ``"page /matrix"``) is repeated, and prints the functions where the time goes
(inclusive share of the samples), pyinstrument-style. The load average is printed beside every timing:
the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from bench.queries import BASES, build, data_root, load

META = "bench-web.json"
"""What the build left in the workdir for ``--reuse`` (targets, counts, build time)."""


# ----------------------------------------------------------------------------- the registry
def _settings(workdir: Path, db_url: str | None = None):
    from registry.config import Settings

    extra = {"db_url": db_url} if db_url else {}
    return Settings.from_env(home=str(workdir), data_root=str(data_root()), **extra)


def _backend(db_url: str | None) -> str:
    return "postgresql" if db_url and db_url.startswith("postgresql") else "sqlite"


def _fresh_database(db_url: str) -> None:
    """Drop and create the PostgreSQL database ``db_url`` names (through the server's ``postgres`` database)."""
    import sqlalchemy as sa

    url = sa.engine.make_url(db_url)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
    finally:
        admin.dispose()


def open_registry(workdir: Path, evaluators: int, versions: int, *, reuse: bool, db_url: str | None = None,
                  log=print):
    """The registry of ``workdir`` (and of ``db_url`` when given: a PostgreSQL database), built now unless
    ``reuse`` finds one of that size there, and its metadata."""
    from registry import api

    meta_path = workdir / META
    if reuse and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        same_db = meta.get("db_url", None) == (db_url or None)
        if (meta["evaluators"], meta["versions"]) == (evaluators, versions) and same_db:
            log(f"reusing {evaluators:,} × {versions} in {workdir} ({_backend(db_url)}; built in {meta['build_s']} s)")
            return api.open(settings=_settings(workdir, db_url)), meta
        log(f"{workdir} holds {meta['evaluators']}x{meta['versions']} on {meta.get('db_url') or 'SQLite'}, not "
            f"{evaluators}x{versions} on {db_url or 'SQLite'}: rebuilding")
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    if _backend(db_url) == "postgresql":
        _fresh_database(db_url)
    reg = api.init(settings=_settings(workdir, db_url))
    log(f"building {evaluators:,} evaluators × {versions} versions in {workdir} (load {load()})")
    t0 = time.perf_counter()
    built = build(reg._ctx, evaluators, versions, bases=BASES, predictions=False, log=log)
    store = reg._ctx.store
    pairwise = [(store.get_version(v).row_count, v) for v in built["versions"]
                if store.get_version(v).task_type == "pairwise"]
    target = max(pairwise)[1]
    base = next(b for b in BASES if target.split("@")[0].endswith(b))
    meta = {"evaluators": evaluators, "versions": versions, "build_s": round(time.perf_counter() - t0, 1),
            "setup_s": built["setup_s"], "runs": built["runs"], "metrics": built["metrics"], "target": target,
            "target_rows": max(pairwise)[0], "real_dataset": f"{base}@1", "built_load": load(),
            "db_url": db_url or None}
    meta_path.write_text(json.dumps(meta, indent=1))
    log(f"built {built['runs']:,} runs, {built['metrics']:,} metric rows in {meta['build_s']} s "
        f"(setup {built['setup_s']} s; load {load()})")
    return reg, meta


# ----------------------------------------------------------------------------- the server
class Server:
    """uvicorn serving ``app`` on 127.0.0.1 in a daemon thread of this process."""

    def __init__(self, app) -> None:
        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise SystemExit("uvicorn did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


# ----------------------------------------------------------------------------- what is timed
@dataclass
class Probe:
    name: str
    path: str
    python: Callable[[], object]
    """The Python API calls the handler makes (the same query)."""
    calls: str


def probes(reg, meta: dict, *, only_best: bool = False) -> list[Probe]:
    target = meta["target"]
    name = target.split("@")[0]
    t = quote(target, safe="")
    out = [
        Probe("api best?dataset", f"/api/v1/best?dataset={t}", lambda: reg.best(dataset=target, limit=50),
              "best(dataset=, limit=50)"),
        Probe("api best?task_type", "/api/v1/best?task_type=pairwise",
              lambda: reg.best(task_type="pairwise", limit=50), "best(task_type=, limit=50)"),
        Probe(ALL_STANDINGS, "/api/v1/best?task_type=pairwise&limit=100000",
              lambda: reg.best(task_type="pairwise"), "best(task_type=) (every standing)"),
    ]
    if only_best:
        return out
    from registry.web.api import encode_cursor
    from registry.web.pages import PAGE_ROWS

    cursor, rows_page = encode_cursor(100), 100 // PAGE_ROWS + 1      # both from the 100th row labelled A
    synthetic = reg.runs(dataset=target, limit=1)[0].id
    real = reg.runs(dataset=meta["real_dataset"], evaluator="random", limit=1)[0].id
    out += [
        Probe("api leaderboard", f"/api/v1/leaderboard?dataset={t}", lambda: reg.leaderboard(target),
              "leaderboard()"),
        Probe("api datasets", "/api/v1/datasets", lambda: reg.datasets(), "datasets()"),
        Probe("api datasets/{name}", f"/api/v1/datasets/{quote(name)}",
              lambda: (reg.dataset(name), reg.versions(name)), "dataset(), versions()"),
        Probe("api runs/{id}", f"/api/v1/runs/{synthetic}", lambda: reg.run(synthetic), "run()"),
        Probe("api runs?dataset", f"/api/v1/runs?dataset={t}", lambda: reg.runs(dataset=target, limit=51),
              "runs(limit=51)"),
        Probe("api matrix", "/api/v1/matrix", lambda: reg.headline_matrix(), "headline_matrix() (not paginated)"),
        Probe("api datasets/{ref}/rows?label", f"/api/v1/datasets/{t}/rows?label=A&limit=50&cursor={cursor}",
              lambda: reg.rows(target, offset=100, limit=50, label="A"), "rows(offset=100, limit=50, label=)"),
        Probe("page /", "/", lambda: (reg.info(), reg.datasets(), reg.runs(limit=12), reg.regressions(status="open"),
                                      reg.evaluators()), "info(), datasets(), runs(), regressions(), evaluators()"),
        Probe("page /datasets", "/datasets", lambda: (reg.datasets(), reg.datasets()), "datasets() ×2"),
        Probe("page /leaderboard/{ref}", f"/leaderboard/{quote(target)}",
              lambda: (reg.dataset(target), reg.leaderboard(target), reg.evaluators(), reg.metrics("pairwise")),
              "dataset(), leaderboard(), evaluators(), metrics()"),
        Probe("page /runs/{id}", f"/runs/{synthetic}", lambda: (reg.run(synthetic), reg.dataset(target),
                                                                reg.evaluator(reg.run(synthetic).evaluator)),
              "run(), dataset(), evaluator()"),
        Probe("page /runs/{id} (predictions)", f"/runs/{real}",
              lambda: (reg.run(real), reg.dataset(meta["real_dataset"]), reg.predictions(real),
                       reg.load_table(meta["real_dataset"])), "run(), dataset(), predictions(), load_table()"),
        Probe("page /best?task_type", "/best?task_type=pairwise",
              lambda: (reg.datasets(), reg.best(task_type="pairwise"), reg.metrics("pairwise"), reg.evaluators()),
              "datasets(), best(), metrics(), evaluators()"),
        Probe("page /matrix", "/matrix", lambda: (reg.headline_matrix(), reg.evaluators()),
              "headline_matrix(), evaluators()"),
        Probe("page /rows/{ref}?label", f"/rows/{quote(target)}?label=A&page={rows_page}",
              lambda: (reg.dataset(target), reg.rows(target, offset=100, limit=PAGE_ROWS, label="A")),
              f"dataset(), rows(offset=100, limit={PAGE_ROWS}, label=)"),
    ]
    return out


ALL_STANDINGS = "api best?task_type (all)"
"""The /best row that lists every standing: for comparison, not held to the overhead target."""


def pct(times: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``times``, in ms."""
    s = sorted(times)
    return 1000 * s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def measure(client, probe: Probe, n: int, warmup: int) -> dict:
    """``n`` HTTP requests alternating with ``n`` Python calls, after ``warmup`` of each."""
    size = 0
    for _ in range(warmup):
        r = client.get(probe.path)
        if r.status_code != 200:
            raise SystemExit(f"{probe.name}: GET {probe.path} → {r.status_code}: {r.text[:300]}")
        size = len(r.content)
        probe.python()
    api = probe.path.startswith("/api/")
    if api:
        from registry.domain.serialization import to_jsonable
        from registry.web.api import JSONData
    http, py, encoded = [], [], []
    for _ in range(n):
        t = time.perf_counter()
        r = client.get(probe.path)
        http.append(time.perf_counter() - t)
        if r.status_code != 200:
            raise SystemExit(f"{probe.name}: GET {probe.path} → {r.status_code}")
        t = time.perf_counter()
        answer = probe.python()
        py.append(time.perf_counter() - t)
        if api:                      # the same answer as the API's JSON body, without HTTP
            JSONData(to_jsonable(answer))
            encoded.append(time.perf_counter() - t)
    out = {"path": probe.path, "python_calls": probe.calls, "bytes": size, "n": n,
           "http_p50_ms": round(pct(http, 0.5), 2), "http_p95_ms": round(pct(http, 0.95), 2),
           "python_p50_ms": round(pct(py, 0.5), 3), "python_p95_ms": round(pct(py, 0.95), 3), "load": load()}
    if encoded:
        out["python_json_p50_ms"] = round(pct(encoded, 0.5), 2)
    out["overhead_p50_ms"] = round(out["http_p50_ms"] - out["python_p50_ms"], 2)
    out["ratio_p50"] = round(out["http_p50_ms"] / out["python_p50_ms"], 1) if out["python_p50_ms"] > 0 else None
    return out


# ----------------------------------------------------------------------------- where the time goes
def profile(client, probe: Probe, repeat: int, top: int = 25) -> list[tuple[str, float]]:
    """Sample the server threads' stacks every ~1 ms while ``probe`` is requested ``repeat`` times; the
    functions with the largest inclusive share of the samples (each counted once per sample)."""
    me, stop = threading.get_ident(), threading.Event()
    hits: Counter[str] = Counter()
    total = [0]

    def sample() -> None:
        sampler = threading.get_ident()
        while not stop.is_set():
            for ident, frame in sys._current_frames().items():
                if ident in (me, sampler):
                    continue
                seen, f, busy = set(), frame, False
                while f is not None:
                    code = f.f_code
                    file = code.co_filename
                    file = "registry/" + file.rpartition("/registry/")[2] if "/registry/" in file else \
                        "/".join(Path(file).parts[-2:])
                    where = f"{code.co_name} ({file}:{code.co_firstlineno})"
                    busy = busy or "/registry/" in code.co_filename
                    seen.add(where)
                    f = f.f_back
                if busy:                      # a thread at work on the request (not an idle worker)
                    total[0] += 1
                    hits.update(seen)
            time.sleep(0.001)

    th = threading.Thread(target=sample, daemon=True)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)     # the sampler gets the GIL often enough to see the server's work
    th.start()
    try:
        for _ in range(repeat):
            client.get(probe.path)
    finally:
        stop.set()
        th.join()
        sys.setswitchinterval(switch)
    shares = [(k, 100 * v / max(1, total[0])) for k, v in hits.most_common()]
    return [(f"{total[0]} samples", 100.0)] + [(k, s) for k, s in shares if s < 99.5 and _telling(k)][:top]


TELLING = ("registry/", "json/", "jinja2/", "sqlalchemy/engine/", "orm/loading", "pyarrow/", "h11/", "httptools",
           "starlette/responses", "plotly/")


def _telling(where: str) -> bool:
    """A frame that says where the time goes: the project's own code and the libraries' working parts
    (not the event loop, the thread pool or the routing around them)."""
    return any(t in where for t in TELLING)


# ----------------------------------------------------------------------------- the run
def serve_and_measure(reg, meta: dict, *, n: int, warmup: int, only_best: bool, profile_names: list[str],
                      slow_n: int = 5, log=print) -> tuple[dict, dict]:
    import httpx

    from registry.web.app import WebSettings, create_app, tune_gc

    app = create_app(registry=reg, web=WebSettings(token=None, public_read=True))
    tune_gc()  # as `autorater ui` and `autorater serve` do in the process that serves
    results, profiles = {}, {}
    with Server(app) as base, httpx.Client(base_url=base, timeout=600) as client:
        for probe in probes(reg, meta, only_best=only_best):
            t = time.perf_counter()
            client.get(probe.path)                       # the first request: computes what the memo keeps
            first = time.perf_counter() - t
            slow = first > 1.0                           # seconds a request: fewer timed ones (said in the table)
            got = measure(client, probe, min(n, slow_n) if slow else n, min(warmup, 1) if slow else warmup)
            got["first_ms"] = round(first * 1000, 1)
            results[probe.name] = got
            log(row(probe.name, got))
            if probe.name in profile_names:
                profiles[probe.name] = profile(client, probe, got["n"])
                for where, share in profiles[probe.name]:
                    log(f"      {share:5.1f}%  {where}")
    return results, profiles


HEADER = (f"{'request':32s} {'n':>3s} {'HTTP p50':>9s} {'p95':>8s} | {'Python p50':>10s} {'p95':>8s} | "
          f"{'+JSON p50':>9s} | {'overhead p50':>12s} {'ratio':>6s} | {'bytes':>10s} | load")


def row(name: str, r: dict) -> str:
    ratio = "-" if r["ratio_p50"] is None else f"{r['ratio_p50']:.1f}×"
    enc = f"{r['python_json_p50_ms']:.1f}ms" if "python_json_p50_ms" in r else "-"
    return (f"{name:32s} {r['n']:3d} {r['http_p50_ms']:7.1f}ms {r['http_p95_ms']:6.1f}ms | {r['python_p50_ms']:8.2f}ms "
            f"{r['python_p95_ms']:6.2f}ms | {enc:>9s} | {r['overhead_p50_ms']:10.1f}ms {ratio:>6s} | {r['bytes']:10,d} | "
            f"{r['load']}")


def size(text: str) -> tuple[int, int]:
    e, v = (int(x) for x in text.lower().split("x"))
    return e, v


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1000x100", help="EVALUATORSxVERSIONS of the registry (default: %(default)s)")
    ap.add_argument("--workdir", help="where the registry is built (default: a folder under /tmp, removed after)")
    ap.add_argument("--reuse", action="store_true", help="open the registry --workdir already holds, if of that size")
    ap.add_argument("--best-size", help="also time /best on a registry of this size (e.g. 10000x100; ~15 min build)")
    ap.add_argument("--best-workdir", help="where the --best-size registry is built (default: a folder under /tmp)")
    ap.add_argument("--best-only", action="store_true", help="only the --best-size measurement")
    ap.add_argument("-n", type=int, default=50, help="timed requests per endpoint or page (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed requests before (default: %(default)s)")
    ap.add_argument("--slow-n", type=int, default=5,
                    help="timed requests where the first took over a second (default: %(default)s)")
    ap.add_argument("--profile", action="append", default=[], metavar="NAME",
                    help="sample where the time of this request goes (a name of the table; repeatable)")
    ap.add_argument("--db-url", help="the main registry's database: a PostgreSQL URL, e.g. "
                    "postgresql+psycopg://postgres@127.0.0.1:55461/bench_web_1k (its database is dropped and created "
                    "again for a build); default: SQLite under --workdir")
    ap.add_argument("--build-only", action="store_true", help="build (or, with --reuse, check) the registries only")
    ap.add_argument("--json", help="write the numbers to this file")
    args = ap.parse_args(argv)

    import tempfile

    def log(m: str) -> None:
        print(m, flush=True)

    log(f"bench.web: {' '.join(sys.argv)}; load {load()}; {os.cpu_count()} CPUs; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    out: dict = {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
                 "cpus": os.cpu_count(), "load_start": load(), "backend": _backend(args.db_url)}
    jobs = [] if args.best_only else [("main", args.size, args.workdir, False)]
    if args.best_size:
        jobs.append(("best", args.best_size, args.best_workdir, True))
    for key, spec, workdir, only_best in jobs:
        e, v = size(spec)
        temporary = workdir is None
        folder = Path(workdir or tempfile.mkdtemp(prefix=f"bench-web-{spec}-")).resolve()
        reg, meta = open_registry(folder, e, v, reuse=args.reuse, db_url=args.db_url if key == "main" else None,
                                  log=log)
        if args.build_only:
            reg.close()
            continue
        try:
            log(f"\n{e:,} evaluators × {v} versions ({meta['runs']:,} runs); target {meta['target']} "
                f"({meta['target_rows']:,} pairs); n={args.n}; load {load()}")
            log(HEADER)
            results, profiles = serve_and_measure(reg, meta, n=args.n, warmup=args.warmup, only_best=only_best,
                                                  profile_names=args.profile, slow_n=args.slow_n, log=log)
            out[key] = {"size": spec, "workdir": str(folder), "build": meta, "results": results,
                        "profiles": {k: [[w, round(s, 1)] for w, s in p] for k, p in profiles.items()}}
        finally:
            reg.close()
            if temporary:
                shutil.rmtree(folder, ignore_errors=True)
    out["load_end"] = load()
    verdicts = targets(out)
    for line in verdicts:
        log(line)
    out["targets"] = verdicts
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


def targets(out: dict) -> list[str]:
    """The issue's targets, each met or not."""
    lines = []
    if "main" in out:
        res = out["main"]["results"]
        over = {k: r["http_p95_ms"] for k, r in res.items() if r["http_p95_ms"] > 200}
        worst = max(res.items(), key=lambda kv: kv[1]["http_p95_ms"])
        lines.append(f"pages and API p95 ≤ 200 ms at {out['main']['size']}: "
                     + ("met" if not over else "NOT met for " + ", ".join(f"{k} ({v:.0f} ms)" for k, v in over.items()))
                     + f" (slowest: {worst[0]} {worst[1]['http_p95_ms']:.0f} ms)")
    if "best" in out:
        for k, r in out["best"]["results"].items():
            if k == ALL_STANDINGS:
                continue
            ok = r["overhead_p50_ms"] <= 5
            lines.append(f"HTTP overhead p50 ≤ 5 ms for {k} at {out['best']['size']}: "
                         f"{'met' if ok else 'NOT met'} ({r['overhead_p50_ms']:.1f} ms)")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
