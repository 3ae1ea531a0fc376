"""Store maintenance: check stored files against the hashes the database records, and collect what
killed writers left behind.

* :func:`check_version_table`, :func:`check_predictions_file` — the check made when a dataset
  version or a run's predictions are loaded: once per file (keyed by path, inode, size,
  modification and change times; a passed check is remembered in the process and as a marker
  under the store's ``.verified`` folder for the next processes; registration marks the file it has
  just written and hashed, :func:`mark_registered`), so a file changed on disk is never read as the
  registered content;
* :func:`verify_store` (``autorater store verify``) — every dataset version, predictions file and
  checkpoint folder, re-hashed in full;
* :func:`collect_garbage` (``autorater store gc``) — leftovers of ``store/tmp``, orphans (stored
  files no database row references, with their ``.dvc`` pointer), DVC cache objects no pointer
  references, and the evaluation caches that vouch for nothing any more (input sidecars of
  ``store/derived`` whose version is gone, check markers whose file is gone or changed); only what is older than a grace period, so a file a live process is placing and
  about to commit is never taken. It also marks the ``running`` rows of dead processes failed as
  abandoned (:func:`registry.services.claims.reap_abandoned`: decided by the pair's claim, not by
  age). :func:`sweep_tmp` is its cheap part, run when a registry opens.

What is hashed: a dataset version's ``content_hash`` is over its rows (spec, columns, example ids,
row hashes: :mod:`registry.domain.versioning`), so the check re-reads the rows; a predictions file's
``predictions_sha256`` is over the file's bytes; a checkpoint's ``sha256`` is over its files
(:func:`registry.adapters.artifacts.store.files_sha256`).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from registry.adapters.artifacts.store import KINDS, TMP_GRACE_S, ArtifactStore, delete_path
from registry.domain.serialization import Serializable
from registry.errors import InvalidInput, IntegrityError, RegistryError
from registry.services.app import RegistryContext

if TYPE_CHECKING:
    import pyarrow as pa

    from registry.domain.entities import DatasetVersion, EvaluationRun

_VERIFIED: set[tuple] = set()
"""(path, inode, size, mtime_ns, ctime_ns, expected hash) of the files this process has checked: a
file rewritten since (even with its old modification time put back) is checked again."""
PULL_HINT = "run `autorater store verify` to check every stored file, and `autorater store pull` to restore it from the remote"


# ----------------------------------------------------------------------------- on load
def _key(path: Path, expected: str) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (str(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, expected)


VERIFIED_DIR = ".verified"
"""Folder of the store root holding one empty marker file per check passed (named by the SHA-256 of
the check's key): another process loading the same file, unchanged, trusts it instead of hashing
every row again. Rewriting the file changes its change time (``ctime``, which no user can set back),
so a marker never vouches for other bytes."""


def _marker(reg: RegistryContext, key: tuple) -> Path:
    from registry.hashing import sha256_bytes

    return reg.artifacts.root / VERIFIED_DIR / sha256_bytes(repr(key).encode())


def _is_verified(reg: RegistryContext, key: tuple | None) -> bool:
    """Whether the file of ``key`` (:func:`_key`), as it is now, passed its check in this process or
    in another one (a marker under :data:`VERIFIED_DIR`)."""
    if key is None:
        return False
    if key in _VERIFIED:
        return True
    if _marker(reg, key).exists():
        _VERIFIED.add(key)
        return True
    return False


def _mark_verified(reg: RegistryContext, key: tuple | None) -> None:
    """Remember a passed check in this process and as a marker: written in ``store/tmp``, then
    renamed into :data:`VERIFIED_DIR` (a kill leaves at most a temporary file, which ``store gc``
    removes). The marker holds the file's store path and expected hash, so ``store gc`` can tell a
    marker of a file gone or changed (:func:`marker_live`)."""
    if key is None:
        return
    _VERIFIED.add(key)
    marker = _marker(reg, key)
    tmp = None
    try:
        if marker.exists():
            return
        relpath = Path(key[0]).relative_to(reg.artifacts.root).as_posix()
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = reg.artifacts.tmp_path(".verified")
        tmp.write_text(json.dumps({"path": relpath, "expected": key[-1]}))
        os.replace(tmp, marker)
    except (OSError, ValueError):  # a read-only store (every process checks, as before), a file outside it
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def mark_registered(reg: RegistryContext, version: DatasetVersion, written: Path) -> None:
    """Registration's check marker: ``version``'s stored file was just written (``written``: the
    temporary Parquet file registration wrote, still there) and its rows hashed to
    ``version.content_hash``, so the first process that loads it need not hash every row again.
    Marked only when the store holds that very file (the same inode: moved, hard-linked by
    ``dvc add``), keyed by the file as it is now, after placing; not when the store kept a file
    already there or holds a copy (those are checked on first load, as before). A file changed later
    has another change time, so the marker no longer matches it (:func:`_mark_verified`).
    ``written`` is removed first: dropping a link changes the file's change time too."""
    path = reg.artifacts.path(version.storage_uri)
    try:
        ours = written.stat()
        written.unlink()
        st = path.stat()
    except OSError:
        return
    if (st.st_dev, st.st_ino) != (ours.st_dev, ours.st_ino):
        return
    _mark_verified(reg, (str(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, version.content_hash))


def marker_live(reg: RegistryContext, marker: Path, referenced: set[str]) -> bool:
    """Whether ``marker`` (a file of :data:`VERIFIED_DIR`) vouches for a file the database
    references (``referenced``: :func:`referenced_paths`) as that file is now: same path, inode,
    size and times. A marker of a file gone, rewritten, touched or orphaned, or one without its
    path (written before markers held it), is stale."""
    try:
        held = json.loads(marker.read_text())
        relpath, expected = held["path"], held["expected"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if not isinstance(relpath, str) or not isinstance(expected, str) or relpath not in referenced:
        return False
    key = _key(reg.artifacts.path(relpath), expected)
    return key is not None and _marker(reg, key).name == marker.name


DERIVED_DIR = "derived"
"""Folder of the store root holding what runs derive from a version's rows (input sidecars,
:class:`registry.services.streaming.InputSidecar`), named by the version's content hash."""
_SIDECAR_NAME = re.compile(r"inputs-([0-9a-f]{16})-[0-9a-f]{24}\.arrow")


def sidecar_path(reg: RegistryContext, content_hash: str, tag: str) -> Path:
    """The input sidecar of the version with ``content_hash`` for the inputs ``tag`` names."""
    return reg.artifacts.root / DERIVED_DIR / f"inputs-{content_hash[:16]}-{tag}.arrow"


def version_prefixes(reg: RegistryContext) -> set[str]:
    """The first 16 characters of every registered version's content hash (what sidecars are named by)."""
    return {v.content_hash[:16] for d in reg.store.list_datasets() for v in reg.store.list_versions(d.name)}


def sidecar_live(name: str, prefixes: set[str]) -> bool:
    """Whether ``name`` (a file of :data:`DERIVED_DIR`) is the input sidecar of a registered version
    (``prefixes``: :func:`version_prefixes`)."""
    m = _SIDECAR_NAME.fullmatch(name)
    return m is not None and m.group(1) in prefixes


def version_digest(version: DatasetVersion, table: pa.Table) -> str:
    """The content hash of ``table`` as registered for ``version`` (its spec, columns and rows)."""
    from registry.domain.versioning import content_hash, row_hashes

    return content_hash(version.spec, table, row_hashes(table))


def check_version_table(reg: RegistryContext, version: DatasetVersion, table: pa.Table) -> None:
    """Raise :class:`IntegrityError` when the rows read from ``version``'s file are not the rows
    registered (their content hash differs); checked once per process per file."""
    path = reg.artifacts.path(version.storage_uri)
    key = _key(path, version.content_hash)
    if _is_verified(reg, key):
        return
    if version_digest(version, table) != version.content_hash:
        raise IntegrityError(f"dataset version {version.ref}: the stored file {path} does not hold the registered "
                             f"rows (content hash differs from {version.content_hash[:12]}); {PULL_HINT}")
    _mark_verified(reg, key)


def version_checked(reg: RegistryContext, version: DatasetVersion) -> bool:
    """Whether this process has checked ``version``'s stored file as it is now (:func:`check_version_table`):
    a reader of a part of the file (a page of rows) may then skip reading it whole."""
    key = _key(reg.artifacts.path(version.storage_uri), version.content_hash)
    return _is_verified(reg, key)


class StreamedVersionCheck:
    """:func:`check_version_table` of a version read a batch at a time (a streamed evaluation): give
    the file's column names, :meth:`add` each batch in file order, then :meth:`finish` raises
    :class:`IntegrityError` when the rows read were not the rows registered. Nothing is hashed when
    this process has checked the file already."""

    def __init__(self, reg: RegistryContext, version: DatasetVersion, column_names: list[str]) -> None:
        import hashlib

        self.version = version
        self.reg = reg
        self.path = reg.artifacts.path(version.storage_uri)
        self.key = _key(self.path, version.content_hash)
        self.needed = not _is_verified(reg, self.key)
        # as versioning.content_hash: spec, column names, example ids, then the row hashes
        self._h = hashlib.sha256(version.spec.encode() + b"\0" + "\x1f".join(column_names).encode() + b"\0")
        self._hashes: list = []

    def add(self, table: pa.Table) -> None:
        if not self.needed or table.num_rows == 0:
            return
        from registry.domain.versioning import row_hashes

        if self._hashes:
            self._h.update(b"\n")
        self._h.update("\n".join(table.column("example_id").to_pylist()).encode("utf-8"))
        self._hashes.append(row_hashes(table))

    def finish(self) -> None:
        if not self.needed:
            return
        import numpy as np

        self._h.update(b"\0")
        if self._hashes:
            self._h.update(np.ascontiguousarray(np.concatenate(self._hashes), dtype="<u8").tobytes())
        if self._h.hexdigest() != self.version.content_hash:
            raise IntegrityError(f"dataset version {self.version.ref}: the stored file {self.path} does not hold the "
                                 f"registered rows (content hash differs from {self.version.content_hash[:12]}); "
                                 f"{PULL_HINT}")
        _mark_verified(self.reg, self.key)


def check_predictions_file(reg: RegistryContext, run: EvaluationRun) -> None:
    """Raise :class:`IntegrityError` when run ``run``'s predictions file does not hash to the
    recorded ``predictions_sha256``; checked once per process per file."""
    from registry.hashing import sha256_file

    if not run.predictions_uri or not run.predictions_sha256:
        return
    path = reg.artifacts.path(run.predictions_uri)
    key = _key(path, run.predictions_sha256)
    if key is None or _is_verified(reg, key):  # a missing file: reading it pulls it or names what to do
        return
    if sha256_file(path) != run.predictions_sha256:
        raise IntegrityError(f"run {run.id}: its predictions file {path} changed (sha256 differs from "
                             f"{run.predictions_sha256[:12]}); {PULL_HINT}")
    _mark_verified(reg, key)


# ----------------------------------------------------------------------------- verify
@dataclass(frozen=True)
class StoreProblem(Serializable):
    """One stored file that does not match the database."""

    kind: str
    """``dataset``, ``predictions`` or ``checkpoint``."""
    ref: str
    """``dataset@version``, ``run N`` or ``autorater@version``."""
    path: str
    """Relative path in the store."""
    problem: str
    """``missing`` (not in the store), ``changed`` (another hash) or ``unreadable``."""
    detail: str = ""


@dataclass(frozen=True)
class StoreVerification(Serializable):
    """``autorater store verify``: how many stored files were checked, and the problems found."""

    checked: int
    problems: tuple[StoreProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"ok": self.ok, "checked": self.checked, "problems": [p.to_dict() for p in self.problems]}


def _check(kind: str, ref: str, relpath: str, reg: RegistryContext, digest_of, expected: str) -> StoreProblem | None:
    path = reg.artifacts.path(relpath)
    if not path.exists():
        return StoreProblem(kind, ref, relpath, "missing", "run `autorater store pull`")
    try:
        actual = digest_of(path)
    except (OSError, RegistryError, ValueError) as exc:
        return StoreProblem(kind, ref, relpath, "unreadable", str(exc)[:300])
    except Exception as exc:  # noqa: BLE001 — pyarrow raises its own types for a corrupt Parquet file
        return StoreProblem(kind, ref, relpath, "unreadable", f"{type(exc).__name__}: {str(exc)[:300]}")
    if actual != expected:
        return StoreProblem(kind, ref, relpath, "changed", f"sha256 {actual[:12]}, registered {expected[:12]}")
    return None


def _version_digest(reg: RegistryContext, version: DatasetVersion):
    def digest(path: Path) -> str:
        return version_digest(version, reg.artifacts.read_parquet(version.storage_uri))
    return digest


def _folder_digest(path: Path) -> str:
    from registry.adapters.artifacts.store import files_sha256, folder_files

    try:
        return files_sha256(folder_files(path))
    except InvalidInput as exc:
        raise ValueError(str(exc)) from None


def verify_store(reg: RegistryContext) -> StoreVerification:
    """Re-hash every stored dataset version, predictions file and checkpoint folder and compare
    with the hash the database records."""
    from registry.hashing import sha256_file

    checks = []
    for d in reg.store.list_datasets():
        for v in reg.store.list_versions(d.name):
            checks.append(("dataset", v.ref, v.storage_uri, _version_digest(reg, v), v.content_hash))
    for run in reg.store.list_runs():
        if run.predictions_uri and run.predictions_sha256:
            checks.append(("predictions", f"run {run.id}", run.predictions_uri, sha256_file, run.predictions_sha256))
    for c in reg.store.list_checkpoints():
        if c.format == "safetensors" and c.uri and not c.uri.startswith(("external:", "builtin:")):
            checks.append(("checkpoint", c.ref, c.uri, _folder_digest, c.sha256))
    problems = [p for kind, ref, relpath, fn, expected in checks
                if (p := _check(kind, ref, relpath, reg, fn, expected)) is not None]
    return StoreVerification(checked=len(checks), problems=tuple(problems))


# ----------------------------------------------------------------------------- gc
@dataclass(frozen=True)
class StoreGc(Serializable):
    """``autorater store gc``: what was (``dry_run``: would be) removed."""

    tmp: tuple[str, ...]
    """Leftovers of ``store/tmp`` (killed writes)."""
    orphans: tuple[str, ...]
    """Stored files or folders no database row references (with their ``.dvc`` pointers)."""
    cache_objects: tuple[str, ...]
    """DVC cache objects (``md5``) no remaining pointer references."""
    dry_run: bool
    grace_s: float
    reaped: tuple[int, ...] = ()
    """Ids of the ``running`` runs whose process died, marked failed as abandoned (``dry_run``: that
    would be); the grace period does not apply (a pair's claim tells a live run from a dead one)."""
    sidecars: tuple[str, ...] = ()
    """Files of ``store/derived`` that are no registered version's input sidecar (its version gone)."""
    markers: tuple[str, ...] = ()
    """Check markers of ``store/.verified`` whose file is gone, changed or no longer referenced."""

    @property
    def removed(self) -> int:
        """How many items were (would be) removed."""
        return len(self.tmp) + len(self.orphans) + len(self.cache_objects) + len(self.sidecars) + len(self.markers)

    def to_dict(self) -> dict:
        return {"removed": self.removed, "tmp": list(self.tmp), "orphans": list(self.orphans),
                "cache_objects": list(self.cache_objects), "reaped": list(self.reaped), "dry_run": self.dry_run,
                "grace_s": self.grace_s, "sidecars": list(self.sidecars), "markers": list(self.markers)}


def sweep_tmp(artifacts: ArtifactStore, grace_s: float = TMP_GRACE_S) -> list[str]:
    """Delete old leftovers of ``store/tmp`` (cheap: one ``os.scandir`` when there are none); never
    fails, since it runs whenever a registry opens."""
    try:
        return artifacts.clean_tmp(grace_s)
    except OSError:
        return []


def referenced_paths(reg: RegistryContext) -> set[str]:
    """Relative store paths the database references (versions, predictions, checkpoint folders)."""
    refs = {v.storage_uri for d in reg.store.list_datasets() for v in reg.store.list_versions(d.name)}
    refs |= {r.predictions_uri for r in reg.store.list_runs() if r.predictions_uri}
    refs |= {c.uri for c in reg.store.list_checkpoints() if c.format == "safetensors" and c.uri}
    return refs


def stored_items(artifacts: ArtifactStore) -> list[str]:
    """Relative paths of the stored items (``datasets/ab/….parquet``, ``checkpoints/ab/…``) and of
    pointers whose item is gone (without ``.dvc``)."""
    items = set()
    for kind in KINDS:
        base = artifacts.root / kind
        if not base.is_dir():
            continue
        with os.scandir(base) as shards:
            for shard in shards:
                if shard.is_dir(follow_symlinks=False):
                    items |= {f"{kind}/{shard.name}/{name}" for name in _item_names(shard.path)}
    return sorted(items)


def _item_names(shard: str) -> set[str]:
    """Names of the items in one shard folder (``ab/``): files and folders, and pointers' items."""
    with os.scandir(shard) as entries:
        return {e.name[:-4] if e.name.endswith(".dvc") else e.name for e in entries if e.name != ".gitignore"}


def _old(path: Path, grace_s: float, now: float) -> bool:
    """True when nothing at ``path`` (or its ``.dvc`` pointer) changed for ``grace_s`` seconds."""
    from registry.adapters.artifacts.store import age_s

    ages = [age_s(str(p), now) for p in (path, Path(str(path) + ".dvc")) if os.path.lexists(p)]
    return bool(ages) and min(ages) >= grace_s


def _pointer_objects(artifacts: ArtifactStore, skip: set[str]) -> set[str]:
    """Every cache key (``md5``, ``….dir`` and the files a ``.dir`` lists) referenced by the pointers
    of the stored items not in ``skip``."""
    import json

    keys: set[str] = set()
    for item in stored_items(artifacts):
        md5 = None if item in skip else artifacts.pointer_md5(Path(str(artifacts.path(item)) + ".dvc"))
        if md5 is None:
            continue
        keys.add(md5)
        if md5.endswith(".dir"):
            try:
                listing = json.loads(artifacts.cache_path(md5).read_text())
            except (OSError, ValueError):
                continue
            keys |= {e["md5"] for e in listing if isinstance(e, dict) and isinstance(e.get("md5"), str)}
    return keys


def _cache_objects(artifacts: ArtifactStore) -> list[tuple[str, Path]]:
    """(cache key, file) of every object in the DVC cache."""
    base = artifacts.root / ".dvc" / "cache" / "files" / "md5"
    if not base.is_dir():
        return []
    return sorted((p.parent.name + p.name, p) for p in base.glob("*/*") if p.is_file())


def abandoned_runs(reg: RegistryContext, *, dry_run: bool = False) -> list[int]:
    """Mark the ``running`` rows of dead processes failed as abandoned and return their ids
    (:func:`~registry.services.claims.reap_abandoned`); ``dry_run``: only list them (the rows whose
    pair's claim no live process holds)."""
    from registry.services.claims import claim, reap_abandoned

    if not dry_run:
        return reap_abandoned(reg)
    running: dict[tuple[str, str], list[int]] = {}
    for r in reg.store.list_runs(status="running"):
        running.setdefault((r.evaluator, r.dataset), []).append(r.id)
    out: list[int] = []
    for (evaluator, dataset), ids in running.items():
        with claim(reg, evaluator, dataset) as got:
            if got:
                out += ids
    return sorted(out)


def _stale_entries(folder: Path, live, grace_s: float, now: float) -> list[Path]:
    """Entries of ``folder`` for which ``live(entry)`` is false, untouched for ``grace_s`` seconds."""
    from registry.adapters.artifacts.store import age_s

    try:
        with os.scandir(folder) as entries:
            found = [Path(e.path) for e in entries]
    except FileNotFoundError:
        return []
    return sorted(p for p in found if not live(p) and age_s(str(p), now) >= grace_s)


def stale_caches(reg: RegistryContext, referenced: set[str], grace_s: float, now: float
                 ) -> tuple[list[Path], list[Path]]:
    """(input sidecars, check markers) ``store gc`` removes: files of :data:`DERIVED_DIR` that are no
    registered version's sidecar (:func:`sidecar_live`) and markers of :data:`VERIFIED_DIR` that
    vouch for no referenced file as it is now (:func:`marker_live`), older than ``grace_s``."""
    root, prefixes = reg.artifacts.root, version_prefixes(reg)
    sidecars = _stale_entries(root / DERIVED_DIR, lambda p: p.is_file() and sidecar_live(p.name, prefixes),
                              grace_s, now)
    markers = _stale_entries(root / VERIFIED_DIR, lambda p: p.is_file() and marker_live(reg, p, referenced),
                             grace_s, now)
    return sidecars, markers


def collect_garbage(reg: RegistryContext, *, grace_s: float = TMP_GRACE_S, dry_run: bool = False) -> StoreGc:
    """Remove (``dry_run``: list) leftovers of ``store/tmp``, orphaned stored items with their
    pointers, and DVC cache objects no other pointer references — each only when older than
    ``grace_s`` seconds, so that what a live process is writing right now is left alone — and mark
    the ``running`` runs of dead processes failed as abandoned (:func:`abandoned_runs`)."""
    if grace_s < 0:
        raise InvalidInput("the grace period cannot be negative", field="grace")
    reaped = abandoned_runs(reg, dry_run=dry_run)
    artifacts = reg.artifacts
    now = time.time()
    tmp = artifacts.clean_tmp(grace_s, dry_run=dry_run)
    # under the store lock: no file is being placed (a dataset version is placed and committed
    # under it); predictions and checkpoints committed later are young, so the grace keeps them
    with artifacts.locked():
        referenced = referenced_paths(reg)
        orphans = [item for item in stored_items(artifacts)
                   if item not in referenced and _old(artifacts.path(item), grace_s, now)]
        keep = _pointer_objects(artifacts, skip=set(orphans))
        cache = [(key, path) for key, path in _cache_objects(artifacts)
                 if key not in keep and now - path.lstat().st_mtime >= grace_s]
        if not dry_run:
            orphans = [item for item in orphans if _old(artifacts.path(item), grace_s, time.time())]  # not reused
            for item in orphans:
                artifacts.remove(item)
            for _, path in cache:
                delete_path(path)
        # the evaluation caches: after the orphans, whose markers are stale with them
        sidecars, markers = stale_caches(reg, referenced, grace_s, now)
        if not dry_run:
            for path in (*sidecars, *markers):
                delete_path(path)
    return StoreGc(tmp=tuple(tmp), orphans=tuple(orphans), cache_objects=tuple(k for k, _ in cache),
                   dry_run=dry_run, grace_s=grace_s, reaped=tuple(reaped),
                   sidecars=tuple(p.relative_to(artifacts.root).as_posix() for p in sidecars),
                   markers=tuple(p.relative_to(artifacts.root).as_posix() for p in markers))
