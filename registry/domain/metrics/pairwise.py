"""Pairwise meta-evaluation: accuracy against human labels, order consistency, agreement.

Inputs are int8 code arrays (``registry.domain.judgments``): labels A=0, B=1, tie=2; verdicts
the same plus FAIL=-1 for a parse failure. ``v0`` holds the verdicts of order 0 (as given) and
``v1`` those of order 1 (swapped), both already mapped back to the *original* orientation.
Every function also accepts verdicts of shape (R, n) — R runs on the same n examples — through
the ``*_many`` variants, which do all runs and all bootstrap resamples with matrix products.

Definitions (DESIGN.md §5):

- LLMBar (Zeng et al., 2024): accuracy per order, their mean ("Acc."), correct in both orders,
  positional agreement ("Agr.", ``equal``), Cohen's κ between the two orders. A parse failure is
  wrong. See ``llmbar.py`` for the exact ``statistics.json`` reproduction.
- ReIFE (Liu et al., 2024): accuracy = ½[acc(order 0) + acc(order 1)], where parse failures and
  tie verdicts become a coin flip — ``policy="expected"`` gives them the expected credit 0.5
  (0 against a tie label, which a coin over A/B never hits), ``policy="flip"`` draws the coin
  from a seeded generator. Agreement with humans is Krippendorff's α (nominal), reported as the
  mean of the two orders' α; self-consistency is the agreement and α between the two orders. α
  and self-consistency use the coin-resolved verdicts, as ReIFE resolves every verdict to A or B.
- JudgeBench (Tan et al., 2024): each order scores +1 when it matches the label, −1 when it is the
  reverse, 0 otherwise (tie, failure); an example is correct when the sum is > 0.
- Logprob verdicts (ReIFE): p(first) = exp(lp₁ − logsumexp(lp₁, lp₂)) per order, mapped back to
  p(A), averaged over the orders judged: A above ½, B below, tie at ½ (:func:`verdicts_from_prob_a`,
  the one rule scoring uses on the judges' ``prob_a``).

Coin flips depend only on (seed, order, example position), so a run gets the same coins whether
it is scored alone or in a batch of many runs.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Literal

import numpy as np

from registry.domain.agreement import krippendorff_alpha_nominal
from registry.domain.judgments import FAIL, VERDICT_CODES
from registry.domain.metrics._counts import (
    alpha_two_coders,
    as_codes,
    as_runs,
    confusion,
    kappa_from_confusion,
    weighted_sums,
)
from registry.domain.metrics.bootstrap import Bootstrap, ensure_bootstrap
from registry.domain.metrics.value import MetricArray, MetricValue, array_from_samples, from_samples
from registry.errors import InvalidInput

A, B, TIE = VERDICT_CODES["A"], VERDICT_CODES["B"], VERDICT_CODES["tie"]

TiePolicy = Literal["wrong", "expected", "flip"]
"""How tie verdicts and parse failures score against an A/B label: ``wrong`` (LLMBar, strict),
``expected`` (ReIFE, credit 0.5), ``flip`` (ReIFE, a seeded coin decides)."""

REIFE_METRICS = ("accuracy", "accuracy_flip", "accuracy_order0", "accuracy_order1", "correct_both",
                 "positional_agreement", "alpha", "self_consistency", "self_consistency_alpha")


# ----------------------------------------------------------------------------- per-example parts
def correct(labels: np.ndarray, verdicts: np.ndarray) -> np.ndarray:
    """Per-example correctness (a failure is never correct); verdicts (n,) or (R, n)."""
    return np.asarray(verdicts) == np.asarray(labels)


def coin_flips(n: int, seed: int | None, orders: int = 2) -> np.ndarray:
    """Seeded coins (orders, n) with values A or B, one per order and example position."""
    return np.random.default_rng(seed).integers(0, 2, size=(orders, n)).astype(np.int8)


def unresolved(verdicts: np.ndarray, *, flip_ties: bool = True) -> np.ndarray:
    """Verdicts the ReIFE rule sends to a coin: failures, and ties when ``flip_ties``."""
    v = np.asarray(verdicts)
    return (v == FAIL) | (v == TIE) if flip_ties else v == FAIL


def resolve_coin_flips(verdicts: np.ndarray, coins: np.ndarray, *, flip_ties: bool = True) -> np.ndarray:
    """Replace failures (and ties) by the coin of their position."""
    v = np.asarray(verdicts)
    return np.where(unresolved(v, flip_ties=flip_ties), np.broadcast_to(coins, v.shape), v).astype(np.int8)


def order_credit(labels: np.ndarray, verdicts: np.ndarray, policy: TiePolicy = "wrong",
                 coins: np.ndarray | None = None) -> np.ndarray:
    """Per-example credit in [0, 1] of one order's verdicts under a tie policy."""
    labels, v = np.asarray(labels), np.asarray(verdicts)
    if policy == "wrong":
        return (v == labels).astype(np.float64)
    if policy == "expected":
        coin_hit = np.where(labels == TIE, 0.0, 0.5)   # a fair A/B coin matches an A/B label half the time
        return np.where(unresolved(v), coin_hit, v == labels).astype(np.float64)
    if policy == "flip":
        if coins is None:
            raise InvalidInput("policy 'flip' needs coins (see coin_flips)", field="coins")
        return (resolve_coin_flips(v, coins) == labels).astype(np.float64)
    raise InvalidInput(f"unknown tie policy {policy!r}; use 'wrong', 'expected' or 'flip'", field="policy")


def failure_counts(v: np.ndarray) -> dict[str, np.ndarray]:
    """Ties and parse failures per run, (R,) each."""
    return {"ties": (v == TIE).sum(axis=-1), "failures": (v == FAIL).sum(axis=-1)}


# ----------------------------------------------------------------------------- many runs at once
def _mean_arrays(parts: dict[str, np.ndarray], boot: Bootstrap, n: int,
                 extra: dict[str, dict] | None = None) -> dict[str, MetricArray]:
    """Means of per-example rows (R, n) for several metrics in one matrix product."""
    names = list(parts)
    point, samples = weighted_sums(np.stack([parts[k] for k in names]), boot)
    out = {}
    for i, name in enumerate(names):
        with np.errstate(invalid="ignore", divide="ignore"):   # no examples: NaN, not 0
            values, resampled = point[i] / n, samples[i] / n
        out[name] = array_from_samples(name, values, resampled, n, extra=(extra or {}).get(name))
    return out


def pairwise_accuracy_many(labels: np.ndarray, v0: np.ndarray, v1: np.ndarray | None = None,
                           *, boot: Bootstrap | None = None, policy: TiePolicy = "wrong", seed: int | None = 0,
                           name: str = "accuracy") -> MetricArray:
    """Accuracy of R runs (mean of the orders given) with bootstrap CIs: values (R,)."""
    labels, (v0, v1), _ = as_runs(labels, v0, v1)
    n = labels.shape[0]
    boot = ensure_bootstrap(boot, n)
    coins = coin_flips(n, seed) if policy == "flip" else (None, None)
    credit = order_credit(labels, v0, policy, coins[0])
    if v1 is not None:
        credit = 0.5 * (credit + order_credit(labels, v1, policy, coins[1]))
    counts = failure_counts(v0)
    if v1 is not None:
        counts = {k: c + failure_counts(v1)[k] for k, c in counts.items()}
    extra = {"policy": policy, "orders": 1 if v1 is None else 2, **counts}
    if policy == "flip":
        extra["seed"] = seed
    return _mean_arrays({name: credit}, boot, n, {name: extra})[name]


def reife_metrics_many(labels: np.ndarray, v0: np.ndarray, v1: np.ndarray, *, boot: Bootstrap | None = None,
                       seed: int | None = 0, flip_ties: bool = True,
                       include: Collection[str] | None = None) -> dict[str, MetricArray]:
    """ReIFE- and LLMBar-style pairwise metrics for R runs judged in both orders.

    Returns a subset (``include``, default all) of ``REIFE_METRICS``:
    ``accuracy`` (expected credit 0.5 for ties/failures), ``accuracy_flip`` (seeded coin),
    ``accuracy_order0``/``accuracy_order1`` (expected credit), ``correct_both`` (strict: a tie or
    failure is wrong), ``positional_agreement`` (raw verdicts equal; two failures do not agree),
    ``alpha`` (mean over orders of α between coin-resolved verdicts and labels),
    ``self_consistency`` and ``self_consistency_alpha`` (agreement and α between the coin-resolved
    orders). Tie and failure counts per run are in ``extra``.
    """
    include = tuple(REIFE_METRICS if include is None else include)
    unknown = set(include) - set(REIFE_METRICS)
    if unknown:
        raise InvalidInput(f"unknown metrics {sorted(unknown)}; choose from {list(REIFE_METRICS)}", field="include")
    labels, (v0, v1), _ = as_runs(labels, v0, v1)
    if v1 is None:
        raise InvalidInput("ReIFE metrics need verdicts in both orders", field="v1")
    n = labels.shape[0]
    boot = ensure_bootstrap(boot, n)
    coins = coin_flips(n, seed)
    r0 = resolve_coin_flips(v0, coins[0], flip_ties=flip_ties)
    r1 = resolve_coin_flips(v1, coins[1], flip_ties=flip_ties)
    counts = {f"{k}_order{o}": c for o, v in enumerate((v0, v1)) for k, c in failure_counts(v).items()}

    parts: dict[str, np.ndarray] = {}
    e0 = order_credit(labels, v0, "expected")
    e1 = order_credit(labels, v1, "expected")
    if "accuracy" in include:
        parts["accuracy"] = 0.5 * (e0 + e1)
    if "accuracy_flip" in include:
        parts["accuracy_flip"] = 0.5 * ((r0 == labels) + (r1 == labels).astype(np.float64))
    if "accuracy_order0" in include:
        parts["accuracy_order0"] = e0
    if "accuracy_order1" in include:
        parts["accuracy_order1"] = e1
    if "correct_both" in include:
        parts["correct_both"] = (v0 == labels) & (v1 == labels)
    if "positional_agreement" in include:
        parts["positional_agreement"] = (v0 == v1) & (v0 != FAIL)
    if "self_consistency" in include:
        parts["self_consistency"] = r0 == r1
    extra = {k: {**counts, "seed": seed, "flip_ties": flip_ties} for k in parts}
    out = _mean_arrays(parts, boot, n, extra) if parts else {}

    if "alpha" in include:
        a, s = alpha_two_coders(labels, np.stack([r0, r1]), boot)      # both orders in one product
        out["alpha"] = array_from_samples("alpha", a.mean(axis=0), s.mean(axis=0), n,
                                          extra={**counts, "seed": seed, "flip_ties": flip_ties})
    if "self_consistency_alpha" in include:
        a, s = alpha_two_coders(r0, r1, boot)
        out["self_consistency_alpha"] = array_from_samples("self_consistency_alpha", a, s, n,
                                                           extra={**counts, "seed": seed, "flip_ties": flip_ties})
    return {k: out[k] for k in include}


# ----------------------------------------------------------------------------- one run
def _single(labels: np.ndarray, *verdicts: np.ndarray | None) -> None:
    _, vs, single = as_runs(labels, *verdicts)
    if not single and any(v is not None and v.shape[0] != 1 for v in vs):
        raise InvalidInput("expected verdicts of one run (1-D); use the *_many functions for several runs",
                           field="verdicts")


def accuracy(labels: np.ndarray, v0: np.ndarray, v1: np.ndarray | None = None, *, boot: Bootstrap | None = None,
             policy: TiePolicy = "wrong", seed: int | None = 0, name: str = "accuracy") -> MetricValue:
    """Accuracy of one run: order 0 alone, or the mean of both orders (LLMBar "Acc.",
    ReIFE accuracy with ``policy="expected"`` or ``"flip"``)."""
    _single(labels, v0, v1)
    return pairwise_accuracy_many(labels, v0, v1, boot=boot, policy=policy, seed=seed, name=name)[0]


def reife_metrics(labels: np.ndarray, v0: np.ndarray, v1: np.ndarray, *, boot: Bootstrap | None = None,
                  seed: int | None = 0, flip_ties: bool = True,
                  include: Collection[str] | None = None) -> dict[str, MetricValue]:
    """``reife_metrics_many`` for one run."""
    _single(labels, v0, v1)
    return {k: m[0] for k, m in reife_metrics_many(labels, v0, v1, boot=boot, seed=seed, flip_ties=flip_ties,
                                                  include=include).items()}


def _mean_value(name: str, x: np.ndarray, boot: Bootstrap | None, extra: dict | None = None) -> MetricValue:
    x = np.asarray(x, dtype=np.float64)
    boot = ensure_bootstrap(boot, x.shape[-1])
    return _mean_arrays({name: x[None, :]}, boot, x.shape[-1], {name: extra or {}})[name][0]


def correct_both(labels: np.ndarray, v0: np.ndarray, v1: np.ndarray, *, boot: Bootstrap | None = None) -> MetricValue:
    """Share of examples judged correctly in both orders (LLMBar ``correct_both``)."""
    labels, (v0, v1), _ = as_runs(labels, v0, v1)
    return _mean_value("correct_both", ((v0 == labels) & (v1 == labels))[0], boot)


def positional_agreement(v0: np.ndarray, v1: np.ndarray, *, boot: Bootstrap | None = None,
                         failures_agree: bool = False) -> MetricValue:
    """Share of examples whose two orders give the same verdict (LLMBar ``equal``, "Agr.").
    Two parse failures count as agreeing only with ``failures_agree`` (LLMBar compares the raw
    ``None`` winners, so its files count them)."""
    v0 = as_codes(v0, field="v0")
    v1 = as_codes(v1, field="v1")
    same = v0 == v1
    if not failures_agree:
        same &= v0 != FAIL
    return _mean_value("positional_agreement", same, boot, {"failures_agree": failures_agree})


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's κ between two code arrays over the union of their categories (a failure code is a
    category of its own). Same value as ``sklearn.metrics.cohen_kappa_score``; NaN when undefined."""
    a, b = np.asarray(a), np.asarray(b)
    cats = np.union1d(a, b)
    return float(kappa_from_confusion(confusion(a, b, cats, None)[0]))


def kappa(a: np.ndarray, b: np.ndarray, *, boot: Bootstrap | None = None, name: str = "kappa") -> MetricValue:
    """Cohen's κ with a bootstrap CI (resampled confusion matrices = index resampling)."""
    a, b = np.asarray(a), np.asarray(b)
    boot = ensure_bootstrap(boot, a.shape[-1])
    cats = np.union1d(a, b)
    point, samples = confusion(a, b, cats, boot)
    return from_samples(name, float(kappa_from_confusion(point)), kappa_from_confusion(samples), a.shape[-1])


def alpha_nominal(a: np.ndarray, b: np.ndarray, *, boot: Bootstrap | None = None, name: str = "alpha") -> MetricValue:
    """Krippendorff's α (nominal) between two coders, FAIL = missing. The point value comes from
    ``agreement.krippendorff_alpha_nominal``; the CI from the weighted closed form."""
    a = as_codes(a, field="a")
    b = as_codes(b, field="b")
    boot = ensure_bootstrap(boot, a.shape[-1])
    units = [[int(x), int(y)] for x, y in zip(a, b) if x != FAIL and y != FAIL]
    point = krippendorff_alpha_nominal(units)
    _, samples = alpha_two_coders(a, b, boot)
    return from_samples(name, float("nan") if point is None else point, samples, a.shape[-1],
                        extra={"pairable_units": len(units)})


# ----------------------------------------------------------------------------- JudgeBench
def judgebench_scores(labels: np.ndarray, v0: np.ndarray, v1: np.ndarray) -> np.ndarray:
    """Per-example sum of the two orders' scores: +1 match, −1 reversed (A↔B), 0 otherwise.
    A tie label has no reverse, so only its match scores."""
    labels, v0, v1 = np.asarray(labels), np.asarray(v0), np.asarray(v1)
    reverse = np.where(labels == A, B, np.where(labels == B, A, -99))
    def score(v: np.ndarray) -> np.ndarray:
        return (v == labels).astype(np.int8) - (v == reverse).astype(np.int8)
    return score(v0) + score(v1)


def judgebench_accuracy(labels: np.ndarray, v0: np.ndarray, v1: np.ndarray, *, boot: Bootstrap | None = None
                        ) -> MetricValue:
    """JudgeBench double-order accuracy: share of examples whose score sum is > 0."""
    labels, (v0, v1), _ = as_runs(labels, v0, v1)
    s = judgebench_scores(labels, v0[0], v1[0])
    return _mean_value("judgebench_accuracy", s > 0, boot,
                       {"inconsistent": int((s == 0).sum()), "wrong": int((s < 0).sum())})


# ----------------------------------------------------------------------------- logprob verdicts
def prob_a_verdict(p_a: float) -> str:
    """The verdict a probability P(A) stands for: ``"A"`` above ½, ``"B"`` below, ``"tie"`` at ½ (ReIFE)."""
    return "A" if p_a > 0.5 else "B" if p_a < 0.5 else "tie"


def verdicts_from_prob_a(p_a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Verdicts from P(A) (response A preferred), one row per order judged, already in the original
    orientation; NaN marks an order without one. P(A) is averaged over the orders that have it and
    the verdict is A above ½, B below, tie at exactly ½ (:func:`prob_a_verdict`), FAIL where no order
    has it. Returns (verdicts int8 (n,), mean P(A) (n,), NaN where none)."""
    p_a = np.atleast_2d(np.asarray(p_a, dtype=np.float64))
    ok = np.isfinite(p_a)
    count = ok.sum(axis=0)
    with np.errstate(invalid="ignore"):
        mean = np.where(count > 0, np.where(ok, p_a, 0.0).sum(axis=0) / np.maximum(count, 1), np.nan)
    verdicts = np.where(count > 0, np.where(mean > 0.5, A, np.where(mean < 0.5, B, TIE)), FAIL)
    return verdicts.astype(np.int8), mean


def prob_a_codes(p_a: Sequence[np.ndarray], n: int) -> np.ndarray | None:
    """:func:`verdicts_from_prob_a` of the per-order P(A) arrays of a run of ``n`` examples; ``None``
    when no example has a P(A) in any order (the run has no log-probability verdicts)."""
    probs = np.stack(p_a) if len(p_a) else np.empty((0, n))
    if not np.isfinite(probs).any():
        return None
    return verdicts_from_prob_a(probs)[0]


def logprob_verdicts(lp_first: np.ndarray, lp_second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Verdicts from the log-probabilities of the tokens naming the first and second shown response.

    ``lp_first``/``lp_second`` have shape (2, n) (order 0, order 1) or (n,) (order 0 only); NaN
    marks a missing order. p(first) = exp(lp₁ − logsumexp(lp₁, lp₂)); in order 1 the first shown
    response is B, so p(A) = 1 − p(first) there. The verdicts are then those of
    :func:`verdicts_from_prob_a`. Returns (verdicts int8 (n,), p(A) (n,))."""
    lp1 = np.atleast_2d(np.asarray(lp_first, dtype=np.float64))
    lp2 = np.atleast_2d(np.asarray(lp_second, dtype=np.float64))
    if lp1.shape != lp2.shape or lp1.shape[0] not in (1, 2):
        raise InvalidInput(f"log-prob arrays must both be (n,) or (2, n); got {lp1.shape} and {lp2.shape}",
                           field="lp_first")
    with np.errstate(invalid="ignore"):      # NaN marks a missing order
        p_first = np.exp(lp1 - np.logaddexp(lp1, lp2))
    p_a = p_first.copy()
    if p_a.shape[0] == 2:
        p_a[1] = 1.0 - p_first[1]
    return verdicts_from_prob_a(p_a)
