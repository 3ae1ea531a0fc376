"""Regression rules (pure): when a drop between two runs counts, how bad it is, the paired test
for correlations, and the champion rule.

* A candidate run *regresses* against a baseline run when, on the examples both judged, its
  headline metric is lower by more than a threshold (``drop > threshold``) **and** the paired
  test rejects "no difference" (``p < alpha``). Both conditions: a large but noisy drop on a few
  examples is not recorded, nor is a tiny drop that is real but immaterial.
* Severity: ``major`` when the drop is at least the major threshold, else ``minor``.
* The champion rule (:func:`decide_promotion`): a candidate with an open regression never
  becomes champion; with no champion it takes the alias; otherwise it must have a strictly better
  mean metric over the (dataset version, protocol) pairs both checkpoints were evaluated on — a
  tie, or no shared pair, keeps the champion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from registry.domain.entities import PromotionDecision, Severity
from registry.domain.metrics.bootstrap import Bootstrap, ensure_bootstrap
from registry.domain.metrics.paired import PairedTest
from registry.domain.metrics.pointwise import METHODS, _point, _resampled  # the metrics' own correlation code
from registry.domain.metrics.value import percentile_ci
from registry.errors import InvalidInput

_EPS = 1e-12


def is_regression(delta: float, p_value: float, *, threshold: float, alpha: float) -> bool:
    """``delta`` (candidate − baseline) is a significant drop beyond ``threshold``."""
    if not (np.isfinite(delta) and np.isfinite(p_value)):
        return False
    return -delta > threshold + _EPS and p_value < alpha


def severity(delta: float, *, major: float) -> Severity:
    """``major`` when the drop ``-delta`` is at least ``major``, else ``minor``."""
    return "major" if -delta >= major - _EPS else "minor"


def paired_correlation_bootstrap(human_a: np.ndarray, predicted_a: np.ndarray, human_b: np.ndarray,
                                 predicted_b: np.ndarray, *, method: str, boot: Bootstrap | None = None,
                                 level: float = 0.95) -> PairedTest:
    """Paired bootstrap of corr(human_a, predicted_a) − corr(human_b, predicted_b) over shared
    examples (position ``i`` is the same example in all four arrays; the human scores may differ
    between two dataset versions). Examples are resampled jointly; CI and p-value as in
    :func:`registry.domain.metrics.paired.paired_bootstrap` (the resampled differences shifted to
    the null; undefined resamples, e.g. constant scores, are dropped). ``extra`` holds both
    correlations (``value_a``, ``value_b``)."""
    arrays = [np.asarray(x, dtype=np.float64) for x in (human_a, predicted_a, human_b, predicted_b)]
    n = len(arrays[0])
    if any(a.shape != (n,) for a in arrays):
        raise InvalidInput(f"paired correlation inputs must be 1-D of one length; got {[a.shape for a in arrays]}",
                           hint="align both runs on the shared example ids first")
    if method not in METHODS:
        raise InvalidInput(f"unknown correlation {method!r}; use one of {list(METHODS)}", field="metric")
    boot = ensure_bootstrap(boot, n)
    ha, xa, hb, xb = arrays
    value_a, value_b = _point(method, ha, xa), _point(method, hb, xb)
    diff = value_a - value_b
    values = {"value_a": value_a, "value_b": value_b}
    # one draw of indices for both runs: each resample holds the same examples (paired)
    samples = _resampled(method, ha, xa, boot) - _resampled(method, hb, xb, boot)
    samples = samples[np.isfinite(samples)]
    if not np.isfinite(diff) or len(samples) == 0:
        return PairedTest(f"{method}_difference", float("nan"), float("nan"), float("nan"), float("nan"), n,
                          "paired_bootstrap", extra={"bootstrap_samples": 0, "ci_level": level, **values})
    lo, hi = percentile_ci(samples, level)
    p = (1 + np.count_nonzero(np.abs(samples - diff) >= abs(diff) - _EPS)) / (len(samples) + 1)
    return PairedTest(f"{method}_difference", float(diff), float(lo), float(hi), float(min(p, 1.0)), n,
                      "paired_bootstrap",
                      extra={"bootstrap_samples": int(len(samples)), "ci_level": level, **values})


def decide_promotion(*, autorater: str, candidate: str, champion: str | None,
                     candidate_scores: Mapping[str, float], champion_scores: Mapping[str, float],
                     open_regressions: Sequence[int], metric: str | None = None) -> PromotionDecision:
    """Apply the champion rule (module docstring). Scores are keyed by ``dataset@v protocol@v``."""
    blocked = tuple(sorted(open_regressions))
    base = {"autorater": autorater, "candidate": candidate, "previous_champion": champion, "metric": metric,
            "open_regressions": blocked}
    if champion == candidate:
        return PromotionDecision(promoted=False, reason=f"{candidate} already holds the champion alias", **base)
    if blocked:
        return PromotionDecision(
            promoted=False, reason=f"{candidate} has {len(blocked)} open regression(s) {list(blocked)}; fix them or "
                                   "acknowledge them with `autorater regressions ack`", **base)
    if champion is None:
        return PromotionDecision(promoted=True, reason=f"no champion yet and {candidate} has no open regression",
                                 candidate_score=_mean(candidate_scores.values()), **base)
    shared = tuple(sorted(set(candidate_scores) & set(champion_scores)))
    if not shared:
        return PromotionDecision(
            promoted=False, reason=f"{candidate} and the champion {champion} share no evaluated (dataset version, "
                                   f"protocol); champion has {sorted(champion_scores) or 'none'}, candidate has "
                                   f"{sorted(candidate_scores) or 'none'}; run the candidate on the champion's datasets",
            **base)
    cand = _mean(candidate_scores[k] for k in shared)
    champ = _mean(champion_scores[k] for k in shared)
    scored = {**base, "candidate_score": cand, "champion_score": champ, "shared": shared}
    what = metric or "headline metric"
    if cand > champ + _EPS:
        return PromotionDecision(promoted=True, reason=f"mean {what} {cand:.4f} > champion's {champ:.4f} over "
                                                       f"{len(shared)} shared evaluation(s)", **scored)
    relation = "ties" if abs(cand - champ) <= _EPS else "is below"
    return PromotionDecision(promoted=False, reason=f"mean {what} {cand:.4f} {relation} the champion's {champ:.4f} "
                                                    f"over {len(shared)} shared evaluation(s)", **scored)


def _mean(values) -> float | None:
    vals = [float(v) for v in values]
    return float(np.mean(vals)) if vals else None
