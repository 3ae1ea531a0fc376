"""Bias diagnostics of a pairwise judge (issue 15): position, length, ties and parse failures, and
a length-controlled accuracy.

Inputs are int8 codes (:mod:`registry.domain.judgments`): labels A=0, B=1, tie=2; verdicts the same
plus FAIL=-1 for a parse failure; ``v1`` (order 1, responses swapped) already mapped back to the
original orientation, ``None`` for a run judged in one order. Response lengths are in characters.
"Longer" and "shorter" need a difference of more than :data:`LENGTH_DELTA` = 30 characters, as
AlpacaEval's ``prob_prefer_longer``. Human tie labels have no preferred response: those examples
are left out of every length metric below (they still count for the tie and failure rates).

Definitions (the catalog, :mod:`registry.domain.metrics.catalog`, has the same one-liners):

- ``flip_rate`` (both orders only) = share of the examples whose two orders *both parsed* that get
  different verdicts, a tie in one order and A or B in the other counting as a flip (``extra``:
  ``decisive_flips`` = A in one order and B in the other). Examples with a parse failure in either
  order are left out (``extra["with_failure"]``; their rate is ``parse_failure_rate``). So
  ``(1 − positional_agreement) · n = flips + with_failure`` exactly, and ``flip_rate = 1 −
  positional_agreement`` on a run without parse failures (LLMBar's "Agr." is that agreement).
- First-position preference is AlpacaEval's ``prob_prefer_first``
  (:func:`~registry.domain.metrics.alpacaeval.position_bias`), kept under its name; overall
  length preference is its ``prob_prefer_longer``.
- ``prob_prefer_longer_human_shorter`` = P(the judge prefers the longer response) over decisive
  (A/B) verdicts of every order judged, on the examples where the humans preferred the response
  shorter by more than 30 characters (there, preferring the longer one is an error).
- ``accuracy_longer_better`` / ``accuracy_longer_worse`` = ``accuracy`` (mean over the orders
  judged, a tie verdict or parse failure earning ½) on the examples whose human-preferred response
  is longer / shorter by more than 30 characters.
- ``tie_rate`` / ``parse_failure_rate`` = share of the verdicts (examples × orders judged) that are
  ties / parse failures.
- ``lc_accuracy`` — length-controlled accuracy, after AlpacaEval 2's length-controlled win rate
  (Dubois et al., 2024), which fits a logistic GLM of the preference with a term
  ``tanh(Δlen / std(Δlen))`` and reports the prediction with that term set to 0. Here the GLM is
  of the judge's correctness: for every example with an A/B label,
  ``logit E[credit_i] = α + γ · tanh(Δ_i / σ)``, where ``credit_i`` is the example's ``accuracy``
  credit (mean over the orders judged of 1 right, 0 wrong, ½ for a tie verdict or parse failure:
  a fractional response, fitted by quasi-likelihood), ``Δ_i`` = length of the human-preferred
  response − length of the other one and ``σ`` = the standard deviation of Δ over those examples
  (σ = 0: the term is 0). ``lc_accuracy = sigmoid(α̂)``: the accuracy the judge is predicted to
  have on a pair of equally long responses. ``γ̂`` (``extra["length_coef"]``) is how much more
  often it is right when the human-preferred response is the longer one: a judge that gets its
  accuracy from preferring longer responses has γ̂ > 0 and ``lc_accuracy`` below ``accuracy``. A
  small ridge penalty (:data:`RIDGE` · γ²/2) keeps γ̂ finite when length separates right from
  wrong; α is not penalised. The fit is Newton–Raphson (IRLS) to convergence, deterministic.
  **CI**: a Wald interval for α with the sandwich (heteroskedasticity-robust, HC0) standard error,
  mapped through the sigmoid (so it stays in [0, 1]); not the run's bootstrap, which would refit
  the GLM once per resample. When every credit is 0 or every credit is 1 the MLE of α is infinite:
  the value is that credit, without a CI.

The shared bootstrap (the run's one draw) gives the CI of every other metric here: each is a ratio
of sums of per-example values (:func:`~registry.domain.metrics.alpacaeval._ratio_value`).
"""

from __future__ import annotations

from dataclasses import replace
from statistics import NormalDist

import numpy as np

from registry.domain.judgments import FAIL, VERDICT_CODES
from registry.domain.metrics._counts import as_codes
from registry.domain.metrics.alpacaeval import LENGTH_DELTA, _decisive_preference, _lengths, _ratio_value
from registry.domain.metrics.bootstrap import Bootstrap
from registry.domain.metrics.pairwise import order_credit
from registry.domain.metrics.value import MetricValue

A, B, TIE = VERDICT_CODES["A"], VERDICT_CODES["B"], VERDICT_CODES["tie"]
RIDGE = 0.01
"""Ridge penalty on the length coefficient γ of ``lc_accuracy``'s GLM (a N(0, 10²) prior on γ)."""

BIAS_METRICS = ("flip_rate", "tie_rate", "parse_failure_rate", "prob_prefer_longer_human_shorter",
                "accuracy_longer_better", "accuracy_longer_worse", "lc_accuracy")
"""The names :func:`bias_diagnostics` stores (``flip_rate`` only for runs judged in both orders)."""
BIAS_GROUP = ("prob_prefer_first", "flip_rate", "prob_prefer_longer", "prob_prefer_longer_human_shorter",
              "accuracy_longer_better", "accuracy_longer_worse", "lc_accuracy", "prob_prefer_list", "tie_rate",
              "parse_failure_rate")
"""Every bias diagnostic of a pairwise run (AlpacaEval's three and this module's), in display order."""


def _orders(v0: np.ndarray, v1: np.ndarray | None) -> list[np.ndarray]:
    return [as_codes(v0, field="v0")] + ([] if v1 is None else [as_codes(v1, field="v1")])


def flip_rate(v0: np.ndarray, v1: np.ndarray, *, boot: Bootstrap | None = None) -> MetricValue:
    """Share of the examples with both orders parsed whose two verdicts differ (module docstring)."""
    v0, v1 = _orders(v0, v1)
    parsed = (v0 != FAIL) & (v1 != FAIL)
    flips = parsed & (v0 != v1)
    decisive = parsed & (v0 != TIE) & (v1 != TIE) & (v0 != v1)
    value = _ratio_value("flip_rate", flips.astype(float), parsed.astype(float), boot,
                         {"flips": int(flips.sum()), "decisive_flips": int(decisive.sum()),
                          "with_failure": int((~parsed).sum())})
    return replace(value, n=int(parsed.sum()))


def verdict_rates(v0: np.ndarray, v1: np.ndarray | None = None, *, boot: Bootstrap | None = None
                  ) -> list[MetricValue]:
    """``tie_rate`` and ``parse_failure_rate``: shares of the verdicts (examples × orders judged)."""
    orders = _orders(v0, v1)
    k, n = len(orders), len(orders[0])
    out = []
    for name, code in (("tie_rate", TIE), ("parse_failure_rate", FAIL)):
        hits = sum((v == code).astype(float) for v in orders)
        out.append(_ratio_value(name, hits, np.full(n, float(k)), boot,
                                {"verdicts": int(hits.sum()), "orders": k}))
    return out


def human_longer(labels: np.ndarray, len_a: np.ndarray, len_b: np.ndarray, delta: float = LENGTH_DELTA
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(longer is better, longer is worse): the examples with an A/B label whose human-preferred
    response is longer / shorter than the other by more than ``delta`` characters."""
    labels = as_codes(labels, field="labels", allow_fail=False)
    la, lb = _lengths(len_a), _lengths(len_b)
    diff = np.where(labels == A, la - lb, lb - la)            # preferred − other
    decided = labels != TIE
    return decided & (diff > delta), decided & (diff < -delta)


def example_credit(labels: np.ndarray, v0: np.ndarray, v1: np.ndarray | None = None) -> np.ndarray:
    """Per-example ``accuracy`` credit: mean over the orders of 1 right, 0 wrong, ½ for a tie verdict
    or a parse failure against an A/B label (0 against a tie label)."""
    labels = as_codes(labels, field="labels", allow_fail=False)
    orders = _orders(v0, v1)
    return sum(order_credit(labels, v, "expected") for v in orders) / len(orders)


def length_split(labels: np.ndarray, v0: np.ndarray, v1: np.ndarray | None, len_a: np.ndarray, len_b: np.ndarray,
                 *, boot: Bootstrap | None = None, delta: float = LENGTH_DELTA) -> list[MetricValue]:
    """``prob_prefer_longer_human_shorter``, ``accuracy_longer_better`` and ``accuracy_longer_worse``."""
    better, worse = human_longer(labels, len_a, len_b, delta)
    credit = example_credit(labels, v0, v1)
    la, lb = _lengths(len_a), _lengths(len_b)
    out = [replace(_decisive_preference("prob_prefer_longer_human_shorter", v0, v1, la, lb, worse, boot),
                   n=int(worse.sum()))]
    for name, subset in (("accuracy_longer_better", better), ("accuracy_longer_worse", worse)):
        out.append(replace(_ratio_value(name, np.where(subset, credit, 0.0), subset.astype(float), boot, {}),
                           n=int(subset.sum())))
    return out


def length_term(labels: np.ndarray, len_a: np.ndarray, len_b: np.ndarray) -> tuple[np.ndarray, float]:
    """``tanh(Δ / σ)`` of the examples with an A/B label (Δ = preferred − other length, σ = std of Δ
    over them, population form; 0 when σ = 0), and σ."""
    labels = as_codes(labels, field="labels", allow_fail=False)
    la, lb = _lengths(len_a), _lengths(len_b)
    keep = labels != TIE
    diff = np.where(labels == A, la - lb, lb - la)[keep]
    sigma = float(diff.std()) if len(diff) else 0.0
    return (np.tanh(diff / sigma) if sigma > 0 else np.zeros(len(diff))), sigma


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=float)))     # overflow-free logistic


def fit_length_glm(y: np.ndarray, s: np.ndarray, *, ridge: float = RIDGE, max_iter: int = 100,
                   tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Quasi-likelihood logistic fit of ``logit E[y] = α + γ s`` (y in [0, 1]) with the penalty
    ``ridge · γ² / 2``: ((α̂, γ̂), the sandwich covariance of (α̂, γ̂)). ``y`` must not be all 0 or
    all 1 (α̂ would be infinite)."""
    y, s = np.asarray(y, dtype=float), np.asarray(s, dtype=float)
    x = np.column_stack([np.ones_like(s), s])
    penalty = np.diag([0.0, ridge])
    m = float(y.mean())
    beta = np.array([np.log(m / (1.0 - m)), 0.0])
    for _ in range(max_iter):
        p = _sigmoid(x @ beta)
        grad = x.T @ (y - p) - penalty @ beta
        hess = (x * (p * (1.0 - p))[:, None]).T @ x + penalty
        step = np.linalg.solve(hess, grad)
        size = float(np.abs(step).max())
        if size > 5.0:                              # damped: no overshoot from a flat start
            step *= 5.0 / size
        beta = beta + step
        if size < tol:
            break
    p = _sigmoid(x @ beta)
    bread = np.linalg.inv((x * (p * (1.0 - p))[:, None]).T @ x + penalty)
    meat = (x * ((y - p) ** 2)[:, None]).T @ x
    return beta, bread @ meat @ bread


def lc_accuracy(labels: np.ndarray, v0: np.ndarray, v1: np.ndarray | None, len_a: np.ndarray, len_b: np.ndarray,
                *, ridge: float = RIDGE, level: float = 0.95) -> MetricValue:
    """Length-controlled accuracy: ``sigmoid(α̂)`` of the GLM of the module docstring, with its Wald
    (sandwich) interval; ``n`` = the examples with an A/B label."""
    labels = as_codes(labels, field="labels", allow_fail=False)
    keep = labels != TIE
    y = example_credit(labels, v0, v1)[keep]
    s, sigma = length_term(labels, len_a, len_b)
    n = int(keep.sum())
    extra = {"sigma": sigma, "ridge": ridge, "ci_method": "wald_sandwich_logit", "ci_level": level,
             "accuracy": float(y.mean()) if n else None}
    nan = float("nan")
    if n == 0:
        return MetricValue("lc_accuracy", nan, nan, nan, 0, extra=extra)
    if np.all(y == y[0]) and y[0] in (0.0, 1.0):      # infinite α̂: the credit itself, no interval
        return MetricValue("lc_accuracy", float(y[0]), nan, nan, n, extra={**extra, "length_coef": 0.0})
    beta, cov = fit_length_glm(y, s, ridge=ridge)
    se = float(np.sqrt(max(cov[0, 0], 0.0)))
    z = NormalDist().inv_cdf(0.5 + level / 2)
    lo, hi = _sigmoid(beta[0] - z * se), _sigmoid(beta[0] + z * se)
    extra.update(length_coef=float(beta[1]), length_coef_se=float(np.sqrt(max(cov[1, 1], 0.0))),
                 intercept=float(beta[0]), intercept_se=se)
    return MetricValue("lc_accuracy", float(_sigmoid(beta[0])), float(lo), float(hi), n, extra=extra)


def bias_diagnostics(labels: np.ndarray, v0: np.ndarray, v1: np.ndarray | None, len_a: np.ndarray,
                     len_b: np.ndarray, *, boot: Bootstrap | None = None) -> list[MetricValue]:
    """Every metric of :data:`BIAS_METRICS` the run has (``flip_rate`` needs both orders)."""
    out = [flip_rate(v0, v1, boot=boot)] if v1 is not None else []
    out += verdict_rates(v0, v1, boot=boot)
    out += length_split(labels, v0, v1, len_a, len_b, boot=boot)
    out.append(lc_accuracy(labels, v0, v1, len_a, len_b))
    return out


__all__ = ["BIAS_GROUP", "BIAS_METRICS", "RIDGE", "bias_diagnostics", "example_credit", "fit_length_glm",
           "flip_rate", "human_longer", "lc_accuracy", "length_split", "length_term", "verdict_rates"]
