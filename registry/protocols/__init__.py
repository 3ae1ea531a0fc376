"""Protocol files shipped with the registry: one YAML file per protocol version.

Each file has ``name``, ``version``, ``description`` and ``config``; its content hash is the
protocol's identity. ``autorater init`` (and any use) syncs them into the registry; changing a
file's content without bumping its version is refused.

Shared stages. A multi-stage protocol (``config.stages``, see
:mod:`registry.adapters.evaluators.llm_judge`) may name a stage defined once in
``registry/protocols/stages/<name>.yaml`` (``name``, ``description``, ``stage``) instead of
writing it out: ``{use: reference}`` or ``{use: pairwise-analysis, as: cot_swapped, order: swapped}``
(``as`` renames the stage's output placeholder; other keys override the definition). The loader
inlines the definition, so a protocol's stored config and hash hold the full stage text, and two
protocols that use the same stage render byte-identical prompts — which is what lets them share
the stage's cached outputs.

Protocol votes (``config.vote``: a list of ``name@version`` protocol references) are checked here
to name shipped protocols.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from registry.errors import InvalidInput
from registry.hashing import sha256_json

PROTOCOLS_DIR = Path(__file__).resolve().parent
STAGES_SUBDIR = "stages"
STAGE_REFERENCE_KEYS = frozenset({"use", "as"})


@dataclass(frozen=True)
class ProtocolFile:
    """A protocol as written in its file (shared stages inlined)."""

    name: str
    version: int
    description: str
    config: dict[str, Any]
    sha256: str
    path: Path

    @property
    def ref(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"


def protocol_sha256(name: str, version: int, config: dict[str, Any]) -> str:
    """Hash of a protocol's identity-defining content (canonical JSON)."""
    return sha256_json({"name": name, "version": version, "config": config})


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InvalidInput(f"malformed protocol YAML: {exc}", file=path) from exc
    if not isinstance(raw, dict):
        raise InvalidInput("a protocol file must be a mapping", file=path)
    return raw


@cache
def load_stage_files(directory: Path = PROTOCOLS_DIR / STAGES_SUBDIR) -> dict[str, dict[str, Any]]:
    """Shared stage definitions by name (``stages/*.yaml``)."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        raw = _read_yaml(path)
        for key in ("name", "stage"):
            if key not in raw:
                raise InvalidInput("missing field", file=path, field=key)
        if not isinstance(raw["stage"], dict):
            raise InvalidInput("'stage' must be a mapping", file=path, field="stage")
        out[str(raw["name"])] = raw["stage"]
    return out


def resolve_stages(config: dict[str, Any], shared: dict[str, dict[str, Any]], *, path: Path | None = None
                   ) -> dict[str, Any]:
    """``config`` with every ``{use: NAME, ...}`` stage replaced by the shared definition."""
    stages = config.get("stages")
    if stages is None:
        return config
    if not isinstance(stages, list):
        raise InvalidInput("'stages' must be a list", file=path, field="config.stages")
    resolved = []
    for i, stage in enumerate(stages):
        if not isinstance(stage, dict):
            raise InvalidInput("each stage must be a mapping", file=path, field=f"config.stages[{i}]")
        if "use" in stage:
            name = stage["use"]
            if name not in shared:
                raise InvalidInput(f"unknown shared stage {name!r}; known: {', '.join(sorted(shared)) or 'none'}",
                                   file=path, field=f"config.stages[{i}].use")
            merged = copy.deepcopy(shared[name]) | {k: v for k, v in stage.items() if k not in STAGE_REFERENCE_KEYS}
            merged["name"] = stage.get("as", merged.get("name", name))
            stage = merged
        resolved.append(stage)
    return {**config, "stages": resolved}


@cache
def load_protocol_files(directory: Path = PROTOCOLS_DIR) -> tuple[ProtocolFile, ...]:
    """Every ``*.yaml`` protocol file in ``directory``, validated, shared stages inlined."""
    shared = load_stage_files(Path(directory) / STAGES_SUBDIR)
    out = []
    for path in sorted(Path(directory).glob("*.yaml")):
        raw = _read_yaml(path)
        for key in ("name", "version", "config"):
            if key not in raw:
                raise InvalidInput("missing field", file=path, field=key)
        if not isinstance(raw["config"], dict):
            raise InvalidInput("'config' must be a mapping", file=path, field="config")
        config = resolve_stages(raw["config"], shared, path=path)
        out.append(ProtocolFile(name=raw["name"], version=int(raw["version"]), description=raw.get("description", ""),
                                config=config, path=path,
                                sha256=protocol_sha256(raw["name"], int(raw["version"]), config)))
    refs = {p.ref for p in out}
    for p in out:
        for member in p.config.get("vote") or ():
            if member not in refs:
                raise InvalidInput(f"vote member {member!r} is not a shipped protocol (name@version); "
                                   f"known: {', '.join(sorted(refs))}", file=p.path, field="config.vote")
    return tuple(out)
