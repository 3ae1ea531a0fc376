"""The metric catalog: every metric a run stores, with its one meaning, its definition and its
source, and the headline metric that rankings use unless told otherwise.

One name, one meaning: a figure whose definition would change with the data (e.g. accuracy on
sets whose human labels include ties) gets its own name (``accuracy_3way``) instead.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from registry.domain.types import TASK_TYPES
from registry.errors import InvalidInput

Kind = Literal["mean", "statistic"]
"""``mean``: the mean of per-example values (paired tests resample those values);
``statistic``: anything else (κ, α, correlations, F1, AUC), paired-tested by recomputing the
statistic of both runs on the same resamples."""


@dataclass(frozen=True)
class MetricInfo:
    """One metric of the catalog."""

    name: str
    """The stored name (``MetricRecord.name``); per-slice values carry the same name."""
    task_types: tuple[str, ...]
    """Task types whose runs can store it (``accuracy`` is pairwise and classification)."""
    definition: str
    """One line: what the number is."""
    source: str
    """Where the definition comes from (paper / benchmark / this project)."""
    kind: Kind = "mean"
    """How paired tests treat it (see :data:`Kind`)."""
    higher_is_better: bool | None = True
    """``None`` for a bias (``prob_prefer_*``), whose neutral value is ½: no direction is better."""


METRICS: dict[str, MetricInfo] = {}


def _add(name: str, task_types: str | tuple[str, ...], definition: str, source: str, kind: Kind = "mean",
         higher_is_better: bool | None = True) -> None:
    tt = (task_types,) if isinstance(task_types, str) else task_types
    METRICS[name] = MetricInfo(name, tt, definition, source, kind, higher_is_better)


PW, PT, CL = "pairwise", "pointwise", "classification"
ALL_TYPES = TASK_TYPES

# ---------------------------------------------------------------------------------- pairwise
# Verdicts of order 1 (swapped) are mapped back to the original orientation before scoring.
_add("accuracy", (PW, CL),
     "Share judged correctly. Pairwise: mean over the orders judged of the per-order accuracy, a tie "
     "verdict or parse failure earning the expected credit ½ of a fair A/B coin against an A/B label "
     "(0 against a tie label); classification: share of predicted labels equal to the human label, a "
     "parse failure wrong.",
     "ReIFE (pairwise); LLM-AggreFact (classification)")
_add("accuracy_3way", PW,
     "Share of verdicts exactly equal to the 3-way label (A, B or tie), mean over the orders judged; "
     "a parse failure is wrong. Stored on sets whose human labels include ties, where it is the headline.",
     "PandaLM")
_add("accuracy_flip", PW,
     "Accuracy with every tie verdict and parse failure replaced by a seeded coin flip over A/B "
     "(the coin depends on the run's seed, the order and the example position).", "ReIFE")
_add("accuracy_order0", PW, "Accuracy of order 0 (as given) alone, ties and failures earning ½.", "ReIFE")
_add("accuracy_order1", PW, "Accuracy of order 1 (responses swapped) alone, ties and failures earning ½.", "ReIFE")
_add("accuracy_strict", PW,
     "Single-order runs: share of verdicts equal to the label, a tie verdict or parse failure wrong.",
     "LLMBar")
_add("accuracy_logprob", PW,
     "Accuracy of the verdict from P(A) (the judge's choice log-probabilities averaged over the orders "
     "judged): A above ½, B below, tie at ½; ties and examples without log-probabilities earn ½.",
     "ReIFE")
_add("accuracy_logprob_3way", PW,
     "The log-probability verdicts of accuracy_logprob scored against the 3-way label (exact match, "
     "ties as a class); stored on sets whose human labels include ties.", "ReIFE / PandaLM")
_add("correct_both", PW, "Share of examples judged correctly in both orders (a tie or failure is wrong).",
     "LLMBar")
_add("correct_False", PW, "Share correct in order 0 (LLMBar's swap = False), a parse failure wrong.", "LLMBar")
_add("correct_True", PW, "Share correct in order 1 (LLMBar's swap = True), a parse failure wrong.", "LLMBar")
_add("correct_average", PW, "Mean of correct_False and correct_True (LLMBar's \"Acc.\").", "LLMBar")
_add("equal", PW,
     "Share of examples whose two orders give the same raw verdict, two parse failures agreeing "
     "(LLMBar's \"Agr.\").", "LLMBar")
_add("positional_agreement", PW,
     "Share of examples whose two orders give the same verdict; two parse failures do not agree.",
     "LLMBar / ReIFE")
_add("self_consistency", PW, "Share of examples whose coin-resolved verdicts agree across the two orders.",
     "ReIFE")
_add("alpha", PW,
     "Krippendorff's α (nominal) between coin-resolved verdicts and labels, mean over the two orders.",
     "ReIFE", kind="statistic")
_add("self_consistency_alpha", PW, "Krippendorff's α (nominal) between the two orders' coin-resolved verdicts.",
     "ReIFE", kind="statistic")
_add("cohen_kappa_agreement", PW,
     "Cohen's κ between the two orders' verdicts (a parse failure is a category of its own).",
     "this project (correct form of LLMBar's kappa_agreement)", kind="statistic")
_add("cohen_kappa_average", PW,
     "Cohen's κ between verdicts and labels, mean over the two orders (extra: cohen_kappa_False/True).",
     "this project (correct form of LLMBar's kappa_average)", kind="statistic")
_add("llmbar_kappa_agreement", PW,
     "LLMBar's statistics.json kappa_agreement, reproduced for compatibility: κ between the orders after "
     "mapping verdict \"1\" to 1 and anything else to 0. No CI; prefer cohen_kappa_agreement.",
     "LLMBar", kind="statistic")
_add("llmbar_kappa_average", PW,
     "LLMBar's statistics.json kappa_average, reproduced for compatibility: κ against the label with "
     "verdicts mapped to 1/0 while labels stay 1/2, so the classes do not line up (extra: "
     "llmbar_kappa_False/True). No CI; prefer cohen_kappa_average.", "LLMBar", kind="statistic")
_add("judgebench_accuracy", PW,
     "Share of examples whose two-order score is > 0 (each order +1 when it matches the label, -1 when "
     "reversed, 0 otherwise).", "JudgeBench")
_add("prob_prefer_first", PW,
     "Position bias: P(preferring the response shown first), ties ½, failures left out; ½ = no bias.",
     "AlpacaEval", kind="statistic", higher_is_better=None)
_add("prob_prefer_longer", PW,
     "Length bias: P(preferring the longer response) over decisive verdicts on pairs whose lengths differ "
     "by more than 30 characters; ½ = no bias.", "AlpacaEval", kind="statistic", higher_is_better=None)
_add("prob_prefer_list", PW,
     "List bias: P(preferring the response with a list) over decisive verdicts on pairs where exactly one "
     "response has a list; ½ = no bias.", "AlpacaEval", kind="statistic", higher_is_better=None)
_add("human_agreement", PW,
     "1 - mean absolute error between the judge's preference (1, 2, 1.5 for a tie) and the mode of the "
     "human annotators (expected over tied modes), failures left out.", "AlpacaEval", kind="statistic")
_add("human_agreement_loo", PW,
     "The humans' own agreement: each annotator against the mode of the others (leave-one-out), averaged.",
     "AlpacaEval", kind="statistic")
# bias diagnostics (issue 15; registry.domain.metrics.bias); "longer" = by more than 30 characters
_add("flip_rate", PW,
     "Both orders: share of the examples with both orders parsed whose two verdicts differ (a tie against "
     "A or B counts; extra: decisive_flips A<->B, with_failure left out); 1 - positional_agreement when "
     "nothing failed to parse.", "this project (LLMBar / ReIFE positional consistency)", kind="statistic",
     higher_is_better=False)
_add("tie_rate", PW, "Share of the verdicts (examples x orders judged) that are ties.", "this project",
     kind="statistic", higher_is_better=None)
_add("parse_failure_rate", PW, "Share of the verdicts (examples x orders judged) that failed to parse.",
     "this project", kind="statistic", higher_is_better=False)
_add("prob_prefer_longer_human_shorter", PW,
     "Length bias against the humans: P(preferring the longer response) over decisive verdicts of every order, "
     "on the examples whose human-preferred response is shorter by more than 30 characters.",
     "this project (AlpacaEval's length bias)", kind="statistic", higher_is_better=False)
for _side, _than in (("better", "longer"), ("worse", "shorter")):
    _add(f"accuracy_longer_{_side}", PW,
         "accuracy (ties and failures earning 1/2, mean over the orders) on the examples whose human-preferred "
         f"response is {_than} by more than 30 characters.", "this project", kind="statistic")
_add("lc_accuracy", PW,
     "Length-controlled accuracy: sigmoid(a) of the logistic GLM logit E[credit] = a + g*tanh(dlen/sd(dlen)) "
     "over A/B-labelled examples (credit as accuracy's; dlen = preferred - other length), i.e. the predicted "
     "accuracy on equally long responses; Wald CI with sandwich SE (extra: length_coef g).",
     "this project, after AlpacaEval 2 length-controlled win rates", kind="statistic")

# --------------------------------------------------------------------------------- pointwise
for _method, _title in (("pearson", "Pearson r"), ("spearman", "Spearman ρ"), ("kendall", "Kendall τ-b")):
    _add(_method, PT,
         f"{_title} between the judge's and the human scores over the examples with both (unparsed "
         "ratings left out and counted in extra dropped).", "SummEval-style", kind="statistic")
    _add(f"system_{_method}", PT,
         f"{_title} between per-system mean judge scores and per-system mean human scores (3+ systems).",
         "SummEval-style", kind="statistic")

# ---------------------------------------------------------------------------- classification
_add("balanced_accuracy", CL,
     "Mean recall over the classes present in the human labels (a parse failure is wrong).",
     "LLM-AggreFact", kind="statistic")
_add("macro_f1", CL, "Unweighted mean F1 over the classes in the labels or the parsed predictions.",
     "LLM-AggreFact", kind="statistic")
_add("roc_auc", CL,
     "Binary ROC-AUC of the judge's score for the first class of the dataset's label set (Mann-Whitney, "
     "ties ½); only when the judge gives scores.", "LLM-AggreFact", kind="statistic")

# ------------------------------------------------------------------------------- every type
_add("coverage", ALL_TYPES,
     "Share of the dataset's examples with at least one parsed verdict or score (extra: rows, "
     "with_predictions, unparsed, slices computed and skipped).", "this project", kind="statistic")
_add("time_per_1000", ALL_TYPES, "Judge seconds per 1000 examples (1000 × mean seconds per example).",
     "AlpacaEval", kind="statistic", higher_is_better=False)
_add("price_per_1000", ALL_TYPES,
     "Price in $ per 1000 examples from tokens and the evaluator's price per 1000 tokens.", "AlpacaEval",
     kind="statistic", higher_is_better=False)


HEADLINE: dict[str, str] = {"pairwise": "accuracy", "pointwise": "spearman", "classification": "balanced_accuracy"}
"""Headline per task type; pairwise sets whose human labels include ties use ``accuracy_3way``."""

SLICED: dict[str, tuple[str, ...]] = {"pairwise": ("accuracy", "accuracy_3way"), "pointwise": ("spearman",),
                                      "classification": ("balanced_accuracy", "accuracy")}
"""The metrics a run also stores per slice (``"<column>=<value>"``), where the run has them."""


def check_task_type(task_type: str) -> str:
    """``task_type`` itself, or an :class:`~registry.errors.InvalidInput` listing the task types."""
    if task_type not in TASK_TYPES:
        raise InvalidInput(f"unknown task type {task_type!r}; choose one of {', '.join(TASK_TYPES)}",
                           field="task_type")
    return task_type


def headline_metric(task_type: str, *, tie_labels: bool = False) -> str:
    """The metric rankings use by default for a dataset of ``task_type``: pairwise ``accuracy``
    (``accuracy_3way`` with ``tie_labels``, i.e. when the human labels include ties), pointwise
    ``spearman``, classification ``balanced_accuracy``."""
    check_task_type(task_type)
    if task_type == "pairwise" and tie_labels:
        return "accuracy_3way"
    return HEADLINE[task_type]


def metrics_for(task_type: str) -> list[MetricInfo]:
    """Every catalogued metric a run on ``task_type`` can have, sorted by name."""
    check_task_type(task_type)
    return sorted((m for m in METRICS.values() if task_type in m.task_types), key=lambda m: m.name)


def require_metric(task_type: str, name: str) -> MetricInfo:
    """The catalog entry of ``name`` for ``task_type``; an unknown name is an
    :class:`~registry.errors.InvalidInput` that says so and lists the metrics of that task type
    (with a "did you mean" when a name is close)."""
    known = metrics_for(task_type)
    info = METRICS.get(name)
    if info is not None and task_type in info.task_types:
        return info
    names = [m.name for m in known]
    if info is not None:
        what = f"metric {name!r} is not defined for {task_type} datasets (it is a {'/'.join(info.task_types)} metric)"
    else:
        what = f"unknown metric {name!r} for {task_type} datasets"
    close = difflib.get_close_matches(name, names, n=3)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    raise InvalidInput(f"{what}; {hint}metrics of {task_type} datasets: {', '.join(names)} "
                       f"(definitions: `autorater metrics list --task-type {task_type}`)", field="metric")
