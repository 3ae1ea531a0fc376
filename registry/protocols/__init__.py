"""Protocol files shipped with the registry: one YAML file per protocol version.

Each file has ``name``, ``version``, ``description`` and ``config``; its content hash is the
protocol's identity. ``autorater init`` (and any use) syncs them into the registry; changing a
file's content without bumping its version is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from registry.errors import InvalidInput

PROTOCOLS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ProtocolFile:
    """A protocol as written in its file."""

    name: str
    version: int
    description: str
    config: dict[str, Any]
    sha256: str
    path: Path


def protocol_sha256(name: str, version: int, config: dict[str, Any]) -> str:
    """Hash of a protocol's identity-defining content (canonical JSON)."""
    blob = json.dumps({"name": name, "version": version, "config": config}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@cache
def load_protocol_files(directory: Path = PROTOCOLS_DIR) -> tuple[ProtocolFile, ...]:
    """Every ``*.yaml`` protocol file in ``directory``, validated."""
    out = []
    for path in sorted(Path(directory).glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise InvalidInput(f"malformed protocol YAML: {exc}", file=path) from exc
        for key in ("name", "version", "config"):
            if key not in raw:
                raise InvalidInput("missing field", file=path, field=key)
        out.append(ProtocolFile(name=raw["name"], version=int(raw["version"]), description=raw.get("description", ""),
                                config=raw["config"], path=path,
                                sha256=protocol_sha256(raw["name"], int(raw["version"]), raw["config"])))
    return tuple(out)
