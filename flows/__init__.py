"""Prefect flows of the Autorater Registry: thin orchestration over :mod:`registry.services`.

| flow | what it does |
|---|---|
| ``register_dataset`` | adapter → spec validation → stored, versioned dataset (nothing stored on failure) |
| ``meta_evaluate`` | the due (evaluator, dataset version) pairs, one retried task per pair |
| ``nightly_sweep`` | the whole matrix, then regression checks (cron deployment) |
| ``retrain_autorater`` | train → register checkpoint → meta-evaluate → compare → promote or record |

Deployments (event triggers and the cron sweep) are in :mod:`flows.deployments`; ``autorater
serve`` runs them. :mod:`flows.pipeline` holds the DVC pipeline's stages. Prefect is imported only
when a flow is first used (``import flows.pipeline`` stays light).
"""

from __future__ import annotations

import importlib
from typing import Any

_FLOWS = {"register_dataset": "flows.datasets", "meta_evaluate": "flows.metaeval",
          "nightly_sweep": "flows.metaeval", "retrain_autorater": "flows.retrain"}

__all__ = sorted(_FLOWS)


def __getattr__(name: str) -> Any:
    if name in _FLOWS:
        return getattr(importlib.import_module(_FLOWS[name]), name)
    raise AttributeError(f"module 'flows' has no attribute {name!r}")
