"""The regression service's paired comparison of two runs (``_compare``): each task type is tested on
its headline metric with that metric's own paired test, paired by example id."""

from __future__ import annotations

import numpy as np
import pytest

from registry.domain.judgments import encode_verdicts
from registry.domain.metrics.per_example import (
    ClassificationJudgments,
    PairwiseJudgments,
    PointwiseJudgments,
    decompose,
)
from registry.errors import InvalidInput
from registry.services.regressions import _compare


def _pointwise(human, predicted, ids=None):
    ids = ids if ids is not None else [str(i) for i in range(len(human))]
    return decompose("spearman", PointwiseJudgments(ids, np.asarray(human, float), np.asarray(predicted, float)))


def test_correlation_drop_is_the_metrics_own_paired_test():
    rng = np.random.default_rng(0)
    human = rng.normal(size=200)
    good = human + rng.normal(scale=0.5, size=200)
    noise = rng.normal(size=200)
    same = _compare("pointwise", _pointwise(human, good), _pointwise(human, good), n_boot=300, seed=0)
    assert same["delta"] == 0.0 and same["p_value"] == 1.0 and same["ci_low"] == same["ci_high"] == 0.0
    drop = _compare("pointwise", _pointwise(human, noise), _pointwise(human, good), n_boot=300, seed=0)
    assert drop["delta"] < -0.5 and drop["ci_high"] < 0 and drop["p_value"] == pytest.approx(1 / 301)
    assert drop["baseline_value"] > 0.8 and abs(drop["candidate_value"]) < 0.2
    assert drop["delta"] == pytest.approx(drop["candidate_value"] - drop["baseline_value"])
    assert (drop["method"], drop["n_shared"]) == ("paired_bootstrap", 200) and "mcnemar" not in drop["details"]
    # paired by example id, each run against its own human scores (a relabelled version); a rating
    # that did not parse is left out, as in the stored metric
    relabelled = human.copy()
    relabelled[:20] = rng.normal(size=20)
    missing = noise.copy()
    missing[5] = np.nan
    part = _compare("pointwise", _pointwise(relabelled, missing), _pointwise(human[:150], good[:150],
                                                                             [str(i) for i in range(150)]),
                    n_boot=300, seed=0)
    assert part["n_shared"] == 149
    assert _compare("pointwise", _pointwise(human[:2], good[:2]), _pointwise(human, good), n_boot=50, seed=0) is None
    with pytest.raises(InvalidInput, match="cannot be decomposed"):
        decompose("cosine", PointwiseJudgments(["a", "b"], np.ones(2), np.ones(2)))


def _pairwise(metric: str, labels: list[str], *orders: list[str]):
    ids = [str(i) for i in range(len(labels))]
    return decompose(metric, PairwiseJudgments(ids, encode_verdicts(labels), tuple(encode_verdicts(v) for v in orders)))


def test_pairwise_drop_is_tested_on_the_headline_metric_and_mcnemar_only_where_it_is_0_1():
    labels = ["A", "B"] * 40
    right = list(labels)
    swapped = [{"A": "B", "B": "A"}[x] for x in labels]
    # both orders judged, `accuracy`: wrong in one order of 20 examples is ½ credit each; credit is
    # not 0/1 correctness, so McNemar's test (on "full credit", another metric) is not recorded
    cand = _pairwise("accuracy", labels, right, swapped[:20] + right[20:])
    base = _pairwise("accuracy", labels, right, right)
    r = _compare("pairwise", cand, base, n_boot=500, seed=0)
    assert r["delta"] == pytest.approx(-20 * 0.5 / 80) and r["candidate_value"] == pytest.approx(0.875)
    assert r["p_value"] == pytest.approx(1 / 501) and "mcnemar" not in r["details"]
    # one order on a tie-labelled set, `accuracy_3way`: 0/1 correctness, McNemar's test of that same metric
    tied = ["A", "B", "tie", "tie"] * 20
    cand = _pairwise("accuracy_3way", tied, ["A"] * 80)          # right on the 20 A rows only
    base = _pairwise("accuracy_3way", tied, tied)                # right everywhere
    r = _compare("pairwise", cand, base, n_boot=500, seed=0)
    assert r["candidate_value"] == pytest.approx(20 / 80) and r["baseline_value"] == pytest.approx(80 / 80)
    mc = r["details"]["mcnemar"]
    assert mc["test"] == "mcnemar(per-example accuracy_3way)" and (mc["only_a"], mc["only_b"]) == (0, 60)
    assert mc["difference"] == pytest.approx(r["delta"]) and mc["p_value"] < 1e-6


def test_classification_drop_is_tested_on_balanced_accuracy():
    labels = ["yes"] * 10 + ["no"] * 90
    ids = [str(i) for i in range(100)]
    base = decompose("balanced_accuracy", ClassificationJudgments(ids, labels, labels, classes=["no", "yes"]))
    # right on every "no" but on no "yes": accuracy 0.9, balanced accuracy 0.5
    cand = decompose("balanced_accuracy", ClassificationJudgments(ids, labels, ["no"] * 100, classes=["no", "yes"]))
    r = _compare("classification", cand, base, n_boot=300, seed=0)
    assert r["candidate_value"] == pytest.approx(0.5) and r["baseline_value"] == pytest.approx(1.0)
    assert r["delta"] == pytest.approx(-0.5) and r["p_value"] == pytest.approx(1 / 301)
    assert "mcnemar" not in r["details"]  # McNemar would test accuracy (a drop of 0.1), not balanced accuracy
