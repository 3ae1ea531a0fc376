"""Selective evaluation with a guarantee and prediction-powered estimates (issue 15, items 5 and 6):
gather an evaluator's stored run on a dataset version, align it with the human labels, build the
per-example confidences and values, and call the pure functions of :mod:`registry.domain.selective`
and :mod:`registry.domain.ppi` (all the math lives there).

The run used is the newest succeeded run of the evaluator on the dataset version (``autorater eval
run`` or ``autorater eval import`` makes one); the examples are those it judged in every order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from registry.domain import ppi as P
from registry.domain import selective as S
from registry.domain.judgments import VERDICT_CODES
from registry.errors import InvalidInput, NotFound
from registry.results import PpiEstimate, SelectiveEvaluation, SelectiveLevel

CONFIDENCES = ("prob_a", "samples", "orders")
"""Confidence kinds, in the order ``auto`` prefers them (jury margins: not yet — a jury's
predictions carry no margin of their own so far)."""
LABELLED = ("pairwise", "classification")


@dataclass(frozen=True)
class Judged:
    """One evaluator's run on a dataset version, per aligned example."""

    evaluator: str
    run: int
    dataset: str
    task_type: str
    rows: np.ndarray
    """Dataset rows of the examples (judged in every order)."""
    labels: np.ndarray
    """Human label codes (pairwise: A=0, B=1, tie=2; classification: index into :attr:`classes`)."""
    classes: tuple[str, ...]
    votes: dict[str, tuple[np.ndarray, np.ndarray]]
    """Per available confidence kind: (verdict codes, confidence)."""
    order_codes: np.ndarray
    """Verdict codes per order ``(orders, n)`` (samples reduced by strict plurality; −1: failure)."""
    scores: np.ndarray
    """Mean score per order ``(orders, n)`` (NaN: none)."""
    judgments: np.ndarray
    """Per-example judgments made (prediction rows: orders × samples)."""
    seconds: np.ndarray
    usd: np.ndarray | None
    """Per-example price (tokens × the evaluator's price per 1000 tokens); ``None`` without a price."""

    def level(self, confidence: str) -> S.Level:
        """This run as a cascade level with confidence ``confidence`` (``auto``: the first available)."""
        kind = self.confidence_kind(confidence)
        verdict, conf = self.votes[kind]
        costs = {"judgments": self.judgments, "seconds": self.seconds, "usd": self.usd}
        return S.Level(self.evaluator, conf, verdict == self.labels, costs)

    def confidence_kind(self, confidence: str) -> str:
        if confidence == "auto":
            if not self.votes:
                raise InvalidInput(f"run {self.run} of evaluator {self.evaluator!r} on {self.dataset} has no confidence: "
                                   "no prob_a, a single order and a single sample per example (judge both orders "
                                   "— protocol score-both-orders — or several samples)", field="confidence")
            return next(k for k in CONFIDENCES if k in self.votes)
        if confidence not in CONFIDENCES:
            raise InvalidInput(f"unknown confidence {confidence!r}; choose auto or one of {', '.join(CONFIDENCES)}",
                               field="confidence")
        if confidence not in self.votes:
            have = ", ".join(self.votes) or "none"
            raise InvalidInput(f"run {self.run} of evaluator {self.evaluator!r} on {self.dataset} has no {confidence!r} "
                               f"confidence; available: {have}", field="confidence")
        return confidence


def find_run(reg, evaluator: str, dataset: str):
    """(run, dataset version): the newest succeeded run of ``evaluator`` on ``dataset``; clear errors."""
    store = reg.store
    store.get_evaluator(evaluator)                 # NotFound with a "did you mean"
    version = store.get_version(dataset)
    runs = store.latest_runs(datasets=[version.ref], evaluator=evaluator)
    if not runs:
        raise NotFound(f"evaluator {evaluator!r} has no succeeded run on {version.ref}; make one with `autorater eval "
                       f"run --evaluator {evaluator} --dataset {version.ref}` (or `autorater eval import` for an "
                       "external judge's verdicts)")
    return runs[-1], version


def judged(reg, evaluator: str, dataset: str, *, need_labels: bool = True) -> tuple[Judged, pa.Table]:
    """The evaluator's newest run on ``dataset`` as per-example arrays (and the dataset table)."""
    from registry.services.datasets import load_table
    from registry.services.evaluation import load_predictions
    from registry.services.scoring import PredictionArrays, align_arrays, column_at

    run, version = find_run(reg, evaluator, dataset)
    if need_labels and version.task_type not in LABELLED:
        raise InvalidInput(f"selective evaluation needs labels to be right or wrong; {version.ref} is a "
                           f"{version.task_type} dataset (pairwise and classification sets have them)", field="dataset")
    table = load_table(reg, version.ref)
    preds = load_predictions(reg, run)
    arrays = PredictionArrays.from_predictions(table, preds)
    al = align_arrays(table.num_rows, arrays)
    rows = al.rows
    raw_labels = column_at(table, "score" if version.task_type == "pointwise" else "label", rows)
    if version.task_type == "pairwise":
        classes = tuple(VERDICT_CODES)
        code_of = dict(VERDICT_CODES)
    else:
        classes = tuple(sorted({str(v) for v in raw_labels if v is not None} | set(arrays.vocab)))
        code_of = {c: i for i, c in enumerate(classes)}
    labels = np.array([code_of.get(str(v), -1) if v is not None else -1 for v in raw_labels], dtype=np.int64) \
        if version.task_type != "pointwise" else np.asarray(raw_labels, dtype=np.float64)
    no_plurality = S.NO_PLURALITY_TIE if version.task_type == "pairwise" else S.FAIL
    votes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    per_order = np.array([[code_of.get(v, -1) if v is not None else -1 for v in o] for o in al.verdict],
                         dtype=np.int64).reshape(len(al.verdict), len(rows))
    if version.task_type != "pointwise":
        prob = np.vstack(al.prob_a) if al.prob_a else np.zeros((0, len(rows)))
        if version.task_type == "pairwise" and np.isfinite(prob).any():
            votes["prob_a"] = S.prob_confidence(prob)
        vocab_code = np.array([code_of.get(v, -1) for v in arrays.vocab] + [-1], dtype=np.int64)
        codes, present = _vote_matrix(arrays, preds, vocab_code, table.num_rows)
        if codes.shape[0] > len(al.verdict):        # more than one sample in some order
            votes["samples"] = S.vote_confidence(codes[:, rows], present[:, rows], no_plurality=no_plurality)
        if len(al.verdict) >= 2:
            votes["orders"] = S.vote_confidence(per_order, no_plurality=no_plurality)
    ev = reg.store.get_evaluator(evaluator)
    usd = None if ev.price_per_1k_tokens is None else al.tokens / 1000.0 * ev.price_per_1k_tokens
    known = arrays.pos >= 0
    judgments = np.bincount(arrays.pos[known], minlength=table.num_rows)[rows].astype(np.float64)
    return Judged(evaluator=evaluator, run=run.id, dataset=version.ref, task_type=version.task_type, rows=rows,
                  labels=labels, classes=classes, votes=votes, order_codes=per_order,
                  scores=np.vstack(al.score) if al.score else np.zeros((0, len(rows))), judgments=judgments,
                  seconds=al.seconds, usd=usd), table


def _vote_matrix(arrays, preds: pa.Table, vocab_code: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(codes, present) of shape (orders × samples, dataset rows): every prediction row's verdict code."""
    sample = np.asarray(preds.column("sample").fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    known = arrays.pos >= 0
    orders = np.unique(arrays.order[known]) if known.any() else np.zeros(0, np.int8)
    n_samples = int(sample[known].max()) + 1 if known.any() else 1
    order_slot = np.searchsorted(orders, arrays.order)
    slot = order_slot * n_samples + sample
    codes = np.full((len(orders) * n_samples, n_rows), -1, dtype=np.int64)
    present = np.zeros(codes.shape, bool)
    codes[slot[known], arrays.pos[known]] = vocab_code[arrays.verdict[known]]
    present[slot[known], arrays.pos[known]] = True
    used = present.any(axis=1)                      # drop (order, sample) slots nobody has
    return codes[used], present[used]


# ----------------------------------------------------------------------------- selective evaluation
def cascade_levels(reg, evaluators: Sequence[str], dataset: str, confidence: str = "auto"
                   ) -> tuple[list[Judged], list[S.Level], np.ndarray]:
    """The judges of a cascade on the dataset rows every one of them judged: (runs, levels, rows)."""
    runs = [judged(reg, e, dataset)[0] for e in evaluators]
    if len({r.dataset for r in runs}) > 1:
        raise InvalidInput(f"the evaluators' runs are on different dataset versions: {sorted({r.dataset for r in runs})}",
                           field="dataset")
    common = runs[0].rows
    for r in runs[1:]:
        common = np.intersect1d(common, r.rows)
    levels = [r.level(confidence).take(np.searchsorted(r.rows, common)) for r in runs]
    return runs, levels, common


def selective_evaluation(reg, evaluators: Sequence[str], dataset: str, *, target: float, delta: float,
                         confidence: str = "auto", calibration_fraction: float = 0.5, seed: int = 0,
                         splits: int = 1) -> SelectiveEvaluation:
    """Calibrate the cascade ``evaluators`` (one evaluator: a cascade of one) on a seeded calibration
    split of ``dataset`` and report coverage, accuracy and cost on the test split; ``splits`` > 1
    also repeats it over that many seeded splits (the guarantee's check)."""
    evaluators = _cascade_names(evaluators)
    _check_levels(target, delta, calibration_fraction, splits)
    runs, levels, rows = cascade_levels(reg, evaluators, dataset, confidence)
    n = len(rows)
    n_cal = _split_size(n, calibration_fraction)
    need = S.min_kept(target, delta / len(levels))
    if n_cal < need:
        raise InvalidInput(f"too few examples: {n} judged examples give {n_cal} calibration examples, and at least "
                           f"{need} are needed to certify accuracy ≥ {target} at δ {delta}"
                           f"{f' / {len(levels)} levels' if len(levels) > 1 else ''}; lower --target, raise --delta, "
                           "raise --calibration-fraction or judge more examples", field="target")
    cal_idx, test_idx = S.random_splits(n, calibration_fraction, 1, seed)
    cal = S.calibrate_cascade([lv.take(cal_idx[0]) for lv in levels], target=target, delta=delta)
    test_levels = [lv.take(test_idx[0]) for lv in levels]
    outcome = S.apply_cascade(test_levels, [c.threshold for c in cal], target=target)
    simulation = None
    if splits > 1:
        simulation = S.simulate(levels, target=target, delta=delta, fraction=calibration_fraction, splits=splits,
                                seed=seed).as_dict()
    out_levels = tuple(
        SelectiveLevel(evaluator=r.evaluator, run=r.run, confidence=r.confidence_kind(confidence),
                       threshold=c.threshold, calibration=c.as_dict(), test=o.as_dict(),
                       accuracy_all=float(np.mean(lv.correct)) if len(lv.correct) else None)
        for r, c, o, lv in zip(runs, cal, outcome.levels, test_levels))
    human = outcome.levels[-1]
    reason = None
    if all(c.threshold is None for c in cal):
        reason = (cal[0].reason if len(cal) == 1 else f"no level meets the target {target} at δ {delta}")
        reason += ": every example is escalated to the human"
    return SelectiveEvaluation(
        dataset=runs[0].dataset, evaluators=tuple(evaluators), target=target, delta=delta,
        calibration_fraction=calibration_fraction, seed=seed, n=n, n_calibration=n_cal, n_test=n - n_cal,
        levels=out_levels, human=human.as_dict(), coverage=outcome.judge_coverage,
        human_fraction=outcome.human_fraction, accuracy=outcome.accuracy, met=outcome.met,
        cost_per_1000=outcome.cost_per_1000, reason=reason, simulation=simulation)


def _cascade_names(evaluators: Sequence[str]) -> list[str]:
    names = [e.strip() for e in evaluators if e and e.strip()]
    if names and names[-1].lower() == "human":      # the human is always the last level
        names = names[:-1]
    if not names:
        raise InvalidInput("name an evaluator (--evaluator) or a cascade of them (--cascade E1,E2,…)", field="evaluator")
    if "human" in (n.lower() for n in names):
        raise InvalidInput("'human' can only be the last level of a cascade", field="cascade")
    if len(set(names)) != len(names):
        raise InvalidInput(f"an evaluator appears twice in the cascade: {', '.join(names)}", field="cascade")
    return names


def _check_levels(target: float, delta: float, fraction: float, splits: int) -> None:
    for name, v in (("target", target), ("delta", delta), ("calibration_fraction", fraction)):
        if not 0.0 < v < 1.0:
            raise InvalidInput(f"{name} must lie strictly between 0 and 1, not {v}", field=name)
    if splits < 1:
        raise InvalidInput(f"splits must be at least 1, not {splits}", field="splits")


def _split_size(n: int, fraction: float) -> int:
    try:
        return S.split_size(n, fraction)
    except ValueError as exc:
        raise InvalidInput(f"too few examples: {exc}", field="calibration_fraction") from None


# ----------------------------------------------------------------------------- PPI++
def ppi_values(reg, evaluator: str, dataset: str, metric: str | None = None, positive: str | None = None
               ) -> tuple[Judged, str, str | None, np.ndarray, np.ndarray]:
    """(run, metric, positive class, Y, f) of every aligned example (see :mod:`registry.domain.ppi`)."""
    run, _ = judged(reg, evaluator, dataset, need_labels=False)
    task = run.task_type
    metric = metric or next(m for m, t in P.METRICS.items() if t == task)
    if metric not in P.METRICS:
        raise InvalidInput(f"unknown metric {metric!r}; choose one of {', '.join(P.METRICS)}", field="metric")
    if P.METRICS[metric] != task:
        raise InvalidInput(f"metric {metric!r} applies to {P.METRICS[metric]} datasets; {run.dataset} is {task} "
                           f"(use {next(m for m, t in P.METRICS.items() if t == task)})", field="metric")
    if task == "pairwise":
        y, f = P.pairwise_values(run.labels, run.order_codes)
        return run, metric, None, y, f
    if task == "pointwise":
        y, f = P.pointwise_values(run.labels, run.scores)
        return run, metric, None, y, f
    labels = [run.classes[c] if c >= 0 else None for c in run.labels]
    known = [c for c in run.classes if c in set(labels)]
    if positive is None:       # the rarer human class (the one a positive rate is usually about)
        counts = {c: labels.count(c) for c in known}
        positive = min(known, key=lambda c: (counts[c], c))
    elif str(positive) not in known:
        raise InvalidInput(f"unknown positive class {positive!r}; the human labels are {', '.join(known)}",
                           field="positive")
    predicted = [run.classes[c] if c >= 0 else None for c in run.order_codes[0]]
    y, f = P.classification_values(labels, predicted, str(positive))
    return run, metric, str(positive), y, f


def ppi_estimate(reg, evaluator: str, dataset: str, *, human_labels: int, metric: str | None = None,
                 positive: str | None = None, seed: int = 0, draws: int = 1, alpha: float = 0.05) -> PpiEstimate:
    """PPI++ estimate of ``metric`` from the judge's verdicts on every example plus ``human_labels``
    random human labels, beside the human-only CI on the same labels; ``draws`` > 1 repeats the
    draw and reports the coverage of the full-label value and the mean widths."""
    if draws < 1:
        raise InvalidInput(f"draws must be at least 1, not {draws}", field="draws")
    if not 0.0 < alpha < 1.0:
        raise InvalidInput(f"alpha must lie strictly between 0 and 1, not {alpha}", field="alpha")
    run, metric, positive, y, f = ppi_values(reg, evaluator, dataset, metric, positive)
    n_total = len(y)
    if not 2 <= human_labels <= n_total:
        raise InvalidInput(f"--human-labels must lie between 2 and the {n_total} examples judged on {run.dataset}, "
                           f"not {human_labels}", field="human_labels")
    idx = P.draw_labels(n_total, human_labels, draws, seed)
    ppi, classical = P.estimate_draws(y, f, idx, alpha=alpha)

    def first(e: P.MeanEstimate) -> dict:
        d = {"estimate": float(e.estimate[0]), "ci_low": float(e.ci_low[0]), "ci_high": float(e.ci_high[0]),
             "width": float(e.width[0])}
        return {**d, "lambda": float(e.lam[0])} if e.lam is not None else d

    simulation = P.simulate(y, f, n=human_labels, draws=draws, seed=seed, alpha=alpha).as_dict() if draws > 1 else None
    return PpiEstimate(evaluator=run.evaluator, run=run.run, dataset=run.dataset, metric=metric, positive=positive,
                       n_total=n_total, human_labels=human_labels, seed=seed, alpha=alpha, ppi=first(ppi),
                       classical=first(classical), judge_only=float(np.mean(f)), full_label_value=float(np.mean(y)),
                       draws=draws, simulation=simulation)
