"""Concurrent writers (issue 13, "Hold up"): real ``autorater`` processes started together against
one registry — on PostgreSQL 8 at once, on SQLite 4 — register different and identical inputs,
then evaluate the same matrix (``eval matrix`` and ``eval run`` of the same pairs). Every one
exits 0; each content becomes exactly one version (the losers of a race answer "unchanged" with
the winner's version; two contents of one dataset get versions 1 and 2); each pair gets exactly one
succeeded run and no other run row (the losers wait for the winner and answer with its run); no
judgment is lost. Also: a ``running`` row whose process died (a SIGKILL, or a claim holder that is
gone) is marked failed as abandoned by the next ``eval run`` (or by ``reap_abandoned``, for
``store gc``), and the pair then runs once.

The processes wait at a barrier (a start file) after their imports, so they really start at once.
Run directly (``python -m tests.services.test_concurrency START -- ARGS…``) this module is that
worker: it runs ``autorater ARGS…`` in-process once the start file exists.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NATURAL = "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/dataset.json"
MANUAL = "princeton-nlp__LLMBar/Dataset/LLMBar/Adversarial/Manual/dataset.json"
GPTOUT = "princeton-nlp__LLMBar/Dataset/LLMBar/Adversarial/GPTOut/dataset.json"
EVALUATORS = ("random", "longer")


# ----------------------------------------------------------------------------- the worker
def _worker(folder: Path, index: int, phases: list[list[str]]) -> int:
    """Warm the imports, then for each phase: say ready, wait for its start file, run its command
    (``autorater ARGS…`` in-process, output to files of ``folder``), record the exit status."""
    import contextlib

    import dvc.repo  # noqa: F401

    import registry.adapters.sources  # noqa: F401
    import registry.adapters.validation.gx  # noqa: F401
    import registry.api  # noqa: F401
    import registry.cli.main as cli
    import registry.services.datasets  # noqa: F401
    import registry.services.evaluation  # noqa: F401
    import registry.services.matrix  # noqa: F401
    import registry.services.scoring  # noqa: F401

    for phase, args in enumerate(phases):
        (folder / f"ready-{phase}-{index}").touch()
        deadline = time.monotonic() + 300
        while not (folder / f"start-{phase}").exists():
            if time.monotonic() > deadline:
                return 99
            time.sleep(0.002)
        with (folder / f"out-{phase}-{index}").open("w") as out, (folder / f"err-{phase}-{index}").open("w") as err, \
                contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.app(args, prog_name="autorater")
                rc = 0
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:
                import traceback

                traceback.print_exc()
                rc = 98
        (folder / f"rc-{phase}-{index}").write_text(str(rc))
    return 0


if __name__ == "__main__":
    sys.exit(_worker(Path(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])))


# ----------------------------------------------------------------------------- helpers
def _env(settings) -> dict[str, str]:
    return {**os.environ, "AUTORATER_HOME": str(settings.home), "AUTORATER_DB_URL": settings.db_url,
            "AUTORATER_STORE": str(settings.store), "AUTORATER_DVC_REMOTE": settings.dvc_remote,
            "AUTORATER_DATA": str(settings.data_root), "AUTORATER_EVENTS": "0", "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": "1", "PYTHONPATH": str(PROJECT_ROOT), "COLUMNS": "200"}


class Workers:
    """One ``autorater`` process per worker, each running a command per phase; a phase's commands
    start together (a barrier: every worker ready, then the phase's start file)."""

    def __init__(self, settings, phases: list[list[list[str]]], folder: Path) -> None:
        """``phases[p][w]``: the command of worker ``w`` in phase ``p``."""
        folder.mkdir(parents=True)
        self.folder, self.n = folder, len(phases[0])
        self.procs = [subprocess.Popen(
            [sys.executable, "-m", "tests.services.test_concurrency", str(folder), str(w),
             json.dumps([phase[w] for phase in phases])],
            cwd=PROJECT_ROOT, env=_env(settings), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for w in range(self.n)]

    def _wait_for(self, pattern: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(list(self.folder.glob(pattern))) < self.n:
            dead = [p for p in self.procs if p.poll() is not None and p.returncode != 0]
            assert not dead, dead[0].communicate()[0][-3000:]
            assert time.monotonic() < deadline, f"workers stuck waiting for {pattern}"
            time.sleep(0.05)

    def run_phase(self, phase: int, timeout: float = 240) -> list[tuple[int, str, str]]:
        """Release phase ``phase`` and return each worker's (exit status, stdout, stderr)."""
        self._wait_for(f"ready-{phase}-*", timeout)
        (self.folder / f"start-{phase}").touch()
        self._wait_for(f"rc-{phase}-*", timeout)
        return [(int((self.folder / f"rc-{phase}-{w}").read_text()), (self.folder / f"out-{phase}-{w}").read_text(),
                 (self.folder / f"err-{phase}-{w}").read_text()) for w in range(self.n)]

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()


def _all_ok(results, commands) -> None:
    bad = [(cmd, rc, err[-2000:]) for (rc, _, err), cmd in zip(results, commands) if rc != 0]
    assert not bad, bad


def _runs(reg) -> Counter:
    """(evaluator, dataset@version, status) → how many run rows."""
    return Counter((r.evaluator, r.dataset, r.status) for r in reg.store.list_runs())


def _input_keys(reg, ev, ref: str) -> set[str]:
    from registry.adapters.evaluators import EVALUATORS as PLUGINS
    from registry.domain.judgments import example_input_hashes
    from registry.services.datasets import load_table

    version = reg.store.get_version(ref)
    table = load_table(reg, ref)
    cols = {name: table.column(name).to_pylist() for name in table.column_names}
    return set(example_input_hashes(cols, version.task_type, PLUGINS.get(ev.kind).input_fields.get(version.task_type)))


def _workers(settings) -> int:
    return 4 if settings.db_url.startswith("sqlite") else 8


# ----------------------------------------------------------------------------- the tests
@pytest.mark.slow
def test_concurrent_registrations_and_evaluations(registry, settings, data_root, tmp_path):
    """N processes register at once (identical inputs, and two contents of one dataset), then N
    processes evaluate the same matrix at once: exit 0 everywhere, one version per content, one
    succeeded run (and no other row) per pair, every judgment in the cache."""
    from registry.services.evaluators import ensure_baselines

    n = _workers(settings)
    ensure_baselines(registry, minilm=False)
    reg_inputs = [("llmbar-natural", NATURAL), ("llmbar-natural", NATURAL), ("mixed", GPTOUT), ("mixed", MANUAL),
                  ("llmbar-adversarial-manual", MANUAL), ("llmbar-natural", NATURAL), ("mixed", GPTOUT),
                  ("llmbar-adversarial-manual", MANUAL)][:n]
    contents = {(name, path) for name, path in reg_inputs}
    refs = sorted({f"{name}@1" for name, _ in contents} | {"mixed@2"})
    registering = [["dataset", "register", name, "--source", "llmbar", "--path", str(data_root / path), "--json"]
                   for name, path in reg_inputs]
    # the same matrix at once: half `eval matrix` (in rotated orders; its evaluators, of a new config, are
    # created by the workers themselves), half `eval run` of one baseline pair
    evaluating = []
    for i in range(n):
        if i % 2 == 0:
            k = i // 2
            datasets = refs[k % len(refs):] + refs[:k % len(refs)]
            evaluators = EVALUATORS if k % 2 == 0 else EVALUATORS[::-1]
            evaluating.append(["eval", "matrix", "--checkpoints", ",".join(evaluators), "--protocols",
                               "score-both-orders", "--datasets", ",".join(datasets), "--config", "orders=[0]",
                               "--n-boot", "50", "--json"])
        else:
            evaluating.append(["eval", "run", "--evaluator", "random", "--dataset", "llmbar-natural@1",
                               "--n-boot", "50", "--json"])
    workers = Workers(settings, [registering, evaluating], tmp_path / "workers")
    try:
        t0 = time.monotonic()
        results = workers.run_phase(0)
        t1 = time.monotonic()
        _all_ok(results, registering)
        registered = _check_registrations(registry, reg_inputs, results)
        assert sorted(registered) == refs
        t2 = time.monotonic()
        results = workers.run_phase(1)
        t3 = time.monotonic()
        _all_ok(results, evaluating)
    finally:
        workers.close()
    print(f"{n} workers: registering {t1 - t0:.1f} s, evaluating {t3 - t2:.1f} s")
    _check_evaluations(registry, refs, evaluating, results)


def _check_registrations(registry, reg_inputs, results) -> list[str]:
    answers = [json.loads(out) for _, out, _ in results]
    store = registry.store
    contents = {(name, path) for name, path in reg_inputs}
    by_content: dict[tuple[str, str], set] = {}
    for (name, path), a in zip(reg_inputs, answers):
        by_content.setdefault((name, path), set()).add((a["dataset"], a["version"], a["content_hash"]))
    assert all(len(v) == 1 for v in by_content.values()), by_content   # every caller got the one version
    created = Counter((name, path) for (name, path), a in zip(reg_inputs, answers) if a["created"])
    assert created == Counter(contents), created                      # created once, "unchanged" for the rest
    versions = {name: store.list_versions(name) for name, _ in contents}
    assert {name: len(v) for name, v in versions.items()} == Counter(name for name, _ in contents)
    mixed = versions["mixed"]
    assert [v.version for v in mixed] == [1, 2] and mixed[0].content_hash != mixed[1].content_hash
    assert mixed[1].parent_version == 1 and mixed[1].diff_from_parent is not None  # the loser re-based on v1

    return [v.ref for vs in versions.values() for v in vs]


def _check_evaluations(registry, refs, commands, results) -> None:
    store = registry.store
    answers = [json.loads(out) for _, out, _ in results]
    matrix = [a for a, cmd in zip(answers, commands) if cmd[1] == "matrix"]
    grid = {(c["evaluator"], c["dataset"]) for c in matrix[0]["cells"]}
    assert {ev for ev, _ in grid} == {f"{e}@1/score-both-orders[orders=[0]]" for e in EVALUATORS}
    assert {ref for _, ref in grid} == set(refs)
    pairs = grid | {("random", "llmbar-natural@1")}
    assert _runs(registry) == Counter({(ev, ref, "succeeded"): 1 for ev, ref in pairs})  # no failed, no running
    run_of = {(r.evaluator, r.dataset): r for r in store.list_runs()}
    for answer, cmd in zip(answers, commands):  # every caller answered with the one run of each pair
        if cmd[1] == "run":
            assert answer["id"] == run_of[("random", "llmbar-natural@1")].id
        else:
            assert {(c["evaluator"], c["dataset"], c["run_id"]) for c in answer["cells"]} == {
                (ev, ref, run_of[(ev, ref)].id) for ev, ref in grid}
    judged: dict[str, set[str]] = {}
    for ev, ref in pairs:
        judged.setdefault(ev, set()).add(ref)
    for name, ev_refs in judged.items():  # no lost judgment: every one in the cache, once
        ev = store.get_evaluator(name)
        orders = {tuple(run_of[(name, ref)].provenance["orders"]) for ref in ev_refs}
        assert len(orders) == 1
        keys = set().union(*(_input_keys(registry, ev, ref) for ref in ev_refs))
        assert store.count_judgments(ev.sha256) == len(orders.pop()) * len(keys)
        for ref in ev_refs:
            run = run_of[(name, ref)]
            assert run.n_judgments == len(run.provenance["orders"]) * run.n_examples
            assert run.n_executed + run.n_cached == run.n_judgments


def test_running_row_of_a_dead_process_is_abandoned_and_the_pair_runs_once(registry, data_root):
    """A ``running`` row whose claim nobody holds (its process died) is marked failed as abandoned
    by the next run of the pair; ``reap_abandoned`` (for ``store gc``) leaves a live one alone."""
    from registry.adapters.store.sqlalchemy_store import SqlAlchemyStore
    from registry.services.claims import ABANDONED, reap_abandoned
    from registry.services.datasets import register_dataset_version
    from registry.services.evaluation import run_evaluation
    from registry.services.evaluators import ensure_baselines

    register_dataset_version(registry, name="llmbar-natural", source="llmbar", path=data_root / NATURAL)
    ensure_baselines(registry, minilm=False)
    store = registry.store
    live = store.start_run("longer", "llmbar-natural@1", seed=0)
    other = SqlAlchemyStore(registry.settings.db_url)  # another holder, as another process would be
    try:
        with other.claim_pair("longer", "llmbar-natural@1") as got:
            assert got
            assert reap_abandoned(registry) == []           # its holder is alive: left alone
            assert store.get_run(live.id).status == "running"
            with store.claim_pair("longer", "llmbar-natural@1", wait=0.2) as second:
                assert not second                           # waited, then gave up
    finally:
        other.close()
    assert reap_abandoned(registry) == [live.id]            # the holder is gone now
    assert (store.get_run(live.id).status, store.get_run(live.id).error) == ("failed", ABANDONED)

    dead = store.start_run("random", "llmbar-natural@1", seed=0)  # as a SIGKILLed `eval run` leaves it
    run = run_evaluation(registry, "random", "llmbar-natural@1", n_boot=20)
    assert run.status == "succeeded"
    assert (store.get_run(dead.id).status, store.get_run(dead.id).error) == ("failed", ABANDONED)
    assert _runs(registry)[("random", "llmbar-natural@1", "succeeded")] == 1
    again = run_evaluation(registry, "random", "llmbar-natural@1", n_boot=20)  # a later run in this process: a new run
    assert again.id != run.id and again.n_executed == 0


@pytest.mark.slow
def test_sigkilled_eval_run_is_abandoned_then_completed_once(registry, settings, data_root, tmp_path):
    """SIGKILL an ``eval run`` mid-run: its ``running`` row stays; the next ``eval run`` marks it
    failed as abandoned, reuses the judgments it saved and leaves exactly one succeeded run."""
    from registry.services.claims import ABANDONED
    from registry.services.datasets import register_all
    from registry.services.evaluation import run_evaluation
    from registry.services.evaluators import ensure_baselines

    assert not register_all(registry, data_root, only={"pandalm-test"}).failed
    ensure_baselines(registry, minilm=False)
    store = registry.store
    sha = store.get_evaluator("random").sha256
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "registry.cli.main", "eval", "run", "--evaluator", "random",
                             "--dataset", "pandalm-test", "--batch-size", "1", "--n-boot", "20"],
                            cwd=PROJECT_ROOT, env=_env(settings), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if store.list_runs(status="running") and store.count_judgments(sha) >= 20:
                break
            time.sleep(0.02)
        assert proc.poll() is None, (tmp_path / "run.log").read_text()[-2000:]
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
        log.close()
    [killed] = store.list_runs(status="running")
    saved = store.count_judgments(sha)
    assert saved >= 20

    run = run_evaluation(registry, "random", "pandalm-test", n_boot=20)
    assert run.status == "succeeded" and run.n_cached >= saved
    assert (store.get_run(killed.id).status, store.get_run(killed.id).error) == ("failed", ABANDONED)
    assert _runs(registry) == Counter({("random", run.dataset, "succeeded"): 1, ("random", run.dataset, "failed"): 1})


def test_a_process_start_is_not_put_before_its_real_start():
    """A run finished just before a process started is not one asked for concurrently with it: the
    start must not be rounded down (psutil's create_time adds the boot time in whole seconds)."""
    from datetime import UTC, datetime

    before = time.time()
    out = subprocess.run([sys.executable, "-c", "from registry.services.evaluation import process_started; "
                          "print(process_started().timestamp())"], capture_output=True, text=True, check=True)
    started = float(out.stdout.strip())
    assert before - 0.02 <= started <= time.time()  # exact to a clock tick (10 ms)
    assert datetime.fromtimestamp(started, UTC) <= datetime.now(UTC)
