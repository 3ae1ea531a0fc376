"""Evaluator plugins, registered by name and imported lazily (torch only when used)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from registry.adapters.evaluators.base import Evaluator, TaskContext, Verdict
from registry.errors import InvalidInput
from registry.plugins import PluginRegistry

if TYPE_CHECKING:  # pragma: no cover
    from registry.adapters.config import PluginConfig

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


def build_evaluator(kind: str, config: Mapping[str, Any] | PluginConfig | None = None) -> Evaluator:
    """An evaluator of plugin ``kind`` configured with ``config``."""
    return EVALUATORS.get(kind)(config if config is not None else {})


def config_class(kind: str) -> type[PluginConfig] | None:
    """The typed config of evaluator kind ``kind`` (``external`` included); None for a plugin that
    declares none or is not installed."""
    if kind == "external":
        from registry.adapters.evaluators.external import ExternalConfig

        return ExternalConfig
    return getattr(EVALUATORS.get(kind), "Config", None) if kind in EVALUATORS else None


def canonical_config(kind: str, config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The config of a new evaluator of kind ``kind``, validated against the plugin's typed config
    (for an llm-judge, its backend's too) and in canonical form — defaults left out, keys sorted,
    integral floats as integers (:mod:`registry.adapters.config`) — so two spellings of one config
    are one evaluator. :class:`~registry.errors.InvalidInput` names the offending key and the
    allowed keys or values. A plugin without a typed config keeps its mapping as given."""
    config = dict(config or {})
    cls = config_class(kind)
    if cls is None:
        return config
    from registry.adapters.evaluators.config import RUNTIME_KEYS, EvaluatorConfig

    if issubclass(cls, EvaluatorConfig):
        for key in RUNTIME_KEYS:
            if key in config:
                raise InvalidInput(f"{key!r} is set by the engine when a run starts; leave it out of the "
                                   f"config of an evaluator", field=key)
    return cls.parse(config, what=f"evaluator kind {kind!r}").canonical()


__all__ = ["EVALUATORS", "Evaluator", "TaskContext", "Verdict", "build_evaluator", "canonical_config", "config_class"]
