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

Each comparison is a paired test on the shared examples (:func:`detect_regressions`): the paired
bootstrap of the per-example contributions to the headline metric (pairwise credit,
classification class-balanced correctness; McNemar's test is recorded beside it), or for
pointwise data the paired bootstrap of the Spearman difference. A drop is recorded when it is
beyond the threshold and significant (:mod:`registry.domain.regressions`).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pyarrow as pa

from registry.adapters.notify import notify
from registry.adapters.store.orm import SqlCheckpoint, SqlEvaluationRun, SqlEvaluator, utcnow
from registry.domain.entities import BaselineKind, EvaluationRun, PromotionDecision, Regression
from registry.domain.metrics import Bootstrap, mcnemar, paired_bootstrap
from registry.domain.regressions import decide_promotion, is_regression, paired_correlation_bootstrap, severity
from registry.errors import InvalidInput
from registry.services.app import Registry
from registry.services.evaluators import NON_BEHAVIOURAL_KEYS
from registry.services.scoring import align, headline_for, per_example_values

logger = logging.getLogger("registry.regressions")

CHAMPION = "champion"
STATUSES = ("open", "acknowledged")
EVENT = "regression.detected"
_MIN_SHARED = {"pairwise": 2, "classification": 2, "pointwise": 3}


# ----------------------------------------------------------------------------------- baselines
def _behaviour(config: dict | None) -> dict:
    return {k: v for k, v in sorted((config or {}).items()) if k not in NON_BEHAVIOURAL_KEYS}


def _run_of_checkpoint(reg: Registry, s, checkpoint: SqlCheckpoint, like: SqlEvaluator, protocol_id: int,
                       dataset_version_id: int) -> SqlEvaluationRun | None:
    """The run, on one dataset version, of an evaluator pairing ``checkpoint`` with the protocol;
    evaluators configured like ``like`` are preferred."""
    evaluators = reg.store.evaluators_of(s, checkpoint.id, protocol_id)
    evaluators.sort(key=lambda e: _behaviour(e.config) != _behaviour(like.config))  # stable: same config first
    for ev in evaluators:
        run = reg.store.succeeded_run_row(s, ev.id, dataset_version_id)
        if run is not None:
            return run
    return None


def baselines_for(reg: Registry, run_id: int) -> list[tuple[BaselineKind, EvaluationRun]]:
    """The baseline runs of run ``run_id`` with their kind (module docstring), at most one per
    kind and never the same run twice."""
    store = reg.store
    with store.session() as s:
        run = store.run_row(s, run_id)
        if run.status != "succeeded":
            raise InvalidInput(f"run {run_id} has status {run.status!r}; only succeeded runs have baselines")
        ev, dv = run.evaluator, run.dataset_version
        found: list[tuple[BaselineKind, SqlEvaluationRun | None]] = [
            ("dataset_version", store.previous_version_run_row(s, ev.id, dv))]
        ckpt = ev.checkpoint
        if ckpt is not None:
            if ckpt.parent is not None:
                found.append(("parent_checkpoint",
                              _run_of_checkpoint(reg, s, ckpt.parent, ev, ev.protocol_id, dv.id)))
            champion = store.alias_target(s, ckpt.autorater_id, CHAMPION)
            if champion is not None and champion.version < ckpt.version and champion.id != ckpt.parent_id:
                found.append(("champion", _run_of_checkpoint(reg, s, champion, ev, ev.protocol_id, dv.id)))
            for protocol in store.earlier_protocols(s, ev.protocol):
                earlier = _run_of_checkpoint(reg, s, ckpt, ev, protocol.id, dv.id)
                if earlier is not None:
                    found.append(("protocol_version", earlier))
                    break
        out: list[tuple[BaselineKind, EvaluationRun]] = []
        seen = {run.id}
        for kind, base in found:
            if base is not None and base.id not in seen:
                seen.add(base.id)
                out.append((kind, base.to_entity()))
        return out


# ---------------------------------------------------------------------------------- comparison
@dataclasses.dataclass(frozen=True)
class _Values:
    """Per-example values of one run on its dataset version, keyed by example id."""

    ids: list[str]
    values: np.ndarray
    """Pairwise/classification: contribution to the headline metric; pointwise: predicted score."""
    human: np.ndarray | None = None
    """Pointwise only: the human score of each example."""


def _values(reg: Registry, run: EvaluationRun, task_type: str, tables: dict[str, pa.Table]) -> _Values:
    from registry.services.datasets import load_table
    from registry.services.evaluation import load_predictions

    if run.dataset not in tables:
        tables[run.dataset] = load_table(reg, run.dataset)
    table = tables[run.dataset]
    predictions = load_predictions(reg, run)
    if task_type != "pointwise":
        ids, values = per_example_values(task_type, table, predictions)
        return _Values(ids, np.asarray(values, dtype=float))
    al = align(table, predictions)
    ids = table.column("example_id").to_pylist()
    human = np.array(table.column("score").to_pylist(), dtype=float)[al.rows]
    predicted = al.score[0]
    keep = np.isfinite(predicted) & np.isfinite(human)  # parse failures are left out, as in the metrics
    return _Values([ids[int(i)] for i in al.rows[keep]], predicted[keep], human[keep])


def _compare(task_type: str, metric: str, cand: _Values, base: _Values, *, n_boot: int, seed: int) -> dict | None:
    """The paired test of candidate − baseline on the shared example ids (``None``: too few)."""
    index = {e: j for j, e in enumerate(base.ids)}
    pairs = np.array([(i, index[e]) for i, e in enumerate(cand.ids) if e in index], dtype=np.int64).reshape(-1, 2)
    if len(pairs) < _MIN_SHARED[task_type]:
        return None
    ci, bi = pairs[:, 0], pairs[:, 1]
    boot = Bootstrap.draw(len(pairs), n_boot, seed)
    details: dict = {"bootstrap_samples": n_boot, "seed": seed}
    if task_type == "pointwise":
        test = paired_correlation_bootstrap(cand.human[ci], cand.values[ci], base.human[bi], base.values[bi],
                                            method=metric, boot=boot)
        cand_value, base_value = test.extra["value_a"], test.extra["value_b"]
    else:
        va, vb = cand.values[ci], base.values[bi]
        test = paired_bootstrap(va, vb, boot=boot, name=f"{metric}_difference")
        cand_value, base_value = float(va.mean()), float(vb.mean())
        # per-example correctness for McNemar, as `eval compare` defines it: classification — the
        # label matched; pairwise — full credit (right in every order judged)
        correct = (lambda v: v > 0) if task_type == "classification" else (lambda v: v >= 1.0 - 1e-12)
        mc = mcnemar(correct(va), correct(vb))
        details["mcnemar"] = {"difference": mc.difference, "p_value": mc.p_value, "method": mc.method, **mc.extra}
    return {"delta": test.difference, "ci_low": test.ci_low, "ci_high": test.ci_high, "p_value": test.p_value,
            "method": test.method, "n_shared": len(pairs), "candidate_value": cand_value,
            "baseline_value": base_value, "details": details}


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


def detect_regressions(reg: Registry, run_id: int, *, threshold: float | None = None, alpha: float | None = None,
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
    metric = headline_for(version)     # accuracy_3way on tie-labelled sets, as per_example_values scores them
    tables: dict[str, pa.Table] = {}
    cand_values = _values(reg, candidate, task_type, tables)
    found: list[Regression] = []
    created: list[Regression] = []
    for kind, base in baselines:
        result = _compare(task_type, metric, cand_values, _values(reg, base, task_type, tables),
                          n_boot=n_boot, seed=seed)
        if result is None:
            logger.info("run %s vs %s baseline run %s: too few shared examples to compare", run_id, kind, base.id)
            continue
        if not is_regression(result["delta"], result["p_value"], threshold=threshold, alpha=alpha):
            continue
        with reg.store.session() as s:
            row, new = reg.store.add_regression(
                s, candidate_run_id=run_id, baseline_run_id=base.id, baseline_kind=kind, metric=metric,
                slice="all", severity=severity(result["delta"], major=settings.regression_major),
                threshold=threshold, alpha=alpha, status="open", **result)
            entity = row.to_entity()
        found.append(entity)
        if new:
            created.append(entity)
    for r in created:
        notify(EVENT, {"regression": dataclasses.asdict(r)}, summary=_summary(r), webhook_url=settings.webhook_url,
               timeout=settings.webhook_timeout)
    return found


# ------------------------------------------------------------------------------ list and ack
def list_regressions(reg: Registry, *, status: str | None = None, evaluator: str | None = None,
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


def acknowledge(reg: Registry, regression_id: int, *, note: str, by: str | None = None) -> Regression:
    """Mark a regression as acknowledged (expected or accepted) with a note saying why; an
    acknowledged regression no longer blocks the champion alias."""
    if not note or not note.strip():
        raise InvalidInput("acknowledging a regression needs a note saying why it is accepted", field="note")
    with reg.store.session() as s:
        row = reg.store.regression_row(s, regression_id)
        if row.status == "acknowledged":
            raise InvalidInput(f"regression {regression_id} was already acknowledged by {row.ack_by or 'someone'} at "
                               f"{row.acked_at:%Y-%m-%d %H:%M} UTC: {row.ack_note!r}", field="id")
        row.status, row.ack_note, row.ack_by, row.acked_at = "acknowledged", note.strip(), by, utcnow()
        s.flush()
        return row.to_entity()


# ---------------------------------------------------------------------------------- champion
def _scores(runs: list[SqlEvaluationRun], metric: str | None) -> dict[str, float]:
    """``dataset@v protocol@v`` → the metric of the newest run there (each dataset's headline
    metric unless ``metric`` is given)."""
    out: dict[str, float] = {}
    for run in runs:  # oldest first: a newer run on the same pair wins
        dv, protocol = run.dataset_version, run.evaluator.protocol
        name = metric or headline_for(dv.to_entity())
        m = next((m for m in run.metrics if m.name == name and m.slice == "all"), None)
        if m is not None and m.value is not None and np.isfinite(m.value):
            out[f"{dv.dataset.name}@{dv.version} {protocol.name}@{protocol.version}"] = float(m.value)
    return out


def promote_champion(reg: Registry, candidate_ref: str, *, autorater: str | None = None,
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
    with store.session() as s:
        cand = store.checkpoint_row(s, candidate_ref)
        name, cand_id = cand.autorater.name, cand.id
        champion = store.alias_target(s, cand.autorater_id, CHAMPION)
        champion_id = champion.id if champion is not None else None
        cand_scores = _scores(store.checkpoint_runs(s, cand.id), metric)
        champ_scores = _scores(store.checkpoint_runs(s, champion.id), metric) if champion is not None else {}
        cand_ref = f"{name}@{cand.version}"
        champ_ref = f"{name}@{champion.version}" if champion is not None else None
    blocking = [r.id for r in store.list_regressions(status="open", checkpoint_id=cand_id)]
    decision = decide_promotion(autorater=name, candidate=cand_ref, champion=champ_ref, candidate_scores=cand_scores,
                                champion_scores=champ_scores, open_regressions=blocking, metric=metric)
    if decision.promoted:
        with store.session() as s:
            now = store.alias_target(s, store.checkpoint_row(s, cand_ref).autorater_id, CHAMPION)
            if (now.id if now is not None else None) != champion_id:
                return dataclasses.replace(decision, promoted=False,
                                           reason="the champion alias moved while deciding; run the promotion again")
            store.set_alias(s, cand_ref, CHAMPION)
    logger.info("champion of %s: %s %s (%s)", name, cand_ref, "promoted" if decision.promoted else "refused",
                decision.reason)
    return decision
