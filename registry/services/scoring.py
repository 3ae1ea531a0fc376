"""From a run's predictions to its stored metrics: align predictions with the dataset's human
labels, then call the pure metric functions of :mod:`registry.domain.metrics`.

Headline metrics (what ``best`` and leaderboards rank by, unless told otherwise):

* pairwise ``accuracy``: ReIFE accuracy (mean of both orders, expected credit ½ for a tie verdict or
  a parse failure against an A/B label). On datasets whose human labels include ties (PandaLM),
  ties are a real class: ``accuracy`` is then the share of verdicts equal to the 3-way label
  (mean over the orders judged), as PandaLM reports it.
* pointwise ``spearman`` (example level; ``pearson``, ``kendall`` and ``system_*`` beside it);
* classification ``balanced_accuracy`` (LLM-AggreFact's headline).

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
an example without ``prob_a`` counts as a failure (credit ½).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from registry.domain import metrics as M
from registry.domain.entities import MetricRecord
from registry.domain.judgments import FAIL, VERDICT_CODES, encode_verdicts

from registry.domain.metrics.catalog import HEADLINE, headline_metric  # noqa: E402  (re-exported)
MAX_SLICES = 40


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


def _col(table: pa.Table, name: str, rows: np.ndarray) -> list:
    if name not in table.column_names:
        return [None] * len(rows)
    values = table.column(name).to_pylist()
    return [values[i] for i in rows]


def _pairwise(table, al: Aligned, boot, seed, cost) -> list:
    labels_text = _col(table, "label", al.rows)
    labels = encode_verdicts(labels_text)
    v = [encode_verdicts(x) for x in al.verdict]
    v0, v1 = v[0], (v[1] if len(v) > 1 else None)
    has_tie_labels = bool((labels == VERDICT_CODES["tie"]).any())
    out: list = []
    if v1 is not None:
        reife = M.reife_metrics(labels, v0, v1, boot=boot, seed=seed)
        if has_tie_labels:
            reife["accuracy"] = M.accuracy(labels, v0, v1, boot=boot, policy="wrong", name="accuracy")
        out += list(reife.values())
        out += M.llmbar_metrics(labels, v0, v1, boot=boot)
        out.append(M.judgebench_accuracy(labels, v0, v1, boot=boot))
    else:
        out.append(M.accuracy(labels, v0, boot=boot, policy="wrong" if has_tie_labels else "expected"))
        out.append(M.accuracy(labels, v0, boot=boot, policy="wrong", name="accuracy_strict"))
    logprob = _logprob_verdicts(al)
    if logprob is not None:
        out.append(M.accuracy(labels, logprob, boot=boot, policy="wrong" if has_tie_labels else "expected",
                              name="accuracy_logprob"))
    resp_a, resp_b = _col(table, "response_a", al.rows), _col(table, "response_b", al.rows)
    out.append(M.position_bias(v0, v1, boot=boot))
    out.append(M.length_bias(v0, resp_a, resp_b, v1, boot=boot))
    out.append(M.list_bias(v0, resp_a, resp_b, v1, boot=boot))
    annot = _col(table, "annotator_labels", al.rows)
    if any(a and len(a) >= 2 for a in annot):
        k = max(len(a) for a in annot if a)
        votes = np.full((len(annot), k), FAIL, dtype=np.int8)
        for i, a in enumerate(annot):
            if a:
                votes[i, :len(a)] = encode_verdicts(a)
        out.append(M.human_agreement(votes, np.stack(v) if v1 is not None else v0, boot=boot))
        out.append(M.human_agreement_loo(votes, boot=boot))
    out += _cost(al, boot, cost)
    cats = _col(table, "category", al.rows)
    if 1 < len({c for c in cats if c}) <= MAX_SLICES:
        metric_kw = {"policy": "wrong" if has_tie_labels else "expected"}
        out += M.by_slice(M.accuracy, cats, labels, v0, *([v1] if v1 is not None else []), **metric_kw)
    return out


def _logprob_verdicts(al: Aligned) -> np.ndarray | None:
    """Verdict codes from ``prob_a`` averaged over the orders (None when no example has one)."""
    probs = np.stack(al.prob_a) if al.prob_a else np.empty((0, len(al.rows)))
    if not np.isfinite(probs).any():
        return None
    ok = np.isfinite(probs)
    count = ok.sum(axis=0)
    mean = np.where(count > 0, np.where(ok, probs, 0.0).sum(axis=0) / np.maximum(count, 1), np.nan)
    codes = np.where(mean > 0.5, VERDICT_CODES["A"], np.where(mean < 0.5, VERDICT_CODES["B"], VERDICT_CODES["tie"]))
    return np.where(count > 0, codes, FAIL).astype(np.int8)


def _pointwise(table, al: Aligned, boot) -> list:
    human = np.array(_col(table, "score", al.rows), dtype=float)
    predicted = al.score[0]
    complete = int((np.isfinite(human) & np.isfinite(predicted)).sum())
    out: list = []
    if complete >= 2:  # unparsed ratings are dropped (counted in extra["dropped"]), on their own draw
        own = boot if complete == len(human) else M.Bootstrap.draw(complete, boot.n_samples, boot.seed)
        out = list(M.correlations(human, predicted, boot=own).values())
    systems = _col(table, "system_id", al.rows)
    if complete >= 2 and len({s for s in systems if s is not None}) >= 3:
        sys = np.array([s if s is not None else "" for s in systems], dtype=object)
        out += list(M.system_level_correlations(human, predicted, sys, n_samples=boot.n_samples,
                                                seed=boot.seed).values())
    return out


def _classification(table, al: Aligned, boot, labels: Sequence[str] | None) -> list:
    y = _col(table, "label", al.rows)
    pred = al.verdict[0]
    scores = al.score[0]
    has_scores = bool(np.isfinite(scores).any())
    classes = list(labels) if labels else None
    positive = classes[0] if classes and len(classes) == 2 else None
    res = M.classification_metrics(y, pred, scores if has_scores and positive is not None else None,
                                   positive, boot=boot, classes=classes)
    return list(res.values())


def _cost(al: Aligned, boot, price_per_1k_tokens: float | None) -> list:
    out = [M.per_1000(al.seconds, boot=boot, name="time_per_1000")]
    if price_per_1k_tokens is not None:
        out.append(M.per_1000(al.tokens / 1000.0 * price_per_1k_tokens, boot=boot, name="price_per_1000"))
    return out


def compute_metrics(task_type: str, table: pa.Table, predictions: pa.Table, *, ctx=None, seed: int = 0,
                    n_boot: int = 1000, price_per_1k_tokens: float | None = None) -> list[MetricRecord]:
    """Every metric of a run, with bootstrap CIs (one seeded draw shared by all metrics)."""
    al = align(table, predictions)
    n = len(al.rows)
    if n == 0:
        return []
    boot = M.Bootstrap.draw(n, n_boot, seed)
    if task_type == "pairwise":
        values = _pairwise(table, al, boot, seed, price_per_1k_tokens)
    elif task_type == "pointwise":
        values = _pointwise(table, al, boot) + _cost(al, boot, price_per_1k_tokens)
    else:
        values = _classification(table, al, boot, ctx.labels if ctx else None) + _cost(al, boot, price_per_1k_tokens)
    records = _records(values)
    coverage = n / table.num_rows
    records.append(MetricRecord(name="coverage", value=coverage, ci_low=None, ci_high=None, n=n))
    seen, unique = set(), []
    for r in records:  # one value per (name, slice): later duplicates (e.g. LLMBar's aliases) are dropped
        if (r.name, r.slice) not in seen:
            seen.add((r.name, r.slice))
            unique.append(r)
    return unique


def per_example_values(task_type: str, table: pa.Table, predictions: pa.Table, *, labels=None
                       ) -> tuple[list[str], np.ndarray]:
    """(example ids, per-example contribution to the headline metric) for paired tests:
    pairwise expected credit (or strict 3-way match), classification class-balanced correctness
    (their mean is the balanced accuracy). Pointwise has none (correlations are not means)."""
    al = align(table, predictions)
    ids = [table.column("example_id")[int(i)].as_py() for i in al.rows]
    if task_type == "pairwise":
        lab = encode_verdicts(_col(table, "label", al.rows))
        strict = bool((lab == VERDICT_CODES["tie"]).any())
        parts = [M.pairwise.order_credit(lab, encode_verdicts(v), "wrong" if strict else "expected")
                 for v in al.verdict]
        return ids, np.mean(parts, axis=0)
    if task_type == "classification":
        y = np.array(_col(table, "label", al.rows), dtype=object)
        pred = np.array(al.verdict[0], dtype=object)
        classes = sorted({str(c) for c in y})
        counts = {c: int((y == c).sum()) for c in classes}
        weight = np.array([len(y) / (len(classes) * counts[str(c)]) for c in y])
        return ids, weight * (pred == y)
    raise ValueError("pointwise metrics have no per-example decomposition")
