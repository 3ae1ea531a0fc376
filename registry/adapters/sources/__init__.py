"""Source adapters, one per public format, plus a generic column mapper.

Adapters are registered lazily by name; ``get_adapter(name)`` instantiates one.
"""

from __future__ import annotations

from registry.adapters.sources.base import (
    COLUMNS,
    DatasetDef,
    SourceAdapter,
    SourceInfo,
    TaskType,
)
from registry.plugins import PluginRegistry

SOURCES: PluginRegistry[type[SourceAdapter]] = PluginRegistry("sources")

for _name, _target in {
    "llmbar": "registry.adapters.sources.llmbar:LLMBarAdapter",
    "pandalm": "registry.adapters.sources.pandalm:PandaLMAdapter",
    "hh-rlhf": "registry.adapters.sources.hh_rlhf:HHRLHFAdapter",
    "prometheus-hhh": "registry.adapters.sources.prometheus:PrometheusHHHAdapter",
    "bartscore-wmt": "registry.adapters.sources.bartscore:BARTScoreWMTAdapter",
    "bartscore": "registry.adapters.sources.bartscore:BARTScorePointwiseAdapter",
    "unieval": "registry.adapters.sources.unieval:UniEvalAdapter",
    "hanna": "registry.adapters.sources.hanna:HannaAdapter",
    "codegen-conala": "registry.adapters.sources.codegen:ConalaAdapter",
    "wmt-mqm": "registry.adapters.sources.mqm:MQMAdapter",
    "summedits": "registry.adapters.sources.summedits:SummEditsAdapter",
    "summac": "registry.adapters.sources.summac:SummaCAdapter",
    "halueval": "registry.adapters.sources.halueval:HaluEvalAdapter",
    "truthfulqa": "registry.adapters.sources.truthfulqa:TruthfulQAAdapter",
    "moderation": "registry.adapters.sources.moderation:ModerationAdapter",
    "generic": "registry.adapters.sources.generic:GenericAdapter",
}.items():
    SOURCES.register(_name, _target)


def get_adapter(name: str) -> SourceAdapter:
    """A fresh instance of the adapter registered as ``name`` ("did you mean" if unknown)."""
    return SOURCES.get(name)()


__all__ = ["COLUMNS", "SOURCES", "DatasetDef", "SourceAdapter", "SourceInfo", "TaskType", "get_adapter"]
