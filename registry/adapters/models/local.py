"""Local model folders: the checks every loader runs, device resolution and content hashes.

One home for what the encoder scorer, the ``transformers`` and vLLM backends, the trainers and
checkpoint registration share:

* :func:`check_no_pickles` — a folder holding a file that would be unpickled when loaded
  (:data:`PICKLE_SUFFIXES`) is refused, because unpickling runs code from data; weights must be
  safetensors;
* :func:`model_folder` — a causal-LM folder given as a backend's ``model``: it exists, is a folder,
  holds no pickles and has ``*.safetensors`` weights (and, when asked, a ``config.json``);
* :func:`resolve_device` — ``cpu`` | ``cuda`` | ``cuda:N`` | ``auto`` → a torch device name;
* :func:`files_sha256`, :func:`model_folder_sha256`, :func:`tree_sha256` — content hashes that do not
  depend on where the folder lives;
* :func:`canonicalize_json` — saved JSON rewritten with sorted keys, so a folder's bytes (and hash)
  do not depend on dict order.

torch is imported only by :func:`resolve_device`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from registry.errors import InvalidInput, NotFound
from registry.hashing import update_from_file

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz")
"""File endings of formats that are unpickled when loaded (``.npy``/``.npz`` may hold pickled
objects): a folder holding any of them is refused."""
WEIGHT_SUFFIXES = (".safetensors", ".safetensors.index.json")
"""Weights (and their shard index) as safetensors: the only weights read."""
MODEL_FILES = frozenset({
    "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json", "chat_template.jinja", "chat_template.json", "vocab.json", "merges.txt", "vocab.txt",
    "tokenizer.model", "spiece.model", "sentencepiece.bpe.model",
})
"""Files besides the weights that decide a causal-LM folder's outputs: the model and generation
configs, the tokenizer and the chat template (hashed by :func:`model_folder_sha256`)."""


class UnsafeCheckpoint(InvalidInput):
    """A folder holds files that would run code when loaded (pickles)."""

    code = "unsafe_checkpoint"


# --------------------------------------------------------------------------- checks
def pickle_files(folder: str | Path) -> list[str]:
    """Relative paths (sorted) of the files under ``folder`` that end with a pickle suffix."""
    folder = Path(folder)
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() and p.name.lower().endswith(PICKLE_SUFFIXES))


def check_no_pickles(folder: str | Path) -> None:
    """Refuse a folder holding pickle-based files (rule: no code from data)."""
    bad = pickle_files(folder)
    if bad:
        raise UnsafeCheckpoint(f"checkpoint holds pickle-based files {', '.join(bad)}; loading them would run code "
                               "from data", file=folder,
                               hint="save weights with safetensors (save_pretrained(safe_serialization=True)) "
                                    "and remove the pickle files")


def model_folder(model: Any, *, backend: str = "transformers", require_config: bool = False) -> Path:
    """The checked local model folder ``model`` (a backend's ``model`` key): it exists, is a folder,
    holds no pickle-based files and has ``*.safetensors`` weights (and ``config.json`` when
    ``require_config``)."""
    if not isinstance(model, str | os.PathLike) or not str(model):
        raise InvalidInput(f"the {backend} backend needs 'model': a local model folder", field="model")
    folder = Path(model)
    if not folder.exists():
        raise NotFound(f"model folder {folder} does not exist")
    if not folder.is_dir():
        raise InvalidInput("'model' must be a folder (saved with save_pretrained), not a file", file=folder,
                           field="model")
    check_no_pickles(folder)
    if not any(folder.glob("*.safetensors")):
        raise InvalidInput("model folder has no *.safetensors weights", file=folder,
                           hint="save the model with save_pretrained(safe_serialization=True)")
    if require_config and not (folder / "config.json").is_file():
        raise InvalidInput("model folder has no config.json", file=folder)
    return folder


def resolve_device(device: str) -> str:
    """``cpu`` | ``cuda`` | ``cuda:N`` | ``auto`` (CUDA when available, else CPU) → a torch device name."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device != "cpu" and device != "cuda" and not device.startswith("cuda:"):
        raise InvalidInput(f"unknown device {device!r}; expected 'cpu', 'cuda' or 'auto'", field="device")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidInput(f"device {device!r} requested but CUDA is not available", field="device",
                           hint="use device 'auto' to fall back to the CPU")
    return device


# --------------------------------------------------------------------------- hashes
_SHA_MEMO: dict[tuple, str] = {}


def files_sha256(files: Iterable[tuple[str, Path]]) -> str:
    """SHA-256 over named files: for each (sorted by name) its name, size and bytes (streamed).

    The names are what the hash sees (not where the files live); memoized on (name, path, size,
    mtime) of every file, so an unchanged folder is read once per process."""
    entries = sorted((name, Path(path)) for name, path in files)
    stats = tuple((name, str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for name, p in entries)
    if stats in _SHA_MEMO:
        return _SHA_MEMO[stats]
    h = hashlib.sha256()
    for name, path in entries:
        h.update(name.encode("utf-8") + b"\0" + str(path.stat().st_size).encode() + b"\0")
        update_from_file(h, path)
    _SHA_MEMO[stats] = digest = h.hexdigest()
    return digest


def model_folder_sha256(folder: str | Path) -> str:
    """Content hash of a causal-LM folder: its :data:`MODEL_FILES` and safetensors weights (top
    level only, as transformers reads it), by :func:`files_sha256`."""
    folder = Path(folder).resolve()
    return files_sha256((p.name, p) for p in folder.iterdir()
                        if p.is_file() and (p.name in MODEL_FILES or p.name.endswith(WEIGHT_SUFFIXES)))


def tree_sha256(folder: str | Path) -> str:
    """SHA-256 over every file of a folder tree: sorted relative paths, each followed by its bytes
    (streamed). The content address of a registered checkpoint folder."""
    folder = Path(folder)
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + b"\0")
        update_from_file(h, path)
    return h.hexdigest()


# --------------------------------------------------------------------------- files
def canonicalize_json(path: Path) -> None:
    """Rewrite a saved JSON file with sorted keys, so its bytes (and the folder's hash) do not depend
    on dict order."""
    data = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


__all__ = ["MODEL_FILES", "PICKLE_SUFFIXES", "WEIGHT_SUFFIXES", "UnsafeCheckpoint", "canonicalize_json",
           "check_no_pickles", "files_sha256", "model_folder", "model_folder_sha256", "pickle_files",
           "resolve_device", "tree_sha256"]
