"""Autorater Registry: versioned human-judgment datasets and autorater checkpoints with
continuous meta-evaluation.

The public Python API is re-exported here: :func:`open` / :func:`init` give a :class:`Registry`
whose methods are the use cases of the ``autorater`` command line, returning the frozen result
types below (each with ``to_dict()``, the JSON the CLI prints with ``--json``)::

    import registry

    with registry.open() as reg:
        print(reg.leaderboard("llmbar-natural").best)

Importing the package stays light: the result types that the services define (``Ranking``,
``MatrixResult``, …) are loaded on first use, and heavy dependencies (torch, transformers,
Great Expectations, DVC, Prefect) only by the calls that need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from registry import results  # noqa: E402
from registry.api import (  # noqa: E402  (after __version__, which the services read)
    Registry,
    downgrade_schema,
    init,
    metric_catalog,
    open,
    schema_revision,
    source_catalog,
    upgrade_schema,
)
from registry.config import Settings  # noqa: E402
from registry.domain.entities import (  # noqa: E402
    Checkpoint,
    Dataset,
    DatasetVersion,
    EvaluationRun,
    Evaluator,
    MetricRecord,
    PromotionDecision,
    Protocol,
    Regression,
    Source,
)
from registry.errors import (  # noqa: E402
    AlreadyExists,
    InvalidInput,
    NotFound,
    RegistryError,
    SchemaOutOfDate,
    ValidationFailed,
)
from registry.results import *  # noqa: E402, F403  (the result types of registry/results.py: results.__all__)

if TYPE_CHECKING:
    from registry.domain.training import LoRAConfig, Mixture, TrainConfig
    from registry.services.datasets import DatasetSummary, Registration
    from registry.services.imports import BatchItem
    from registry.services.matrix import MatrixCell, MatrixResult
    from registry.services.queries import Comparison, LeftOut, Ranking, SkippedDataset, Standing
    from registry.services.training import TailPatchResult, TrainResult

#: Result and config types served on first use ("module:attribute"): their modules import numpy,
#: pyarrow or the store, which ``import registry`` must not.
_LAZY: dict[str, str] = {
    "Registration": "registry.services.datasets:Registration",
    "DatasetSummary": "registry.services.datasets:DatasetSummary",
    "BatchItem": "registry.services.imports:BatchItem",
    "MatrixResult": "registry.services.matrix:MatrixResult",
    "MatrixCell": "registry.services.matrix:MatrixCell",
    "Ranking": "registry.services.queries:Ranking",
    "Standing": "registry.services.queries:Standing",
    "SkippedDataset": "registry.services.queries:SkippedDataset",
    "LeftOut": "registry.services.queries:LeftOut",
    "Comparison": "registry.services.queries:Comparison",
    "TrainResult": "registry.services.training:TrainResult",
    "TailPatchResult": "registry.services.training:TailPatchResult",
    "TrainConfig": "registry.domain.training:TrainConfig",
    "LoRAConfig": "registry.domain.training:LoRAConfig",
    "Mixture": "registry.domain.training:Mixture",
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = target.split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    # the facade
    "Registry",
    "open",
    "init",
    "source_catalog",
    "metric_catalog",
    "schema_revision",
    "upgrade_schema",
    "downgrade_schema",
    "Settings",
    # entities
    "Source",
    "Dataset",
    "DatasetVersion",
    "Checkpoint",
    "Protocol",
    "Evaluator",
    "MetricRecord",
    "EvaluationRun",
    "Regression",
    "PromotionDecision",
    # errors
    "RegistryError",
    "AlreadyExists",
    "InvalidInput",
    "NotFound",
    "SchemaOutOfDate",
    "ValidationFailed",
    "__version__",
    # results of the use cases and training inputs: those of registry/results.py, and those served on
    # first use (_LAZY)
    *results.__all__,
    *_LAZY,
]
