"""AlpacaEval's evaluator table (Dubois et al., 2023; ``alpaca_eval/analyze.py``).

Preferences use AlpacaEval's encoding: 1 = the first output (our A), 2 = the second (B),
1.5 = tie; a parse failure is missing. Definitions:

- human agreement = 1 − mean absolute error between the evaluator's preference and the mode of
  the human annotators ("absolute" scoring rule). When several modes tie, AlpacaEval draws one
  at random; here the score is the *expected* score over the tied modes (same expectation, no
  randomness). Failures are left out (pandas skips NaN), and counted. With several evaluator
  samples/orders per example each one is a separate annotation.
- humans: leave-one-out — each annotator against the mode of the other annotators, averaged
  over annotators.
- position bias ("Proba. prefer 1") = P(preferring the output shown first), ties counting ½;
  with both orders the first-shown output is A in order 0 and B in order 1.
- length bias = P(the preferred output is the longer one) among pairs whose lengths differ by
  more than 30 characters, over decisive (A/B) verdicts.
- list bias = P(the preferred output is the one with a list) among pairs where exactly one output
  has a list, over decisive verdicts. "Has a list" here: at least two lines that start with a
  bullet (``-``, ``*``, ``+``, ``•``) or a number (``1.``, ``2)``). AlpacaEval's own detector
  matches any bullet-like token anywhere, which flags most long texts.
- price and time per 1000 examples = 1000 × mean per-example cost / seconds.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

import numpy as np

from registry.domain.judgments import FAIL, VERDICT_CODES
from registry.domain.metrics._counts import as_codes, ratio, weighted_sums
from registry.domain.metrics.annotators import CATEGORIES, modes, modes_of_counts, vote_counts
from registry.domain.metrics.bootstrap import Bootstrap, ensure_bootstrap
from registry.domain.metrics.value import MetricValue, from_samples

A, B, TIE = VERDICT_CODES["A"], VERDICT_CODES["B"], VERDICT_CODES["tie"]
PREFERENCE = np.array([1.0, 2.0, 1.5])
"""AlpacaEval preference of codes A, B, tie."""
LENGTH_DELTA = 30
_LIST_LINE = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+\S", re.MULTILINE)


def preferences(codes: np.ndarray) -> np.ndarray:
    """Codes → AlpacaEval preferences (1, 2, 1.5), NaN for a failure."""
    codes = as_codes(codes, field="verdicts")
    return np.where(codes == FAIL, np.nan, PREFERENCE[np.clip(codes, 0, 2)])


def _ratio_value(name: str, num: np.ndarray, den: np.ndarray, boot: Bootstrap | None, extra: dict) -> MetricValue:
    """Σ num / Σ den over examples, with its bootstrap (ratio of resampled sums)."""
    n = num.shape[-1]
    boot = ensure_bootstrap(boot, n)
    (pn, pd_), samples = weighted_sums(np.stack([num, den]), boot)
    return from_samples(name, float(ratio(pn, pd_)), ratio(samples[0], samples[1]), n,
                        extra={"counted": float(pd_), **extra})


def _expected_score(pref: np.ndarray, mode_mask: np.ndarray) -> np.ndarray:
    """1 − E|pref − mode| over the tied modes of each example; NaN without a mode or a preference."""
    dist = np.abs(pref[..., None] - PREFERENCE)                         # (…, n, 3)
    k = mode_mask.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 - (dist * mode_mask).sum(axis=-1) / np.where(k > 0, k, np.nan)


_CODES = np.array([FAIL, A, B, TIE], dtype=np.int8)
_MODE_SETS = (np.arange(8)[:, None] >> np.arange(3) & 1).astype(bool)
"""Every set of modes (8 × 3: bit c of row p = category c is a mode)."""
_SCORE_TABLE = _expected_score(preferences(_CODES)[:, None], _MODE_SETS[None])
"""``_expected_score`` of every (code + 1, set of modes): the same arithmetic on the same values."""


def expected_scores(codes: np.ndarray, mode_mask: np.ndarray) -> np.ndarray:
    """``_expected_score(preferences(codes), mode_mask)`` by a lookup of each example's (verdict code,
    set of modes) in :data:`_SCORE_TABLE` (the same values, bit for bit: sums of at most three
    multiples of ½), without the (…, n, 3) intermediates."""
    codes = as_codes(codes, field="verdicts")
    mode_mask = np.asarray(mode_mask, dtype=bool)
    sets = mode_mask[..., 0] + 2 * mode_mask[..., 1].astype(np.int8) + 4 * mode_mask[..., 2].astype(np.int8)
    return _SCORE_TABLE[codes.astype(np.intp) + 1, sets]


def human_agreement(annotators: np.ndarray, verdicts: np.ndarray, *, boot: Bootstrap | None = None) -> MetricValue:
    """Evaluator agreement with the mode of the annotators (n, k); verdicts (n,) or (S, n)."""
    annotators = np.atleast_2d(annotators)
    scores = np.atleast_2d(expected_scores(verdicts, modes(annotators)))
    valid = ~np.isnan(scores)
    return _ratio_value("human_agreement", np.where(valid, scores, 0.0).sum(axis=0), valid.sum(axis=0), boot,
                        {"failures": int((np.atleast_2d(verdicts) == FAIL).sum())})


def human_agreement_loo(annotators: np.ndarray, *, boot: Bootstrap | None = None) -> MetricValue:
    """Leave-one-out agreement of the humans: annotator j vs the mode of the others, averaged over j."""
    votes = as_codes(np.atleast_2d(annotators), field="annotators")
    n, k = votes.shape
    boot = ensure_bootstrap(boot, n)
    num, den = np.zeros((k, n)), np.zeros((k, n))
    counts = vote_counts(votes)
    for j in range(k):   # the others' modes: every vote counted, less annotator j's (a FAIL counts for none)
        s = expected_scores(votes[:, j], modes_of_counts(counts - (votes[:, j, None] == CATEGORIES)))
        ok = ~np.isnan(s)
        num[j], den[j] = np.where(ok, s, 0.0), ok
    (pn, pd_), samples = weighted_sums(np.stack([num, den]), boot)
    with warnings.catch_warnings():  # a resample where no annotator is comparable gives NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        value = np.nanmean(ratio(pn, pd_))
        per_sample = np.nanmean(ratio(samples[0], samples[1]), axis=0)
    return from_samples("human_agreement_loo", float(value), per_sample, n, extra={"annotators": k})


def _orders(v0: np.ndarray, v1: np.ndarray | None) -> list[np.ndarray]:
    return [as_codes(v0, field="v0")] + ([] if v1 is None else [as_codes(v1, field="v1")])


def position_bias(v0: np.ndarray, v1: np.ndarray | None = None, *, boot: Bootstrap | None = None) -> MetricValue:
    """P(preferring the output shown first); ties count ½, failures are left out."""
    num = den = 0
    for order, v in enumerate(_orders(v0, v1)):
        first = A if order == 0 else B
        num = num + (v == first) + 0.5 * (v == TIE)
        den = den + (v != FAIL)
    return _ratio_value("prob_prefer_first", np.asarray(num, float), np.asarray(den, float), boot, {})


def _decisive_preference(name: str, v0: np.ndarray, v1: np.ndarray | None, feature_a: np.ndarray,
                         feature_b: np.ndarray, eligible: np.ndarray, boot: Bootstrap | None) -> MetricValue:
    """P(the preferred output is the one with the larger feature) over eligible pairs and A/B verdicts."""
    num = den = 0
    for v in _orders(v0, v1):
        decisive = eligible & ((v == A) | (v == B))
        picks = ((v == A) & (feature_a > feature_b)) | ((v == B) & (feature_b > feature_a))
        num = num + (decisive & picks)
        den = den + decisive
    return _ratio_value(name, np.asarray(num, float), np.asarray(den, float), boot,
                        {"eligible_pairs": int(eligible.sum())})


def _has_lists(x: Sequence[str] | np.ndarray) -> np.ndarray:
    if isinstance(x, np.ndarray) and x.dtype == bool:
        return x.astype(float)
    return np.array([has_list(t) for t in x], dtype=float)


def _lengths(x: Sequence[str] | np.ndarray) -> np.ndarray:
    arr = np.asarray(x, dtype=object) if not isinstance(x, np.ndarray) else x
    if arr.dtype.kind in "iuf":
        return arr.astype(float)
    return np.array([len(t) if isinstance(t, str) else 0 for t in arr], dtype=float)


def length_bias(v0: np.ndarray, response_a: Sequence[str] | np.ndarray, response_b: Sequence[str] | np.ndarray,
                v1: np.ndarray | None = None, *, boot: Bootstrap | None = None,
                delta: int = LENGTH_DELTA) -> MetricValue:
    """P(preferring the longer output) among pairs whose character lengths differ by > ``delta``
    (responses as texts or as lengths)."""
    la, lb = _lengths(response_a), _lengths(response_b)
    return _decisive_preference("prob_prefer_longer", v0, v1, la, lb, np.abs(la - lb) > delta, boot)


def has_list(text: str | None) -> bool:
    """At least two lines starting with a bullet or a number."""
    return isinstance(text, str) and len(_LIST_LINE.findall(text)) >= 2


def list_bias(v0: np.ndarray, response_a: Sequence[str], response_b: Sequence[str], v1: np.ndarray | None = None,
              *, boot: Bootstrap | None = None) -> MetricValue:
    """P(preferring the output with a list) among pairs where exactly one output has a list
    (responses as texts, or as booleans: whether each has one)."""
    la, lb = _has_lists(response_a), _has_lists(response_b)
    return _decisive_preference("prob_prefer_list", v0, v1, la, lb, la != lb, boot)


def per_1000(values: np.ndarray, *, boot: Bootstrap | None = None, name: str = "price_per_1000") -> MetricValue:
    """1000 × mean per-example value (price in $ or time in seconds); NaN values are left out."""
    values = np.asarray(values, dtype=float)
    ok = ~np.isnan(values)
    return _ratio_value(name, 1000.0 * np.where(ok, values, 0.0), ok.astype(float), boot, {})
