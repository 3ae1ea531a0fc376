"""Text-generation backends for generative LLM judges, registered by name and imported lazily
(transformers, vLLM and HTTP clients load only when a backend is used)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from registry.adapters.backends.base import Backend, GenerationRequest, GenerationResult
from registry.plugins import PluginRegistry

if TYPE_CHECKING:  # pragma: no cover
    from registry.adapters.config import PluginConfig

BACKENDS: PluginRegistry[type[Backend]] = PluginRegistry("backends")

for _name, _target in {
    "transformers": "registry.adapters.backends.hf:TransformersBackend",
    "openai": "registry.adapters.backends.openai_http:OpenAICompatibleBackend",
    "vllm": "registry.adapters.backends.vllm_backend:VLLMBackend",
    "vllm-server": "registry.adapters.backends.vllm_backend:VLLMServerBackend",
}.items():
    BACKENDS.register(_name, _target)


def build_backend(name: str, config: Mapping[str, Any] | PluginConfig | None = None) -> Backend:
    """A backend of kind ``name`` configured with ``config`` (a mapping, or the backend's typed config)."""
    return BACKENDS.get(name)(config if config is not None else {})


__all__ = ["BACKENDS", "Backend", "GenerationRequest", "GenerationResult", "build_backend"]
