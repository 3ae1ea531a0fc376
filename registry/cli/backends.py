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

app = new_app("Managed vLLM servers (OpenAI-compatible) for local checkpoint folders.")


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
    from registry.api import serve_backend

    info = serve_backend(model, port=port, host=host, python=python, max_model_len=max_model_len, dtype=dtype,
                         served_model_name=served_model_name, startup_timeout=startup_timeout)
    if json_out:
        print_json(info)
    else:
        console.print(f"vLLM server for {info.model} healthy at {info.base_url} (model "
                      f"{info.served_model_name!r}, pid {info.pid}); log {info.log}; stop it with "
                      f"`autorater backend stop --port {info.port}`", highlight=False)


@app.command("list")
def list_(json_out: bool = JSON_OPTION) -> None:
    """The managed servers with a PID file, whether they are alive and healthy."""
    from registry.api import backend_servers

    rows = backend_servers()
    if json_out:
        print_json(rows)
        return
    if not rows:
        console.print("no managed vLLM servers")
    for r in rows:
        state = "healthy" if r.healthy else "alive, not healthy" if r.alive else "gone (stale PID file)"
        console.print(f"{r.base_url}  pid {r.pid}  {r.served_model_name}  {state}", highlight=False)


@app.command()
def stop(
    port: int = typer.Option(None, "--port", help="Port of the server to stop."),
    all_: bool = typer.Option(False, "--all", help="Stop every managed server."),
    grace: float = typer.Option(15.0, "--grace", help="Seconds between SIGTERM and SIGKILL."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Stop managed servers by PID (SIGTERM, SIGKILL after --grace seconds); stale PID files are removed.

    A PID that is no longer a vLLM API server (reused by another program) is never signalled."""
    from registry.api import stop_backends

    out = stop_backends(port, all=all_, grace=grace)  # checks that exactly one of --port / --all is given
    if json_out:
        print_json(out)
    else:
        for r in out:
            console.print(f"port {r.port}: " + (f"stopped pid {r.pid}" if r.stopped else "stale PID file removed"))
