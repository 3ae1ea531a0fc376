"""``autorater backend``: managed vLLM servers (OpenAI-compatible) for local checkpoint folders.

A server started here outlives the command (its own session and process group; see
:mod:`registry.adapters.backends.processes`); its PID file lives in
``$AUTORATER_HOME/vllm/servers/<port>.json`` (or a per-user temporary folder), which is how
``list`` and ``stop`` find it. Point an ``llm-judge`` evaluator at it with ``backend: openai``,
``base_url: http://127.0.0.1:PORT/v1`` and ``model: <served model name>``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from registry.cli.common import JSON_OPTION, console, new_app, print_json
from registry.errors import InvalidInput, NotFound

app = new_app("Managed vLLM servers (OpenAI-compatible) for local checkpoint folders.")


def _info(server, *, health: bool = True) -> dict:
    alive = server.alive()
    return {"pid": server.pid, "port": server.port, "base_url": server.base_url, "model": str(server.model),
            "served_model_name": server.served_model_name, "alive": alive,
            "healthy": bool(alive and health and server.health()),
            "log": str(server.log_path) if server.log_path else None, "pid_file": str(server.pid_file)}


@app.command()
def serve(
    model: Path = typer.Option(..., "--model", help="Local model folder (safetensors + tokenizer with a chat template)."),
    port: int = typer.Option(0, "--port", help="Port (0: a free one)."),
    host: str = typer.Option("127.0.0.1", "--host"),
    python: str = typer.Option(None, "--python", help="Python of the vLLM environment (default: "
                               "$AUTORATER_VLLM_PYTHON or .venv-vllm/bin/python)."),
    max_model_len: int = typer.Option(1024, "--max-model-len"),
    dtype: str = typer.Option("float32", "--dtype", help="float32 | bfloat16 | float16 | auto"),
    served_model_name: str = typer.Option(None, "--served-model-name", help="Model id of the API (default: folder name)."),
    startup_timeout: float = typer.Option(600.0, "--startup-timeout", help="Seconds to wait for /health."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Start a vLLM OpenAI-compatible server for MODEL in the background and wait until it is healthy."""
    from registry.adapters.backends.vllm_backend import ManagedServer

    if not 0 <= port < 65536:
        raise InvalidInput(f"port must be in 0..65535, got {port}", field="port")
    server = ManagedServer(model, python=python, host=host, port=port or None, max_model_len=max_model_len,
                           dtype=dtype, served_model_name=served_model_name, startup_timeout=startup_timeout)
    server.start()
    info = _info(server)
    if json_out:
        print_json(info)
    else:
        console.print(f"vLLM server for {info['model']} healthy at {info['base_url']} (model "
                      f"{info['served_model_name']!r}, pid {info['pid']}); log {info['log']}; stop it with "
                      f"`autorater backend stop --port {info['port']}`", highlight=False)


@app.command("list")
def list_(json_out: bool = JSON_OPTION) -> None:
    """The managed servers with a PID file, whether they are alive and healthy."""
    from registry.adapters.backends.vllm_backend import list_servers

    rows = [_info(s) for s in list_servers()]
    if json_out:
        print_json(rows)
        return
    if not rows:
        console.print("no managed vLLM servers")
    for r in rows:
        state = "healthy" if r["healthy"] else "alive, not healthy" if r["alive"] else "gone (stale PID file)"
        console.print(f"{r['base_url']}  pid {r['pid']}  {r['served_model_name']}  {state}", highlight=False)


@app.command()
def stop(
    port: int = typer.Option(None, "--port", help="Port of the server to stop."),
    all_: bool = typer.Option(False, "--all", help="Stop every managed server."),
    grace: float = typer.Option(15.0, "--grace", help="Seconds between SIGTERM and SIGKILL."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Stop managed servers by PID (SIGTERM, SIGKILL after --grace seconds); stale PID files are removed.

    A PID that is no longer a vLLM API server (reused by another program) is never signalled."""
    from registry.adapters.backends.vllm_backend import list_servers

    if (port is None) == (not all_):
        raise InvalidInput("give --port N or --all")
    servers = [s for s in list_servers() if all_ or s.port == port]
    if port is not None and not servers:
        raise NotFound(f"no managed vLLM server on port {port}")
    out = []
    for server in servers:
        was_alive = server.is_ours()
        server.stop(grace=grace)
        out.append({"port": server.port, "pid": server.pid, "stopped": was_alive, "stale": not was_alive})
    if json_out:
        print_json(out)
    else:
        for r in out:
            console.print(f"port {r['port']}: " + (f"stopped pid {r['pid']}" if r["stopped"] else "stale PID file removed"))
