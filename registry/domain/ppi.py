"""Prediction-powered inference (PPI++, Angelopoulos, Duchi & Zrnic 2023) of a mean that needs human
labels, from a judge's predictions on every example plus human labels on ``n`` of them.

With Y the human value and f the judge's prediction, on ``n`` labelled examples and the judge's
predictions on all ``N`` examples (the labelled ones included, as the judge ran on the whole set):

* estimate θ̂(λ) = λ · mean_N(f) + mean_n(Y − λ f);
* power tuning λ̂ = Cov_n(Y, f) / ((1 + n/N) · Var(f)), clipped to [0, 1] (λ = 0 is the human-only
  mean, λ = 1 plain PPI). As ``ppi_py`` computes it: the covariance over the labelled examples
  (divided by n), the variance over the labelled and all predictions together (divided by n + N − 1);
* CI: θ̂ ± z · sqrt(λ² Var_N(f)/N + Var_n(Y − λ f)/n) (the two terms' CLT variances, population
  variances as ``ppi_py``); the classical (human-only) CI on the same n is mean_n(Y) ± z · sd_n(Y)/√n.

Every function is vectorised over draws: Y and the labelled f may be ``(draws, n)``.

Metrics (:func:`metric_values`) — what Y and f are per example:

* ``win_rate_a`` (pairwise): Y = 1 if the human prefers response A, 0 for B, ½ for a tie; f = the
  judge's verdict in the same coding, averaged over the orders it judged (a parse failure counts ½);
* ``positive_rate`` (classification): Y = 1 if the human label is the positive class; f = 1 if the
  judge's label is (a parse failure ½);
* ``mean_score`` (pointwise): Y = the human score, f = the judge's score (an unparsed score takes
  the mean of the parsed ones). PPI stays valid whatever f's scale; it is only narrower when f
  tracks Y.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METRICS = {"win_rate_a": "pairwise", "positive_rate": "classification", "mean_score": "pointwise"}
"""PPI metrics and the task type each applies to."""


def _z(alpha: float) -> float:
    from scipy.stats import norm

    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, not {alpha!r}")
    return float(norm.ppf(1.0 - alpha / 2.0))


@dataclass(frozen=True)
class MeanEstimate:
    """Estimates (arrays over draws, or scalars) and their two-sided (1 − α) CIs."""

    estimate: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    lam: np.ndarray | None
    """The power-tuning parameter used (``None`` for the classical estimate)."""

    @property
    def width(self) -> np.ndarray:
        return self.ci_high - self.ci_low


def classical_mean_ci(y: np.ndarray, *, alpha: float = 0.05) -> MeanEstimate:
    """Human-only mean and CLT interval over the last axis of ``y``."""
    y = np.asarray(y, dtype=np.float64)
    n = y.shape[-1]
    mean = y.mean(axis=-1)
    half = _z(alpha) * y.std(axis=-1) / np.sqrt(n)
    return MeanEstimate(estimate=mean, ci_low=mean - half, ci_high=mean + half, lam=None)


def power_tuning(y: np.ndarray, f_labelled: np.ndarray, f_all: np.ndarray) -> np.ndarray:
    """λ̂ = Cov_n(Y, f) / ((1 + n/N) Var(f)) clipped to [0, 1] (0 where f does not vary)."""
    y, fl = np.asarray(y, dtype=np.float64), np.asarray(f_labelled, dtype=np.float64)
    fa = np.asarray(f_all, dtype=np.float64)
    n, big_n = y.shape[-1], fa.shape[-1]
    cov = ((y - y.mean(axis=-1, keepdims=True)) * (fl - fl.mean(axis=-1, keepdims=True))).mean(axis=-1)
    # variance of the labelled and all predictions pooled (ddof 1), per draw
    total = fl.sum(axis=-1) + fa.sum(axis=-1)
    sq = (fl ** 2).sum(axis=-1) + (fa ** 2).sum(axis=-1)
    m = n + big_n
    var = (sq - total ** 2 / m) / (m - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        lam = cov / ((1.0 + n / big_n) * var)
    return np.clip(np.where(var > 1e-15, lam, 0.0), 0.0, 1.0)


def ppi_mean_ci(y: np.ndarray, f_labelled: np.ndarray, f_all: np.ndarray, *, alpha: float = 0.05,
                lam: float | np.ndarray | None = None) -> MeanEstimate:
    """PPI++ mean and CI over the last axis (``lam=None``: power-tuned, :func:`power_tuning`)."""
    y, fl = np.asarray(y, dtype=np.float64), np.asarray(f_labelled, dtype=np.float64)
    fa = np.asarray(f_all, dtype=np.float64)
    n, big_n = y.shape[-1], fa.shape[-1]
    lam_ = power_tuning(y, fl, fa) if lam is None else np.broadcast_to(np.asarray(lam, float), y.shape[:-1])
    lam_k = np.asarray(lam_)[..., None]
    rect = y - lam_k * fl
    est = np.asarray(lam_) * fa.mean(axis=-1) + rect.mean(axis=-1)
    var = np.asarray(lam_) ** 2 * fa.var(axis=-1) / big_n + rect.var(axis=-1) / n
    half = _z(alpha) * np.sqrt(var)
    return MeanEstimate(estimate=est, ci_low=est - half, ci_high=est + half, lam=np.asarray(lam_))


def draw_labels(n_total: int, n: int, draws: int, seed: int) -> np.ndarray:
    """``draws`` seeded draws of ``n`` distinct examples out of ``n_total`` (``(draws, n)`` indices)."""
    if not 2 <= n <= n_total:
        raise ValueError(f"the number of human labels must lie between 2 and the {n_total} examples, not {n}")
    rng = np.random.default_rng(seed)
    return np.argsort(rng.random((draws, n_total)), axis=1)[:, :n]


@dataclass(frozen=True)
class PpiSimulation:
    """PPI++ and the human-only CI over random draws of ``n`` labels, against the full-label value."""

    draws: int
    n: int
    n_total: int
    truth: float
    """The metric on all human labels."""
    ppi_coverage: float
    classical_coverage: float
    ppi_mean_width: float
    classical_mean_width: float
    mean_lambda: float

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("draws", "n", "n_total", "truth", "ppi_coverage", "classical_coverage",
                                              "ppi_mean_width", "classical_mean_width", "mean_lambda")}


def estimate_draws(y_all: np.ndarray, f_all: np.ndarray, idx: np.ndarray, *, alpha: float = 0.05
                   ) -> tuple[MeanEstimate, MeanEstimate]:
    """(PPI++, classical) estimates for each row of labelled indices ``idx`` (``(draws, n)``)."""
    y_all, f_all = np.asarray(y_all, dtype=np.float64), np.asarray(f_all, dtype=np.float64)
    return ppi_mean_ci(y_all[idx], f_all[idx], f_all, alpha=alpha), classical_mean_ci(y_all[idx], alpha=alpha)


def simulate(y_all: np.ndarray, f_all: np.ndarray, *, n: int, draws: int = 500, seed: int = 0,
             alpha: float = 0.05) -> PpiSimulation:
    """Coverage of the full-label mean and mean widths over ``draws`` seeded draws of ``n`` labels."""
    y_all = np.asarray(y_all, dtype=np.float64)
    truth = float(y_all.mean())
    ppi, classical = estimate_draws(y_all, f_all, draw_labels(len(y_all), n, draws, seed), alpha=alpha)

    def covers(e: MeanEstimate) -> float:
        return float(np.mean((e.ci_low <= truth + 1e-12) & (truth - 1e-12 <= e.ci_high)))

    return PpiSimulation(draws=draws, n=n, n_total=len(y_all), truth=truth, ppi_coverage=covers(ppi),
                         classical_coverage=covers(classical), ppi_mean_width=float(ppi.width.mean()),
                         classical_mean_width=float(classical.width.mean()), mean_lambda=float(ppi.lam.mean()))


# ----------------------------------------------------------------------------- metric values
def pairwise_values(labels: np.ndarray, verdicts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Y, f) of ``win_rate_a`` from label codes ``(n,)`` and verdict codes per order ``(orders, n)``
    (A=0, B=1, tie=2, failure=−1; :data:`registry.domain.judgments.VERDICT_CODES`)."""
    code_value = np.array([1.0, 0.0, 0.5, 0.5])        # A, B, tie, failure (index −1)
    labels = np.asarray(labels, dtype=np.int64)
    if (labels < 0).any():
        raise ValueError("every human label must be A, B or tie")
    v = np.atleast_2d(np.asarray(verdicts, dtype=np.int64))
    return code_value[labels], code_value[np.where(v >= 0, v, 3)].mean(axis=0)


def classification_values(labels, predicted, positive) -> tuple[np.ndarray, np.ndarray]:
    """(Y, f) of ``positive_rate``: human label == ``positive``; the judge's label == ``positive``
    (a missing prediction ½)."""
    y = np.array([str(v) == str(positive) for v in labels], dtype=np.float64)
    f = np.array([0.5 if p is None else float(str(p) == str(positive)) for p in predicted], dtype=np.float64)
    return y, f


def pointwise_values(human: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Y, f) of ``mean_score``: human scores; judge scores averaged over orders (``(orders, n)``),
    unparsed ones replaced by the mean of the parsed."""
    y = np.asarray(human, dtype=np.float64)
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    ok = np.isfinite(s)
    count = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(ok, s, 0.0).sum(axis=0) / count
    fill = float(np.nanmean(f)) if np.isfinite(f).any() else 0.0
    return y, np.where(count > 0, f, fill)
