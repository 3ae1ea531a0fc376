"""The generation-backend interface that generative judges call.

A backend turns chat requests into completions and reports what they cost (tokens, seconds).
Where it can, it also returns the log-probabilities of given *choice* strings as the first
generated token(s) (e.g. ``"A"`` / ``"B"``), which logprob verdicts need (ReIFE averages
p(first) over both orders).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # pragma: no cover - pydantic loads with the backends that declare a config
    from registry.adapters.config import PluginConfig


@dataclass(frozen=True)
class GenerationRequest:
    """One chat completion to produce."""

    messages: tuple[Mapping[str, str], ...]
    """Chat messages ``{"role": "system" | "user" | "assistant", "content": ...}``."""
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    n: int = 1
    """Number of samples (self-consistency)."""
    seed: int | None = 0
    choices: tuple[str, ...] | None = None
    """When given, also return the log-probability of each choice as the first output token."""
    stop: tuple[str, ...] | None = None


@dataclass(frozen=True)
class GenerationResult:
    """The completions of one request, with cost and optional choice log-probabilities."""

    texts: tuple[str, ...]
    """One text per sample (``n`` of them)."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    choice_logprobs: Mapping[str, float] | None = None
    """Log-probability of each requested choice as the first generated token (None if unknown)."""
    finish_reasons: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)


class Backend(ABC):
    """A configured generation backend (a local model, a server, an API)."""

    name: str = ""
    Config: ClassVar[type[PluginConfig] | None] = None
    """The backend's typed config (:mod:`registry.adapters.config`); None: an untyped mapping."""
    local_weights: ClassVar[bool] = False
    """Whether it runs a local weights folder (its ``model``: an llm-judge passes the registered
    checkpoint's folder) with per-request seeds."""

    def __init__(self, config: Mapping[str, Any] | PluginConfig) -> None:
        if self.Config is not None:
            self.settings = self.Config.parse(config)  # the validated config
            self.config = self.settings.canonical()
        else:
            self.config = dict(config)

    @abstractmethod
    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Completions for ``requests``, in order (batched or concurrent as the backend can)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release models, processes, sessions."""

    def fingerprint(self) -> Mapping[str, Any]:
        """What identifies the backend's behaviour (model id / weights hash, not endpoints or keys)."""
        return {"backend": self.name, "model": self.config.get("model")}
