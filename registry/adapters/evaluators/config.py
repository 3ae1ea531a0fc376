"""The keys every evaluator plugin's typed config shares (see :mod:`registry.adapters.config`).

An evaluator's config is what ``evaluator create --config KEY=VALUE`` stores, plus what the engine
adds when a run starts: ``protocol`` (the protocol's config) and ``checkpoint`` (the registered
checkpoint's folder) — :data:`RUNTIME_KEYS`, which a stored config may not hold — and
``batch_size`` when the evaluator's config does not set it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import field_validator

from registry.adapters.config import PluginConfig, PositiveInt

RUNTIME_KEYS = ("protocol", "checkpoint")
"""Keys the engine sets when a run starts (never stored with an evaluator)."""


class EvaluatorConfig(PluginConfig):
    """Keys every evaluator accepts: the run plan (read by the engine) and the engine's own."""

    what: ClassVar[str] = "an evaluator"

    orders: list[Literal[0, 1]] | None = None
    """Pairwise orders to judge: ``[0]`` as given, ``[1]`` swapped only, ``[0, 1]`` both (None: the
    protocol's, else the plugin's default)."""
    samples: PositiveInt | None = None
    """Samples per example and order (None: the protocol's, else 1)."""
    batch_size: PositiveInt | None = None
    """Examples per call (None: the run's batch size); changes speed, not verdicts."""
    protocol: dict[str, Any] | None = None
    """Set by the engine: the protocol's config."""
    checkpoint: str | None = None
    """Set by the engine: the folder of the registered checkpoint."""

    @classmethod
    def keys(cls) -> list[str]:
        """The keys a stored config may hold (not the engine's :data:`RUNTIME_KEYS`), sorted."""
        return [k for k in super().keys() if k not in RUNTIME_KEYS]

    @field_validator("orders")
    @classmethod
    def _orders(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (not value or len(set(value)) != len(value)):
            raise ValueError(f"orders must be [0], [1] or [0, 1], got {value!r}")
        return value

    def canonical(self) -> dict[str, Any]:
        """The stored form: the canonical form without the keys the engine sets."""
        return {k: v for k, v in super().canonical().items() if k not in RUNTIME_KEYS}


__all__ = ["RUNTIME_KEYS", "EvaluatorConfig"]
