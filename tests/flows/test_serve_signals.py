"""``autorater serve`` stops cleanly on Ctrl-C and on SIGTERM: a real ``autorater serve`` subprocess
with its embedded Prefect server, signalled once its runner is polling (and once while the server is
still starting). It must exit 0 within seconds, print no warning or traceback (Prefect's own SIGTERM
handler left ``coroutine 'Runner.astop' was never awaited``), and leave no Prefect server behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("prefect-server")]

STOP_WITHIN_S = 30    # measured: ~2 s (pausing the 4 deployments, then the server's own shutdown)
READY_WITHIN_S = 180  # measured: ~17 s on 2 busy cores
BAD = ("Traceback", "Warning", "never awaited", "ERROR", "Exception")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _deployments(api: str) -> list[dict]:
    req = urllib.request.Request(f"{api}/deployments/filter", data=b"{}", method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def _servers_on(port: int) -> list[str]:
    """Command lines of live ``prefect server start ... --port PORT`` processes (Linux /proc)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"server" in argv and b"--port" in argv and str(port).encode() in argv:
            found.append(b" ".join(argv).decode(errors="replace"))
    return found


@pytest.fixture
def serve_env(tmp_path) -> dict[str, str]:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(AUTORATER_HOME=str(home), AUTORATER_DB_URL=f"sqlite:///{home / 'registry.db'}",
               AUTORATER_STORE=str(home / "store"), AUTORATER_DVC_REMOTE=str(tmp_path / "remote"),
               PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_RUNNER_POLL_FREQUENCY="1", PYTHONPATH=str(PROJECT_ROOT), PYTHONWARNINGS="default")
    done = subprocess.run([sys.executable, "-m", "registry.cli.main", "init"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return env


@pytest.mark.parametrize("when, sig", [("polling", signal.SIGINT), ("polling", signal.SIGTERM),
                                       ("starting", signal.SIGTERM)],
                         ids=["ctrl-c", "sigterm", "sigterm-while-starting"])
def test_serve_stops_cleanly(serve_env, tmp_path, when, sig):
    port, ui_port = _free_port(), _free_port()
    api = f"http://127.0.0.1:{port}/api"
    out, err = (tmp_path / "serve.out").open("w+"), (tmp_path / "serve.err").open("w+")
    serve = subprocess.Popen([sys.executable, "-m", "registry.cli.main", "serve", "--port", str(port),
                              "--ui-port", str(ui_port)],
                             cwd=PROJECT_ROOT, env=serve_env, stdout=out, stderr=err, text=True,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + READY_WITHIN_S
        while True:
            assert serve.poll() is None, f"serve exited early ({serve.returncode}):\n{Path(err.name).read_text()}"
            assert time.monotonic() < deadline, f"serve not ready:\n{Path(err.name).read_text()[-3000:]}"
            if when == "starting":
                if "Prefect server starting" in Path(out.name).read_text():
                    break  # the server process exists and is not healthy yet
            else:
                try:  # the runner has polled every deployment: its loop (and its SIGTERM handler) runs
                    deployments = _deployments(api)
                    if len(deployments) == 4 and all(d["status"] == "READY" for d in deployments):
                        break
                except OSError:
                    pass
            time.sleep(0.2)

        if when == "polling":  # the web app and REST API are served beside the flows
            with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/api/v1/info", timeout=10) as resp:
                assert resp.status == 200 and b"dataset_versions" in resp.read()
        # Ctrl-C in a terminal signals the foreground process group; a service manager signals the process
        (os.killpg if sig == signal.SIGINT else os.kill)(serve.pid, sig)
        start = time.monotonic()
        rc = serve.wait(STOP_WITHIN_S)
        took = time.monotonic() - start
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
    stderr = Path(err.name).read_text()
    assert rc == 0, stderr
    assert took < STOP_WITHIN_S
    assert not [word for word in BAD if word in stderr], stderr
    assert "stopping" in stderr
    with socket.socket() as probe:  # the web app stopped with it
        assert probe.connect_ex(("127.0.0.1", ui_port)) != 0
    if when == "polling":
        assert "All deployments have been paused" in stderr  # the runner's shutdown ran, once
        assert stderr.count("Pausing all deployments") == 1
    # the embedded server went with it (it runs in its own session, out of reach of the signal)
    assert _servers_on(port) == []
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{api}/health", timeout=2)
