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
from registry.domain.entities import MetricRecord
from registry.domain.judgments import VERDICT_CODES, encode_verdicts
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
    verdict: list[np.ndarray | list]
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


def align(table: pa.Table, predictions: pa.Table) -> Aligned:
    """Per order, one verdict/score per example (samples: majority verdict, mean score)."""
    ids = table.column("example_id").to_pylist()
    pos = {e: i for i, e in enumerate(ids)}
    p = predictions.to_pydict()
    orders = sorted(set(p["order"]))
    per: dict[int, dict[int, dict[str, list]]] = {o: {} for o in orders}
    seconds = np.zeros(len(ids))
    tokens = np.zeros(len(ids))
    for j, eid in enumerate(p["example_id"]):
        i = pos.get(eid)
        if i is None:
            continue
        slot = per[p["order"][j]].setdefault(i, {"verdict": [], "score": [], "prob_a": []})
        slot["verdict"].append(p["verdict"][j])
        slot["score"].append(p["score"][j])
        slot["prob_a"].append(p["prob_a"][j])
        seconds[i] += p["seconds"][j] or 0.0
        tokens[i] += (p["prompt_tokens"][j] or 0) + (p["completion_tokens"][j] or 0)
    covered = sorted(set.intersection(*(set(per[o]) for o in orders))) if orders else []
    rows = np.array(covered, dtype=np.int64)

    def mean(xs: list) -> float:
        xs = [x for x in xs if x is not None]
        return float(np.mean(xs)) if xs else np.nan

    verdicts, scores, probs = [], [], []
    for o in orders:
        verdicts.append([_majority(per[o][i]["verdict"]) for i in covered])
        scores.append(np.array([mean(per[o][i]["score"]) for i in covered], dtype=float))
        probs.append(np.array([mean(per[o][i]["prob_a"]) for i in covered], dtype=float))
    return Aligned(rows=rows, verdict=verdicts, score=scores, prob_a=probs, seconds=seconds[rows], tokens=tokens[rows])


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
    values = table.column(name).to_pylist()
    return [values[i] for i in rows]


def _has_tie_labels(table: pa.Table) -> bool:
    """Whether the dataset's human labels (all rows, judged or not) include ties."""
    return "label" in table.column_names and "tie" in table.column("label").to_pylist()


def run_scores(task_type: str, table: pa.Table, al: Aligned, *, seed: int = 0, n_boot: int = 1000,
               classes: Sequence[str] | None = None, price_per_1k_tokens: float | None = None) -> M.RunScores:
    """The aligned run as the registered metric functions take it (:class:`~registry.domain.metrics.RunScores`),
    with one seeded bootstrap draw shared by all its metrics."""
    return M.RunScores(task_type=task_type, human={f: column_at(table, f, al.rows) for f in HUMAN_FIELDS[task_type]},
                       verdicts=tuple(al.verdict), scores=tuple(al.score), prob_a=tuple(al.prob_a),
                       seconds=al.seconds, tokens=al.tokens, boot=M.Bootstrap.draw(len(al.rows), n_boot, seed),
                       seed=seed, tie_labels=task_type == "pairwise" and _has_tie_labels(table),
                       classes=tuple(classes) if classes else None, price_per_1k_tokens=price_per_1k_tokens)


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
        values = table.column("category").to_pylist()
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


def _slices(run: M.RunScores, al: Aligned, columns: list[tuple[str, list]], *, min_size: int
            ) -> tuple[list, list[SliceReport]]:
    """The task type's per-slice (headline) metric function on each slice of each column; each slice
    gets its own seeded bootstrap."""
    if not columns:
        return [], []
    function = M.slice_function(run.task_type)
    positions = function.eligible(run)

    def metric(idx: np.ndarray) -> dict:
        chosen = positions[idx]
        part = run.subset(chosen, M.Bootstrap.draw(len(chosen), run.boot.n_samples, run.seed))
        return {m.name: m for m in function.compute(part)}

    values, reports = [], []
    for column, per_row in columns:
        keys = [per_row[int(al.rows[p])] for p in positions]
        got, report = sliced(metric, keys, field=column, min_size=min_size)
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


def _coverage(task_type: str, table: pa.Table, predictions: pa.Table, aligned: int,
              reports: list[SliceReport]) -> MetricRecord:
    """Share of the dataset's examples with at least one parsed judgment (module docstring)."""
    ids = set(table.column("example_id").to_pylist())
    p = predictions.select(["example_id", "verdict", "score", "prob_a"]).to_pydict()
    any_prediction, judged = set(), set()
    for eid, verdict, score, prob_a in zip(p["example_id"], p["verdict"], p["score"], p["prob_a"]):
        if eid in ids:
            any_prediction.add(eid)
            if _usable(task_type, verdict, score, prob_a):
                judged.add(eid)
    rows = table.num_rows
    extra = {"rows": rows, "judged": len(judged), "with_predictions": len(any_prediction),
             "unparsed": len(any_prediction - judged), "aligned": aligned,
             "slices": [r.as_dict() for r in reports]}
    return MetricRecord(name="coverage", value=len(judged) / rows if rows else None, ci_low=None, ci_high=None,
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
    al = align(table, predictions)
    n = len(al.rows)
    if n == 0:
        return []
    run = run_scores(task_type, table, al, seed=seed, n_boot=n_boot, classes=ctx.labels if ctx else None,
                     price_per_1k_tokens=price_per_1k_tokens)
    values = M.run_metrics(run)       # the registered functions of the task type, in order
    sliced_values, reports = _slices(run, al, columns, min_size=min_slice_size)
    records = _records(values + sliced_values)
    records.append(_coverage(task_type, table, predictions, n, reports))
    seen, unique = set(), ScoredMetrics()
    for r in records:  # one value per (name, slice): later duplicates (e.g. LLMBar's aliases) are dropped
        if (r.name, r.slice) not in seen:
            seen.add((r.name, r.slice))
            unique.append(r)
    unique.examples = RunExamples.from_aligned(task_type, table.num_rows, al, seed).encode()
    return unique


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
