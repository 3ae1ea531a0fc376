"""``meta_evaluate`` (the due pairs of the evaluator × dataset-version matrix, one task per pair)
and ``nightly_sweep`` (the whole matrix, then a regression check of the newest runs)."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task

from flows._common import EVALUATION_TAG, SettingsTaskRunner, open_registry, retry_unless_invalid
from registry.config import Settings


def _regression_record(r) -> dict[str, Any]:
    return {"id": r.id, "evaluator": r.evaluator, "dataset": r.dataset, "metric": r.metric, "delta": r.delta,
            "severity": r.severity, "baseline_kind": r.baseline_kind, "baseline_run_id": r.baseline_run_id,
            "candidate_run_id": r.candidate_run_id}


def _detect_regressions(reg, run_id: int) -> list[dict[str, Any]]:
    """Regressions of a new run against its baselines (recorded once, notified once)."""
    from registry.services.regressions import detect_regressions

    return [_regression_record(r) for r in detect_regressions(reg, run_id)]


@task(name="evaluate-pair", retries=2, retry_delay_seconds=5, retry_condition_fn=retry_unless_invalid,
      tags=[EVALUATION_TAG], task_run_name="{evaluator} on {dataset}")
def evaluate_pair_task(evaluator: str, dataset: str, task_type: str, seed: int = 0,
                       n_boot: int = 1000, settings: Settings | None = None) -> dict[str, Any]:
    """Run one (evaluator, dataset version) pair unless it is done or being run elsewhere, then
    check the new run for regressions. ``settings``: the flow's registry (a Dask worker does not
    share the flow's environment); ``None``: this process's ``AUTORATER_*`` environment."""
    from registry.services.matrix import Pair, evaluate_pair

    with open_registry(settings) as reg:
        outcome = evaluate_pair(reg, Pair(evaluator, dataset, task_type), seed=seed, n_boot=n_boot)
        # also for "already-done" (its run_id is the succeeded run): a retry after a failed check
        # checks again; detection is idempotent, nothing is recorded or notified twice
        regressions = _detect_regressions(reg, outcome.run_id) if outcome.run_id is not None else []
    if outcome.abandoned_run_ids:
        get_run_logger().warning("marked abandoned runs %s of %s on %s", list(outcome.abandoned_run_ids),
                                 evaluator, dataset)
    return {"evaluator": evaluator, "dataset": dataset, "status": outcome.status, "run_id": outcome.run_id,
            "abandoned_run_ids": list(outcome.abandoned_run_ids), "regressions": regressions}


@task(name="plan-missing-pairs")
def plan_task(evaluators: list[str] | None, checkpoints: list[str] | None,
              datasets: list[str] | None) -> list[dict[str, str]]:
    """The due pairs: active, compatible, without a succeeded run."""
    from registry.services.matrix import missing_pairs

    with open_registry() as reg:
        pairs = missing_pairs(reg, evaluators=evaluators, checkpoints=checkpoints, datasets=datasets)
    return [{"evaluator": p.evaluator, "dataset": p.dataset, "task_type": p.task_type} for p in pairs]


@flow(name="meta-evaluate", task_runner=SettingsTaskRunner())
def meta_evaluate(evaluators: list[str] | None = None, checkpoints: list[str] | None = None,
                  datasets: list[str] | None = None, seed: int = 0, n_boot: int = 1000) -> dict[str, Any]:
    """Evaluate every due pair of active evaluators × the latest version of every dataset.

    ``evaluators`` / ``checkpoints`` restrict the rows (evaluator names, or the evaluators of
    ``autorater@version`` checkpoints), ``datasets`` the columns (``name`` for the latest version
    or ``name@version``). Pairs with a succeeded run are skipped, so a second call runs nothing
    and a call after a crash runs only what is left. Fails when a pair failed after its retries;
    the other pairs still run.

    The pair tasks run on threads of this process, or on the Dask cluster at
    ``AUTORATER_DASK_ADDRESS`` (:class:`flows._common.SettingsTaskRunner`); each gets this process's
    resolved settings. A worker that dies mid-pair has its task re-run elsewhere by Dask: the dead
    worker's claim died with its database connection, and its ``running`` row is marked abandoned."""
    logger = get_run_logger()
    settings = Settings.from_env()
    pairs = plan_task(evaluators, checkpoints, datasets)
    logger.info("%d pair(s) to evaluate", len(pairs))
    futures = [evaluate_pair_task.submit(p["evaluator"], p["dataset"], p["task_type"], seed=seed, n_boot=n_boot,
                                         settings=settings)
               for p in pairs]
    summary: dict[str, Any] = {"planned": len(pairs), "succeeded": [], "already_done": [], "busy": [],
                               "failed": [], "abandoned_run_ids": [], "regressions": []}
    for pair, future in zip(pairs, futures):
        try:
            out = future.result()
        except Exception as exc:
            summary["failed"].append({**pair, "error": f"{type(exc).__name__}: {exc}"})
            continue
        key = {"succeeded": "succeeded", "already-done": "already_done", "busy": "busy"}[out["status"]]
        summary[key].append({"evaluator": out["evaluator"], "dataset": out["dataset"], "run_id": out["run_id"]})
        summary["abandoned_run_ids"] += out["abandoned_run_ids"]
        summary["regressions"] += out["regressions"]
    logger.info("succeeded %d, already done %d, busy elsewhere %d, failed %d, regressions %d",
                len(summary["succeeded"]), len(summary["already_done"]), len(summary["busy"]),
                len(summary["failed"]), len(summary["regressions"]))
    if summary["failed"]:
        from registry.errors import RegistryError

        raise RegistryError(f"{len(summary['failed'])} of {len(pairs)} pair(s) failed: "
                            + "; ".join(f"{f['evaluator']} on {f['dataset']}: {f['error']}"
                                        for f in summary["failed"][:5]))
    return summary


@task(name="recheck-regressions", retries=1, retry_delay_seconds=5)
def recheck_regressions_task() -> list[dict[str, Any]]:
    """Check the newest succeeded run of every pair against its baselines again: a baseline that
    landed after its candidate (a parent checkpoint evaluated late) is compared now. Idempotent:
    regressions already recorded are not recorded or notified twice."""
    from registry.services.regressions import detect_regressions

    found = []
    with open_registry() as reg:
        for run in reg.store.latest_runs(status="succeeded"):
            found += [_regression_record(r) for r in detect_regressions(reg, run.id)]
    return found


@flow(name="nightly-sweep")
def nightly_sweep(seed: int = 0, n_boot: int = 1000) -> dict[str, Any]:
    """The whole matrix (every active evaluator × every dataset's latest version), so anything
    an event missed is caught up; then every pair's newest run is checked for regressions."""
    summary = meta_evaluate(seed=seed, n_boot=n_boot)
    summary["regressions"] = recheck_regressions_task()
    get_run_logger().info("nightly sweep: %d new run(s), %d regression(s) on record for the newest runs",
                          len(summary["succeeded"]), len(summary["regressions"]))
    return summary
