"""The artifact store: a folder that is a DVC project (``dvc init --no-scm``) holding
content-addressed files, e.g. ``datasets/ab/abcdef….parquet``.

Each file is tracked with ``dvc add`` (a ``.dvc`` pointer beside it, the content in the DVC
cache, linked back by hard link so a 1 GB version is not copied twice). ``push`` / ``pull`` move
content to and from the configured DVC remote (a local folder by default; any DVC remote URL
such as ``s3://bucket/path`` for teams). Loading a file that is only on the remote pulls it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from registry.errors import NotFound, StorageError

if TYPE_CHECKING:
    import pyarrow as pa

# pyarrow, PyYAML and DVC are imported by the methods that use them: opening a registry to read
# its SQL metadata (`autorater dataset list`, `eval show`) never loads them.

PARQUET_OPTIONS = {"compression": "zstd", "row_group_size": 128 * 1024}


class ArtifactStore:
    """Content-addressed files under ``root``, tracked by DVC, pushed to ``remote``."""

    def __init__(self, root: Path, remote: str | None = None) -> None:
        self.root = Path(root)
        self.remote = remote
        self._repo = None

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
                conf["remote"]["default"] = {"url": self.remote}
                conf["core"]["remote"] = "default"
        if self.remote and "://" not in self.remote:
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
        try:
            self.repo.add([str(self.root / relpath)])
        except Exception as exc:  # DVC raises many unrelated types
            raise StorageError(f"dvc add {relpath} failed: {exc}") from exc

    def push(self) -> int:
        """Upload tracked content to the remote; returns the number of files pushed."""
        try:
            return int(self.repo.push() or 0)
        except Exception as exc:
            raise StorageError(f"dvc push failed: {exc}") from exc

    def pull(self, relpath: str | None = None) -> int:
        """Download tracked content (one file, or everything) from the remote."""
        try:
            targets = [str(self.root / (relpath + ".dvc"))] if relpath else None
            result = self.repo.pull(targets=targets)
            return len(result.get("added", []) + result.get("modified", [])) if isinstance(result, dict) else 0
        except Exception as exc:
            raise StorageError(f"dvc pull {relpath or ''} failed: {exc}") from exc

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

    @contextmanager
    def placing(self, tmp: Path, relpath: str) -> Iterator[Path]:
        """Move ``tmp`` to ``relpath`` and track it; if the block raises, remove every trace
        (file, ``.dvc`` pointer, cache object) so a failed registration leaves nothing behind."""
        final = self.root / relpath
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # same content already stored (e.g. by an earlier, rolled-back try)
            tmp.unlink(missing_ok=True)
            existed = True
        else:
            os.replace(tmp, final)
            existed = False
        try:
            if not existed or not Path(str(final) + ".dvc").exists():
                self.track(relpath)
            yield final
        except BaseException:
            if not existed:
                self.remove(relpath)
            raise

    def remove(self, relpath: str) -> None:
        """Delete a stored file, its ``.dvc`` pointer and its cache object."""
        final = self.root / relpath
        pointer = Path(str(final) + ".dvc")
        if pointer.exists():
            import yaml

            try:
                md5 = yaml.safe_load(pointer.read_text())["outs"][0]["md5"]
                (self.root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).unlink(missing_ok=True)
            except (KeyError, IndexError, TypeError, yaml.YAMLError):
                pass
            pointer.unlink(missing_ok=True)
        final.unlink(missing_ok=True)
        gitignore = final.parent / ".gitignore"
        gitignore.unlink(missing_ok=True)

    def read_parquet(self, relpath: str) -> pa.Table:
        """Read a stored Parquet file, pulling it from the remote when it is missing locally."""
        path = self.root / relpath
        if not path.exists():
            if Path(str(path) + ".dvc").exists() and self.remote:
                self.pull(relpath)
            if not path.exists():
                raise NotFound(f"artifact {relpath} is missing from the store {self.root}; "
                               f"run `autorater store pull`")
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
