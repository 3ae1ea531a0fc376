"""Local model folders (registry.adapters.models.local): one pickle list for every loader, the
folder checks, device names, and content hashes pinned to the values the code gave before it moved."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from registry.adapters.models.local import (
    PICKLE_SUFFIXES,
    UnsafeCheckpoint,
    check_no_pickles,
    files_sha256,
    model_folder,
    model_folder_sha256,
    tree_sha256,
)
from registry.errors import InvalidInput, NotFound


def _folder(root: Path) -> Path:
    """A small fixed folder: a model config, fake weights, a tokenizer, a README and a nested file."""
    folder = root / "m"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text('{"a": 1}\n')
    (folder / "model.safetensors").write_bytes(bytes(range(256)) * 4)
    (folder / "tokenizer.json").write_text('{"v": [1, 2]}\n')
    (folder / "README.md").write_text("not hashed by the model hash\n")
    (folder / "sub" / "extra.txt").write_text("nested\n")
    return folder


def test_one_pickle_list_for_every_loader():
    from registry.adapters.evaluators import encoder
    from registry.services import evaluators as service

    assert {".npy", ".npz", ".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib"} == set(PICKLE_SUFFIXES)
    assert encoder.PICKLE_SUFFIXES is PICKLE_SUFFIXES and service.UNSAFE_SUFFIXES is PICKLE_SUFFIXES
    assert encoder.check_no_pickles is check_no_pickles and encoder.UnsafeCheckpoint is UnsafeCheckpoint


@pytest.mark.parametrize("name", ["weights.npy", "arrays.NPZ", "pytorch_model.bin", "nested/optimizer.pt"])
def test_pickle_based_files_are_refused(tmp_path, name):
    folder = _folder(tmp_path)
    check_no_pickles(folder)  # a clean folder passes
    (folder / name).parent.mkdir(exist_ok=True)
    (folder / name).write_bytes(b"\x93NUMPY or a pickle")
    with pytest.raises(UnsafeCheckpoint, match=name.split("/")[-1]) as caught:
        model_folder(folder)
    assert caught.value.exit_code == 2 and "safetensors" in str(caught.value)


def test_npy_refused_by_the_transformers_backend_and_at_registration(tmp_path, sqlite_registry):
    """The same rule where a folder is loaded and where a checkpoint is registered."""
    from registry.adapters.backends.hf import TransformersBackend
    from registry.services.evaluators import register_checkpoint

    folder = _folder(tmp_path)
    (folder / "embeddings.npy").write_bytes(b"\x93NUMPY")
    with pytest.raises(UnsafeCheckpoint, match="embeddings.npy"):
        TransformersBackend({"model": str(folder)})
    with pytest.raises(InvalidInput, match="pickle"):
        register_checkpoint(sqlite_registry, "unsafe", kind="llm-judge", path=folder)


def test_model_folder_checks(tmp_path):
    folder = _folder(tmp_path)
    assert model_folder(folder) == folder and model_folder(str(folder), require_config=True) == folder
    with pytest.raises(InvalidInput, match="the vllm backend needs 'model'"):
        model_folder(None, backend="vllm")
    with pytest.raises(NotFound, match="does not exist"):
        model_folder(tmp_path / "nope")
    with pytest.raises(InvalidInput, match="must be a folder"):
        model_folder(folder / "config.json")
    (folder / "config.json").unlink()
    with pytest.raises(InvalidInput, match="config.json"):
        model_folder(folder, require_config=True)
    (folder / "model.safetensors").unlink()
    with pytest.raises(InvalidInput, match="safetensors"):
        model_folder(folder)


def test_hashes_are_pinned_and_do_not_depend_on_the_location(tmp_path):
    """Values computed by the code before it moved here: the registered checkpoint hash
    (``tree_sha256``) and the model hash in backend fingerprints and stage-cache keys."""
    folder = _folder(tmp_path)
    assert tree_sha256(folder) == "15dfaef04f6b1efaac3148a1a89f101d6511d3efb771bcb9ef4b54a6d346d7a8"
    assert model_folder_sha256(folder) == "953127d874d900edeac784bdb9b7b15dede269aef5d879153036b29c1ceb214c"
    copy = shutil.copytree(folder, tmp_path / "elsewhere")
    assert (tree_sha256(copy), model_folder_sha256(copy)) == (tree_sha256(folder), model_folder_sha256(folder))
    (copy / "README.md").write_text("changed")
    assert model_folder_sha256(copy) == model_folder_sha256(folder) != "" and tree_sha256(copy) != tree_sha256(folder)
    (copy / "tokenizer.json").write_text('{"v": [2, 1]}\n')
    assert model_folder_sha256(copy) != model_folder_sha256(folder)
    # names and bytes, not paths or listing order, are what files_sha256 sees
    other = shutil.copytree(folder, tmp_path / "other")
    a = files_sha256([("x", folder / "config.json"), ("y", folder / "tokenizer.json")])
    assert a == files_sha256([("y", other / "tokenizer.json"), ("x", other / "config.json")])
    assert a != files_sha256([("x", folder / "tokenizer.json"), ("y", folder / "config.json")])


def test_device_names():
    pytest.importorskip("torch")
    from registry.adapters.models.local import resolve_device

    assert resolve_device("cpu") == "cpu" and resolve_device("auto") in ("cpu", "cuda")
    with pytest.raises(InvalidInput, match="unknown device 'tpu'"):
        resolve_device("tpu")
