"""Juries of judges: one verdict per example and order from several evaluators' verdicts.

PoLL (Verga et al. 2024, "Replacing Judges with Juries") pools the verdicts of several judges; here
a jury combines the *stored* verdicts of its member evaluators — no model is called. Inputs are the
members' verdict codes as an array ``(members, orders, examples)`` of int8 codes (A=0, B=1, tie=2,
FAIL=-1, :mod:`registry.domain.judgments`; order 1 already mapped back to the original orientation),
optionally their confidences ``prob_a`` (P(response A is better), NaN where a member has none) and the
human labels (int8, A/B/tie) that the fitted combiners learn from.

Combiners (:data:`COMBINERS`):

* ``majority`` — per example and order, the verdict with a strict plurality of the members' verdicts
  (a tie verdict is a vote too); a split vote is a ``tie``, no member verdict at all a FAIL (as a
  protocol vote, :func:`registry.services.evaluation.plurality`). Nothing is fitted. Classification
  labels (codes 0..k−1, ``n_classes``) are combined by majority only; a split has no label to give and
  is a FAIL.
* ``weighted`` — an agreement-weighted vote: member *m* votes with weight
  ``w_m = log(acc_m / (1 − acc_m))``, the log-odds of its accuracy against the human labels on the
  training folds (accuracy as the headline scores it: mean over orders, a tie or a failure worth ½
  against an A/B label), with ``acc_m`` clipped to [½, 0.99] — a member no better than a coin gets
  weight 0, none more than log 99 (the weighted-majority rule of Nitzan & Paroush 1982, optimal for
  independent judges). The class with the largest total weight wins; equal totals are a ``tie``;
  when every member that voted has weight 0, the unweighted majority decides.
* ``stacked`` — a logistic regression of P(label = A) on each member's verdict one-hots (A, B) and
  centred confidence ``prob_a − ½`` (0 where absent), plus an order indicator when both orders are
  judged; fitted by Newton's method with an L2 penalty (:data:`L2`) on the training folds' examples
  with an A/B label. It predicts A when P(A) > ½, B when below (exactly ½: tie), and gives the
  jury's ``prob_a``. Without any member confidence it is fitted on the verdicts alone (the result
  says so in ``notes``).

Cross-fitting (Chernozhukov et al. 2018): the examples are split into ``k`` folds by a seeded
permutation (:func:`fold_assignment`); for each fold the weights or the model are fitted on the
other ``k − 1`` folds and predict that fold, so every verdict of a fitted jury is *out-of-fold* — no
example's own label ever reaches its verdict. Fewer than ``2k`` examples is an error.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from registry.domain.judgments import FAIL, VERDICT_CODES
from registry.domain.metrics._counts import as_codes
from registry.domain.metrics.pairwise import order_credit
from registry.errors import InvalidInput

A, B, TIE = VERDICT_CODES["A"], VERDICT_CODES["B"], VERDICT_CODES["tie"]
Combine = Literal["majority", "weighted", "stacked"]
COMBINERS: tuple[str, ...] = ("majority", "weighted", "stacked")
FITTED: tuple[str, ...] = ("weighted", "stacked")
DEFAULT_FOLDS = 5
ACCURACY_CLIP = (0.5, 0.99)
"""A member's training accuracy is clipped to this range before its log-odds weight."""
L2 = 1.0
"""L2 penalty of the stacked logistic regression (on every coefficient, the intercept included)."""
NEWTON_STEPS = 50


@dataclass(frozen=True, eq=False)
class JuryVerdicts:
    """A jury's verdicts and how they were made."""

    combine: str
    verdicts: np.ndarray
    """(orders, examples) int8 codes; out-of-fold for a fitted combiner."""
    prob_a: np.ndarray | None = None
    """(orders, examples) P(A) of the stacked model (out-of-fold); None for the votes."""
    folds: np.ndarray | None = None
    """(examples,) the fold of each example (fitted combiners)."""
    k: int | None = None
    weights: np.ndarray | None = None
    """(folds, members) the weighted vote's weights fitted without each fold."""
    coefficients: np.ndarray | None = None
    """(folds, features + 1) the stacked model fitted without each fold (intercept last)."""
    uses_confidences: bool = False
    """Whether the stacked model had member confidences (``prob_a``) to use."""
    notes: tuple[str, ...] = ()


# ----------------------------------------------------------------------------- inputs
def check_inputs(verdicts: np.ndarray, prob_a: np.ndarray | None = None,
                 labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Verdicts (members, orders, examples) as int8 codes, ``prob_a`` of the same shape as float64
    (values in [0, 1] or NaN) and labels (examples,) as int8 A/B/tie codes; clear errors otherwise."""
    v = as_codes(verdicts, field="verdicts")
    if v.ndim != 3 or v.shape[0] < 1 or v.shape[1] not in (1, 2):
        raise InvalidInput(f"member verdicts must be (members, orders 1 or 2, examples), got shape {v.shape}",
                           field="verdicts")
    p = None
    if prob_a is not None:
        p = np.asarray(prob_a, dtype=np.float64)
        if p.shape != v.shape:
            raise InvalidInput(f"confidences of shape {p.shape} do not match the verdicts' {v.shape}", field="prob_a")
        finite = p[~np.isnan(p)]
        if finite.size and (finite.min() < 0 or finite.max() > 1):
            raise InvalidInput("confidences (prob_a) must lie in [0, 1] or be NaN", field="prob_a")
    y = None
    if labels is not None:
        y = as_codes(labels, field="labels", allow_fail=False)
        if y.shape != (v.shape[2],):
            raise InvalidInput(f"{y.shape[0] if y.ndim == 1 else y.shape} labels for {v.shape[2]} examples",
                               field="labels")
    return v, p, y


JURY_TASK_TYPES: tuple[str, ...] = ("pairwise", "classification")
"""Task types a jury combines: pairwise with every combiner, classification by ``majority`` only."""


def jury_task_types(member_types: Mapping[str, Collection[str]], combine: str = "majority") -> list[str]:
    """The task types a jury of these members can judge (member → the task types it can judge): those
    they share that the combiner handles (:data:`JURY_TASK_TYPES`); an error when there is none."""
    common = set.intersection(*(set(t) for t in member_types.values())) if member_types else set()
    if not common:
        shown = "; ".join(f"{n}: {sorted(t) or 'no runs yet'}" for n, t in member_types.items())
        raise InvalidInput(f"the members judge no task type in common ({shown})", field="jury")
    check_combinable(sorted(common), combine)
    return [t for t in JURY_TASK_TYPES if t in common and (t == "pairwise" or combine == "majority")]


def check_combinable(task_types: Sequence[str], combine: str) -> None:
    """An error unless a ``combine`` jury can judge one of ``task_types``."""
    if "pairwise" in task_types or ("classification" in task_types and combine == "majority"):
        return
    if "classification" in task_types:
        raise InvalidInput(f"a classification jury combines by majority only, not {combine}", field="combine")
    raise InvalidInput(f"juries combine pairwise or classification verdicts, not {', '.join(task_types)}",
                       field="jury")


def fold_assignment(n: int, k: int = DEFAULT_FOLDS, seed: int = 0) -> np.ndarray:
    """The fold (0..k−1) of each of ``n`` examples: position in a seeded permutation modulo ``k``
    (fold sizes differ by at most one). Needs ``n ≥ 2k``."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise InvalidInput(f"cross-fitting needs at least 2 folds, got {k!r}", field="folds")
    if n < 2 * k:
        raise InvalidInput(f"{n} examples are too few for {k} folds: cross-fitting needs at least {2 * k} "
                           f"(2 per fold); use fewer folds or the majority vote", field="folds")
    folds = np.empty(n, dtype=np.int64)
    folds[np.random.default_rng(seed).permutation(n)] = np.arange(n) % k
    return folds


# ----------------------------------------------------------------------------- votes
def _one_hot(v: np.ndarray) -> np.ndarray:
    """(3, …) indicators of A, B and tie for verdict codes ``v``."""
    return np.stack([v == A, v == B, v == TIE]).astype(np.float64)


def _decide(totals: np.ndarray, cast: np.ndarray, fallback: np.ndarray | None = None, split: int = TIE
            ) -> np.ndarray:
    """Verdict codes from per-class totals (classes, …): the single largest wins, equal largest →
    ``split``, nothing cast → FAIL; where every total is 0 but something was cast, ``fallback``."""
    top = totals.max(axis=0)
    winners = np.isclose(totals, top[None], rtol=0.0, atol=1e-12)
    out = np.where(winners.sum(axis=0) == 1, totals.argmax(axis=0), split).astype(np.int8)
    if fallback is not None:
        out = np.where((top <= 0) & cast, fallback, out)
    return np.where(cast, out, FAIL).astype(np.int8)


def majority_vote(verdicts: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """(orders, examples) strict-plurality verdicts of (members, orders, examples) codes (module
    docstring). Pairwise codes by default (a split is a tie); with ``n_classes``, classification codes
    0..n_classes−1 (FAIL −1), where a split has no label to give and is a FAIL (scored as wrong)."""
    if n_classes is None:
        v = check_inputs(verdicts)[0]
        return _decide(_one_hot(v).sum(axis=1), (v != FAIL).any(axis=0))
    v = np.asarray(verdicts)
    if v.dtype.kind not in "iu" or v.ndim != 3 or (v.size and (v.min() < FAIL or v.max() >= n_classes)):
        raise InvalidInput(f"classification verdicts must be (members, orders, examples) codes in -1..{n_classes - 1}",
                           field="verdicts")
    counts = np.stack([(v == c).sum(axis=0) for c in range(n_classes)]).astype(np.float64)
    return _decide(counts, (v != FAIL).any(axis=0), split=FAIL)


def weighted_vote(verdicts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(orders, examples) verdicts of an agreement-weighted vote; ``weights`` (members,) or, one set
    per example, (members, examples)."""
    v = check_inputs(verdicts)[0]
    w = np.asarray(weights, dtype=np.float64)
    w = w[:, None, None] if w.ndim == 1 else w[:, None, :]
    totals = (_one_hot(v) * w[None]).sum(axis=1)
    return _decide(totals, (v != FAIL).any(axis=0), fallback=majority_vote(v))


def member_accuracy(verdicts: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(members,) accuracy of each member on the examples of ``mask`` (all when None) as the headline
    scores it: expected credit (tie/failure ½ against an A/B label), mean over orders and examples."""
    v, _, y = check_inputs(verdicts, labels=labels)
    keep = np.ones(v.shape[2], bool) if mask is None else np.asarray(mask, bool)
    if not keep.any():
        return np.full(v.shape[0], np.nan)
    credit = order_credit(y[keep], v[:, :, keep], "expected")  # (members, orders, kept)
    return credit.mean(axis=(1, 2))


def accuracy_weights(accuracy: np.ndarray) -> np.ndarray:
    """Log-odds weights of accuracies clipped to :data:`ACCURACY_CLIP` (module docstring)."""
    acc = np.clip(np.nan_to_num(np.asarray(accuracy, dtype=np.float64), nan=0.5), *ACCURACY_CLIP)
    return np.log(acc / (1.0 - acc))


# ----------------------------------------------------------------------------- stacking
def stacking_features(verdicts: np.ndarray, prob_a: np.ndarray | None) -> np.ndarray:
    """(orders, examples, features): per member its A and B indicators and, with confidences,
    ``prob_a − ½`` (0 where absent); then an order indicator (1 for order 1) when there are two orders."""
    v = as_codes(verdicts, field="verdicts")
    _, o, n = v.shape
    parts = [(v == A).astype(np.float64), (v == B).astype(np.float64)]
    if prob_a is not None:
        parts.append(np.nan_to_num(np.asarray(prob_a, dtype=np.float64) - 0.5, nan=0.0))
    x = np.concatenate(parts, axis=0).transpose(1, 2, 0)  # (orders, examples, members × parts)
    if o == 2:
        order = np.broadcast_to(np.array([0.0, 1.0])[:, None, None], (o, n, 1))
        x = np.concatenate([x, order], axis=2)
    return x


def fit_logistic(x: np.ndarray, y: np.ndarray, *, l2: float = L2, steps: int = NEWTON_STEPS) -> np.ndarray:
    """Coefficients (features + 1, intercept last) of an L2-penalised logistic regression of 0/1
    targets ``y`` on rows ``x``, by Newton's method (the penalised log-likelihood is strictly
    concave, so it converges from 0)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    xb = np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)
    beta = np.zeros(xb.shape[1])
    penalty = l2 * np.eye(xb.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(xb @ beta)))
        grad = xb.T @ (p - y) + l2 * beta
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + penalty
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-10:
            break
    return beta


def predict_logistic(x: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """P(y = 1) of rows ``x`` under coefficients ``beta`` (intercept last)."""
    return 1.0 / (1.0 + np.exp(-(np.asarray(x, dtype=np.float64) @ beta[:-1] + beta[-1])))


def _verdicts_from_p(p: np.ndarray) -> np.ndarray:
    return np.where(p > 0.5, A, np.where(p < 0.5, B, TIE)).astype(np.int8)


# ----------------------------------------------------------------------------- the jury
def combine_verdicts(verdicts: np.ndarray, *, combine: str = "majority", labels: np.ndarray | None = None,
                     prob_a: np.ndarray | None = None, folds: int = DEFAULT_FOLDS, seed: int = 0,
                     n_classes: int | None = None) -> JuryVerdicts:
    """The jury's verdicts (module docstring): ``majority`` needs nothing else; ``weighted`` and
    ``stacked`` need the human ``labels`` and are cross-fitted over ``folds`` seeded folds.
    ``n_classes``: classification codes (majority only, :func:`majority_vote`)."""
    if combine not in COMBINERS:
        raise InvalidInput(f"unknown combiner {combine!r}; choose from {', '.join(COMBINERS)}", field="combine")
    if n_classes is not None:
        check_combinable(["classification"], combine)
        return JuryVerdicts(combine=combine, verdicts=majority_vote(verdicts, n_classes))
    v, p, y = check_inputs(verdicts, prob_a, labels)
    if combine == "majority":
        return JuryVerdicts(combine=combine, verdicts=majority_vote(v))
    if y is None:
        raise InvalidInput(f"the {combine} jury is fitted on human labels; none were given", field="labels")
    fold = fold_assignment(v.shape[2], folds, seed)
    if combine == "weighted":
        weights = np.stack([accuracy_weights(member_accuracy(v, y, fold != f)) for f in range(folds)])
        return JuryVerdicts(combine=combine, verdicts=weighted_vote(v, weights[fold].T), folds=fold, k=folds,
                            weights=weights)
    has_conf = p is not None and bool((~np.isnan(p)).any())
    x = stacking_features(v, p if has_conf else None)  # (orders, examples, features)
    target = (y == A).astype(np.float64)
    decided = y != TIE
    probs = np.full(v.shape[1:], np.nan)
    betas = []
    for f in range(folds):
        train = (fold != f) & decided
        if not train.any():
            raise InvalidInput(f"fold {f} leaves no A/B-labelled example to fit the stacked jury on", field="labels")
        beta = fit_logistic(x[:, train].reshape(-1, x.shape[2]), np.tile(target[train], v.shape[1]))
        betas.append(beta)
        held = fold == f
        probs[:, held] = predict_logistic(x[:, held], beta)
    notes = () if has_conf else ("stacked on the members' verdicts only: no member has confidences (prob_a)",)
    return JuryVerdicts(combine=combine, verdicts=_verdicts_from_p(probs), prob_a=probs, folds=fold, k=folds,
                        coefficients=np.stack(betas), uses_confidences=has_conf, notes=notes)


def example_credit(labels: np.ndarray, verdicts: np.ndarray) -> np.ndarray:
    """(examples,) per-example accuracy credit of (orders, examples) verdicts as the pairwise
    headline ``accuracy`` scores it (mean over orders; tie/failure ½ against an A/B label)."""
    y = as_codes(labels, field="labels", allow_fail=False)
    v = as_codes(verdicts, field="verdicts")
    return order_credit(y, np.atleast_2d(v), "expected").mean(axis=0)


# ----------------------------------------------------------------------------- subset search
SEARCH_MAX_CANDIDATES = 12
"""The subset search is exhaustive over at most this many candidates (the most accurate ones)."""


def candidate_subsets(costs: Sequence[float | None], *, max_size: int, combine: str,
                      budget: float | None = None, min_size: int = 2) -> list[tuple[int, ...]]:
    """Every subset (indices, ascending) of ``len(costs)`` candidates with ``min_size``..``max_size``
    members — odd sizes only for ``majority`` (an even jury splits more often) — whose summed cost is
    at most ``budget`` (an unknown cost, ``None``, is not allowed under a budget)."""
    n = len(costs)
    if max_size < min_size:
        raise InvalidInput(f"a jury needs at least {min_size} members; max size {max_size}", field="max_size")
    out = []
    for size in range(min_size, min(max_size, n) + 1):
        if combine == "majority" and size % 2 == 0:
            continue
        for subset in itertools.combinations(range(n), size):
            if budget is not None:
                c = [costs[i] for i in subset]
                if any(x is None for x in c) or math.fsum(c) > budget + 1e-12:  # type: ignore[arg-type]
                    continue
            out.append(subset)
    return out


def subset_credits(verdicts: np.ndarray, labels: np.ndarray, subsets: Sequence[Sequence[int]], *,
                   combine: str = "majority", prob_a: np.ndarray | None = None, folds: int = DEFAULT_FOLDS,
                   seed: int = 0) -> np.ndarray:
    """(subsets, examples) per-example accuracy credit (:func:`example_credit`) of the jury of each
    subset of members (indices into ``verdicts``' first axis), every one combined with the same folds
    and seed — so their credits pair up example by example."""
    v, p, y = check_inputs(verdicts, prob_a, labels)
    out = np.empty((len(subsets), v.shape[2]))
    for s, subset in enumerate(subsets):
        idx = list(subset)
        res = combine_verdicts(v[idx], combine=combine, labels=y, prob_a=None if p is None else p[idx],
                               folds=folds, seed=seed)
        out[s] = example_credit(y, res.verdicts)
    return out
