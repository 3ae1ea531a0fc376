"""A small real OpenAI-compatible HTTP server for backend tests (standard library, 127.0.0.1 only).

``POST /v1/chat/completions`` answers deterministically: sample ``i`` of a request whose last user
message is ``m`` reads ``"echo[i]: m"`` (``"echo: m"`` when ``n == 1``). With ``logprobs: true`` the
first token's ``top_logprobs`` are :data:`TOP_LOGPROBS` (cut to the requested ``top_logprobs``).
Usage counts whitespace-separated words. Faults are programmable, and the server records what it
saw (request bodies, ``Authorization`` headers, the most requests in flight at once)::

    with FakeOpenAIServer(fail_first=2, fail_status=429) as server:
        backend = OpenAICompatibleBackend({"base_url": server.base_url, "model": "fake"})
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOP_LOGPROBS: list[dict[str, Any]] = [
    {"token": "A", "logprob": -0.2},
    {"token": "B", "logprob": -1.9},
    {"token": " A", "logprob": -3.0},
    {"token": "Tie", "logprob": -4.5},
    {"token": "\n", "logprob": -6.0},
    {"token": "C", "logprob": -7.0},
]
"""The first generated token's alternatives, most likely first ("A" and " A" both mean A)."""


class FakeOpenAIServer:
    """An OpenAI-compatible chat-completions server on a free 127.0.0.1 port, run in a thread.

    Requests are numbered from 1 in arrival order. Faults apply in this order:

    - ``fail_first``: requests 1..K answer ``fail_status`` (429 gets ``Retry-After: retry_after``
      unless that is None) with an OpenAI-style error body carrying ``error_message``;
      ``echo_auth_in_errors`` appends the request's Authorization header to that message (to check
      that clients scrub it).
    - ``slow_first``: requests 1..K sleep ``slow_delay`` seconds before answering (timeouts).
    - ``delay`` (every request) and ``delay_for(last_user_message)`` add more sleep (concurrency).
    """

    def __init__(
        self,
        *,
        fail_first: int = 0,
        fail_status: int = 429,
        retry_after: str | None = "0",
        error_message: str = "simulated failure",
        echo_auth_in_errors: bool = False,
        slow_first: int = 0,
        slow_delay: float = 0.0,
        delay: float = 0.0,
        delay_for: Callable[[str], float] | None = None,
    ) -> None:
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.retry_after = retry_after
        self.error_message = error_message
        self.echo_auth_in_errors = echo_auth_in_errors
        self.slow_first = slow_first
        self.slow_delay = slow_delay
        self.delay = delay
        self.delay_for = delay_for

        self.request_count = 0
        """Requests received (including failed ones)."""
        self.in_flight = 0
        self.max_in_flight = 0
        """Most requests being handled at the same moment."""
        self.authorization_headers: list[str | None] = []
        """The ``Authorization`` header of every request (None when absent), in arrival order."""
        self.bodies: list[dict[str, Any]] = []
        """Decoded JSON body of every request, in arrival order."""

        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def base_url(self) -> str:
        """The ``base_url`` to configure a client with, e.g. ``http://127.0.0.1:54321/v1``."""
        if self._httpd is None:
            raise RuntimeError("server not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeOpenAIServer:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake sleeping handlers and close the socket."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ behaviour
    def _handle(self, body: dict[str, Any], authorization: str | None) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            self.request_count += 1
            number = self.request_count
            self.authorization_headers.append(authorization)
            self.bodies.append(body)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            messages = body.get("messages") or []
            last_user = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
            if number <= self.fail_first:
                headers = {}
                if self.fail_status == 429 and self.retry_after is not None:
                    headers["Retry-After"] = self.retry_after
                message = self.error_message
                if self.echo_auth_in_errors:
                    message += f" (you sent Authorization: {authorization})"
                kind = "rate_limit_error" if self.fail_status == 429 else "invalid_request_error"
                return self.fail_status, headers, {"error": {"message": message, "type": kind, "code": None}}
            sleep = self.delay + (self.delay_for(last_user) if self.delay_for else 0.0)
            if number <= self.slow_first:
                sleep += self.slow_delay
            if sleep > 0:
                self._stopping.wait(sleep)
            return 200, {}, _completion(body, last_user, number)
        finally:
            with self._lock:
                self.in_flight -= 1


def _completion(body: dict[str, Any], last_user: str, number: int) -> dict[str, Any]:
    n = int(body.get("n") or 1)
    texts = [f"echo: {last_user}"] if n == 1 else [f"echo[{i}]: {last_user}" for i in range(n)]
    choices = []
    for i, text in enumerate(texts):
        choice: dict[str, Any] = {
            "index": i,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop",
        }
        if body.get("logprobs"):
            k = int(body.get("top_logprobs") or 0)
            top = TOP_LOGPROBS[:k]
            first = top[0] if top else TOP_LOGPROBS[0]
            choice["logprobs"] = {
                "content": [{"token": first["token"], "logprob": first["logprob"], "bytes": None,
                             "top_logprobs": [dict(t, bytes=None) for t in top]}]
            }
        else:
            choice["logprobs"] = None
        choices.append(choice)
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])
    completion_tokens = sum(len(t.split()) for t in texts)
    return {
        "id": f"chatcmpl-fake-{number}",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "fake"),
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _make_handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like real servers

        def do_POST(self) -> None:  # noqa: N802 - http.server naming
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {}, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                return
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._send(400, {}, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
                return
            status, headers, payload = server._handle(body, self.headers.get("Authorization"))
            self._send(status, headers, payload)

        def _send(self, status: int, headers: dict[str, str], payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            # a client that timed out has closed the connection: nothing left to send it
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence request logs
            pass

    return Handler
