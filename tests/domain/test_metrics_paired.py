"""Paired comparison of two runs: McNemar and paired bootstrap, including p-value sanity."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from registry.domain.metrics import Bootstrap, mcnemar, paired_bootstrap


def _pair(only_a: int, only_b: int, both: int, neither: int):
    a = np.array([1] * only_a + [0] * only_b + [1] * both + [0] * neither, bool)
    b = np.array([0] * only_a + [1] * only_b + [1] * both + [0] * neither, bool)
    return a, b


def test_mcnemar_by_hand():
    a, b = _pair(10, 2, 20, 8)
    exact = mcnemar(a, b, method="exact")
    assert exact.p_value == pytest.approx(2 * (66 + 12 + 1) / 4096)        # 2·P(X ≥ 10), X ~ Bin(12, ½)
    assert exact.difference == pytest.approx(8 / 40)
    chi = mcnemar(a, b, method="chi2")
    assert chi.statistic == pytest.approx(49 / 12)
    assert chi.p_value == pytest.approx(stats.chi2.sf(49 / 12, 1))
    assert mcnemar(a, b).method == "mcnemar_exact"                           # 12 discordant < 25
    assert exact.ci_low < exact.difference < exact.ci_high


def test_mcnemar_without_discordant_pairs():
    a, b = _pair(0, 0, 5, 5)
    t = mcnemar(a, b)
    assert t.p_value == 1.0 and t.difference == 0.0


def test_paired_bootstrap_identical_and_clearly_different():
    rng = np.random.default_rng(0)
    x = (rng.random(200) < 0.7).astype(float)
    boot = Bootstrap.draw(200, 1000, seed=1)
    same = paired_bootstrap(x, x, boot=boot)
    assert same.difference == 0.0 and same.p_value == 1.0
    better = np.ones(200)
    t = paired_bootstrap(better, x, boot=boot)
    assert t.difference == pytest.approx(1 - x.mean())
    assert t.ci_low > 0 and t.ci_low <= t.difference <= t.ci_high
    assert t.p_value == pytest.approx(1 / 1001)


def test_p_values_are_calibrated_under_the_null():
    rng = np.random.default_rng(42)
    boot = Bootstrap.draw(150, 500, seed=0)
    boot_p, mcn_p = [], []
    for _ in range(300):
        a = (rng.random(150) < 0.7).astype(float)
        b = (rng.random(150) < 0.7).astype(float)
        boot_p.append(paired_bootstrap(a, b, boot=boot).p_value)
        mcn_p.append(mcnemar(a, b).p_value)
    assert 0.01 < np.mean(np.array(boot_p) < 0.05) < 0.11
    assert np.mean(np.array(mcn_p) < 0.05) < 0.09           # exact/corrected McNemar is conservative
    assert 0.35 < np.median(boot_p) < 0.65


def test_power_grows_with_the_effect():
    rng = np.random.default_rng(7)
    a = (rng.random(400) < 0.8).astype(float)
    b_small = np.where(rng.random(400) < 0.05, 0.0, a)
    b_large = np.where(rng.random(400) < 0.3, 0.0, a)
    assert mcnemar(a, b_large).p_value < mcnemar(a, b_small).p_value
    assert mcnemar(a, b_large).p_value < 1e-6


# ----------------------------------------------------------------------------- statistics, per-example decompositions
from registry.domain.metrics import (  # noqa: E402
    classification_metrics,
    correlations,
    human_agreement,
    judgebench_accuracy,
    llmbar_metrics,
    reife_metrics,
    system_level_correlations,
)
from registry.domain.metrics import accuracy as pairwise_accuracy  # noqa: E402
from registry.domain.metrics.paired import paired_statistic_bootstrap  # noqa: E402
from registry.domain.metrics.per_example import (  # noqa: E402
    ClassificationJudgments,
    PairwiseJudgments,
    PointwiseJudgments,
    binary_metrics,
    decompose,
    decomposable,
    mcnemar_test,
    paired_test,
    untestable_reason,
)
from registry.errors import InvalidInput  # noqa: E402


def test_paired_statistic_bootstrap_identical_different_and_undefined():
    rng = np.random.default_rng(3)
    s = rng.normal(0.5, 0.05, 500)
    same = paired_statistic_bootstrap(0.5, s, 0.5, s, n=100)
    assert same.difference == 0.0 and same.p_value == 1.0 and same.method == "paired_bootstrap"
    apart = paired_statistic_bootstrap(0.8, s + 0.3, 0.5, s, n=100)
    assert apart.difference == pytest.approx(0.3) and apart.p_value == pytest.approx(1 / 501)
    assert apart.ci_low == pytest.approx(0.3) and apart.extra["value_a"] == 0.8
    holes = s.copy()
    holes[:10] = np.nan                                  # a resample where the statistic is undefined
    t = paired_statistic_bootstrap(0.5, holes, 0.5, s, n=100)
    assert t.extra["undefined_resamples"] == 10 and t.extra["bootstrap_samples"] == 490


def _pairwise_judgments(seed: int = 0, n: int = 120, *, noise: float = 0.2, ties: bool = True) -> PairwiseJudgments:
    rng = np.random.default_rng(seed)
    labels = rng.choice([0, 1, 2] if ties else [0, 1], size=n).astype(np.int8)

    def order() -> np.ndarray:
        v = np.where(rng.random(n) < noise, rng.choice([-1, 0, 1, 2], size=n), labels)
        return v.astype(np.int8)

    annot = np.where(rng.random((n, 3)) < 0.8, labels[:, None], rng.choice([0, 1, 2], size=(n, 3))).astype(np.int8)
    return PairwiseJudgments([f"e{i}" for i in range(n)], labels, (order(), order()), seed=7,
                             logprob=order(), annotators=annot)


def test_pairwise_decompositions_reproduce_the_metric_functions():
    j = _pairwise_judgments()
    labels, (v0, v1) = j.labels, j.verdicts
    expected = {m.name: m.value for m in llmbar_metrics(labels, v0, v1)}
    expected.update({k: m.value for k, m in reife_metrics(labels, v0, v1, seed=7).items()})
    expected["judgebench_accuracy"] = judgebench_accuracy(labels, v0, v1).value
    expected["accuracy_3way"] = pairwise_accuracy(labels, v0, v1, policy="wrong").value
    expected["accuracy_logprob"] = pairwise_accuracy(labels, j.logprob, policy="expected").value
    expected["accuracy_logprob_3way"] = pairwise_accuracy(labels, j.logprob, policy="wrong").value
    expected["human_agreement"] = human_agreement(j.annotators, np.stack([v0, v1])).value
    assert set(expected) <= set(decomposable(j))
    for name, value in expected.items():
        assert decompose(name, j).value() == pytest.approx(value, abs=1e-12), name


def test_classification_and_pointwise_decompositions_reproduce_the_metric_functions():
    rng = np.random.default_rng(1)
    y = list(rng.choice(["yes", "no"], size=150, p=[0.3, 0.7]))
    pred = [v if rng.random() < 0.8 else (None if rng.random() < 0.3 else "no") for v in y]
    scores = np.where(rng.random(150) < 0.1, np.nan, (np.array(y) == "yes") + rng.normal(0, 0.8, 150))
    cj = ClassificationJudgments([str(i) for i in range(150)], y, pred, classes=["yes", "no"], scores=scores,
                                 positive="yes")
    want = classification_metrics(y, pred, scores, "yes", classes=["yes", "no"])
    for name in ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc"):
        assert decompose(name, cj).value() == pytest.approx(want[name].value, abs=1e-12), name
    assert decompose("roc_auc", cj).n == int(np.isfinite(scores).sum())
    human = rng.normal(size=200)
    predicted = np.where(rng.random(200) < 0.05, np.nan, human + rng.normal(0, 1, 200))
    systems = np.array([f"s{i % 5}" for i in range(200)], dtype=object)
    pj = PointwiseJudgments([str(i) for i in range(200)], human, predicted, systems)
    want = {**correlations(human, predicted), **system_level_correlations(human, predicted, systems)}
    for name, m in want.items():
        key = m.name
        assert decompose(key, pj).value() == pytest.approx(m.value, abs=1e-12), key


def test_identical_runs_are_tied_on_every_metric_and_a_worse_one_is_not():
    good, worse = _pairwise_judgments(noise=0.1), _pairwise_judgments(noise=0.9)
    worse = PairwiseJudgments(good.ids, good.labels, worse.verdicts, seed=7, logprob=worse.logprob,
                              annotators=good.annotators)
    for name in decomposable(good):
        same = paired_test(decompose(name, good), decompose(name, good), n_boot=300)
        assert same.p_value == 1.0 and same.difference == 0.0, name
        assert same.extra["test"].startswith("paired_bootstrap(") and name in same.extra["test"]
    for name in ("accuracy", "accuracy_3way", "correct_both", "cohen_kappa_average", "alpha", "human_agreement"):
        t = paired_test(decompose(name, good), decompose(name, worse), n_boot=300)
        assert t.difference > 0 and t.p_value < 0.01, name


def test_paired_test_uses_only_the_shared_examples():
    j = _pairwise_judgments(ties=False)
    half = decompose("correct_both", j).take(np.arange(60))
    t = paired_test(decompose("correct_both", j), half, n_boot=100)
    assert t.extra["n_shared"] == 60 and t.p_value == 1.0
    assert paired_test(half.take(np.arange(1)), decompose("correct_both", j)) is None


def test_mcnemar_only_for_zero_one_correctness():
    j = _pairwise_judgments()
    assert {"correct_both", "correct_False", "correct_True", "judgebench_accuracy"} <= set(binary_metrics(j))
    assert "accuracy" not in binary_metrics(j) and "alpha" not in binary_metrics(j)
    other = _pairwise_judgments(seed=5)
    other = PairwiseJudgments(j.ids, j.labels, other.verdicts, seed=7)
    mc = mcnemar_test(decompose("correct_both", j), decompose("correct_both", other))
    both = paired_test(decompose("correct_both", j), decompose("correct_both", other))
    assert mc.name == "correct_both" and mc.difference == pytest.approx(both.difference)
    assert mcnemar_test(decompose("accuracy", j), decompose("accuracy", other)) is None


def test_metrics_without_a_paired_test_say_why():
    assert "cost" in untestable_reason("time_per_1000") and untestable_reason("accuracy") is None
    with pytest.raises(InvalidInput, match="coverage has no paired test"):
        decompose("coverage", _pairwise_judgments())
    with pytest.raises(InvalidInput, match="metrics that can: .*correct_both"):
        decompose("spearman", _pairwise_judgments())


def test_every_catalogued_metric_has_a_paired_test_of_its_kind_or_says_why_not():
    from registry.domain.metrics.catalog import metrics_for

    rng = np.random.default_rng(2)
    full = {
        "pairwise": _pairwise_judgments(),
        "classification": ClassificationJudgments(["1", "2", "3", "4"], ["y", "n", "y", "n"], ["y", "y", None, "n"],
                                                  classes=["y", "n"], scores=rng.random(4), positive="y"),
        "pointwise": PointwiseJudgments([str(i) for i in range(9)], rng.random(9), rng.random(9),
                                        np.array(list("abcabcabc"), dtype=object)),
    }
    for task_type, judgments in full.items():
        for info in metrics_for(task_type):
            if untestable_reason(info.name):
                continue
            assert info.name in decomposable(judgments), (task_type, info.name)
            assert decompose(info.name, judgments).kind == info.kind, (task_type, info.name)
