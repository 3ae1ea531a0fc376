"""``meta_evaluate`` on a real Dask cluster (``prefect-dask``'s ``DaskTaskRunner``, chosen by
``AUTORATER_DASK_ADDRESS``) against PostgreSQL: a worker process is SIGKILLed in the middle of a
pair, Dask runs that pair again on a live worker, and the matrix completes with exactly one
succeeded run per pair, the dead attempt's run marked abandoned and its saved judgments reused.

The slow pair comes from a test-only evaluator kind (``slow-random``: the ``random`` heuristic that
sleeps per example judged and notes each batch under the pid of the process judging), registered in the test
process and, through a Dask worker plugin, in every worker (restarted ones included)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from registry.adapters.evaluators import EVALUATORS
from registry.adapters.evaluators.heuristics import RandomConfig, RandomEvaluator
from registry.services.claims import ABANDONED
from tests.flows.helpers import DATA, run_counts, succeeded

SLOW_KIND = "slow-random"
SLOW_TARGET = "tests.flows.test_dask:SlowRandomEvaluator"


class SlowRandomConfig(RandomConfig):
    """``random``'s keys, plus a pause per example judged and a folder for the judging pids."""

    delay: float = 0.0
    pid_dir: str | None = None


class SlowRandomEvaluator(RandomEvaluator):
    """``random``, slowed down: each batch first waits ``delay`` seconds per example, and is noted in
    ``pid_dir/<pid>.<instance>`` (test only)."""

    kind = SLOW_KIND
    Config = SlowRandomConfig

    def judge(self, ctx, examples, *, sample: int = 0):
        if self.settings.pid_dir:  # one line per batch, in a file per process and run (evaluator instance)
            with (Path(self.settings.pid_dir) / f"{os.getpid()}.{id(self)}").open("a") as f:
                f.write(f"{len(examples)}\n")
        time.sleep(self.settings.delay * len(examples))
        return super().judge(ctx, examples, sample=sample)


def _register_slow_kind() -> None:
    EVALUATORS.register(SLOW_KIND, SLOW_TARGET)


def _worker_plugin():
    from distributed import WorkerPlugin

    class RegisterSlowKind(WorkerPlugin):
        name = "register-slow-random"

        def setup(self, worker) -> None:
            _register_slow_kind()

    return RegisterSlowKind()


@pytest.fixture
def cluster(tmp_path):
    """Two single-threaded worker processes whose own environment names a registry that does not
    exist: the pair tasks can only reach the test's registry through the settings they are given."""
    from distributed import Client, LocalCluster

    wrong = {"AUTORATER_HOME": str(tmp_path / "not-the-registry"),
             "AUTORATER_DB_URL": "postgresql+psycopg://nobody@127.0.0.1:1/nothing",
             "AUTORATER_STORE": str(tmp_path / "not-the-store"), "OMP_NUM_THREADS": "1"}
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=":0", env=wrong) as lc, Client(lc) as client:
        client.register_plugin(_worker_plugin())
        yield lc, client


def test_the_task_runner_is_chosen_from_the_settings_when_a_flow_run_starts(monkeypatch):
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from flows._common import DEFAULT_WORKERS
    from flows.metaeval import meta_evaluate

    monkeypatch.delenv("AUTORATER_DASK_ADDRESS", raising=False)
    runner = meta_evaluate.task_runner.duplicate()
    assert type(runner) is ThreadPoolTaskRunner and runner._max_workers == DEFAULT_WORKERS
    monkeypatch.setenv("AUTORATER_DASK_ADDRESS", "tcp://127.0.0.1:8786")
    runner = meta_evaluate.task_runner.duplicate()
    assert isinstance(runner, DaskTaskRunner) and runner.address == "tcp://127.0.0.1:8786"


@pytest.mark.slow
@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_worker_killed_mid_pair_the_matrix_still_completes_once(flow_registry, cluster, data_root, tmp_path,
                                                                 monkeypatch, db_url):
    from flows import meta_evaluate
    from registry.services import datasets as svc
    from registry.services.evaluators import create_evaluator, ensure_baselines, register_checkpoint

    reg = flow_registry
    lc, client = cluster
    _register_slow_kind()
    refs = {}
    for name in ("llmbar-natural", "faireval", "llmbar-adversarial-manual"):
        source, path = DATA[name]
        refs[svc.register_dataset_version(reg, name=name, source=source, path=data_root / path).version.ref] = None
    ensure_baselines(reg, minilm=False)
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    ckpt, _ = register_checkpoint(reg, SLOW_KIND, kind=SLOW_KIND, uri=f"test:{SLOW_KIND}")
    slow, _ = create_evaluator(reg, checkpoint=ckpt.ref, protocol="score-both-orders", name=SLOW_KIND,
                               config={"delay": 0.02, "pid_dir": str(pid_dir)})
    names = ["random", "longer", SLOW_KIND]
    expected = {(ev, ref) for ev in names for ref in refs}
    worker_pids = set(client.run(os.getpid).values())
    assert len(worker_pids) == 2 and os.getpid() not in worker_pids

    monkeypatch.setenv("AUTORATER_DASK_ADDRESS", lc.scheduler_address)
    killed: dict = {}

    def kill_a_worker_mid_pair() -> None:
        """SIGKILL the worker judging a slow pair once it has saved two batches (of up to 64)."""
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            for note in pid_dir.iterdir():
                if len(note.read_text().splitlines()) >= 3:  # judging its 3rd batch: 2 are saved
                    killed["pid"] = int(note.name.split(".")[0])
                    os.kill(killed["pid"], signal.SIGKILL)
                    killed["judgments"] = reg.store.count_judgments(slow.sha256)
                    return
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_a_worker_mid_pair, daemon=True)
    started = time.monotonic()
    watcher.start()
    summary = meta_evaluate(evaluators=names, datasets=list(refs), n_boot=50)
    elapsed = time.monotonic() - started
    watcher.join(5)
    victim = killed.get("pid")
    assert victim in worker_pids, f"no worker was killed mid-pair: {killed}, {summary}"

    # every pair succeeded exactly once, none failed or left busy; the judging ran on the workers
    assert not summary["failed"] and not summary["busy"], summary
    # a pair that had finished on the killed worker lost its result with it: Dask runs it again,
    # and the re-run finds the succeeded run ("already-done") instead of evaluating twice
    reported = [(s["evaluator"], s["dataset"]) for s in summary["succeeded"] + summary["already_done"]]
    assert sorted(reported) == sorted(expected), summary
    assert succeeded(reg) == {pair: 1 for pair in expected}
    judged_in = {int(p.name.split(".")[0]) for p in pid_dir.iterdir()}
    assert os.getpid() not in judged_in and victim in judged_in and len(judged_in) >= 2
    # the dead attempt: its running row was marked abandoned by the re-run, which reused its judgments
    counts = run_counts(reg)
    assert not [k for k in counts if k[2] == "running"]
    failed = [(ev, ds) for ev, ds, st in counts if st == "failed"]
    assert len(failed) == 1 and failed[0][0] == SLOW_KIND and sum(counts[k] for k in counts if k[2] == "failed") == 1
    assert len(summary["abandoned_run_ids"]) == 1
    dead = reg.store.get_run(summary["abandoned_run_ids"][0])
    assert dead.status == "failed" and dead.error == ABANDONED and (dead.evaluator, dead.dataset) == failed[0]
    rerun = next(r for r in reg.store.latest_runs(evaluator=SLOW_KIND, status="succeeded")
                 if r.dataset == failed[0][1])
    assert rerun.n_cached >= 64 and rerun.n_executed + rerun.n_cached == rerun.n_judgments
    # no duplicate judgments: one cached judgment per evaluator, example input and order
    for ev in names:
        sha = reg.store.get_evaluator(ev).sha256
        runs = [r for r in reg.store.latest_runs(evaluator=ev, status="succeeded")]
        assert reg.store.count_judgments(sha) == sum(r.n_judgments for r in runs), ev
    print(f"dask matrix: {len(expected)} pairs in {elapsed:.1f} s, worker {victim} killed after "
          f"{killed['judgments']} slow judgments; re-run cached {rerun.n_cached} of {rerun.n_judgments}; "
          f"already done when re-run: {summary['already_done']}")
