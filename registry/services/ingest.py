"""Bounded-memory registration: one input streamed through casting, validation, row hashing,
canonical ordering, statistics and the Parquet writer, a chunk at a time.

The working memory follows the ``AUTORATER_MEMORY_MB`` setting (:attr:`Settings.memory_mb`), not
the number of rows:

1. **Chunks.** The adapter reads the input in chunks of about ``memory / CHUNK_SHARE`` bytes
   (:meth:`GenericAdapter.read_chunks` for JSON lines, CSV/TSV and Parquet; a catalog adapter,
   whose sources are small JSON documents, reads its file whole and the frame is cut into chunks of
   that size). Each chunk is cast to the spec's Arrow schema, validated by the GX suite (rows
   numbered in the whole input; :class:`~registry.adapters.validation.gx.ChunkedReport` keeps what
   the suite reads of the chunk and runs GX on that of many chunks at once, merged into the report
   of the whole input), row-hashed, sorted by ``example_id`` (its rows moved when the run is written,
   a record batch at a time, or at the end for a run held in memory) and kept as a *run*: in memory while
   the process's resident memory leaves room for the work on a chunk within the setting
   (:meth:`Ingest._room`; an input of one chunk always), otherwise spilled as an LZ4-compressed
   Arrow IPC file to a scratch folder of ``store/tmp``, by a background thread while the next chunk
   is read.
2. **Keys.** What stays in memory per row is the example id (Arrow text), its row hash and input
   position (16 bytes), for 1M rows of ~40-character ids about 60 MB (see the limits below). The canonical order is the
   stable sort of the runs' ids (Arrow ``sort_indices``): the whole input's stable order by
   ``example_id``, as :func:`~registry.domain.versioning.canonical_order` gives. Duplicate ids (the
   spec's uniqueness check) are found on the sorted ids, and named by their input rows.
3. **Merge.** Each output row group (``PARQUET_OPTIONS["row_group_size"]`` rows, canonical order)
   takes a contiguous slice of every run — runs are sorted — read sequentially from the spill
   files: a k-way merge whose memory is one row group (plus a small read-ahead per run). Row groups
   are written with ``pq.ParquetWriter`` (the same bytes as writing the whole table), and the
   statistics are accumulated on them (:class:`~registry.domain.statistics.StatisticsAccumulator`).

Everything stored — content hash, row hashes, canonical order, statistics, validation report, the
Parquet bytes — is what the whole-table functions give for the same input (tests compare).

Limits, honestly: what does not shrink with the setting. One output row group (131,072 rows) is
held in memory, about three copies of it, while it is merged and written (the stored format fixes its
size): ~150 MB for rows of 1.2 KB, 1.3 GB for rows of 10 KB — below ~1 GB the setting is not met for
wide rows. Per row, the keys (id, row hash, input position, the order) and the numbers the exact
statistics need (score, text lengths, annotator lists of rows with two or more annotators) stay in
memory: about 120 bytes a row (~120 MB at 1M rows, ~640 MB at 5.3M), so memory still grows with
the rows, 50–100 times slower than the data. The catalog adapters read their (small, whole-document
JSON) files whole, as do the generic mapper's JSON documents, ``.gz`` files and ``datasets`` folders.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from registry.domain.arrays import one_array
from registry.errors import InvalidInput

if TYPE_CHECKING:
    from registry.adapters.artifacts.store import ArtifactStore
    from registry.adapters.validation.spec import DatasetSpec

CHUNK_SHARE = 16
"""A chunk of input is about ``memory_mb / CHUNK_SHARE``: while one is worked on, its bytes, the
parsed columns, their one-piece copy, the frame, the cast table, GX's pandas frame and the sorted
copy come and go, at most five or six of them at once (measured: 1M rows of ~1.2 KB, 2048 MB:
chunks of 128 MB, peak RSS of the process ~1.6 GiB, GX and the registry's imports included)."""
RUN_BATCH_BYTES = 4 << 20
"""Size of the record batches of a spilled run: the read-ahead the merge holds per run."""
MIN_CHUNK_BYTES = 64 << 10
_SPILL_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")
"""Spilled runs are LZ4-compressed Arrow IPC (each buffer compressed on its own; reading decompresses):
LZ4 costs less CPU than writing the bytes it saves to fresh page-cache memory (the spill's cost on this
VM). Texts of distinct rows shrink 2-2.5x, the benchmark's replicated rows (adjacent once sorted) ~8x."""
HOLD_RESERVE_CHUNKS = 6
"""Sorted runs stay in memory (not spilled) while the resident memory of the process plus this many
chunks is within the memory setting: the work on a chunk holds five or six of its size at most, the
merge about three row groups."""


def resident_bytes() -> int | None:
    """The resident memory of this process (Linux ``/proc/self/statm``; ``None`` elsewhere: then every
    run of an input of several chunks is spilled)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def chunk_bytes(memory_mb: float) -> int:
    """The input bytes of one chunk for a working memory of ``memory_mb``."""
    return max(MIN_CHUNK_BYTES, int(memory_mb * 2**20 / CHUNK_SHARE))


@dataclass
class Ingested:
    """An input cast, validated, hashed and written in canonical order to a temporary Parquet file."""

    parquet: Path
    """The temporary file in ``store/tmp`` (the caller places or deletes it)."""
    digest: str
    rows: int
    statistics: dict[str, Any]
    report: dict[str, Any]
    ids: pa.Array
    """The example ids in canonical order."""
    hashes: np.ndarray
    """The row hashes in canonical order."""
    labels: tuple[str, ...] | None
    """The classification labels (given, else the sorted labels found)."""


# ----------------------------------------------------------------------------- chunks of input


def frame_chunks(df: pd.DataFrame, budget: int) -> Iterator[pd.DataFrame]:
    """``df`` in consecutive row slices of about ``budget`` bytes each (estimated on its first rows)."""
    n = len(df)
    if n == 0:
        return
    sample = df.iloc[: min(n, 1000)]
    per_row = max(1.0, float(sample.memory_usage(index=False, deep=True).sum()) / len(sample))
    del sample
    step = max(1, int(budget // per_row))
    if step >= n:
        held = [df]
        del df
        yield held.pop()  # the consumer holds the only reference
        return
    for start in range(0, n, step):
        yield df.iloc[start:start + step]


def input_chunks(adapter: Any, path: Path, opts: Mapping[str, Any], budget: int) -> Iterator[pd.DataFrame]:
    """The adapter's standardized rows of ``path``, a chunk of about ``budget`` bytes at a time:
    read in chunks where the adapter can (``read_chunks``), else read whole and cut."""
    read_chunks = getattr(adapter, "read_chunks", None)
    if read_chunks is None:
        yield from frame_chunks(adapter.read(path, **opts), budget)
        return
    for df in read_chunks(path, chunk_bytes=budget, **opts):
        pieces = frame_chunks(df, 2 * budget)  # an input it read whole comes as one frame
        del df
        yield from pieces


# ----------------------------------------------------------------------------- runs


def _take(table: pa.Table, idx: pa.Array | np.ndarray) -> pa.Table:
    """``table.take(idx)``, the columns in parallel (Arrow's take runs without the GIL)."""
    if table.num_columns < 2 or len(idx) < 50_000:
        return table.take(idx)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        columns = list(pool.map(lambda column: column.take(idx), table.columns))
    return pa.Table.from_arrays(columns, schema=table.schema)


@dataclass
class _Run:
    """Rows of one chunk: in memory (``table``) or spilled (``path``); sorted by example id once
    :meth:`Ingest._sorted` has run (then ``ids``, ``hashes``, ``positions`` are set, in sorted order,
    and ``sort`` orders a table in memory until it is written or :meth:`Ingest.settle` runs)."""

    offset: int
    rows: int
    table: pa.Table | None = None
    path: Path | None = None
    nbytes: int = 0
    ids: pa.Array | None = None
    hashes: np.ndarray | None = None
    positions: np.ndarray | None = None
    """Input row (0-based) of each sorted row."""
    sort: np.ndarray | None = None
    """The permutation that sorts ``table``, while its rows are not moved yet: a spill writes them in
    that order a record batch at a time (no sorted copy of the whole chunk); a run still in memory at
    the end is sorted then (:meth:`Ingest.settle`)."""
    pending: Future | None = None
    """Its spill, while a background thread writes it."""

    def settle(self) -> None:
        """Wait for its spill in flight (one not started yet is called off: the run stays in memory)."""
        if self.pending is not None:
            if not self.pending.cancel():
                self.pending.result()
            self.pending = None


class _RunReader:
    """A run's rows read forwards, a contiguous slice at a time (the merge's read-ahead is at most
    one record batch)."""

    def __init__(self, run: _Run) -> None:
        self._table = run.table
        self._file = None
        self._reader = None
        if run.table is None:
            self._file = pa.OSFile(str(run.path))  # read into memory, not mapped: RSS is what is used
            self._reader = pa.ipc.open_file(self._file)
        self._next = 0
        self._buffer: list[pa.RecordBatch] = []
        self._start = 0          # input position (in the run) of the buffer's first row
        self._end = 0            # ... of the row after the buffer

    def slice(self, a: int, b: int) -> pa.Table:
        """Rows ``a`` to ``b`` of the run (``a`` at or after the previous slice's end)."""
        if self._table is not None:
            return self._table.slice(a, b - a)
        while self._end < b:
            batch = self._reader.get_batch(self._next)
            self._next += 1
            self._buffer.append(batch)
            self._end += batch.num_rows
        # drop the batches wholly before a
        while self._buffer and self._start + self._buffer[0].num_rows <= a:
            self._start += self._buffer.pop(0).num_rows
        table = pa.Table.from_batches(self._buffer, schema=self._reader.schema)
        return table.slice(a - self._start, b - a)

    def close(self) -> None:
        self._buffer = []
        if self._file is not None:
            self._file.close()


# ----------------------------------------------------------------------------- the pipeline


@dataclass
class Ingest:
    """One input through the pipeline (see the module docstring)."""

    spec: DatasetSpec
    task_type: str
    labels: tuple[str, ...] | None
    max_text_chars: int
    file: str
    scratch: Path
    memory_mb: float
    runs: list[_Run] = field(default_factory=list)
    rows: int = 0
    _failure: tuple[int, InvalidInput] | None = None
    _found_labels: set[str] = field(default_factory=set)
    _report: Any = None
    _spilled: int = 0
    _pool: ThreadPoolExecutor | None = None

    def __post_init__(self) -> None:
        self.budget = chunk_bytes(self.memory_mb)
        self.deferred = self.task_type == "classification" and self.labels is None
        """Labels from the data: the suite (which checks labels) runs once every chunk is read."""
        if not self.deferred:
            self._start_report()

    def _start_report(self) -> None:
        from registry.adapters.validation.gx import ChunkedReport, Rules

        self._report = ChunkedReport(self.spec, Rules(labels=self.labels, max_text_chars=self.max_text_chars),
                                     budget=self.budget)

    # -- reading
    def read(self, chunks: Iterator[pd.DataFrame]) -> None:
        """Every chunk of the adapter's rows, each let go once cast."""
        while True:
            held = [next(chunks, None)]
            if held[0] is None:
                return
            self.add(held)

    def add(self, held: list[pd.DataFrame]) -> None:
        """The next chunk of the adapter's rows (``held``: a list holding the frame, emptied here)."""
        from registry.adapters.validation.gx import to_arrow

        df = held.pop()
        n = len(df)
        if n == 0:
            return
        self._spill_held()
        offset, self.rows = self.rows, self.rows + n
        if self.deferred and "label" in df.columns:
            self._found_labels.update(str(v) for v in pd.unique(df["label"].dropna()))
            if "annotator_labels" in df.columns:  # an annotator's label outside the majority labels is one too
                self._found_labels.update(str(v) for row in df["annotator_labels"]
                                          if isinstance(row, (list, tuple, np.ndarray)) for v in row)
        try:
            table = to_arrow(df, self.spec, file=self.file, row_offset=offset)
            del df
        except InvalidInput as exc:
            # the whole input's cast names the first failing field (spec order), at its first bad row
            rank = self._rank(exc)
            if self._failure is None or rank < self._failure[0]:
                self._failure = (rank, exc)
            return
        if self._failure is not None:
            return  # it fails anyway: later chunks are only read for earlier errors
        if self.deferred:
            self._keep(_Run(offset=offset, rows=n, table=table, nbytes=table.nbytes))
        else:
            self._keep(self._sorted(table, offset))

    def _rank(self, exc: InvalidInput) -> int:
        names = [f.name for f in self.spec.fields]
        if exc.detail.startswith("missing required column"):
            return -1
        return names.index(exc.field) if exc.field in names else len(names)

    def _sorted(self, table: pa.Table, offset: int) -> _Run:
        """Validate, hash and sort one chunk (input rows ``offset + 1`` ...)."""
        from registry.domain.versioning import row_hashes

        if any(column.num_chunks > 1 for column in table.columns):
            table = table.combine_chunks()  # one piece: Arrow's take over many chunks is far slower
        self._report.add(table, offset)
        hashes = row_hashes(table)
        idx = np.asarray(pc.sort_indices(table, sort_keys=[("example_id", "ascending")]))
        ids = table.column("example_id")
        ids = one_array(ids)
        sort = None
        if len(idx) > 1 and not (np.diff(idx) == 1).all():
            sort = idx  # the rows are moved when written (spilled) or at the end (held)
            hashes = hashes[idx]
            ids = ids.take(pa.array(idx))
        return _Run(offset=offset, rows=table.num_rows, table=table, nbytes=table.nbytes, ids=ids, hashes=hashes,
                    positions=(offset + idx).astype(np.int64), sort=sort)

    def _keep(self, run: _Run) -> None:
        """Keep a run: the first in memory until a second chunk comes (an input of one chunk is never
        spilled), the others in memory while the process has room for them (:meth:`_room`), else
        spilled at once, in the background."""
        self.runs.append(run)
        if len(self.runs) > 1 and not self._room():
            self._spill_soon(run)

    def _room(self) -> bool:
        """Whether the process's resident memory leaves room, within the memory setting, for the work
        on another chunk and the merge (:data:`HOLD_RESERVE_CHUNKS` chunks): then the runs stay in memory."""
        rss = resident_bytes()
        return rss is not None and rss + HOLD_RESERVE_CHUNKS * self.budget <= self.memory_mb * 2**20

    def _spill_held(self) -> None:
        """Spill the runs held in memory (another chunk has come) unless there is room for them."""
        if self._room():
            return
        for run in self.runs:
            if run.table is not None and run.pending is None:
                self._spill_soon(run)

    def _spill_soon(self, run: _Run) -> None:
        """Have a background thread write ``run`` to the scratch folder (Arrow writes without the GIL)
        while the next chunk is read; its memory goes once written."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="autorater-spill")
        self._spilled += 1
        run.pending = self._pool.submit(self._spill, run, self.scratch / f"run-{self._spilled:05d}.arrow")

    def _spill(self, run: _Run, path: Path) -> None:
        from registry.errors import StorageError

        table, sort = run.table, run.sort
        batch_rows = max(1, min(65_536, int(RUN_BATCH_BYTES / max(1.0, table.nbytes / max(1, table.num_rows)))))
        try:
            with (pa.OSFile(str(path), "wb") as sink,
                  pa.ipc.new_file(sink, table.schema, options=_SPILL_OPTIONS) as writer):
                if sort is None:
                    writer.write_table(table, max_chunksize=batch_rows)
                else:  # sorted a record batch at a time: small buffers, reused, instead of a copy of the chunk
                    for a in range(0, len(sort), batch_rows):
                        writer.write_table(table.take(pa.array(sort[a:a + batch_rows])), max_chunksize=batch_rows)
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(f"writing a sorted run of the input to {path.parent} failed: {exc}") from exc
        run.path, run.table, run.sort = path, None, None

    def settle(self) -> None:
        """Every spill in flight done (or called off), errors raised; the runs held in memory sorted."""
        for run in self.runs:
            run.settle()
        for run in self.runs:
            if run.table is not None and run.sort is not None:
                run.table, run.sort = _take(run.table, run.sort), None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    @staticmethod
    def _load(run: _Run) -> pa.Table:
        run.settle()
        if run.table is not None:
            return run.table
        with pa.OSFile(str(run.path)) as f:
            table = pa.ipc.open_file(f).read_all()
        run.path.unlink()
        return table

    # -- after the last chunk
    def finish_reading(self) -> None:
        """Raise the cast error of the input (if any); in the deferred case, validate and sort the
        runs now that the labels are known."""
        if self._failure is not None:
            raise self._failure[1]
        if self.rows == 0:
            raise InvalidInput("the file holds no examples", file=self.file)
        if self.deferred:
            self.labels = tuple(sorted(self._found_labels))
            self._start_report()
            raw, self.runs = self.runs, []
            for run in raw:
                table = self._load(run)
                run.table = None
                self._spill_held()
                self._keep(self._sorted(table, run.offset))
        self.settle()

    def order(self) -> tuple[np.ndarray, pa.Array]:
        """The canonical order (index into the runs' sorted rows, concatenated) and the ids in it
        (the runs' own ids are let go)."""
        ids = pa.chunked_array([r.ids for r in self.runs], pa.string())
        for r in self.runs:
            r.ids = None
        order = np.asarray(pc.sort_indices(ids))
        return order, ids.take(pa.array(order)).combine_chunks()

    def duplicates(self, order: np.ndarray, ids: pa.Array) -> tuple[int, list[dict[str, Any]]]:
        """(rows whose example id another row has too, the first five of them in input order)."""
        if len(ids) < 2:
            return 0, []
        same = np.asarray(pc.equal(ids.slice(1), ids.slice(0, len(ids) - 1)).fill_null(False))
        if not same.any():
            return 0, []
        dup = np.zeros(len(ids), dtype=bool)
        dup[1:] |= same
        dup[:-1] |= same
        at = np.flatnonzero(dup)
        positions = np.concatenate([r.positions for r in self.runs])[order[at]]
        first = np.argsort(positions, kind="stable")[:5]
        from registry.adapters.validation.gx import ROW

        return int(len(at)), [{"example_id": ids[int(at[k])].as_py(), ROW: int(positions[k]) + 1} for k in first]

    def report(self, order: np.ndarray, ids: pa.Array) -> dict[str, Any]:
        return self._report.report({"example_id": self.duplicates(order, ids)})

    def row_groups(self, order: np.ndarray, size: int) -> Iterator[pa.Table]:
        """The rows in canonical order, ``size`` rows at a time (a k-way merge of the sorted runs)."""
        starts = np.cumsum([0] + [r.rows for r in self.runs])
        run_of = (np.searchsorted(starts, order, side="right") - 1).astype(np.int32)
        within = order - starts[run_of]
        readers = [_RunReader(r) for r in self.runs]
        try:
            for g in range(0, len(order), size):
                runs, offs = run_of[g:g + size], within[g:g + size]
                local = np.empty(len(runs), dtype=np.int64)
                pieces, base = [], 0
                for r in np.unique(runs):
                    mask = runs == r
                    mine = offs[mask]
                    a, b = int(mine.min()), int(mine.max()) + 1
                    pieces.append(readers[r].slice(a, b))
                    local[mask] = base + (mine - a)
                    base += b - a
                # one piece per column first: Arrow's take on a column of many chunks (the runs' slices,
                # a spilled run's record batches) resolves the chunk of every row, ~25x slower than
                # the copy into one piece and a take from it
                group = pa.concat_tables(pieces).combine_chunks()
                del pieces
                if not (len(local) == group.num_rows and (np.diff(local) == 1).all() and local[0] == 0):
                    group = _take(group, pa.array(local))
                held = [group]
                del group
                yield held.pop()
        finally:
            for reader in readers:
                reader.close()


def _overlapped(groups: Iterator[pa.Table], on_group, pool: ThreadPoolExecutor) -> Iterator[pa.Table]:
    """``groups``, with ``on_group`` of each (the statistics) run on ``pool`` while the consumer writes
    it (both Arrow work that releases the GIL; the reading threads are done by now), finished before
    the next group is made: in order, one at a time, and no more groups in memory than before."""
    noting: Future | None = None
    try:
        for group in groups:
            noting = pool.submit(on_group, group)
            held = [group]
            del group
            yield held.pop()
            noting.result()
            noting = None
    finally:
        if noting is not None:  # stopped early (an error): nothing left running
            noting.cancel()
            try:
                noting.result()
            except BaseException:
                pass
        groups.close()


def ingest(artifacts: ArtifactStore, adapter: Any, path: Path, opts: Mapping[str, Any], *, spec: DatasetSpec,
           task_type: str, labels: tuple[str, ...] | None, max_text_chars: int, memory_mb: float) -> Ingested:
    """Read ``path`` with ``adapter`` and write its validated rows in canonical order to a temporary
    Parquet file in the store, in memory bounded by ``memory_mb`` (see the module docstring).
    Raises the errors the whole-input path raises: the adapter's, the cast's, the validation's."""
    from registry.adapters.artifacts.store import PARQUET_OPTIONS
    from registry.adapters.validation.gx import check_report
    from registry.domain.statistics import StatisticsAccumulator
    from registry.domain.versioning import ContentHasher

    with artifacts.scratch_folder() as scratch:
        work = Ingest(spec=spec, task_type=task_type, labels=labels, max_text_chars=max_text_chars, file=str(path),
                      scratch=scratch, memory_mb=memory_mb)
        try:
            work.read(input_chunks(adapter, path, opts, work.budget))
            work.finish_reading()
        finally:
            work.close()
        order, ids = work.order()
        report = work.report(order, ids)
        check_report(report, spec, file=str(path))
        hashes = np.concatenate([r.hashes for r in work.runs])[order]
        schema = spec.arrow_schema()
        stats = StatisticsAccumulator(task_type, schema.names)
        size = PARQUET_OPTIONS["row_group_size"]
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="statistics") as pool:
            tmp = artifacts.write_parquet_tmp_groups(schema, _overlapped(work.row_groups(order, size), stats.add,
                                                                         pool))
        try:
            hasher = ContentHasher(spec.ref, schema.names)
            for start in range(0, len(ids), 1 << 16):
                hasher.add_ids(ids.slice(start, 1 << 16))
            return Ingested(parquet=tmp, digest=hasher.hexdigest(hashes), rows=work.rows, statistics=stats.result(),
                            report=report, ids=ids, hashes=hashes, labels=work.labels)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def stored_keys(path: Path, spec_ref: str) -> tuple[pa.Array, np.ndarray, str]:
    """(example ids, row hashes, content hash) of a stored version's Parquet file, read a row group
    at a time."""
    import pyarrow.parquet as pq

    from registry.domain.versioning import ContentHasher, row_hashes

    ids, hashes = [], []
    with pq.ParquetFile(path) as f:
        hasher = ContentHasher(spec_ref, f.schema_arrow.names)
        for g in range(f.num_row_groups):
            group = f.read_row_group(g)
            column = group.column("example_id")
            hasher.add_ids(column)
            ids.append(column.combine_chunks())
            hashes.append(row_hashes(group))
            del group
    all_hashes = np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.uint64)
    id_array = pa.chunked_array(ids, pa.string()).combine_chunks() if ids else pa.array([], pa.string())
    return id_array, all_hashes, hasher.hexdigest(all_hashes)
