"""Perturbation probes of a pairwise table (issue 15, EvalBiasBench-style): transforms that target
one bias of a judge while keeping the human preference known.

Each transform takes the pairwise columns (``response_a``, ``response_b``, ``label`` — lists or
arrays, one entry per row) and returns new columns (object arrays) and a mask of the rows it
changed; the example ids and every other column are kept, so a judge's runs on the parent and on
the probe pair up by example id. Randomness comes from one ``numpy.random.Generator(PCG64(seed))``
drawn once per call in a documented order, so a derivation is reproducible from its lineage
(parent version, transform, parameters, seed).

Transforms (:data:`TRANSFORMS`):

* ``swap`` — position bias. Exchange ``response_a`` and ``response_b`` and flip the label (A ↔ B;
  tie stays tie) and every annotator label. Every row changes, ties included. A judge without
  position bias keeps its accuracy; one that always answers "first" goes from p to 1 − p.
* ``pad-worse`` — verbosity bias. Append content-free filler sentences (:data:`FILLER`, drawn at
  random) to the human-dispreferred response until it is at least ``ratio`` × the preferred
  response's length and at least ``min_chars`` longer than before. A length-biased judge gets worse.
* ``pad-better`` — the control of ``pad-worse``: the same filler on the preferred response.
* ``truncate-better`` — incompleteness: keep the first ``floor(keep × length)`` characters of the
  preferred response (cut mid-sentence, mid-word). A judge that reads for completeness should
  notice; a judge that does not drops.
* ``format-worse`` — superficial quality: dress the dispreferred response in markdown — a heading
  drawn from :data:`HEADINGS`, each line (or, for a one-line response, each sentence) as a bullet
  whose first ``bold_words`` words are bold. The content is unchanged, but the response also gets
  longer (heading and markup), so a length-biased judge is pushed the same way.

Ties. The better/worse transforms leave rows labelled ``tie`` unchanged (there is no worse
response to pad or better one to cut): they stay in the probe, identical to the parent's rows, so
the probe has the parent's example ids and a judge's accuracy on them does not move.

Random draws, in order: ``pad-*`` draws one ``(rows, k)`` matrix of filler indices
(``Generator.integers(len(FILLER), size=(rows, k))`` with ``k`` from :func:`_filler_width`);
``format-worse`` draws one heading index per row (``Generator.integers(len(HEADINGS), size=rows)``);
``swap`` and ``truncate-better`` draw nothing. Every row gets its draw whether it changes or not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from registry.errors import InvalidInput

PAIRWISE_LABELS = ("A", "B", "tie")

FILLER: tuple[str, ...] = (
    "I hope this helps.",
    "Let me know if you have any other questions.",
    "This is an important point to keep in mind.",
    "As mentioned above, this answers the question.",
    "There are many ways to think about this.",
    "It is worth noting that context matters here.",
    "In summary, the answer is given above.",
    "Thank you for your question.",
)
"""Content-free sentences of the padding transforms (they add length, not information)."""

HEADINGS: tuple[str, ...] = ("## Answer", "## Response", "### Summary", "## Overview")
"""Markdown headings of ``format-worse``."""


@dataclass(frozen=True)
class Param:
    """One parameter of a transform: its type, default and allowed range."""

    name: str
    kind: type
    default: float | int
    low: float
    high: float
    low_open: bool = False
    high_open: bool = False
    doc: str = ""

    def check(self, transform: str, value: Any) -> float | int:
        """``value`` (a number, or text from the command line) as this parameter's type, in range."""
        parsed = _number(value, self.kind)
        if parsed is None:
            what = "an integer" if self.kind is int else "a number"
            raise InvalidInput(f"{transform}: parameter {self.name} must be {what}, got {value!r}", field=self.name)
        below = parsed <= self.low if self.low_open else parsed < self.low
        above = parsed >= self.high if self.high_open else parsed > self.high
        if below or above:
            lo = ("(" if self.low_open else "[") + f"{self.low:g}"
            hi = f"{self.high:g}" + (")" if self.high_open else "]")
            raise InvalidInput(f"{transform}: parameter {self.name} must be in {lo}, {hi}, got {parsed!r}",
                               field=self.name)
        return parsed


def _number(value: Any, kind: type) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = int(value.strip()) if kind is int else float(value.strip())
        except ValueError:
            return None
    if kind is int:
        if isinstance(value, (int, np.integer)):
            return int(value)
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return int(value)
        return None
    if isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(float(value)):
        return float(value)
    return None


@dataclass(frozen=True)
class TransformInfo:
    """What a transform targets and the parameters it takes."""

    name: str
    bias: str
    """``position``, ``verbosity``, ``completeness`` or ``superficial quality``."""
    doc: str
    params: tuple[Param, ...] = ()

    def defaults(self) -> dict[str, float | int]:
        return {p.name: p.default for p in self.params}


_PAD_PARAMS = (
    Param("ratio", float, 1.5, 1.0, 100.0, doc="the padded response is at least ratio × the other's length"),
    Param("min_chars", int, 100, 1, 100_000, doc="at least this many characters of filler are added"),
)

TRANSFORMS: dict[str, TransformInfo] = {t.name: t for t in (
    TransformInfo("swap", "position", "exchange response_a and response_b and flip the labels (A <-> B)"),
    TransformInfo("pad-worse", "verbosity", "append content-free filler to the dispreferred response", _PAD_PARAMS),
    TransformInfo("pad-better", "verbosity (control)", "append content-free filler to the preferred response",
                  _PAD_PARAMS),
    TransformInfo("truncate-better", "completeness", "keep only the first part of the preferred response",
                  (Param("keep", float, 0.5, 0.0, 1.0, low_open=True, high_open=True,
                         doc="fraction of the preferred response's characters kept"),)),
    TransformInfo("format-worse", "superficial quality", "dress the dispreferred response in markdown (heading, "
                  "bullets, bold)", (Param("bold_words", int, 2, 0, 50, doc="words made bold at the start of "
                                         "each bullet"),)),
)}


def transform_info(transform: str) -> TransformInfo:
    """The transform named ``transform``; an unknown name is an :class:`InvalidInput` listing them."""
    info = TRANSFORMS.get(transform) if isinstance(transform, str) else None
    if info is None:
        import difflib

        close = difflib.get_close_matches(str(transform), list(TRANSFORMS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InvalidInput(f"unknown probe transform {transform!r}{hint}; one of {', '.join(TRANSFORMS)}",
                           field="transform")
    return info


def check_params(transform: str, params: Mapping[str, Any] | None) -> dict[str, float | int]:
    """The transform's parameters: ``params`` (numbers, or text as the command line gives them)
    checked and converted, the defaults for those not given. An unknown name or a bad value is an
    :class:`InvalidInput` naming it."""
    info = transform_info(transform)
    params = dict(params or {})
    known = {p.name: p for p in info.params}
    unknown = sorted(set(params) - set(known))
    if unknown:
        takes = f"takes {', '.join(known)}" if known else "takes no parameters"
        raise InvalidInput(f"{transform} has no parameter {', '.join(map(repr, unknown))}; it {takes}",
                           field=unknown[0])
    return {name: p.check(transform, params[name]) if name in params else p.default for name, p in known.items()}


def check_seed(seed: Any) -> int:
    """A seed: an integer ≥ 0."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidInput(f"the seed must be an integer >= 0, got {seed!r}", field="seed")
    return int(seed)


@dataclass(frozen=True)
class Probe:
    """The transformed columns of a pairwise table and which rows changed."""

    transform: str
    params: dict[str, float | int]
    seed: int
    response_a: np.ndarray
    response_b: np.ndarray
    label: np.ndarray
    changed: np.ndarray
    """Boolean mask of the rows whose content differs from the parent's."""
    annotator_labels: list | None = field(default=None, repr=False)
    """Every row's annotator labels (swapped by ``swap``), or ``None`` when not given."""

    @property
    def n_changed(self) -> int:
        return int(self.changed.sum())


def _texts(values: Sequence[Any] | np.ndarray, what: str) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    bad = [i for i, v in enumerate(out) if not isinstance(v, str)]
    if bad:
        raise InvalidInput(f"{what} must be text; row {bad[0]} holds {out[bad[0]]!r}", field=what)
    return out


def _lengths(texts: np.ndarray) -> np.ndarray:
    return np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))


def apply_probe(transform: str, response_a: Sequence[str] | np.ndarray, response_b: Sequence[str] | np.ndarray,
                label: Sequence[str] | np.ndarray, *, params: Mapping[str, Any] | None = None, seed: int = 0,
                annotator_labels: Sequence[Sequence[str] | None] | None = None) -> Probe:
    """Apply ``transform`` (see the module docstring) with ``params`` (defaults for those not given)
    and ``seed`` to the rows of a pairwise table."""
    info = transform_info(transform)
    resolved = check_params(transform, params)
    seed = check_seed(seed)
    a, b = _texts(response_a, "response_a"), _texts(response_b, "response_b")
    y = np.empty(len(label), dtype=object)
    y[:] = list(label)
    if not (len(a) == len(b) == len(y)):
        raise InvalidInput(f"response_a, response_b and label must have one length; got {len(a)}, {len(b)}, {len(y)}",
                           field="label")
    unknown = sorted({str(v) for v in y if v not in PAIRWISE_LABELS})
    if unknown:
        raise InvalidInput(f"pairwise labels must be A, B or tie; found {', '.join(unknown[:5])}", field="label")
    if annotator_labels is not None and len(annotator_labels) != len(y):
        raise InvalidInput(f"annotator_labels has {len(annotator_labels)} rows, the table {len(y)}",
                           field="annotator_labels")
    rng = np.random.Generator(np.random.PCG64(seed))
    votes = list(annotator_labels) if annotator_labels is not None else None
    if info.name == "swap":
        new_y = flip_labels(y)
        if votes is not None:
            votes = [None if v is None else list(flip_labels(np.asarray(list(v), dtype=object))) for v in votes]
        return Probe(transform, resolved, seed, b.copy(), a.copy(), new_y, np.ones(len(y), dtype=bool), votes)
    better_is_a, better_is_b = y == "A", y == "B"
    target_better = info.name in ("pad-better", "truncate-better")
    # the response the transform edits (per row: A or B), and the other one
    edit_a = better_is_a if target_better else better_is_b
    edit_b = better_is_b if target_better else better_is_a
    rows = edit_a | edit_b
    text = np.where(edit_a, a, b)
    other = np.where(edit_a, b, a)
    if info.name in ("pad-worse", "pad-better"):
        new = pad(text, other, rng, ratio=resolved["ratio"], min_chars=resolved["min_chars"])
    elif info.name == "truncate-better":
        new = truncate(text, keep=resolved["keep"])
    else:
        new = dress(text, rng, bold_words=resolved["bold_words"])
    new_a = np.where(edit_a, new, a)
    new_b = np.where(edit_b, new, b)
    changed = rows & ((new_a != a) | (new_b != b))
    return Probe(transform, resolved, seed, new_a, new_b, y.copy(), changed, votes)


def flip_labels(labels: np.ndarray) -> np.ndarray:
    """A ↔ B, anything else (tie) unchanged."""
    labels = np.asarray(labels, dtype=object)
    return np.where(labels == "A", "B", np.where(labels == "B", "A", labels)).astype(object)


_FILLER_LEN = np.array([len(s) for s in FILLER], dtype=np.int64)


def _filler_width(need: np.ndarray) -> int:
    """Columns of the filler draw: enough sentences for the largest need even with the shortest
    sentence (each sentence costs its length plus one space)."""
    most = int(need.max()) if len(need) else 0
    return max(1, -(-most // (int(_FILLER_LEN.min()) + 1)))


def filler_needed(text: np.ndarray, other: np.ndarray, *, ratio: float, min_chars: int) -> np.ndarray:
    """Characters of filler each text needs: at least ``min_chars``, and enough that the padded
    text is at least ``ratio`` × the other's length."""
    n_text, n_other = _lengths(text), _lengths(other)
    return np.maximum(min_chars, np.ceil(ratio * n_other).astype(np.int64) - n_text)


def pad(text: np.ndarray, other: np.ndarray, rng: np.random.Generator, *, ratio: float, min_chars: int) -> np.ndarray:
    """Each text followed by random :data:`FILLER` sentences (a space before each, a blank line
    before the first) until :func:`filler_needed` characters are added."""
    need = filler_needed(text, other, ratio=ratio, min_chars=min_chars)
    draws = rng.integers(len(FILLER), size=(len(text), _filler_width(need)))
    # characters added after k sentences: 2 ("\n\n") for the first, 1 for each later, plus the sentences
    added = np.cumsum(_FILLER_LEN[draws] + 1, axis=1) + 1
    count = (added < need[:, None]).sum(axis=1) + 1  # sentences until the need is met
    out = np.empty(len(text), dtype=object)
    out[:] = [t + "\n\n" + " ".join(FILLER[j] for j in row[:k]) for t, row, k in zip(text, draws, count, strict=True)]
    return out


def truncate(text: np.ndarray, *, keep: float) -> np.ndarray:
    """The first ``floor(keep × length)`` characters of each text."""
    cut = np.floor(keep * _lengths(text)).astype(np.int64)
    out = np.empty(len(text), dtype=object)
    out[:] = [t[:k] for t, k in zip(text, cut, strict=True)]
    return out


_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _pieces(text: str) -> list[str]:
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    if len(lines) <= 1:
        lines = [x.strip() for x in _SENTENCE.split(text.strip()) if x.strip()]
    return lines


def _bullet(piece: str, bold_words: int) -> str:
    words = piece.split(" ")
    if bold_words and words[0]:
        head, rest = " ".join(words[:bold_words]), " ".join(words[bold_words:])
        return f"- **{head}**" + (f" {rest}" if rest else "")
    return f"- {piece}"


def dress(text: np.ndarray, rng: np.random.Generator, *, bold_words: int) -> np.ndarray:
    """Each text in markdown: a random heading of :data:`HEADINGS`, a blank line, then each of its
    lines (a one-line text: each sentence) as a bullet whose first ``bold_words`` words are bold."""
    heads = rng.integers(len(HEADINGS), size=len(text))
    out = np.empty(len(text), dtype=object)
    out[:] = [HEADINGS[h] + "\n\n" + "\n".join(_bullet(p, bold_words) for p in _pieces(t))
              for t, h in zip(text, heads, strict=True)]
    return out


def flip_rate(parent: Sequence[float] | np.ndarray, probe: Sequence[float] | np.ndarray) -> float:
    """Share of paired examples whose per-example value (e.g. correctness or credit) differs
    between a judge's run on the parent and on the probe: a position-biased judge's accuracy on a
    ``swap`` probe can stay near its parent's accuracy (p → 1 − p) while every verdict flips.
    NaN for no examples."""
    a, b = np.asarray(parent, dtype=np.float64), np.asarray(probe, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise InvalidInput(f"paired values must be 1-D of one length; got {a.shape} and {b.shape}", field="probe")
    return float(np.mean(np.abs(a - b) > 1e-12)) if len(a) else float("nan")


__all__ = ["FILLER", "HEADINGS", "TRANSFORMS", "Param", "Probe", "TransformInfo", "apply_probe", "check_params",
           "check_seed", "dress", "filler_needed", "flip_labels", "flip_rate", "pad", "transform_info", "truncate"]
