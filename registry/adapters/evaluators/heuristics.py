"""Heuristic evaluators: the baselines every learned autorater must beat.

Pure Python, deterministic, no model. They give the meta-evaluation its floor (``random``), its
position-bias extremes (``always-first``, ``always-second``) and its length-bias probes
(``longer``, ``shorter``; cf. AlpacaEval's "probability of preferring the longer output").

All of them judge examples *as shown* (see :mod:`registry.adapters.evaluators.base`): for pairwise
data "A" is the first shown response, so ``always-first`` answers "A" in both orders and its
positional agreement is zero by construction.
"""

from __future__ import annotations

import math
import time
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import xxhash

from registry.adapters.config import Seed
from registry.adapters.evaluators.base import Evaluator, TaskContext, Verdict
from registry.adapters.evaluators.config import EvaluatorConfig
from registry.domain.types import TaskType
from registry.errors import InvalidInput

LENGTH_SCALE = 500.0
"""Characters at which the pointwise length score reaches 1 − 1/e of the scale (``longer``)."""


def _text(example: Mapping[str, Any], key: str) -> str:
    value = example.get(key)
    return "" if value is None else str(value)


class HeuristicConfig(EvaluatorConfig):
    """Keys of the rule-based heuristics (``always-first``, ``always-second``, ``longer``,
    ``shorter``): only the ones every evaluator takes — they have no settings."""


class RandomConfig(HeuristicConfig):
    """Keys of ``random``."""

    seed: Seed = 0
    """Seeds every draw (with the example id, the shown texts and the sample index)."""


class _Heuristic(Evaluator):
    """Shared loop: check the task type, judge each example, measure its seconds."""

    Config = HeuristicConfig
    rule_version: ClassVar[int] = 1
    """Bumped when a rule's behaviour changes, so cached judgments of the old rule are not reused."""

    def judge(self, ctx: TaskContext, examples: Sequence[Mapping[str, Any]], *, sample: int = 0) -> list[Verdict]:
        if ctx.task_type not in self.task_types:
            raise InvalidInput(f"evaluator {self.kind!r} cannot judge {ctx.task_type} data; "
                               f"it judges {', '.join(self.task_types)}")
        if ctx.task_type == "classification" and (not ctx.labels or len(ctx.labels) < 2):
            raise InvalidInput(f"evaluator {self.kind!r} needs a classification label set of at least two labels; "
                               f"got {ctx.labels!r}")
        verdicts = []
        for example in examples:
            start = time.perf_counter()
            label, score = self._rule(ctx, example, sample)
            verdicts.append(Verdict(label=label, score=score, seconds=time.perf_counter() - start))
        return verdicts

    @abstractmethod
    def _rule(self, ctx: TaskContext, example: Mapping[str, Any], sample: int) -> tuple[str | None, float | None]:
        """(label, score) of one example as shown."""

    # ----------------------------------------------------------------- vectorised
    _mirrors: ClassVar[Any] = None
    """The ``_rule`` that :meth:`_rule_arrow` computes at once for many examples (None: no such path)."""

    def judge_arrow(self, ctx: TaskContext, table, *, sample: int = 0):
        """:meth:`judge` of every row of an Arrow table of examples as shown, at once: a table of
        ``label`` (string), ``score`` (float64) and ``seconds`` (the batch's time, divided evenly)
        with the same verdicts. ``None`` when this instance has no such path (its kind has none, or
        ``judge`` / ``_rule`` were replaced by a subclass or a test): the engine calls :meth:`judge`."""
        if not self._vectorised():
            return None
        import pyarrow as pa

        self.judge(ctx, [])  # the same checks of the task type and labels
        start = time.perf_counter()
        labels, scores = self._rule_arrow(ctx, table, sample)
        n = table.num_rows
        seconds = (time.perf_counter() - start) / n if n else 0.0
        return pa.table({"label": _arrow(labels, pa.string()), "score": _arrow(scores, pa.float64()),
                         "seconds": pa.repeat(pa.scalar(seconds, pa.float64()), n)})

    def arrow_columns(self) -> tuple[str, ...] | None:
        """The columns :meth:`judge_arrow` reads (the engine gives it only those); ``None`` when it
        has no vectorised path (then :meth:`judge` gets every column)."""
        return ("example_id", "response_a", "response_b", "response") if self._vectorised() else None

    def _vectorised(self) -> bool:
        mirrors = type(self)._mirrors
        return not (mirrors is None or type(self).judge is not _Heuristic.judge or type(self)._rule is not mirrors)

    def _rule_arrow(self, ctx: TaskContext, table, sample: int) -> tuple[Any, Any]:
        """(labels, scores) of every row (sequences, numpy or Arrow arrays; None for missing)."""
        raise NotImplementedError

    def fingerprint(self) -> Mapping[str, Any]:
        """Kind and rule version: heuristics have no settings that change their verdicts."""
        return {"kind": self.kind, "rule_version": self.rule_version}


class RandomEvaluator(_Heuristic):
    """Uniform random verdicts, reproducible per example *as shown*.

    The draw is seeded by the config ``seed`` (default 0), the example id, the shown text and the
    sample index, so the same example shown the same way always gets the same verdict (cacheable),
    while the two orders of a pair get independent draws. Pairwise: "A" or "B" (never "tie");
    pointwise: uniform in ``ctx.scale`` (in [0, 1) without a scale); classification: uniform over
    ``ctx.labels``.
    """

    kind = "random"
    task_types: ClassVar[tuple[TaskType, ...]] = ("pairwise", "pointwise", "classification")
    Config = RandomConfig

    @property
    def seed(self) -> int:
        """The config ``seed`` (default 0)."""
        return self.settings.seed

    def _draw(self, example: Mapping[str, Any], shown: str, sample: int) -> int:
        # \x1f (unit separator) keeps the fields apart, so "1|2" + "3" and "1" + "2|3" differ.
        key = f"{self.seed}\x1f{_text(example, 'example_id')}\x1f{shown}\x1f{sample}"
        return xxhash.xxh64_intdigest(key.encode("utf-8"))

    def _rule(self, ctx, example, sample):
        if ctx.task_type == "pairwise":
            # Both texts name the order shown (response_a alone would too, unless a == b).
            h = self._draw(example, _text(example, "response_a") + "\x1e" + _text(example, "response_b"), sample)
            return ("A" if h & 1 else "B"), None
        h = self._draw(example, _text(example, "response"), sample)
        if ctx.task_type == "pointwise":
            lo, hi = ctx.scale or (0.0, 1.0)
            return None, lo + (hi - lo) * (h / 2.0**64)
        labels = ctx.labels or ()
        return labels[h % len(labels)], None  # modulo bias is ~len(labels)/2^64: negligible

    def fingerprint(self) -> Mapping[str, Any]:
        return {**super().fingerprint(), "seed": self.seed}

    def _rule_arrow(self, ctx, table, sample):
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc
        import xxhash

        from registry.domain.judgments import xxh_each

        from registry.domain.judgments import _one_text_type

        names = ("response_a", "response_b") if ctx.task_type == "pairwise" else ("response",)
        kind, cols = _one_text_type([_texts(table, k) for k in ("example_id", *names)])

        def text(s: str):
            return pa.scalar(s, kind)

        # the keys of _draw in one join (one copy of the texts): seed␟id␟a␞b␟sample (pairwise), seed␟id␟text␟sample
        shown = [cols[1], text("\x1e"), cols[2]] if len(cols) == 3 else [cols[1]]
        keys = pc.binary_join_element_wise(text(f"{self.seed}\x1f"), cols[0], text("\x1f"), *shown,
                                           text(f"\x1f{sample}"), text(""))
        h = np.array(xxh_each(keys, xxhash.xxh64_intdigest), dtype=np.uint64)
        n = len(h)
        if ctx.task_type == "pairwise":
            return pc.if_else(pa.array((h & np.uint64(1)).astype(bool)), "A", "B"), pa.nulls(n, pa.float64())
        if ctx.task_type == "pointwise":
            lo, hi = ctx.scale or (0.0, 1.0)
            return pa.nulls(n, pa.string()), lo + (hi - lo) * (h.astype(np.float64) / 2.0**64)
        labels = pa.array(list(ctx.labels or ()), type=pa.string())
        return labels.take(pa.array((h % np.uint64(len(labels))).astype(np.int64))), pa.nulls(n, pa.float64())


class AlwaysFirstEvaluator(_Heuristic):
    """Always the first option: "A" for pairwise (whatever the content), ``labels[0]`` for classification."""

    kind = "always-first"
    task_types: ClassVar[tuple[TaskType, ...]] = ("pairwise", "classification")

    def _rule(self, ctx, example, sample):
        return ("A" if ctx.task_type == "pairwise" else (ctx.labels or ())[0]), None

    def _rule_arrow(self, ctx, table, sample):
        return [self._rule(ctx, {}, sample)[0]] * table.num_rows, [None] * table.num_rows


class AlwaysSecondEvaluator(_Heuristic):
    """Always the second option: "B" for pairwise, ``labels[1]`` for classification."""

    kind = "always-second"
    task_types: ClassVar[tuple[TaskType, ...]] = ("pairwise", "classification")

    def _rule(self, ctx, example, sample):
        return ("B" if ctx.task_type == "pairwise" else (ctx.labels or ())[1]), None

    def _rule_arrow(self, ctx, table, sample):
        return [self._rule(ctx, {}, sample)[0]] * table.num_rows, [None] * table.num_rows


class _LengthEvaluator(_Heuristic):
    """Prefers longer (``sign`` = +1) or shorter (``sign`` = −1) responses, counted in characters.

    Pairwise: the preferred response by length, "tie" when equally long; ``score`` is the margin in
    favour of A (``sign · (len(A) − len(B))``). Pointwise: ``sign · len(response)``; when the
    dataset has a scale, that is squashed monotonically into it —
    ``lo + (hi − lo) · (1 − exp(−len/500))`` for longer, ``lo + (hi − lo) · exp(−len/500)`` for
    shorter — which leaves every rank-based correlation unchanged.
    """

    task_types: ClassVar[tuple[TaskType, ...]] = ("pairwise", "pointwise")
    sign: ClassVar[int]

    def _rule(self, ctx, example, sample):
        if ctx.task_type == "pairwise":
            margin = self.sign * (len(_text(example, "response_a")) - len(_text(example, "response_b")))
            return ("A" if margin > 0 else "B" if margin < 0 else "tie"), float(margin)
        n = len(_text(example, "response"))
        if ctx.scale is None:
            return None, float(self.sign * n)
        lo, hi = ctx.scale
        decay = math.exp(-n / LENGTH_SCALE)
        return None, lo + (hi - lo) * ((1.0 - decay) if self.sign > 0 else decay)

    def fingerprint(self) -> Mapping[str, Any]:
        return {**super().fingerprint(), "length_scale": LENGTH_SCALE}

    def _rule_arrow(self, ctx, table, sample):
        import numpy as np

        if ctx.task_type == "pairwise":
            margin = self.sign * (_lengths(table, "response_a") - _lengths(table, "response_b"))
            labels = np.where(margin > 0, "A", np.where(margin < 0, "B", "tie")).tolist()
            return labels, margin.astype(np.float64)
        n = _lengths(table, "response")
        if ctx.scale is None:
            return [None] * len(n), (self.sign * n).astype(np.float64)
        lo, hi = ctx.scale
        decay = np.array([math.exp(-k / LENGTH_SCALE) for k in n.tolist()], dtype=np.float64)  # as math.exp does
        return [None] * len(n), lo + (hi - lo) * ((1.0 - decay) if self.sign > 0 else decay)


class LongerEvaluator(_LengthEvaluator):
    """Prefers the longer response (pairwise); scores longer responses higher (pointwise)."""

    kind = "longer"
    sign = 1


class ShorterEvaluator(_LengthEvaluator):
    """Prefers the shorter response (pairwise); scores shorter responses higher (pointwise)."""

    kind = "shorter"
    sign = -1


def _texts(table, key: str):
    """Column ``key`` as text (``str`` of each value), missing values and a missing column as ""."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from registry.domain.judgments import text_column

    if key not in table.column_names:
        return pa.array([""] * table.num_rows, type=pa.string())
    col = text_column(table.column(key))
    return pc.fill_null(col, pa.scalar("", col.type))


def _arrow(values, kind):
    """A rule's labels or scores as an Arrow array of ``kind``."""
    import pyarrow as pa

    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values if values.type == kind else values.cast(kind)
    return pa.array(values, type=kind)


def _lengths(table, key: str):
    """Characters of column ``key`` in each row (as ``len(_text(...))``), as int64."""
    import numpy as np
    import pyarrow.compute as pc

    return np.asarray(pc.utf8_length(_texts(table, key)).to_numpy(zero_copy_only=False), dtype=np.int64)


RandomEvaluator._mirrors = RandomEvaluator._rule
AlwaysFirstEvaluator._mirrors = AlwaysFirstEvaluator._rule
AlwaysSecondEvaluator._mirrors = AlwaysSecondEvaluator._rule
LongerEvaluator._mirrors = ShorterEvaluator._mirrors = _LengthEvaluator._rule

__all__ = ["AlwaysFirstEvaluator", "AlwaysSecondEvaluator", "HeuristicConfig", "LongerEvaluator", "RandomConfig",
           "RandomEvaluator", "ShorterEvaluator"]
