"""``POST /api/v1/runs`` as a Prefect flow run: a real ``autorater serve`` (embedded Prefect server, the
deployments of ``flows/deployments.py``, the web app) on a real LLMBar registry; the run is posted over HTTP,
polled until it exists, and the flow run is recorded by Prefect as Completed. Also: which mode the settings
choose, and a 503 problem (nothing started, nothing recorded) when the Prefect API does not answer."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.web.conftest import TOKEN

READY_WITHIN_S = 240   # the signal test measured ~17 s to READY on 2 busy cores
RUN_WITHIN_S = 300     # a flow run: the runner's poll, a subprocess importing Prefect and the flows, one pair


def test_the_run_mode_follows_the_settings(monkeypatch):
    from registry.web.app import WebSettings

    monkeypatch.delenv("AUTORATER_API_RUNS", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert WebSettings.from_env().prefect_api_url is None                        # a background thread
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    assert WebSettings.from_env().prefect_api_url == "http://127.0.0.1:4200/api"  # a flow run
    monkeypatch.setenv("AUTORATER_API_RUNS", "thread")
    assert WebSettings.from_env().prefect_api_url is None
    assert WebSettings.from_env(prefect_api_url="http://x/api").prefect_api_url == "http://x/api"


def test_an_unreachable_prefect_api_is_a_503_and_starts_nothing(web_registry):
    from fastapi.testclient import TestClient

    from registry.web.app import WebSettings, create_app

    reg = web_registry.reg
    app = create_app(registry=reg, web=WebSettings(token=TOKEN, public_read=True,
                                                 prefect_api_url="http://127.0.0.1:9/api"))
    before = [r.id for r in reg.runs()]
    with TestClient(app) as c:
        r = c.post("/api/v1/runs", json={"evaluator": "random", "dataset": "llmbar-gptout"},
                   headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 503, r.text
        body = r.json()
        assert r.headers["content-type"].startswith("application/problem+json")
        assert body["code"] == "prefect_unavailable" and "127.0.0.1:9" in body["detail"]
        assert "AUTORATER_API_RUNS=thread" in body["detail"] and "Traceback" not in r.text
        assert c.get("/api/v1/jobs/1").status_code == 404                        # no job was recorded
    assert [r.id for r in reg.runs()] == before


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(method: str, url: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict | list]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None, method=method,
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture
def served(tmp_path, data_root):
    """A registry with LLMBar Natural and the heuristic evaluators (no run yet), served by ``autorater serve``
    with a token: ``(ui_url, prefect_api_url, settings)``."""
    from registry.services.evaluators import ensure_baselines
    from tests.web.conftest import new_registry

    reg, settings, _ = new_registry(tmp_path, data_root)
    ensure_baselines(reg._ctx, minilm=False)
    reg.close()
    port, ui_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AUTORATER_"))}
    env.update(AUTORATER_HOME=str(settings.home), AUTORATER_DB_URL=settings.db_url, AUTORATER_STORE=str(settings.store),
               AUTORATER_DVC_REMOTE=str(settings.dvc_remote), AUTORATER_DATA=str(data_root),
               AUTORATER_API_TOKEN=TOKEN, AUTORATER_API_PUBLIC_READ="1", PREFECT_HOME=str(tmp_path / "prefect"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_RUNNER_POLL_FREQUENCY="1",
               PYTHONPATH=str(PROJECT_ROOT))
    out, err = (tmp_path / "serve.out").open("w+"), (tmp_path / "serve.err").open("w+")
    proc = subprocess.Popen([sys.executable, "-m", "registry.cli.main", "serve", "--port", str(port),
                             "--ui-port", str(ui_port)], cwd=PROJECT_ROOT, env=env, stdout=out, stderr=err,
                            text=True, start_new_session=True)
    api, ui = f"http://127.0.0.1:{port}/api", f"http://127.0.0.1:{ui_port}"
    try:
        deadline = time.monotonic() + READY_WITHIN_S
        while True:
            assert proc.poll() is None, f"serve exited ({proc.returncode}):\n{Path(err.name).read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"serve not ready:\n{Path(err.name).read_text()[-3000:]}"
            try:
                status, deployments = _http("POST", f"{api}/deployments/filter", {})
                if status == 200 and len(deployments) == 4 and all(d["status"] == "READY" for d in deployments):
                    if _http("GET", f"{ui}/api/v1/info")[0] == 200:
                        break
            except OSError:
                pass
            time.sleep(0.5)
        yield ui, api, settings, Path(err.name)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _wait(ui: str, job_id: int, errlog: Path) -> dict:
    """The job once it has finished (polled)."""
    deadline = time.monotonic() + RUN_WITHIN_S
    while True:
        status, job = _http("GET", f"{ui}/api/v1/jobs/{job_id}")
        assert status == 200, job
        if job["status"] in ("succeeded", "failed"):
            return job
        assert time.monotonic() < deadline, (job, errlog.read_text()[-3000:])
        time.sleep(1)


@pytest.mark.slow
@pytest.mark.xdist_group("prefect-server")
def test_post_runs_creates_a_flow_run_that_serve_executes(served):
    ui, api, settings, errlog = served
    status, job = _http("POST", f"{ui}/api/v1/runs", {"evaluator": "random", "dataset": "llmbar-natural"}, TOKEN)
    assert status == 202, job
    assert job["via"] == "prefect" and job["flow_run_id"] and job["dataset"] == "llmbar-natural@1"
    assert job["status"] == "queued" and job["run_id"] is None
    job = _wait(ui, job["id"], errlog)
    assert job["status"] == "succeeded", (job, errlog.read_text()[-3000:])
    assert job["flow_run_state"] == "COMPLETED" and job["error"] is None and job["finished_at"]
    # the run exists in the registry, made by the flow run
    status, run = _http("GET", f"{ui}/api/v1/runs/{job['run_id']}")
    assert status == 200 and run["evaluator"] == "random" and run["dataset"] == "llmbar-natural@1"
    assert run["status"] == "succeeded"
    # Prefect recorded the flow run of the on-evaluator deployment, Completed, with the pair as parameters
    status, flow_run = _http("GET", f"{api}/flow_runs/{job['flow_run_id']}")
    assert status == 200 and flow_run["state"]["type"] == "COMPLETED", flow_run
    assert flow_run["parameters"] == {"evaluators": ["random"], "datasets": ["llmbar-natural@1"]}
    assert "rest-api" in flow_run["tags"]
    status, deployment = _http("GET", f"{api}/deployments/{flow_run['deployment_id']}")
    assert deployment["name"] == "on-evaluator"
    # a second job of the same pair: the flow finds it done and the job gives the same run
    status, again = _http("POST", f"{ui}/api/v1/runs", {"evaluator": "random", "dataset": "llmbar-natural"}, TOKEN)
    assert status == 202 and again["flow_run_id"] != job["flow_run_id"]
    again = _wait(ui, again["id"], errlog)
    assert again["status"] == "succeeded" and again["run_id"] == job["run_id"], again
    # a write without the token is still refused
    assert _http("POST", f"{ui}/api/v1/runs", {"evaluator": "random", "dataset": "llmbar-natural"})[0] == 401
