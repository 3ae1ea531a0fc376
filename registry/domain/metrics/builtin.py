"""The built-in metric functions (see :mod:`registry.domain.metrics.suite`), registered in the order
a run's values are stored: pairwise ReIFE, LLMBar, JudgeBench, the 3-way and log-probability
accuracies, AlpacaEval's biases, the bias diagnostics of issue 15 and human agreement; pointwise example- and system-level
correlations; classification metrics; then time and price for every task type. Each metric's
definition and source are in its module and in :mod:`registry.domain.metrics.catalog`.

Rules stated once here:

* pairwise, one order judged: ``accuracy`` (expected credit ½ for ties and failures) and
  ``accuracy_strict`` (LLMBar: they are wrong); both orders: the ReIFE set, LLMBar's figures and
  JudgeBench's accuracy;
* log-probability verdicts come from the judges' ``prob_a`` averaged over the orders judged
  (:func:`~registry.domain.metrics.pairwise.prob_a_codes`); a run without any ``prob_a``
  has no ``accuracy_logprob``;
* pointwise: examples whose rating did not parse are left out of the correlations, which then
  draw their own bootstrap over the examples with both scores; fewer than two such examples give
  no correlation; system level needs three systems;
* classification: ROC-AUC only when the judge gave scores and the label set has two classes (the
  first is the positive one).
"""

from __future__ import annotations

import numpy as np

from registry.domain.judgments import FAIL, encode_verdicts
from registry.domain.metrics.alpacaeval import (
    human_agreement,
    human_agreement_loo,
    length_bias,
    list_bias,
    per_1000,
    position_bias,
)
from registry.domain.metrics.bias import BIAS_METRICS
from registry.domain.metrics.bias import bias_diagnostics as diagnose_bias
from registry.domain.metrics.bootstrap import Bootstrap
from registry.domain.metrics.classification import classification_metrics
from registry.domain.metrics.llmbar import llmbar_metrics
from registry.domain.metrics.pairwise import (
    REIFE_METRICS,
    accuracy,
    judgebench_accuracy,
    prob_a_codes,
    reife_metrics,
)
from registry.domain.metrics.pointwise import correlation, correlations, system_level_correlations
from registry.domain.metrics.suite import RunScores, register_metric
from registry.domain.metrics.value import MetricValue

PW, PT, CL = "pairwise", "pointwise", "classification"


# ---------------------------------------------------------------------------------- pairwise
def _v1(run: RunScores) -> np.ndarray | None:
    return run.verdict_codes[1] if run.both_orders else None


@register_metric("reife", (PW,), produces=REIFE_METRICS)
def reife(run: RunScores) -> list[MetricValue]:
    """ReIFE's accuracy (expected credit) and order-consistency metrics; one order: its accuracy."""
    labels, v0 = run.label_codes, run.verdict_codes[0]
    if run.both_orders:
        return list(reife_metrics(labels, v0, run.verdict_codes[1], boot=run.boot, seed=run.seed).values())
    return [accuracy(labels, v0, boot=run.boot, policy="expected")]


@register_metric("llmbar", (PW,), produces=(
    "correct_False", "correct_True", "correct_average", "correct_both", "equal", "cohen_kappa_agreement",
    "cohen_kappa_average", "llmbar_kappa_agreement", "llmbar_kappa_average", "accuracy_strict"))
def llmbar(run: RunScores) -> list[MetricValue]:
    """LLMBar's figures (both orders); one order: ``accuracy_strict``."""
    labels, v0 = run.label_codes, run.verdict_codes[0]
    if run.both_orders:
        return llmbar_metrics(labels, v0, run.verdict_codes[1], boot=run.boot)
    return [accuracy(labels, v0, boot=run.boot, policy="wrong", name="accuracy_strict")]


@register_metric("judgebench", (PW,), produces=("judgebench_accuracy",))
def judgebench(run: RunScores) -> list[MetricValue]:
    """JudgeBench's double-order accuracy (both orders only)."""
    if not run.both_orders:
        return []
    return [judgebench_accuracy(run.label_codes, run.verdict_codes[0], run.verdict_codes[1], boot=run.boot)]


@register_metric("accuracy_3way", (PW,), produces=("accuracy_3way",))
def accuracy_3way(run: RunScores) -> list[MetricValue]:
    """On sets whose labels include ties: the exact 3-way match, mean over the orders judged."""
    if not run.tie_labels:
        return []
    return [accuracy(run.label_codes, run.verdict_codes[0], _v1(run), boot=run.boot, policy="wrong",
                     name="accuracy_3way")]


@register_metric("logprob", (PW,), produces=("accuracy_logprob", "accuracy_logprob_3way"))
def logprob(run: RunScores) -> list[MetricValue]:
    """Accuracy of the log-probability verdicts (and their 3-way match on tie-labelled sets)."""
    codes = prob_a_codes(run.prob_a, run.n)
    if codes is None:
        return []
    out = [accuracy(run.label_codes, codes, boot=run.boot, policy="expected", name="accuracy_logprob")]
    if run.tie_labels:
        out.append(accuracy(run.label_codes, codes, boot=run.boot, policy="wrong", name="accuracy_logprob_3way"))
    return out


@register_metric("bias", (PW,), produces=("prob_prefer_first", "prob_prefer_longer", "prob_prefer_list"))
def bias(run: RunScores) -> list[MetricValue]:
    """AlpacaEval's position, length and list biases."""
    v0, v1 = run.verdict_codes[0], _v1(run)
    resp_a, resp_b = run.human["response_a"], run.human["response_b"]      # texts, or their lengths
    list_a, list_b = run.human.get("response_a_has_list", resp_a), run.human.get("response_b_has_list", resp_b)
    return [position_bias(v0, v1, boot=run.boot), length_bias(v0, resp_a, resp_b, v1, boot=run.boot),
            list_bias(v0, list_a, list_b, v1, boot=run.boot)]


def annotator_votes(annotators: list) -> np.ndarray | None:
    """Per-annotator verdict codes (examples × annotators, FAIL where an example has fewer); ``None``
    unless some example has two or more annotators."""
    lengths = np.fromiter((len(a) if a else 0 for a in annotators), dtype=np.int64, count=len(annotators))
    if not (lengths >= 2).any():
        return None
    votes = np.full((len(annotators), int(lengths.max())), FAIL, dtype=np.int8)
    votes[np.arange(votes.shape[1])[None, :] < lengths[:, None]] = encode_verdicts(
        [v for a in annotators if a for v in a])   # row by row, each example's votes in order
    return votes


@register_metric("bias_diagnostics", (PW,), produces=BIAS_METRICS)
def bias_diagnostics(run: RunScores) -> list[MetricValue]:
    """Issue 15's bias diagnostics (:mod:`registry.domain.metrics.bias`): flip rate under swap (both
    orders), tie and parse-failure rates, length bias where the humans preferred the shorter
    response, accuracy when longer is better / worse, and the length-controlled accuracy."""
    return diagnose_bias(run.label_codes, run.verdict_codes[0], _v1(run), run.human["response_a"],
                         run.human["response_b"], boot=run.boot)


@register_metric("human_agreement", (PW,), produces=("human_agreement", "human_agreement_loo"))
def agreement_with_annotators(run: RunScores) -> list[MetricValue]:
    """AlpacaEval's agreement with the annotators' mode, and the annotators' own (two or more annotators)."""
    votes = run.annotator_vote_codes
    if votes is None:
        return []
    verdicts = np.stack(run.verdict_codes) if run.both_orders else run.verdict_codes[0]
    return [human_agreement(votes, verdicts, boot=run.boot), human_agreement_loo(votes, boot=run.boot)]


# --------------------------------------------------------------------------------- pointwise
def _scores(run: RunScores) -> tuple[np.ndarray, np.ndarray]:
    return np.array(run.human["score"], dtype=float), run.scores[0]


def complete_scores(run: RunScores) -> np.ndarray:
    """Positions of the examples with both a human and a parsed predicted score."""
    human, predicted = _scores(run)
    return np.flatnonzero(np.isfinite(human) & np.isfinite(predicted))


@register_metric("correlations", (PT,), produces=("pearson", "spearman", "kendall"))
def example_correlations(run: RunScores) -> list[MetricValue]:
    """Example-level Pearson, Spearman and Kendall (two or more examples with both scores)."""
    human, predicted = _scores(run)
    complete = len(complete_scores(run))
    if complete < 2:
        return []
    # unparsed ratings are dropped (counted in extra["dropped"]), on their own draw
    own = run.boot if complete == len(human) else Bootstrap.draw(complete, run.boot.n_samples, run.boot.seed)
    return list(correlations(human, predicted, boot=own).values())


@register_metric("system_correlations", (PT,), produces=("system_pearson", "system_spearman", "system_kendall"))
def system_correlations(run: RunScores) -> list[MetricValue]:
    """Correlations of per-system means (two or more examples with both scores, three or more systems)."""
    human, predicted = _scores(run)
    systems = run.human["system_id"]
    if len(complete_scores(run)) < 2 or len({s for s in systems if s is not None}) < 3:
        return []
    ids = np.array([s if s is not None else "" for s in systems], dtype=object)
    return list(system_level_correlations(human, predicted, ids, n_samples=run.boot.n_samples,
                                          seed=run.boot.seed).values())


# ---------------------------------------------------------------------------- classification
def _positive(run: RunScores) -> str | None:
    classes = run.classes
    return classes[0] if classes and len(classes) == 2 else None


@register_metric("classification", (CL,), produces=("accuracy", "balanced_accuracy", "macro_f1", "roc_auc"))
def classification(run: RunScores) -> list[MetricValue]:
    """Accuracy, balanced accuracy, macro F1 and, with scores on a binary label set, ROC-AUC."""
    scores, positive = run.scores[0], _positive(run)
    with_scores = bool(np.isfinite(scores).any()) and positive is not None
    classes = list(run.classes) if run.classes else None
    return list(classification_metrics(run.human["label"], run.verdicts[0], scores if with_scores else None, positive,
                                       boot=run.boot, classes=classes).values())


# -------------------------------------------------------------------------------- every type
@register_metric("cost", (PW, PT, CL), produces=("time_per_1000", "price_per_1000"))
def cost(run: RunScores) -> list[MetricValue]:
    """Judge seconds per 1000 examples and, given a price per 1000 tokens, dollars per 1000 examples."""
    out = [per_1000(run.seconds, boot=run.boot, name="time_per_1000")]
    if run.price_per_1k_tokens is not None:
        out.append(per_1000(run.tokens / 1000.0 * run.price_per_1k_tokens, boot=run.boot, name="price_per_1000"))
    return out


# ------------------------------------------------------------------------- per slice (headline)
@register_metric("pairwise_slices", (PW,), produces=("accuracy", "accuracy_3way"), per_slice=True)
def pairwise_headline(run: RunScores) -> list[MetricValue]:
    """``accuracy`` (and ``accuracy_3way`` on tie-labelled sets) of a slice."""
    labels, v0, v1 = run.label_codes, run.verdict_codes[0], _v1(run)
    out = [accuracy(labels, v0, v1, boot=run.boot, policy="expected")]
    if run.tie_labels:
        out.append(accuracy(labels, v0, v1, boot=run.boot, policy="wrong", name="accuracy_3way"))
    return out


@register_metric("pointwise_slices", (PT,), produces=("spearman",), per_slice=True, eligible=complete_scores)
def pointwise_headline(run: RunScores) -> list[MetricValue]:
    """``spearman`` of a slice (of the examples with both scores, as in the whole-run figures)."""
    human, predicted = _scores(run)
    return [correlation(human, predicted, "spearman", boot=run.boot)]


@register_metric("classification_slices", (CL,), produces=("balanced_accuracy", "accuracy"), per_slice=True)
def classification_headline(run: RunScores) -> list[MetricValue]:
    """``balanced_accuracy`` and ``accuracy`` of a slice."""
    res = classification_metrics(run.human["label"], run.verdicts[0], boot=run.boot,
                                 classes=list(run.classes) if run.classes else None)
    return [res["balanced_accuracy"], res["accuracy"]]
