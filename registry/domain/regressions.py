"""Regression rules (pure): when a drop between two runs counts, how bad it is, and the champion
rule. (The paired tests themselves are the metrics' own: :mod:`registry.domain.metrics.per_example`.)

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

_EPS = 1e-12


def is_regression(delta: float, p_value: float, *, threshold: float, alpha: float) -> bool:
    """``delta`` (candidate − baseline) is a significant drop beyond ``threshold``."""
    if not (np.isfinite(delta) and np.isfinite(p_value)):
        return False
    return -delta > threshold + _EPS and p_value < alpha


def severity(delta: float, *, major: float) -> Severity:
    """``major`` when the drop ``-delta`` is at least ``major``, else ``minor``."""
    return "major" if -delta >= major - _EPS else "minor"


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
