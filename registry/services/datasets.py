"""Dataset use cases: register a version (one source file → validated, content-addressed,
DVC-tracked, SQL-registered), register the whole catalog, list, show, diff, load, export.

Listing and showing read only the SQL store; pandas, pyarrow, the source adapters and the
validation engine are imported by the use cases that read or write rows (``dataset list`` and
``dataset show`` start fast).
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry import __version__
from registry.domain.entities import Dataset, DatasetVersion, Source
from registry.domain.serialization import Serializable
from registry.domain.types import TASK_TYPES
from registry.errors import InvalidInput, RegistryError
from registry.hashing import update_from_file
from registry.services.app import RegistryContext

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from registry.adapters.sources import DatasetDef
    from registry.domain.versioning import RowDiff


@dataclass(frozen=True)
class Registration(Serializable):
    """Outcome of one registration: the version, and whether it is new."""

    version: DatasetVersion
    created: bool
    diff: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        """What ``dataset register --json`` prints."""
        v = self.version
        return {"dataset": v.dataset, "version": v.version, "created": self.created, "content_hash": v.content_hash,
                "rows": v.row_count, "diff": self.diff}


@dataclass
class CatalogResult:
    """Outcome of ``register-all``."""

    registered: list[Registration] = field(default_factory=list)
    unchanged: list[Registration] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(dataset, reason) for catalog entries whose files are not present."""
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(dataset, error message) for entries that could not be registered."""


def _provenance(adapter: str, path: Path, options: Mapping[str, Any]) -> dict[str, Any]:
    import great_expectations
    import pandas as pd
    import pyarrow

    stat = path.stat() if path.exists() else None
    return {
        "adapter": adapter, "path": str(path.resolve()), "options": {k: v for k, v in options.items()},
        "input_bytes": stat.st_size if stat and path.is_file() else None,
        "code_version": __version__, "python": platform.python_version(),
        "libraries": {"pyarrow": pyarrow.__version__, "pandas": pd.__version__,
                      "great_expectations": great_expectations.__version__},
    }


def input_fingerprint(adapter, path: Path, options: Mapping[str, Any], spec_sha256: str,
                      labels: tuple[str, ...] | None, max_text_chars: int, *,
                      stop: threading.Event | None = None) -> str | None:
    """Hash of everything that determines a registration's content: the input file's bytes, the
    adapter's code, its options, the spec and the limits. ``None`` for folders (not hashed), and
    when ``stop`` is set before the file is read to its end.

    A second registration of the same input is answered from this without reading the file."""
    path = Path(path)
    if not path.is_file():
        return None
    h = hashlib.sha256()
    if not update_from_file(h, path, block=1 << 22, stop=stop):
        return None
    module = sys.modules[type(adapter).__module__]
    code = Path(module.__file__).read_bytes() if getattr(module, "__file__", None) else b""
    base_code = Path(sys.modules["registry.adapters.sources.base"].__file__).read_bytes()
    h.update(hashlib.sha256(code + base_code).digest())
    h.update(json.dumps({"adapter": adapter.info.name, "options": options, "spec": spec_sha256,
                         "labels": labels, "max_text_chars": max_text_chars, "code": __version__},
                        sort_keys=True, default=str).encode())
    return h.hexdigest()


def _rows_of(reg: RegistryContext, version: DatasetVersion) -> pa.Table:
    """The stored rows of ``version``, checked against its content hash (IntegrityError if the file
    changed; once per process per file)."""
    from registry.services.store_maintenance import check_version_table

    table = reg.artifacts.read_parquet(version.storage_uri)
    check_version_table(reg, version, table)
    return table


_REGISTER_TRIES = 10
"""Attempts of a registration whose parent keeps being overtaken by concurrent writers."""


def _check_new_dataset(reg: RegistryContext, name: str, path: Path) -> None:
    """The dataset name follows the naming rule (unless the dataset exists already), and the input
    is a regular file or a folder within the input size limit — checked before anything is read."""
    from registry.adapters.sources.base import check_input
    from registry.domain.names import validate_new_name

    validate_new_name("dataset", name, lambda n: reg.store.latest_version(n) is not None, field="name")
    check_input(path, folders=True, max_bytes=int(reg.settings.max_input_mb * 2**20))


def _with_input_repairs(report: dict[str, Any], inputs) -> dict[str, Any]:
    """The validation report, with the count of lone surrogates replaced with U+FFFD when reading."""
    if not inputs.replaced_surrogates:
        return report
    return {**report, "input_repairs": {"lone_surrogates_replaced_with_U+FFFD": inputs.replaced_surrogates}}


def register_dataset_version(
    reg: RegistryContext,
    *,
    name: str,
    source: str,
    path: Path,
    options: Mapping[str, Any] | None = None,
    task_type: str | None = None,
    labels: tuple[str, ...] | None = None,
    description: str | None = None,
) -> Registration:
    """Read ``path`` with adapter ``source``, validate it against its task type's spec, and
    register it as a new version of dataset ``name`` — or return the existing version when the
    same content is already registered. The SQL rows (source, dataset, version) are written in one
    unit of work inside the placing of the Parquet file: on any error nothing is left behind (no
    rows, no files).

    The input is streamed (:mod:`registry.services.ingest`): read, cast, validated, hashed, sorted
    and written a chunk at a time, in memory bounded by ``AUTORATER_MEMORY_MB``."""
    from registry.adapters.sources import get_adapter
    from registry.adapters.sources.base import reading_inputs
    from registry.adapters.validation.spec import load_spec
    from registry.services.ingest import ingest

    path = Path(path)
    _check_new_dataset(reg, name, path)
    adapter = get_adapter(source)
    ddef: DatasetDef | None = adapter.dataset_def(name)
    opts = dict(ddef.options if ddef else {}) | dict(options or {})
    only_type = adapter.info.task_types[0] if len(adapter.info.task_types) == 1 else None
    task_type = task_type or (ddef.task_type if ddef else opts.get("task_type") or only_type)
    if task_type not in TASK_TYPES:
        raise InvalidInput(f"unknown or missing task type {task_type!r}; one of {list(TASK_TYPES)}",
                           field="task_type", hint="pass --task-type")
    if source == "generic":
        opts["task_type"] = task_type
    labels = labels or (ddef.labels if ddef else None) or (tuple(opts["labels"]) if opts.get("labels") else None)
    spec = load_spec(reg.settings.specs_dir, task_type)
    store = reg.store
    fingerprinting = None
    if store.latest_version(name) is None:
        # a new dataset: no version of it can have this input's fingerprint, so the file is hashed on
        # another thread while it is read (hashlib and the file reads release the GIL)
        stop = threading.Event()
        fingerprinting = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fingerprint")
        pending = fingerprinting.submit(input_fingerprint, adapter, path, opts, spec.sha256, labels,
                                        reg.settings.max_text_chars, stop=stop)
    else:
        fingerprint = input_fingerprint(adapter, path, opts, spec.sha256, labels, reg.settings.max_text_chars)
        if fingerprint is not None:
            known = store.find_version_by_fingerprint(name, fingerprint)
            if known is not None:
                return Registration(version=known, created=False)
    try:
        with reading_inputs(reg.settings.max_input_mb) as inputs:
            done = ingest(reg.artifacts, adapter, path, opts, spec=spec, task_type=task_type, labels=labels,
                          max_text_chars=reg.settings.max_text_chars, memory_mb=reg.settings.memory_mb)
        if fingerprinting is not None:
            fingerprint = pending.result()
    finally:
        if fingerprinting is not None:
            stop.set()  # a refused input: the hash is not needed
            fingerprinting.shutdown(wait=True)
    try:
        return _register_ingested(reg, done, name=name, source=source, path=path, opts=opts, adapter=adapter,
                                  ddef=ddef, task_type=task_type, spec=spec, description=description,
                                  report=_with_input_repairs(done.report, inputs), fingerprint=fingerprint)
    finally:
        done.parquet.unlink(missing_ok=True)


def _register_ingested(reg: RegistryContext, done, *, name: str, source: str, path: Path, opts: dict[str, Any],
                       adapter, ddef: DatasetDef | None, task_type: str, spec, description: str | None,
                       report: dict[str, Any], fingerprint: str | None,
                       provenance: dict[str, Any] | None = None) -> Registration:
    """Place the written Parquet file of ``done`` (:class:`~registry.services.ingest.Ingested`) and
    add its version, taking the parent and the row diff again while concurrent writers overtake it.
    ``provenance``: recorded instead of the input file's (a derived dataset records its lineage)."""
    from registry import events
    from registry.adapters.store.abstract import ParentMoved

    store = reg.store
    digest, labels, stats = done.digest, done.labels, done.statistics
    relpath = reg.artifacts.relpath_for("datasets", digest, ".parquet")
    # concurrent writers: the store adds one version per content (a later writer of the same content
    # gets the first one's version, `created` False) and refuses a parent that is no longer the
    # latest version (ParentMoved): then the parent and the row diff are taken again
    for attempt in range(_REGISTER_TRIES):
        parent = store.latest_version(name, task_type=task_type)  # a dataset of another task type is refused
        existing = store.find_version_by_hash(name, digest) if parent is not None else None
        if existing is not None:
            return Registration(version=existing, created=False)
        diff = _diff_from_parent(reg, parent, done) if parent is not None else None
        tmp = _linked_copy(done.parquet)  # placing moves it into the store (or removes it on failure)
        try:
            with reg.artifacts.placing(tmp, relpath), store.unit_of_work() as uow:
                entity, version_id, created = uow.add_version(
                    dataset=name, task_type=task_type, description=description or (ddef.description if ddef else ""),
                    source=_source_entity(adapter) if source != "generic" else None,
                    parent=parent.version if parent is not None else None, content_hash=digest,
                    row_count=done.rows, spec_name=spec.name, spec_version=spec.version,
                    spec_sha256=spec.sha256, storage_uri=relpath, labels=list(labels) if labels else None,
                    statistics=stats, validation_report=report, diff_from_parent=diff,
                    provenance=provenance if provenance is not None else _provenance(source, path, opts),
                    input_fingerprint=fingerprint)
        except ParentMoved:
            if attempt + 1 == _REGISTER_TRIES:
                raise
            continue
        finally:
            tmp.unlink(missing_ok=True)
        if not created:
            return Registration(version=entity, created=False)
        break
    from registry.services.store_maintenance import mark_registered

    mark_registered(reg, entity, done.parquet)  # its rows were just hashed: the first run need not again
    # after the commit: a triggered re-evaluation must find the version
    events.emit(events.DATASET_VERSION_REGISTERED, f"autorater.dataset-version.{entity.ref}",
                {"dataset": entity.dataset, "version": entity.version, "ref": entity.ref, "version_id": version_id,
                 "task_type": entity.task_type, "content_hash": entity.content_hash})
    return Registration(version=entity, created=True, diff=diff)


def _diff_from_parent(reg: RegistryContext, parent: DatasetVersion, done) -> dict[str, int]:
    """The row diff summary from ``parent`` to the ingested rows, the parent's file read a row group
    at a time and checked against its content hash (IntegrityError if it changed)."""
    from registry.domain.versioning import diff_summary
    from registry.errors import IntegrityError
    from registry.services.ingest import stored_keys
    from registry.services.store_maintenance import PULL_HINT

    path = reg.artifacts.local_file(parent.storage_uri)
    old_ids, old_hashes, digest = stored_keys(path, parent.spec)
    if digest != parent.content_hash:
        raise IntegrityError(f"dataset version {parent.ref}: the stored file {path} does not hold the registered "
                             f"rows (content hash differs from {parent.content_hash[:12]}); {PULL_HINT}")
    return diff_summary(old_ids, old_hashes, done.ids, done.hashes)


def _linked_copy(tmp: Path) -> Path:
    """A second name for ``tmp`` in its folder (a hard link; a copy where links are refused)."""
    import os
    import shutil
    import uuid

    other = tmp.with_name(f"{uuid.uuid4().hex}{tmp.suffix}")
    try:
        os.link(tmp, other)
    except OSError:
        shutil.copyfile(tmp, other)
    return other


def _source_entity(adapter) -> Source:
    i = adapter.info
    return Source(name=i.name, title=i.title, origin=i.origin, license=i.license, citation=i.citation)


def catalog_entries() -> list[tuple[str, DatasetDef]]:
    """(adapter name, dataset definition) for every dataset of every catalog source."""
    from registry.adapters.sources import SOURCES, get_adapter

    entries = []
    for name in SOURCES.names():
        if name == "generic":
            continue
        entries.extend((name, d) for d in get_adapter(name).catalog())
    return entries


def register_all(reg: RegistryContext, data_root: Path, *,
                 on_progress: Callable[[str, str], None] | None = None,
                 only: set[str] | None = None) -> CatalogResult:
    """Register every catalog dataset whose files exist under ``data_root``; each dataset is
    registered independently (a failure is reported and does not stop the others)."""
    data_root = Path(data_root)
    if not data_root.is_dir():
        raise InvalidInput("data folder does not exist", file=data_root, hint="pass --data DIR or set AUTORATER_DATA")
    result = CatalogResult()
    for adapter_name, d in catalog_entries():
        if only and d.name not in only and adapter_name not in only:
            continue
        path = data_root / d.path
        if not path.exists():
            result.skipped.append((d.name, f"{d.path} not found"))
            if on_progress:
                on_progress(d.name, "skipped")
            continue
        try:
            r = register_dataset_version(reg, name=d.name, source=adapter_name, path=path)
        except RegistryError as exc:
            result.failed.append((d.name, str(exc)))
            if on_progress:
                on_progress(d.name, "failed")
            continue
        (result.registered if r.created else result.unchanged).append(r)
        if on_progress:
            on_progress(d.name, "registered" if r.created else "unchanged")
    return result


def load_table(reg: RegistryContext, ref: str) -> pa.Table:
    """The exact registered rows of ``name[@version]`` as an Arrow table (canonical order)."""
    return _rows_of(reg, reg.store.get_version(ref))


ROWS_BATCH = 1024
"""Rows decoded at a time when a page of a version is read (:func:`read_rows`)."""


def read_rows(reg: RegistryContext, ref: str, *, offset: int, limit: int,
              where: Mapping[str, str] | None = None, filter_field: Mapping[str, str] | None = None
              ) -> tuple[DatasetVersion, int, list[dict[str, Any]]]:
    """``(version, total, rows)``: ``limit`` rows of ``ref`` from ``offset`` (canonical order) among those whose
    columns equal the values of ``where`` (compared as text), and how many match, without reading the whole
    version: only the filter columns are read whole, then the page's rows from the row groups holding them,
    a batch at a time up to the last one wanted. The first read of a file in this process reads it whole
    once to check it against its content hash (:func:`registry.services.store_maintenance.check_version_table`).
    ``filter_field``: the field an unknown column is reported under (default ``slice``)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from registry.services.store_maintenance import version_checked

    version = reg.store.get_version(ref)
    if not version_checked(reg, version):
        _rows_of(reg, version)            # IntegrityError when the file does not hold the registered rows
    conditions = dict(where or {})
    with pq.ParquetFile(reg.artifacts.local_file(version.storage_uri)) as f:
        names = f.schema_arrow.names
        for column in conditions:
            if column not in names:
                raise InvalidInput(f"{version.ref} has no column {column!r}; columns: {', '.join(names)}",
                                   field=(filter_field or {}).get(column, "slice"))
        if conditions:
            table = f.read(columns=list(conditions))
            mask = None
            for column, value in conditions.items():
                col = table.column(column)
                if pa.types.is_nested(col.type):
                    raise InvalidInput(f"column {column!r} holds lists; filter on a text or number column",
                                       field="slice")
                if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
                    col = pc.cast(col, pa.string())
                hit = pc.fill_null(pc.equal(col, value), False)
                mask = hit if mask is None else pc.and_(mask, hit)
            matches = pc.indices_nonzero(mask).to_numpy()
            total, wanted = len(matches), matches[offset:offset + limit]
        else:
            total = f.metadata.num_rows
            wanted = np.arange(min(offset, total), min(offset + limit, total))
        return version, total, _rows_at(f, wanted)


def _rows_at(f, wanted) -> list[dict[str, Any]]:
    """The rows of Parquet file ``f`` at the ascending positions ``wanted``: each row group holding some is
    read a batch at a time, stopping after the last position wanted in it."""
    import numpy as np

    if len(wanted) == 0:
        return []
    wanted = np.asarray(wanted, dtype=np.int64)
    sizes = [f.metadata.row_group(i).num_rows for i in range(f.metadata.num_row_groups)]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    out: list[dict[str, Any]] = []
    for g in np.unique(np.searchsorted(starts, wanted, side="right") - 1):
        lo, hi = starts[g], starts[g + 1]
        local = wanted[(wanted >= lo) & (wanted < hi)] - lo
        at = 0
        for batch in f.iter_batches(batch_size=ROWS_BATCH, row_groups=[int(g)]):
            end = at + batch.num_rows
            here = local[(local >= at) & (local < end)] - at
            if len(here):
                out += batch.take(here).to_pylist()
            at = end
            if at > local[-1]:
                break
    return out


def load_pandas(reg: RegistryContext, ref: str) -> pd.DataFrame:
    """The registered rows as a pandas DataFrame."""
    return load_table(reg, ref).to_pandas()


def load_hf_dataset(reg: RegistryContext, ref: str):
    """The registered rows as a Hugging Face ``datasets.Dataset`` (same Arrow data)."""
    import datasets

    return datasets.Dataset(load_table(reg, ref))


def diff_versions(reg: RegistryContext, ref_a: str, ref_b: str) -> RowDiff:
    """Row-level diff (added / removed / changed example ids) from ``ref_a`` to ``ref_b``."""
    from registry.domain.versioning import diff_rows, row_hashes

    a, b = load_table(reg, ref_a), load_table(reg, ref_b)
    if a.schema.remove_metadata() != b.schema.remove_metadata():
        raise InvalidInput(f"{ref_a} and {ref_b} have different task types; they cannot be diffed")
    return diff_rows(a.column("example_id"), row_hashes(a), b.column("example_id"), row_hashes(b))


EXPORT_FORMATS = ("parquet", "jsonl", "csv")


def export_version(reg: RegistryContext, ref: str, out: Path, fmt: str | None = None) -> Path:
    """Write the registered rows of ``ref`` to ``out`` as Parquet, JSON lines or CSV.

    ``out`` must be a new or regular file outside the registry's store (a stored version is never
    overwritten) and its database; the rows are written to a temporary file beside it, then renamed
    onto it, so a failed export leaves nothing (and an existing file as it was). A target that cannot
    be written (a folder, a device, a name too long, no space) is an :class:`InvalidInput` naming it."""
    out = Path(out)
    fmt = fmt or {".parquet": "parquet", ".jsonl": "jsonl", ".csv": "csv"}.get(out.suffix.lower())
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"unknown export format {fmt!r}; one of {list(EXPORT_FORMATS)}", field="format",
                           hint="name the file .parquet, .jsonl or .csv, or pass --format")
    _check_export_target(reg, out)
    table = load_table(reg, ref)
    created = _make_parent(out)
    try:
        _write_replacing(table, out, fmt)
    except BaseException:
        if created is not None:
            import shutil

            shutil.rmtree(created, ignore_errors=True)
        raise
    return out


_NAME_MAX = 255
"""Longest file name (bytes) of the common file systems."""


def _check_export_target(reg: RegistryContext, out: Path) -> None:
    """Refuse an export target inside the store or onto the database, a folder, a special file or a
    name no file system takes."""
    import os
    import stat

    target = out.resolve()
    protected = [(Path(reg.settings.store).resolve(), "the registry's store")]
    if "://" not in reg.settings.dvc_remote:
        protected.append((Path(reg.settings.dvc_remote).resolve(), "the registry's DVC remote"))
    if reg.settings.db_url.startswith("sqlite:///"):
        protected.append((Path(reg.settings.db_url.removeprefix("sqlite:///")).resolve(), "the registry's database"))
    for root, what in protected:
        if target == root or root in target.parents:
            raise InvalidInput(f"refusing to write into {what} ({root}): stored versions are never overwritten",
                               file=out, hint="export to a path outside the registry")
    if len(out.name.encode("utf-8", "surrogateescape")) > _NAME_MAX:
        raise InvalidInput(f"the file name is {len(out.name)} characters, longer than a file system takes "
                           f"({_NAME_MAX} bytes)", file=out)
    try:
        st = os.stat(out)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InvalidInput(f"cannot write here: {exc.strerror or exc}", file=out) from None
    if stat.S_ISDIR(st.st_mode):
        raise InvalidInput("is a folder; give the path of the file to write", file=out)
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInput("is not a regular file (a device, FIFO or socket); export writes regular files", file=out)


def _make_parent(out: Path) -> Path | None:
    """Create ``out``'s folder where missing; the topmost folder created (removed if the export fails)."""
    missing = None
    for folder in (out.parent, *out.parent.parents):
        if folder.exists():
            break
        missing = folder
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"cannot create the folder {out.parent}: {exc.strerror or exc}", file=out) from None
    return missing


def _write_replacing(table: pa.Table, out: Path, fmt: str) -> None:
    """Write ``table`` to a temporary file in ``out``'s folder, then rename it onto ``out``."""
    import os
    import secrets

    import pyarrow as pa

    tmp = out.parent / f".{out.name[:40]}.{secrets.token_hex(6)}.export-tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask decides, as for any file
        os.close(fd)
        _write_table(table, tmp, fmt)
        os.replace(tmp, out)
    except (OSError, pa.ArrowException) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise InvalidInput(f"cannot write the export: {why}", file=out) from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_table(table: pa.Table, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    elif fmt == "jsonl":
        table.to_pandas().to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        df = table.to_pandas()
        for col in ("annotator_labels", "annotator_scores"):
            if col in df:
                df[col] = df[col].map(lambda v: None if v is None else list(v))
        df.to_csv(path, index=False)


def show_version(reg: RegistryContext, ref: str) -> DatasetVersion:
    """Metadata, statistics and validation report of ``name[@version]``."""
    return reg.store.get_version(ref)


@dataclass(frozen=True)
class DatasetSummary(Serializable):
    """One dataset as ``dataset list`` shows it: where its latest version came from, and its size."""

    name: str
    task_type: str
    source: str | None
    """Adapter that read the latest version (``generic`` for a user's own file mapped by columns),
    else the dataset's catalog source."""
    source_file: str | None
    """The file or folder the latest version was read from, as recorded in its provenance."""
    latest_version: int | None
    rows: int | None
    content_hash: str | None
    description: str = ""


def version_source(version: DatasetVersion) -> str | None:
    """The adapter a version was read with (its provenance), e.g. ``llmbar`` or ``generic``."""
    return version.provenance.get("adapter")


def version_file(version: DatasetVersion) -> str | None:
    """The file or folder a version was read from (its provenance)."""
    return version.provenance.get("path")


def list_datasets(reg: RegistryContext, task_type: str | None = None) -> list[DatasetSummary]:
    """Every dataset (of ``task_type``) with its latest version and where that came from, by name."""
    if task_type is not None and task_type not in TASK_TYPES:
        raise InvalidInput(f"unknown task type {task_type!r}; one of {list(TASK_TYPES)}", field="task_type")
    latest = reg.store.latest_versions(task_type)
    return [_summary(d, latest.get(d.name)) for d in reg.store.list_datasets(task_type)]


def _summary(d: Dataset, v: DatasetVersion | None) -> DatasetSummary:
    if v is None:
        return DatasetSummary(name=d.name, task_type=d.task_type, source=d.source, source_file=None,
                              latest_version=None, rows=None, content_hash=None, description=d.description)
    return DatasetSummary(name=d.name, task_type=d.task_type, source=version_source(v) or d.source,
                          source_file=version_file(v), latest_version=v.version, rows=v.row_count,
                          content_hash=v.content_hash, description=d.description)
