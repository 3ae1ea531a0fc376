"""A run's per-example judgments as the standings keep them.

When a run is scored (:func:`registry.services.scoring.compute_metrics`) its predictions are
aligned with the dataset version's rows; :class:`RunExamples` keeps exactly what the paired tests of
``best`` and ``leaderboard`` take from that alignment — which rows were judged and, per row, the
verdict codes of each order judged, the log-probability verdicts, the predicted labels or scores —
aligned to the version's example order, and :meth:`RunExamples.encode` packs it (a bit mask of the
judged rows, int8 codes, float32 scores where that is exact, else float64; zlib) for the store's
``run_examples`` table. A query rebuilds the run's judgments from it and the version's table
(:func:`registry.services.queries.examples_judgments`) without reading the predictions Parquet or
aligning them again; the result is the same (tests/services/test_standings.py).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass

import numpy as np

from registry.errors import InvalidInput

ENCODING = "examples/1"
"""The first line of an encoded :class:`RunExamples` (the store keeps it as the row's encoding)."""


@dataclass(frozen=True, eq=False)
class RunExamples:
    """One run's judgments per dataset row (see the module docstring)."""

    task_type: str
    n_rows: int
    """Rows of the dataset version."""
    rows: np.ndarray
    """Indices (ascending) of the rows the run aligned: a prediction in every order judged."""
    seed: int
    """The run's seed (its coin flips)."""
    verdicts: tuple[np.ndarray, ...] = ()
    """Pairwise: int8 verdict codes per order judged, one per aligned row."""
    logprob: np.ndarray | None = None
    """Pairwise: int8 verdict codes from ``prob_a`` (``None``: the run has no log-probabilities)."""
    predictions: list | None = None
    """Classification: the predicted label per aligned row (``None`` for a parse failure)."""
    scores: np.ndarray | None = None
    """Classification: the score per aligned row, if any is finite; pointwise: the predicted score."""

    @classmethod
    def from_aligned(cls, task_type: str, n_rows: int, al, seed: int) -> RunExamples:
        """From :func:`registry.services.scoring.align`'s answer (what the metrics were computed on)."""
        from registry.domain.judgments import encode_verdicts
        from registry.domain.metrics.pairwise import prob_a_codes

        rows = np.asarray(al.rows, dtype=np.int64)
        if task_type == "pairwise":
            return cls(task_type, n_rows, rows, seed, verdicts=tuple(encode_verdicts(v) for v in al.verdict),
                       logprob=prob_a_codes(al.prob_a, len(rows)))
        score = np.asarray(al.score[0], dtype=np.float64)
        if task_type == "classification":
            return cls(task_type, n_rows, rows, seed, predictions=list(al.verdict[0]),
                       scores=score if np.isfinite(score).any() else None)
        return cls(task_type, n_rows, rows, seed, scores=score)

    # ------------------------------------------------------------------ bytes
    def encode(self) -> bytes:
        """``examples/1`` newline, a JSON header (task type, sizes, seed, array layout, the
        classification vocabulary) newline, then the zlib-compressed arrays."""
        arrays: list[tuple[str, np.ndarray]] = [("mask", np.packbits(_mask(self.rows, self.n_rows)))]
        arrays += [(f"verdict{i}", np.asarray(v, dtype=np.int8)) for i, v in enumerate(self.verdicts)]
        if self.logprob is not None:
            arrays.append(("logprob", np.asarray(self.logprob, dtype=np.int8)))
        vocab = None
        if self.predictions is not None:
            vocab = sorted({str(p) for p in self.predictions if p is not None})
            index = {v: i for i, v in enumerate(vocab)}
            arrays.append(("predictions", np.array([-1 if p is None else index[str(p)] for p in self.predictions],
                                                   dtype=np.int32)))
        if self.scores is not None:
            s = np.asarray(self.scores, dtype=np.float64)
            small = s.astype(np.float32)
            exact = np.array_equal(small.astype(np.float64), s, equal_nan=True)
            arrays.append(("scores", small if exact else s))
        header = {"task_type": self.task_type, "n_rows": self.n_rows, "n": len(self.rows), "seed": self.seed,
                  "orders": len(self.verdicts), "vocab": vocab,
                  "arrays": [[name, a.dtype.str, len(a)] for name, a in arrays]}
        body = zlib.compress(b"".join(np.ascontiguousarray(a).tobytes() for _, a in arrays), 1)
        return b"\n".join([ENCODING.encode(), json.dumps(header, separators=(",", ":")).encode(), body])

    @classmethod
    def decode(cls, data: bytes) -> RunExamples:
        """The :class:`RunExamples` :meth:`encode` packed."""
        try:
            tag, header_text, body = data.split(b"\n", 2)
            if tag.decode() != ENCODING:
                raise ValueError(f"encoding {tag[:40]!r}")
            header = json.loads(header_text)
            raw = zlib.decompress(body)
        except (ValueError, zlib.error) as exc:
            raise InvalidInput(f"stored per-example judgments are unreadable ({exc})", field="run_examples") from None
        arrays, at = {}, 0
        for name, dtype, length in header["arrays"]:
            dt = np.dtype(dtype)
            arrays[name] = np.frombuffer(raw, dtype=dt, count=length, offset=at).copy()
            at += dt.itemsize * length
        n_rows = int(header["n_rows"])
        rows = np.flatnonzero(np.unpackbits(arrays["mask"], count=n_rows)).astype(np.int64)
        predictions = None
        if "predictions" in arrays:
            vocab = [str(v) for v in header["vocab"]]
            predictions = [None if i < 0 else vocab[i] for i in arrays["predictions"].tolist()]
        scores = arrays["scores"].astype(np.float64) if "scores" in arrays else None
        return cls(header["task_type"], n_rows, rows, int(header["seed"]),
                   verdicts=tuple(arrays[f"verdict{i}"] for i in range(int(header["orders"]))),
                   logprob=arrays.get("logprob"), predictions=predictions, scores=scores)


def _mask(rows: np.ndarray, n_rows: int) -> np.ndarray:
    mask = np.zeros(n_rows, dtype=np.uint8)
    mask[rows] = 1
    return mask
