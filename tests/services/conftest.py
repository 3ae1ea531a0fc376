"""Fixtures of the regression tests: real LLMBar data, new dataset versions made from it by
relabelling examples (as a re-annotation would), protocol versions, a webhook receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from registry.domain.entities import Protocol
from registry.protocols import protocol_sha256
from registry.services.datasets import register_dataset_version

NATURAL = "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/dataset.json"
GPTOUT = "princeton-nlp__LLMBar/Dataset/LLMBar/Adversarial/GPTOut/dataset.json"


def longer_is_right(row: dict) -> bool:
    """The `longer` heuristic picks this LLMBar row's human-preferred output."""
    a, b = len(row["output_1"]), len(row["output_2"])
    return a != b and (a > b) == (str(row["label"]) == "1")


def relabelled(rows: list[dict], n: int) -> list[dict]:
    """A copy of ``rows`` where the first ``n`` rows that `longer` gets right get the other label."""
    out, flipped = [], 0
    for row in rows:
        row = dict(row)
        if flipped < n and longer_is_right(row):
            row["label"] = 2 if str(row["label"]) == "1" else 1
            flipped += 1
        out.append(row)
    assert flipped == n
    return out


def register_rows(reg, name: str, rows: list[dict], folder: Path):
    """Register LLMBar-format ``rows`` as the next version of dataset ``name``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{len(list(folder.iterdir()))}.json"
    path.write_text(json.dumps(rows))
    r = register_dataset_version(reg, name=name, source="llmbar", path=path)
    assert r.created
    return r.version


@pytest.fixture
def natural_rows(data_root) -> list[dict]:
    return json.loads((data_root / NATURAL).read_text())


def add_protocol(reg, name: str, version: int, config: dict) -> str:
    """Register a protocol version (as a protocol file would) and return its ``name@version``."""
    return reg.store.upsert_protocol(Protocol(name=name, version=version, sha256=protocol_sha256(name, version, config),
                                              config=config, description=f"{name} v{version} (test)")).ref


@dataclass
class Receiver:
    """A local HTTP server that records the JSON bodies POSTed to it."""

    url: str
    bodies: list[dict] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def webhook() -> Iterator[Receiver]:
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            receiver.bodies.append({"path": self.path, "content_type": self.headers["Content-Type"],
                                    "json": json.loads(body)})
            self.send_response(receiver.status)
            self.end_headers()

        def log_message(self, *args):  # keep the test output clean
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_port}/hooks/autorater"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join(5)
