"""Checkpoint folders and symlinks (the "Hold up" issue, security findings): ``checkpoint register``
follows no symlink out of the folder, takes no special file, and hashes exactly what it copies.

A file outside the checkpoint folder (``secret``) stands in for ``/etc/shadow``."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from registry.errors import InvalidInput
from tests.conftest import db_counts, store_files


def _folder(tmp_path: Path, name: str = "ckpt") -> Path:
    folder = tmp_path / name
    (folder / "sub").mkdir(parents=True)
    (folder / "w.safetensors").write_bytes(b"weights")
    (folder / "sub" / "config.json").write_text("{}")
    return folder


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "outside" / "shadow"
    path.parent.mkdir()
    path.write_bytes(b"root:$6$secret")
    return path


def _refused(reg, folder: Path, match: str) -> InvalidInput:
    from registry.services.evaluators import register_checkpoint

    before = (store_files(reg), db_counts(reg))
    with pytest.raises(InvalidInput, match=match) as caught:
        register_checkpoint(reg, "probe", kind="llm-judge", path=folder)
    assert caught.value.exit_code == 2
    assert (store_files(reg), db_counts(reg)) == before  # nothing stored, nothing left in store/tmp
    return caught.value


def test_symlink_to_a_file_outside_is_refused(sqlite_registry, tmp_path, secret):
    folder = _folder(tmp_path)
    (folder / "w2.safetensors").symlink_to(secret)
    err = _refused(sqlite_registry, folder, "outside the checkpoint folder")
    assert "w2.safetensors" in str(err)
    assert not any(b"secret" in p.read_bytes() for p in sqlite_registry.artifacts.root.rglob("*")
                   if p.is_file() and not p.is_symlink())


def test_relative_symlink_climbing_out_is_refused(sqlite_registry, tmp_path, secret):
    folder = _folder(tmp_path)
    (folder / "sub" / "x.safetensors").symlink_to(Path("..") / ".." / "outside" / "shadow")
    _refused(sqlite_registry, folder, "sub/x.safetensors.*outside")


def test_symlinked_folder_is_refused(sqlite_registry, tmp_path):
    """Old code: copied but left out of the hash (different folders, one sha256)."""
    folder = _folder(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "extra.safetensors").write_bytes(b"more")
    (folder / "linked").symlink_to(other, target_is_directory=True)
    _refused(sqlite_registry, folder, "linked")
    (folder / "linked").unlink()
    (folder / "inside").symlink_to(folder / "sub", target_is_directory=True)  # even one that stays inside
    _refused(sqlite_registry, folder, "inside.*folder")


def test_pickle_behind_a_symlinked_folder_is_refused(sqlite_registry, tmp_path):
    """Old code: a ``pytorch_model.bin`` inside a symlinked folder passed the pickle refusal."""
    folder = _folder(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    (folder / "model").symlink_to(other, target_is_directory=True)
    _refused(sqlite_registry, folder, "model")


def test_pickle_renamed_by_a_symlink_is_refused(sqlite_registry, tmp_path):
    """A symlink named ``.safetensors`` to a pickle file inside the folder: every copied file, under
    its own name and its target's, goes through the pickle rule."""
    folder = _folder(tmp_path)
    (folder / "sub" / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    (folder / "w2.safetensors").symlink_to(Path("sub") / "pytorch_model.bin")
    _refused(sqlite_registry, folder, "pickle")


@pytest.mark.parametrize("kind", ["dangling", "loop"])
def test_dangling_or_looping_symlink_is_a_clear_error(sqlite_registry, tmp_path, kind):
    """Old code: a ``shutil.Error`` traceback."""
    folder = _folder(tmp_path)
    if kind == "dangling":
        (folder / "gone.safetensors").symlink_to(folder / "nowhere")
    else:
        (folder / "a.json").symlink_to(folder / "b.json")
        (folder / "b.json").symlink_to(folder / "a.json")
    _refused(sqlite_registry, folder, "dangling or looping symlink")


def test_fifo_and_socket_are_refused(sqlite_registry, tmp_path):
    folder = _folder(tmp_path)
    os.mkfifo(folder / "pipe.safetensors")
    _refused(sqlite_registry, folder, "pipe.safetensors.*not a regular file")
    (folder / "pipe.safetensors").unlink()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(folder / "s.sock"))
        _refused(sqlite_registry, folder, "s.sock.*not a regular file")


def test_symlink_inside_the_folder_is_copied_as_a_file_and_hashed(sqlite_registry, tmp_path):
    """The one symlink taken: to a regular file inside the folder. It is stored as a regular file
    holding the target's bytes, and the checkpoint hash is the hash of exactly what is stored."""
    from registry.adapters.models.local import tree_sha256
    from registry.services.evaluators import checkpoint_folder, folder_sha256, register_checkpoint

    folder = _folder(tmp_path)
    (folder / "alias.json").symlink_to(Path("sub") / "config.json")
    plain = _folder(tmp_path, "plain")
    (plain / "alias.json").write_text("{}")
    ckpt, created = register_checkpoint(sqlite_registry, "linked", kind="llm-judge", path=folder)
    stored = checkpoint_folder(sqlite_registry, ckpt)
    assert created and not (stored / "alias.json").is_symlink() and (stored / "alias.json").read_text() == "{}"
    assert ckpt.sha256 == tree_sha256(stored) == folder_sha256(stored) == folder_sha256(plain)
    again, created = register_checkpoint(sqlite_registry, "linked", kind="llm-judge", path=plain)
    assert not created and again.ref == ckpt.ref


def test_hash_of_regular_folders_is_unchanged(tmp_path):
    """Folders of regular files keep the hash they were registered under (tree_sha256's layout)."""
    from registry.adapters.models.local import tree_sha256
    from registry.services.evaluators import folder_sha256

    folder = _folder(tmp_path)
    (folder / "a.txt").write_text("a")  # 'a.txt' sorts before 'a/…' by path parts, after it as a string
    (folder / "a").mkdir()
    (folder / "a" / "b").write_text("b")
    assert folder_sha256(folder) == tree_sha256(folder)


def test_stored_checkpoint_files_are_read_only(sqlite_registry, tmp_path):
    from registry.services.evaluators import checkpoint_folder, register_checkpoint

    ckpt, _ = register_checkpoint(sqlite_registry, "ro", kind="llm-judge", path=_folder(tmp_path))
    stored = checkpoint_folder(sqlite_registry, ckpt)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in stored.rglob("*") if p.is_file()}
    assert modes == {"w.safetensors": 0o444, "config.json": 0o444}
    assert Path(str(stored) + ".dvc").exists()


def test_cli_refuses_a_symlink_out_with_exit_2(cli, tmp_path, secret):
    folder = _folder(tmp_path)
    (folder / "w2.safetensors").symlink_to(secret)
    result = cli("checkpoint", "register", "probe", "--kind", "llm-judge", "--path", str(folder))
    assert result.exit_code == 2, result.output
    assert "w2.safetensors" in result.output and "Traceback" not in result.output
