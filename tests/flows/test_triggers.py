"""``autorater serve`` end to end: a real ``prefect server start`` and the served deployments in
a subprocess; registrations in other processes emit events, and the event-triggered deployments
evaluate exactly the affected pairs — once each, nothing else."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter

import pytest

from registry.services import datasets as svc
from registry.services.evaluators import ensure_baselines
from registry.services.matrix import evaluate_pair, missing_pairs
from tests.conftest import PROJECT_ROOT
from tests.flows.helpers import DATA, run_counts

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("prefect-server")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(reg, **extra: str) -> dict[str, str]:
    s = reg.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return {**env, "AUTORATER_HOME": str(s.home), "AUTORATER_DB_URL": s.db_url, "AUTORATER_STORE": str(s.store),
            "AUTORATER_DVC_REMOTE": s.dvc_remote, "AUTORATER_DATA": str(s.data_root), "HF_HUB_OFFLINE": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PYTHONPATH": str(PROJECT_ROOT), **extra}


def _api(url: str, path: str, body: dict | None = None):
    req = urllib.request.Request(f"{url}{path}", data=json.dumps(body or {}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _wait(predicate, what: str, timeout: float, proc: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"autorater serve exited ({proc.returncode}) while waiting for {what}:\n"
                        + log.read_text()[-4000:])
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(1)
    pytest.fail(f"timed out waiting for {what}:\n" + log.read_text()[-4000:])


def _meta_evaluate_runs_settled(api: str, at_least: int) -> bool:
    """At least ``at_least`` meta-evaluate flow runs exist and every one has ended. Each event's
    automation creates its run on its own schedule: the checkpoint's run can do all the new work and
    end before the evaluator's event has created its own run, so the count is waited for too."""
    runs = _api(api, "/flow_runs/filter", {"flows": {"name": {"any_": ["meta-evaluate"]}}})
    return len(runs) >= at_least and all(r["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") for r in runs)


def _new_succeeded(reg, before: Counter) -> Counter:
    now = run_counts(reg)
    return Counter({(ev, ds): n - before.get((ev, ds, st), 0) for (ev, ds, st), n in now.items()
                    if st == "succeeded" and n - before.get((ev, ds, st), 0)})


def test_registrations_trigger_exactly_the_affected_pairs(sqlite_registry, data_root, tmp_path):
    reg = sqlite_registry
    for name in ("llmbar-adversarial-manual", "summac-factcc"):
        source, path = DATA[name]
        svc.register_dataset_version(reg, name=name, source=source, path=data_root / path)
    evaluators = ensure_baselines(reg, minilm=False)
    for pair in missing_pairs(reg):  # the matrix starts complete: only new work can appear
        evaluate_pair(reg, pair, n_boot=20)
    assert not missing_pairs(reg)

    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen(
            [sys.executable, "-m", "registry.cli.main", "serve", "--port", str(port), "--ui-port", "0"],
            cwd=PROJECT_ROOT,
            env=_env(reg, PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_RUNNER_POLL_FREQUENCY="1"),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait(lambda: len(_api(api, "/deployments/filter")) == 4 and len(_api(api, "/automations/filter")) == 3,
              "the deployments and their automations", 240, serve, log)
        client_env = _env(reg, PREFECT_API_URL=api)

        # 1. a new dataset version: every active evaluator on that version, nothing else
        before = run_counts(reg)
        source, path = DATA["llmbar-natural"]
        done = subprocess.run([sys.executable, "-m", "registry.cli.main", "dataset", "register",
                               "llmbar-adversarial-manual", "--source", source, "--path", str(data_root / path)],
                              cwd=PROJECT_ROOT, env=client_env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        expected = {(e.name, "llmbar-adversarial-manual@2"): 1 for e in evaluators}  # all judge pairwise
        _wait(lambda: _new_succeeded(reg, before) == expected, "the new version's evaluations", 300, serve, log)
        _wait(lambda: _meta_evaluate_runs_settled(api, 1), "the triggered flow runs to end", 120, serve, log)
        assert _new_succeeded(reg, before) == expected
        assert not any(st == "running" for _, _, st in run_counts(reg))

        # 2. a new checkpoint (and its evaluator): its evaluation on every dataset's latest version
        before = run_counts(reg)
        script = ("from registry.services.app import RegistryContext\n"
                  "from registry.services.evaluators import create_evaluator, register_checkpoint\n"
                  "reg = RegistryContext.open()\n"
                  "ckpt, _ = register_checkpoint(reg, 'random-b', kind='random')\n"
                  "create_evaluator(reg, checkpoint=ckpt.ref, protocol='score-single-order', name='random-b')\n")
        done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=client_env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        expected = {("random-b", "llmbar-adversarial-manual@2"): 1, ("random-b", "summac-factcc@1"): 1}
        _wait(lambda: _new_succeeded(reg, before) == expected, "the new checkpoint's evaluations", 300, serve, log)
        _wait(lambda: _meta_evaluate_runs_settled(api, 3),
              "the three triggered flow runs (version, checkpoint, evaluator) to end", 120, serve, log)
        assert _new_succeeded(reg, before) == expected
        runs = _api(api, "/flow_runs/filter", {"flows": {"name": {"any_": ["meta-evaluate"]}}})
        triggered_by = Counter(r["parameters"].get("datasets") and "version" or
                               r["parameters"].get("checkpoints") and "checkpoint" or
                               r["parameters"].get("evaluators") and "evaluator" for r in runs)
        # one run per event, with the event's resource templated into its parameters
        assert triggered_by == {"version": 1, "checkpoint": 1, "evaluator": 1}
        assert [r["parameters"]["datasets"] for r in runs if r["parameters"].get("datasets")] == [
            ["llmbar-adversarial-manual@2"]]
        assert all(r["state_type"] == "COMPLETED" for r in runs)
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGINT)  # Ctrl-C: stops the deployments and the server
            try:
                serve.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(serve.pid, signal.SIGKILL)
                serve.wait()
    assert serve.returncode is not None
    with pytest.raises(OSError):  # the embedded server is gone too
        urllib.request.urlopen(f"{api}/health", timeout=2)
