"""Meta-evaluation metrics (pure, vectorized numpy/scipy). See DESIGN.md §5 for the sources.

Public API; the definitions and their sources are in each module's docstring:

- ``value``: ``MetricValue`` (one metric, CI, n, slice), ``MetricArray`` (R runs at once);
- ``bootstrap``: ``Bootstrap`` — seeded resample indices and the count-weight matrix W;
- ``pairwise``: accuracy under tie policies, correct-both, positional agreement, κ, α, ReIFE and
  JudgeBench scores, logprob verdicts, and the ``*_many`` functions for many runs;
- ``llmbar``: LLMBar ``result.json`` parsing and its exact ``statistics.json``;
- ``alpacaeval``: human agreement, leave-one-out, position/length/list bias, price and time;
- ``pandalm``: PandaLM test-set predictions against the 3-annotator majority;
- ``pointwise``: Pearson/Spearman/Kendall at example and system level;
- ``classification``: accuracy, balanced accuracy, macro F1, ROC-AUC;
- ``slices``: any metric per value of a column, with the report of skipped slices;
- ``paired``: paired bootstrap and McNemar;
- ``catalog``: every stored metric's one meaning, definition and source, and the headline metrics;
- ``suite``: the metric registry — ``RunScores`` (a run aligned with the human judgments),
  ``register_metric`` and the functions of each task type (``run_metrics``, ``slice_function``);
  ``builtin`` registers the built-in functions.
"""

from registry.domain.metrics.alpacaeval import (
    has_list,
    human_agreement,
    human_agreement_loo,
    length_bias,
    list_bias,
    per_1000,
    position_bias,
)
from registry.domain.metrics.annotators import majority_vote, modes, vote_counts
from registry.domain.metrics.bootstrap import Bootstrap, CountsAhead
from registry.domain.metrics.classification import (
    balanced_accuracy,
    classification_metrics,
    macro_f1,
    roc_auc,
)
from registry.domain.metrics.classification import accuracy as classification_accuracy
from registry.domain.metrics.llmbar import llmbar_metrics, llmbar_statistics, parse_llmbar_result
from registry.domain.metrics.paired import PairedTest, mcnemar, paired_bootstrap
from registry.domain.metrics.pairwise import (
    REIFE_METRICS,
    TiePolicy,
    accuracy,
    alpha_nominal,
    coin_flips,
    cohen_kappa,
    correct_both,
    judgebench_accuracy,
    judgebench_scores,
    kappa,
    logprob_verdicts,
    pairwise_accuracy_many,
    positional_agreement,
    reife_metrics,
    reife_metrics_many,
    verdicts_from_prob_a,
)
from registry.domain.metrics.pandalm import pandalm_agreement, parse_pandalm_predictions
from registry.domain.metrics.pointwise import correlation, correlations, system_level_correlations
from registry.domain.metrics.slices import SliceReport, by_slice, sliced
from registry.domain.metrics.suite import (
    METRIC_FUNCTIONS,
    MetricFunction,
    RunScores,
    metric_functions,
    register_metric,
    run_metrics,
    slice_function,
)
from registry.domain.metrics.value import MetricArray, MetricValue

from registry.domain.metrics import builtin  # noqa: E402,F401,I001 (registers the built-in metric functions)

__all__ = [
    "Bootstrap", "CountsAhead", "METRIC_FUNCTIONS", "MetricArray", "MetricFunction", "MetricValue", "PairedTest",
    "REIFE_METRICS",
    "RunScores", "SliceReport", "TiePolicy", "accuracy", "alpha_nominal", "balanced_accuracy", "by_slice",
    "classification_accuracy", "classification_metrics", "cohen_kappa", "coin_flips", "correct_both", "correlation",
    "correlations", "has_list", "human_agreement", "human_agreement_loo", "judgebench_accuracy", "judgebench_scores",
    "kappa", "length_bias", "list_bias", "llmbar_metrics", "llmbar_statistics", "logprob_verdicts", "macro_f1",
    "majority_vote", "mcnemar", "metric_functions", "modes", "paired_bootstrap", "pairwise_accuracy_many",
    "pandalm_agreement", "parse_llmbar_result", "parse_pandalm_predictions", "per_1000", "position_bias",
    "positional_agreement", "register_metric", "reife_metrics", "reife_metrics_many", "roc_auc", "run_metrics",
    "slice_function", "sliced", "system_level_correlations", "verdicts_from_prob_a", "vote_counts",
]
