"""The metric registry: every stored name comes from a registered function, scoring's functions are
looked up by task type, and third-party functions join in registration order."""

from __future__ import annotations

import numpy as np
import pytest

import registry.domain.metrics as M
from registry.domain.metrics.catalog import METRICS, SLICED, TASK_TYPES
from registry.domain.metrics.pairwise import logprob_verdicts, prob_a_codes, prob_a_verdict, verdicts_from_prob_a
from registry.domain.metrics.suite import METRIC_FUNCTIONS, RunScores, metric_functions, register_metric, run_metrics
from registry.errors import NotFound


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_every_catalog_metric_has_one_registered_source(task_type):
    whole = metric_functions(task_type)
    (per_slice,) = metric_functions(task_type, per_slice=True)
    produced = {name for f in whole for name in f.produces}
    catalog = {name for name, info in METRICS.items() if task_type in info.task_types}
    assert produced | {"coverage"} == catalog          # coverage counts the raw predictions (scoring)
    for f in [*whole, per_slice]:
        assert set(f.produces) <= catalog, f.name
    assert set(per_slice.produces) == set(SLICED[task_type])


def test_functions_per_task_type_in_storage_order():
    assert [f.name for f in metric_functions("pairwise")] == [
        "reife", "llmbar", "judgebench", "accuracy_3way", "logprob", "bias", "bias_diagnostics", "human_agreement",
        "cost"]
    assert [f.name for f in metric_functions("pointwise")] == ["correlations", "system_correlations", "cost"]
    assert [f.name for f in metric_functions("classification")] == ["classification", "cost"]


def _pairwise_run(n: int = 40, **kw) -> RunScores:
    rng = np.random.default_rng(0)
    labels = rng.choice(["A", "B"], size=n).tolist()
    v0 = rng.choice(["A", "B", "tie", None], size=n).tolist()
    nan = np.full(n, np.nan)
    return RunScores("pairwise", {"label": labels, "response_a": ["x"] * n, "response_b": ["yy"] * n,
                                  "annotator_labels": [None] * n},
                     verdicts=(v0,), scores=(nan,), prob_a=(nan,), seconds=np.ones(n), tokens=np.zeros(n),
                     boot=M.Bootstrap.draw(n, 50, 0), **kw)


def test_one_order_run_and_missing_inputs():
    names = [m.name for m in run_metrics(_pairwise_run())]
    # one order: accuracy and accuracy_strict, no JudgeBench / logprob / 3-way / annotator figures
    # (and no flip_rate among the bias diagnostics)
    assert names == ["accuracy", "accuracy_strict", "prob_prefer_first", "prob_prefer_longer", "prob_prefer_list",
                     "tie_rate", "parse_failure_rate", "prob_prefer_longer_human_shorter", "accuracy_longer_better",
                     "accuracy_longer_worse", "lc_accuracy", "time_per_1000"]
    priced = [m.name for m in run_metrics(_pairwise_run(price_per_1k_tokens=0.5, tie_labels=True))]
    assert priced[-1] == "price_per_1000" and "accuracy_3way" in priced


def test_a_registered_function_is_computed_in_registration_order():
    @register_metric("test-share-tie", ("pairwise",), produces=("share_tie",))
    def share_tie(run: RunScores) -> list[M.MetricValue]:
        return [M.MetricValue("share_tie", float(np.mean([v == "tie" for v in run.verdicts[0]])), 0.0, 1.0, run.n)]

    try:
        run = _pairwise_run()
        values = run_metrics(run)
        assert [m.name for m in values][-1] == "share_tie"
        assert values[-1].value == pytest.approx(sum(v == "tie" for v in run.verdicts[0]) / run.n)
        assert "test-share-tie" not in [f.name for f in metric_functions("pointwise")]
    finally:
        METRIC_FUNCTIONS._entries.pop("test-share-tie")
    assert "share_tie" not in [m.name for m in run_metrics(_pairwise_run())]


def test_unknown_function_name_says_did_you_mean():
    with pytest.raises(NotFound, match="did you mean 'reife'"):
        METRIC_FUNCTIONS.get("reif")


def test_logprob_rule_has_one_home():
    rng = np.random.default_rng(3)
    lp1, lp2 = np.log(rng.uniform(0.01, 1, size=(2, 30))), np.log(rng.uniform(0.01, 1, size=(2, 30)))
    lp1[1, :5] = np.nan                                                # order 1 missing on a few
    lp2[:, 5] = np.nan                                                 # no order at all on one
    with np.errstate(invalid="ignore"):
        p_first = np.exp(lp1 - np.logaddexp(lp1, lp2))
    p_a = np.stack([p_first[0], 1.0 - p_first[1]])
    codes, mean = logprob_verdicts(lp1, lp2)
    assert (prob_a_codes(list(p_a), 30) == codes).all() and (verdicts_from_prob_a(p_a)[0] == codes).all()
    assert codes[5] == -1 and np.isnan(mean[5])
    assert prob_a_codes([np.full(4, np.nan)], 4) is None
    assert [prob_a_verdict(p) for p in (0.7, 0.2, 0.5)] == ["A", "B", "tie"]
    assert verdicts_from_prob_a(np.array([[0.5, 0.6], [0.5, np.nan]]))[0].tolist() == [2, 0]


def test_subset_draws_nothing_new_and_keeps_alignment():
    run = _pairwise_run(n=10)
    part = run.subset(np.array([7, 2]), M.Bootstrap.draw(2, 5, 1))
    assert part.n == 2 and part.human["label"] == [run.human["label"][7], run.human["label"][2]]
    assert part.verdicts[0] == [run.verdicts[0][7], run.verdicts[0][2]] and part.boot.n == 2
