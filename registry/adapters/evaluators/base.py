"""The evaluator plugin interface: what the meta-evaluation engine calls to get judgments.

An evaluator *kind* (a heuristic, the encoder scorer, later the generative judges) is a class
registered by name in :data:`registry.adapters.evaluators.EVALUATORS`. The engine builds one
from a config (the protocol's settings merged with the checkpoint's location) and asks it to
judge batches of examples *as shown*: for pairwise order 1 the engine swaps ``response_a`` and
``response_b`` before calling, and maps the verdict back afterwards, so a plugin never needs to
know about orders. Heavy libraries (torch, transformers, vLLM) are imported inside the plugin
module, which is itself imported only when the evaluator is used.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from registry.domain.judgments import Verdict  # noqa: F401 (the plugins' record, re-exported)
from registry.domain.types import TaskType

if TYPE_CHECKING:  # pragma: no cover - pydantic loads with the plugins that declare a config
    from registry.adapters.evaluators.config import EvaluatorConfig


@dataclass(frozen=True)
class TaskContext:
    """What an evaluator needs to know about the dataset it judges."""

    task_type: TaskType
    labels: tuple[str, ...] | None = None
    """Label set (classification); ``("A", "B", "tie")`` for pairwise."""
    scale: tuple[float, float] | None = None
    """Score scale (pointwise)."""
    criterion: str | None = None


class Evaluator(ABC):
    """A configured evaluator instance (one checkpoint under one protocol)."""

    kind: ClassVar[str]
    """Registry name of the plugin."""
    task_types: ClassVar[tuple[TaskType, ...]]
    """Task types this evaluator can judge."""
    default_orders: ClassVar[tuple[int, ...]] = (0, 1)
    """Orders judged for pairwise data unless the protocol says otherwise."""
    input_fields: ClassVar[dict[str, tuple[str, ...]]] = {}
    """Per task type, the example fields the evaluator reads, when fewer than
    :data:`registry.domain.judgments.INPUT_FIELDS`; the judgment cache is keyed on these."""

    Config: ClassVar[type[EvaluatorConfig] | None] = None
    """The plugin's typed config (:mod:`registry.adapters.evaluators.config`); None: an untyped mapping."""

    def __init__(self, config: Mapping[str, Any] | EvaluatorConfig) -> None:
        if self.Config is not None:
            self.settings = self.Config.parse(config, what=f"evaluator kind {self.kind!r}")  # the validated config
            config = config if isinstance(config, Mapping) else self.settings.model_dump(exclude_none=True)
        self.config = dict(config)

    @abstractmethod
    def judge(self, ctx: TaskContext, examples: Sequence[Mapping[str, Any]], *, sample: int = 0) -> list[Verdict]:
        """Judge ``examples`` (standardized rows, pairwise already swapped for order 1); one
        :class:`Verdict` per example, in order."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release models, servers or sessions."""

    def fingerprint(self) -> Mapping[str, Any]:
        """What identifies this evaluator's behaviour (hashed into the evaluator hash);
        by default its kind and config."""
        return {"kind": self.kind, "config": self.config}

    @property
    def samples(self) -> int:
        """How many samples per example and order (1 unless sampling)."""
        return int(self.config.get("samples", 1))

    @property
    def deterministic(self) -> bool:
        """Whether re-running gives the same verdicts (then judgments are cached)."""
        return True
