"""Seeded nonparametric bootstrap shared by every metric.

One draw of B resamples of n examples is kept in two equivalent forms:

- ``indices`` (B × n): the resampled example indices, drawn uniformly with replacement from a
  seeded ``numpy.random.Generator``;
- ``weights`` (B × n): how many times each example occurs in each resample. Each row is a
  Multinomial(n, 1/n, …, 1/n) count vector, and it is computed *from* ``indices``, so both
  forms describe exactly the same resamples.

The weights make the bootstrap of any mean one matrix product: for per-example values ``x`` of
shape (n,) — or (R, n) for R runs judged on the same examples — the B resampled means are
``x @ W.T / n``. Statistics that are functions of weighted counts (confusion matrices: κ,
balanced accuracy, F1, Krippendorff's α; moments: Pearson r) use the same product on indicator
rows, which equals resampling by index exactly. Rank statistics (Spearman, Kendall, AUC)
resample by ``indices``; the pointwise correlations only through the multiplicities of a block of
them (:mod:`registry.domain.metrics.rank_resample`: weighted midranks and pair counts over the
data's fixed sort order, O(n) per resample instead of a sort).

**Counts mode** (large n). A uniform draw of n ≥ :data:`LARGE_N` examples given partitions
(:meth:`Bootstrap.with_classes`) whose combination J has at most :data:`MAX_JOINT` classes (and
few against n) does not draw the B × n indices first: it draws the B joint class-count vectors
directly, ``rng.multinomial(n, sizes / n, size=B)`` from the seeded generator — exactly the
distribution of the class counts of B uniform index resamples — in O(B·|J|) instead of O(B·n), and
each partition's counts are sums of J's. What still needs indices (rank statistics, sums of
values no partition covers, :attr:`~Bootstrap.weights`, :meth:`~Bootstrap.apply`) gets them drawn
*conditionally on the same counts*: resample b takes C[b, j] examples uniformly with replacement
from the members of class j, from its own generator derived from the seed (so any block of
resamples is the same whenever it is asked for). Every statistic, from counts or from indices,
sees the very same resamples, and the index resamples are still uniform resampling in
distribution. Below :data:`LARGE_N`, or without partitions, nothing changes: the same random
numbers and results, bit for bit. Within a resample, conditional indices come grouped by class
(a resample is a multiset: no statistic depends on its order).

The class counts of a counts-mode draw may be drawn ahead, on another thread
(:meth:`Bootstrap.draw_counts`, :class:`CountsAhead`): numpy's multinomial draws release the GIL, and
each draw has its own seeded generator, so the numbers are the same whichever thread draws them, and
when.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from registry.errors import InvalidInput

DEFAULT_SAMPLES = 1000
DEFAULT_SEED = 0


KEPT_ENTRIES = 1 << 23
"""Resamples × examples up to which a draw is kept in memory as the two matrices (about 100 MB);
a larger draw is *streamed*: its resamples are drawn again, a block at a time, from the same seeded
generator whenever they are needed, so the numbers are the same and the memory stays bounded."""
BLOCK_ENTRIES = 1 << 22
"""Resamples × examples per block of a streamed draw."""
MAX_CLASSES = 8192
"""Most example classes of a partition (see :meth:`Bootstrap.with_classes`) whose resampled counts are kept."""
SAMPLE_CHECK = 4096
"""Examples a sum is first checked on against a partition (then on all of them)."""
LARGE_N = 1 << 15
"""Examples from which a uniform draw given partitions works in counts mode (module docstring).
Every pinned value, test and published-number reproduction uses fewer examples, so keeps its
numbers bit for bit; the slices of a 1M-pair run (25k–112k examples each) are above it."""
MAX_JOINT = 1 << 15
"""Most classes of the combination of the partitions for counts mode (its B × |J| counts are
kept as int32, 128 MiB at B = 1000; multinomial draws cost about 0.2 µs per count)."""
JOINT_PER_EXAMPLES = 16
"""Counts mode also needs n ≥ this × |J| (else drawing the B × |J| counts is no cheaper than the
B × n indices)."""


@dataclass(frozen=True, eq=False)
class Bootstrap:
    """B resamples of n examples (see the module docstring)."""

    drawn: np.ndarray | None
    """(B, n) integer indices into the examples, when kept in memory; ``None``: a streamed draw."""
    seed: int | None = None
    """Seed the draw came from (recorded with the metrics)."""
    shape: tuple[int, int] | None = None
    """(B, n)."""
    classes: tuple[np.ndarray, ...] | None = None
    """Optional partitions of the examples (a class code per example each): sums of per-example
    values that are equal within the classes of one are computed from its resampled class counts
    (:meth:`with_classes`)."""
    joint: _Joint | None = None
    """Counts mode (module docstring): the combination of the partitions, whose class counts are
    drawn directly; ``None``: index mode."""
    uniform: bool = True
    """``drawn`` is (or, streamed, stands for) :meth:`draw`'s seeded uniform resampling — not
    :meth:`draw_stratified`'s, nor indices of another origin: counts mode applies only to it."""

    @classmethod
    def draw(cls, n: int, n_samples: int = DEFAULT_SAMPLES, seed: int | None = DEFAULT_SEED) -> Bootstrap:
        """Uniform resampling with replacement of ``n`` examples, ``n_samples`` times (streamed
        when ``n_samples × n`` exceeds :data:`KEPT_ENTRIES`: the same numbers, drawn on demand)."""
        if n and n_samples * n > KEPT_ENTRIES:
            return cls(None, seed, (n_samples, n))
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, max(n, 1), size=(n_samples, n), dtype=np.int64) if n else np.zeros((n_samples, 0), int)
        return cls(idx.astype(np.int32 if n < 2**31 else np.int64), seed, (n_samples, n))

    @classmethod
    def draw_stratified(cls, groups: np.ndarray, n_samples: int = DEFAULT_SAMPLES,
                        seed: int | None = DEFAULT_SEED) -> Bootstrap:
        """Resample within each group (e.g. examples within each system), keeping group sizes."""
        groups = np.asarray(groups)
        rng = np.random.default_rng(seed)
        blocks = []
        for g in np.unique(groups):
            members = np.flatnonzero(groups == g)
            blocks.append(members[rng.integers(0, len(members), size=(n_samples, len(members)))])
        idx = np.concatenate(blocks, axis=1) if blocks else np.zeros((n_samples, 0), int)
        return cls(idx.astype(np.int64), seed, idx.shape, uniform=False)

    def with_classes(self, classes) -> Bootstrap:
        """The same draw, knowing a class of each example — or several such partitions of the
        examples (a list; ``None``: none): the per-class counts of every resample are computed once
        (every partition in the same pass over the resamples), and every sum of values that are
        equal within the classes of one partition from them, instead of a (B, n) matrix product per
        sum. A sum of values that no partition covers is computed as before; the answer is the same
        either way (up to the order of floating-point additions for values that are not multiples
        of ½).

        From :data:`LARGE_N` examples (a uniform draw), the draw switches to counts mode when the
        partitions' combination is small enough (module docstring; :data:`MAX_JOINT`)."""
        if classes is None:
            return self
        parts = classes if isinstance(classes, (list, tuple)) else [classes]
        out = []
        for c in parts:
            c = np.asarray(c)
            if c.shape != (self.n,):
                raise InvalidInput(f"{c.shape[0]} classes for {self.n} examples", field="classes")
            out.append(c.astype(np.int64 if len(c) and c.max() >= 2**31 else np.int32))
        got = replace(self, classes=tuple(out), joint=None)
        if not (self.uniform and self.n >= LARGE_N and self.n_samples):
            return got
        joint = _Joint.of(out, self.seed)
        if joint is None:
            return got
        return replace(got, drawn=None, shape=(self.n_samples, self.n), joint=joint)

    @property
    def n(self) -> int:
        """Examples per resample."""
        return int(self.shape[1]) if self.shape is not None else int(self.drawn.shape[1])

    @property
    def n_samples(self) -> int:
        """Number of resamples B."""
        return int(self.shape[0]) if self.shape is not None else int(self.drawn.shape[0])

    @property
    def streamed(self) -> bool:
        """Whether the resamples are drawn on demand (not kept)."""
        return self.drawn is None

    @cached_property
    def indices(self) -> np.ndarray:
        """(B, n) integer indices into the examples (all of them at once: a streamed draw is
        materialised; prefer :meth:`blocks`)."""
        if self.drawn is not None:
            return self.drawn
        return np.concatenate([idx for _, idx in self.blocks()]) if self.n_samples else np.zeros((0, self.n), int)

    def blocks(self, rows: int | None = None, *, any_int: bool = False):
        """``(start, indices[start:start + rows])`` for every block of resamples, in order
        (``any_int``: a streamed draw's int64 indices as drawn, without the cast to the kept dtype)."""
        b, n = self.n_samples, self.n
        rows = rows or max(1, BLOCK_ENTRIES // max(n, 1))
        if self.joint is not None:
            for start in range(0, b, rows):
                yield start, self.index_block(start, start + rows)
            return
        if self.drawn is not None:
            for start in range(0, b, rows):
                yield start, self.drawn[start:start + rows]
            return
        rng = np.random.default_rng(self.seed)
        for start in range(0, b, rows):
            idx = rng.integers(0, max(n, 1), size=(min(rows, b - start), n), dtype=np.int64)
            yield start, idx if any_int else idx.astype(np.int32 if n < 2**31 else np.int64)

    def index_block(self, start: int, stop: int) -> np.ndarray:
        """``indices[start:stop]`` (a streamed draw continues from the previous block asked for,
        or draws again from the seed; counts mode: drawn conditionally on the class counts, one
        generator per resample)."""
        if self.drawn is not None:
            return self.drawn[start:stop]
        if self.joint is not None:
            stop = min(stop, self.n_samples)
            out = np.empty((max(stop - start, 0), self.n), np.int32 if self.n < 2**31 else np.int64)
            counts = self.joint.counts(self.n_samples)
            for b in range(start, stop):
                out[b - start] = self.joint.resample(b, counts[b])
            return out
        cursor = self.__dict__.get("_cursor")
        if cursor is None or cursor[0] != start:
            rng = np.random.default_rng(self.seed)
            at = 0
            while at < start:  # skip to ``start``, a block at a time
                k = min(start - at, max(1, BLOCK_ENTRIES // max(self.n, 1)))
                rng.integers(0, max(self.n, 1), size=(k, self.n), dtype=np.int64)
                at += k
            cursor = (start, rng)
        stop = min(stop, self.n_samples)
        idx = cursor[1].integers(0, max(self.n, 1), size=(stop - start, self.n), dtype=np.int64)
        self.__dict__["_cursor"] = (stop, cursor[1])
        return idx.astype(np.int32 if self.n < 2**31 else np.int64)

    @cached_property
    def weights(self) -> np.ndarray:
        """(B, n) float64 count matrix W: W[b, i] = occurrences of example i in resample b."""
        return _counts(self.indices, self.n)

    def sums(self, x: np.ndarray) -> np.ndarray:
        """Resampled sums of per-example values: (n,) → (B,), (R, n) → (R, B)."""
        x = np.asarray(x, dtype=np.float64)
        if self.drawn is not None:
            return x @ self.weights.T
        return self.row_sums(x.reshape(-1, self.n)).reshape(*x.shape[:-1], self.n_samples)

    def row_sums(self, rows: np.ndarray) -> np.ndarray:
        """(k, n) per-example values → (k, B) resampled sums, without the (B, n) matrices: from the
        class counts of a partition within whose classes every row is equal (counted the first time
        one is needed), else a block of resamples at a time (a kept draw: its matrix)."""
        rows = np.asarray(rows, dtype=np.float64)
        k = rows.shape[0]
        for part in self._partitions():
            rep, classes = part[0], part[1]
            per_class = np.take(rows, rep, axis=1)   # numpy.take: several times faster than [:, rep]
            if not _equal(np.take(per_class, classes[:SAMPLE_CHECK], axis=1), rows[:, :SAMPLE_CHECK]):
                continue  # not equal within classes on the first examples already
            if _equal(np.take(per_class, classes, axis=1), rows):
                return per_class @ self._class_counts(part)
        if self.drawn is not None:
            return rows @ self.weights.T
        out = np.empty((k, self.n_samples))
        for start, idx in self.blocks():
            out[:, start:start + len(idx)] = rows @ _counts(idx, self.n).T
        return out

    def _partitions(self) -> list[list]:
        """[first example of each class, class codes 0..k-1, k, counts or None] of every partition
        with at most :data:`MAX_CLASSES` classes (counts mode: every partition, then the joint one)."""
        got = self.__dict__.get("_parts")
        if got is None:
            got = []
            if self.joint is not None:  # every partition (as _Joint.of coded it), then the joint one
                got = [list(part) for part in self.joint.parts]
                got.append([self.joint.rep, self.joint.codes, len(self.joint.sizes), None])
            for classes in self.classes if self.joint is None and self.classes else ():
                uniq, rep = np.unique(classes, return_index=True)
                if 0 < len(uniq) <= MAX_CLASSES:
                    if uniq[-1] != len(uniq) - 1:  # codes 0..k-1
                        classes = np.searchsorted(uniq, classes)
                    got.append([rep, classes.astype(np.int32, copy=False), len(uniq), None])
            self.__dict__["_parts"] = got
        return got

    def _class_counts(self, part: list) -> np.ndarray:
        """(k, B) resampled count of each class of a partition (one pass over the resamples)."""
        if part[3] is None:
            _, classes, k, _ = part
            if self.joint is not None:  # counts mode: sums of the joint class counts
                part[3] = self.joint.aggregate(self.n_samples, classes[self.joint.rep], k)
                return part[3]
            if k == 1:  # one class: every resample holds all n examples
                part[3] = np.full((1, self.n_samples), float(self.n))
                return part[3]
            counts = np.empty((self.n_samples, k))
            rows = max(1, min(BLOCK_ENTRIES // max(self.n, 1), (2**31 - 1) // k))
            for start, idx in self.blocks(rows, any_int=True):
                b = len(idx)
                flat = classes[idx]
                flat += (np.arange(b, dtype=np.int32) * k)[:, None]   # block offsets fit int32
                counts[start:start + b] = np.bincount(flat.ravel(), minlength=b * k).reshape(b, k)
            part[3] = np.ascontiguousarray(counts.T)  # (k, B): rows @ counts without a copy per sum
        return part[3]

    @property
    def counts_bytes(self) -> int:
        """Bytes of the class counts a counts-mode draw keeps (0: index mode)."""
        return 4 * self.n_samples * len(self.joint.sizes) if self.joint is not None else 0

    def draw_counts(self) -> None:
        """Draw counts mode's class counts now (nothing in index mode): any thread may — the draw
        releases the GIL, and a caller that needs them meanwhile waits for them; the same numbers."""
        if self.joint is not None:
            self.joint.counts(self.n_samples)

    def means(self, x: np.ndarray) -> np.ndarray:
        """Resampled means of per-example values: ``x @ W.T / n``."""
        return self.sums(x) / self.n

    def apply(self, statistic: Callable[..., float], *arrays: np.ndarray) -> np.ndarray:
        """Index-resampling fallback for any statistic: ``statistic(*(a[idx] for a in arrays))``
        for each resample (a Python loop over B; use only where no vectorized form exists)."""
        arrays = tuple(np.asarray(a) for a in arrays)
        return np.array([statistic(*(a[i] for a in arrays)) for _, block in self.blocks() for i in block],
                        dtype=float)


class CountsAhead:
    """Draws the class counts of counts-mode bootstraps (:meth:`Bootstrap.draw_counts`) on worker
    threads, in the order they are added, ahead of the metrics that read them: at most ``budget``
    bytes of drawn counts that :meth:`release` has not given back (one draw beyond it when none is
    held). The same numbers as drawing them when needed; a context manager (leaving cancels the draws
    not started and waits for the others)."""

    def __init__(self, budget: int, workers: int = 2):
        from concurrent.futures import ThreadPoolExecutor

        self.budget, self.held = budget, 0
        self.waiting: list[Bootstrap] = []
        self.started: list[Bootstrap] = []   # drawn or drawing, not released
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bootstrap-counts")

    def add(self, boot: Bootstrap) -> None:
        """Draw ``boot``'s counts when the budget allows (nothing to draw in index mode)."""
        if boot.counts_bytes:
            self.waiting.append(boot)
            self._start()

    def release(self, boot: Bootstrap) -> None:
        """``boot``'s counts are no longer needed ahead: their bytes go back to the budget."""
        if boot in self.started:   # (identity: a Bootstrap has no __eq__)
            self.started.remove(boot)
            self.held -= boot.counts_bytes
            self._start()
        elif boot in self.waiting:
            self.waiting.remove(boot)

    def _start(self) -> None:
        while self.waiting and (self.held == 0 or self.held + self.waiting[0].counts_bytes <= self.budget):
            boot = self.waiting.pop(0)
            self.held += boot.counts_bytes
            self.started.append(boot)
            self.pool.submit(boot.draw_counts)

    def __enter__(self) -> CountsAhead:
        return self

    def __exit__(self, *exc) -> None:
        self.waiting.clear()
        self.pool.shutdown(wait=True, cancel_futures=True)


@dataclass(eq=False)
class _Joint:
    """Counts mode's joint partition J of the examples (module docstring)."""

    codes: np.ndarray
    """(n,) int32 class 0..|J|-1 of each example."""
    sizes: np.ndarray
    """(|J|,) int64 members per class."""
    rep: np.ndarray
    """(|J|,) first member of each class."""
    entropy: int
    """Seed of the counts (``numpy.random.default_rng(entropy)``) and, with spawn key (b,), of
    resample b's conditional indices (fixed once: a draw with seed ``None`` stays consistent)."""

    parts: list[list]
    """[first example of each class, class codes 0..k-1, k, None] of each partition (as
    :meth:`Bootstrap._partitions` lists them)."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    """Held while the counts are drawn (:meth:`counts` may run on a thread drawing ahead)."""

    @classmethod
    def of(cls, partitions: list[np.ndarray], seed: int | None) -> _Joint | None:
        """The combination of ``partitions`` (``None`` when it is too fine for counts mode)."""
        n = len(partitions[0])
        code, parts = np.zeros(n, np.int64), []
        for c in partitions:
            inv, rep, k = _dense(c)
            parts.append([rep, inv, k, None])
            code, _, joint = _dense(code.astype(np.int64) * k + inv)
            if joint > MAX_JOINT:
                return None
        sizes = np.bincount(code, minlength=joint)
        if n < JOINT_PER_EXAMPLES * joint:
            return None
        entropy = seed if seed is not None else int(np.random.SeedSequence().entropy)
        return cls(code, sizes.astype(np.int64), _dense(code)[1], entropy, parts)

    def counts(self, b: int) -> np.ndarray:
        """(B, |J|) int32 class counts of the B resamples: ``multinomial(n, sizes / n)`` each."""
        got = self.__dict__.get("_counts")
        if got is not None and got.shape[0] == b:
            return got
        with self.lock:
            return self._draw_counts(b)

    def _draw_counts(self, b: int) -> np.ndarray:
        got = self.__dict__.get("_counts")   # drawn by another thread while this one waited for the lock
        if got is None or got.shape[0] != b:
            n, k = int(self.sizes.sum()), len(self.sizes)
            rng = np.random.default_rng(self.entropy)
            got = np.empty((b, k), np.int32)
            step = max(1, (1 << 20) // k)      # rows drawn in order: the same numbers as one call
            for s in range(0, b, step):
                got[s:s + step] = rng.multinomial(n, self.sizes / n, size=min(step, b - s))
            self.__dict__["_counts"] = got
        return got

    def aggregate(self, b: int, of_class: np.ndarray, k: int) -> np.ndarray:
        """(k, B) float64 counts of a coarser partition (``of_class``: its class of each joint class)."""
        counts = self.counts(b)
        if k == len(self.sizes) and np.array_equal(of_class, np.arange(k)):
            return np.ascontiguousarray(counts.T, dtype=np.float64)
        by_resample = np.empty((b, k))
        for s in range(b):   # one weighted bincount per resample: whole numbers, so exact in float64
            by_resample[s] = np.bincount(of_class, weights=counts[s], minlength=k)
        return by_resample.T   # (k, B) as a view: a matrix product reads it as it is (no copy)

    def members(self) -> tuple[np.ndarray, np.ndarray]:
        """(examples sorted by class, first position of each class in that order)."""
        got = self.__dict__.get("_members")
        if got is None:
            order = np.argsort(self.codes, kind="stable")
            starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
            got = self.__dict__["_members"] = (order.astype(np.int32 if len(order) < 2**31 else np.int64), starts)
        return got

    def resample(self, b: int, counts: np.ndarray) -> np.ndarray:
        """Resample ``b``'s indices given its class counts: counts[j] uniform draws with
        replacement from the members of class j, grouped by class."""
        order, starts = self.members()
        rng = np.random.default_rng(np.random.SeedSequence(self.entropy, spawn_key=(b,)))
        size = np.repeat(self.sizes, counts)
        return order[np.repeat(starts, counts) + rng.integers(0, size)]


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    """``numpy.array_equal(a, b, equal_nan=True)`` for arrays of one shape, without its masks when
    there is no NaN (the common case: one comparison)."""
    if (a == b).all():
        return True
    return bool(np.isnan(a).any()) and np.array_equal(a, b, equal_nan=True)


def _dense(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(int32 codes 0..k-1 in the order of the distinct values — ``numpy.unique``'s inverse —,
    first example of each class, k), in O(n) for integers of a range up to a few times n."""
    values = np.asarray(values).ravel()
    n = len(values)
    if n == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int64), 0
    lo, hi = int(values.min()), int(values.max())
    if values.dtype.kind in "iu" and hi - lo <= max(4 * n, 1 << 16):
        shifted = values - lo
        present = np.bincount(shifted, minlength=hi - lo + 1) > 0
        lookup = np.cumsum(present, dtype=np.int64) - 1
        codes = lookup[shifted].astype(np.int32)
        k = int(lookup[-1]) + 1
    else:
        _, inverse = np.unique(values, return_inverse=True)
        codes = inverse.ravel().astype(np.int32)
        k = int(codes.max()) + 1
    rep = np.full(k, n, np.int64)
    np.minimum.at(rep, codes, np.arange(n))
    return codes, rep, k


def _counts(indices: np.ndarray, n: int) -> np.ndarray:
    """(b, n) float64 occurrences of each example in each of the resamples ``indices``."""
    b = indices.shape[0]
    if n == 0:
        return np.zeros((b, 0))
    flat = (indices + (np.arange(b, dtype=np.int64) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def ensure_bootstrap(boot: Bootstrap | None, n: int, n_samples: int = DEFAULT_SAMPLES,
                     seed: int | None = DEFAULT_SEED) -> Bootstrap:
    """``boot`` if given (checked against n), else a fresh seeded draw."""
    if boot is None:
        return Bootstrap.draw(n, n_samples, seed)
    if boot.n != n:
        raise InvalidInput(f"bootstrap drawn for {boot.n} examples, data has {n}",
                           hint="draw one Bootstrap per example set")
    return boot
