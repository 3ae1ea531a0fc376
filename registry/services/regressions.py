"""Regressions: after an evaluation run, compare it with its baselines on the shared examples,
record significant drops, notify, and guard the ``champion`` alias.

Baselines of a candidate run (:func:`baselines_for`), in this order:

* ``dataset_version`` — the same evaluator's newest succeeded run on the newest *earlier* version
  of the dataset (examples matched by their stable ``example_id``; each run is scored against its
  own version's labels, so relabelled examples count);
* ``parent_checkpoint`` — on the same dataset version, the run of the evaluator pairing the
  candidate checkpoint's parent with the same protocol (an evaluator with the same behavioural
  config first);
* ``champion`` — the same, for the checkpoint holding the autorater's ``champion`` alias when that
  checkpoint is older than the candidate's (skipped when it is the parent: one baseline per run);
* ``protocol_version`` — on the same dataset version, the run of the same checkpoint under the
  newest earlier version of the protocol that has one.

Each comparison is the paired test of the headline metric on the shared examples
(:func:`detect_regressions`), the one ``eval compare`` and the leaderboards use
(:func:`registry.domain.metrics.per_example.paired_test`): the paired bootstrap of the per-example
values of a mean (pairwise credit), or of the statistic recomputed for both runs on the same
resamples (balanced accuracy, Spearman); where the headline is a mean of 0/1 correctness, McNemar's
test of that same correctness is recorded beside it. A drop is recorded when it is beyond the
threshold and significant (:mod:`registry.domain.regressions`).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from registry.adapters.notify import notify
from registry.adapters.store.abstract import AbstractStore
from registry.domain.entities import (
    BaselineKind,
    Checkpoint,
    DatasetVersion,
    EvaluationRun,
    Evaluator,
    PromotionDecision,
    Regression,
)
from registry.domain.metrics.per_example import Decomposition, decompose, mcnemar_test, paired_test
from registry.domain.regressions import decide_promotion, is_regression, severity
from registry.errors import InvalidInput
from registry.services.app import RegistryContext
from registry.services.evaluators import NON_BEHAVIOURAL_KEYS
from registry.services.scoring import headline_for

logger = logging.getLogger("registry.regressions")

CHAMPION = "champion"
STATUSES = ("open", "acknowledged")
EVENT = "regression.detected"
_MIN_SHARED = {"pairwise": 2, "classification": 2, "pointwise": 3}


# ----------------------------------------------------------------------------------- baselines
def _behaviour(config: dict | None) -> dict:
    return {k: v for k, v in sorted((config or {}).items()) if k not in NON_BEHAVIOURAL_KEYS}


def _run_of_checkpoint(store: AbstractStore, checkpoint: Checkpoint, like: Evaluator, protocol: str,
                       dataset: str) -> EvaluationRun | None:
    """The run, on dataset version ``dataset``, of an evaluator pairing ``checkpoint`` with
    ``protocol``; evaluators configured like ``like`` are preferred."""
    evaluators = store.evaluators_of(checkpoint.ref, protocol)
    evaluators.sort(key=lambda e: _behaviour(e.config) != _behaviour(like.config))  # stable: same config first
    for ev in evaluators:
        runs = store.latest_runs(datasets=[dataset], evaluator=ev.name)
        if runs:
            return runs[0]
    return None


def baselines_for(reg: RegistryContext, run_id: int) -> list[tuple[BaselineKind, EvaluationRun]]:
    """The baseline runs of run ``run_id`` with their kind (module docstring), at most one per
    kind and never the same run twice."""
    with reg.store.unit_of_work() as uow:  # one consistent view of the runs and aliases
        run = uow.get_run(run_id)
        if run.status != "succeeded":
            raise InvalidInput(f"run {run_id} has status {run.status!r}; only succeeded runs have baselines")
        ev = uow.get_evaluator(run.evaluator)
        found: list[tuple[BaselineKind, EvaluationRun | None]] = [
            ("dataset_version", uow.previous_version_run(ev.name, run.dataset))]
        if ev.checkpoint is not None:
            ckpt = uow.get_checkpoint(ev.checkpoint)
            parent = uow.parent_checkpoint(ckpt.ref)
            if parent is not None:
                found.append(("parent_checkpoint", _run_of_checkpoint(uow, parent, ev, ev.protocol, run.dataset)))
            champion = uow.alias_target(ckpt.autorater, CHAMPION)
            if (champion is not None and champion.version < ckpt.version
                    and (parent is None or champion.ref != parent.ref)):
                found.append(("champion", _run_of_checkpoint(uow, champion, ev, ev.protocol, run.dataset)))
            for protocol in uow.earlier_protocols(ev.protocol):
                earlier = _run_of_checkpoint(uow, ckpt, ev, protocol.ref, run.dataset)
                if earlier is not None:
                    found.append(("protocol_version", earlier))
                    break
    out: list[tuple[BaselineKind, EvaluationRun]] = []
    seen = {run.id}
    for kind, base in found:
        if base is not None and base.id not in seen:
            seen.add(base.id)
            out.append((kind, base))
    return out


# ---------------------------------------------------------------------------------- comparison
class _Decompositions:
    """``metric`` of each run decomposed over the examples it judged, each run scored against its
    own dataset version (loaded once per version)."""

    def __init__(self, reg: RegistryContext, metric: str) -> None:
        self.reg, self.metric = reg, metric
        self._tables: dict[str, tuple[DatasetVersion, object]] = {}

    def of(self, run: EvaluationRun) -> Decomposition:
        from registry.services.datasets import load_table
        from registry.services.evaluation import load_predictions, task_context
        from registry.services.queries import run_judgments

        if run.dataset not in self._tables:
            self._tables[run.dataset] = (self.reg.store.get_version(run.dataset), load_table(self.reg, run.dataset))
        version, table = self._tables[run.dataset]
        judgments = run_judgments(version.task_type, table, load_predictions(self.reg, run), seed=run.seed,
                                  classes=task_context(version).labels)
        return decompose(self.metric, judgments)


def _compare(task_type: str, cand: Decomposition, base: Decomposition, *, n_boot: int, seed: int) -> dict | None:
    """The paired test of candidate − baseline on the shared example ids (``None``: too few),
    with McNemar's test where the metric is a mean of 0/1 correctness."""
    test = paired_test(cand, base, n_boot=n_boot, seed=seed, min_shared=_MIN_SHARED[task_type])
    if test is None:
        return None
    details: dict = {"bootstrap_samples": n_boot, "seed": seed}
    mc = mcnemar_test(cand, base)
    if mc is not None:
        details["mcnemar"] = {"difference": mc.difference, "p_value": mc.p_value, "method": mc.method, **mc.extra}
    return {"delta": test.difference, "ci_low": test.ci_low, "ci_high": test.ci_high, "p_value": test.p_value,
            "method": test.method, "n_shared": test.extra["n_shared"], "candidate_value": test.extra["value_a"],
            "baseline_value": test.extra["value_b"], "details": details}


def _summary(r: Regression) -> str:
    return (f"regression {r.id} ({r.severity}) of {r.evaluator} on {r.dataset}: {r.metric} "
            f"{r.baseline_value:.3f} -> {r.candidate_value:.3f} (delta {r.delta:+.3f}, 95% CI [{r.ci_low:+.3f}, "
            f"{r.ci_high:+.3f}], p={r.p_value:.3g}, n={r.n_shared}) against the {r.baseline_kind} baseline "
            f"(run {r.baseline_run_id}, {r.baseline_evaluator} on {r.baseline_dataset}); candidate run "
            f"{r.candidate_run_id}")


def _check_levels(threshold: float, alpha: float, n_boot: int) -> None:
    if not (np.isfinite(threshold) and threshold >= 0):
        raise InvalidInput(f"threshold must be a number ≥ 0 (a drop in metric units); got {threshold}",
                           field="threshold")
    if not (0 < alpha <= 1):
        raise InvalidInput(f"alpha must be in (0, 1]; got {alpha}", field="alpha")
    if n_boot < 1:
        raise InvalidInput(f"n_boot must be ≥ 1; got {n_boot}", field="n_boot")


def detect_regressions(reg: RegistryContext, run_id: int, *, threshold: float | None = None, alpha: float | None = None,
                       n_boot: int = 1000, seed: int = 0) -> list[Regression]:
    """Compare run ``run_id`` with each of its baselines (:func:`baselines_for`) and record every
    drop of the headline metric that is beyond ``threshold`` and significant at ``alpha``
    (defaults: ``AUTORATER_REGRESSION_THRESHOLD``, ``AUTORATER_REGRESSION_ALPHA``).

    Returns the regressions this check finds. Idempotent: a regression already recorded for the
    same (candidate run, baseline run, metric) is returned as stored — not recorded or notified
    again. Each newly recorded regression fires the notification hook (webhook or log line)."""
    settings = reg.settings
    threshold = settings.regression_threshold if threshold is None else float(threshold)
    alpha = settings.regression_alpha if alpha is None else float(alpha)
    _check_levels(threshold, alpha, n_boot)
    baselines = baselines_for(reg, run_id)
    if not baselines:
        return []
    candidate = reg.store.get_run(run_id)
    version = reg.store.get_version(candidate.dataset)
    task_type = version.task_type
    metric = headline_for(version)     # accuracy_3way on tie-labelled sets
    runs = _Decompositions(reg, metric)
    cand = runs.of(candidate)
    found: list[Regression] = []
    created: list[Regression] = []
    for kind, base in baselines:
        result = _compare(task_type, cand, runs.of(base), n_boot=n_boot, seed=seed)
        if result is None:
            logger.info("run %s vs %s baseline run %s: too few shared examples to compare", run_id, kind, base.id)
            continue
        if not is_regression(result["delta"], result["p_value"], threshold=threshold, alpha=alpha):
            continue
        entity, new = reg.store.add_regression(
            candidate_run_id=run_id, baseline_run_id=base.id, baseline_kind=kind, metric=metric, slice="all",
            severity=severity(result["delta"], major=settings.regression_major), threshold=threshold, alpha=alpha,
            status="open", **result)
        found.append(entity)
        if new:
            created.append(entity)
    for r in created:
        notify(EVENT, {"regression": dataclasses.asdict(r)}, summary=_summary(r), webhook_url=settings.webhook_url,
               timeout=settings.webhook_timeout)
    return found


# ------------------------------------------------------------------------------ list and ack
def list_regressions(reg: RegistryContext, *, status: str | None = None, evaluator: str | None = None,
                     dataset: str | None = None) -> list[Regression]:
    """Recorded regressions, newest first; ``status`` ``open`` | ``acknowledged``, ``evaluator``
    the candidate's evaluator, ``dataset`` ``name`` (any version) or ``name@version``."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"unknown regression status {status!r}; use one of {list(STATUSES)}", field="status")
    if evaluator is not None:
        reg.store.get_evaluator(evaluator)  # unknown names get a "did you mean" error, not an empty list
    if dataset is not None:
        reg.store.get_version(dataset)
    return reg.store.list_regressions(status=status, evaluator=evaluator, dataset=dataset)


def acknowledge(reg: RegistryContext, regression_id: int, *, note: str, by: str | None = None) -> Regression:
    """Mark a regression as acknowledged (expected or accepted) with a note saying why; an
    acknowledged regression no longer blocks the champion alias."""
    if not note or not note.strip():
        raise InvalidInput("acknowledging a regression needs a note saying why it is accepted", field="note")
    with reg.store.unit_of_work() as uow:
        r = uow.get_regression(regression_id)
        if r.status == "acknowledged":
            raise InvalidInput(f"regression {regression_id} was already acknowledged by {r.ack_by or 'someone'} at "
                               f"{r.acked_at:%Y-%m-%d %H:%M} UTC: {r.ack_note!r}", field="id")
        return uow.acknowledge_regression(regression_id, note=note.strip(), by=by)


# ---------------------------------------------------------------------------------- champion
def _scores(store: AbstractStore, runs: list[EvaluationRun], metric: str | None) -> dict[str, float]:
    """``dataset@v protocol@v`` → the metric of the newest run there (each dataset's headline
    metric unless ``metric`` is given)."""
    protocols: dict[str, str] = {}
    headlines: dict[str, str] = {}
    out: dict[str, float] = {}
    for run in runs:  # oldest first: a newer run on the same pair wins
        if run.evaluator not in protocols:
            protocols[run.evaluator] = store.get_evaluator(run.evaluator).protocol
        if metric is None and run.dataset not in headlines:
            headlines[run.dataset] = headline_for(store.get_version(run.dataset))
        m = run.metric(metric or headlines[run.dataset])
        if m is not None and m.value is not None and np.isfinite(m.value):
            out[f"{run.dataset} {protocols[run.evaluator]}"] = float(m.value)
    return out


def promote_champion(reg: RegistryContext, candidate_ref: str, *, autorater: str | None = None,
                     metric: str | None = None) -> PromotionDecision:
    """Move the autorater's ``champion`` alias to checkpoint ``candidate_ref`` if the champion rule
    allows it (:func:`registry.domain.regressions.decide_promotion`): no open regression, and a
    strictly better mean metric than the current champion over the (dataset version, protocol)
    pairs both were evaluated on; with no champion yet, no open regression suffices.

    ``candidate_ref`` is ``AUTORATER@VERSION`` (or an alias), or just ``VERSION`` with
    ``autorater``. Returns the decision with its reason; refusing is not an error."""
    store = reg.store
    if autorater is not None and "@" not in candidate_ref:
        candidate_ref = f"{autorater}@{candidate_ref}"
    elif autorater is not None and candidate_ref.partition("@")[0] != autorater:
        raise InvalidInput(f"checkpoint {candidate_ref!r} is not a checkpoint of autorater {autorater!r}",
                           field="autorater")
    with store.unit_of_work() as uow:
        cand = uow.get_checkpoint(candidate_ref)
        name, cand_ref = cand.autorater, cand.ref
        champion = uow.alias_target(name, CHAMPION)
        champ_ref = champion.ref if champion is not None else None
        cand_scores = _scores(uow, uow.checkpoint_runs(cand_ref), metric)
        champ_scores = _scores(uow, uow.checkpoint_runs(champ_ref), metric) if champ_ref is not None else {}
        blocking = [r.id for r in uow.list_regressions(status="open", checkpoint=cand_ref)]
    decision = decide_promotion(autorater=name, candidate=cand_ref, champion=champ_ref, candidate_scores=cand_scores,
                                champion_scores=champ_scores, open_regressions=blocking, metric=metric)
    if decision.promoted:
        with store.unit_of_work() as uow:
            now = uow.alias_target(name, CHAMPION)
            if (now.ref if now is not None else None) != champ_ref:
                return dataclasses.replace(decision, promoted=False,
                                           reason="the champion alias moved while deciding; run the promotion again")
            uow.set_alias(cand_ref, CHAMPION)
    logger.info("champion of %s: %s %s (%s)", name, cand_ref, "promoted" if decision.promoted else "refused",
                decision.reason)
    return decision
