"""vLLM backends: ``vllm`` (the offline ``vllm.LLM`` engine) and ``vllm-server`` (a managed
OpenAI-compatible vLLM server for a local checkpoint folder).

vLLM cannot live in the registry's own environment (it pins a FastAPI that Prefect 3.8.8 refuses),
so it normally lives in a virtual environment of its own, ``.venv-vllm`` (``scripts/vllm-venv.sh``,
made by ``make test``). Where ``import vllm`` works in the current interpreter (a GPU machine with
the ``[vllm]`` extra) the engine runs right here instead.

Backend ``"vllm"`` — config keys:

* ``model`` — a local model folder (safetensors weights, a tokenizer with a chat template); a folder
  holding pickle-based files is refused. Nothing is downloaded (``HF_HUB_OFFLINE=1``).
* ``dtype`` — ``"float32"`` (default, what CPUs need for results comparable with the transformers
  backend) | ``"bfloat16"`` | ``"float16"`` | ``"auto"``.
* ``max_model_len`` (1024) — context length of the engine; ``max_input_tokens`` (default the same)
  — longer prompts lose tokens from the LEFT, as in the transformers backend (the room for
  ``max_tokens`` is kept).
* ``mode`` — ``"auto"`` (default: in-process when ``import vllm`` works here, else a worker) |
  ``"in-process"`` | ``"worker"``.
* ``python`` — the vLLM environment's Python for the worker; default ``$AUTORATER_VLLM_PYTHON``,
  else ``<repo>/.venv-vllm/bin/python`` when it exists.
* ``top_logprobs`` (20), ``exact_choice_logprobs`` (true) — only for a vLLM without
  ``logprob_token_ids`` (before 0.32): choice tokens are looked up among the first step's top
  ``top_logprobs`` and, when absent, scored exactly by an extra prompt-logprobs pass (false:
  ``-inf``). With vLLM 0.32 the first step returns exactly the choice tokens' logprobs.
* ``enforce_eager`` (true), ``seed`` (0, the engine seed), ``engine_kwargs`` (more ``vllm.LLM``
  arguments, e.g. ``{"gpu_memory_utilization": 0.8}``; part of the fingerprint).
* ``startup_timeout`` (600 s) — for the worker to load the engine; ``timeout`` (none) per call.
* ``env`` — extra environment variables of the worker (e.g. ``OMP_NUM_THREADS``).

The engine runs with ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` (engine core in the same process),
``HF_HUB_OFFLINE=1``, ``VLLM_CPU_KVCACHE_SPACE=1`` (GiB; CPU only) and ``VLLM_CACHE_ROOT`` under
``$AUTORATER_HOME/vllm`` (or a per-user temporary folder). Prompts are the chat template rendered
to text (with the generation prompt) and tokenized without special tokens, so they are the
transformers backend's token ids exactly. Greedy requests (``temperature == 0``) compute one text
and repeat it ``n`` times; sampled requests draw ``n`` samples with vLLM's per-request generator
seeded with ``seed``. Choice log-probabilities follow the transformers backend's rule (spellings
``"A"`` and ``" A"`` log-sum-exp'ed; a one-token spelling from the first step's raw logprobs, a
longer one as a whole sequence from prompt logprobs). Texts are decoded from the generated token
ids in one go, as in the transformers backend (vLLM's own streamed text holds back an incomplete
UTF-8 character at the very end, which a one-shot decode writes as U+FFFD; the server's texts do
hold it back). Cost: ``prompt_tokens`` after truncation,
``completion_tokens`` including the end-of-sequence token, ``seconds`` = the engine call's wall
time split evenly over its requests.

Loaded engines (in-process) and workers are shared per process by configuration, like the
transformers backend's models: :meth:`Backend.close` drops the backend's reference, and
:func:`shutdown_engines` (also run at interpreter exit) stops the workers.

Backend ``"vllm-server"`` — starts ``<python> -m vllm.entrypoints.openai.api_server`` on a free
local port for ``model`` (a :class:`ManagedServer`; ``vllm serve`` does not work from a plain
virtual environment), waits for ``/health``, and sends requests through the ``openai`` backend
(:class:`OpenAICompatibleBackend`; its keys ``concurrency`` (8 here), ``timeout``, ``max_retries``,
``top_logprobs`` (20 here), ``extra_body`` apply). Other keys: ``model``, ``python``, ``dtype``,
``max_model_len``, ``max_input_tokens``, ``port``, ``startup_timeout``, ``served_model_name``, ``extra_args``, ``env``. The server starts on
the first ``generate`` and stops on :meth:`close` (SIGTERM to its process group, SIGKILL after a
grace period). Requests carry two vLLM fields (:class:`ServedVLLMClient`):
``truncate_prompt_tokens`` (``min(max_input_tokens, max_model_len - max_tokens)``, from the left,
like the in-process backends) and ``logprob_token_ids`` (the one-token spellings of the choices,
found with the checkpoint's tokenizer), so one-token choices get their exact first-token
log-probabilities; a multi-token choice (``"Output (a)"``) is matched by text among the top
logprobs, as with any OpenAI-compatible server (absent → ``-inf``).
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import queue
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import httpx

from registry.adapters.backends.base import Backend, GenerationRequest, GenerationResult
from registry.adapters.backends.openai_http import BackendError, BackendUnavailable, OpenAICompatibleBackend
from registry.adapters.backends.vllm_worker import ENGINE_ENV
from registry.errors import InvalidInput, NotFound

REPO_ROOT = Path(__file__).resolve().parents[3]
WORKER_FILE = Path(__file__).resolve().with_name("vllm_worker.py")
PYTHON_ENV = "AUTORATER_VLLM_PYTHON"
DTYPES = ("float32", "bfloat16", "float16", "auto")
DEFAULT_MAX_MODEL_LEN = 1024
SERVER_MODULE = "vllm.entrypoints.openai.api_server"
_NO_KEY_ENV = "AUTORATER_VLLM_SERVER_API_KEY"
"""The managed server takes no key; the openai backend reads this (normally unset) variable, so a
user's real OPENAI_API_KEY is never sent to it."""


# --------------------------------------------------------------------------- environment
def vllm_home() -> Path:
    """Folder for vLLM's cache, worker/server logs and PID files: ``$AUTORATER_HOME/vllm``, or a
    per-user temporary folder when ``AUTORATER_HOME`` is not set."""
    home = os.environ.get("AUTORATER_HOME")
    base = Path(home) / "vllm" if home else Path(tempfile.gettempdir()) / f"autorater-vllm-{os.getuid()}"
    base.mkdir(parents=True, exist_ok=True)
    return base.resolve()


def vllm_importable() -> bool:
    """Whether ``import vllm`` would work in this interpreter (without importing it)."""
    return importlib.util.find_spec("vllm") is not None


def find_vllm_python(configured: Any = None) -> Path | None:
    """The vLLM environment's Python: ``configured``, else ``$AUTORATER_VLLM_PYTHON``, else
    ``<repo>/.venv-vllm/bin/python`` when it exists; None when there is none."""
    for candidate, origin in ((configured, "config 'python'"), (os.environ.get(PYTHON_ENV), f"${PYTHON_ENV}")):
        if candidate:
            path = Path(str(candidate)).expanduser()
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise NotFound(f"the vLLM Python {path} ({origin}) does not exist or is not executable")
            return path
    default = REPO_ROOT / ".venv-vllm" / "bin" / "python"
    return default if default.is_file() else None


def engine_env(extra: Mapping[str, Any] | None = None, *, in_process_engine: bool = True) -> dict[str, str]:
    """Environment of a vLLM child process: ours plus the engine settings (module docstring)."""
    env = dict(os.environ)
    for key, value in ENGINE_ENV.items():
        if key == "VLLM_ENABLE_V1_MULTIPROCESSING" and not in_process_engine:
            continue  # the API server runs its engine core in a process of its own anyway
        env.setdefault(key, value)
    env.setdefault("VLLM_CACHE_ROOT", str(vllm_home() / "cache"))
    env.pop("PYTHONPATH", None)  # the registry's paths must not leak into the vLLM environment
    env.update({str(k): str(v) for k, v in (extra or {}).items()})
    return env


def _log_tail(path: Path | None, lines: int = 25) -> str:
    if path is None or not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])


def _model_folder(model: Any, backend: str) -> Path:
    """The checked local model folder (the transformers backend's checks: exists, safetensors
    weights, no pickle-based files), absolute."""
    from registry.adapters.backends.hf import _model_folder as checked_model_folder

    if not isinstance(model, str | os.PathLike) or not str(model):
        raise InvalidInput(f"the {backend} backend needs 'model': a local model folder", field="model")
    folder = checked_model_folder(model)
    if not (folder / "config.json").is_file():
        raise InvalidInput("model folder has no config.json", file=folder)
    return folder.resolve()


def _positive_int(config: Mapping[str, Any], key: str, default: int) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInput(f"{key} must be a positive integer, got {value!r}", field=key)
    return value


def _positive_float(config: Mapping[str, Any], key: str, default: float | None) -> float | None:
    value = config.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise InvalidInput(f"{key} must be a positive number of seconds, got {value!r}", field=key)
    return float(value)


def _dtype(config: Mapping[str, Any]) -> str:
    dtype = str(config.get("dtype", "float32"))
    if dtype not in DTYPES:
        raise InvalidInput(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}", field="dtype")
    return dtype


def _model_settings(backend: Backend) -> None:
    """The keys both vLLM backends share: ``model``, ``dtype``, ``max_model_len``, ``max_input_tokens``."""
    cfg = backend.config
    backend.folder = _model_folder(cfg.get("model"), backend.name)
    backend.dtype = _dtype(cfg)
    backend.max_model_len = _positive_int(cfg, "max_model_len", DEFAULT_MAX_MODEL_LEN)
    backend.max_input_tokens = _positive_int(cfg, "max_input_tokens", backend.max_model_len)


def _env_config(config: Mapping[str, Any]) -> dict[str, str]:
    env = config.get("env") or {}
    if not isinstance(env, Mapping):
        raise InvalidInput("'env' must be a mapping of environment variables", field="env")
    return {str(k): str(v) for k, v in env.items()}


def _checked(requests: Sequence[GenerationRequest]) -> list[GenerationRequest]:
    """``requests`` as a list, refused before anything loads when one is malformed."""
    requests = list(requests)
    for index, request in enumerate(requests):
        if request.n < 1:
            raise InvalidInput(f"n must be at least 1, got {request.n}", row=index, field="n")
        if request.temperature < 0 or not 0 < request.top_p <= 1:
            raise InvalidInput("temperature must be ≥ 0 and top_p in (0, 1]", row=index, field="temperature")
        if request.max_tokens < 1:
            raise InvalidInput(f"max_tokens must be at least 1, got {request.max_tokens}", row=index,
                               field="max_tokens")
    return requests


def _request_dict(request: GenerationRequest) -> dict[str, Any]:
    return {"messages": [dict(m) for m in request.messages], "max_tokens": request.max_tokens,
            "temperature": request.temperature, "top_p": request.top_p, "n": request.n, "seed": request.seed,
            "choices": list(request.choices) if request.choices else None,
            "stop": list(request.stop) if request.stop else None}


def _result(data: Mapping[str, Any]) -> GenerationResult:
    return GenerationResult(texts=tuple(data["texts"]), prompt_tokens=int(data["prompt_tokens"]),
                            completion_tokens=int(data["completion_tokens"]), seconds=float(data["seconds"]),
                            choice_logprobs=data.get("choice_logprobs"),
                            finish_reasons=tuple(data.get("finish_reasons") or ()), extra=dict(data.get("extra") or {}))


# --------------------------------------------------------------------------- worker process
class VLLMWorker:
    """The engine in a child process of the vLLM environment's Python, over JSON lines."""

    def __init__(self, python: Path, config: Mapping[str, Any], *, env: Mapping[str, str],
                 startup_timeout: float | None) -> None:
        logs = vllm_home() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="worker-", suffix=".log", dir=logs)
        self.log_path = Path(name)
        self._log: IO[bytes] = os.fdopen(fd, "wb")
        self._lock = threading.Lock()
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(
            [str(python), "-P", str(WORKER_FILE)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            env=dict(env), cwd=str(vllm_home()), text=True, encoding="utf-8", bufsize=1, start_new_session=True)
        threading.Thread(target=self._read, name=f"vllm-worker-{self.proc.pid}", daemon=True).start()
        try:
            self.info = self.call({"op": "load", "config": dict(config)}, startup_timeout, what="load the engine")
        except BaseException:
            self.close()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _died(self, what: str) -> BackendUnavailable:
        code = self.proc.wait(timeout=10) if self.proc.poll() is None else self.proc.returncode
        tail = _log_tail(self.log_path)
        return BackendUnavailable(f"the vLLM worker (pid {self.proc.pid}) exited with code {code} while trying to "
                                  f"{what}; log {self.log_path}" + (f", last lines:\n{tail}" if tail else ""))

    def call(self, message: Mapping[str, Any], timeout: float | None, *, what: str) -> dict[str, Any]:
        """Send one message, wait for its answer (``timeout`` seconds, None = no limit)."""
        with self._lock:
            if not self.alive():
                raise self._died(what)
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps(message) + "\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                raise self._died(what) from None
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                self._kill()
                raise BackendUnavailable(f"the vLLM worker did not {what} within {timeout:g} s (stopped it); "
                                         f"log {self.log_path}:\n{_log_tail(self.log_path)}") from None
            if line is None:
                raise self._died(what)
        answer = json.loads(line)
        if not answer.get("ok"):
            raise BackendError(f"the vLLM worker could not {what}: {answer.get('type')}: {answer.get('error')} "
                               f"(log {self.log_path})")
        return answer

    def generate(self, requests: Sequence[Mapping[str, Any]], timeout: float | None) -> list[dict[str, Any]]:
        return self.call({"op": "generate", "requests": list(requests)}, timeout, what="generate")["results"]

    def _kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)

    def close(self, grace: float = 10.0) -> None:
        """Ask the worker to exit (it frees the engine), SIGTERM then SIGKILL if it does not."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"op": "close"}) + "\n")
                self.proc.stdin.close()
            except (BrokenPipeError, OSError, ValueError):
                pass
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _terminate_group(self.proc.pid, grace, child=self.proc)
        self._log.close()


# --------------------------------------------------------------------------- shared engines
_ENGINES: dict[str, Any] = {}
"""Engine key → an in-process ``VLLMEngine`` or a :class:`VLLMWorker` (one per config per process)."""
_ENGINES_LOCK = threading.Lock()


def shutdown_engines() -> None:
    """Stop every vLLM worker of this process and forget the in-process engines."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
        _ENGINES.clear()
    for engine in engines:
        if isinstance(engine, VLLMWorker):
            engine.close()


atexit.register(shutdown_engines)


class VLLMBackend(Backend):
    """The offline ``vllm.LLM`` engine, in-process or in a worker (see the module docstring)."""

    name = "vllm"

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        cfg = self.config
        _model_settings(self)
        self.top_logprobs = _positive_int(cfg, "top_logprobs", 20)
        self.startup_timeout = _positive_float(cfg, "startup_timeout", 600.0)
        self.timeout = _positive_float(cfg, "timeout", None)
        self.env = _env_config(cfg)
        engine_kwargs = cfg.get("engine_kwargs") or {}
        if not isinstance(engine_kwargs, Mapping):
            raise InvalidInput("'engine_kwargs' must be a mapping of vllm.LLM arguments", field="engine_kwargs")
        self.exact_choice_logprobs = bool(cfg.get("exact_choice_logprobs", True))
        self.engine_config = {
            "model": str(self.folder), "dtype": self.dtype, "max_model_len": self.max_model_len,
            "top_logprobs": self.top_logprobs,
            "enforce_eager": bool(cfg.get("enforce_eager", True)), "seed": int(cfg.get("seed", 0)),
            "engine_kwargs": dict(engine_kwargs)}
        mode = str(cfg.get("mode", "auto"))
        if mode not in ("auto", "in-process", "worker"):
            raise InvalidInput(f"unknown mode {mode!r}; expected 'auto', 'in-process' or 'worker'", field="mode")
        self.python: Path | None = None
        if mode == "in-process" or (mode == "auto" and not cfg.get("python") and vllm_importable()):
            if not vllm_importable():
                raise NotFound("mode 'in-process' needs vLLM in this Python environment (pip install '.[vllm]')")
            self.mode = "in-process"
        else:
            self.mode = "worker"
            self.python = find_vllm_python(cfg.get("python"))
            if self.python is None:
                raise NotFound(
                    "vLLM is not installed in this environment and no vLLM environment was found: run "
                    f"scripts/vllm-venv.sh (creates {REPO_ROOT / '.venv-vllm'}), or set ${PYTHON_ENV} or the "
                    "backend's 'python' to the Python of an environment with vLLM")
        self._engine: Any = None

    def fingerprint(self) -> Mapping[str, Any]:
        """Backend name, content hash of the model folder (not its path), dtype, lengths and the
        engine arguments that change outputs."""
        from registry.adapters.backends.hf import model_folder_sha256

        return {"backend": self.name, "model_sha256": model_folder_sha256(self.folder), "dtype": self.dtype,
                "max_model_len": self.max_model_len, "max_input_tokens": self.max_input_tokens,
                "exact_choice_logprobs": self.exact_choice_logprobs,
                **({"engine_kwargs": self.engine_config["engine_kwargs"]} if self.engine_config["engine_kwargs"] else {})}

    def _key(self) -> str:
        return json.dumps({"mode": self.mode, "python": str(self.python), "env": self.env, **self.engine_config},
                          sort_keys=True)

    @property
    def engine(self) -> Any:
        """The loaded engine or worker (loaded on first use; shared per process by config)."""
        if self._engine is None or (isinstance(self._engine, VLLMWorker) and not self._engine.alive()):
            key = self._key()
            with _ENGINES_LOCK:
                engine = _ENGINES.get(key)
                if isinstance(engine, VLLMWorker) and not engine.alive():
                    engine = None
                if engine is None:
                    engine = self._load()
                    _ENGINES[key] = engine
            self._engine = engine
        return self._engine

    def _load(self) -> Any:
        if self.mode == "in-process":
            for key, value in {**ENGINE_ENV, "VLLM_CACHE_ROOT": str(vllm_home() / "cache")}.items():
                os.environ.setdefault(key, value)
            os.environ.update(self.env)
            from registry.adapters.backends.vllm_worker import VLLMEngine

            try:
                return VLLMEngine(self.engine_config)
            except (OSError, ValueError, RuntimeError) as exc:
                raise BackendUnavailable(f"vLLM could not load {self.folder}: {exc}") from exc
        assert self.python is not None
        return VLLMWorker(self.python, self.engine_config, env=engine_env(self.env),
                          startup_timeout=self.startup_timeout)

    @property
    def info(self) -> dict[str, Any]:
        """Load seconds, vLLM version and platform of the engine (loads it)."""
        engine = self.engine
        return dict(engine.info)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Completions for ``requests`` in order, all in one engine call."""
        requests = _checked(requests)
        if not requests:
            return []
        payload = [{**_request_dict(r), "max_input_tokens": self.max_input_tokens,
                    "exact_choice_logprobs": self.exact_choice_logprobs} for r in requests]
        engine = self.engine
        if isinstance(engine, VLLMWorker):
            data = engine.generate(payload, self.timeout)
        else:
            data = engine.generate(payload)
        return [_result(d) for d in data]

    def close(self) -> None:
        """Drop this backend's reference (the engine stays for reuse; see :func:`shutdown_engines`)."""
        self._engine = None


# --------------------------------------------------------------------------- managed server
def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
        return status.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def group_pids(pgid: int) -> list[int]:
    """The live (non-zombie) processes of the process group ``pgid``."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: ask the kernel (zombies included)
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    out = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(entry.name))
    return out


def _terminate_group(pid: int, grace: float, child: subprocess.Popen | None = None) -> None:
    """SIGTERM to the process group led by ``pid``; SIGKILL to what is left after ``grace`` s."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + wait
        while True:
            if child is not None:
                child.poll()  # reap the leader when it is our child
            if not group_pids(pid):
                if child is not None:
                    child.wait(timeout=10)  # dead (at most a zombie): reap it
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)


class ManagedServer:
    """A vLLM OpenAI-compatible server process for a local model folder.

    ``start()`` launches ``<python> -P -m vllm.entrypoints.openai.api_server --model DIR --host
    HOST --port PORT --max-model-len N --enforce-eager --dtype D`` in a new session (its own
    process group), writes a PID file ``<vllm home>/servers/<port>.json`` and waits until
    ``/health`` answers 200 (a clear error with the log's last lines if the process dies or the
    timeout passes). ``stop()`` sends SIGTERM to the group, SIGKILL after ``grace`` seconds, and
    removes the PID file. Also a context manager. A server started by another process (the CLI)
    is reattached with :meth:`from_pid_file`.
    """

    def __init__(self, model: str | os.PathLike, *, python: str | os.PathLike | None = None,
                 host: str = "127.0.0.1", port: int | None = None, max_model_len: int = DEFAULT_MAX_MODEL_LEN,
                 dtype: str = "float32", served_model_name: str | None = None, extra_args: Sequence[str] = (),
                 startup_timeout: float = 600.0, env: Mapping[str, str] | None = None,
                 state_dir: str | os.PathLike | None = None) -> None:
        self.model = _model_folder(model, "vllm-server")
        found = find_vllm_python(python)
        if found is None:
            raise NotFound("no vLLM environment found for the server: run scripts/vllm-venv.sh, or set "
                           f"${PYTHON_ENV} / 'python' to the Python of an environment with vLLM")
        self.python = found
        self.host = host
        self.port = port
        self.max_model_len = int(max_model_len)
        if dtype not in DTYPES:
            raise InvalidInput(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}", field="dtype")
        self.dtype = dtype
        self.served_model_name = served_model_name or self.model.name
        self.extra_args = [str(a) for a in extra_args]
        self.startup_timeout = float(startup_timeout)
        self.env = dict(env or {})
        self.state_dir = Path(state_dir) if state_dir else vllm_home()
        self.pid: int | None = None
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None

    # ------------------------------------------------------------------ identity
    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API root (``http://HOST:PORT/v1``)."""
        if self.port is None:
            raise BackendError("the server has no port yet; start() it first")
        return f"http://{self.host}:{self.port}/v1"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "servers" / f"{self.port}.json"

    def command(self) -> list[str]:
        return [str(self.python), "-P", "-m", SERVER_MODULE, "--model", str(self.model), "--host", self.host,
                "--port", str(self.port), "--max-model-len", str(self.max_model_len), "--enforce-eager",
                "--dtype", self.dtype, "--served-model-name", self.served_model_name, *self.extra_args]

    # ------------------------------------------------------------------ lifecycle
    def running(self) -> bool:
        if self.pid is None:
            return False
        if self.proc is not None:
            return self.proc.poll() is None
        return pid_alive(self.pid)

    def health(self, timeout: float = 2.0) -> bool:
        """Whether ``GET /health`` answers 200 now."""
        if self.port is None:
            return False
        try:
            return httpx.get(f"http://{self.host}:{self.port}/health", timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self) -> ManagedServer:
        """Launch the server and wait until it is healthy (no-op when already running)."""
        if self.running():
            return self
        if self.port is None:
            self.port = free_port(self.host)
        logs = self.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.log_path = logs / f"server-{self.port}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=engine_env(self.env, in_process_engine=False), cwd=str(self.state_dir), start_new_session=True)
        self.pid = self.proc.pid
        self._write_pid_file()
        try:
            self.wait_healthy(self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_healthy(self, timeout: float) -> None:
        """Poll ``/health`` until it answers 200; clear errors if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                code = self.proc.returncode if self.proc is not None else None
                raise BackendUnavailable(
                    f"the vLLM server for {self.model} exited (code {code}) before it was healthy; log "
                    f"{self.log_path}, last lines:\n{_log_tail(self.log_path)}")
            if self.health():
                return
            if time.monotonic() > deadline:
                raise BackendUnavailable(
                    f"the vLLM server for {self.model} was not healthy within {timeout:g} s; log {self.log_path}, "
                    f"last lines:\n{_log_tail(self.log_path)}")
            time.sleep(0.5)

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM to the server's process group, SIGKILL after ``grace`` s; removes the PID file."""
        if self.pid is not None and (self.proc is not None or self.is_ours()) and group_pids(self.pid):
            _terminate_group(self.pid, grace, child=self.proc)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.wait(timeout=10)
        if self.port is not None:
            self.pid_file.unlink(missing_ok=True)

    def __enter__(self) -> ManagedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ PID files
    def _write_pid_file(self) -> None:
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        state = {"pid": self.pid, "host": self.host, "port": self.port, "base_url": self.base_url,
                 "model": str(self.model), "served_model_name": self.served_model_name, "python": str(self.python),
                 "max_model_len": self.max_model_len, "dtype": self.dtype,
                 "log": str(self.log_path) if self.log_path else None, "started_at": time.time()}
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
        tmp.replace(self.pid_file)

    @classmethod
    def from_pid_file(cls, path: str | os.PathLike) -> ManagedServer:
        """The server described by a PID file (written by :meth:`start` in any process); the model
        folder and the Python need not exist any more (to stop a server, nothing is checked but
        that its PID is still a vLLM API server)."""
        path = Path(path)
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            server = cls.__new__(cls)
            server.model = Path(state["model"])
            server.python = Path(state["python"])
            server.host, server.port = str(state["host"]), int(state["port"])
            server.max_model_len, server.dtype = int(state["max_model_len"]), str(state["dtype"])
            server.served_model_name = str(state["served_model_name"])
            server.pid = int(state["pid"])
            server.log_path = Path(state["log"]) if state.get("log") else None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"not a vLLM server PID file: {exc}", file=path) from exc
        server.extra_args, server.startup_timeout, server.env = [], 600.0, {}
        server.state_dir, server.proc = path.parent.parent, None
        return server

    def is_ours(self) -> bool:
        """Whether the PID is (still) a vLLM API server process (PIDs get reused)."""
        if self.pid is None or not pid_alive(self.pid):
            return False
        try:
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return SERVER_MODULE.encode() in cmdline


def list_servers(state_dir: str | os.PathLike | None = None) -> list[ManagedServer]:
    """The managed servers with a PID file under ``state_dir`` (default :func:`vllm_home`)."""
    folder = Path(state_dir or vllm_home()) / "servers"
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            out.append(ManagedServer.from_pid_file(path))
        except (InvalidInput, NotFound):
            continue
    return out


class ServedVLLMClient(OpenAICompatibleBackend):
    """The ``openai`` backend plus two vLLM request fields: ``truncate_prompt_tokens`` (left
    truncation, as in the in-process backends, instead of a 400 for a long prompt) and
    ``logprob_token_ids`` (the exact first-token logprobs of the choices' one-token spellings,
    whatever their rank; matched back by text as usual)."""

    def __init__(self, config: Mapping[str, Any], *, folder: Path, max_model_len: int, max_input_tokens: int) -> None:
        super().__init__(config)
        self.folder, self.max_model_len, self.max_input_tokens = folder, max_model_len, max_input_tokens
        self._tokenizer: Any = None
        self._single_ids: dict[tuple[str, ...], list[int]] = {}
        self._tok_lock = threading.Lock()

    def _choice_token_ids(self, choices: Sequence[str]) -> list[int]:
        key = tuple(choices)
        with self._tok_lock:
            if key not in self._single_ids:
                if self._tokenizer is None:
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    from transformers import AutoTokenizer

                    self._tokenizer = AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True,
                                                                    trust_remote_code=False)
                ids = set()
                for choice in choices:
                    for text in (choice, " " + choice):
                        tokens = self._tokenizer(text, add_special_tokens=False)["input_ids"]
                        if len(tokens) == 1:
                            ids.add(int(tokens[0]))
                self._single_ids[key] = sorted(ids)
            return self._single_ids[key]

    def _body(self, request: GenerationRequest) -> dict[str, Any]:
        body = super()._body(request)
        body["truncate_prompt_tokens"] = max(1, min(self.max_input_tokens,
                                                    self.max_model_len - max(1, request.max_tokens)))
        body["truncation_side"] = "left"
        if request.choices:
            ids = self._choice_token_ids(request.choices)
            if ids:
                body["logprob_token_ids"] = ids
                body["top_logprobs"] = len(ids)
        return body


class VLLMServerBackend(Backend):
    """A managed vLLM server for a local checkpoint, used through the ``openai`` backend."""

    name = "vllm-server"
    SERVER_KEYS = frozenset({"model", "python", "dtype", "max_model_len", "max_input_tokens", "port",
                             "startup_timeout", "served_model_name", "extra_args", "env", "host"})

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        cfg = self.config
        _model_settings(self)
        extra_args = cfg.get("extra_args") or []
        if isinstance(extra_args, str) or not isinstance(extra_args, Sequence):
            raise InvalidInput("'extra_args' must be a list of command-line arguments", field="extra_args")
        port = cfg.get("port")
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536):
            raise InvalidInput(f"port must be an integer in 1..65535, got {port!r}", field="port")
        self.server = ManagedServer(
            self.folder, python=cfg.get("python"), host=str(cfg.get("host", "127.0.0.1")), port=port,
            max_model_len=self.max_model_len, dtype=self.dtype, served_model_name=cfg.get("served_model_name"),
            extra_args=extra_args, startup_timeout=_positive_float(cfg, "startup_timeout", 600.0) or 600.0,
            env=_env_config(cfg))
        self.http_config = {"concurrency": 8, "top_logprobs": 20, "api_key_env": _NO_KEY_ENV,
                            **{k: v for k, v in cfg.items() if k not in self.SERVER_KEYS}}
        self._http: OpenAICompatibleBackend | None = None
        self._lock = threading.Lock()

    def fingerprint(self) -> Mapping[str, Any]:
        """Backend name, content hash of the model folder (not its path or port), dtype, context length."""
        from registry.adapters.backends.hf import model_folder_sha256

        return {"backend": self.name, "model_sha256": model_folder_sha256(self.folder), "dtype": self.dtype,
                "max_model_len": self.max_model_len, "max_input_tokens": self.max_input_tokens}

    def start(self) -> ManagedServer:
        """Start the server (if not running) and the HTTP client; returns the server."""
        with self._lock:
            if not self.server.running():
                self.server.start()
                if self._http is not None:
                    self._http.close()
                    self._http = None
            if self._http is None:
                self._http = ServedVLLMClient({**self.http_config, "base_url": self.server.base_url,
                                               "model": self.server.served_model_name},
                                              folder=self.folder, max_model_len=self.max_model_len,
                                              max_input_tokens=self.max_input_tokens)
        return self.server

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Completions through the server (started on first use), ``concurrency`` in flight."""
        requests = _checked(requests)
        if not requests:
            return []
        self.start()
        assert self._http is not None
        return self._http.generate(requests)

    def close(self) -> None:
        """Close the HTTP client and stop the server."""
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None
            self.server.stop()


__all__ = ["ManagedServer", "ServedVLLMClient", "VLLMBackend", "VLLMServerBackend", "VLLMWorker", "find_vllm_python", "free_port",
           "group_pids", "list_servers", "pid_alive", "shutdown_engines", "vllm_home"]
