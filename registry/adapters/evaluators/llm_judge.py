"""Generative LLM judges: a base LLM (a generation backend) × a versioned protocol.

Evaluator config keys:

* ``backend`` — ``"transformers"`` (default) | ``"openai"`` (see :mod:`registry.adapters.backends`).
* ``model`` — the backend's model: a local folder for ``transformers``, a model id for ``openai``.
  When the engine passes ``checkpoint`` (the folder of a registered safetensors checkpoint) and the
  backend is ``transformers``, that folder is the model.
* ``protocol`` — the protocol's config (a dict; the engine adds it). Keys are documented in the
  protocol files (``registry/protocols/pairwise-base.yaml`` …): ``system``, ``user``, ``parser``,
  ``mention``, ``choices``, ``max_tokens``, ``temperature``, ``top_p``, ``stop``, ``out_of_scale``.
* ``max_tokens``, ``temperature``, ``top_p``, ``stop`` — when given here they override the protocol's.
* ``seed`` — the request seed is ``seed + sample`` (sample ``k`` of a sampling protocol draws
  with its own seed; greedy protocols ignore it).
* every other key (``base_url``, ``api_key_env``, ``concurrency``, ``device``, ``dtype``,
  ``batch_size``, ``max_input_tokens`` …) goes to the backend unchanged.

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
backend reports for its request (a batch's time split evenly).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from registry.adapters.backends import GenerationRequest, build_backend
from registry.adapters.evaluators.base import Evaluator, TaskContext, Verdict
from registry.domain.parsing import PARSERS, parse_label, parse_pairwise, parse_rating
from registry.domain.types import TaskType
from registry.errors import InvalidInput

EVALUATOR_KEYS = frozenset({"backend", "model", "checkpoint", "protocol", "seed", "samples"})
GENERATION_KEYS = ("max_tokens", "temperature", "top_p", "stop")
PLACEHOLDERS = frozenset({"instruction", "response_a", "response_b", "response", "reference", "criterion",
                          "labels", "scale_min", "scale_max"})
DEFAULT_PARSER: dict[str, str] = {"pairwise": "pairwise_choice", "pointwise": "rating", "classification": "label"}
_FIELD = re.compile(r"\{\{|\}\}|\{(\w+)\}")


def render(template: str, values: Mapping[str, Any]) -> str:
    """``template`` with ``{name}`` placeholders replaced by ``values`` (``{{``/``}}`` are literal
    braces; any other brace is kept as written). Values are inserted verbatim, never re-read as
    templates, so braces inside an instruction or a response are safe. An unknown ``{name}`` is an
    error (a typo would otherwise silently send the placeholder to the model)."""

    def sub(m: re.Match[str]) -> str:
        token = m.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        name = m.group(1)
        if name not in PLACEHOLDERS:
            raise InvalidInput(f"unknown template placeholder {{{name}}}; known: {', '.join(sorted(PLACEHOLDERS))}",
                               field="protocol")
        value = values.get(name)
        return "" if value is None else str(value)

    return _FIELD.sub(sub, template)


def _fmt_number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def choice_probability(lp_a: float, lp_b: float) -> float | None:
    """P(first choice) = exp(lp_a − logsumexp(lp_a, lp_b)); None when both are impossible/unknown."""
    if not (math.isfinite(lp_a) or math.isfinite(lp_b)) or math.isnan(lp_a) or math.isnan(lp_b):
        return None
    top = max(lp_a, lp_b)
    ea, eb = math.exp(lp_a - top), math.exp(lp_b - top)
    return ea / (ea + eb)


class LLMJudge(Evaluator):
    """A base LLM behind a generation backend, prompted and parsed as its protocol says."""

    kind: ClassVar[str] = "llm-judge"
    task_types: ClassVar[tuple[TaskType, ...]] = ("pairwise", "pointwise", "classification")

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        protocol = self.config.get("protocol")
        if not isinstance(protocol, Mapping) or not protocol.get("user"):
            raise InvalidInput("the llm-judge needs 'protocol': a protocol config with a 'user' template",
                               field="protocol", hint="use a protocol such as pairwise-base")
        self.protocol: dict[str, Any] = dict(protocol)
        parser = self.protocol.get("parser")
        if parser is not None and parser not in PARSERS:
            raise InvalidInput(f"unknown parser {parser!r}; one of {', '.join(PARSERS)}", field="parser")
        self.backend_name = str(self.config.get("backend", "transformers"))
        backend_config = {k: v for k, v in self.config.items() if k not in EVALUATOR_KEYS and k not in GENERATION_KEYS}
        model = self.config.get("model")
        if self.backend_name == "transformers" and self.config.get("checkpoint"):
            model = self.config["checkpoint"]
        backend_config["model"] = model
        self.backend = build_backend(self.backend_name, backend_config)
        self.seed = int(self.config.get("seed", 0))
        gen = {k: self.protocol[k] for k in GENERATION_KEYS if k in self.protocol}
        gen |= {k: self.config[k] for k in GENERATION_KEYS if k in self.config}
        self.max_tokens = int(gen.get("max_tokens", 256))
        self.temperature = float(gen.get("temperature", 0.0))
        self.top_p = float(gen.get("top_p", 1.0))
        self.stop = tuple(gen["stop"]) if gen.get("stop") else None
        choices = self.protocol.get("choices")
        if choices is not None and (not isinstance(choices, list) or len(choices) != 2
                                    or not all(isinstance(c, str) and c for c in choices)):
            raise InvalidInput("protocol 'choices' must be two non-empty strings (first = A)", field="choices")
        self.choices: tuple[str, ...] | None = tuple(choices) if choices else None

    # ------------------------------------------------------------------ identity
    def protocol_sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.protocol, sort_keys=True, default=str).encode()).hexdigest()

    def fingerprint(self) -> Mapping[str, Any]:
        """Kind, the backend's fingerprint (model hash, not paths or keys), the protocol's hash,
        the effective generation settings and the seed."""
        return {"kind": self.kind, "backend": dict(self.backend.fingerprint()),
                "protocol_sha256": self.protocol_sha256(),
                "generation": {"max_tokens": self.max_tokens, "temperature": self.temperature, "top_p": self.top_p,
                               "stop": list(self.stop) if self.stop else None},
                "seed": self.seed}

    @property
    def deterministic(self) -> bool:
        """Greedy decoding is; seeded sampling is on the local backend only."""
        return self.temperature == 0 or self.backend_name == "transformers"

    def close(self) -> None:
        self.backend.close()

    # ------------------------------------------------------------------ prompts
    def _values(self, ctx: TaskContext, ex: Mapping[str, Any]) -> dict[str, Any]:
        values = {k: ex.get(k) for k in ("instruction", "response_a", "response_b", "response", "reference")}
        values["criterion"] = ex.get("criterion") or ctx.criterion or "overall quality"
        values["labels"] = ", ".join(ctx.labels) if ctx.labels else ""
        lo, hi = self._scale(ctx, ex)
        values["scale_min"] = "" if lo is None else _fmt_number(lo)
        values["scale_max"] = "" if hi is None else _fmt_number(hi)
        return values

    @staticmethod
    def _scale(ctx: TaskContext, ex: Mapping[str, Any]) -> tuple[float | None, float | None]:
        if ex.get("scale_min") is not None and ex.get("scale_max") is not None:
            return float(ex["scale_min"]), float(ex["scale_max"])
        if ctx.scale:
            return float(ctx.scale[0]), float(ctx.scale[1])
        return None, None

    def messages(self, ctx: TaskContext, ex: Mapping[str, Any]) -> tuple[dict[str, str], ...]:
        """The chat messages for one example (system message only when the protocol has one)."""
        values = self._values(ctx, ex)
        out = []
        if self.protocol.get("system"):
            out.append({"role": "system", "content": render(str(self.protocol["system"]), values)})
        out.append({"role": "user", "content": render(str(self.protocol["user"]), values)})
        return tuple(out)

    # ------------------------------------------------------------------ judging
    def judge(self, ctx: TaskContext, examples: Sequence[Mapping[str, Any]], *, sample: int = 0) -> list[Verdict]:
        """Generate for every example in one backend call, then parse (see the module docstring)."""
        if not examples:
            return []
        allowed = self.protocol.get("task_types")
        if allowed and ctx.task_type not in allowed:
            raise InvalidInput(f"this protocol judges {', '.join(allowed)} data, not {ctx.task_type}",
                               field="protocol", hint="pick a protocol made for this task type")
        parser = self.protocol.get("parser") or DEFAULT_PARSER[ctx.task_type]
        want_choices = self.choices if ctx.task_type == "pairwise" and parser == "pairwise_choice" else None
        requests = [GenerationRequest(messages=self.messages(ctx, ex), max_tokens=self.max_tokens,
                                      temperature=self.temperature, top_p=self.top_p, n=1,
                                      seed=self.seed + int(sample), choices=want_choices, stop=self.stop)
                    for ex in examples]
        results = self.backend.generate(requests)
        verdicts = []
        for ex, res in zip(examples, results):
            text = res.texts[0] if res.texts else ""
            cost = {"raw": text, "prompt_tokens": int(res.prompt_tokens), "completion_tokens": int(res.completion_tokens),
                    "seconds": float(res.seconds)}
            verdicts.append(self._verdict(ctx, ex, parser, text, res.choice_logprobs, cost))
        return verdicts

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
                    extra = {"logprob_verdict": "A" if prob_a > 0.5 else "B" if prob_a < 0.5 else "tie",
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
