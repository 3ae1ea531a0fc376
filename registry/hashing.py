"""Content hashes every layer shares: canonical JSON and SHA-256 of bytes, files and JSON values.

One definition of "the same content", so that an evaluator, a protocol, a dataset spec, an import
or a predictions file hashes the same way wherever it is hashed:

* :func:`canonical_json` — JSON text with sorted keys, values JSON cannot hold written as ``str()``
  (paths, dates); two dicts equal up to key order give the same text;
* :func:`sha256_json` — SHA-256 (hex) of the UTF-8 bytes of :func:`canonical_json`;
* :func:`sha256_bytes`, :func:`sha256_file` — SHA-256 (hex) of bytes, or of a file read in blocks;
  :func:`update_from_file` feeds a file into a running hash (for hashes over several parts).

Folder hashes of model checkpoints live with the rest of the model-folder rules in
:mod:`registry.adapters.models.local`. Fast non-cryptographic hashes of rows and example inputs
(xxHash) are defined where their layout is: :mod:`registry.domain.versioning`,
:mod:`registry.domain.judgments`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any, Protocol

BLOCK = 1 << 20
"""Bytes read at a time when hashing a file."""


class _Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...


def canonical_json(obj: Any) -> str:
    """``obj`` as JSON text with sorted keys; values JSON cannot hold are written as ``str(value)``."""
    return json.dumps(obj, sort_keys=True, default=str)


def sha256_bytes(data: bytes) -> str:
    """SHA-256 (hex) of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_json(obj: Any) -> str:
    """SHA-256 (hex) of :func:`canonical_json` of ``obj``: equal for equal content, whatever the key order."""
    return sha256_bytes(canonical_json(obj).encode())


def update_from_file(h: _Hash, path: str | Path, block: int = BLOCK, *, stop: threading.Event | None = None) -> bool:
    """Feed the bytes of the file at ``path`` into the running hash ``h``, ``block`` bytes at a time;
    ``False`` when ``stop`` was set before the end of the file (the hash is then of a part)."""
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            if stop is not None and stop.is_set():
                return False
            h.update(chunk)
    return True


def sha256_file(path: str | Path) -> str:
    """SHA-256 (hex) of the bytes of the file at ``path``, read in blocks."""
    h = hashlib.sha256()
    update_from_file(h, path)
    return h.hexdigest()


__all__ = ["BLOCK", "canonical_json", "sha256_bytes", "sha256_file", "sha256_json", "update_from_file"]
