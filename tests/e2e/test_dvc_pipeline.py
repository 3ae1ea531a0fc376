"""The DVC pipeline (dvc.yaml + params.yaml) in a throw-away git repository: `dvc repro` runs
register → train → evaluate → report on real data, a second repro re-runs nothing downstream,
a parameter change re-runs training onwards, and `dvc metrics diff` compares the revisions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def test_dvc_repro_reproduces_and_metrics_diff_compares(tmp_path, data_root):
    repo = tmp_path / "project"
    repo.mkdir()
    shutil.copy(PROJECT_ROOT / "dvc.yaml", repo)
    shutil.copy(PROJECT_ROOT / ".dvcignore", repo)
    shutil.copytree(PROJECT_ROOT / "flows", repo / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["register"]["datasets"] = ["faireval", "llmbar-adversarial-manual"]
    params["train"]["mixture"]["held_out"] = ["llmbar-adversarial-manual"]
    params["train"]["config"] = {"seed": 0, "max_steps": 2, "batch_size": 4, "max_length": 24, "train_layers": 0}
    params["evaluate"].update(datasets=["llmbar-adversarial-manual"], n_boot=50)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    bin_dir = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTORATER_", "PREFECT_"))}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", AUTORATER_DATA=str(data_root),
               DVC_NO_ANALYTICS="1", HF_HUB_OFFLINE="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    dvc = [str(Path(bin_dir) / "dvc")]
    _run(["git", "init", "-q"], repo, env)
    (repo / ".gitignore").write_text(".autorater/\n__pycache__/\n")
    _run(dvc + ["init", "-q"], repo, env)

    out = _run(dvc + ["repro"], repo, env)
    for stage in ("register", "train", "evaluate", "report"):
        assert f"Running stage '{stage}'" in out
    metrics = json.loads((repo / "pipeline/metrics.json").read_text())
    first = metrics["llmbar-adversarial-manual"]
    assert 0 <= first["accuracy_ci_low"] <= first["accuracy"] <= first["accuracy_ci_high"] <= 1 and first["n"] == 46
    checkpoint = json.loads((repo / "pipeline/checkpoint.json").read_text())
    assert checkpoint["checkpoint"] == "pipeline-scorer@1"
    registered = json.loads((repo / "pipeline/registered.json").read_text())
    assert registered["faireval"]["ref"] == "faireval@1" and registered["faireval"]["rows"] == 66
    assert "llmbar-adversarial-manual" in (repo / "pipeline/report.md").read_text()

    # unchanged inputs: the register stage re-checks the files, nothing downstream runs again
    again = _run(dvc + ["repro"], repo, env)
    assert "Running stage 'register'" in again
    for stage in ("train", "evaluate", "report"):
        assert f"Running stage '{stage}'" not in again
    assert json.loads((repo / "pipeline/checkpoint.json").read_text()) == checkpoint

    _run(["git", "add", "-A"], repo, env)
    _run(["git", "commit", "-q", "-m", "pipeline, seed 0"], repo, env)

    # another training seed: training onwards re-runs, and the metrics diff shows both revisions
    params["train"]["config"]["seed"] = 1
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = _run(dvc + ["repro"], repo, env)
    assert "Running stage 'train'" in changed and "Running stage 'report'" in changed
    assert json.loads((repo / "pipeline/checkpoint.json").read_text())["checkpoint"] == "pipeline-scorer@2"
    diff = json.loads(_run(dvc + ["metrics", "diff", "HEAD", "--all", "--json"], repo, env))
    entry = diff["pipeline/metrics.json"]["llmbar-adversarial-manual.accuracy"]
    assert entry["old"] == pytest.approx(first["accuracy"])
    assert entry["new"] == pytest.approx(json.loads((repo / "pipeline/metrics.json").read_text())
                                         ["llmbar-adversarial-manual"]["accuracy"])
    params_diff = json.loads(_run(dvc + ["params", "diff", "HEAD", "--json"], repo, env))
    assert params_diff["params.yaml"]["train.config.seed"]["old"] == 0
    assert params_diff["params.yaml"]["train.config.seed"]["new"] == 1
