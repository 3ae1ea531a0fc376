"""From a run's predictions to its stored metrics: align predictions with the dataset's human
labels, then call the pure metric functions of :mod:`registry.domain.metrics`.

Headline metrics (what ``best`` and leaderboards rank by, unless told otherwise):

* pairwise ``accuracy``: ReIFE accuracy (mean of both orders, expected credit ½ for a tie verdict or
  a parse failure against an A/B label) — on every pairwise set. On sets whose human labels include
  ties (PandaLM) ties are a real class, and the headline is ``accuracy_3way`` (the share of
  verdicts equal to the 3-way label, mean over the orders judged, as PandaLM reports it), stored
  beside ``accuracy`` on those sets only (:func:`headline_for`);
* pointwise ``spearman`` (example level; ``pearson``, ``kendall`` and ``system_*`` beside it);
* classification ``balanced_accuracy`` (LLM-AggreFact's headline).

Every stored name is defined once in :mod:`registry.domain.metrics.catalog`.

Slices: the headline metrics (:data:`~registry.domain.metrics.catalog.SLICED`) are also stored
per value of any column the caller names (``slice_by``; default ``category`` when the dataset has
more than one category; an empty list slices nothing), as ``"<column>=<value>"``. A column is a column of the dataset table
holding single values, or a key of its ``metadata`` JSON (``metadata.<key>``). Slices with fewer
than ``min_slice_size`` judged examples are skipped; ``coverage``'s ``extra["slices"]`` lists per
column the slices computed and skipped, with the reason.

``coverage`` is the share of the dataset's examples with at least one parsed verdict (pairwise:
A, B or tie, or a log-probability), score (pointwise) or label (classification), over any order
and sample; its extra keeps ``rows``, ``with_predictions`` (examples with any prediction row),
``unparsed`` (of those, examples without a parsed one) and ``aligned`` (examples with a prediction
in every order judged: the ``n`` of the other metrics).

Parse failures and ties (pairwise), per example and order, are counted in the accuracy metrics'
``extra`` (``ties_order0``, ``failures_order1`` …) and resolved by a stated, seeded rule: ``accuracy``
gives each the expected credit ½ of a fair A/B coin (ReIFE; 0 against a tie label), ``accuracy_flip``
draws that coin from a generator seeded by the run's seed, order and example position (so the
same run always gets the same coins), ``accuracy_strict`` / LLMBar's figures count them wrong.
Samples of one example and order are first reduced by strict plurality (no plurality = failure).
Pointwise: an example whose rating did not parse is left out of the correlations (their ``extra``
``dropped`` counts them; fewer than two parsed ratings give no correlation at all); classification:
an unparsed label is a wrong prediction.

Logprob verdicts: when the judge gave ``prob_a`` (P(response_a better), from the choices'
log-probabilities, already mapped to the original orientation), ``accuracy_logprob`` averages
``prob_a`` over the orders judged (and samples) and takes A above ½, B below, tie at ½ (as ReIFE);
an example without ``prob_a`` counts as a failure (credit ½). On tie-labelled sets
``accuracy_logprob_3way`` scores the same verdicts against the 3-way label.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from registry.domain import metrics as M
from registry.domain.arrays import one_array
from registry.domain.entities import MetricRecord
from registry.domain.judgments import FAIL, VERDICT_CODES, encode_verdicts
from registry.domain.metrics.catalog import HEADLINE, headline_metric  # noqa: F401 (HEADLINE: re-exported)
from registry.domain.metrics.slices import SliceReport, sliced
from registry.domain.metrics.suite import HUMAN_FIELDS
from registry.errors import InvalidInput
from registry.services.standings import RunExamples

METADATA = "metadata"
"""The dataset column holding a JSON object of source-specific extras (sliceable by key)."""


@dataclass(frozen=True)
class Aligned:
    """Predictions aligned with the dataset rows that have them (order 0 and, if judged, 1)."""

    rows: np.ndarray
    """Indices into the dataset table of the examples with a judgment."""
    verdict: list[np.ndarray | list | ArrowValues]
    """Per order, each example's verdict (``None``: none), as a list (or :class:`ArrowValues`)."""
    score: list[np.ndarray]
    prob_a: list[np.ndarray]
    seconds: np.ndarray
    tokens: np.ndarray


def version_has_tie_labels(version) -> bool:
    """Whether a pairwise dataset version's human labels include ties (from its statistics)."""
    dist = (version.statistics or {}).get("label_distribution") or {}
    return version.task_type == "pairwise" and bool(dist.get("tie"))


def headline_for(version) -> str:
    """The headline metric of a dataset version (see :mod:`registry.domain.metrics.catalog`)."""
    return headline_metric(version.task_type, tie_labels=version_has_tie_labels(version))


def _majority(values: Sequence) -> object:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    uniq, counts = np.unique(np.array(vals, dtype=object).astype(str), return_counts=True)
    top = counts.max()
    return uniq[counts.argmax()] if (counts == top).sum() == 1 else None


@dataclass
class PredictionArrays:
    """Prediction rows as arrays, in the predictions table's row order: what :func:`align` and the
    coverage count need, without the per-row Python objects (a streamed run builds it chunk by chunk,
    :func:`compute_metrics` from a predictions table)."""

    pos: np.ndarray
    """Dataset row of each prediction row (int64; -1: an example id the dataset does not have)."""
    order: np.ndarray
    verdict: np.ndarray
    """int32 code into :attr:`vocab` (-1: no verdict)."""
    vocab: list[str]
    score: np.ndarray
    """float64 (NaN where null: see :attr:`score_valid`)."""
    score_valid: np.ndarray
    prob_a: np.ndarray
    prob_valid: np.ndarray
    seconds: np.ndarray
    """float64, 0 where null."""
    tokens: np.ndarray
    """Prompt + completion tokens (float64, nulls as 0)."""

    @classmethod
    def from_predictions(cls, table: pa.Table, predictions: pa.Table) -> PredictionArrays:
        """The rows of a predictions table, placed on the dataset ``table``'s rows by example id."""
        import pyarrow.compute as pc

        ids = table.column("example_id")
        pos = pc.index_in(predictions.column("example_id"), value_set=ids.combine_chunks()
                          if isinstance(ids, pa.ChunkedArray) else ids)
        if len(ids) and len(set(ids.to_pylist())) != len(ids):  # repeated ids: the last row of an id wins
            last = {e: i for i, e in enumerate(ids.to_pylist())}
            pos = pa.array([None if e is None else last.get(e) for e in predictions.column("example_id").to_pylist()],
                           type=pa.int64())
        arrays = cls.from_columns(predictions, np.asarray(pos.fill_null(-1).to_numpy(zero_copy_only=False),
                                                          dtype=np.int64))
        return arrays

    @classmethod
    def from_columns(cls, predictions: pa.Table, pos: np.ndarray, vocab: dict[str, int] | None = None
                     ) -> PredictionArrays:
        """From prediction columns (:data:`~registry.domain.judgments.PREDICTION_COLUMNS`) and the
        dataset row of each; ``vocab`` (verdict → code) is extended in place when given."""
        vocab = {} if vocab is None else vocab
        verdict = predictions.column("verdict")
        verdict = verdict.combine_chunks() if isinstance(verdict, pa.ChunkedArray) else verdict
        codes = np.full(len(verdict), -1, dtype=np.int32)
        if len(verdict):
            enc = verdict.cast(pa.string()).dictionary_encode()
            local = np.array([vocab.setdefault(v, len(vocab)) for v in enc.dictionary.to_pylist()] + [-1],
                             dtype=np.int32)
            idx = enc.indices.fill_null(len(enc.dictionary)).to_numpy(zero_copy_only=False)
            codes = local[np.asarray(idx, dtype=np.int64)]

        def floats(name: str) -> tuple[np.ndarray, np.ndarray]:
            col = predictions.column(name)
            valid = np.asarray(col.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            values = np.asarray(col.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False),
                                dtype=np.float64)
            return values, valid

        def zeros_for_null(name: str) -> np.ndarray:
            return np.asarray(predictions.column(name).cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False),
                              dtype=np.float64)

        score, score_valid = floats("score")
        prob_a, prob_valid = floats("prob_a")
        tokens = (np.asarray(predictions.column("prompt_tokens").fill_null(0).to_numpy(zero_copy_only=False), np.int64)
                  + np.asarray(predictions.column("completion_tokens").fill_null(0).to_numpy(zero_copy_only=False),
                               np.int64))
        return cls(pos=np.asarray(pos, dtype=np.int64),
                   order=np.asarray(predictions.column("order").to_numpy(zero_copy_only=False), dtype=np.int8),
                   verdict=codes, vocab=list(vocab), score=score, score_valid=score_valid, prob_a=prob_a,
                   prob_valid=prob_valid, seconds=zeros_for_null("seconds"), tokens=tokens.astype(np.float64))

    @classmethod
    def concat(cls, parts: list[PredictionArrays], vocab: dict[str, int]) -> PredictionArrays:
        """Parts built with one shared ``vocab``, in row order."""
        def cat(name: str, dtype) -> np.ndarray:
            return np.concatenate([getattr(p, name) for p in parts]) if parts else np.zeros(0, dtype)

        return cls(pos=cat("pos", np.int64), order=cat("order", np.int8), verdict=cat("verdict", np.int32),
                   vocab=list(vocab), score=cat("score", np.float64), score_valid=cat("score_valid", bool),
                   prob_a=cat("prob_a", np.float64), prob_valid=cat("prob_valid", bool),
                   seconds=cat("seconds", np.float64), tokens=cat("tokens", np.float64))


def _verdicts(vocab: list[str], codes: np.ndarray, arrow: bool) -> list | ArrowValues:
    """The verdicts of codes into ``vocab`` (-1: ``None``): a list, or (``arrow``) the same values as
    :class:`ArrowValues` of a string array, built from the codes without Python objects."""
    if not arrow:
        return np.array(vocab + [None], dtype=object)[codes].tolist()
    indices = pa.array(np.asarray(codes, dtype=np.int32), mask=np.asarray(codes) < 0)
    return ArrowValues(pa.DictionaryArray.from_arrays(indices, pa.array(vocab, type=pa.string())).cast(pa.string()))


def _reduce_order(n_rows: int, covered: np.ndarray, rows: np.ndarray, arrays: PredictionArrays, arrow: bool = False
                  ) -> tuple[list | ArrowValues, np.ndarray, np.ndarray]:
    """One order's verdict (strict plurality over samples), mean score and mean ``prob_a`` for the
    covered rows, from the prediction rows ``rows`` (indices into ``arrays``) of that order
    (``arrow``: the verdicts as :class:`ArrowValues`, when no verdict is free text)."""
    pos = arrays.pos[rows]
    counts = np.bincount(pos, minlength=n_rows)
    if len(covered) and (counts[covered] == 1).all() and len(pos) == len(covered):  # one row per example
        at = np.empty(n_rows, dtype=np.int64)
        at[pos] = np.arange(len(pos))
        k = at[covered]
        verdicts = _verdicts(arrays.vocab, arrays.verdict[rows][k], arrow)
        score = np.where(arrays.score_valid[rows][k], arrays.score[rows][k], np.nan)
        prob = np.where(arrays.prob_valid[rows][k], arrays.prob_a[rows][k], np.nan)
        return verdicts, score, prob
    codes = arrays.verdict[rows]
    voted = codes >= 0
    n_codes = len(arrays.vocab)
    if n_codes <= 64:
        tally = np.bincount(pos[voted] * n_codes + codes[voted], minlength=n_rows * n_codes).reshape(n_rows, n_codes)
        top = tally.max(axis=1) if n_codes else np.zeros(n_rows, np.int64)
        # the vote's winner as _majority gives it: the one value with the most votes (by its text)
        winners = (tally == top[:, None]) & (top[:, None] > 0)
        single = winners.sum(axis=1) == 1
        pick = np.where(single, tally.argmax(axis=1) if n_codes else -1, -1)
        verdicts = _verdicts(arrays.vocab, pick[covered], arrow)
    else:  # free-text verdicts: one example at a time
        groups: dict[int, list] = {}
        for p, c in zip(pos.tolist(), codes.tolist()):
            groups.setdefault(p, []).append(arrays.vocab[c] if c >= 0 else None)
        verdicts = [_majority(groups.get(i, [])) for i in covered.tolist()]
        verdicts = [None if v is None else str(v) for v in verdicts]

    def mean(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
        total = np.bincount(pos[valid], weights=values[rows][valid], minlength=n_rows)
        n = np.bincount(pos[valid], minlength=n_rows)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = total / n
        return np.where(n > 0, out, np.nan)[covered]

    return (verdicts, mean(arrays.score, arrays.score_valid[rows]),
            mean(arrays.prob_a, arrays.prob_valid[rows]))


def align_arrays(n_rows: int, arrays: PredictionArrays, *, arrow: bool = False) -> Aligned:
    """:func:`align` of prediction rows given as arrays (``arrow``: verdicts as :class:`ArrowValues`
    where they are not free text)."""
    known = arrays.pos >= 0
    orders = sorted(set(np.unique(arrays.order).tolist()))
    per = {o: np.flatnonzero(known & (arrays.order == o)) for o in orders}
    covered_mask = np.ones(n_rows, bool) if orders else np.zeros(n_rows, bool)
    for o in orders:
        has = np.zeros(n_rows, bool)
        has[arrays.pos[per[o]]] = True
        covered_mask &= has
    rows = np.flatnonzero(covered_mask).astype(np.int64)
    seconds = np.bincount(arrays.pos[known], weights=arrays.seconds[known], minlength=n_rows)
    tokens = np.bincount(arrays.pos[known], weights=arrays.tokens[known], minlength=n_rows)
    verdicts, scores, probs = [], [], []
    for o in orders:
        v, sc, pr = _reduce_order(n_rows, rows, per[o], arrays, arrow)
        verdicts.append(v)
        scores.append(np.asarray(sc, dtype=float))
        probs.append(np.asarray(pr, dtype=float))
    return Aligned(rows=rows, verdict=verdicts, score=scores, prob_a=probs, seconds=seconds[rows], tokens=tokens[rows])


def align(table: pa.Table, predictions: pa.Table) -> Aligned:
    """Per order, one verdict/score per example (samples: majority verdict, mean score)."""
    return align_arrays(table.num_rows, PredictionArrays.from_predictions(table, predictions))


def _records(values) -> list[MetricRecord]:
    out = []
    for m in values:
        d = m.as_dict()
        out.append(MetricRecord(name=d["name"], value=d["value"], ci_low=d["ci_low"], ci_high=d["ci_high"],
                                n=d["n"], slice=d["slice"], extra=_plain(d["extra"])))
    return out


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def column_at(table: pa.Table, name: str, rows: np.ndarray) -> list:
    """The values of column ``name`` at ``rows`` (``None`` for each when the table has no such column)."""
    if name not in table.column_names:
        return [None] * len(rows)
    return table.column(name).take(pa.array(np.asarray(rows, dtype=np.int64))).to_pylist()


class ArrowValues(Sequence):
    """A column's values at some rows, read as the list ``to_pylist`` gives (made on the first value
    read), and kept as the Arrow array until then: what the pairwise metrics read only through codes
    (labels, annotator votes, verdicts, slice keys) is never turned into Python objects, nor, per
    slice, taken as a list (:meth:`at`, which :meth:`~registry.domain.metrics.RunScores.subset` uses:
    the positions are only noted until the values are needed)."""

    __slots__ = ("_array", "_base", "_idx", "_list")

    def __init__(self, array: pa.Array, idx: np.ndarray | None = None):
        self._base, self._idx = array, idx
        self._array: pa.Array | None = array if idx is None else None
        self._list: list | None = None

    @property
    def array(self) -> pa.Array:
        """The values as an Arrow array."""
        if self._array is None:
            self._array = self._base.take(pa.array(self._idx))
        return self._array

    def _values(self) -> list:
        if self._list is None:
            self._list = self.array.to_pylist()
        return self._list

    def __len__(self) -> int:
        return len(self._base) if self._idx is None else len(self._idx)

    def __getitem__(self, i):
        return self._values()[i]

    def __iter__(self):
        return iter(self._values())

    def __eq__(self, other) -> bool:
        return list(self) == (list(other) if isinstance(other, (list, tuple, ArrowValues)) else other)

    __hash__ = None  # type: ignore[assignment]  # like a list

    def __repr__(self) -> str:
        return f"ArrowValues({self._values()!r})"

    def at(self, idx: np.ndarray) -> ArrowValues:
        """The values at positions ``idx``."""
        idx = np.asarray(idx, dtype=np.int64)
        return ArrowValues(self._base, idx if self._idx is None else self._idx[idx])


def _arrow_at(table: pa.Table, name: str, rows: np.ndarray) -> ArrowValues | list:
    """:func:`column_at` as :class:`ArrowValues`."""
    if name not in table.column_names:
        return [None] * len(rows)
    column = table.column(name).take(pa.array(np.asarray(rows, dtype=np.int64)))
    return ArrowValues(column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column)


ARROW_FIELDS = {"pairwise": ("label", "annotator_labels")}
"""Human fields kept as :class:`ArrowValues` (the built-in metrics read them only through codes)."""


def _has_tie_labels(table: pa.Table) -> bool:
    """Whether the dataset's human labels (all rows, judged or not) include ties."""
    if "label" not in table.column_names:
        return False
    column = table.column("label")
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        import pyarrow.compute as pc

        return bool(pc.any(pc.equal(column, "tie")).as_py())
    return "tie" in column.to_pylist()


TEXT_FEATURES = ("response_a", "response_b")
"""Pairwise human fields the metrics read only as features of the text (length in characters, and
whether it holds a list: AlpacaEval's length and list biases)."""

_WS = ("\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}"
       "\\x{205f}\\x{3000}")
_LIST_ITEM = f"[{_WS}]*(?:[-*+\u2022]|\\p{{Nd}}+[.)])[{_WS}]+[^{_WS}]"
""":data:`registry.domain.metrics.alpacaeval._LIST_LINE` without its ``^``, for Arrow's RE2: Python's
``\\s`` (every character ``str.isspace`` accepts) and ``\\d`` (Unicode decimal digits) spelled out."""
HAS_LIST_RE2 = (f"(?s)\\A{_LIST_ITEM}.*\\n{_LIST_ITEM}", f"(?s)\\n{_LIST_ITEM}.*\\n{_LIST_ITEM}")
"""Whether a text has two list lines (:func:`~registry.domain.metrics.alpacaeval.has_list`: two
non-overlapping matches of ``_LIST_LINE``, an item at a line start) as two searches that stop at the
second: an item at the text's start or after a line break, then one after a later line break. The same answer:
an item matched at a line start is the only match there (each part's run of whitespace or digits
must end where it does), it ends on a non-space (so the later break is past its end), and when any
two line starts hold non-overlapping items, so do the first item found and a later one (tests
compare with Python's ``re`` on every real text and on generated ones). RE2 skips from one line
break to the next while no item has started: ~3× faster than counting every match."""


def text_features(column) -> tuple[np.ndarray, np.ndarray]:
    """(length in characters, holds a list) of each text of an Arrow column, as the length and list
    biases compute them from the text (``len``; :func:`~registry.domain.metrics.alpacaeval.has_list`);
    a missing text has length 0 and no list."""
    import pyarrow.compute as pc

    column = one_array(column)  # one chunk (a chunk's table): no copy of the texts
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        values = column.to_pylist()
        return (np.array([len(t) if isinstance(t, str) else 0 for t in values], dtype=float),
                np.array([M.has_list(t) for t in values], dtype=bool))
    lengths = np.asarray(pc.utf8_length(column).fill_null(0).to_numpy(zero_copy_only=False), dtype=float)
    first, later = (np.asarray(pc.match_substring_regex(column, p).fill_null(False).to_numpy(zero_copy_only=False))
                    for p in HAS_LIST_RE2)
    return lengths, first | later


def human_values(task_type: str, table: pa.Table, rows: np.ndarray,
                 features: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> dict[str, object]:
    """The dataset's :data:`~registry.domain.metrics.suite.HUMAN_FIELDS` at ``rows``, the pairwise texts
    as their features (:func:`text_features`: ``response_a`` its lengths, ``response_a_has_list``
    its list flags) — from ``features`` (one value per dataset row) when the table has no texts."""
    out: dict[str, object] = {}
    for f in HUMAN_FIELDS[task_type]:
        if f not in TEXT_FEATURES:
            out[f] = _arrow_at(table, f, rows) if f in ARROW_FIELDS.get(task_type, ()) else column_at(table, f, rows)
            continue
        got = (features or {}).get(f)
        if got is None:
            if f in table.column_names:
                got = text_features(table.column(f))
            else:
                got = (np.zeros(table.num_rows), np.zeros(table.num_rows, bool))
        out[f], out[f"{f}_has_list"] = got[0][rows], got[1][rows]
    return out


def run_scores(task_type: str, table: pa.Table, al: Aligned, *, seed: int = 0, n_boot: int = 1000,
               classes: Sequence[str] | None = None, price_per_1k_tokens: float | None = None,
               features: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> M.RunScores:
    """The aligned run as the registered metric functions take it (:class:`~registry.domain.metrics.RunScores`),
    with one seeded bootstrap draw shared by all its metrics."""
    human = human_values(task_type, table, al.rows, features)
    votes = None
    if task_type == "pairwise" and "annotator_labels" in table.column_names and len(al.rows):
        labels = human["annotator_labels"]
        votes = annotator_vote_matrix(labels.array if isinstance(labels, ArrowValues)
                                      else table.column("annotator_labels").take(pa.array(al.rows)))
    boot = M.Bootstrap.draw(len(al.rows), n_boot, seed).with_classes(
        example_classes(task_type, human, al, seed, votes=votes if votes is not None else False))
    run = M.RunScores(task_type=task_type, human=human,
                      verdicts=tuple(al.verdict), scores=tuple(al.score), prob_a=tuple(al.prob_a),
                      seconds=al.seconds, tokens=al.tokens, boot=boot,
                      seed=seed, tie_labels=task_type == "pairwise" and _has_tie_labels(table),
                      classes=tuple(classes) if classes else None, price_per_1k_tokens=price_per_1k_tokens)
    if task_type == "pairwise":
        _keep_codes(run, verdict_codes(human["label"]), tuple(verdict_codes(v) for v in al.verdict))
        # the annotators' votes as the metrics code them (None: no example has two), from the Arrow lists
        run.__dict__["annotator_vote_codes"] = votes
    return run


def _keep_codes(run: M.RunScores, labels: np.ndarray, verdicts: tuple[np.ndarray, ...]) -> None:
    """Give a pairwise run its :attr:`~registry.domain.metrics.RunScores.label_codes` and
    :attr:`~registry.domain.metrics.RunScores.verdict_codes` (cached properties: what they would
    compute, here without a Python pass over the examples)."""
    run.__dict__["label_codes"] = labels
    run.__dict__["verdict_codes"] = verdicts


def _string_array(values) -> pa.Array | None:
    """``values`` (a list or 1-D array) as an Arrow string array when every value is a ``str`` or
    ``None`` (numpy ``str_`` included), else ``None``."""
    if isinstance(values, ArrowValues):
        values = values.array
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    elif isinstance(values, np.ndarray) and values.dtype.kind == "U":
        if values.ndim != 1:
            return None
        arr = pa.array(values.tolist(), type=pa.string())
    elif isinstance(values, np.ndarray) and values.dtype != object:
        return None
    else:
        try:
            arr = pa.array(values if isinstance(values, list) else list(values), from_pandas=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            return None
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.string())
    if pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())
    return arr if pa.types.is_string(arr.type) else None


def _dictionary(arr: pa.Array) -> tuple[np.ndarray, list]:
    """(index of each value into the dictionary, with nulls at ``len(dictionary)``; the distinct
    values) of an Arrow array."""
    enc = arr.dictionary_encode()
    values = enc.dictionary.to_pylist()
    idx = np.asarray(enc.indices.fill_null(len(values)).to_numpy(zero_copy_only=False), dtype=np.int64)
    return idx, values


def _compact(codes: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """Codes 0..k-1 renumbered to those present, in order (``np.unique(codes, return_inverse=True)``)."""
    present = np.bincount(codes, minlength=k) > 0
    remap = np.cumsum(present) - 1
    return remap[codes].astype(np.int64), int(present.sum())


def _codes(values) -> tuple[np.ndarray, int]:
    """Integer codes 0..k-1 of ``values`` (any 1-D array or list; None/NaN are a value), and k:
    each value's rank among the distinct values, texts (``str`` of each, None as ``"\\x00"``) as
    numpy sorts them. Strings go through an Arrow dictionary (only the distinct values are sorted),
    small non-negative integers and booleans through a count, the rest through ``np.unique``
    (tests/services/test_scoring_vectorised.py compares with the plain ``np.unique`` coding)."""
    if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype.kind in "iub":
        arr = values.astype(np.int64) if values.dtype.kind == "b" else values
        if len(arr) == 0:
            return np.zeros(0, np.int64), 0
        lo, hi = int(arr.min()), int(arr.max())
        if lo >= 0 and hi < 4 * len(arr) + 65536:
            return _compact(np.asarray(arr, dtype=np.int64), hi + 1)
    elif not isinstance(values, np.ndarray) or values.dtype == object or values.dtype.kind == "U":
        strings = _string_array(values) if len(values) else None
        if strings is not None:
            idx, distinct = _dictionary(strings)
            texts = np.array(["\x00" if v is None else str(v) for v in distinct] + ["\x00"])
            _, rank = np.unique(texts, return_inverse=True)
            rank = rank.astype(np.int64).ravel()
            return _compact(rank[idx], int(rank.max()) + 1)
    arr = np.asarray(values)
    if arr.dtype == object or arr.dtype.kind in "US":
        arr = np.array(["\x00" if v is None else str(v) for v in values])
    if arr.dtype.kind == "f" and arr.ndim == 1 and len(arr):
        lo, hi = arr.min(), arr.max()   # whole numbers of a small range (NaN makes these NaN): by a count
        if np.isfinite(lo) and np.isfinite(hi) and hi - lo < 4 * len(arr) + 65536 and (arr == np.floor(arr)).all():
            return _compact((arr - lo).astype(np.int64), int(hi - lo) + 1)
    if arr.dtype.kind == "f":
        arr = np.where(np.isnan(arr), np.inf, arr)
    _, codes = np.unique(arr, return_inverse=True)
    return codes.astype(np.int64).ravel(), int(codes.max()) + 1 if len(codes) else 0


def verdict_codes(verdicts) -> np.ndarray:
    """:func:`~registry.domain.judgments.encode_verdicts` through an Arrow dictionary when the
    verdicts are all ``str`` or ``None`` (one lookup per distinct verdict), else that function."""
    strings = _string_array(verdicts) if len(verdicts) else None
    if strings is None:
        return encode_verdicts(verdicts)
    idx, distinct = _dictionary(strings)
    table = np.array([VERDICT_CODES.get(v, FAIL) for v in distinct] + [FAIL], dtype=np.int8)
    return table[idx]


def annotator_vote_matrix(column) -> np.ndarray | None:
    """:func:`~registry.domain.metrics.builtin.annotator_votes` of an Arrow column of annotator label
    lists (one list per example), without Python objects: lengths from the list offsets, the labels
    flattened in row order and coded through their dictionary. ``None`` as there."""
    import pyarrow.compute as pc

    from registry.domain.metrics.builtin import annotator_votes

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
        return annotator_votes(column.to_pylist())
    lengths = np.asarray(pc.list_value_length(column).fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    if not (lengths >= 2).any():
        return None
    flat = pc.list_flatten(column)
    codes = verdict_codes(flat) if pa.types.is_string(flat.type) or pa.types.is_large_string(flat.type) \
        or pa.types.is_null(flat.type) else encode_verdicts(flat.to_pylist())
    votes = np.full((len(column), int(lengths.max())), FAIL, dtype=np.int8)
    votes[np.arange(votes.shape[1])[None, :] < lengths[:, None]] = codes
    return votes


def _joint(parts: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """One code per example for the combination of several codings."""
    code, k = np.zeros(len(parts[0][0]), np.int64), 1
    for c, m in parts:
        if k * m >= 2**62:
            code, k = _codes(code)
        code, k = code * m + c, k * m
    return _codes(code)[0]


MAX_VALUES = 64
"""Distinct per-example seconds / tokens above which they are left out of :func:`example_classes`."""


def example_classes(task_type: str, human: dict, al: Aligned, seed: int, *, votes=None
                    ) -> list[np.ndarray] | None:
    """Partitions of the aligned examples by what the registered metric functions of the task type
    compute per-example values from (verdict and label codes, coins, log-probability verdicts;
    the length and list features; annotator votes; seconds and tokens when they take few values),
    so that the run's bootstrap sums each metric from per-class counts
    (:meth:`~registry.domain.metrics.Bootstrap.with_classes`; a sum no partition covers is computed
    directly, so this decides the speed only): their combination when it has at most
    :data:`~registry.domain.metrics.bootstrap.MAX_CLASSES` classes, else one partition per group of
    features. ``None`` for pointwise runs (scores). ``votes``: the annotator votes when the caller has
    them (:func:`annotator_vote_matrix`; ``False``: none), else from ``human``."""
    from registry.domain.metrics.alpacaeval import LENGTH_DELTA
    from registry.domain.metrics.bootstrap import MAX_CLASSES
    from registry.domain.metrics.builtin import annotator_votes
    from registry.domain.metrics.pairwise import prob_a_codes

    n = len(al.rows)
    if task_type == "pointwise" or n == 0:
        return None
    verdicts = [_codes(v) for v in al.verdict]
    groups = [verdicts + [_codes(human.get("label") or [None] * n)]]
    if task_type == "pairwise":
        groups[0] += [_codes(row) for row in M.coin_flips(n, seed)]
        logprob = prob_a_codes(al.prob_a, n)
        if logprob is not None:
            groups[0].append(_codes(logprob))
        la, lb = np.asarray(human["response_a"], float), np.asarray(human["response_b"], float)
        groups.append(verdicts + [_codes(np.sign(la - lb)), _codes(np.abs(la - lb) > LENGTH_DELTA),
                                  _codes(human["response_a_has_list"]), _codes(human["response_b_has_list"])])
        if votes is None:
            votes = annotator_votes(list(human.get("annotator_labels") or [None] * n))
        if votes is not None and votes is not False:
            groups.append(verdicts + [_codes(_joint([_codes(col) for col in votes.T]))])
    for values in (al.seconds, al.tokens):
        got = _codes(values)
        if got[1] <= MAX_VALUES:
            groups.append([got])
    # as few partitions as possible (each is one pass over the resamples): merge groups while the
    # combination stays within MAX_CLASSES classes
    parts = sorted((_codes(_joint(group)) for group in groups), key=lambda p: p[1])
    merged: list[tuple[np.ndarray, int]] = []
    for codes, k in parts:
        for i, (other, m) in enumerate(merged):
            if k * m <= MAX_CLASSES or _codes(other * k + codes)[1] <= MAX_CLASSES:
                merged[i] = _codes(other * k + codes)
                break
        else:
            merged.append((codes, k))
    return [codes for codes, _ in merged]


# ----------------------------------------------------------------------------------- slices
def _is_scalar_type(t: pa.DataType) -> bool:
    return not (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
                or pa.types.is_struct(t) or pa.types.is_map(t) or pa.types.is_union(t))


def _metadata(table: pa.Table) -> list[dict]:
    if METADATA not in table.column_names:
        return [{} for _ in range(table.num_rows)]
    out = []
    for text in table.column(METADATA).to_pylist():
        try:
            value = json.loads(text) if text else {}
        except (TypeError, ValueError):
            value = {}
        out.append(value if isinstance(value, dict) else {})
    return out


def slice_columns(table: pa.Table) -> list[str]:
    """What a dataset can be sliced by: its columns holding single values, then ``metadata.<key>``
    for every key of its metadata JSON."""
    cols = [f.name for f in table.schema if f.name != METADATA and _is_scalar_type(f.type)]
    keys = sorted({k for m in _metadata(table) for k in m})
    return cols + [f"{METADATA}.{k}" for k in keys]


def slice_values(table: pa.Table, column: str) -> list:
    """One value per dataset row of slice column ``column`` (see :func:`slice_columns`); an
    unknown column or one holding lists is an :class:`InvalidInput` listing the sliceable columns."""
    def unknown(why: str) -> InvalidInput:
        return InvalidInput(f"{why}; slice by one of: {', '.join(slice_columns(table))}", field="slice_by")

    if column in table.column_names and column != METADATA:
        if not _is_scalar_type(table.schema.field(column).type):
            raise unknown(f"column {column!r} holds lists or records, not single values")
        return table.column(column).to_pylist()
    key = column[len(METADATA) + 1:] if column.startswith(f"{METADATA}.") else column
    meta = _metadata(table)
    if not key or not any(key in m for m in meta):
        raise unknown(f"the dataset has no column or metadata key {column!r}")
    values = [m.get(key) for m in meta]
    if any(isinstance(v, (dict, list)) for v in values):
        raise unknown(f"metadata key {key!r} holds lists or objects, not single values")
    return values


def resolve_slice_by(table: pa.Table, slice_by: Sequence[str] | None) -> list[tuple[str, list]]:
    """``[(column, one value per dataset row)]`` to slice by. ``None``: ``category`` when the
    dataset has more than one category (else nothing); an explicit list is checked column by
    column (:func:`slice_values`)."""
    if slice_by is None:
        if "category" not in table.column_names:
            return []
        column = table.column("category")
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):  # without Python objects
            import pyarrow.compute as pc

            column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
            many = pc.count_distinct(column, mode="only_valid").as_py() > 1
            return [("category", ArrowValues(column))] if many else []
        values = column.to_pylist()
        return [("category", values)] if len({v for v in values if v is not None}) > 1 else []
    if isinstance(slice_by, str):
        slice_by = [slice_by]
    return [(c, slice_values(table, c)) for c in dict.fromkeys(slice_by)]


def check_slicing(table: pa.Table, slice_by: Sequence[str] | None, min_slice_size: int) -> list[tuple[str, list]]:
    """:func:`resolve_slice_by` after checking ``min_slice_size`` (a whole number ≥ 1); callers
    use it to refuse bad slicing options before they start a run."""
    if isinstance(min_slice_size, bool) or not isinstance(min_slice_size, int) or min_slice_size < 1:
        raise InvalidInput(f"min_slice_size must be a whole number ≥ 1; got {min_slice_size!r}",
                           field="min_slice_size")
    return resolve_slice_by(table, slice_by)


def _slice_groups(per_row: list, rows: np.ndarray) -> tuple[list[tuple[object, np.ndarray]], int]:
    """:func:`~registry.domain.metrics.slices.groups` of ``per_row``'s values at ``rows``: through an
    Arrow dictionary when they are all ``str`` or ``None`` (no Python pass over the examples)."""
    from registry.domain.metrics.slices import coded_groups, groups

    strings = _string_array(per_row) if len(per_row) else None
    if strings is not None:
        idx, distinct = _dictionary(strings)
        if all(v is not None for v in distinct):
            codes = np.where(idx == len(distinct), -1, idx)
            return coded_groups(codes[rows], distinct)
    values_at = np.empty(len(per_row), dtype=object)
    values_at[:] = per_row
    return groups(values_at[rows].tolist())


class _Slicing:
    """The slices of a run (:func:`score_arrays`), grouped by each column's values; each slice gets
    its own seeded bootstrap."""

    def __init__(self, run: M.RunScores, al: Aligned, columns: list[tuple[str, list]], *, min_size: int,
                 ahead: M.CountsAhead | None = None):
        self.run, self.min_size, self.ahead = run, min_size, ahead
        self.function = M.slice_function(run.task_type) if columns else None
        self.positions = self.function.eligible(run) if columns else None
        self.columns = [(column, _slice_groups(per_row, al.rows[self.positions])) for column, per_row in columns]
        self.boots: dict[int, M.Bootstrap] = {}
        """Each slice's bootstrap, drawn ahead (``ahead``), by ``id`` of the slice's indices (kept in ``columns``)."""
        if ahead is not None and self.function is not None:
            large = max(min_size, M.bootstrap.LARGE_N)   # only counts mode's draws: an index-mode one keeps
            for _, (found, _) in self.columns:            # its B × n indices from the start
                for _, idx in found:
                    if len(idx) >= large:    # the slices ``sliced`` scores, in its order
                        boot = self._boot(self.positions[idx])
                        if boot.joint is not None:
                            self.boots[id(idx)] = boot
                            ahead.add(boot)

    def _boot(self, chosen: np.ndarray) -> M.Bootstrap:
        """The slice's own seeded bootstrap, knowing the run's partitions of its examples."""
        run = self.run
        boot = M.Bootstrap.draw(len(chosen), run.boot.n_samples, run.seed)
        if run.boot.classes is not None:
            boot = boot.with_classes([_codes(c[chosen])[0] for c in run.boot.classes])
        return boot

    def compute(self) -> tuple[list, list[SliceReport]]:
        """The task type's per-slice (headline) metric function on each slice of each column."""
        if self.function is None:
            return [], []
        run, function = self.run, self.function

        def metric(idx: np.ndarray) -> dict:
            chosen = self.positions[idx]
            boot = self.boots.pop(id(idx), None)
            if boot is None:
                boot = self._boot(chosen)
            part = run.subset(chosen, boot)
            if "verdict_codes" in run.__dict__:
                _keep_codes(part, run.label_codes[chosen], tuple(v[chosen] for v in run.verdict_codes))
            try:
                return {m.name: m for m in function.compute(part)}
            finally:
                if self.ahead is not None:
                    self.ahead.release(boot)

        values, reports = [], []
        for column, grouped in self.columns:
            got, report = sliced(metric, None, field=column, min_size=self.min_size, grouped=grouped)
            values += got
            reports.append(report)
        return values, reports


# --------------------------------------------------------------------------------- coverage
def _usable(task_type: str, verdict, score, prob_a) -> bool:
    """Whether one prediction row carries a parsed judgment the metrics can use."""
    def finite(x) -> bool:
        return x is not None and bool(np.isfinite(x))

    if task_type == "pairwise":
        return verdict in VERDICT_CODES or finite(prob_a)
    if task_type == "pointwise":
        return finite(score)
    return verdict is not None


def _usable_rows(task_type: str, arrays: PredictionArrays) -> np.ndarray:
    """Which prediction rows carry a parsed judgment the metrics can use (as :func:`_usable`)."""
    has_verdict = arrays.verdict >= 0
    if task_type == "pairwise":
        codes = np.array([v in VERDICT_CODES for v in arrays.vocab] + [False], dtype=bool)
        return codes[arrays.verdict] | (arrays.prob_valid & np.isfinite(arrays.prob_a))
    if task_type == "pointwise":
        return arrays.score_valid & np.isfinite(arrays.score)
    return has_verdict


def _coverage(task_type: str, table: pa.Table, arrays: PredictionArrays, aligned: int,
              reports: list[SliceReport]) -> MetricRecord:
    """Share of the dataset's examples with at least one parsed judgment (module docstring)."""
    known = arrays.pos >= 0
    n_rows = table.num_rows
    any_prediction = np.flatnonzero(np.bincount(arrays.pos[known], minlength=n_rows))
    judged = np.flatnonzero(np.bincount(arrays.pos[known & _usable_rows(task_type, arrays)], minlength=n_rows))
    import pyarrow.compute as pc

    column = table.column("example_id")
    # repeated (or missing) ids count once; pc.unique, not count_distinct: the same test, several times faster
    if table.num_rows and (column.null_count or len(pc.unique(column)) != table.num_rows):
        ids = column.to_pylist()
        any_n, judged_n = len({ids[i] for i in any_prediction}), len({ids[i] for i in judged})
    else:
        any_n, judged_n = len(any_prediction), len(judged)
    rows = table.num_rows
    extra = {"rows": rows, "judged": judged_n, "with_predictions": any_n,
             "unparsed": any_n - judged_n, "aligned": aligned,
             "slices": [r.as_dict() for r in reports]}
    return MetricRecord(name="coverage", value=judged_n / rows if rows else None, ci_low=None, ci_high=None,
                        n=rows, extra=extra)


def compute_metrics(task_type: str, table: pa.Table, predictions: pa.Table, *, ctx=None, seed: int = 0,
                    n_boot: int = 1000, price_per_1k_tokens: float | None = None,
                    slice_by: Sequence[str] | None = None, min_slice_size: int = 10) -> list[MetricRecord]:
    """Every metric of a run, with bootstrap CIs (one seeded draw shared by all metrics), and the
    headline metrics per slice of every ``slice_by`` column (module docstring; default
    ``category``); slices with fewer than ``min_slice_size`` judged examples are skipped and
    listed in ``coverage``'s extra. The metrics are those of the functions registered for the task
    type (:mod:`registry.domain.metrics.suite`); every stored name is in the metric catalog."""
    columns = check_slicing(table, slice_by, min_slice_size)     # an unknown column fails before any work
    arrays = PredictionArrays.from_predictions(table, predictions)
    return score_arrays(task_type, table, arrays, columns, ctx=ctx, seed=seed, n_boot=n_boot,
                        price_per_1k_tokens=price_per_1k_tokens, min_slice_size=min_slice_size)


AHEAD_BYTES = 1 << 28
"""Default memory of the bootstrap class counts :func:`score_arrays` may draw ahead (256 MiB)."""


def score_arrays(task_type: str, table: pa.Table, arrays: PredictionArrays, columns: list[tuple[str, list]], *,
                 ctx=None, seed: int = 0, n_boot: int = 1000, price_per_1k_tokens: float | None = None,
                 min_slice_size: int = 10, features: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
                 ahead_bytes: int = AHEAD_BYTES) -> ScoredMetrics:
    """:func:`compute_metrics` of prediction rows given as arrays (a streamed run's), with the slice
    columns already resolved (:func:`check_slicing`); ``table`` needs no judge-input texts when the
    pairwise ones come as ``features`` (:func:`text_features` of every dataset row). ``ahead_bytes``:
    the most memory of bootstrap class counts drawn ahead (:class:`~registry.domain.metrics.CountsAhead`)."""
    al = align_arrays(table.num_rows, arrays, arrow=task_type == "pairwise")  # pairwise: read through codes
    n = len(al.rows)
    if n == 0:
        return ScoredMetrics()
    run = run_scores(task_type, table, al, seed=seed, n_boot=n_boot, classes=ctx.labels if ctx else None,
                     price_per_1k_tokens=price_per_1k_tokens, features=features)
    # counts mode's class counts (the run's, then each slice's) drawn on two threads while the metrics
    # are computed: the same numbers (each draw has its own seeded generator)
    with M.CountsAhead(ahead_bytes) as ahead:
        ahead.add(run.boot)
        slicing = _Slicing(run, al, columns, min_size=min_slice_size, ahead=ahead)
        examples = _examples(task_type, table.num_rows, al, run)   # (needs no counts: while they are drawn)
        values = M.run_metrics(run)       # the registered functions of the task type, in order
        ahead.release(run.boot)
        sliced_values, reports = slicing.compute()
    records = _records(values + sliced_values)
    records.append(_coverage(task_type, table, arrays, n, reports))
    seen, unique = set(), ScoredMetrics()
    for r in records:  # one value per (name, slice): later duplicates (e.g. LLMBar's aliases) are dropped
        if (r.name, r.slice) not in seen:
            seen.add((r.name, r.slice))
            unique.append(r)
    unique.examples = examples
    return unique


def _examples(task_type: str, n_rows: int, al: Aligned, run: M.RunScores) -> bytes:
    """The run's encoded per-example judgments (:meth:`RunExamples.from_aligned`; pairwise from the
    verdict codes the run already has, not coded again)."""
    if task_type != "pairwise" or "verdict_codes" not in run.__dict__:
        return RunExamples.from_aligned(task_type, n_rows, al, run.seed).encode()
    from registry.domain.metrics.pairwise import prob_a_codes

    return RunExamples(task_type, n_rows, np.asarray(al.rows, dtype=np.int64), run.seed,
                       verdicts=tuple(run.verdict_codes), logprob=prob_a_codes(al.prob_a, len(al.rows))).encode()


class ScoredMetrics(list):
    """What :func:`compute_metrics` returns: the metric records (a list), and ``examples``: the run's
    per-example judgments, encoded for the standings (:mod:`registry.services.standings`), which the
    store keeps with the metrics in the same transaction (``record_metrics`` / ``add_finished_run``)."""

    examples: bytes | None = None


def per_example_values(task_type: str, table: pa.Table, predictions: pa.Table, *, labels=None
                       ) -> tuple[list[str], np.ndarray]:
    """(example ids, per-example contribution to the headline metric) for paired tests:
    pairwise expected credit (``accuracy``; on tie-labelled sets the strict 3-way match of
    ``accuracy_3way``), classification class-balanced correctness
    (their mean is the balanced accuracy). Pointwise has none (correlations are not means)."""
    al = align(table, predictions)
    ids = [table.column("example_id")[int(i)].as_py() for i in al.rows]
    if task_type == "pairwise":
        lab = encode_verdicts(column_at(table, "label", al.rows))
        strict = _has_tie_labels(table)     # accuracy_3way is the headline there
        parts = [M.pairwise.order_credit(lab, encode_verdicts(v), "wrong" if strict else "expected")
                 for v in al.verdict]
        return ids, np.mean(parts, axis=0)
    if task_type == "classification":
        y = np.array(column_at(table, "label", al.rows), dtype=object)
        pred = np.array(al.verdict[0], dtype=object)
        classes = sorted({str(c) for c in y})
        counts = {c: int((y == c).sum()) for c in classes}
        weight = np.array([len(y) / (len(classes) * counts[str(c)]) for c in y])
        return ids, weight * (pred == y)
    raise ValueError("pointwise metrics have no per-example decomposition")
