"""The deployments that keep the matrix current, run by ``autorater serve``:

| deployment | runs | when |
|---|---|---|
| ``meta-evaluate/on-dataset-version`` | every active evaluator on the new version | event ``autorater.dataset.version.registered`` |
| ``meta-evaluate/on-checkpoint`` | the checkpoint's evaluators on every dataset's latest version | event ``autorater.checkpoint.registered`` |
| ``meta-evaluate/on-evaluator`` | the new evaluator on every dataset's latest version | event ``autorater.evaluator.created`` |
| ``nightly-sweep/nightly`` | the whole matrix (catches up anything an event missed) | cron, ``AUTORATER_NIGHTLY_CRON`` (default ``0 3 * * *``, UTC) |

A checkpoint usually gets its evaluators just after it is registered, so its own event often
finds none yet; the evaluator event that follows covers them. Triggered runs overlap safely: a
pair is run by whoever claims it first (:mod:`registry.services.matrix`), never twice.
"""

from __future__ import annotations

import os
from typing import Any

from registry import events

DEFAULT_CRON = "0 3 * * *"


def build_deployments(*, cron: str | None = None, timezone: str = "UTC") -> list[Any]:
    """The event-triggered deployments and the cron sweep, ready for ``prefect.serve``."""
    from prefect.events import DeploymentEventTrigger
    from prefect.schedules import Cron

    from flows.metaeval import meta_evaluate, nightly_sweep

    cron = cron or os.environ.get("AUTORATER_NIGHTLY_CRON") or DEFAULT_CRON

    def on(event: str, name: str, parameters: dict[str, Any], description: str):
        trigger = DeploymentEventTrigger(name=f"autorater {name}", expect={event}, parameters=parameters)
        return meta_evaluate.to_deployment(name=name, triggers=[trigger], description=description,
                                           tags=["autorater"])

    return [
        # "{{ event.payload.ref }}" is rendered by the Prefect server from the triggering event
        on(events.DATASET_VERSION_REGISTERED, "on-dataset-version", {"datasets": ["{{ event.payload.ref }}"]},
           "Every active evaluator on a newly registered dataset version."),
        on(events.CHECKPOINT_REGISTERED, "on-checkpoint", {"checkpoints": ["{{ event.payload.ref }}"]},
           "A new checkpoint's evaluators on every dataset's latest version."),
        on(events.EVALUATOR_CREATED, "on-evaluator", {"evaluators": ["{{ event.payload.evaluator }}"]},
           "A new evaluator on every dataset's latest version."),
        nightly_sweep.to_deployment(name="nightly", schedule=Cron(cron, timezone=timezone), tags=["autorater"],
                                    description="The whole matrix, then regression checks."),
    ]
