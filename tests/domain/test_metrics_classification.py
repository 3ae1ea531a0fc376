"""Classification metrics on hand-computed cases and against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

from registry.domain.metrics import (
    Bootstrap,
    balanced_accuracy,
    classification_accuracy,
    classification_metrics,
    macro_f1,
    roc_auc,
)
from registry.errors import InvalidInput

LABELS = ["pos", "pos", "pos", "neg", "neg", "neg"]
PREDS = ["pos", "pos", "neg", "neg", "neg", None]           # one parse failure


def test_hand_computed_values():
    out = classification_metrics(LABELS, PREDS, boot=Bootstrap.draw(6, 200))
    assert out["accuracy"].value == pytest.approx(4 / 6)
    assert out["balanced_accuracy"].value == pytest.approx((2 / 3 + 2 / 3) / 2)
    # F1(pos) = 2·2/(3 + 2) = .8; F1(neg) = 2·2/(3 + 3) = 2/3; the failure is no class
    assert out["macro_f1"].value == pytest.approx((0.8 + 2 / 3) / 2)
    assert out["accuracy"].extra["failures"] == 1 and out["accuracy"].extra["classes"] == ["neg", "pos"]


def test_balanced_accuracy_exposes_a_majority_guesser():
    labels = [1] * 8 + [0] * 2
    preds = [1] * 10
    assert classification_accuracy(labels, preds).value == pytest.approx(0.8)
    assert balanced_accuracy(labels, preds).value == pytest.approx(0.5)
    assert macro_f1(labels, preds).value == pytest.approx((2 * 8 / 18 + 0.0) / 2)


def test_roc_auc_by_hand_with_ties():
    assert roc_auc([1, 1, 0, 0], [0.9, 0.4, 0.5, 0.1], positive=1).value == pytest.approx(0.75)
    assert roc_auc([1, 1, 0, 0], [0.5, 0.4, 0.5, 0.1], positive=1).value == pytest.approx(0.625)
    assert roc_auc(["y", "n"], [0.2, 0.8], positive="n").value == pytest.approx(1.0)
    dropped = roc_auc([1, 1, 0, 0], [0.9, np.nan, 0.5, 0.1], positive=1)
    assert dropped.value == 1.0 and dropped.extra["dropped"] == 1


def test_against_sklearn():
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    p = np.where(rng.random(300) < 0.6, y, rng.integers(0, 3, 300))
    out = classification_metrics(y.tolist(), p.tolist(), boot=Bootstrap.draw(300, 100))
    assert out["accuracy"].value == pytest.approx(skm.accuracy_score(y, p))
    assert out["balanced_accuracy"].value == pytest.approx(skm.balanced_accuracy_score(y, p))
    assert out["macro_f1"].value == pytest.approx(skm.f1_score(y, p, average="macro"))
    yb = (y == 1).astype(int)
    s = yb + rng.normal(size=300)
    m = roc_auc(yb, s, positive=1, boot=Bootstrap.draw(300, 300))
    assert m.value == pytest.approx(skm.roc_auc_score(yb, s))
    assert m.ci_low < m.value < m.ci_high


def test_bad_inputs():
    with pytest.raises(InvalidInput, match="labels"):
        classification_accuracy([None, 1], [1, 1])
    with pytest.raises(InvalidInput, match="2 labels but 3 predictions"):
        classification_accuracy([1, 0], [1, 0, 1])
    with pytest.raises(InvalidInput, match="positive class"):
        classification_metrics([1, 0], [1, 0], scores=[0.1, 0.2])
