"""External evaluators: judges that run elsewhere (GPT-4, a paper's released outputs) and whose
predictions are imported (``autorater import``), never run by the engine — so ``external`` is not
a plugin of :data:`registry.adapters.evaluators.EVALUATORS`, but its config is typed like theirs."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from registry.adapters.config import PluginConfig


class ExternalConfig(PluginConfig):
    """Keys of an external evaluator: where its predictions came from (set by the import)."""

    what: ClassVar[str] = "evaluator kind 'external'"

    format: Annotated[str, Field(min_length=1)] | None = None
    """The import format its predictions were read in (``llmbar``, ``pandalm``, ``reife``...)."""
    source: Annotated[str, Field(min_length=1)] | None = None
    """The evaluator name the predictions were imported under."""
    llm: Annotated[str, Field(min_length=1)] | None = None
    """The base LLM of the judge (``gpt-4`` for LLMBar's GPT-4 verdicts): groups evaluators for the
    ReIFE analyses (``autorater analyze ranks/protocols``)."""
    protocol: Annotated[str, Field(min_length=1)] | None = None
    """The judge's protocol (``llmbar-vanilla``, ``llmbar-cot``…), ditto."""


__all__ = ["ExternalConfig"]
