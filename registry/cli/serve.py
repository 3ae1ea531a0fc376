"""``autorater serve``: the continuous runtime in one command — a local Prefect server (unless
``PREFECT_API_URL`` names one), the deployments of :mod:`flows.deployments` and the web app with the
REST API (:mod:`registry.web`, as ``autorater ui`` serves it); Ctrl-C stops them all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import typer

from registry.cli.common import console, err_console
from registry.errors import RegistryError


def _wait_healthy(api_url: str, proc: subprocess.Popen | None, timeout: float) -> None:
    import urllib.request  # here, not at the top: every `autorater` command imports this module

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RegistryError(f"the Prefect server exited with status {proc.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RegistryError(f"the Prefect server at {api_url} was not healthy after {timeout:.0f} s")


class WebThread:
    """The web app (:func:`registry.web.app.create_app`) served by uvicorn in a thread of ``serve``."""

    def __init__(self, host: str, port: int, settings) -> None:
        import threading

        import uvicorn

        from registry.web.app import create_app, tune_gc

        tune_gc()  # this process serves: see tune_gc
        self.url = f"http://{host}:{port}/"
        self.server = uvicorn.Server(uvicorn.Config(create_app(settings), host=host, port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="autorater-web", daemon=True)

    def start(self, timeout: float = 30) -> bool:
        """Start it; whether it listens within ``timeout`` s (not: the port is taken, say)."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.server.started

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) != 0


def start_server(host: str, port: int, prefect_home: Path, log_path: Path) -> subprocess.Popen:
    """``prefect server start`` in its own process group, logging to ``log_path``."""
    if not _port_free(host, port):
        raise RegistryError(f"port {port} on {host} is taken; pass --port, or set PREFECT_API_URL to use "
                            "the server that runs there")
    prefect_home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PREFECT_HOME": str(prefect_home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    with log_path.open("ab") as log:  # the server writes to its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", host,
                                 "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop_server(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM the server's process group, SIGKILL what is left after ``timeout``."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def _sigterm_like_ctrl_c(signum, frame) -> None:
    raise KeyboardInterrupt  # outside the runner's event loop: unwinds to serve()'s finally, like Ctrl-C


def serve_deployments(deployments: list) -> None:
    """``prefect.serve(*deployments)``, stopped the same way by SIGTERM as by Ctrl-C.

    Prefect's runner answers SIGTERM with ``Runner.stop()`` called from its signal handler, inside
    the running event loop, where the call only creates an ``astop()`` coroutine that nothing awaits
    (``RuntimeWarning: coroutine 'Runner.astop' was never awaited``), then calls ``sys.exit`` in
    the loop. Here SIGTERM does what asyncio does on Ctrl-C: it cancels the main task, so the
    runner's loops end and its ``async with`` exit (which pauses the deployments' schedules) runs
    once, on both signals. Returns when the runner has stopped."""
    import asyncio

    from prefect.runner import Runner

    main: dict = {}

    class _Runner(Runner):
        def handle_sigterm(self, *args, **kwargs) -> None:  # installed by Runner.start()
            loop, task = main.get("loop"), main.get("task")
            if loop is None or loop.is_closed():
                raise KeyboardInterrupt
            self._logger.info("SIGTERM received, shutting down...")
            loop.call_soon_threadsafe(task.cancel)  # safe from a signal handler; wakes the loop

    runner = _Runner(pause_on_shutdown=True)
    for deployment in deployments:
        runner.add_deployment(deployment)

    async def _main() -> None:
        main.update(loop=asyncio.get_running_loop(), task=asyncio.current_task())
        await runner.start()

    try:
        asyncio.run(_main())
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C, SIGTERM: the runner has stopped
        pass


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface of the embedded Prefect server."),
    port: int = typer.Option(4200, "--port", help="Port of the embedded Prefect server."),
    cron: str = typer.Option(None, "--cron", help="Cron of the nightly sweep (default $AUTORATER_NIGHTLY_CRON "
                                                  "or '0 3 * * *')."),
    timezone: str = typer.Option("UTC", "--timezone", help="Time zone of the cron schedule."),
    startup_timeout: float = typer.Option(90, "--startup-timeout", help="Seconds to wait for the server."),
    dask_address: str = typer.Option(None, "--dask-address",
                                     help="Run the flows' evaluation pairs on the Dask cluster whose scheduler is "
                                          "here, e.g. tcp://10.0.0.5:8786 (default $AUTORATER_DASK_ADDRESS; "
                                          "unset: threads of the flow run). Needs the [dask] extra."),
    ui_host: str = typer.Option("127.0.0.1", "--ui-host", help="Interface of the web app and REST API."),
    ui_port: int = typer.Option(8080, "--ui-port", help="Port of the web app and REST API (0: do not serve them)."),
) -> None:
    """Run the continuous meta-evaluation: new dataset versions, checkpoints and evaluators are
    evaluated as they are registered, and the whole matrix nightly; the web app and REST API are
    served beside it (as `autorater ui` serves them)."""
    from registry.config import Settings

    if dask_address:
        os.environ["AUTORATER_DASK_ADDRESS"] = dask_address  # read by each flow run (flows._common)
    settings = Settings.from_env()
    # until Prefect's runner takes over (and again after it), SIGTERM stops like Ctrl-C, so the
    # embedded server (in its own session: a terminal's Ctrl-C does not reach it) is always stopped
    previous = signal.signal(signal.SIGTERM, _sigterm_like_ctrl_c)
    proc = None
    web: WebThread | None = None
    api_url = os.environ.get("PREFECT_API_URL")
    if not api_url:
        prefect_home = Path(os.environ.get("PREFECT_HOME") or settings.home / "prefect")
        log_path = settings.home / "prefect-server.log"
        settings.home.mkdir(parents=True, exist_ok=True)
        proc = start_server(host, port, prefect_home, log_path)
        api_url = f"http://{host}:{port}/api"
        os.environ.setdefault("PREFECT_HOME", str(prefect_home))
        console.print(f"Prefect server starting on {api_url} (log {log_path})")
    os.environ["PREFECT_API_URL"] = api_url  # before Prefect is imported: its settings read it once
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    try:
        _wait_healthy(api_url, proc, startup_timeout)
        from flows.deployments import build_deployments

        if ui_port:
            web = WebThread(ui_host, ui_port, settings)
            if web.start():
                console.print(f"web app and REST API on {web.url} (API {web.url}api/v1)")
            else:
                err_console.print(f"the web app could not listen on {ui_host}:{ui_port} (in use?); "
                                  "serving the flows without it (--ui-port picks another port)")
        deployments = build_deployments(cron=cron, timezone=timezone)
        console.print(f"serving {len(deployments)} deployments against {api_url}; registrations in other "
                      f"shells trigger them with `export PREFECT_API_URL={api_url}`. Ctrl-C stops.")
        if settings.dask_address:
            console.print(f"evaluation pairs run on the Dask cluster at {settings.dask_address}")
        serve_deployments(deployments)  # returns on Ctrl-C and on SIGTERM
        err_console.print("stopping")
    except KeyboardInterrupt:
        err_console.print("stopping")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not orphan the server
        if web is not None:
            web.stop()
        if proc is not None:
            stop_server(proc)
        signal.signal(signal.SIGTERM, previous)
