"""Process management of the backends (registry.adapters.backends.processes) with small Python
children instead of vLLM: a JSON-lines worker, and a server with a PID file and a health URL."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from registry.adapters.backends.processes import (
    JsonLinesWorker,
    ServerProcess,
    free_port,
    group_pids,
    pid_alive,
    pid_files,
    read_pid_file,
)
from registry.errors import BackendError, BackendUnavailable, InvalidInput

ECHO = """
import json, sys, time
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("op") == "close":
        print(json.dumps({"ok": True}), flush=True); break
    if msg.get("op") == "fail":
        print(json.dumps({"ok": False, "type": "ValueError", "error": "no such thing"}), flush=True); continue
    if msg.get("op") == "sleep":
        time.sleep(60)
    if msg.get("op") == "die":
        print("dying on purpose", file=sys.stderr, flush=True); sys.exit(3)
    print(json.dumps({"ok": True, "echo": msg}), flush=True)
"""

SERVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404); self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


class EchoWorker(JsonLinesWorker):
    label = "echo worker"
    goodbye = {"op": "close"}


def test_worker_answers_and_errors_are_clear(tmp_path):
    worker = EchoWorker([sys.executable, "-c", ECHO], env=dict(os.environ), cwd=tmp_path, log_dir=tmp_path / "logs")
    try:
        assert worker.call({"op": "hi", "n": 1}, 10, what="say hi")["echo"] == {"op": "hi", "n": 1}
        with pytest.raises(BackendError, match="the echo worker could not look: ValueError: no such thing"):
            worker.call({"op": "fail"}, 10, what="look")
        assert worker.alive()  # an error answer leaves it running
        with pytest.raises(BackendUnavailable, match=r"(?s)exited with code 3 while trying to die.*dying on purpose"):
            worker.call({"op": "die"}, 10, what="die")
        assert not worker.alive() and worker.log_path.parent == tmp_path / "logs"
    finally:
        worker.close()
    slow = EchoWorker([sys.executable, "-c", ECHO], env=dict(os.environ), cwd=tmp_path, log_dir=tmp_path / "logs")
    with pytest.raises(BackendUnavailable, match="did not wait within 0.5 s"):
        slow.call({"op": "sleep"}, 0.5, what="wait")
    assert not slow.alive() and group_pids(slow.pid) == []
    slow.close()
    polite = EchoWorker([sys.executable, "-c", ECHO], env=dict(os.environ), cwd=tmp_path, log_dir=tmp_path / "logs")
    polite.close(grace=10)
    assert polite.proc.returncode == 0  # it left on the goodbye message


class TinyServer(ServerProcess):
    marker = b"tiny-test-server"

    def __init__(self, state_dir: Path, script: str = SERVER, **kw) -> None:
        self.script = script
        super().__init__(host="127.0.0.1", port=kw.pop("port", None), startup_timeout=kw.pop("startup_timeout", 30),
                         state_dir=state_dir)

    def command(self) -> list[str]:
        return [sys.executable, "-c", self.script, str(self.port), self.marker.decode()]

    def describe(self) -> str:
        return "the tiny server"

    def state(self) -> dict:
        return {"kind": "tiny"}


def test_server_starts_healthy_with_a_pid_file_and_stops(tmp_path):
    server = TinyServer(tmp_path).start()
    try:
        assert server.health() and server.alive() and server.is_ours()
        [path] = pid_files(tmp_path)
        state = read_pid_file(path)
        assert path == server.pid_file and state["pid"] == server.pid and state["port"] == server.port
        assert state["kind"] == "tiny" and Path(state["log"]).is_file()
        # another process reattaches from the PID file and stops it
        again = TinyServer.__new__(TinyServer)
        again._reattach(state, path)
        assert again.proc is None and again.alive() and again.pid == server.pid
        again.stop(grace=10)
        assert not pid_alive(server.pid) and group_pids(server.pid) == [] and not path.exists()
    finally:
        server.stop()


def test_server_that_dies_is_a_clear_error_and_leaves_nothing(tmp_path):
    dies = "import sys; print('no port for you', flush=True); sys.exit(4)"
    with pytest.raises(BackendUnavailable, match=r"(?s)the tiny server exited \(code 4\) before it was healthy.*"
                                                 r"no port for you"):
        TinyServer(tmp_path, dies, port=free_port()).start()
    assert pid_files(tmp_path) == []
    never = "import time; time.sleep(60)"
    server = TinyServer(tmp_path, never, startup_timeout=1)
    with pytest.raises(BackendUnavailable, match="was not healthy within 1 s"):
        server.start()
    assert not pid_alive(server.pid) and pid_files(tmp_path) == []


def test_a_pid_that_is_not_ours_is_never_signalled(tmp_path):
    """A PID file whose PID now belongs to another program (here: this test process)."""
    servers = tmp_path / "servers"
    servers.mkdir()
    (servers / "1234.json").write_text(json.dumps({"pid": os.getpid(), "host": "127.0.0.1", "port": 1234}))
    stale = TinyServer.__new__(TinyServer)
    stale._reattach(read_pid_file(servers / "1234.json"), servers / "1234.json")
    assert not stale.is_ours() and not stale.alive()
    stale.stop(grace=0.1)
    assert pid_alive(os.getpid()) and pid_files(tmp_path) == []
    (servers / "bad.json").write_text("[1, 2]")
    with pytest.raises(InvalidInput, match="not a server PID file"):
        read_pid_file(servers / "bad.json")
