"""The judgment cache in bulk: Arrow *segments* beside the per-judgment rows.

The cache is keyed, as ever, by (evaluator hash or stage key, example input hash, order, sample).
One judgment at a time (:meth:`~registry.adapters.store.abstract.AbstractStore.save_judgments`:
protocol stage outputs, votes) it is one row of the ``judgments`` table. Many at a time (an
evaluation run's chunk, :meth:`JudgmentLookup.save`) it is a *segment*: the judgments of one
(key, order, sample), sorted by example hash, as one compressed Arrow IPC stream, stored in the
same ``judgments`` table as two rows of that (key, order, sample) whose ``example_hash`` cannot be
an example's (an example hash is 32 lowercase hex digits; these start with ``#``):

* ``#i<id>`` — the segment's index: the first 64 bits of each example hash (sorted, uint64 little
  endian), base64 in ``raw``; ``prompt_tokens`` holds the number of judgments;
* ``#d<id>`` — the judgments themselves (:data:`JUDGMENT_SCHEMA`), base64 in ``raw``.

``<id>`` (30 characters) starts with the creation time in nanoseconds (16 hex digits), so ids sort
oldest to newest. Keeping segments in the ``judgments`` table needs no schema change: migrations
down and up keep them like any cached judgment, and older code never matches them.

A lookup (:class:`JudgmentLookup`) reads the indexes of its (key, order, sample) once, then for each
batch of example hashes binary-searches every index (newest segment first), fetches and decodes
only the segments that hold a hit (kept in a cache bounded by the memory given), and checks the
full 128-bit hash; per-judgment rows win over segments (they are the explicit, replacing writes).
A save writes one segment; when eight segments of a (key, order, sample) have the same size tier
(⌊log₈ n⌋) they are merged into one (a segment stops growing at :data:`MAX_SEGMENT_ROWS`), so a
lookup searches a few dozen segments whatever the number of runs.
"""

from __future__ import annotations

import base64
import binascii
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from registry.domain.arrays import one_array

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pyarrow as pa

FORMAT = "seg1"
"""``verdict`` of a segment's rows: the segment format."""
INDEX_PREFIX, DATA_PREFIX = "#i", "#d"
MAX_SEGMENT_ROWS = 1 << 20
"""Segments at least this large are never merged again."""
FANOUT = 8
"""Segments of one size tier merged at a time."""
COMPRESS_ROWS = 4096
"""Segments of at least this many judgments are zstd-compressed (smaller ones: not worth the time)."""
JUDGMENT_FIELDS = ("verdict", "score", "prob_a", "parsed", "raw", "prompt_tokens", "completion_tokens", "seconds")
"""The columns of a cached judgment besides its key, in the ``judgments`` table's order."""


def judgment_schema():
    """Arrow schema of cached judgments: ``example_hash`` (16 bytes: the xxh3-128 digest) and
    :data:`JUDGMENT_FIELDS`."""
    import pyarrow as pa

    return pa.schema([pa.field("example_hash", pa.binary(16)), pa.field("verdict", pa.string()),
                      pa.field("score", pa.float64()), pa.field("prob_a", pa.float64()),
                      pa.field("parsed", pa.bool_()), pa.field("raw", pa.string()),
                      pa.field("prompt_tokens", pa.int32()), pa.field("completion_tokens", pa.int32()),
                      pa.field("seconds", pa.float64())])


def hash_words(hashes) -> tuple[np.ndarray, np.ndarray]:
    """(high, low) 64-bit words of 16-byte example hashes (an Arrow ``binary(16)`` array)."""
    import numpy as np

    hashes = one_array(hashes)
    n = len(hashes)
    if n == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    if hashes.null_count:
        raise ValueError("example hashes may not be null")
    buf = hashes.buffers()[1]
    words = np.frombuffer(buf, dtype=">u8", count=2 * (hashes.offset + n))[2 * hashes.offset:].reshape(n, 2)
    return words[:, 0].astype(np.uint64), words[:, 1].astype(np.uint64)


def hex_to_binary(hexes: Iterable[str]):
    """32-hex-digit example hashes → an Arrow ``binary(16)`` array."""
    import pyarrow as pa

    return pa.array([bytes.fromhex(h) for h in hexes], type=pa.binary(16))


def binary_to_hex(hashes) -> list[str]:
    """An Arrow ``binary(16)`` array → 32-hex-digit strings."""
    return [b.hex() for b in hashes.to_pylist()]


def new_segment_id(newest: str | None = None) -> str:
    """30 characters: creation time (ns, 16 hex digits; at least ``newest``'s) + 14 random hex."""
    t = f"{time.time_ns():016x}"
    if newest is not None and newest[:16] > t:
        t = newest[:16]
    return t + secrets.token_hex(7)


def encode(table) -> tuple[int, str, str, pa.Table]:
    """A segment of ``table`` (:func:`judgment_schema` columns): (rows, index text, data text, the
    sorted table). Several judgments of one example: the last one is kept."""
    n, index, data, table, _, _ = _encode(table)
    return n, index, data, table


def _encode(table) -> tuple[int, str, str, pa.Table, np.ndarray, np.ndarray]:
    """:func:`encode`, and the sorted table's (high, low) hash words."""
    table, hi, lo = _sorted(table)
    index, data = _serialize(table, hi)
    return len(hi), index, data, table, hi, lo


def _sorted(table) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """The segment's rows: ``table`` by example hash, one row per hash (the last one); with the
    (high, low) words of its hashes."""
    import numpy as np
    import pyarrow as pa

    table = table.select(judgment_schema().names).cast(judgment_schema())
    hi, lo = hash_words(table.column("example_hash"))
    order = _by_hash(hi, lo)
    hi, lo = hi[order], lo[order]
    keep = np.ones(len(order), bool)
    keep[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
    if not keep.all():
        order, hi, lo = order[keep], hi[keep], lo[keep]
    return table.take(pa.array(order)), hi, lo


def _serialize(table, hi: np.ndarray) -> tuple[str, str]:
    """(index text, data text) of a segment's sorted rows."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd" if table.num_rows >= COMPRESS_ROWS else None)
    with pa.ipc.new_stream(sink, table.schema, options=options) as w:
        w.write_table(table)
    data = base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii")
    index = base64.b64encode(hi.astype("<u8").tobytes()).decode("ascii")
    return index, data


def _by_hash(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """``np.lexsort((positions reversed, lo, hi))``: the rows by hash, the last of equal hashes first.
    When no two rows share their high words that is the stable sort of ``hi`` alone (one sort, not
    three; nearly free on a merge's concatenated sorted segments), else the lexsort itself."""
    import numpy as np

    order = np.argsort(hi, kind="stable")
    shi = hi[order]
    if len(shi) < 2 or bool((shi[1:] != shi[:-1]).all()):
        return order
    return np.lexsort((np.arange(len(hi))[::-1], lo, hi))


def _unbase64(text: str) -> bytes:
    """``base64.b64decode(text)``: ``binascii.a2b_base64`` takes the ASCII text as it is (b64decode
    first copies it into bytes: ~3x the time on a segment of tens of MiB)."""
    return binascii.a2b_base64(text)


def decode_index(text: str) -> np.ndarray:
    import numpy as np

    return np.frombuffer(_unbase64(text), dtype="<u8").astype(np.uint64)


def decode_data(text: str):
    import pyarrow as pa

    with pa.ipc.open_stream(pa.py_buffer(_unbase64(text))) as r:
        return r.read_all()


@dataclass
class Segment:
    id: str
    n: int
    hi: np.ndarray

    @property
    def tier(self) -> int:
        return int(math.log(max(self.n, 1), FANOUT)) if self.n < MAX_SEGMENT_ROWS else -1


@dataclass
class _Decoded:
    table: pa.Table
    lo: np.ndarray
    nbytes: int


@dataclass
class SegmentBackend:
    """What a lookup needs from the store, for one (key, order, sample)."""

    indexes: Callable[[], list[tuple[str, int, str]]]
    """(segment id, rows, index text) of every segment."""
    data: Callable[[str], str | None]
    """The data text of a segment (``None``: gone, merged by another writer)."""
    write: Callable[[list[tuple[str, int, str, str]], list[str]], None]
    """Add segments (id, rows, index text, data text) and delete segments by id, in one transaction."""
    row_count: Callable[[], int]
    """Per-judgment rows of the (key, order, sample)."""
    rows: Callable[[list[str] | None], list[tuple]]
    """Per-judgment rows (``example_hash`` hex, then :data:`JUDGMENT_FIELDS`) of these example hashes
    (``None``: all of them)."""
    extra: dict[str, Any] = field(default_factory=dict)


class JudgmentLookup:
    """Bulk reads and writes of the cache under one (key, order, sample) (module docstring)."""

    def __init__(self, backend: SegmentBackend, *, memory_bytes: int = 256 << 20) -> None:
        self.backend = backend
        self.memory_bytes = max(int(memory_bytes), 1 << 20)
        self._segments: list[Segment] | None = None
        self._decoded: OrderedDict[str, _Decoded] = OrderedDict()
        self._decoded_bytes = 0
        self._row_count: int | None = None
        self._all_rows: tuple[np.ndarray, np.ndarray, pa.Table] | None = None
        self._pending = None
        """The :meth:`save_later` not yet waited for (a future)."""

    # ------------------------------------------------------------------ index
    @property
    def segments(self) -> list[Segment]:
        """The segments, newest first."""
        if self._segments is None:
            found = [Segment(sid, n, decode_index(text)) for sid, n, text in self.backend.indexes()]
            self._segments = sorted(found, key=lambda s: s.id, reverse=True)
        return self._segments

    def _decode(self, seg: Segment) -> _Decoded | None:
        hit = self._decoded.get(seg.id)
        if hit is not None:
            self._decoded.move_to_end(seg.id)
            return hit
        text = self.backend.data(seg.id)
        if text is None:
            return None
        table = decode_data(text)
        _, lo = hash_words(table.column("example_hash"))
        got = _Decoded(table, lo, table.nbytes + lo.nbytes)
        self._remember(seg.id, got)
        return got

    def _remember(self, sid: str, got: _Decoded) -> None:
        self._decoded[sid] = got
        self._decoded_bytes += got.nbytes
        while self._decoded_bytes > self.memory_bytes and len(self._decoded) > 1:
            _, old = self._decoded.popitem(last=False)
            self._decoded_bytes -= old.nbytes

    # ------------------------------------------------------------------ rows
    def _rows_for(self, hashes, hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, pa.Table] | None:
        """(positions in ``hashes``, their per-judgment rows) — or None when there are none."""
        import numpy as np

        if self._row_count is None:
            self._row_count = self.backend.row_count()
        if not self._row_count or not len(hi):
            return None
        if self._all_rows is None and self._row_count <= max(50_000, 2 * len(hi)):
            table = _rows_table(self.backend.rows(None))
            rhi, rlo = hash_words(table.column("example_hash"))
            order = np.lexsort((rlo, rhi))
            self._all_rows = (rhi[order], rlo[order], table.take(order))
        if self._all_rows is not None:
            rhi, rlo, table = self._all_rows
            pos, ok = _search(rhi, rlo, hi, lo)
            where = np.flatnonzero(ok)
            return where, table.take(pos[where])
        table = _rows_table(self.backend.rows(binary_to_hex(hashes)))
        if not table.num_rows:
            return None
        rhi, rlo = hash_words(table.column("example_hash"))
        order = np.lexsort((rlo, rhi))
        pos, ok = _search(rhi[order], rlo[order], hi, lo)
        where = np.flatnonzero(ok)
        return where, table.take(order[pos[where]])

    # ------------------------------------------------------------------ API
    def find(self, hashes) -> tuple[np.ndarray, pa.Table]:
        """(found mask, the cached judgments): one row per hash (null where not found) with
        :data:`JUDGMENT_FIELDS` columns."""
        import numpy as np
        import pyarrow as pa

        self.wait()
        hi, lo = hash_words(hashes)
        n = len(hi)
        found = np.zeros(n, bool)
        index = np.zeros(n, np.int64)
        sources: list[pa.Table] = []
        offset = 0
        got = self._rows_for(hashes, hi, lo)
        if got is not None:
            where, table = got
            found[where] = True
            index[where] = offset + np.arange(len(where))
            sources.append(table)
            offset += table.num_rows
        # the needles sorted once: each segment's index is searched with sorted needles (numpy narrows
        # each binary search from the previous one), not sorted again per segment (as sorted_search)
        by_hash = np.argsort(hi, kind="stable")
        for seg in self.segments:
            todo = by_hash[~found[by_hash]]
            if not len(todo):
                break
            pos = np.searchsorted(seg.hi, hi[todo])
            cand = pos < seg.n
            cand[cand] = seg.hi[pos[cand]] == hi[todo][cand]
            if not cand.any():
                continue
            decoded = self._decode(seg)
            if decoded is None:
                continue
            todo, pos = todo[cand], pos[cand]
            ok = decoded.lo[pos] == lo[todo]
            if not ok.all():  # two hashes sharing their first 64 bits: look past the first
                for k in np.flatnonzero(~ok):
                    p = pos[k] + 1
                    while p < seg.n and seg.hi[p] == hi[todo[k]]:
                        if decoded.lo[p] == lo[todo[k]]:
                            pos[k], ok[k] = p, True
                            break
                        p += 1
            todo, pos = todo[ok], pos[ok]
            found[todo] = True
            index[todo] = offset + pos
            sources.append(decoded.table)
            offset += decoded.table.num_rows
        names = list(JUDGMENT_FIELDS)
        schema = judgment_schema()
        if not sources:
            return found, pa.table({f: pa.nulls(n, schema.field(f).type) for f in names})
        combined = pa.concat_tables([t.select(names).cast(pa.schema([schema.field(f) for f in names]))
                                     for t in sources])
        return found, combined.take(pa.array(index, mask=~found))

    def save(self, table) -> None:
        """Cache the judgments of ``table`` (``example_hash`` and :data:`JUDGMENT_FIELDS`) as one
        segment, then merge a full size tier."""
        self.wait()
        self._save(table)

    def save_later(self, table, saver) -> None:
        """:meth:`save` on ``saver``'s thread (a ``concurrent.futures`` executor of one worker, which
        keeps the saves in order), after this lookup's previous one: the caller goes on meanwhile.
        :meth:`find`, :meth:`save` and :meth:`wait` wait for it first; the table must not change."""
        self.wait()
        self._pending = saver.submit(self._save, table)

    def wait(self) -> None:
        """Wait for the :meth:`save_later` in progress, if any (raising what it raised)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _save(self, table) -> None:
        if table.num_rows == 0:
            return
        newest = self.segments[0].id if self.segments else None
        sid = new_segment_id(newest)
        sorted_table, hi, lo = _sorted(table)
        seg = Segment(sid, len(hi), hi)
        tiers = self._tiers()
        if seg.tier >= 0 and len(tiers.get(seg.tier, ())) == FANOUT - 1 and \
                not any(len(segs) >= FANOUT for segs in tiers.values()):
            # the segment fills its tier: merged with the others at once (what writing it, then
            # compacting, would store; one write, and no segment written only to be deleted)
            self._merge(tiers[seg.tier], sorted_table, newest)
            return
        self.backend.write([(sid, seg.n, *_serialize(sorted_table, hi))], [])
        self.segments.insert(0, seg)
        self._remember(sid, _Decoded(sorted_table, lo, sorted_table.nbytes + lo.nbytes))
        self._compact()

    def _tiers(self) -> dict[int, list[Segment]]:
        """The segments that may still be merged, by size tier (each newest first)."""
        tiers: dict[int, list[Segment]] = {}
        for seg in self.segments:
            if seg.tier >= 0:
                tiers.setdefault(seg.tier, []).append(seg)
        return tiers

    def _compact(self) -> None:
        full = next((segs for _, segs in sorted(self._tiers().items()) if len(segs) >= FANOUT), None)
        if full is not None:
            self._merge(full, None, full[0].id)

    def _merge(self, full: list[Segment], newer, newest: str | None) -> None:
        """Replace the segments ``full`` (newest first) and the judgments ``newer`` (a table, or
        None) by one segment, then merge a full size tier."""
        import pyarrow as pa

        parts = []
        for seg in reversed(full):           # oldest first: the newest judgment of a hash is kept
            decoded = self._decode(seg)
            if decoded is not None:
                parts.append(decoded.table)
        if newer is not None:
            parts.append(newer)
        merged = pa.concat_tables(parts) if parts else None
        if merged is None or merged.num_rows == 0:
            return
        sid = new_segment_id(newest)
        n, index, data, sorted_table, hi, lo = _encode(merged)
        self.backend.write([(sid, n, index, data)], [s.id for s in full])
        gone = {s.id for s in full}
        for s in gone:
            old = self._decoded.pop(s, None)
            if old is not None:
                self._decoded_bytes -= old.nbytes
        self._segments = sorted([s for s in self.segments if s.id not in gone] + [Segment(sid, n, hi)],
                                key=lambda s: s.id, reverse=True)
        self._remember(sid, _Decoded(sorted_table, lo, sorted_table.nbytes + lo.nbytes))
        self._compact()


def sorted_search(haystack: np.ndarray, needles: np.ndarray) -> np.ndarray:
    """``np.searchsorted(haystack, needles)``, the needles searched in sorted order: random hashes
    against a large sorted index are cache misses at every step of each binary search; in order,
    numpy narrows each search from the previous one (several times faster on 10^5-10^6 rows)."""
    import numpy as np

    if len(needles) < 64:
        return np.searchsorted(haystack, needles)
    order = np.argsort(needles, kind="stable")
    pos = np.empty(len(needles), np.int64)
    pos[order] = np.searchsorted(haystack, needles[order])
    return pos


def _search(shi: np.ndarray, slo: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of (hi, lo) in the (hi, lo)-sorted arrays, and whether each is there."""
    import numpy as np

    if not len(shi):
        return np.zeros(len(hi), np.int64), np.zeros(len(hi), bool)
    pos = np.searchsorted(shi, hi)
    ok = pos < len(shi)
    ok[ok] = shi[pos[ok]] == hi[ok]
    for k in np.flatnonzero(ok):  # rows are few: exact match on both words
        p = pos[k]
        while p < len(shi) and shi[p] == hi[k] and slo[p] != lo[k]:
            p += 1
        if p < len(shi) and shi[p] == hi[k] and slo[p] == lo[k]:
            pos[k] = p
        else:
            ok[k] = False
    return pos, ok


def _rows_table(rows: list[tuple]):
    """Per-judgment rows (hex hash + :data:`JUDGMENT_FIELDS`) → an Arrow table of :func:`judgment_schema`."""
    import pyarrow as pa

    schema = judgment_schema()
    cols = list(zip(*rows)) if rows else [[] for _ in schema.names]
    arrays = [pa.array([bytes.fromhex(h) for h in cols[0]], type=pa.binary(16))]
    for i, c in enumerate(cols[1:]):
        kind = schema.field(i + 1).type
        values = [None if v is None else bool(v) for v in c] if kind == pa.bool_() else list(c)
        arrays.append(pa.array(values, type=kind))
    return pa.Table.from_arrays(arrays, schema=schema)


def distinct_count(segment_indexes: Iterable[str], row_hashes: Iterable[str]) -> int:
    """Judgments of one (key, order, sample): the rows' example hashes and, not among them, the
    distinct hashes of its segments (by their first 64 bits)."""
    import numpy as np

    rows = [int(h[:16], 16) for h in row_hashes]
    parts = [decode_index(t) for t in segment_indexes]
    seg = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.uint64)
    if rows:
        seg = np.setdiff1d(seg, np.array(rows, dtype=np.uint64), assume_unique=False)
    return len(rows) + len(seg)
