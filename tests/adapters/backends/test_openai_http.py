"""The OpenAI-compatible HTTP backend against a real local server (tests/adapters/backends/fake_openai_server.py)."""

from __future__ import annotations

import math
import time

import pytest

from registry.adapters.backends import build_backend
from registry.adapters.backends.base import GenerationRequest
from registry.adapters.backends.openai_http import (
    BackendRequestRejected,
    BackendUnavailable,
    OpenAICompatibleBackend,
    first_token_choice_logprobs,
)
from registry.errors import InvalidInput, RegistryError
from tests.adapters.backends.fake_openai_server import FakeOpenAIServer

KEY_ENV = "AUTORATER_TEST_OPENAI_KEY"
SECRET = "sk-test-0123456789-very-secret"


@pytest.fixture(autouse=True)
def _no_ambient_key(monkeypatch):
    """Tests decide which key variables exist (a developer's real OPENAI_API_KEY must not leak in)."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv(KEY_ENV, raising=False)


def make_backend(server: FakeOpenAIServer, **config) -> OpenAICompatibleBackend:
    base = {"base_url": server.base_url, "model": "fake-judge", "backoff_base": 0.01, "timeout": 5}
    return OpenAICompatibleBackend(base | config)


def ask(text: str, **kwargs) -> GenerationRequest:
    return GenerationRequest(messages=({"role": "system", "content": "be a judge"}, {"role": "user", "content": text}),
                             **kwargs)


def test_generates_texts_usage_and_choice_logprobs():
    with FakeOpenAIServer() as server, make_backend(server) as backend:
        plain, sampled, judged = backend.generate([
            ask("which is better"),
            ask("two samples", n=2, temperature=0.7, seed=None, stop=("\n\n",)),
            ask("answer A or B", choices=("A", "B", "C", "D"), max_tokens=1),
        ])

    assert plain.texts == ("echo: which is better",)
    assert (plain.prompt_tokens, plain.completion_tokens) == (6, 4)
    assert plain.finish_reasons == ("stop",)
    assert plain.choice_logprobs is None
    assert plain.seconds > 0 and plain.extra["retries"] == 0

    assert sampled.texts == ("echo[0]: two samples", "echo[1]: two samples")
    bodies = {b["messages"][-1]["content"]: b for b in server.bodies}  # arrival order is not request order
    body = bodies["two samples"]
    assert body["n"] == 2 and body["temperature"] == 0.7 and body["stop"] == ["\n\n"] and "seed" not in body
    assert "logprobs" not in body
    assert bodies["which is better"]["seed"] == 0 and bodies["which is better"]["model"] == "fake-judge"

    assert bodies["answer A or B"]["logprobs"] is True and bodies["answer A or B"]["top_logprobs"] == 5
    lp = judged.choice_logprobs
    assert lp["A"] == pytest.approx(math.log(math.exp(-0.2) + math.exp(-3.0)))  # "A" and " A" pooled
    assert lp["B"] == pytest.approx(-1.9)
    assert lp["C"] == float("-inf")  # outside the top 5 the server returned
    assert lp["D"] == float("-inf")  # never offered


def test_registered_under_openai_and_validates_config():
    with FakeOpenAIServer() as server:
        backend = build_backend("openai", {"base_url": server.base_url + "/", "model": "m", "top_logprobs": 50})
        assert isinstance(backend, OpenAICompatibleBackend)
        assert backend.top_logprobs == 20
        assert backend.generate([ask("hi")])[0].texts == ("echo: hi",)
        assert backend.generate([]) == []
        backend.close()
    with pytest.raises(InvalidInput, match="model"):
        OpenAICompatibleBackend({"base_url": "http://127.0.0.1:1/v1"})
    with pytest.raises(InvalidInput, match="api_key_env"):
        OpenAICompatibleBackend({"base_url": "http://127.0.0.1:1/v1", "model": "m", "api_key": SECRET})
    with pytest.raises(InvalidInput, match="NAME of an environment variable") as caught:
        OpenAICompatibleBackend({"base_url": "http://127.0.0.1:1/v1", "model": "m", "api_key_env": SECRET})
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retries_then_succeeds(status):
    with FakeOpenAIServer(fail_first=3, fail_status=status) as server, make_backend(server) as backend:
        [result] = backend.generate([ask("retry me")])
    assert result.texts == ("echo: retry me",)
    assert result.extra["retries"] == 3 and backend.total_retries == 3
    assert server.request_count == 4


def test_honours_retry_after():
    with FakeOpenAIServer(fail_first=1, retry_after="0.4") as server, make_backend(server) as backend:
        started = time.perf_counter()
        [result] = backend.generate([ask("wait for it")])
        elapsed = time.perf_counter() - started
    assert result.extra["retries"] == 1
    assert elapsed >= 0.4
    assert result.seconds < 0.4  # wall time of the successful attempt only


def test_gives_up_after_max_retries():
    with FakeOpenAIServer(fail_first=100, fail_status=500, error_message="model overloaded") as server:
        with make_backend(server, max_retries=2) as backend, pytest.raises(BackendUnavailable) as caught:
            backend.generate([ask("never")])
    assert server.request_count == 3  # first attempt + 2 retries
    err = caught.value
    assert isinstance(err, RegistryError) and err.code == "backend_unavailable"
    assert err.status == 500 and err.retries == 2
    assert "after 2 retries" in str(err) and "HTTP 500" in str(err) and "model overloaded" in str(err)


def test_timeout_is_retried_then_fails():
    with FakeOpenAIServer(slow_first=1, slow_delay=3.0) as server, make_backend(server, timeout=0.3) as backend:
        [result] = backend.generate([ask("slow once")])
    assert result.texts == ("echo: slow once",) and result.extra["retries"] == 1

    with FakeOpenAIServer(slow_first=100, slow_delay=3.0) as server:
        with make_backend(server, timeout=0.3, max_retries=1) as backend, pytest.raises(BackendUnavailable) as caught:
            backend.generate([ask("always slow")])
    assert server.request_count == 2
    assert "no answer within 0.3s" in str(caught.value) and caught.value.status is None


def test_connection_refused_is_retried_then_fails():
    with FakeOpenAIServer() as server:
        url = server.base_url
    backend = OpenAICompatibleBackend({"base_url": url, "model": "m", "max_retries": 1, "backoff_base": 0.01})
    with backend, pytest.raises(BackendUnavailable, match="connection error"):
        backend.generate([ask("anyone there?")])
    assert backend.total_retries == 1


def test_client_error_fails_immediately_without_retry():
    with FakeOpenAIServer(fail_first=100, fail_status=400, error_message="'max_tokens' is too large") as server:
        with make_backend(server) as backend, pytest.raises(BackendRequestRejected) as caught:
            backend.generate([ask("bad request")])
    assert server.request_count == 1
    assert caught.value.status == 400 and caught.value.code == "backend_request_rejected"
    assert "HTTP 400" in str(caught.value) and "'max_tokens' is too large" in str(caught.value)


def test_api_key_from_named_env_var_is_sent_and_never_shown(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    with FakeOpenAIServer() as server, make_backend(server, api_key_env=KEY_ENV) as backend:
        backend.generate([ask("hello")])
    assert server.authorization_headers == [f"Bearer {SECRET}"]
    for shown in (repr(backend), str(backend.fingerprint()), str(backend.config), str(vars(backend).get("config"))):
        assert SECRET not in shown
    assert backend.fingerprint() == {"backend": "openai", "model": "fake-judge"}

    # A server that echoes the header back in its 401 message: the error still hides the key.
    with FakeOpenAIServer(fail_first=1, fail_status=401, error_message="bad key", echo_auth_in_errors=True) as server:
        with make_backend(server, api_key_env=KEY_ENV) as backend, pytest.raises(BackendRequestRejected) as caught:
            backend.generate([ask("hello")])
    message = f"{caught.value} {caught.value!r} {caught.value.args}"
    assert SECRET not in message
    assert "HTTP 401" in message and "bad key" in message and KEY_ENV in message


def test_no_key_no_authorization_header():
    with FakeOpenAIServer() as server, make_backend(server) as backend:
        backend.generate([ask("local server")])
    assert server.authorization_headers == [None]


@pytest.mark.parametrize("concurrency", [1, 3])
def test_concurrency_limit_is_respected(concurrency):
    with FakeOpenAIServer(delay=0.1) as server, make_backend(server, concurrency=concurrency) as backend:
        results = backend.generate([ask(f"q{i}") for i in range(7)])
    assert len(results) == 7 and server.request_count == 7
    assert server.max_in_flight <= concurrency
    if concurrency > 1:
        assert server.max_in_flight > 1


def test_results_follow_request_order_under_concurrency():
    # Earlier requests are slower, so the server finishes them last.
    delays = {f"q{i}": 0.05 * (8 - i) for i in range(8)}
    with FakeOpenAIServer(delay_for=lambda m: delays.get(m, 0.0)) as server, \
            make_backend(server, concurrency=8) as backend:
        results = backend.generate([ask(f"q{i}") for i in range(8)])
    assert [r.texts[0] for r in results] == [f"echo: q{i}" for i in range(8)]
    assert server.max_in_flight > 1


def test_first_failure_stops_the_batch():
    # The first request to arrive fails (400) at once: the error is raised and queued requests are dropped.
    with FakeOpenAIServer(fail_first=1, fail_status=400, delay=0.2) as server, \
            make_backend(server, concurrency=2) as backend:
        with pytest.raises(BackendRequestRejected):
            backend.generate([ask(f"q{i}") for i in range(6)])
    assert server.request_count <= 3


def test_first_token_choice_logprobs_matching():
    top = [{"token": " yes", "logprob": -0.5}, {"token": "Yes", "logprob": -1.0}, {"token": "no", "logprob": -2.0}]
    result = first_token_choice_logprobs(top, ["yes", "no", " no", "maybe"])
    assert result["yes"] == pytest.approx(-0.5)  # case matters: "Yes" is another token
    assert result["no"] == result[" no"] == pytest.approx(-2.0)
    assert result["maybe"] == float("-inf")
