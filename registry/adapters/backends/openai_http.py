"""A backend for any OpenAI-compatible ``/chat/completions`` server (OpenAI, vLLM, TGI, llama.cpp...).

Config keys (:class:`OpenAIConfig`; the API key itself is never part of the config):

``base_url``
    Root of the API, e.g. ``http://127.0.0.1:8000/v1``; requests go to ``{base_url}/chat/completions``.
``model``
    Model id sent with every request; with the backend name it is the whole :meth:`fingerprint`.
``api_key_env`` (``"OPENAI_API_KEY"``)
    *Name* of the environment variable holding the key, sent as ``Authorization: Bearer ...``.
    When the variable is unset no header is sent (local servers need none).
``concurrency`` (4)
    Most requests in flight at once (a thread pool over one pooled ``httpx.Client``).
``timeout`` (60)
    Seconds per attempt (connect, read, write each).
``max_retries`` (5)
    Retries after the first attempt on 429, 5xx, connection errors and timeouts; other 4xx fail
    at once with :class:`BackendRequestRejected`.
``backoff_base`` (0.5), ``backoff_max`` (60)
    Retry *k* (0-based) sleeps a uniform draw from ``[d/2, d]`` with ``d = min(backoff_max,
    backoff_base * 2**k)`` ("equal jitter"); a ``Retry-After`` header (seconds or HTTP date)
    replaces that draw, capped at ``backoff_max``.
``top_logprobs`` (5)
    How many first-token alternatives to ask for when a request has ``choices`` (1..20).
``extra_body`` (none)
    A mapping of server-specific request fields merged into every request body, e.g. for vLLM
    ``{"truncate_prompt_tokens": 1016, "truncation_side": "left"}`` (cut long prompts from the
    left instead of a 400). Fields the backend sets itself (``model``, ``messages``, sampling...)
    cannot be overridden. When given it is part of the :meth:`fingerprint` (it may change outputs).

Choice log-probabilities come from the first generated token's ``top_logprobs`` of the first
sample: a token matches a choice when equal to it or equal after stripping whitespace (so ``"A"``
and ``" A"`` both count for ``"A"``) and the matches are combined with log-sum-exp. Every requested
choice is a key of the result; a choice absent from the top-k gets ``float("-inf")`` (probability
0 as far as the server told us). When the server returns no logprobs at all the field is ``None``.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import os
import random
import re
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timezone
from typing import Annotated, Any, ClassVar

import httpx
from pydantic import Field, field_validator, model_validator

from registry.adapters.backends.base import Backend, GenerationRequest, GenerationResult
from registry.adapters.config import NonNegativeFloat, NonNegativeInt, PluginConfig, PositiveInt
from registry.errors import BackendError, BackendRequestRejected, BackendUnavailable, InvalidInput

log = logging.getLogger(__name__)

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_TOP_LOGPROBS = 20
_OWN_FIELDS = frozenset({"model", "messages", "max_tokens", "temperature", "top_p", "n", "seed", "stop",
                         "logprobs", "top_logprobs", "stream"})


class HTTPClientConfig(PluginConfig):
    """Keys of an OpenAI-compatible HTTP client (module docstring); the key itself is never one."""

    api_key_env: str = "OPENAI_API_KEY"
    """NAME of the environment variable holding the API key (unset: no Authorization header)."""
    concurrency: PositiveInt = 4
    """Most requests in flight at once."""
    timeout: Annotated[float, Field(ge=0.001)] = 60.0
    """Seconds per attempt."""
    max_retries: NonNegativeInt = 5
    """Retries after the first attempt (429, 5xx, connection errors, timeouts)."""
    backoff_base: NonNegativeFloat = 0.5
    backoff_max: NonNegativeFloat = 60.0
    top_logprobs: PositiveInt = 5
    """First-token alternatives asked for when a request has choices (more than 20 is cut to 20)."""
    extra_body: dict[str, Any] | None = None
    """Server-specific request fields merged into every request body (JSON; not the backend's own)."""

    @model_validator(mode="before")
    @classmethod
    def _no_key(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if "api_key" in data:
                raise InvalidInput(
                    "the 'openai' backend does not take an API key in its config",
                    field="api_key",
                    hint="put the key in an environment variable and name that variable with 'api_key_env'",
                )
            if "api_key_env" in data and not data["api_key_env"]:
                data = {k: v for k, v in data.items() if k != "api_key_env"}  # empty: the default
        return data

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_NAME.match(value):
            # Do not echo the value: a common mistake is pasting the key itself here.
            raise ValueError("'api_key_env' must be the NAME of an environment variable (letters, digits, _), "
                             "e.g. api_key_env: OPENAI_API_KEY, with the key exported in that variable")
        return value

    @field_validator("top_logprobs")
    @classmethod
    def _at_most_20(cls, value: int) -> int:
        return min(value, _MAX_TOP_LOGPROBS)  # what OpenAI-compatible servers accept

    @field_validator("extra_body", mode="before")
    @classmethod
    def _extra_body(cls, value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise ValueError("'extra_body' must be a mapping of request fields")
        clash = sorted(set(map(str, value)) & _OWN_FIELDS)
        if clash:
            raise ValueError(f"'extra_body' cannot set {', '.join(clash)}: the backend sets them from each request")
        try:
            body = json.loads(json.dumps(dict(value), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"'extra_body' must be JSON: {exc}") from None
        return body or None

    def http_settings(self) -> dict[str, Any]:
        """The HTTP client's keys and values (for an :class:`OpenAIConfig` built from a wider config)."""
        return {k: getattr(self, k) for k in HTTPClientConfig.model_fields}


class OpenAIConfig(HTTPClientConfig):
    """Keys of the ``openai`` backend: an OpenAI-compatible server and the model id it serves."""

    what: ClassVar[str] = "backend 'openai'"

    base_url: Annotated[str, Field(min_length=1)]
    """Root of the API, e.g. ``http://127.0.0.1:8000/v1``."""
    model: Annotated[str, Field(min_length=1)]
    """Model id sent with every request."""


class _Retryable(Exception):
    """One failed attempt that may be retried (internal)."""

    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


class OpenAICompatibleBackend(Backend):
    """Chat completions over HTTP with bounded concurrency, retries and first-token choice logprobs."""

    name = "openai"

    Config = OpenAIConfig

    def __init__(self, config: Mapping[str, Any] | OpenAIConfig) -> None:
        super().__init__(config)
        cfg: OpenAIConfig = self.settings
        self.base_url: str = cfg.base_url.rstrip("/")
        self.model: str = cfg.model
        self.api_key_env: str = cfg.api_key_env
        self.concurrency: int = cfg.concurrency
        self.timeout: float = cfg.timeout
        self.max_retries: int = cfg.max_retries
        self.backoff_base: float = cfg.backoff_base
        self.backoff_max: float = cfg.backoff_max
        self.top_logprobs: int = cfg.top_logprobs
        self.extra_body: dict[str, Any] = dict(cfg.extra_body or {})
        self._api_key: str | None = os.environ.get(self.api_key_env) or None
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        self._rng = random.Random()
        self.total_retries = 0
        """Retries over the backend's lifetime (each result also carries its own in ``extra``)."""

    # ------------------------------------------------------------------ public API
    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Completions for ``requests`` in request order, at most ``concurrency`` in flight.

        The first request that fails for good stops the others from retrying and is raised.
        """
        requests = list(requests)
        if not requests:
            return []
        client = self._get_client()
        stop = threading.Event()
        workers = min(self.concurrency, len(requests))
        if workers == 1:
            return [self._complete(client, request, stop) for request in requests]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai-http") as pool:
            futures = [pool.submit(self._complete, client, request, stop) for request in requests]
            try:
                for future in as_completed(futures):
                    future.result()  # raise the first failure as soon as it happens
            except BaseException:
                stop.set()
                for future in futures:
                    future.cancel()
                raise
            return [future.result() for future in futures]

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> OpenAICompatibleBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def fingerprint(self) -> Mapping[str, Any]:
        """Backend kind and model id (and ``extra_body`` when set): neither the endpoint nor the key
        changes the judgments."""
        fp: dict[str, Any] = {"backend": self.name, "model": self.model}
        if self.extra_body:
            fp["extra_body"] = self.extra_body
        return fp

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={self.model!r}, base_url={_redact_userinfo(self.base_url)!r}, "
            f"api_key_env={self.api_key_env!r}, concurrency={self.concurrency})"
        )

    # ------------------------------------------------------------------ internals
    def _get_client(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                headers = {"Content-Type": "application/json"}
                if self._api_key:
                    headers["Authorization"] = f"Bearer {self._api_key}"
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self.timeout),
                    limits=httpx.Limits(
                        max_connections=self.concurrency, max_keepalive_connections=self.concurrency
                    ),
                    headers=headers,
                )
            return self._client

    @property
    def _url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def _body(self, request: GenerationRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(message) for message in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "n": request.n,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        if request.stop:
            body["stop"] = list(request.stop)
        if request.choices:
            body["logprobs"] = True
            body["top_logprobs"] = self.top_logprobs
        body.update(self.extra_body)
        return body

    def _complete(self, client: httpx.Client, request: GenerationRequest, stop: threading.Event) -> GenerationResult:
        body = self._body(request)
        retries = 0
        while True:
            if stop.is_set():
                raise BackendError("request abandoned because another request in the batch failed")
            try:
                started = time.perf_counter()
                payload = self._attempt(client, body, retries)
                seconds = time.perf_counter() - started
                return self._result(payload, request, seconds, retries)
            except _Retryable as failure:
                if retries >= self.max_retries:
                    raise BackendUnavailable(
                        f"{self._url} ({self.model}) still failing after {retries} retries: {failure.reason}; "
                        "check that the server is up and not rate-limiting, or raise 'max_retries'/'timeout'",
                        status=failure.status,
                        retries=retries,
                    ) from None
                delay = self._delay(retries, failure.retry_after)
                log.warning(
                    "openai backend: %s from %s; retry %d/%d in %.2fs",
                    failure.reason, self._url, retries + 1, self.max_retries, delay,
                )
                retries += 1
                with self._client_lock:
                    self.total_retries += 1
                if stop.wait(delay):
                    raise BackendError("request abandoned because another request in the batch failed") from None

    def _attempt(self, client: httpx.Client, body: Mapping[str, Any], retries: int) -> Any:
        """One POST; returns the decoded JSON or raises ``_Retryable`` / ``BackendError``."""
        try:
            response = client.post(self._url, json=body)
        except httpx.TimeoutException:
            raise _Retryable(f"no answer within {self.timeout:g}s") from None
        except httpx.TransportError as exc:
            raise _Retryable(f"connection error ({type(exc).__name__}: {self._scrub(str(exc))})") from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Retryable(
                f"HTTP {status} {self._server_message(response)}".rstrip(),
                status=status,
                retry_after=_parse_retry_after(response.headers.get("Retry-After")),
            )
        if status >= 400:
            raise BackendRequestRejected(
                f"{self._url} ({self.model}) rejected the request with HTTP {status}: "
                f"{self._server_message(response) or '(no message)'}"
                + _rejection_hint(status, self.api_key_env, has_key=self._api_key is not None),
                status=status,
                retries=retries,
            )
        try:
            return response.json()
        except ValueError:
            raise BackendError(
                f"{self._url} ({self.model}) answered HTTP {status} with a body that is not JSON",
                status=status,
                retries=retries,
            ) from None

    def _result(self, payload: Any, request: GenerationRequest, seconds: float, retries: int) -> GenerationResult:
        raw_choices = payload.get("choices") if isinstance(payload, Mapping) else None
        if not isinstance(raw_choices, list) or not raw_choices:
            raise BackendError(f"{self._url} ({self.model}) answered without 'choices'; is it OpenAI-compatible?")
        choices = sorted(raw_choices, key=lambda choice: choice.get("index", 0))
        texts = tuple(str((choice.get("message") or {}).get("content") or "") for choice in choices)
        finish_reasons = tuple(str(choice.get("finish_reason") or "") for choice in choices)
        usage = payload.get("usage") or {}
        choice_logprobs = None
        if request.choices:
            top = _first_token_top_logprobs(choices[0])
            if top is not None:
                choice_logprobs = first_token_choice_logprobs(top, request.choices)
        extra: dict[str, Any] = {"retries": retries}
        if payload.get("model"):
            extra["response_model"] = payload["model"]
        return GenerationResult(
            texts=texts,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            seconds=seconds,
            choice_logprobs=choice_logprobs,
            finish_reasons=finish_reasons,
            extra=extra,
        )

    def _delay(self, retry_index: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.backoff_max)
        ceiling = min(self.backoff_max, self.backoff_base * 2**retry_index)
        return self._rng.uniform(ceiling / 2, ceiling)

    def _server_message(self, response: httpx.Response) -> str:
        """The server's error message (OpenAI's ``{"error": {"message": ...}}`` or the raw text)."""
        try:
            data = response.json()
        except ValueError:
            text = response.text.strip()
        else:
            error = data.get("error") if isinstance(data, Mapping) else None
            if isinstance(error, Mapping) and error.get("message"):
                text = str(error["message"])
            elif isinstance(error, str):
                text = error
            elif isinstance(data, Mapping) and data.get("message"):
                text = str(data["message"])
            else:
                text = response.text.strip()
        return self._scrub(text[:500])

    def _scrub(self, text: str) -> str:
        """Never let the key into a message, even if a server echoes it back."""
        return text.replace(self._api_key, "***") if self._api_key else text


# ---------------------------------------------------------------------- helpers
def first_token_choice_logprobs(top_logprobs: Sequence[Mapping[str, Any]], choices: Sequence[str]) -> dict[str, float]:
    """Log-probability of each choice as the first token, from OpenAI-style ``top_logprobs``.

    Tokens equal to a choice, or equal after stripping whitespace, are pooled by log-sum-exp;
    choices with no matching token get ``-inf``.
    """
    result: dict[str, float] = {}
    for choice in choices:
        matched = [
            float(entry["logprob"])
            for entry in top_logprobs
            if isinstance(entry.get("token"), str)
            and entry.get("logprob") is not None
            and (entry["token"] == choice or entry["token"].strip() == choice.strip())
        ]
        result[choice] = _logsumexp(matched)
    return result


def _first_token_top_logprobs(choice: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, Mapping) else None
    if not content:
        return None
    top = content[0].get("top_logprobs")
    if top:
        return list(top)
    # Some servers omit top_logprobs but still give the sampled token's own logprob.
    first = content[0]
    return [first] if "token" in first and "logprob" in first else None


def _logsumexp(values: Sequence[float]) -> float:
    if not values:
        return float("-inf")
    peak = max(values)
    if peak == float("-inf"):
        return peak
    return peak + math.log(sum(math.exp(value - peak) for value in values))


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max((when - datetime.now(timezone.utc)).total_seconds(), 0.0)


def _rejection_hint(status: int, api_key_env: str, *, has_key: bool) -> str:
    if status in (401, 403):
        state = "is set" if has_key else "is not set"
        return f" (the key is read from ${api_key_env}, which {state}; check it)"
    if status == 404:
        return " (check 'base_url' (it usually ends in /v1) and 'model')"
    return ""


def _redact_userinfo(url: str) -> str:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return url
    return str(parsed.copy_with(userinfo=b"")) if parsed.userinfo else url


__all__ = [
    "BackendError",  # the three errors are re-exported from registry.errors, where they are defined
    "BackendRequestRejected",
    "BackendUnavailable",
    "HTTPClientConfig",
    "OpenAICompatibleBackend",
    "OpenAIConfig",
    "first_token_choice_logprobs",
]
