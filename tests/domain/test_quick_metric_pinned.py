"""``quick_metric`` (tail-patch probes) computes its Spearman and balanced accuracy with the metric
registry's functions; its values are pinned to those of the hand-written versions it replaced, on
seeded inputs with tied ranks, zero margins and tie targets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from registry.domain.training import quick_metric

def _cases():
    rng = np.random.default_rng(7)
    for _ in range(12):
        n = int(rng.integers(2, 40))
        logits = np.round(rng.normal(size=n), 1).tolist()   # rounded: tied ranks and zero margins
        yield (logits, rng.choice([0.0, 0.5, 1.0], size=n).tolist(), np.round(rng.uniform(size=n), 1).tolist(),
               rng.choice([0.0, 1.0], size=n).tolist())


def _outputs():
    return [(quick_metric("pairwise", lg, pw), quick_metric("pointwise", lg, pt), quick_metric("classification", lg, cl))
            for lg, pw, pt, cl in _cases()]


PINNED_VALUES = [
    (0.8095238095238095, -0.26555025671381915, 0.5485294117647059),
    (0.5, -0.14824986333222023, 0.29166666666666663),
    (0.6666666666666666, 0.15811388300841897, 0.16666666666666666),
    (0.5576923076923077, -0.0577975091927464, 0.5472222222222223),
    (0.3611111111111111, 0.07729626278014587, 0.6402714932126696),
    (0.4807692307692308, 0.32611565773224294, 0.6176470588235294),
    (0.4782608695652174, -0.03391969668110038, 0.3833333333333333),
    (0.4117647058823529, 0.05082017493146889, 0.4914772727272727),
    (0.4444444444444444, -0.010559299517813536, 0.4642857142857143),
    (0.7058823529411765, 0.04041236713629653, 0.487012987012987),
    (0.6666666666666666, -0.4337664234406919, 0.8333333333333333),
    (0.5, 0.17599446267626825, 0.5431547619047619),
]


def test_quick_metric_values_pinned():
    got = _outputs()
    assert len(got) == len(PINNED_VALUES)
    for (pw, pt, cl), want in zip(got, PINNED_VALUES):
        assert (pw[0], pt[0], cl[0]) == ("accuracy", "spearman", "balanced_accuracy")
        for value, expected in zip((pw[1], pt[1], cl[1]), want):
            assert value == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_quick_metric_edge_cases():
    assert math.isnan(quick_metric("pointwise", [1.0, 1.0, 1.0], [0.1, 0.2, 0.3])[1])   # constant scores
    assert math.isnan(quick_metric("pointwise", [1.0], [0.1])[1])
    assert math.isnan(quick_metric("classification", [], [])[1])
    assert quick_metric("classification", [1.0, -1.0], [1.0, 1.0]) == ("balanced_accuracy", 0.5)   # one class present
    assert math.isnan(quick_metric("pairwise", [1.0], [0.5])[1])                                # only tie targets
