"""Classification meta-evaluation: accuracy, balanced accuracy (LLM-AggreFact's headline),
macro F1, and ROC-AUC when the evaluator gives a score.

Labels and predictions may be any hashable values (strings, ints, bools). A missing prediction
(``None`` or NaN — a parse failure) is wrong: it is a column of its own in the confusion matrix,
so it lowers accuracy, the recall of its true class and that class's F1, but it is not a class
that macro F1 averages over (scikit-learn would count it as one when given a placeholder label).

- balanced accuracy = mean recall over the classes present in the labels;
- macro F1 = mean F1 over the classes present in the labels or the (parsed) predictions;
- ROC-AUC (binary) = P(score of a random positive > score of a random negative), ties ½
  (Mann–Whitney), with the positive class named by the caller; higher score = more positive.

CIs: accuracy, balanced accuracy and F1 from resampled confusion matrices (``W``); AUC from
resampled ranks (index resampling, vectorized in chunks).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from registry.domain.metrics._counts import confusion
from registry.domain.metrics.bootstrap import Bootstrap, ensure_bootstrap
from registry.domain.metrics.value import MetricValue, from_samples
from registry.errors import InvalidInput

_CHUNK = 256


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and np.isnan(x))


def encode(labels: Sequence[Hashable], predictions: Sequence[Hashable],
           classes: Sequence[Hashable] | None = None) -> tuple[np.ndarray, np.ndarray, list[Hashable]]:
    """Labels and predictions → integer codes over ``classes`` (default: every label and parsed
    prediction, sorted). A missing prediction, or one outside given ``classes``, gets code K."""
    labels, predictions = list(labels), list(predictions)
    if len(labels) != len(predictions):
        raise InvalidInput(f"{len(labels)} labels but {len(predictions)} predictions", field="predictions")
    if any(_missing(y) for y in labels):
        raise InvalidInput("labels contain missing values", field="labels")
    if classes is None:
        classes = sorted({*labels, *(p for p in predictions if not _missing(p))}, key=lambda c: (str(type(c)), str(c)))
    index = {c: i for i, c in enumerate(classes)}
    unknown = {y for y in labels if y not in index}
    if unknown:
        raise InvalidInput(f"labels {sorted(map(str, unknown))} are not in classes {list(classes)}", field="labels")
    k = len(classes)
    y = np.array([index[v] for v in labels], dtype=np.int64)
    p = np.array([k if _missing(v) else index.get(v, k) for v in predictions], dtype=np.int64)
    return y, p, list(classes)


def _confusion(labels, predictions, classes, boot):
    y, p, classes = encode(labels, predictions, classes)
    boot = ensure_bootstrap(boot, len(y))
    point, samples = confusion(y, p, range(len(classes) + 1), boot)     # last column: failures
    return point, samples, classes, int((p == len(classes)).sum()), len(y)


def _accuracy(c: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.trace(c, axis1=-2, axis2=-1) / c.sum(axis=(-2, -1))


def _balanced_accuracy(c: np.ndarray) -> np.ndarray:
    k = c.shape[-1] - 1
    diag = np.diagonal(c, axis1=-2, axis2=-1)[..., :k]
    support = c.sum(axis=-1)[..., :k]
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, diag / support, np.nan)
        return _nanmean(recall)


def _macro_f1(c: np.ndarray) -> np.ndarray:
    k = c.shape[-1] - 1
    diag = np.diagonal(c, axis1=-2, axis2=-1)[..., :k]
    denom = c.sum(axis=-1)[..., :k] + c.sum(axis=-2)[..., :k]
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denom > 0, 2 * diag / denom, np.nan)
        return _nanmean(f1)


def _nanmean(x: np.ndarray) -> np.ndarray:
    ok = ~np.isnan(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, x, 0.0).sum(-1) / np.where(ok.any(-1), ok.sum(-1), np.nan)


_FROM_CONFUSION = {"accuracy": _accuracy, "balanced_accuracy": _balanced_accuracy, "macro_f1": _macro_f1}


def _confusion_metrics(names: Sequence[str], labels, predictions, boot, classes) -> dict[str, MetricValue]:
    point, samples, classes, failures, n = _confusion(labels, predictions, classes, boot)
    extra = {"classes": [str(c) for c in classes], "failures": failures}
    return {name: from_samples(name, float(_FROM_CONFUSION[name](point)), _FROM_CONFUSION[name](samples), n,
                               extra=extra) for name in names}


def _from_confusion(name: str, labels, predictions, boot, classes) -> MetricValue:
    return _confusion_metrics([name], labels, predictions, boot, classes)[name]


def accuracy(labels: Sequence[Hashable], predictions: Sequence[Hashable], *, boot: Bootstrap | None = None,
             classes: Sequence[Hashable] | None = None) -> MetricValue:
    """Share of correct predictions (a missing prediction is wrong)."""
    return _from_confusion("accuracy", labels, predictions, boot, classes)


def balanced_accuracy(labels: Sequence[Hashable], predictions: Sequence[Hashable], *, boot: Bootstrap | None = None,
                      classes: Sequence[Hashable] | None = None) -> MetricValue:
    """Mean per-class recall over the classes present in the labels."""
    return _from_confusion("balanced_accuracy", labels, predictions, boot, classes)


def balanced_accuracy_point(labels: Sequence[Hashable], predictions: Sequence[Hashable], *,
                            classes: Sequence[Hashable] | None = None) -> float:
    """:func:`balanced_accuracy` without a CI (no resampling): for quick probes."""
    y, p, classes = encode(labels, predictions, classes)
    point, _ = confusion(y, p, range(len(classes) + 1), None)
    return float(_balanced_accuracy(point))


def macro_f1(labels: Sequence[Hashable], predictions: Sequence[Hashable], *, boot: Bootstrap | None = None,
             classes: Sequence[Hashable] | None = None) -> MetricValue:
    """Unweighted mean F1 over classes present in labels or parsed predictions."""
    return _from_confusion("macro_f1", labels, predictions, boot, classes)


def _auc_rows(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Mann–Whitney AUC per row of (m, n) scores and boolean positives."""
    from scipy import stats  # imported here: scipy.stats takes ~0.5 s, and the CLI's light commands skip it

    ranks = stats.rankdata(scores, axis=-1)
    n1 = positive.sum(-1)
    n0 = positive.shape[-1] - n1
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((ranks * positive).sum(-1) - n1 * (n1 + 1) / 2.0) / (n1 * n0)
    return np.where((n1 > 0) & (n0 > 0), auc, np.nan)


def roc_auc(labels: Sequence[Hashable], scores: Sequence[float], positive: Hashable,
            *, boot: Bootstrap | None = None) -> MetricValue:
    """Binary ROC-AUC of ``scores`` for the ``positive`` class; NaN scores are left out and
    counted, so ``boot`` (if given) must be drawn for the examples with a score."""
    y = np.array([v == positive for v in labels], dtype=bool)
    s = np.asarray(scores, dtype=float)
    if s.shape != y.shape:
        raise InvalidInput(f"{len(y)} labels but {s.shape[0]} scores", field="scores")
    ok = ~np.isnan(s)
    y, s = y[ok], s[ok]
    boot = ensure_bootstrap(boot, len(s))
    samples = np.empty(boot.n_samples)
    for start in range(0, boot.n_samples, _CHUNK):
        idx = boot.index_block(start, start + _CHUNK)
        samples[start:start + _CHUNK] = _auc_rows(s[idx], y[idx])
    return from_samples("roc_auc", float(_auc_rows(s, y)), samples, len(s),
                        extra={"positive": str(positive), "dropped": int((~ok).sum()), "positives": int(y.sum())})


def classification_metrics(labels: Sequence[Hashable], predictions: Sequence[Hashable],
                           scores: Sequence[float] | None = None, positive: Hashable | None = None,
                           *, boot: Bootstrap | None = None, classes: Sequence[Hashable] | None = None
                           ) -> dict[str, MetricValue]:
    """Accuracy, balanced accuracy, macro F1 (one bootstrap draw) and, with scores and a
    positive class, ROC-AUC."""
    labels, predictions = list(labels), list(predictions)
    boot = ensure_bootstrap(boot, len(labels))
    out = _confusion_metrics(list(_FROM_CONFUSION), labels, predictions, boot, classes)
    if scores is not None:
        if positive is None:
            raise InvalidInput("ROC-AUC needs the positive class", field="positive")
        s = np.asarray(scores, dtype=float)
        out["roc_auc"] = roc_auc(labels, s, positive, boot=None if np.isnan(s).any() else boot)
    return out
