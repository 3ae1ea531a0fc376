"""Bias diagnostics (registry.domain.metrics.bias): every metric against a plain-Python loop on
seeded random data (ties, parse failures, tie labels, equal lengths), the bootstrap CI against the
resamples taken one by one, the length-controlled accuracy's GLM against a loop-written Newton fit
and on hand-built cases whose answer is known, and the flip rate against the positional agreement
LLMBar publishes for every GPT-4 and ChatGPT evaluator (statistics.json)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from registry.domain.judgments import FAIL
from registry.domain.metrics.bias import (
    BIAS_METRICS,
    bias_diagnostics,
    fit_length_glm,
    flip_rate,
    lc_accuracy,
    length_split,
    length_term,
    verdict_rates,
)
from registry.domain.metrics.bootstrap import Bootstrap
from registry.domain.metrics.llmbar import parse_llmbar_result
from registry.domain.metrics.pairwise import reife_metrics

A, B, TIE = 0, 1, 2


def _random(n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.choice([A, B, TIE], size=n, p=[0.45, 0.45, 0.1]).astype(np.int8)
    v0 = rng.choice([A, B, TIE, FAIL], size=n, p=[0.4, 0.4, 0.1, 0.1]).astype(np.int8)
    v1 = np.where(rng.random(n) < 0.7, v0, rng.choice([A, B, TIE, FAIL], size=n)).astype(np.int8)
    la = rng.integers(0, 400, size=n).astype(float)
    lb = np.where(rng.random(n) < 0.1, la, rng.integers(0, 400, size=n)).astype(float)   # some equal lengths
    return labels, v0, v1, la, lb


def _credit(label, verdicts) -> float:
    total = 0.0
    for v in verdicts:
        if v in (TIE, FAIL):
            total += 0.0 if label == TIE else 0.5
        else:
            total += 1.0 if v == label else 0.0
    return total / len(verdicts)


def _side(label, la, lb) -> str | None:
    """'better' / 'worse': the human-preferred response is longer / shorter by more than 30."""
    if label == TIE:
        return None
    diff = (la - lb) if label == A else (lb - la)
    return "better" if diff > 30 else "worse" if diff < -30 else None


def _loop_values(labels, v0, v1, la, lb) -> dict[str, float]:
    orders = [v0] if v1 is None else [v0, v1]
    out: dict[str, float] = {}
    if v1 is not None:
        parsed = flips = 0
        for a, b in zip(v0, v1):
            if a != FAIL and b != FAIL:
                parsed += 1
                flips += a != b
        out["flip_rate"] = flips / parsed
    verdicts = [v[i] for v in orders for i in range(len(labels))]
    out["tie_rate"] = sum(v == TIE for v in verdicts) / len(verdicts)
    out["parse_failure_rate"] = sum(v == FAIL for v in verdicts) / len(verdicts)
    longer = decisive = 0
    sums = {"better": [0.0, 0], "worse": [0.0, 0]}
    for i in range(len(labels)):
        side = _side(labels[i], la[i], lb[i])
        if side is None:
            continue
        sums[side][0] += _credit(labels[i], [v[i] for v in orders])
        sums[side][1] += 1
        if side == "worse":
            for v in orders:
                if v[i] in (A, B):
                    decisive += 1
                    longer += (v[i] == A and la[i] > lb[i]) or (v[i] == B and lb[i] > la[i])
    out["prob_prefer_longer_human_shorter"] = longer / decisive
    out["accuracy_longer_better"] = sums["better"][0] / sums["better"][1]
    out["accuracy_longer_worse"] = sums["worse"][0] / sums["worse"][1]
    return out


@pytest.mark.parametrize("orders", [1, 2])
def test_every_metric_equals_a_plain_loop(orders):
    labels, v0, v1, la, lb = _random()
    v1 = v1 if orders == 2 else None
    got = {m.name: m for m in bias_diagnostics(labels, v0, v1, la, lb, boot=Bootstrap.draw(len(labels), 100, 1))}
    want = _loop_values(labels, v0, v1, la, lb)
    assert set(got) == set(BIAS_METRICS) - ({"flip_rate"} if orders == 1 else set())
    for name, value in want.items():
        assert got[name].value == pytest.approx(value, abs=1e-12), name
        assert got[name].ci_low <= got[name].value <= got[name].ci_high, name
    sides = [_side(*x) for x in zip(labels, la, lb)]
    assert got["accuracy_longer_better"].n == sides.count("better")
    assert got["accuracy_longer_worse"].n == sides.count("worse")
    assert got["lc_accuracy"].n == int((labels != TIE).sum())
    if orders == 2:
        parsed = int(((v0 != FAIL) & (v1 != FAIL)).sum())
        assert got["flip_rate"].n == parsed and got["flip_rate"].extra["with_failure"] == len(labels) - parsed


def test_the_bootstrap_interval_is_the_ratio_on_each_resample():
    labels, v0, v1, la, lb = _random(120, seed=4)
    boot = Bootstrap.draw(len(labels), 200, 9)
    got = flip_rate(v0, v1, boot=boot)
    (acc_better,) = [m for m in length_split(labels, v0, v1, la, lb, boot=boot) if m.name == "accuracy_longer_better"]
    flips, better = [], []
    for idx in boot.indices:                       # each resample's statistic, one at a time
        want = _loop_values(labels[idx], v0[idx], v1[idx], la[idx], lb[idx])
        flips.append(want["flip_rate"])
        better.append(want["accuracy_longer_better"])
    for value, samples in ((got, flips), (acc_better, better)):
        assert value.ci_low == pytest.approx(np.percentile(samples, 2.5), abs=1e-12)
        assert value.ci_high == pytest.approx(np.percentile(samples, 97.5), abs=1e-12)


def test_tie_and_failure_rates_count_verdicts_of_every_order():
    v0 = np.array([A, TIE, FAIL, B], dtype=np.int8)
    v1 = np.array([TIE, TIE, A, FAIL], dtype=np.int8)
    tie, fail = verdict_rates(v0, v1)
    assert (tie.value, fail.value) == (3 / 8, 2 / 8) and tie.extra["verdicts"] == 3
    tie, fail = verdict_rates(v0)
    assert (tie.value, fail.value) == (1 / 4, 1 / 4)


def _loop_glm(y, s, ridge, iters=60):
    """Newton's method written with loops over the examples: (α, γ) and the sandwich covariance."""
    a = g = 0.0
    for _ in range(iters):
        ga = gg = haa = hag = hgg = 0.0
        for yi, si in zip(y, s):
            p = 1.0 / (1.0 + math.exp(-(a + g * si)))
            w = p * (1.0 - p)
            ga += yi - p
            gg += (yi - p) * si
            haa += w
            hag += w * si
            hgg += w * si * si
        gg -= ridge * g
        hgg += ridge
        det = haa * hgg - hag * hag
        a, g = a + (hgg * ga - hag * gg) / det, g + (haa * gg - hag * ga) / det
    haa = hag = hgg = maa = mag = mgg = 0.0
    for yi, si in zip(y, s):
        p = 1.0 / (1.0 + math.exp(-(a + g * si)))
        w, r2 = p * (1.0 - p), (yi - p) ** 2
        haa, hag, hgg = haa + w, hag + w * si, hgg + w * si * si
        maa, mag, mgg = maa + r2, mag + r2 * si, mgg + r2 * si * si
    hgg += ridge
    det = haa * hgg - hag * hag
    inv = np.array([[hgg, -hag], [-hag, haa]]) / det
    return (a, g), inv @ np.array([[maa, mag], [mag, mgg]]) @ inv


@pytest.mark.parametrize("ridge", [0.0, 0.01, 2.0])
def test_the_glm_fit_equals_a_loop_written_newton_fit(ridge):
    labels, v0, v1, la, lb = _random(250, seed=7)
    keep = labels != TIE
    y = np.array([_credit(lab, [a, b]) for lab, a, b in zip(labels, v0, v1)])[keep]
    diffs = [(x - z) if lab == A else (z - x) for lab, x, z in zip(labels[keep], la[keep], lb[keep])]
    sd = float(np.std(diffs))
    s = np.array([math.tanh(d / sd) for d in diffs])
    assert np.allclose(length_term(labels, la, lb)[0], s)
    beta, cov = fit_length_glm(y, s, ridge=ridge)
    (a, g), want_cov = _loop_glm(y, s, ridge)
    assert beta == pytest.approx([a, g], abs=1e-9)
    assert cov == pytest.approx(want_cov, rel=1e-7)
    got = lc_accuracy(labels, v0, v1, la, lb, ridge=ridge)
    assert got.value == pytest.approx(1.0 / (1.0 + math.exp(-a)), abs=1e-12)
    z = 1.959963984540054
    assert got.ci_low == pytest.approx(1.0 / (1.0 + math.exp(-(a - z * math.sqrt(want_cov[0][0])))), rel=1e-7)
    assert got.extra["length_coef"] == pytest.approx(g, abs=1e-9)


def _two_point_case(n_better: int, right_better: int, n_worse: int, right_worse: int):
    """Examples whose human-preferred response (always A) is 100 characters longer (``n_better``,
    of which the judge gets ``right_better`` right) or 100 shorter (``n_worse``, ``right_worse``)."""
    n = n_better + n_worse
    labels = np.zeros(n, dtype=np.int8)
    la = np.where(np.arange(n) < n_better, 200.0, 100.0)
    lb = np.where(np.arange(n) < n_better, 100.0, 200.0)
    right = np.r_[np.arange(n_better) < right_better, np.arange(n_worse) < right_worse]
    return labels, np.where(right, A, B).astype(np.int8), la, lb


def test_lc_accuracy_of_a_judge_with_no_skill_beyond_length_is_one_half():
    """Known answer. The judge picks the longer response 80% of the time, whatever the content: it is
    right on 80% of the 300 examples whose human-preferred response is the longer one (Δ = +100) and
    on 20% of the 100 where it is the shorter one (Δ = −100), so its raw accuracy is
    0.75·0.8 + 0.25·0.2 = 0.65. The length term takes two values, ±t with t = tanh(100/σ), so the
    two-parameter GLM is saturated: its MLE reproduces both groups' accuracies,
    α + γt = logit 0.8 and α − γt = logit 0.2, hence α = (logit 0.8 + logit 0.2)/2 = 0 and the
    length-controlled accuracy is sigmoid(0) = 1/2 exactly (without the ridge; with the default
    one, up to the penalty's pull on γ). γ = logit(0.8)/t = ln 4 / t."""
    labels, v0, la, lb = _two_point_case(300, 240, 100, 20)
    exact = lc_accuracy(labels, v0, None, la, lb, ridge=0.0)
    assert exact.value == pytest.approx(0.5, abs=1e-12)
    t = math.tanh(100 / exact.extra["sigma"])
    assert exact.extra["length_coef"] == pytest.approx(math.log(4) / t, rel=1e-10)
    assert exact.extra["accuracy"] == pytest.approx(0.65)
    assert exact.ci_low < 0.5 < exact.ci_high
    assert lc_accuracy(labels, v0, None, la, lb).value == pytest.approx(0.5, abs=1e-3)
    # the same skill on both sides: nothing to remove, the length-controlled accuracy is the accuracy
    labels, v0, la, lb = _two_point_case(300, 210, 100, 70)
    same = lc_accuracy(labels, v0, None, la, lb, ridge=0.0)
    assert same.value == pytest.approx(0.7, abs=1e-12) and same.extra["length_coef"] == pytest.approx(0, abs=1e-9)


def test_lc_accuracy_of_a_skilled_judge_helped_by_length():
    """Known answer: right on 90% of the longer-is-better half and 50% of the other half (balanced
    design, raw accuracy 0.7): α = (logit 0.9 + logit 0.5)/2 = ln(9)/2 = ln 3, so the
    length-controlled accuracy is sigmoid(ln 3) = 3/4."""
    labels, v0, la, lb = _two_point_case(200, 180, 200, 100)
    got = lc_accuracy(labels, v0, None, la, lb, ridge=0.0)
    assert got.value == pytest.approx(0.75, abs=1e-12) and got.extra["accuracy"] == pytest.approx(0.7)


def test_lc_accuracy_edge_cases():
    labels, v0, la, lb = _two_point_case(10, 10, 10, 10)         # always right: α̂ infinite
    got = lc_accuracy(labels, v0, None, la, lb)
    assert got.value == 1.0 and math.isnan(got.ci_low) and got.n == 20
    # equal lengths everywhere: σ = 0, no length term, the accuracy itself
    labels, v0, _, _ = _two_point_case(10, 6, 10, 6)
    got = lc_accuracy(labels, v0, None, np.full(20, 50.0), np.full(20, 50.0))
    assert got.value == pytest.approx(0.6) and got.extra["sigma"] == 0.0
    # ties and failures earn ½ as in accuracy; tie labels are left out
    got = lc_accuracy(np.array([A, B, TIE], dtype=np.int8), np.array([TIE, FAIL, A], dtype=np.int8), None,
                      np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0]))
    assert got.value == pytest.approx(0.5) and got.n == 2
    got = lc_accuracy(np.array([TIE], dtype=np.int8), np.array([A], dtype=np.int8), None, [1.0], [2.0])
    assert math.isnan(got.value) and got.n == 0


def _published_equal(path) -> tuple[int, int]:
    stats = json.loads(path.read_text())
    count, n = re.match(r"(\d+) / (\d+)", stats["equal"]).groups()
    return int(count), int(n)


def test_flip_rate_against_llmbar_published_positional_agreement(data_root):
    """LLMBar's "Agr." (statistics.json ``equal``: both orders give the same winner, two failures
    agreeing) for every GPT-4 and ChatGPT evaluator: the examples that do not agree are the flips plus
    the examples with exactly one failure; without failures the flip rate is 1 − Agr. exactly. The
    stored positional_agreement (two failures do not agree) satisfies (1 − PA)·n = flips + with_failure."""
    root = data_root / "princeton-nlp__LLMBar/Dataset/LLMBar"
    checked = without_failures = 0
    for result in sorted(root.glob("*/**/evaluators/*/*/result.json")):
        if result.parent.parent.name not in ("GPT-4", "ChatGPT"):
            continue
        labels, v0, v1 = parse_llmbar_result(json.loads(result.read_text()))
        equal, n = _published_equal(result.with_name("statistics.json"))
        got = flip_rate(v0, v1)
        one_failure = int(((v0 == FAIL) ^ (v1 == FAIL)).sum())
        assert n == len(labels)
        assert got.extra["flips"] + one_failure == n - equal, result
        pa = reife_metrics(labels, v0, v1, include=["positional_agreement"])["positional_agreement"]
        assert (1 - pa.value) * n == pytest.approx(got.extra["flips"] + got.extra["with_failure"]), result
        if got.extra["with_failure"] == 0:
            without_failures += 1
            assert got.value == pytest.approx(1 - equal / n, abs=1e-12)
        checked += 1
    assert checked >= 40 and without_failures >= 10
    # GPT-4 Vanilla_NoRules on Natural: Agr. 97 / 100 published, flip rate 3%
    labels, v0, v1 = parse_llmbar_result(json.loads(
        (root / "Natural/evaluators/GPT-4/Vanilla_NoRules/result.json").read_text()))
    assert flip_rate(v0, v1).value == pytest.approx(0.03)
