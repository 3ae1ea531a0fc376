"""Evaluator plugins, registered by name and imported lazily (torch only when used)."""

from __future__ import annotations

from registry.adapters.evaluators.base import Evaluator, TaskContext, Verdict
from registry.plugins import PluginRegistry

EVALUATORS: PluginRegistry[type[Evaluator]] = PluginRegistry("evaluators")

for _name, _target in {
    "random": "registry.adapters.evaluators.heuristics:RandomEvaluator",
    "always-first": "registry.adapters.evaluators.heuristics:AlwaysFirstEvaluator",
    "always-second": "registry.adapters.evaluators.heuristics:AlwaysSecondEvaluator",
    "longer": "registry.adapters.evaluators.heuristics:LongerEvaluator",
    "shorter": "registry.adapters.evaluators.heuristics:ShorterEvaluator",
    "encoder-scorer": "registry.adapters.evaluators.encoder:EncoderScorer",
    "llm-judge": "registry.adapters.evaluators.llm_judge:LLMJudge",
}.items():
    EVALUATORS.register(_name, _target)


def build_evaluator(kind: str, config: dict | None = None) -> Evaluator:
    """An evaluator of plugin ``kind`` configured with ``config``."""
    return EVALUATORS.get(kind)(config or {})


__all__ = ["EVALUATORS", "Evaluator", "TaskContext", "Verdict", "build_evaluator"]
