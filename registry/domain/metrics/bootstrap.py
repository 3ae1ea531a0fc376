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
resample by ``indices``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from registry.errors import InvalidInput

DEFAULT_SAMPLES = 1000
DEFAULT_SEED = 0


@dataclass(frozen=True, eq=False)
class Bootstrap:
    """B resamples of n examples (see the module docstring)."""

    indices: np.ndarray
    """(B, n) integer indices into the examples."""
    seed: int | None = None
    """Seed the draw came from (recorded with the metrics)."""

    @classmethod
    def draw(cls, n: int, n_samples: int = DEFAULT_SAMPLES, seed: int | None = DEFAULT_SEED) -> Bootstrap:
        """Uniform resampling with replacement of ``n`` examples, ``n_samples`` times."""
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, max(n, 1), size=(n_samples, n), dtype=np.int64) if n else np.zeros((n_samples, 0), int)
        return cls(idx.astype(np.int32 if n < 2**31 else np.int64), seed)

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
        return cls(idx.astype(np.int64), seed)

    @property
    def n(self) -> int:
        """Examples per resample."""
        return int(self.indices.shape[1])

    @property
    def n_samples(self) -> int:
        """Number of resamples B."""
        return int(self.indices.shape[0])

    @cached_property
    def weights(self) -> np.ndarray:
        """(B, n) float64 count matrix W: W[b, i] = occurrences of example i in resample b."""
        b, n = self.indices.shape
        if n == 0:
            return np.zeros((b, 0))
        flat = (self.indices + (np.arange(b, dtype=np.int64) * n)[:, None]).ravel()
        return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)

    def sums(self, x: np.ndarray) -> np.ndarray:
        """Resampled sums of per-example values: (n,) → (B,), (R, n) → (R, B)."""
        return np.asarray(x, dtype=np.float64) @ self.weights.T

    def means(self, x: np.ndarray) -> np.ndarray:
        """Resampled means of per-example values: ``x @ W.T / n``."""
        return self.sums(x) / self.n

    def apply(self, statistic: Callable[..., float], *arrays: np.ndarray) -> np.ndarray:
        """Index-resampling fallback for any statistic: ``statistic(*(a[idx] for a in arrays))``
        for each resample (a Python loop over B; use only where no vectorized form exists)."""
        arrays = tuple(np.asarray(a) for a in arrays)
        return np.array([statistic(*(a[idx] for a in arrays)) for idx in self.indices], dtype=float)


def ensure_bootstrap(boot: Bootstrap | None, n: int, n_samples: int = DEFAULT_SAMPLES,
                     seed: int | None = DEFAULT_SEED) -> Bootstrap:
    """``boot`` if given (checked against n), else a fresh seeded draw."""
    if boot is None:
        return Bootstrap.draw(n, n_samples, seed)
    if boot.n != n:
        raise InvalidInput(f"bootstrap drawn for {boot.n} examples, data has {n}",
                           hint="draw one Bootstrap per example set")
    return boot
