"""The artifact store: a folder that is a DVC project (``dvc init --no-scm``) holding
content-addressed files, e.g. ``datasets/ab/abcdef….parquet``.

Each file is tracked with ``dvc add`` (a ``.dvc`` pointer beside it, the content in the DVC
cache, linked back by hard link so a 1 GB version is not copied twice). ``push`` / ``pull`` move
content to and from the configured DVC remote (a local folder by default; any DVC remote URL
such as ``s3://bucket/path`` for teams). Loading a file that is only on the remote pulls it.

Stored files are immutable: once placed and tracked they are made read-only (``0o444``; folders
stay writable so that DVC checkouts, ``store gc`` and a test's temporary-folder cleanup can still
remove them). A checkpoint folder is read by :func:`folder_files`, which follows no symlink out of
the folder and takes no special file; its hash (:func:`files_sha256`) is over exactly the files
copied.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import stat
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from registry.errors import InvalidInput, NotFound, StorageError

if TYPE_CHECKING:
    import pyarrow as pa

# pyarrow, PyYAML and DVC are imported by the methods that use them: opening a registry to read
# its SQL metadata (`autorater dataset list`, `eval show`) never loads them.

PARQUET_OPTIONS = {"compression": "zstd", "row_group_size": 128 * 1024}
KINDS = ("datasets", "predictions", "checkpoints")
"""The folders of stored content: dataset versions, run predictions, checkpoint folders."""
READ_ONLY = 0o444
LOCK_TIMEOUT_S = 600.0
"""Default wait for the store lock (a ``store push`` of a large store may hold it for minutes)."""
DVC_LOCK_RETRIES = 5
"""Mode of a stored file (and of its DVC cache object, which DVC protects the same way)."""
TMP_GRACE_S = 3600.0
"""Age (seconds) after which a leftover of ``store/tmp`` or an orphan is surely not being written
by a live process; what ``store gc`` and the start-up sweep remove by default."""
_BLOCK = 1 << 20

FolderFiles = Sequence[tuple[str, Path]]
"""The files of a checkpoint folder: (relative POSIX path, file whose bytes it holds), in hash order."""


def folder_files(folder: Path) -> list[tuple[str, Path]]:
    """The regular files of ``folder`` (walked without following symlinks), sorted as the folder
    hash reads them. A symlink is taken (as a regular file holding its target's bytes) only when it
    resolves to a regular file inside the folder; a symlink that leaves the folder, dangles, loops or
    names a folder, and anything that is not a regular file or folder (FIFO, socket, device), is
    refused with an :class:`InvalidInput` naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInput("checkpoint folder does not exist (or is not a folder)", file=folder)
    root = Path(os.path.realpath(folder))
    out: list[tuple[str, Path]] = []
    _walk(root, "", out)
    return sorted(out, key=lambda item: item[0].split("/"))


def _walk(root: Path, prefix: str, out: list[tuple[str, Path]]) -> None:
    with os.scandir(root / prefix if prefix else root) as entries:
        for entry in entries:
            rel = f"{prefix}/{entry.name}" if prefix else entry.name
            if entry.is_symlink():
                out.append((rel, _link_target(root, rel)))
            elif entry.is_dir(follow_symlinks=False):
                _walk(root, rel, out)
            elif entry.is_file(follow_symlinks=False):
                out.append((rel, Path(entry.path)))
            else:
                raise InvalidInput("not a regular file (a FIFO, socket or device); a checkpoint holds files only",
                                   file=root / rel)


def _link_target(root: Path, rel: str) -> Path:
    """The regular file inside ``root`` that the symlink ``rel`` resolves to (else InvalidInput)."""
    link = root / rel
    try:
        target = Path(os.path.realpath(link, strict=True))
    except OSError as exc:
        raise InvalidInput(f"dangling or looping symlink ({exc.strerror or exc})", file=link) from None
    if not target.is_relative_to(root):
        raise InvalidInput(f"symlink points outside the checkpoint folder (to {target})", file=link,
                           hint="copy the file into the folder; symlinks may only point inside it")
    if not stat.S_ISREG(target.stat().st_mode):
        raise InvalidInput("symlink to a folder or a special file; only symlinks to files inside the folder "
                           "are taken", file=link)
    return target


def files_sha256(files: FolderFiles) -> str:
    """SHA-256 over ``files``: each relative path, a NUL, then its bytes (streamed) — the layout of
    :func:`registry.adapters.models.local.tree_sha256` for a folder of regular files."""
    h = hashlib.sha256()
    for rel, source in files:
        h.update(rel.encode() + b"\0")
        with open(source, "rb") as fh:
            while chunk := fh.read(_BLOCK):
                h.update(chunk)
    return h.hexdigest()


def _copy_hashing(files: FolderFiles, dest: Path) -> str:
    """Copy ``files`` under ``dest`` as regular files; the SHA-256 (:func:`files_sha256` layout) of the
    bytes written, read once."""
    h = hashlib.sha256()
    for rel, source in files:
        h.update(rel.encode() + b"\0")
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(source, "rb") as src, open(out, "xb") as dst:
            while chunk := src.read(_BLOCK):
                h.update(chunk)
                dst.write(chunk)
    return h.hexdigest()


def age_s(path: str, now: float) -> float:
    """Seconds since anything under ``path`` (a file, or a folder walked without following links)
    last changed."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return 0.0
    newest = info.st_mtime
    if stat.S_ISDIR(info.st_mode):
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    newest = max(newest, now - age_s(entry.path, now))
        except OSError:
            return 0.0
    return now - newest


def _writable(path: Path) -> None:
    """Make a stored folder and what it holds writable again (before deleting them)."""
    for base, dirs, _ in os.walk(path):
        os.chmod(base, 0o755)
        for d in dirs:
            os.chmod(os.path.join(base, d), 0o755)


def delete_path(path: str | Path) -> None:
    """Delete a file or a folder tree (read-only ones too); no error if it is gone."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        _writable(path)
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class ArtifactStore:
    """Content-addressed files under ``root``, tracked by DVC, pushed to ``remote``."""

    def __init__(self, root: Path, remote: str | None = None, *, lock_timeout: float | None = None,
                 endpoint_url: str | None = None) -> None:
        self.root = Path(root)
        self.remote = remote
        self.endpoint_url = endpoint_url
        """Endpoint of an S3-compatible server for an ``s3://`` remote (DVC's ``endpointurl``)."""
        self._repo = None
        self.lock_timeout = float(os.environ.get("AUTORATER_STORE_LOCK_TIMEOUT", LOCK_TIMEOUT_S)
                                  if lock_timeout is None else lock_timeout)
        """Seconds to wait for the store lock (:meth:`locked`) before giving up with a StorageError."""
        self._lock = threading.RLock()
        self._lock_depth = 0
        self._lock_fd: int | None = None

    # ------------------------------------------------------------------ the store lock
    @property
    def lock_path(self) -> Path:
        """The lock file of :meth:`locked` (inside DVC's own folder: no store content, never listed)."""
        return self.root / ".dvc" / "tmp" / "autorater-store.lock"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's exclusive lock for the block: every DVC operation on the store (``dvc
        add``/``remove``/``push``/``pull``, the placing of a file with its registration) runs under
        it, so DVC's own repository lock (which fails at once when taken) is never contended and
        never what decides. An ``flock`` on :attr:`lock_path`: the operating system releases it
        when its holder dies, even on SIGKILL. Re-entrant in this process (threads take turns);
        waits up to :attr:`lock_timeout` seconds, then raises a :class:`StorageError` naming the
        holder."""
        if not self._lock.acquire(timeout=self.lock_timeout if self.lock_timeout >= 0 else -1):
            raise StorageError(f"the artifact store {self.root} is busy in this process (waited "
                               f"{self.lock_timeout:.0f} s for its lock); try again")
        try:
            if self._lock_depth == 0:
                self._lock_fd = self._acquire_file_lock()
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
                if self._lock_depth == 0 and self._lock_fd is not None:
                    fd, self._lock_fd = self._lock_fd, None
                    os.close(fd)  # closing the only descriptor releases the flock
        finally:
            self._lock.release()

    def _acquire_file_lock(self) -> int | None:
        import fcntl

        if not (self.root / ".dvc").is_dir():
            return None  # not initialised: the DVC call itself says so
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.lock_timeout
        pause = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                    os.close(fd)
                    raise StorageError(f"the artifact store {self.root} is locked by {holder} (waited "
                                       f"{self.lock_timeout:.0f} s): a long `store push` or `store pull` may be "
                                       "running; try again when it ends (AUTORATER_STORE_LOCK_TIMEOUT sets the wait)"
                                       ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.25)
                continue
            except BaseException:
                os.close(fd)
                raise
            break
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        except OSError:
            pass  # the note is for error messages only
        return fd

    def _dvc(self, what: str, call):
        """Run a DVC call under the store lock; retry if DVC's own lock is held by something that
        does not take ours (a ``dvc`` command run by hand in the store)."""
        with self.locked():
            for attempt in range(DVC_LOCK_RETRIES):
                try:
                    return call()
                except Exception as exc:  # DVC raises many unrelated types
                    if type(exc).__name__ == "LockError" and attempt + 1 < DVC_LOCK_RETRIES:
                        time.sleep(0.2 * (attempt + 1))
                        continue
                    raise StorageError(f"{what} failed: {exc}") from exc

    # ------------------------------------------------------------------ DVC
    def init(self) -> None:
        """Create the store and its DVC project (idempotent) and configure the remote."""
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "tmp").mkdir(exist_ok=True)
        if not (self.root / ".dvc").is_dir():
            from dvc.repo import Repo

            Repo.init(str(self.root), no_scm=True, force=True).close()
        repo = self.repo
        with repo.config.edit() as conf:
            conf["core"]["autostage"] = False
            conf["core"]["analytics"] = False
            conf["cache"]["type"] = "hardlink,copy"
            if self.remote:
                conf["remote"]["default"] = self._remote_config()
                conf["core"]["remote"] = "default"
        # DVC's Repo reads its config when it is built: this process's next `dvc add` must see
        # the cache type just set (hard links, not the default copies)
        self.close()
        if self.remote and "://" not in self.remote:
            Path(self.remote).mkdir(parents=True, exist_ok=True)

    def _remote_config(self) -> dict[str, str]:
        """DVC's config of the ``default`` remote: the URL, and for ``s3://`` an ``endpointurl``.
        Never credentials: DVC (boto) reads ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and
        ``AWS_SESSION_TOKEN`` from the environment of the process that pushes or pulls."""
        conf = {"url": str(self.remote)}
        if self.endpoint_url and str(self.remote).startswith("s3://"):
            conf["endpointurl"] = self.endpoint_url
        return conf

    def _sync_remote(self) -> None:
        """Point DVC's ``default`` remote at this store's remote (the settings may have changed since
        ``autorater init``); the config file is written only when it differs."""
        if not self.remote:
            return
        repo = self.repo
        want = self._remote_config()
        have = dict(repo.config.get("remote", {}).get("default", {}))
        if have == want and repo.config.get("core", {}).get("remote") == "default":
            return
        with self.locked(), repo.config.edit() as conf:
            conf["remote"]["default"] = want
            conf["core"]["remote"] = "default"
        self.close()  # the remote as configured now, not as the Repo read it
        if "://" not in self.remote:
            Path(self.remote).mkdir(parents=True, exist_ok=True)

    @property
    def repo(self):
        if self._repo is None:
            os.environ.setdefault("DVC_NO_ANALYTICS", "1")
            from dvc.repo import Repo

            if not (self.root / ".dvc").is_dir():
                raise StorageError(f"artifact store {self.root} is not initialised; run `autorater init`")
            self._repo = Repo(str(self.root))
        return self._repo

    def close(self) -> None:
        if self._repo is not None:
            self._repo.close()
            self._repo = None

    def track(self, relpath: str) -> None:
        """``dvc add`` one file of the store."""
        self._dvc(f"dvc add {relpath}", lambda: self.repo.add([str(self.root / relpath)]))

    def push(self) -> int:
        """Upload tracked content to the remote; returns the number of files pushed."""
        self._sync_remote()
        return int(self._dvc("dvc push", lambda: self.repo.push()) or 0)

    def pull(self, relpath: str | None = None) -> int:
        """Download tracked content (one file, or everything) from the remote."""
        targets = [str(self.root / (relpath + ".dvc"))] if relpath else None
        self._sync_remote()
        with self.locked():
            result = self._dvc(f"dvc pull {relpath or ''}", lambda: self.repo.pull(targets=targets))
            for kind in (relpath,) if relpath else KINDS:
                self.protect(kind)
        return len(result.get("added", []) + result.get("modified", [])) if isinstance(result, dict) else 0

    # ------------------------------------------------------------- content
    @staticmethod
    def relpath_for(kind: str, digest: str, suffix: str) -> str:
        return f"{kind}/{digest[:2]}/{digest}{suffix}"

    def path(self, relpath: str) -> Path:
        return self.root / relpath

    def exists(self, relpath: str) -> bool:
        return (self.root / relpath).exists()

    def write_parquet_tmp(self, table: pa.Table) -> Path:
        """Write ``table`` to a temporary file inside the store (same filesystem as the target)."""
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / f"{uuid.uuid4().hex}.parquet"
        import pyarrow.parquet as pq

        try:
            pq.write_table(table, tmp, **PARQUET_OPTIONS)
        except Exception as exc:
            tmp.unlink(missing_ok=True)
            raise StorageError(f"writing Parquet failed: {exc}") from exc
        return tmp

    def write_parquet_tmp_groups(self, schema: pa.Schema, groups: Iterable[pa.Table]) -> Path:
        """Write ``groups`` (tables of ``schema``), one row group each, to a temporary file inside the
        store: the bytes :meth:`write_parquet_tmp` writes for their concatenation when every group but
        the last holds ``PARQUET_OPTIONS["row_group_size"]`` rows (and each column is one piece), with
        one row group in memory at a time."""
        tmp = self.tmp_path(".parquet")
        import pyarrow.parquet as pq

        options = {k: v for k, v in PARQUET_OPTIONS.items() if k != "row_group_size"}
        size = PARQUET_OPTIONS["row_group_size"]
        try:
            with pq.ParquetWriter(tmp, schema, **options) as writer:
                for group in groups:
                    writer.write_table(group, row_group_size=size)
                    del group  # not held while the next one is made
        except BaseException as exc:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, Exception) and not isinstance(exc, StorageError):
                raise StorageError(f"writing Parquet failed: {exc}") from exc
            raise
        return tmp

    def tmp_path(self, suffix: str) -> Path:
        """A new path in ``store/tmp`` (the stored files' filesystem; swept by ``store gc`` when left over)."""
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        return tmp_dir / f"{uuid.uuid4().hex}{suffix}"

    @contextmanager
    def scratch_folder(self) -> Iterator[Path]:
        """A new folder in ``store/tmp`` for a writer's temporary files, removed with them afterwards."""
        folder = self.tmp_path(".scratch")
        folder.mkdir()
        try:
            yield folder
        finally:
            delete_path(folder)

    @contextmanager
    def placing(self, tmp: Path, relpath: str) -> Iterator[Path]:
        """Move ``tmp`` to ``relpath`` and track it; if the block raises, remove every trace
        (file, ``.dvc`` pointer, cache object) so a failed registration leaves nothing behind.
        The whole (placing, tracking, the block) runs under the store lock (:meth:`locked`): a
        concurrent writer of the same content waits, then finds it placed and registered — never
        half-placed, nor removed under it by a failing first writer."""
        with self.locked():
            with self._placing(tmp, relpath) as final:
                yield final

    @contextmanager
    def _placing(self, tmp: Path, relpath: str) -> Iterator[Path]:
        final = self.root / relpath
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # same content already stored (e.g. by an earlier, rolled-back try)
            tmp.unlink(missing_ok=True)
            self.touch(relpath)  # in use again: `store gc` leaves young files alone (see TMP_GRACE_S)
            existed = True
        else:
            os.replace(tmp, final)
            existed = False
        try:
            if not existed or not Path(str(final) + ".dvc").exists():
                self.track(relpath)
            self.protect(relpath)
            yield final
        except BaseException:
            if not existed:
                self.remove(relpath)
            raise

    def remove(self, relpath: str) -> None:
        """Delete a stored file, its ``.dvc`` pointer and its cache object (under the store lock)."""
        with self.locked():
            self._remove(relpath)

    def _remove(self, relpath: str) -> None:
        final = self.root / relpath
        pointer = Path(str(final) + ".dvc")
        if pointer.exists():
            md5 = self.pointer_md5(pointer)
            if md5 is not None:  # a folder's files may be shared with others: only its listing goes
                self.cache_path(md5).unlink(missing_ok=True)
            pointer.unlink(missing_ok=True)
        delete_path(final)
        gitignore = final.parent / ".gitignore"
        gitignore.unlink(missing_ok=True)

    @staticmethod
    def pointer_md5(pointer: Path) -> str | None:
        """The cache key (``md5``, ``….dir`` for a folder) a ``.dvc`` pointer names, None if unreadable."""
        import yaml

        try:
            md5 = yaml.safe_load(pointer.read_text())["outs"][0]["md5"]
        except (OSError, KeyError, IndexError, TypeError, yaml.YAMLError):
            return None
        return md5 if isinstance(md5, str) and len(md5) > 2 else None

    def cache_path(self, md5: str) -> Path:
        """The DVC cache object of ``md5``."""
        return self.root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]

    def protect(self, relpath: str) -> None:
        """Make a stored file (or every file of a stored folder) read-only. Called after ``dvc add``,
        which may rewrite the file's mode."""
        path = self.root / relpath
        if path.is_dir():
            for base, _, names in os.walk(path):
                for name in names:
                    if not name.endswith((".dvc", ".gitignore")):  # DVC rewrites its pointers
                        os.chmod(os.path.join(base, name), READ_ONLY)
        elif path.exists():
            os.chmod(path, READ_ONLY)

    # ------------------------------------------------------------- folders
    @contextmanager
    def staging_folder(self, files: FolderFiles) -> Iterator[tuple[Path, str]]:
        """Copy ``files`` (from :func:`folder_files`) into a new folder of ``store/tmp``; yields it
        with the SHA-256 of exactly the bytes copied, and removes what is left of it afterwards."""
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        staging = tmp_dir / f"{uuid.uuid4().hex}.folder"
        try:
            staging.mkdir()
            sha = _copy_hashing(files, staging / "c")
            (staging / "c").mkdir(exist_ok=True)
            yield staging / "c", sha
        finally:
            delete_path(staging)

    def place_folder(self, staged: Path, relpath: str) -> bool:
        """Move a staged folder to ``relpath`` (False, and the stored one refreshed for ``store gc``,
        when that content is already there)."""
        final = self.root / relpath
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            self.touch(relpath)
            return False
        try:
            staged.rename(final)
        except OSError:
            if not final.is_dir():  # else another process placed the same content first
                raise
            return False
        return True

    def touch(self, relpath: str) -> None:
        """Mark a stored file or folder as just used, so that ``store gc`` (which removes orphans
        older than its grace period only) cannot take it while a registration is reusing it."""
        try:
            os.utime(self.root / relpath)
        except FileNotFoundError:
            pass

    # ------------------------------------------------------------- clean-up
    def clean_tmp(self, grace_s: float = TMP_GRACE_S, *, dry_run: bool = False) -> list[str]:
        """Delete (``dry_run``: only list) what killed writers left in ``store/tmp`` (entries untouched
        for ``grace_s`` seconds); returns their names. One ``os.scandir`` when there is nothing to do."""
        tmp_dir = self.root / "tmp"
        now = time.time()
        removed = []
        try:
            with os.scandir(tmp_dir) as entries:
                for entry in entries:
                    if age_s(entry.path, now) >= grace_s:
                        if not dry_run:
                            delete_path(entry.path)
                        removed.append(entry.name)
        except FileNotFoundError:
            return []
        return sorted(removed)

    def local_file(self, relpath: str) -> Path:
        """The path of a stored file, pulled from the remote first when it is missing locally."""
        path = self.root / relpath
        if not path.exists():
            if Path(str(path) + ".dvc").exists() and self.remote:
                self.pull(relpath)
            if not path.exists():
                raise NotFound(f"artifact {relpath} is missing from the store {self.root}; "
                               f"run `autorater store pull`")
        return path

    def read_parquet(self, relpath: str) -> pa.Table:
        """Read a stored Parquet file, pulling it from the remote when it is missing locally."""
        path = self.local_file(relpath)
        import pyarrow.parquet as pq

        # one file, read without pyarrow's dataset layer (which imports pandas, ~0.3 s of start-up)
        with pq.ParquetFile(path) as f:
            return f.read()

    def listing(self, kind: str) -> list[str]:
        """Relative paths of stored files of ``kind`` (pointers excluded)."""
        base = self.root / kind
        if not base.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file()
                      and p.suffix not in (".dvc",) and p.name != ".gitignore")
