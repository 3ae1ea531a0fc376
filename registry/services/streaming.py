"""Evaluation that streams: judging, caching, predictions and scoring a chunk of rows at a time.

:func:`stream_run` is the body of :func:`registry.services.evaluation.run_evaluation` (every
evaluator but protocol votes). It reads the dataset version's Parquet a chunk at a time
(``ParquetFile.iter_batches``; :func:`chunk_rows` sizes the chunks from ``AUTORATER_MEMORY_MB``),
and for each chunk:

1. checks the rows against the version's content hash as it goes (:class:`StreamedVersionCheck`);
2. hashes the judge-visible inputs of every row at once (Arrow + xxh3,
   :func:`~registry.domain.judgments.example_input_hash_array`) and keeps each input once;
3. per order and sample, looks the judgments up in the cache in bulk
   (:meth:`~registry.adapters.store.abstract.AbstractStore.judgment_lookup`), judges the missing
   ones — the whole chunk at once through a heuristic's vectorised rule (``judge_arrow``), else in
   batches of ``batch_size`` through ``judge`` — and caches them in bulk (one segment per call, so
   an interrupted run resumes where it stopped);
4. writes the chunk's prediction rows (row groups of :data:`ROW_GROUP_ROWS`; orders and samples
   after the first go to spill files and are appended in order at the end, so the file has the
   layout, and for the same rows the bytes, of the whole-table writer) and keeps what scoring
   needs as arrays (verdict codes, scores, seconds, tokens: a few bytes per example and order).
   A fully cached run (only the example ids read, below) instead makes one pass per order and
   sample, each written straight into the file (no spill file; the same bytes), and looks every
   row up, repeated inputs too (de-duplicated only when a judgment turns out missing).

Then the metrics are computed from those arrays and the version's non-text columns
(:func:`registry.services.scoring.score_arrays`; the pairwise texts only as their length and list
features, computed per chunk). ``n_executed`` / ``n_cached`` count each distinct input once, as
before: an input repeated in a later chunk is reused from the judgments cached by the earlier one
and counted in neither.

What a run reuses (tests/services/test_eval_reuse.py): the version's content-hash check, once
passed in any process or by registration (a marker, :mod:`registry.services.store_maintenance`);
its judge-input hashes and text features (:class:`InputSidecar`, written by the first run that
reads the texts: a later run takes them from there, and when every judgment is cached reads only
the example ids); and, through ``reuse_scores``, the metric records of a run with byte-identical
predictions and the same scoring (:func:`registry.services.evaluation.reusable_scores`).

Results are those of the whole-table engine (tests/services/test_streaming_eval.py).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from registry.adapters.store.judgment_segments import JUDGMENT_FIELDS, hash_words, judgment_schema, sorted_search
from registry.domain.judgments import INPUT_FIELDS, ORDER_SWAPPED, example_input_hash_array
from registry.errors import NotFound, RegistryError
from registry.services.app import RegistryContext
from registry.services.evaluation import PREDICTION_SCHEMA, _to_cache
from registry.services.store_maintenance import sidecar_path

ROW_GROUP_ROWS = 1 << 20
"""Rows per row group of a predictions file: pyarrow's default, so a file is what ``write_table``
of the whole table wrote."""
MIN_CHUNK_ROWS, MAX_CHUNK_ROWS = 1024, 1 << 18
WORKING_COPIES = 6
"""Copies of a chunk's decoded rows alive at once (the batch, its hash input, the shown table, the
heuristic's keys, the predictions, slack): a chunk takes a quarter of the memory setting over this."""

Progress = Callable[[int, int], None]


def chunk_rows(memory_mb: float, bytes_per_row: float) -> int:
    """Rows per chunk for a dataset of ``bytes_per_row`` (decoded), under ``memory_mb``."""
    budget = memory_mb * 2**20 / 4
    rows = int(budget / (WORKING_COPIES * max(bytes_per_row, 64.0)))
    return max(MIN_CHUNK_ROWS, min(MAX_CHUNK_ROWS, rows))


def local_path(reg: RegistryContext, relpath: str) -> Path:
    """The stored file, pulled from the remote when it is only there."""
    path = reg.artifacts.path(relpath)
    if not path.exists():
        if Path(str(path) + ".dvc").exists() and reg.artifacts.remote:
            reg.artifacts.pull(relpath)
        if not path.exists():
            raise NotFound(f"artifact {relpath} is missing from the store {reg.artifacts.root}; "
                           f"run `autorater store pull`")
    return path


# ----------------------------------------------------------------------------- predictions file
class PredictionWriter:
    """The predictions Parquet of a run, written as rows arrive for (order, sample) slots: slot 0
    straight into the file, later slots into spill files appended in slot order by :meth:`close`
    (a run writing its slots one after the other calls :meth:`next_slot` between them: no spill)."""

    def __init__(self, folder: Path, slots: int, *, buffer_bytes: int) -> None:
        import pyarrow.parquet as pq

        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.stem = uuid.uuid4().hex
        self.path = folder / f"{self.stem}.parquet"
        self._writer = pq.ParquetWriter(self.path, PREDICTION_SCHEMA, compression="zstd")
        self._buffer: list[pa.Table] = []
        self._rows = 0
        self._bytes = 0
        self.buffer_bytes = max(buffer_bytes, 1 << 20)
        self._spills: dict[int, tuple[Path, Any, Any]] = {}
        self.slots = slots
        self._direct = 0

    def next_slot(self) -> None:
        """The slot written straight into the file is whole: the next one is written there too."""
        if self._direct + 1 in self._spills:
            raise RuntimeError("the next slot was spilled already")
        self._direct += 1

    def write(self, slot: int, table: pa.Table) -> None:
        if slot == self._direct:
            self._append(table)
            return
        if slot not in self._spills:
            path = self.folder / f"{self.stem}.slot{slot}.arrow"
            sink = pa.OSFile(str(path), "wb")
            self._spills[slot] = (path, sink, pa.ipc.new_stream(sink, PREDICTION_SCHEMA))
        self._spills[slot][2].write_table(table)

    def _append(self, table: pa.Table) -> None:
        self._buffer.append(table)
        self._rows += table.num_rows
        self._bytes += table.nbytes
        while self._rows >= ROW_GROUP_ROWS:
            self._flush(ROW_GROUP_ROWS)
        if self._bytes >= self.buffer_bytes:
            self._flush(self._rows)

    def _flush(self, rows: int) -> None:
        if not self._rows:
            return
        table = pa.concat_tables(self._buffer)
        head, rest = table.slice(0, rows), table.slice(rows)
        self._writer.write_table(head.combine_chunks(), row_group_size=max(rows, 1))
        self._buffer = [rest] if rest.num_rows else []
        self._rows, self._bytes = rest.num_rows, rest.nbytes if rest.num_rows else 0

    def close(self) -> Path:
        """Append the spilled slots, write the last row group, close the file; its path."""
        for slot in range(1, self.slots):
            if slot not in self._spills:
                continue
            path, sink, stream = self._spills.pop(slot)
            stream.close()
            sink.close()
            with pa.OSFile(str(path), "rb") as source, pa.ipc.open_stream(source) as reader:
                for batch in reader:
                    self._append(pa.Table.from_batches([batch]))
            path.unlink(missing_ok=True)
        self._flush(self._rows)
        self._writer.close()
        return self.path

    def discard(self) -> None:
        for path, sink, stream in self._spills.values():
            try:
                stream.close()
                sink.close()
            except Exception:  # noqa: BLE001 - best effort on the failure path
                pass
            path.unlink(missing_ok=True)
        self._spills.clear()
        try:
            self._writer.close()
        except Exception:  # noqa: BLE001
            pass
        self.path.unlink(missing_ok=True)


def place_predictions(reg: RegistryContext, tmp: Path) -> tuple[str, str]:
    """Move a written predictions file into the store under its content address; (relpath, sha256)."""
    from registry.hashing import sha256_file

    digest = sha256_file(tmp)
    relpath = reg.artifacts.relpath_for("predictions", digest, ".parquet")
    if reg.artifacts.exists(relpath):
        tmp.unlink(missing_ok=True)
        reg.artifacts.touch(relpath)  # reused (e.g. left by a killed run): young again for `store gc`
        return relpath, digest
    named = tmp.with_name(f"{digest}.{uuid.uuid4().hex}.parquet")  # own file: writers race
    os.replace(tmp, named)
    with reg.artifacts.placing(named, relpath):
        pass
    return relpath, digest


# ----------------------------------------------------------------------------- judgments
def _shown(table: pa.Table, order: int) -> pa.Table:
    """The examples as the judge sees them in ``order`` (pairwise order 1: responses swapped)."""
    if order != ORDER_SWAPPED or "response_a" not in table.column_names:
        return table
    a, b = table.column("response_a"), table.column("response_b")
    table = table.set_column(table.column_names.index("response_a"), "response_a", b)
    return table.set_column(table.column_names.index("response_b"), "response_b", a)


def _to_cache_table(hashes: pa.Array, judged: pa.Table, order: int) -> pa.Table:
    """Verdicts on the examples as shown (``label``, ``score`` and ``seconds`` columns; others
    optional) → cache rows in the original orientation (as :func:`registry.services.evaluation._to_cache`)."""
    n = len(hashes)

    def col(name: str, kind, default=None):
        if name in judged.column_names:
            return judged.column(name).cast(kind)
        return pa.nulls(n, kind) if default is None else pa.repeat(pa.scalar(default, kind), n)

    label, score, prob = col("label", pa.string()), col("score", pa.float64()), col("prob_a", pa.float64())
    if order == ORDER_SWAPPED:
        import pyarrow.compute as pc

        # "A" <-> "B", other labels as they are; the score's sign flips where the label is A, B or tie
        is_a, is_b = pc.fill_null(pc.equal(label, "A"), False), pc.fill_null(pc.equal(label, "B"), False)
        label = pc.if_else(is_a, "B", pc.if_else(is_b, "A", label))
        if score.null_count < n:
            flip = np.asarray(pc.or_(pc.or_(is_a, is_b), pc.fill_null(pc.equal(label, "tie"), False)), dtype=bool)
            s = np.asarray(score.fill_null(np.nan).to_numpy(zero_copy_only=False), dtype=np.float64)
            score = pa.array(np.where(flip, -s, s), type=pa.float64(), mask=~np.asarray(score.is_valid()))
        prob = pc.subtract(pa.scalar(1.0), prob)
    return pa.table({"example_hash": hashes, "verdict": label, "score": score, "prob_a": prob,
                     "parsed": col("parsed", pa.bool_(), True), "raw": col("raw", pa.string()),
                     "prompt_tokens": col("prompt_tokens", pa.int32(), 0),
                     "completion_tokens": col("completion_tokens", pa.int32(), 0),
                     "seconds": col("seconds", pa.float64(), 0.0)}, schema=judgment_schema())


def _records_table(hashes: pa.Array, records) -> pa.Table:
    """Cache rows (:class:`~registry.domain.entities.JudgmentRecord` list) → a judgment table."""
    v = [r.verdict for r in records]
    return pa.table({"example_hash": hashes, "verdict": [x.label for x in v], "score": [x.score for x in v],
                     "prob_a": [x.prob_a for x in v], "parsed": [bool(x.parsed) for x in v], "raw": [x.raw for x in v],
                     "prompt_tokens": [int(x.prompt_tokens or 0) for x in v],
                     "completion_tokens": [int(x.completion_tokens or 0) for x in v],
                     "seconds": [float(x.seconds or 0.0) for x in v]}, schema=judgment_schema())


def _first_occurrences(hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of each distinct hash's first row, in order of first appearance; each row's distinct hash)."""
    n = len(hi)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.argsort(hi, kind="stable")       # by hash, then by row: the high word's order, unless
    shi, slo = hi[order], lo[order]              # two hashes share it (then by both words)
    if ((shi[1:] == shi[:-1]) & (slo[1:] != slo[:-1])).any():
        order = np.lexsort((np.arange(n), lo, hi))
        shi, slo = hi[order], lo[order]
    start = np.ones(n, bool)
    start[1:] = (shi[1:] != shi[:-1]) | (slo[1:] != slo[:-1])
    group = np.cumsum(start) - 1                 # group of each sorted position
    firsts = order[start]                        # first row of each group (rows ascending within a group)
    rank = np.argsort(firsts, kind="stable")     # groups in order of first appearance
    renumber = np.empty(len(firsts), np.int64)
    renumber[rank] = np.arange(len(firsts))
    inverse = np.empty(n, np.int64)
    inverse[order] = renumber[group]
    return firsts[rank], inverse


class _SeenKeys:
    """The distinct example hashes of the chunks already judged in this run."""

    def __init__(self) -> None:
        self.hi = np.zeros(0, np.uint64)
        self.lo = np.zeros(0, np.uint64)

    def contains(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        if not len(self.hi):
            return np.zeros(len(hi), bool)
        pos = sorted_search(self.hi, hi)
        ok = pos < len(self.hi)
        ok[ok] = self.hi[pos[ok]] == hi[ok]
        same = ok.copy()
        same[ok] = self.lo[pos[ok]] == lo[ok]
        for k in np.flatnonzero(ok & ~same):  # equal high words, not the first low word: over the run of equals
            p = pos[k]
            while p < len(self.hi) and self.hi[p] == hi[k] and self.lo[p] != lo[k]:
                p += 1
            same[k] = p < len(self.hi) and self.hi[p] == hi[k] and self.lo[p] == lo[k]
        return same

    def add(self, hi: np.ndarray, lo: np.ndarray) -> None:
        """Add distinct hashes not yet kept: the new ones sorted, then merged into the kept sorted
        arrays (one copy, not a sort of everything kept at every chunk); the whole set sorted again
        only when a new high word equals a kept one."""
        if not len(hi):
            return
        order = np.lexsort((lo, hi))
        hi, lo = hi[order], lo[order]
        at = np.searchsorted(self.hi, hi)
        inside = at < len(self.hi)
        if (self.hi[at[inside]] == hi[inside]).any():
            h, low = np.concatenate([self.hi, hi]), np.concatenate([self.lo, lo])
            order = np.lexsort((low, h))
            self.hi, self.lo = h[order], low[order]
            return
        self.hi, self.lo = np.insert(self.hi, at, hi), np.insert(self.lo, at, lo)


class _NeedTexts(Exception):
    """A judgment is missing in a pass that did not read the texts."""


SIDECAR_FORMAT = 2


class InputSidecar:
    """A version's judge-input hashes (per set of input fields) and pairwise text features (length,
    list), kept beside the store's files as an Arrow IPC file named by the version's content hash:
    what a run computes from the texts, so a later run of any evaluator reading the same fields
    reads 16 bytes (plus 10 for the features) a row instead of the texts. Written once, by the first
    run that reads the texts (atomically, on success); a version with other content has another
    content hash, so another file."""

    def __init__(self, reg: RegistryContext, version, fields: tuple[str, ...] | None) -> None:
        import hashlib
        import json

        self.task_type = version.task_type
        names = list(fields or INPUT_FIELDS[version.task_type])
        tag = hashlib.sha256(json.dumps([SIDECAR_FORMAT, version.content_hash, version.task_type, names])
                             .encode()).hexdigest()[:24]
        self.path = sidecar_path(reg, version.content_hash, tag)
        self._artifacts = reg.artifacts

    def readable(self, n_rows: int) -> bool:
        """Whether the file is there, whole (``n_rows`` rows)."""
        if not self.path.exists():
            return False
        try:
            with pa.memory_map(str(self.path)) as source:
                reader = pa.ipc.open_file(source)
                return sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches)) == n_rows
        except (OSError, pa.ArrowInvalid):
            return False

    def open(self) -> pa.Table:
        """The kept columns (memory-mapped)."""
        with pa.memory_map(str(self.path)) as source:
            return pa.ipc.open_file(source).read_all()

    @staticmethod
    def part(kept: pa.Table, offset: int, n: int
             ) -> tuple[pa.Array, dict[str, tuple[np.ndarray, np.ndarray]], np.ndarray]:
        """(input hashes, text features, whether each row is the first of the version with its
        input) of rows ``offset`` to ``offset + n``."""
        part = kept.slice(offset, n)
        feats = {}
        for f in ("response_a", "response_b"):
            if f"{f}.length" in part.column_names:
                feats[f] = (np.asarray(part.column(f"{f}.length").to_numpy(), dtype=float),
                            np.asarray(part.column(f"{f}.list").to_numpy(), dtype=bool))
        firsts = np.asarray(part.column("first").to_numpy(), dtype=bool)
        return part.column("hash").combine_chunks(), feats, firsts

    def builder(self) -> _SidecarBuilder:
        return _SidecarBuilder(self.path, self._artifacts)


class _SidecarBuilder:
    """Writes a sidecar in ``store/tmp`` (where ``store gc`` sweeps what a killed run left), renamed
    into place by :meth:`commit`."""

    def __init__(self, path: Path, artifacts) -> None:
        self.path = path
        self._artifacts = artifacts
        self.tmp: Path | None = None
        self._sink = None
        self._writer = None

    def add(self, keys: pa.Array, features: dict[str, tuple[np.ndarray, np.ndarray]], firsts: np.ndarray) -> None:
        cols = {"hash": keys, "first": pa.array(firsts)}
        for f, (length, lists) in sorted(features.items()):
            cols[f"{f}.length"] = pa.array(length.astype(np.int64))
            cols[f"{f}.list"] = pa.array(lists.astype(bool))
        batch = pa.RecordBatch.from_pydict(cols)
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = self._artifacts.tmp_path(".sidecar.arrow")
            self._sink = pa.OSFile(str(self.tmp), "wb")
            self._writer = pa.ipc.new_file(self._sink, batch.schema)
        self._writer.write_batch(batch)

    def commit(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._sink.close()
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
                self._sink.close()
        except Exception:  # noqa: BLE001 - best effort on the failure path
            pass
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)


@dataclass
class StreamResult:
    """What :func:`stream_run` hands back for the run's row."""

    predictions_uri: str
    predictions_sha256: str
    metrics: Any
    n_examples: int
    n_judgments: int
    executed: int
    cached: int
    prompt_tokens: int
    completion_tokens: int
    stage_stats: dict[str, int] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)
    """Chunk size, chunks, and the wall seconds of each step (read, check, hash, lookup, judge, write,
    place, score): what the run's provenance keeps as ``streaming``."""


@dataclass
class _Slot:
    order: int
    sample: int
    lookup: Any
    parts: list = field(default_factory=list)


def stream_run(reg: RegistryContext, ev_sha: str, version, plugin_cls, config: dict, ctx, plan, *,
               batch_size: int, on_progress: Progress | None, seed: int, n_boot: int,
               price_per_1k_tokens: float | None, slice_by, min_slice_size: int,
               rows_per_chunk: int | None = None, stage_store_factory: Callable[[], Any] | None = None,
               reuse_scores: Callable[[str], Any] | None = None) -> StreamResult:
    """Judge, cache, write and score ``version`` a chunk at a time (module docstring).
    ``reuse_scores(predictions sha256)``: the metric records already computed for byte-identical
    predictions under the same scoring (``None``: score them)."""
    import pyarrow.parquet as pq

    from registry.services.scoring import PredictionArrays, check_slicing, score_arrays, text_features
    from registry.services.store_maintenance import StreamedVersionCheck

    store = reg.store
    memory = int(reg.settings.memory_mb * 2**20)
    path = local_path(reg, version.storage_uri)
    task_type = version.task_type
    fields = plugin_cls.input_fields.get(task_type)
    with pq.ParquetFile(path) as pf:
        n_total = pf.metadata.num_rows
        rows = rows_per_chunk or chunk_rows(reg.settings.memory_mb, _row_bytes(pf))
        names = pf.schema_arrow.names
        check = StreamedVersionCheck(reg, version, names)
        sidecar = InputSidecar(reg, version, fields)
        # the texts are not read when the file was checked already and its inputs' hashes and
        # features are kept: unless a judgment is missing (then the pass starts again with them)
        light = not check.needed and sidecar.readable(n_total)
        clock: dict[str, float] = dict.fromkeys(("read", "check", "hash", "lookup", "judge", "write", "place",
                                                 "score"), 0.0)
        t = time.perf_counter()

        def lap(step: str) -> None:
            nonlocal t
            now = time.perf_counter()
            clock[step] += now - t
            t = now

        while True:
            slots = [_Slot(o, s, store.judgment_lookup(ev_sha, o, s, memory_bytes=memory // 8 // max(
                len(plan.orders) * plan.samples, 1))) for o in plan.orders for s in range(plan.samples)]
            writer = PredictionWriter(reg.artifacts.root / "tmp", len(slots), buffer_bytes=memory // 8)
            # kept hashes only for a file already checked: else the texts judged might not be the ones hashed
            kept_inputs = sidecar.open() if not check.needed and sidecar.readable(n_total) else None
            building = sidecar.builder() if kept_inputs is None else None
            vocab: dict[str, int] = {}
            features: dict[str, list] = {}
            seen = _SeenKeys()
            behind = None   # a chunk whose texts' features are still being computed (see _collect_features)
            plugin = None
            pool: ThreadPoolExecutor | None = None
            saver: ThreadPoolExecutor | None = None   # the vectorised judgments' cache writes (see _judge)
            executed = cached = prompt_tokens = completion_tokens = 0
            done, total = 0, n_total * len(slots)
            chunks = 0
            stage_stats: dict[str, int] = {}
            try:
                for step, active, offset, batch in _passes(pf, rows, light, slots, writer):
                    table = pa.Table.from_batches([batch])
                    n = table.num_rows
                    chunks += step == 0
                    lap("read")
                    if step == 0:
                        check.add(table)
                    lap("check")
                    pending = []
                    if kept_inputs is not None:
                        keys, kept, firsts = sidecar.part(kept_inputs, offset, n)
                        for f, values in kept.items() if step == 0 else ():
                            features.setdefault(f, []).append(values)
                    else:
                        if task_type == "pairwise":  # the texts' features on other threads (Arrow releases the GIL)
                            if pool is None:
                                pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="text-features")
                            pending = [(f, pool.submit(text_features, table.column(f)))
                                       for f in ("response_a", "response_b") if f in table.column_names]
                        keys = example_input_hash_array(table, task_type, fields)
                    if kept_inputs is not None:
                        # every row looked up, repeated inputs too (each gets its input's judgment):
                        # de-duplicated only when a judgment is missing, to judge each input once
                        first = inverse = None
                        ukeys, new = keys, firsts
                    else:
                        hi, lo = hash_words(keys)
                        first, inverse = _first_occurrences(hi, lo)
                        ukeys = keys.take(pa.array(first))
                        new = ~seen.contains(hi[first], lo[first])
                        firsts = np.zeros(n, bool)
                        firsts[first[new]] = True
                        seen.add(hi[first][new], lo[first][new])
                        # the features are collected (and the sidecar written) a chunk later: their
                        # threads run while this chunk is judged and written, one chunk at most behind
                        _collect_features(behind, building, features)
                        behind = (keys, pending, firsts, step == 0)
                    lap("hash")
                    examples = None  # the chunk's rows to judge, taken once for every slot that misses them
                    for k, slot in active:
                        found, got = slot.lookup.find(ukeys)
                        if first is None and not found.all():
                            first, inverse = _first_occurrences(*hash_words(keys))
                            ukeys, new = keys.take(pa.array(first)), firsts[first]   # inputs first seen here: kept
                            found, got = found[first], got.take(pa.array(first))    # the same lookup, not made again
                        cached += int((found & new).sum())
                        missing = np.flatnonzero(~found)
                        lap("lookup")
                        if len(missing):
                            if light:
                                raise _NeedTexts
                            if plugin is None:
                                plugin = plugin_cls(config)
                                if hasattr(plugin, "stage_store") and stage_store_factory is not None:
                                    plugin.stage_store = stage_store_factory()
                            rows_missing = first[missing]
                            if examples is None or not np.array_equal(examples[0], rows_missing):
                                examples = (rows_missing, _examples(table, rows_missing, plugin))
                            if saver is None and not store.in_unit_of_work():
                                saver = ThreadPoolExecutor(max_workers=1, thread_name_prefix="judgment-save")
                            judged = _judge(plugin, ctx, examples[1], ukeys.take(pa.array(missing)), slot, batch_size,
                                            saver)
                            executed += len(missing)
                            if len(missing) == len(found):  # none cached: the judged rows are the rows
                                got = judged.select(list(JUDGMENT_FIELDS))
                            else:
                                index = np.where(found, np.arange(len(found)), 0)
                                index[missing] = len(found) + np.arange(len(missing))
                                got = pa.concat_tables([got, judged.select(list(JUDGMENT_FIELDS))]).take(pa.array(index))
                            lap("judge")
                        counted = np.flatnonzero(new)
                        pt = got.column("prompt_tokens").take(pa.array(counted)).fill_null(0)
                        ct = got.column("completion_tokens").take(pa.array(counted)).fill_null(0)
                        prompt_tokens += int(np.asarray(pt.to_numpy(zero_copy_only=False), np.int64).sum())
                        completion_tokens += int(np.asarray(ct.to_numpy(zero_copy_only=False), np.int64).sum())
                        per_row = got if inverse is None else got.take(pa.array(inverse))
                        predictions = _prediction_rows(table.column("example_id"), slot, per_row)
                        writer.write(k, predictions)
                        slot.parts.append(PredictionArrays.from_columns(predictions, offset + np.arange(n), vocab))
                        done += n
                        lap("write")
                        if on_progress:
                            on_progress(done, total)
                check.finish()
                lap("check")
                _collect_features(behind, building, features)
                lap("hash")
                for slot in slots:
                    slot.lookup.wait()
                lap("judge")
                tmp = writer.close()
                if building is not None:
                    building.commit()
                    building = None
                lap("write")
            except _NeedTexts:  # a judgment to make: again, reading the texts
                writer.discard()
                light = False
                continue
            except BaseException:
                writer.discard()
                if building is not None:
                    building.discard()
                raise
            finally:
                if pool is not None:
                    pool.shutdown(wait=True, cancel_futures=True)
                if saver is not None:   # the judgments made are cached, whatever happened (a rerun resumes)
                    saver.shutdown(wait=True)
                if plugin is not None:
                    for key, value in getattr(plugin, "stage_stats", {}).items():
                        stage_stats[key] = stage_stats.get(key, 0) + value
                    plugin.close()
            break
    for slot in slots:  # the decoded segments it keeps: not needed to score
        slot.lookup = None
    uri, digest = place_predictions(reg, tmp)
    lap("place")
    reused = reuse_scores(digest) if reuse_scores is not None else None
    if reused is not None:
        lap("score")
        return StreamResult(predictions_uri=uri, predictions_sha256=digest, metrics=reused, n_examples=n_total,
                            n_judgments=n_total * len(slots), executed=executed, cached=cached,
                            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                            stage_stats=stage_stats, profile=_profile(rows, chunks, clock))
    # scoring: the arrays in the predictions' row order (slot by slot), the version's non-text columns
    arrays = PredictionArrays.concat([p for slot in slots for p in slot.parts], vocab)
    table = scoring_table(reg, version, slice_by)
    columns = check_slicing(table, slice_by, min_slice_size)
    feats = {f: (np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts]))
             for f, parts in features.items()} if features else None
    metrics = score_arrays(task_type, table, arrays, columns, ctx=ctx, seed=seed, n_boot=n_boot,
                           price_per_1k_tokens=price_per_1k_tokens, min_slice_size=min_slice_size,
                           features=feats, ahead_bytes=memory // 8)
    lap("score")
    return StreamResult(predictions_uri=uri, predictions_sha256=digest, metrics=metrics, n_examples=n_total,
                        n_judgments=n_total * len(slots), executed=executed, cached=cached,
                        prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, stage_stats=stage_stats,
                        profile=_profile(rows, chunks, clock))


def _collect_features(behind, building, features: dict[str, list]) -> None:
    """Wait for a chunk's text features (``behind``: its input hashes, the features' futures, which
    rows first show their input, and whether the pass is the first; ``None``: no chunk), add them to
    the run's and write the chunk's rows of the input sidecar (``building``)."""
    if behind is not None:
        keys, pending, firsts, first_pass = behind
        kept = {f: future.result() for f, future in pending}
        for f, values in kept.items() if first_pass else ():
            features.setdefault(f, []).append(values)
        building.add(keys, kept, firsts)


def _passes(pf, rows: int, light: bool, slots: list[_Slot], writer: PredictionWriter):
    """(pass, its (index, slot) pairs, row offset, batch) of the passes over the file: one pass for
    all the slots; or, when only the example ids are read (``light``: every judgment cached), one
    pass per slot, each slot's predictions written straight into the file (no spill file)."""
    groups = [[(k, slot)] for k, slot in enumerate(slots)] if light else [list(enumerate(slots))]
    for step, active in enumerate(groups):
        if step:
            writer.next_slot()
        offset = 0
        for batch in pf.iter_batches(batch_size=rows, columns=["example_id"] if light else None, use_threads=True):
            yield step, active, offset, batch
            offset += batch.num_rows


def _profile(rows: int, chunks: int, clock: dict[str, float]) -> dict[str, Any]:
    return {"chunk_rows": rows, "chunks": chunks, "seconds": {k: round(v, 3) for k, v in clock.items()}}


def _row_bytes(pf) -> float:
    """Decoded (Arrow) bytes per row of a Parquet file, from its first rows (the file's own sizes
    undercount dictionary-encoded text)."""
    if pf.metadata.num_rows == 0:
        return 0.0
    first = next(pf.iter_batches(batch_size=MIN_CHUNK_ROWS))
    return first.nbytes / max(first.num_rows, 1)


def _examples(table: pa.Table, rows: np.ndarray, plugin) -> pa.Table:
    """The chunk's ``rows`` to judge: only the columns a vectorised plugin says it reads
    (``arrow_columns()``; all of them else), not copied when they are every row in order."""
    wanted = getattr(plugin, "arrow_columns", None)
    names = wanted() if wanted is not None else None
    if names is not None:
        table = table.select([c for c in table.column_names if c in names])
    if len(rows) == table.num_rows and (len(rows) == 0 or (rows[0] == 0 and bool((np.diff(rows) == 1).all()))):
        return table
    return table.take(pa.array(rows))


def _judge(plugin, ctx, examples: pa.Table, hashes: pa.Array, slot: _Slot, batch_size: int,
           saver: ThreadPoolExecutor | None = None) -> pa.Table:
    """Judge the (distinct, missing) examples in ``slot``'s order and sample and cache the judgments:
    all at once through the plugin's vectorised rule when it has one (cached on ``saver``'s thread
    when given, while the run goes on), else ``batch_size`` at a time (each batch cached before the
    next is judged)."""
    shown = _shown(examples, slot.order)
    vectorised = getattr(plugin, "judge_arrow", None)
    judged = vectorised(ctx, shown, sample=slot.sample) if vectorised is not None else None
    if judged is not None:
        if judged.num_rows != len(hashes):
            raise RegistryError(f"evaluator returned {judged.num_rows} verdicts for {len(hashes)} examples")
        out = _to_cache_table(hashes, judged, slot.order)
        if saver is not None:
            slot.lookup.save_later(out, saver)
        else:
            slot.lookup.save(out)
        return out
    parts = []
    for start in range(0, len(hashes), batch_size):
        rows = shown.slice(start, batch_size).to_pylist()
        verdicts = plugin.judge(ctx, rows, sample=slot.sample)
        if len(verdicts) != len(rows):
            raise RegistryError(f"evaluator returned {len(verdicts)} verdicts for {len(rows)} examples")
        part = _records_table(hashes.slice(start, batch_size),
                              [_to_cache("", "", slot.order, slot.sample, v) for v in verdicts])
        slot.lookup.save(part)  # committed per batch: an interrupted run resumes here
        parts.append(part)
    return pa.concat_tables(parts)


def _prediction_rows(example_ids, slot: _Slot, judged: pa.Table) -> pa.Table:
    """One chunk's prediction rows of one (order, sample) (as the whole-table engine wrote them)."""
    n = judged.num_rows
    return pa.table({
        "example_id": example_ids.cast(pa.string()),
        "order": pa.array(np.full(n, slot.order, np.int8)),
        "sample": pa.array(np.full(n, slot.sample, np.int16)),
        "verdict": judged.column("verdict"),
        "score": judged.column("score"),
        "prob_a": judged.column("prob_a"),
        "parsed": _filled(judged.column("parsed"), False),
        "raw": judged.column("raw"),
        "prompt_tokens": _filled(judged.column("prompt_tokens"), 0),
        "completion_tokens": _filled(judged.column("completion_tokens"), 0),
        "seconds": _filled(judged.column("seconds"), 0.0),
    }, schema=PREDICTION_SCHEMA)


def _filled(column, value):
    """``column`` with its nulls replaced by ``value`` (no copy when it has none)."""
    return column.fill_null(value) if column.null_count else column


def scoring_table(reg: RegistryContext, version, slice_by=None) -> pa.Table:
    """The version's rows without the judge-input texts (:data:`~registry.domain.judgments.INPUT_FIELDS`;
    read only when named in ``slice_by``): every other column as stored, those as all-null columns of
    their type, so the schema — what slicing lists and checks — is the version's."""
    import pyarrow.parquet as pq

    path = local_path(reg, version.storage_uri)
    wanted = set(slice_by or []) if not isinstance(slice_by, str) else {slice_by}
    texts = set(INPUT_FIELDS.get(version.task_type, ()))
    with pq.ParquetFile(path) as pf:
        schema = pf.schema_arrow
        keep = [f.name for f in schema if f.name not in texts or f.name in wanted]
        table = pf.read(columns=keep)
    out = []
    for f in schema:
        out.append(table.column(f.name) if f.name in keep else pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(out, schema=schema.remove_metadata())


__all__ = ["PredictionWriter", "StreamResult", "chunk_rows", "place_predictions",
           "scoring_table", "stream_run"]
