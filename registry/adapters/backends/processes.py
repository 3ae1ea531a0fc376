"""Child processes of the backends: JSON-lines workers and long-lived servers with PID files.

Nothing here knows about vLLM; :mod:`registry.adapters.backends.vllm_backend` builds its engine
worker and its managed OpenAI-compatible server on these parts, and ``autorater backend
serve/list/stop`` drives the servers.

* Every child starts in a new session (its own process group), so stopping it reaches the
  processes it started too: :func:`terminate_group` sends SIGTERM to the group and SIGKILL to what
  is left after a grace period.
* :class:`JsonLinesWorker` — a child that answers each JSON line on its stdin with one JSON line
  on its stdout (``{"ok": true, ...}`` or ``{"ok": false, "error": ..., "type": ...}``); its
  stderr goes to a log file whose last lines every error quotes.
* :class:`ServerProcess` — a server started in the background that outlives the command (a
  subclass gives its command line and health check): ``start()`` launches it, writes a PID file
  ``<state dir>/servers/<port>.json`` and waits until it is healthy; ``stop()`` signals the group
  and removes the PID file. A process started elsewhere is reattached from its PID file, and only
  signalled while its command line still shows it is ours (PIDs get reused).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
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

from registry.errors import BackendError, BackendUnavailable, InvalidInput


# --------------------------------------------------------------------------- processes
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


def terminate_group(pid: int, grace: float, child: subprocess.Popen | None = None) -> None:
    """SIGTERM to the process group led by ``pid``; SIGKILL to what is left after ``grace`` s.
    ``child``: the leader's ``Popen`` when it is our child (reaped here)."""
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


def command_line(pid: int) -> list[bytes] | None:
    """The arguments of process ``pid`` (``/proc/PID/cmdline``), or None when unreadable."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None


def log_tail(path: Path | None, lines: int = 25) -> str:
    """The last ``lines`` lines of a log file ("" when there is none)."""
    if path is None or not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])


def http_healthy(url: str, timeout: float = 2.0) -> bool:
    """Whether ``GET url`` answers 200 now."""
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


# --------------------------------------------------------------------------- workers
class JsonLinesWorker:
    """A child process spoken to in JSON lines (module docstring); ``label`` names it in errors."""

    label = "worker"
    goodbye: Mapping[str, Any] | None = None
    """The message asking the worker to exit on :meth:`close` (None: just close its stdin)."""

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str | os.PathLike,
                 log_dir: str | os.PathLike) -> None:
        logs = Path(log_dir)
        logs.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="worker-", suffix=".log", dir=logs)
        self.log_path = Path(name)
        self._log: IO[bytes] = os.fdopen(fd, "wb")
        self._lock = threading.Lock()
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(
            [str(a) for a in argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=dict(env),
            cwd=str(cwd), text=True, encoding="utf-8", bufsize=1, start_new_session=True)
        threading.Thread(target=self._read, name=f"{self.label}-{self.proc.pid}", daemon=True).start()

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
        tail = log_tail(self.log_path)
        return BackendUnavailable(f"the {self.label} (pid {self.proc.pid}) exited with code {code} while trying to "
                                  f"{what}; log {self.log_path}" + (f", last lines:\n{tail}" if tail else ""))

    def call(self, message: Mapping[str, Any], timeout: float | None, *, what: str) -> dict[str, Any]:
        """Send one message, wait for its answer (``timeout`` seconds, None = no limit); ``what``
        the worker is asked to do names it in errors."""
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
                self.kill()
                raise BackendUnavailable(f"the {self.label} did not {what} within {timeout:g} s (stopped it); "
                                         f"log {self.log_path}:\n{log_tail(self.log_path)}") from None
            if line is None:
                raise self._died(what)
        answer = json.loads(line)
        if not answer.get("ok"):
            raise BackendError(f"the {self.label} could not {what}: {answer.get('type')}: {answer.get('error')} "
                               f"(log {self.log_path})")
        return answer

    def kill(self) -> None:
        """SIGKILL to the worker's process group."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)

    def close(self, grace: float = 10.0) -> None:
        """Ask the worker to exit (:attr:`goodbye`, then end of input), SIGTERM then SIGKILL to its
        group if it does not within ``grace`` seconds."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                if self.goodbye is not None:
                    self.proc.stdin.write(json.dumps(dict(self.goodbye)) + "\n")
                self.proc.stdin.close()
            except (BrokenPipeError, OSError, ValueError):
                pass
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                terminate_group(self.proc.pid, grace, child=self.proc)
        self._log.close()


# --------------------------------------------------------------------------- servers
class ServerProcess(ABC):
    """A background server process with a PID file (module docstring).

    A subclass sets :attr:`marker` (an argument that only its processes' command lines hold) and
    implements :meth:`command`, :meth:`environment`, :meth:`health_url`, :meth:`describe` (what it
    serves, for messages) and :meth:`state` (what its PID file records besides the process)."""

    marker: bytes = b""

    def __init__(self, *, host: str, port: int | None, startup_timeout: float, state_dir: Path) -> None:
        self.host = host
        self.port = port
        self.startup_timeout = float(startup_timeout)
        self.state_dir = Path(state_dir)
        self.pid: int | None = None
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None

    # ------------------------------------------------------------------ what a subclass says
    @abstractmethod
    def command(self) -> list[str]:
        """The server's command line."""

    def environment(self) -> dict[str, str]:
        """The server's environment."""
        return dict(os.environ)

    def health_url(self) -> str:
        """The URL that answers 200 once the server is ready."""
        return f"http://{self.host}:{self.port}/health"

    def describe(self) -> str:
        """The server in messages."""
        return f"the server on port {self.port}"

    def state(self) -> dict[str, Any]:
        """What the PID file records besides pid, host, port, log and start time."""
        return {}

    # ------------------------------------------------------------------ lifecycle
    @property
    def pid_file(self) -> Path:
        return self.state_dir / "servers" / f"{self.port}.json"

    def running(self) -> bool:
        """Whether its process is alive (our child, or any process with its PID)."""
        if self.pid is None:
            return False
        if self.proc is not None:
            return self.proc.poll() is None
        return pid_alive(self.pid)

    def alive(self) -> bool:
        """Whether the server runs: our child alive, or a reattached PID that is still ours."""
        return self.running() if self.proc is not None else self.is_ours()

    def health(self, timeout: float = 2.0) -> bool:
        """Whether its health URL answers 200 now."""
        return self.port is not None and http_healthy(self.health_url(), timeout)

    def start(self) -> ServerProcess:
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
                env=self.environment(), cwd=str(self.state_dir), start_new_session=True)
        self.pid = self.proc.pid
        self._write_pid_file()
        try:
            self.wait_healthy(self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_healthy(self, timeout: float) -> None:
        """Poll the health URL until it answers 200; clear errors if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                code = self.proc.returncode if self.proc is not None else None
                raise BackendUnavailable(
                    f"{self.describe()} exited (code {code}) before it was healthy; log "
                    f"{self.log_path}, last lines:\n{log_tail(self.log_path)}")
            if self.health():
                return
            if time.monotonic() > deadline:
                raise BackendUnavailable(
                    f"{self.describe()} was not healthy within {timeout:g} s; log {self.log_path}, "
                    f"last lines:\n{log_tail(self.log_path)}")
            time.sleep(0.5)

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM to the server's process group, SIGKILL after ``grace`` s; removes the PID file.
        A reattached PID that is no longer ours is never signalled."""
        if self.pid is not None and (self.proc is not None or self.is_ours()) and group_pids(self.pid):
            terminate_group(self.pid, grace, child=self.proc)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.wait(timeout=10)
        if self.port is not None:
            self.pid_file.unlink(missing_ok=True)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def is_ours(self) -> bool:
        """Whether the PID is (still) one of this kind of server (its command line holds :attr:`marker`)."""
        if self.pid is None or not pid_alive(self.pid):
            return False
        args = command_line(self.pid)
        return args is not None and self.marker in args

    # ------------------------------------------------------------------ PID files
    def _write_pid_file(self) -> None:
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        state = {"pid": self.pid, "host": self.host, "port": self.port, **self.state(),
                 "log": str(self.log_path) if self.log_path else None, "started_at": time.time()}
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
        tmp.replace(self.pid_file)

    def _reattach(self, state: Mapping[str, Any], path: Path) -> None:
        """Fill the process fields from a PID file's ``state`` (written by :meth:`start` anywhere)."""
        self.host, self.port = str(state["host"]), int(state["port"])
        self.pid = int(state["pid"])
        self.log_path = Path(state["log"]) if state.get("log") else None
        self.state_dir, self.proc = path.parent.parent, None


def read_pid_file(path: str | os.PathLike, what: str = "server") -> dict[str, Any]:
    """The JSON state of a PID file (:class:`InvalidInput` naming the file when it is not one)."""
    path = Path(path)
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(state, dict):
            raise ValueError("not a JSON object")
        return state
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"not a {what} PID file: {exc}", file=path) from exc


def pid_files(state_dir: str | os.PathLike) -> list[Path]:
    """The PID files under ``<state_dir>/servers`` (sorted)."""
    folder = Path(state_dir) / "servers"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


__all__ = ["JsonLinesWorker", "ServerProcess", "command_line", "free_port", "group_pids", "http_healthy", "log_tail",
           "pid_alive", "pid_files", "read_pid_file", "terminate_group"]
