"""vLLM backends: ``vllm`` (the offline ``vllm.LLM`` engine) and ``vllm-server`` (a managed
OpenAI-compatible vLLM server for a local checkpoint folder).

vLLM cannot live in the registry's own environment (it pins a FastAPI that Prefect 3.8.8 refuses),
so it normally lives in a virtual environment of its own, ``.venv-vllm`` (``scripts/vllm-venv.sh``,
made by ``make test``). Where ``import vllm`` works in the current interpreter (a GPU machine with
the ``[vllm]`` extra) the engine runs right here instead.

Backend ``"vllm"`` — config keys (:class:`VLLMConfig`):

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
``top_logprobs`` (20 here), ``extra_body`` apply). Other keys (:class:`VLLMServerConfig`): ``model``,
``python``, ``dtype``, ``max_model_len``, ``max_input_tokens``, ``host``, ``port``, ``startup_timeout``,
``served_model_name``, ``extra_args``, ``env``. The server starts on
the first ``generate`` and stops on :meth:`close` (SIGTERM to its process group, SIGKILL after a
grace period; the process management is :mod:`registry.adapters.backends.processes`). Requests
carry two vLLM fields (:class:`ServedVLLMClient`):
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
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

from pydantic import Field

from registry.adapters.backends.base import Backend, GenerationRequest, GenerationResult
from registry.adapters.backends.openai_http import HTTPClientConfig, OpenAICompatibleBackend, OpenAIConfig
from registry.adapters.backends.processes import (
    JsonLinesWorker,
    ServerProcess,
    free_port,
    group_pids,
    http_healthy,
    pid_alive,
    pid_files,
    read_pid_file,
    terminate_group,
)
from registry.adapters.backends.vllm_worker import ENGINE_ENV
from registry.adapters.config import EnvVars, LocalModelConfig, Port, PositiveFloat, PositiveInt, Seed
from registry.adapters.models.local import model_folder, model_folder_sha256
from registry.errors import BackendError, BackendUnavailable, InvalidInput, NotFound

REPO_ROOT = Path(__file__).resolve().parents[3]
WORKER_FILE = Path(__file__).resolve().with_name("vllm_worker.py")
PYTHON_ENV = "AUTORATER_VLLM_PYTHON"
Dtype = Literal["float32", "bfloat16", "float16", "auto"]
DTYPES: tuple[str, ...] = get_args(Dtype)
DEFAULT_MAX_MODEL_LEN = 1024
SERVER_MODULE = "vllm.entrypoints.openai.api_server"
_NO_KEY_ENV = "AUTORATER_VLLM_SERVER_API_KEY"
"""The managed server takes no key; the openai backend reads this (normally unset) variable, so a
user's real OPENAI_API_KEY is never sent to it."""


# --------------------------------------------------------------------------- configs
class VLLMModelConfig(LocalModelConfig):
    """The keys both vLLM backends share (module docstring)."""

    dtype: Dtype = "float32"
    """Weights' dtype (float32: what CPUs need for results comparable with the transformers backend)."""
    max_model_len: PositiveInt = DEFAULT_MAX_MODEL_LEN
    """Context length of the engine."""
    max_input_tokens: PositiveInt | None = None
    """Longer prompts lose tokens from the left (None: ``max_model_len``)."""
    python: str | None = None
    """The vLLM environment's Python (default ``$AUTORATER_VLLM_PYTHON``, else ``.venv-vllm``)."""
    startup_timeout: PositiveFloat = 600.0
    """Seconds for the worker to load the engine / the server to be healthy."""
    env: EnvVars = Field(default_factory=dict)
    """Extra environment variables of the worker or server (e.g. ``OMP_NUM_THREADS``)."""

    @property
    def input_tokens(self) -> int:
        """The prompt limit in effect (``max_input_tokens``, else ``max_model_len``)."""
        return self.max_input_tokens or self.max_model_len


class VLLMConfig(VLLMModelConfig):
    """Keys of the ``vllm`` backend (the offline engine, in-process or in a worker)."""

    what: ClassVar[str] = "backend 'vllm'"

    mode: Literal["auto", "in-process", "worker"] = "auto"
    """``auto``: in-process when ``import vllm`` works here, else a worker."""
    top_logprobs: PositiveInt = 20
    """Before vLLM 0.32 only: how many first-step alternatives a choice token is looked up among."""
    exact_choice_logprobs: bool = True
    """Before vLLM 0.32 only: score a choice absent from the top logprobs by a prompt-logprobs pass."""
    enforce_eager: bool = True
    seed: Seed = 0
    """The engine seed."""
    engine_kwargs: dict[str, Any] = Field(default_factory=dict)
    """More ``vllm.LLM`` arguments (part of the fingerprint)."""
    timeout: PositiveFloat | None = None
    """Seconds per worker call (None: no limit)."""


class VLLMServerConfig(VLLMModelConfig, HTTPClientConfig):
    """Keys of the ``vllm-server`` backend: the managed server's and its HTTP client's."""

    what: ClassVar[str] = "backend 'vllm-server'"

    host: str = "127.0.0.1"
    port: Port | None = None
    """None: a free port."""
    served_model_name: str | None = None
    """Model id of the API (default: the folder's name)."""
    extra_args: tuple[str, ...] = ()
    """More command-line arguments of the server."""
    concurrency: PositiveInt = 8
    top_logprobs: PositiveInt = 20
    api_key_env: str = _NO_KEY_ENV


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


def _vllm_model_folder(model: Any, backend: str) -> Path:
    """The checked local model folder (exists, safetensors weights, no pickle-based files, a
    config.json), absolute."""
    return model_folder(model, backend=backend, require_config=True).resolve()


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
class VLLMWorker(JsonLinesWorker):
    """The engine in a child process of the vLLM environment's Python (``vllm_worker.py``, whose
    docstring gives the JSON-lines protocol); the engine loads when the worker starts."""

    label = "vLLM worker"
    goodbye = {"op": "close"}

    def __init__(self, python: str | os.PathLike, config: Mapping[str, Any], *, env: Mapping[str, str],
                 startup_timeout: float | None) -> None:
        super().__init__([str(python), "-P", str(WORKER_FILE)], env=env, cwd=vllm_home(),
                         log_dir=vllm_home() / "logs")
        try:
            self.info = self.call({"op": "load", "config": dict(config)}, startup_timeout, what="load the engine")
        except BaseException:
            self.close()
            raise

    def generate(self, requests: Sequence[Mapping[str, Any]], timeout: float | None) -> list[dict[str, Any]]:
        return self.call({"op": "generate", "requests": list(requests)}, timeout, what="generate")["results"]


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
    Config = VLLMConfig
    local_weights = True

    def __init__(self, config: Mapping[str, Any] | VLLMConfig) -> None:
        super().__init__(config)
        cfg: VLLMConfig = self.settings
        self.folder = _vllm_model_folder(cfg.model, self.name)
        self.dtype = cfg.dtype
        self.max_model_len = cfg.max_model_len
        self.max_input_tokens = cfg.input_tokens
        self.top_logprobs = cfg.top_logprobs
        self.startup_timeout = cfg.startup_timeout
        self.timeout = cfg.timeout
        self.env = dict(cfg.env)
        self.exact_choice_logprobs = cfg.exact_choice_logprobs
        self.engine_config = {
            "model": str(self.folder), "dtype": self.dtype, "max_model_len": self.max_model_len,
            "top_logprobs": self.top_logprobs, "enforce_eager": cfg.enforce_eager, "seed": cfg.seed,
            "engine_kwargs": dict(cfg.engine_kwargs)}
        self.python: Path | None = None
        if cfg.mode == "in-process" or (cfg.mode == "auto" and not cfg.python and vllm_importable()):
            if not vllm_importable():
                raise NotFound("mode 'in-process' needs vLLM in this Python environment (pip install '.[vllm]')")
            self.mode = "in-process"
        else:
            self.mode = "worker"
            self.python = find_vllm_python(cfg.python)
            if self.python is None:
                raise NotFound(
                    "vLLM is not installed in this environment and no vLLM environment was found: run "
                    f"scripts/vllm-venv.sh (creates {REPO_ROOT / '.venv-vllm'}), or set ${PYTHON_ENV} or the "
                    "backend's 'python' to the Python of an environment with vLLM")
        self._engine: Any = None

    def fingerprint(self) -> Mapping[str, Any]:
        """Backend name, content hash of the model folder (not its path), dtype, lengths and the
        engine arguments that change outputs."""
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
class ManagedServer(ServerProcess):
    """A vLLM OpenAI-compatible server process for a local model folder (a
    :class:`~registry.adapters.backends.processes.ServerProcess`).

    ``start()`` launches ``<python> -P -m vllm.entrypoints.openai.api_server --model DIR --host
    HOST --port PORT --max-model-len N --enforce-eager --dtype D`` in a new session (its own
    process group), writes a PID file ``<vllm home>/servers/<port>.json`` and waits until
    ``/health`` answers 200 (a clear error with the log's last lines if the process dies or the
    timeout passes). ``stop()`` sends SIGTERM to the group, SIGKILL after ``grace`` seconds, and
    removes the PID file. Also a context manager. A server started by another process (the CLI)
    is reattached with :meth:`from_pid_file`.
    """

    marker = SERVER_MODULE.encode()

    def __init__(self, model: str | os.PathLike, *, python: str | os.PathLike | None = None,
                 host: str = "127.0.0.1", port: int | None = None, max_model_len: int = DEFAULT_MAX_MODEL_LEN,
                 dtype: str = "float32", served_model_name: str | None = None, extra_args: Sequence[str] = (),
                 startup_timeout: float = 600.0, env: Mapping[str, str] | None = None,
                 state_dir: str | os.PathLike | None = None) -> None:
        self.model = _vllm_model_folder(model, "vllm-server")
        found = find_vllm_python(python)
        if found is None:
            raise NotFound("no vLLM environment found for the server: run scripts/vllm-venv.sh, or set "
                           f"${PYTHON_ENV} / 'python' to the Python of an environment with vLLM")
        self.python = found
        self.max_model_len = int(max_model_len)
        if dtype not in DTYPES:
            raise InvalidInput(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}", field="dtype")
        self.dtype = dtype
        self.served_model_name = served_model_name or self.model.name
        self.extra_args = [str(a) for a in extra_args]
        self.env = dict(env or {})
        super().__init__(host=host, port=port, startup_timeout=startup_timeout,
                         state_dir=Path(state_dir) if state_dir else vllm_home())

    # ------------------------------------------------------------------ identity
    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API root (``http://HOST:PORT/v1``)."""
        if self.port is None:
            raise BackendError("the server has no port yet; start() it first")
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> list[str]:
        return [str(self.python), "-P", "-m", SERVER_MODULE, "--model", str(self.model), "--host", self.host,
                "--port", str(self.port), "--max-model-len", str(self.max_model_len), "--enforce-eager",
                "--dtype", self.dtype, "--served-model-name", self.served_model_name, *self.extra_args]

    def environment(self) -> dict[str, str]:
        return engine_env(self.env, in_process_engine=False)

    def describe(self) -> str:
        return f"the vLLM server for {self.model}"

    def state(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "model": str(self.model), "served_model_name": self.served_model_name,
                "python": str(self.python), "max_model_len": self.max_model_len, "dtype": self.dtype}

    @classmethod
    def from_pid_file(cls, path: str | os.PathLike) -> ManagedServer:
        """The server described by a PID file (written by :meth:`start` in any process); the model
        folder and the Python need not exist any more (to stop a server, nothing is checked but
        that its PID is still a vLLM API server)."""
        path = Path(path)
        state = read_pid_file(path, "vLLM server")
        server = cls.__new__(cls)
        try:
            server._reattach(state, path)
            server.model = Path(state["model"])
            server.python = Path(state["python"])
            server.max_model_len, server.dtype = int(state["max_model_len"]), str(state["dtype"])
            server.served_model_name = str(state["served_model_name"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"not a vLLM server PID file: {exc}", file=path) from exc
        server.extra_args, server.startup_timeout, server.env = [], 600.0, {}
        return server


def list_servers(state_dir: str | os.PathLike | None = None) -> list[ManagedServer]:
    """The managed servers with a PID file under ``state_dir`` (default :func:`vllm_home`)."""
    out = []
    for path in pid_files(state_dir or vllm_home()):
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

    def __init__(self, config: Mapping[str, Any] | OpenAIConfig, *, folder: Path, max_model_len: int,
                 max_input_tokens: int) -> None:
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
    Config = VLLMServerConfig
    local_weights = True

    def __init__(self, config: Mapping[str, Any] | VLLMServerConfig) -> None:
        super().__init__(config)
        cfg: VLLMServerConfig = self.settings
        self.folder = _vllm_model_folder(cfg.model, self.name)
        self.dtype = cfg.dtype
        self.max_model_len = cfg.max_model_len
        self.max_input_tokens = cfg.input_tokens
        self.server = ManagedServer(
            self.folder, python=cfg.python, host=cfg.host, port=cfg.port, max_model_len=self.max_model_len,
            dtype=self.dtype, served_model_name=cfg.served_model_name, extra_args=cfg.extra_args,
            startup_timeout=cfg.startup_timeout, env=cfg.env)
        self.http_settings = cfg.http_settings()  # the keys of the HTTP client it talks to the server with
        self._http: OpenAICompatibleBackend | None = None
        self._lock = threading.Lock()

    def fingerprint(self) -> Mapping[str, Any]:
        """Backend name, content hash of the model folder (not its path or port), dtype, context length."""
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
                client = OpenAIConfig(**self.http_settings, base_url=self.server.base_url,
                                      model=self.server.served_model_name)
                self._http = ServedVLLMClient(client, folder=self.folder, max_model_len=self.max_model_len,
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


__all__ = ["ManagedServer", "ServedVLLMClient", "VLLMBackend", "VLLMConfig", "VLLMServerBackend", "VLLMServerConfig",
           "VLLMWorker", "find_vllm_python", "free_port", "group_pids", "http_healthy", "list_servers", "pid_alive",
           "shutdown_engines", "terminate_group", "vllm_home"]
