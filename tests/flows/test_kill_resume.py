"""A meta-evaluation killed with SIGKILL midway resumes to a complete matrix: exactly one
succeeded run per pair, none missing, and the killed process's ``running`` rows marked abandoned."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from registry.services import datasets as svc
from registry.services.evaluators import ensure_baselines
from registry.services.claims import ABANDONED
from tests.conftest import PROJECT_ROOT
from tests.flows.helpers import DATA, compatible, run_counts, succeeded

pytestmark = pytest.mark.slow


def _env(reg) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME

    s = reg.settings
    return {**os.environ, "AUTORATER_HOME": str(s.home), "AUTORATER_DB_URL": s.db_url,
            "AUTORATER_STORE": str(s.store), "AUTORATER_DVC_REMOTE": s.dvc_remote,
            "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_HOME": str(PREFECT_HOME.value()),
            "AUTORATER_EVENTS": "0", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(PROJECT_ROOT)}


def _start(reg, log):
    return subprocess.Popen([sys.executable, "-m", "tests.flows.run_flow", "meta_evaluate", json.dumps({"n_boot": 50})],
                            cwd=PROJECT_ROOT, env=_env(reg), stdout=log, stderr=subprocess.STDOUT)


def test_sigkill_midway_then_resume_completes_the_matrix_once(flow_registry, data_root, tmp_path):
    reg = flow_registry
    refs = {}
    for name in ("llmbar-adversarial-manual", "llmbar-adversarial-gptout", "faireval"):
        source, path = DATA[name]
        v = svc.register_dataset_version(reg, name=name, source=source, path=data_root / path).version
        refs[v.ref] = v.task_type
    evaluators = ensure_baselines(reg, minilm=True)
    expected = compatible(evaluators, refs)

    with (tmp_path / "first.log").open("wb") as log:
        first = _start(reg, log)
        try:
            # kill while the slow encoder is mid-run, after some pairs have finished
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and first.poll() is None:
                counts = run_counts(reg)
                done = sum(n for (_, _, st), n in counts.items() if st == "succeeded")
                if done >= 3 and any(ev == "minilm-untrained" and st == "running" for ev, _, st in counts):
                    break
                time.sleep(0.2)
            assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            first.send_signal(signal.SIGKILL)
        finally:
            first.wait(30)
    assert first.returncode == -signal.SIGKILL
    after_kill = run_counts(reg)
    stale = {(ev, ds) for ev, ds, st in after_kill if st == "running"}
    assert stale, "the killed process left no running row"
    done_before = set(succeeded(reg))
    assert 3 <= len(done_before) < len(expected)

    with (tmp_path / "second.log").open("wb") as log:
        second = _start(reg, log)
        assert second.wait(600) == 0, (tmp_path / "second.log").read_text()[-3000:]
    out = (tmp_path / "second.log").read_text()
    summary = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])

    # complete, exactly once per pair; the resumed run did only what was left
    assert succeeded(reg) == {pair: 1 for pair in expected}
    assert {(s["evaluator"], s["dataset"]) for s in summary["succeeded"]} == expected - done_before
    final = run_counts(reg)
    assert not any(st == "running" for _, _, st in final)
    # every row the killed process left running is now failed as abandoned, and nothing else failed
    failed = {(ev, ds): n for (ev, ds, st), n in final.items() if st == "failed"}
    assert set(failed) == stale and len(summary["abandoned_run_ids"]) == sum(failed.values())
    from sqlalchemy import select

    from registry.adapters.store.orm import SqlEvaluationRun

    with reg.store.session() as s:
        errors = s.scalars(select(SqlEvaluationRun.error).where(SqlEvaluationRun.status == "failed")).all()
    assert errors and all(e == ABANDONED for e in errors)
