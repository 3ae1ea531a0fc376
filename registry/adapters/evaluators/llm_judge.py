"""Generative LLM judges: a base LLM (a generation backend) × a versioned protocol.

Evaluator config keys (:class:`LLMJudgeConfig`, one flat mapping: the judge's keys below and its
backend's, each backend's typed in its own config class):

* ``backend`` — ``"transformers"`` (default) | ``"vllm"`` | ``"vllm-server"`` | ``"openai"``
  (see :mod:`registry.adapters.backends`; a plugin backend's name too).
* ``model`` — the backend's model: a local folder for ``transformers``/``vllm``/``vllm-server``,
  a model id for ``openai``.
  When the engine passes ``checkpoint`` (the folder of a registered safetensors checkpoint) and the
  backend runs local weights (``transformers``, ``vllm``, ``vllm-server``), that folder is the model.
* ``protocol`` — the protocol's config (a dict; the engine adds it). Keys are documented in the
  protocol files (``registry/protocols/pairwise-base.yaml`` …): ``system``, ``user``, ``parser``,
  ``mention``, ``choices``, ``max_tokens``, ``temperature``, ``top_p``, ``stop``, ``out_of_scale``.
* ``max_tokens``, ``temperature``, ``top_p``, ``stop`` — when given here they override the protocol's
  (the decision's and every stage's).
* ``orders`` (``[0]``, ``[1]``, ``[0, 1]``), ``samples`` — override the protocol's plan (read by the engine).
* ``seed`` — the request seed is ``seed + sample`` (sample ``k`` of a sampling protocol draws
  with its own seed; greedy protocols ignore it).
* ``batch_size`` — set by the engine when the config does not; passed on to a backend that takes one.
* every other key (``base_url``, ``api_key_env``, ``concurrency``, ``device``, ``dtype``,
  ``max_input_tokens`` …) is the backend's, checked by the backend's config class (an unknown key,
  a wrong type or a value out of range is refused when the evaluator is created).

Judging: every example of a batch is rendered (system + user templates, see :func:`render`) and the
whole batch goes to ``backend.generate`` in one call; the text is parsed with the protocol's parser
(:mod:`registry.domain.parsing`). A parse failure is a ``Verdict(label=None, parsed=False, raw=text)``
— recorded per example; the metrics resolve it by their stated rule (wrong, or ReIFE's seeded coin
flip). Pairwise protocols with ``choices`` (two strings, first = "A") also ask the backend for the
choices' first-token log-probabilities; then ``prob_a = exp(lp_A − logsumexp(lp_A, lp_B))``,
``score = lp_A − lp_B`` (a margin), and ``extra`` holds the logprob verdict (``A`` if prob_a > ½,
``B`` if < ½, else ``tie``) and the raw log-probabilities; the verdict *label* stays the parsed text's.

Samples: the engine calls :meth:`LLMJudge.judge` once per sample index (``samples`` in the
protocol), each with its own seed; ``aggregation: majority`` is applied by the metrics to the
stored samples of an example and order: the verdict with a strict plurality wins, and a tie between
samples gives no verdict (counted like a parse failure); scores are averaged.

Cost: ``prompt_tokens``, ``completion_tokens`` and ``seconds`` of each example are those the
backend reports for its request (a batch's time split evenly), plus those of the stage outputs
this example caused to be generated (a stage output reused from the cache costs nothing).

Multi-stage protocols (``stages``, ``decision``)
------------------------------------------------

A protocol may declare ``stages``: generations that come before the decision and whose outputs
the decision prompt (or rule) uses. Each stage is a mapping:

* ``name`` — its output placeholder in later templates: ``{name}`` for a per-example stage,
  ``{name_a}`` / ``{name_b}`` for a per-response stage (the response shown first / second).
* ``inputs`` — the values the stage sees (example fields such as ``instruction``, ``response``,
  ``reference``, or earlier per-example stages); its templates may use nothing else (plus the
  ``for_each`` variable), so the inputs *are* its cache key.
* ``per`` — ``example`` (default) or ``response`` (pairwise: once for each response, with
  ``{response}`` bound to it; the same response under the same instruction is one cache entry
  whatever order it is shown in).
* ``order`` — ``shown`` (default) or ``swapped``: rendered on the example with its responses
  swapped (swap-and-synthesize analyses the other order too; that analysis *is* the other order's
  shown analysis, so it is generated once).
* ``for_each`` — ``{variable: [values]}``: one generation per value (multi-aspect ratings).
* ``system``, ``user``, ``max_tokens``, ``temperature``, ``top_p``, ``stop`` — as for the decision
  (an evaluator config's generation keys override every stage's too).

``decision`` says how the verdict is reached after the stages:

* ``generate`` (default) — render ``system``/``user`` (with the stage outputs) and parse;
* ``compare_ratings`` — no further generation: every text of the per-response stage
  ``rating_stage`` is parsed as a rating on ``rating_scale`` (``[lo, hi]``, last mention), each
  response's score is the mean over its ``for_each`` values, the higher score wins and equal scores
  are a ``tie`` (LLMBar's rating variant, multi-aspect); any unparsable rating is a parse failure
  of the example; ``score`` = mean(A) − mean(B);
* ``synthesize_if_disagree`` — the two stages in ``analyses`` (the shown-order and the
  swapped-order chain of thought) are parsed (last mention wins; the swapped one mapped back);
  when both parse and agree that is the verdict, otherwise ``system``/``user`` (which see both
  analyses) are generated and parsed — the synthesis (LLMBar's Swap & Synthesize).

Stage cache. Stage outputs go to a :class:`StageStore` (the engine gives the judge one backed by
the registry's ``judgments`` table — no extra table; see
:class:`registry.services.evaluation.JudgmentStageStore`): the *stage key*
(:meth:`LLMJudge.stage_key`) is the SHA-256 of ``{"kind": "stage", backend fingerprint, the
stage's templates, inputs, per/for_each variable, generation settings, seed when sampling}`` — not
the protocol's name or hash — so two protocols (and two evaluators of the same checkpoint) with
the same stage share its outputs; the *input hash* (:func:`stage_input_hash`, 32 hex, xxh3-128)
covers only the stage's inputs (e.g. the instruction alone for a generated reference). Without an
engine an in-memory store is used. ``stage_stats`` counts generated and reused stage outputs.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import Field, PrivateAttr, ValidationError, model_validator

from registry.adapters.backends import BACKENDS, GenerationRequest, build_backend
from registry.adapters.config import NonNegativeFloat, PluginConfig, PositiveInt, Seed, canonical_json, config_error
from registry.adapters.evaluators.base import Evaluator, TaskContext, Verdict
from registry.adapters.evaluators.config import EvaluatorConfig
from registry.domain.judgments import ORDER_SWAPPED, map_back
from registry.domain.metrics.pairwise import prob_a_verdict
from registry.domain.parsing import PARSERS, format_number, parse_label, parse_pairwise, parse_rating
from registry.domain.types import TaskType
from registry.errors import InvalidInput
from registry.hashing import sha256_json

GENERATION_KEYS = ("max_tokens", "temperature", "top_p", "stop")
PLACEHOLDERS = frozenset({"instruction", "response_a", "response_b", "response", "reference", "criterion",
                          "labels", "scale_min", "scale_max"})
DEFAULT_PARSER: dict[str, str] = {"pairwise": "pairwise_choice", "pointwise": "rating", "classification": "label"}
DECISIONS = ("generate", "compare_ratings", "synthesize_if_disagree")
STAGE_KEYS = frozenset({"name", "description", "inputs", "per", "order", "for_each", "system", "user",
                        *GENERATION_KEYS})
_FIELD = re.compile(r"\{\{|\}\}|\{(\w+)\}")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class LLMJudgeConfig(EvaluatorConfig):
    """The llm-judge's keys (module docstring), and its backend's typed config.

    Given one flat mapping, the keys that are not the judge's are the backend's
    (:attr:`backend_options`), validated by the backend's own config class
    (e.g. :class:`~registry.adapters.backends.hf.TransformersConfig`) as soon as this one is."""

    what: ClassVar[str] = "evaluator kind 'llm-judge'"

    backend: str = "transformers"
    """A registered backend (:data:`registry.adapters.backends.BACKENDS`)."""
    model: str | None = None
    """The backend's model: a local folder, or a model id of an API."""
    seed: Seed = 0
    """Request seed of sample 0 (sample ``k`` draws with ``seed + k``)."""
    max_tokens: PositiveInt | None = None
    """Overrides the protocol's (decision and every stage)."""
    temperature: NonNegativeFloat | None = None
    """Overrides the protocol's."""
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    """Overrides the protocol's."""
    stop: tuple[str, ...] | None = None
    """Overrides the protocol's stop strings."""
    backend_options: dict[str, Any] = Field(default_factory=dict)
    """The backend's keys (every key of the flat mapping that is not the judge's)."""
    _backend_settings: PluginConfig | dict[str, Any] | None = PrivateAttr(None)

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        own = set(cls.model_fields)
        options = dict(data.get("backend_options") or {})
        options.update({k: v for k, v in data.items() if k not in own})
        return {**{k: v for k, v in data.items() if k in own}, "backend_options": options}

    @model_validator(mode="after")
    def _check_backend(self) -> LLMJudgeConfig:
        if self.backend not in BACKENDS:
            known = BACKENDS.names()
            close = difflib.get_close_matches(self.backend, known, n=2, cutoff=0.5)
            raise InvalidInput(f"unknown backend {self.backend!r}; allowed backends: {', '.join(known)}"
                               + (f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""),
                               field="backend")
        self._backend_settings = self._backend_config()
        return self

    def _backend_config(self) -> PluginConfig | dict[str, Any]:
        backend = BACKENDS.get(self.backend)
        config_cls: type[PluginConfig] | None = getattr(backend, "Config", None)
        data = dict(self.backend_options)
        model = self.checkpoint if getattr(backend, "local_weights", False) and self.checkpoint else self.model
        if model is not None:
            data["model"] = model
        if self.batch_size is not None and (config_cls is None or "batch_size" in config_cls.model_fields):
            data["batch_size"] = self.batch_size
        if config_cls is None:
            return data
        what = f"evaluator kind 'llm-judge' with backend {self.backend!r}"
        try:
            return config_cls.model_validate(data)
        except ValidationError as exc:
            allowed = (set(type(self).keys()) | set(config_cls.keys())) - {"backend_options"}  # one flat mapping
            raise config_error(config_cls, exc, what=what, allowed=list(allowed)) from None

    @property
    def backend_settings(self) -> PluginConfig | dict[str, Any]:
        """The backend's validated config (a mapping for a backend that declares no config class)."""
        assert self._backend_settings is not None
        return self._backend_settings

    def generation_overrides(self) -> dict[str, Any]:
        """The generation keys this config sets (they override the protocol's)."""
        return {k: getattr(self, k) for k in GENERATION_KEYS if getattr(self, k) is not None}

    def canonical(self) -> dict[str, Any]:
        """One flat mapping: the judge's canonical keys and the backend's (its ``model`` and
        ``batch_size`` are the judge's)."""
        out = super().canonical()
        out.pop("backend_options", None)
        backend = self.backend_settings
        theirs = backend.canonical() if isinstance(backend, PluginConfig) else canonical_json(self.backend_options)
        out.update({k: v for k, v in theirs.items() if k not in ("model", "batch_size")})
        return dict(sorted(out.items()))


def render(template: str, values: Mapping[str, Any], known: frozenset[str] | set[str] = PLACEHOLDERS) -> str:
    """``template`` with ``{name}`` placeholders replaced by ``values`` (``{{``/``}}`` are literal
    braces; any other brace is kept as written). Values are inserted verbatim, never re-read as
    templates, so braces inside an instruction or a response are safe. An unknown ``{name}`` (not in
    ``known``) is an error (a typo would otherwise silently send the placeholder to the model)."""

    def sub(m: re.Match[str]) -> str:
        token = m.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        name = m.group(1)
        if name not in known:
            raise InvalidInput(f"unknown template placeholder {{{name}}}; known: {', '.join(sorted(known))}",
                               field="protocol")
        value = values.get(name)
        return "" if value is None else str(value)

    return _FIELD.sub(sub, template)


def placeholders(template: str) -> set[str]:
    """The ``{name}`` placeholders a template uses."""
    return {m.group(1) for m in _FIELD.finditer(template) if m.group(1)}


def chat_messages(system: str | None, user: str, values: Mapping[str, Any],
                  known: frozenset[str] | set[str] = PLACEHOLDERS) -> tuple[dict[str, str], ...]:
    """The chat messages of a prompt: the system message (when there is one) and the user message,
    each template rendered with ``values`` (see :func:`render`)."""
    out = []
    if system:
        out.append({"role": "system", "content": render(str(system), values, known)})
    out.append({"role": "user", "content": render(str(user), values, known)})
    return tuple(out)


def choice_probability(lp_a: float, lp_b: float) -> float | None:
    """P(first choice) = exp(lp_a − logsumexp(lp_a, lp_b)); None when both are impossible/unknown."""
    if not (math.isfinite(lp_a) or math.isfinite(lp_b)) or math.isnan(lp_a) or math.isnan(lp_b):
        return None
    top = max(lp_a, lp_b)
    ea, eb = math.exp(lp_a - top), math.exp(lp_b - top)
    return ea / (ea + eb)


def stage_input_hash(inputs: Sequence[str], values: Mapping[str, Any]) -> str:
    """xxh3-128 hex (32 characters, like example hashes) of a stage's input values, in order."""
    import xxhash

    return xxhash.xxh3_128(json.dumps([[k, values.get(k)] for k in inputs], default=str).encode()).hexdigest()


# --------------------------------------------------------------------------- stage cache
@dataclass(frozen=True)
class StageOutput:
    """One generated stage text and what generating it cost."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


class StageStore(ABC):
    """Durable outputs of protocol stages, by (stage key, input hash, sample)."""

    @abstractmethod
    def get(self, key: str, input_hashes: Sequence[str], sample: int) -> dict[str, StageOutput]:
        """The stored outputs among ``input_hashes``."""

    @abstractmethod
    def put(self, key: str, outputs: Mapping[str, StageOutput], sample: int) -> None:
        """Store new outputs (input hash → output)."""


class MemoryStageStore(StageStore):
    """A process-local stage store (the default outside the engine)."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str, int], StageOutput] = {}

    def get(self, key: str, input_hashes: Sequence[str], sample: int) -> dict[str, StageOutput]:
        return {h: self.data[(key, h, sample)] for h in input_hashes if (key, h, sample) in self.data}

    def put(self, key: str, outputs: Mapping[str, StageOutput], sample: int) -> None:
        self.data.update({(key, h, sample): out for h, out in outputs.items()})


# --------------------------------------------------------------------------- stage specs
@dataclass(frozen=True)
class StageSpec:
    """One validated stage of a multi-stage protocol (keys in the module docstring)."""

    name: str
    inputs: tuple[str, ...]
    per: str
    order: str
    variable: str | None
    values: tuple[str, ...]
    system: str | None
    user: str
    generation: Mapping[str, Any]

    def outputs(self) -> tuple[str, ...]:
        """Placeholders this stage's outputs fill in later templates."""
        return (self.name,) if self.per == "example" else (f"{self.name}_a", f"{self.name}_b")


def _generation(spec: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    gen = {k: spec[k] for k in GENERATION_KEYS if k in spec} | {k: overrides[k] for k in GENERATION_KEYS if k in overrides}
    return {"max_tokens": int(gen.get("max_tokens", 256)), "temperature": float(gen.get("temperature", 0.0)),
            "top_p": float(gen.get("top_p", 1.0)), "stop": list(gen["stop"]) if gen.get("stop") else None}


def parse_stages(raw: Any, overrides: Mapping[str, Any]) -> tuple[StageSpec, ...]:
    """Validate a protocol's ``stages`` (errors name ``stages[i].key``)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidInput("'stages' must be a list of stage mappings", field="stages")
    out: list[StageSpec] = []
    example_outputs: set[str] = set()
    taken = set(PLACEHOLDERS)
    for i, st in enumerate(raw):
        where = f"stages[{i}]"
        if not isinstance(st, Mapping):
            raise InvalidInput("a stage must be a mapping", field=where)
        unknown = set(st) - STAGE_KEYS
        if unknown:
            raise InvalidInput(f"unknown stage keys {sorted(unknown)}; known: {sorted(STAGE_KEYS)}", field=where)
        name = st.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidInput("a stage needs a lower-case 'name' (letters, digits, _)", field=f"{where}.name")
        per, order = st.get("per", "example"), st.get("order", "shown")
        if per not in ("example", "response"):
            raise InvalidInput(f"'per' must be 'example' or 'response', got {per!r}", field=f"{where}.per")
        if order not in ("shown", "swapped"):
            raise InvalidInput(f"'order' must be 'shown' or 'swapped', got {order!r}", field=f"{where}.order")
        variable, values = None, ()
        if st.get("for_each") is not None:
            fe = st["for_each"]
            if (not isinstance(fe, Mapping) or len(fe) != 1 or not isinstance(next(iter(fe.values())), list)
                    or not next(iter(fe.values()))):
                raise InvalidInput("'for_each' must be {variable: [non-empty list of values]}", field=f"{where}.for_each")
            variable, vals = next(iter(fe.items()))
            values = tuple(str(v) for v in vals)
        if not st.get("user"):
            raise InvalidInput("a stage needs a 'user' template", field=f"{where}.user")
        inputs = st.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise InvalidInput("a stage needs 'inputs': the fields its templates use", field=f"{where}.inputs")
        allowed = (PLACEHOLDERS | example_outputs) - ({"response_a", "response_b"} if per == "response" else set())
        bad = [f for f in inputs if f not in allowed]
        if bad:
            raise InvalidInput(f"stage inputs {bad} unknown; allowed: {sorted(allowed)}", field=f"{where}.inputs")
        used = placeholders(str(st["user"])) | placeholders(str(st.get("system") or ""))
        extra = used - set(inputs) - ({variable} if variable else set())
        if extra:
            raise InvalidInput(f"stage templates use {sorted(extra)} which are not in its inputs (the cache key)",
                               field=f"{where}.inputs")
        spec = StageSpec(name=name, inputs=tuple(inputs), per=per, order=order, variable=variable, values=values,
                         system=st.get("system"), user=str(st["user"]), generation=_generation(st, overrides))
        clash = set(spec.outputs()) & taken
        if clash:
            raise InvalidInput(f"stage output {sorted(clash)} clashes with a field or another stage", field=f"{where}.name")
        taken |= set(spec.outputs())
        if per == "example":
            example_outputs.add(name)
        out.append(spec)
    return tuple(out)


def _swap(ex: Mapping[str, Any]) -> dict[str, Any]:
    return {**ex, "response_a": ex.get("response_b"), "response_b": ex.get("response_a")}


class LLMJudge(Evaluator):
    """A base LLM behind a generation backend, prompted and parsed as its protocol says."""

    kind: ClassVar[str] = "llm-judge"
    task_types: ClassVar[tuple[TaskType, ...]] = ("pairwise", "pointwise", "classification")
    Config = LLMJudgeConfig

    def __init__(self, config: Mapping[str, Any] | LLMJudgeConfig) -> None:
        super().__init__(config)
        settings: LLMJudgeConfig = self.settings
        protocol = settings.protocol
        if isinstance(protocol, Mapping) and protocol.get("vote"):
            raise InvalidInput("a protocol vote has no prompt of its own: the engine runs its member protocols "
                               "(run_evaluation) and takes the majority", field="protocol")
        if isinstance(protocol, Mapping) and protocol.get("decision", "generate") not in DECISIONS:
            raise InvalidInput(f"unknown decision {protocol['decision']!r}; one of {', '.join(DECISIONS)}",
                               field="decision")
        if not isinstance(protocol, Mapping) or not protocol.get("user") and protocol.get("decision") != "compare_ratings":
            raise InvalidInput("the llm-judge needs 'protocol': a protocol config with a 'user' template",
                               field="protocol", hint="use a protocol such as pairwise-base")
        self.protocol: dict[str, Any] = dict(protocol)
        parser = self.protocol.get("parser")
        if parser is not None and parser not in PARSERS:
            raise InvalidInput(f"unknown parser {parser!r}; one of {', '.join(PARSERS)}", field="parser")
        self.backend_name = settings.backend
        self.seed = settings.seed
        overrides = settings.generation_overrides()
        gen = _generation(self.protocol, overrides)
        self.max_tokens = gen["max_tokens"]
        self.temperature = gen["temperature"]
        self.top_p = gen["top_p"]
        self.stop = tuple(gen["stop"]) if gen["stop"] else None
        choices = self.protocol.get("choices")
        if choices is not None and (not isinstance(choices, list) or len(choices) != 2
                                    or not all(isinstance(c, str) and c for c in choices)):
            raise InvalidInput("protocol 'choices' must be two non-empty strings (first = A)", field="choices")
        self.choices: tuple[str, ...] | None = tuple(choices) if choices else None
        self.stages = parse_stages(self.protocol.get("stages"), overrides)
        self.decision = self._check_decision()
        self.backend = build_backend(self.backend_name, settings.backend_settings)
        self.stage_store: StageStore = MemoryStageStore()
        """Where stage outputs are kept (the engine replaces it with the registry's durable store)."""
        self.stage_stats: dict[str, int] = {"generated": 0, "reused": 0}

    def _check_decision(self) -> str:
        decision = self.protocol.get("decision", "generate")
        if decision not in DECISIONS:
            raise InvalidInput(f"unknown decision {decision!r}; one of {', '.join(DECISIONS)}", field="decision")
        by_name = {s.name: s for s in self.stages}
        if decision == "compare_ratings":
            stage = by_name.get(self.protocol.get("rating_stage"))
            if stage is None or stage.per != "response":
                raise InvalidInput("compare_ratings needs 'rating_stage': the name of a per-response stage",
                                   field="rating_stage")
            scale = self.protocol.get("rating_scale")
            if not (isinstance(scale, list) and len(scale) == 2 and float(scale[0]) < float(scale[1])):
                raise InvalidInput("compare_ratings needs 'rating_scale': [lowest, highest]", field="rating_scale")
        if decision == "synthesize_if_disagree":
            names = self.protocol.get("analyses")
            if (not isinstance(names, list) or len(names) != 2 or any(n not in by_name for n in names)
                    or by_name[names[0]].order != "shown" or by_name[names[1]].order != "swapped"):
                raise InvalidInput("synthesize_if_disagree needs 'analyses': [a shown-order stage, a swapped-order "
                                   "stage]", field="analyses")
        known = PLACEHOLDERS | {o for s in self.stages for o in s.outputs()}
        for key in ("system", "user"):
            unknown = placeholders(str(self.protocol.get(key) or "")) - known
            if unknown:
                raise InvalidInput(f"unknown template placeholders {sorted(unknown)} in '{key}'; known: {sorted(known)}",
                                   field=key)
        return decision

    # ------------------------------------------------------------------ identity
    def protocol_sha256(self) -> str:
        return sha256_json(self.protocol)

    def fingerprint(self) -> Mapping[str, Any]:
        """Kind, the backend's fingerprint (model hash, not paths or keys), the protocol's hash,
        the effective generation settings and the seed."""
        return {"kind": self.kind, "backend": dict(self.backend.fingerprint()),
                "protocol_sha256": self.protocol_sha256(),
                "generation": {"max_tokens": self.max_tokens, "temperature": self.temperature, "top_p": self.top_p,
                               "stop": list(self.stop) if self.stop else None},
                "seed": self.seed}

    def stage_key(self, stage: StageSpec) -> str:
        """The cache key of a stage's outputs (module docstring): what decides its generations,
        not which protocol uses it."""
        sampled = stage.generation["temperature"] > 0
        return sha256_json({"kind": "stage", "backend": dict(self.backend.fingerprint()), "system": stage.system,
                        "user": stage.user, "inputs": list(stage.inputs), "per": stage.per,
                        "variable": stage.variable, "generation": dict(stage.generation),
                        "seed": self.seed if sampled else None})

    @property
    def deterministic(self) -> bool:
        """Greedy decoding is; seeded sampling is on the local-weights backends only."""
        return self.temperature == 0 or type(self.backend).local_weights

    def close(self) -> None:
        self.backend.close()

    # ------------------------------------------------------------------ prompts
    def _values(self, ctx: TaskContext, ex: Mapping[str, Any]) -> dict[str, Any]:
        values = {k: ex.get(k) for k in ("instruction", "response_a", "response_b", "response", "reference")}
        values["criterion"] = ex.get("criterion") or ctx.criterion or "overall quality"
        values["labels"] = ", ".join(ctx.labels) if ctx.labels else ""
        lo, hi = self._scale(ctx, ex)
        values["scale_min"] = "" if lo is None else format_number(lo)
        values["scale_max"] = "" if hi is None else format_number(hi)
        return values

    @staticmethod
    def _scale(ctx: TaskContext, ex: Mapping[str, Any]) -> tuple[float | None, float | None]:
        if ex.get("scale_min") is not None and ex.get("scale_max") is not None:
            return float(ex["scale_min"]), float(ex["scale_max"])
        if ctx.scale:
            return float(ctx.scale[0]), float(ctx.scale[1])
        return None, None

    def messages(self, ctx: TaskContext, ex: Mapping[str, Any],
                 stage_outputs: Mapping[str, str] | None = None) -> tuple[dict[str, str], ...]:
        """The decision's chat messages for one example (system message only when the protocol has
        one); ``stage_outputs`` fill the stage placeholders."""
        known = PLACEHOLDERS | {o for s in self.stages for o in s.outputs()}
        return chat_messages(self.protocol.get("system"), str(self.protocol["user"]),
                             {**self._values(ctx, ex), **(stage_outputs or {})}, known)

    # ------------------------------------------------------------------ stages
    def _run_stages(self, ctx: TaskContext, examples: Sequence[Mapping[str, Any]], sample: int
                    ) -> tuple[list[dict[str, str]], list[dict[str, dict[str, list[str]]]], list[dict[str, float]]]:
        """Every stage for every example: (placeholder values, texts per stage/side, cost) per example."""
        n = len(examples)
        filled: list[dict[str, str]] = [{} for _ in range(n)]
        texts: list[dict[str, dict[str, list[str]]]] = [{} for _ in range(n)]
        cost = [{"prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0} for _ in range(n)]
        if not self.stages:
            return filled, texts, cost
        shown = [self._values(ctx, ex) for ex in examples]
        swapped = [self._values(ctx, _swap(ex)) for ex in examples] if ctx.task_type == "pairwise" else shown
        for stage in self.stages:
            if (stage.per == "response" or stage.order == "swapped") and ctx.task_type != "pairwise":
                raise InvalidInput(f"stage {stage.name!r} is per response or swapped: it needs pairwise data, "
                                   f"not {ctx.task_type}", field="stages")
            units: list[tuple[int, str, str, dict[str, Any]]] = []      # (example, side, input hash, values)
            for i in range(n):
                base = {**(swapped[i] if stage.order == "swapped" else shown[i]), **filled[i]}
                sides = [("", base)] if stage.per == "example" else [
                    ("a", {**base, "response": base["response_a"]}), ("b", {**base, "response": base["response_b"]})]
                for side, vals in sides:
                    for value in stage.values or (None,):
                        v = {**vals, stage.variable: value} if stage.variable else vals
                        keys = (*stage.inputs, stage.variable) if stage.variable else stage.inputs
                        units.append((i, side, stage_input_hash(keys, v), v))
            outputs = self._stage_outputs(stage, units, sample, cost)
            for i in range(n):
                mine = [(side, outputs[h]) for (j, side, h, _) in units if j == i]
                by_side: dict[str, list[str]] = {}
                for side, out in mine:
                    by_side.setdefault(side, []).append(out.text)
                texts[i][stage.name] = by_side
                for side, parts in by_side.items():
                    label = stage.name + (f"_{side}" if side else "")
                    filled[i][label] = parts[0] if not stage.variable else "\n\n".join(
                        f"[{val}]\n{t}" for val, t in zip(stage.values, parts))
        return filled, texts, cost

    def _stage_outputs(self, stage: StageSpec, units, sample: int, cost) -> dict[str, StageOutput]:
        """Outputs of a stage for ``units``: from the stage store, or generated in one backend call."""
        gen = stage.generation
        sampled = gen["temperature"] > 0
        stage_sample = int(sample) if sampled else 0
        key = self.stage_key(stage)
        first: dict[str, tuple[int, dict[str, Any]]] = {}
        for i, _, h, v in units:
            first.setdefault(h, (i, v))
        found = self.stage_store.get(key, list(first), stage_sample)
        missing = [h for h in first if h not in found]
        self.stage_stats["reused"] += len(found)
        if missing:
            known = set(stage.inputs) | ({stage.variable} if stage.variable else set())
            requests = [GenerationRequest(messages=chat_messages(stage.system, stage.user, first[h][1], known),
                                          max_tokens=gen["max_tokens"], temperature=gen["temperature"],
                                          top_p=gen["top_p"], n=1, seed=self.seed + int(sample),
                                          stop=tuple(gen["stop"]) if gen["stop"] else None)
                        for h in missing]
            results = self.backend.generate(requests)
            new = {}
            for h, res in zip(missing, results):
                new[h] = StageOutput(text=res.texts[0] if res.texts else "", prompt_tokens=int(res.prompt_tokens),
                                     completion_tokens=int(res.completion_tokens), seconds=float(res.seconds))
                c = cost[first[h][0]]  # the example that caused a generation pays for it
                c["prompt_tokens"] += new[h].prompt_tokens
                c["completion_tokens"] += new[h].completion_tokens
                c["seconds"] += new[h].seconds
            self.stage_store.put(key, new, stage_sample)
            self.stage_stats["generated"] += len(new)
            found = {**found, **new}
        return found

    # ------------------------------------------------------------------ judging
    def judge(self, ctx: TaskContext, examples: Sequence[Mapping[str, Any]], *, sample: int = 0) -> list[Verdict]:
        """Run the stages, then decide for every example (generations batched in one backend call
        per stage and one for the decision; see the module docstring)."""
        if not examples:
            return []
        allowed = self.protocol.get("task_types")
        if allowed and ctx.task_type not in allowed:
            raise InvalidInput(f"this protocol judges {', '.join(allowed)} data, not {ctx.task_type}",
                               field="protocol", hint="pick a protocol made for this task type")
        parser = self.protocol.get("parser") or DEFAULT_PARSER[ctx.task_type]
        filled, texts, stage_cost = self._run_stages(ctx, examples, sample)
        verdicts: list[Verdict | None] = [None] * len(examples)
        todo = list(range(len(examples)))
        if self.decision == "compare_ratings":
            return [self._compare(texts[i], stage_cost[i]) for i in todo]
        if self.decision == "synthesize_if_disagree":
            first, second = self.protocol["analyses"]
            for i in list(todo):
                a, ok_a = parse_pairwise(filled[i][first], mention="last")
                b, ok_b = parse_pairwise(filled[i][second], mention="last")
                b = map_back(b, ORDER_SWAPPED)  # the swapped analysis's "A" is the shown B
                if ok_a and ok_b and a == b:
                    raw = json.dumps({"agreed": a, first: filled[i][first], second: filled[i][second]})
                    verdicts[i] = Verdict(label=a, parsed=True, raw=raw, **stage_cost[i])
                    todo.remove(i)
        want_choices = self.choices if ctx.task_type == "pairwise" and parser == "pairwise_choice" else None
        requests = [GenerationRequest(messages=self.messages(ctx, examples[i], filled[i]), max_tokens=self.max_tokens,
                                      temperature=self.temperature, top_p=self.top_p, n=1,
                                      seed=self.seed + int(sample), choices=want_choices, stop=self.stop)
                    for i in todo]
        results = self.backend.generate(requests) if requests else []
        for i, res in zip(todo, results):
            text = res.texts[0] if res.texts else ""
            cost = {"raw": text, "prompt_tokens": int(res.prompt_tokens) + stage_cost[i]["prompt_tokens"],
                    "completion_tokens": int(res.completion_tokens) + stage_cost[i]["completion_tokens"],
                    "seconds": float(res.seconds) + stage_cost[i]["seconds"]}
            verdicts[i] = self._verdict(ctx, examples[i], parser, text, res.choice_logprobs, cost)
        return verdicts  # type: ignore[return-value] - every index filled above

    def _compare(self, texts: Mapping[str, Mapping[str, list[str]]], cost: Mapping[str, float]) -> Verdict:
        """LLMBar rating / multi-aspect rule: mean rating of each response, higher wins, equal → tie."""
        lo, hi = (float(x) for x in self.protocol["rating_scale"])
        by_side = texts[self.protocol["rating_stage"]]
        means = {}
        for side in ("a", "b"):
            values = [parse_rating(t, lo, hi, mention="last", out_of_scale=self.protocol.get("out_of_scale", "refuse"))
                      for t in by_side[side]]
            means[side] = None if not all(ok for _, ok in values) else sum(v for v, _ in values) / len(values)
        raw = json.dumps({"a": by_side["a"], "b": by_side["b"]})
        if means["a"] is None or means["b"] is None:
            return Verdict(label=None, parsed=False, raw=raw, **cost)
        a, b = means["a"], means["b"]
        return Verdict(label="A" if a > b else "B" if b > a else "tie", score=a - b, parsed=True, raw=raw,
                       extra={"ratings": means}, **cost)

    def _verdict(self, ctx: TaskContext, ex: Mapping[str, Any], parser: str, text: str,
                 choice_logprobs: Mapping[str, float] | None, cost: dict[str, Any]) -> Verdict:
        mention = self.protocol.get("mention", "unique")
        if parser == "pairwise_choice":
            label, parsed = parse_pairwise(text, mention=mention)
            prob_a = score = None
            extra: dict[str, Any] = {}
            if self.choices and choice_logprobs:
                lp_a, lp_b = (float(choice_logprobs.get(c, float("-inf"))) for c in self.choices)
                prob_a = choice_probability(lp_a, lp_b)
                if prob_a is not None:
                    score = lp_a - lp_b if math.isfinite(lp_a) and math.isfinite(lp_b) else None
                    extra = {"logprob_verdict": prob_a_verdict(prob_a),
                             "choice_logprobs": {"A": lp_a, "B": lp_b}}
            return Verdict(label=label, parsed=parsed, prob_a=prob_a, score=score, extra=extra, **cost)
        if parser == "rating":
            lo, hi = self._scale(ctx, ex)
            if lo is None or hi is None:
                raise InvalidInput("the rating parser needs a score scale (dataset scale or scale_min/scale_max)",
                                   field="scale")
            value, parsed = parse_rating(text, lo, hi, mention=self.protocol.get("mention", "last"),
                                         out_of_scale=self.protocol.get("out_of_scale", "refuse"))
            return Verdict(score=value, parsed=parsed, **cost)
        if parser == "label":
            if not ctx.labels:
                raise InvalidInput("the label parser needs the dataset's label set", field="labels")
            label, parsed = parse_label(text, ctx.labels, mention=mention)
            return Verdict(label=label, parsed=parsed, **cost)
        raise InvalidInput(f"unknown parser {parser!r}; one of {', '.join(PARSERS)}", field="parser")
