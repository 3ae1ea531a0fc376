"""The vLLM engine of the ``vllm`` backend, usable in-process or as a JSON-lines worker process.

This file imports only the standard library (and ``vllm`` once an engine loads), never the
``registry`` package: vLLM cannot share a virtual environment with the registry's dependencies
(see the README), so the backend runs this file with the vLLM environment's Python::

    .venv-vllm/bin/python -P registry/adapters/backends/vllm_worker.py

Protocol (one JSON object per line; the worker answers every line with exactly one line):

* ``{"op": "load", "config": {...}}`` → ``{"ok": true, "load_seconds": ..., "vllm_version": ..., "platform": ...}``
* ``{"op": "generate", "requests": [{...}, ...]}`` → ``{"ok": true, "results": [{...}, ...]}``
* ``{"op": "close"}`` → ``{"ok": true}``, then the worker exits (it also exits at end of input).
* any failure → ``{"ok": false, "error": "...", "type": "ExceptionClass"}`` (the worker keeps running).

vLLM logs to stdout; the worker moves the protocol to a private copy of the original stdout and
sends everything else (logs, progress bars) to stderr, which the backend writes to a log file.

Engine config keys: ``model`` (local folder), ``dtype``, ``max_model_len``, ``max_input_tokens`` and
``exact_choice_logprobs`` (defaults of the request keys of the same names), ``top_logprobs``,
``enforce_eager``, ``seed``, ``engine_kwargs`` (more ``vllm.LLM`` arguments, e.g.
``gpu_memory_utilization``). Requests and results are the dict forms of ``GenerationRequest`` /
``GenerationResult`` (see ``base.py``), plus those two request keys.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

ENGINE_ENV = {
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",  # engine core in this process: faster start, one process to stop
    "HF_HUB_OFFLINE": "1",
    "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB of KV cache on CPU (ignored on GPUs)
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
"""Environment of a vLLM engine (``VLLM_CACHE_ROOT`` is added by the backend)."""


def _logsumexp(values: Sequence[float]) -> float:
    finite = [v for v in values if v != float("-inf")]
    if not finite:
        return float("-inf")
    peak = max(finite)
    return peak + math.log(sum(math.exp(v - peak) for v in finite))


def _cut_at_stop(text: str, stop: Sequence[str] | None) -> str:
    cuts = [i for i in (text.find(s) for s in stop or () if s) if i >= 0]
    return text[:min(cuts)] if cuts else text


class VLLMEngine:
    """One ``vllm.LLM`` on a local model folder, with the chat/choice/cost rules of the backends."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        for key, value in ENGINE_ENV.items():
            os.environ.setdefault(key, value)
        start = time.perf_counter()
        import vllm
        from vllm import LLM

        self.config = dict(config)
        self.max_model_len = int(config.get("max_model_len", 1024))
        self.max_input_tokens = int(config.get("max_input_tokens", self.max_model_len))
        self.top_logprobs = int(config.get("top_logprobs", 20))
        self.exact_choice_logprobs = bool(config.get("exact_choice_logprobs", True))
        kwargs = dict(model=str(config["model"]), tokenizer=str(config["model"]), dtype=str(config.get("dtype", "float32")),
                      max_model_len=self.max_model_len, enforce_eager=bool(config.get("enforce_eager", True)),
                      seed=int(config.get("seed", 0)), max_logprobs=max(64, self.top_logprobs),
                      trust_remote_code=False, disable_log_stats=True)
        kwargs.update(config.get("engine_kwargs") or {})
        self.llm = LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self._choice_ids: dict[str, tuple[tuple[int, ...], ...]] = {}
        from vllm import SamplingParams

        # vLLM >= 0.32 returns the logprobs of given token ids (exact choice scores in the same pass).
        self.token_ids_logprobs = "logprob_token_ids" in getattr(SamplingParams, "__struct_fields__", ())
        # The first call that returns logprobs (and prompt logprobs) is slow on CPU: pay it now.
        self.generate([{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2,
                        "choices": ["A", "Output (a)"]}])
        try:
            from vllm.platforms import current_platform

            platform = "cpu" if current_platform.is_cpu() else str(current_platform.device_name)
        except Exception:  # noqa: BLE001 - informational only
            platform = "unknown"
        self.info = {"load_seconds": time.perf_counter() - start, "vllm_version": vllm.__version__,
                     "platform": platform}

    # ------------------------------------------------------------------ prompts
    def prompt_ids(self, request: Mapping[str, Any]) -> tuple[list[int], int]:
        """The chat-templated prompt's token ids (left-truncated) and how many tokens were cut.

        The template is rendered to text with the generation prompt and tokenized without
        special tokens (the template writes them), exactly like the transformers backend."""
        text = self.tokenizer.apply_chat_template([dict(m) for m in request["messages"]], tokenize=False,
                                                  add_generation_prompt=True)
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        wanted = int(request.get("max_input_tokens") or self.max_input_tokens)
        limit = max(1, min(wanted, self.max_model_len - max(1, int(request.get("max_tokens", 256)))))
        cut = max(0, len(ids) - limit)
        return ids[cut:], cut

    def spellings(self, choice: str) -> tuple[tuple[int, ...], ...]:
        """Token ids of ``choice`` without and with a leading space (distinct spellings)."""
        if choice not in self._choice_ids:
            spellings: list[tuple[int, ...]] = []
            for text in (choice, " " + choice):
                ids = tuple(int(t) for t in self.tokenizer(text, add_special_tokens=False)["input_ids"])
                if ids and ids not in spellings:
                    spellings.append(ids)
            if not spellings:
                raise ValueError(f"choice {choice!r} has no tokens")
            self._choice_ids[choice] = tuple(spellings)
        return self._choice_ids[choice]

    # ------------------------------------------------------------------ generation
    def generate(self, requests: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Results (dicts) for ``requests`` (dicts), in order; one ``LLM.generate`` call for all."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        if not requests:
            return []
        prompts, params, cuts = [], [], []
        for req in requests:
            ids, cut = self.prompt_ids(req)
            temperature = float(req.get("temperature", 0.0))
            greedy = temperature == 0
            choices = req.get("choices") or None
            prompts.append(TokensPrompt(prompt_token_ids=ids))
            cuts.append(cut)
            logprobs: dict[str, Any] = {}
            if choices:
                singles = sorted({s[0] for c in choices for s in self.spellings(c) if len(s) == 1})
                if self.token_ids_logprobs and 0 < len(singles) <= 64:  # exactly these tokens', no extra pass
                    logprobs = {"logprobs": len(singles), "logprob_token_ids": singles}
                else:
                    logprobs = {"logprobs": self.top_logprobs}
            params.append(SamplingParams(
                n=1 if greedy else int(req.get("n", 1)),  # a greedy text is computed once, whatever n
                temperature=temperature, top_p=1.0 if greedy else float(req.get("top_p", 1.0)),
                seed=None if greedy or req.get("seed") is None else int(req["seed"]),
                max_tokens=int(req.get("max_tokens", 256)), stop=list(req.get("stop") or []) or None,
                **logprobs))
        start = time.perf_counter()
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        results = []
        # Spellings to score with an extra prompt-logprobs pass: (request index, token ids).
        missing: list[tuple[int, tuple[int, ...]]] = []
        for i, (req, out) in enumerate(zip(requests, outputs, strict=True)):
            n = int(req.get("n", 1))
            samples = list(out.outputs)
            if len(samples) == 1 and n > 1:
                samples = samples * n
            first = samples[0].logprobs[0] if req.get("choices") and samples[0].logprobs else None
            found: dict[tuple[int, ...], float] = {}
            scoring = "first-token"
            for choice in req.get("choices") or ():
                for spelling in self.spellings(choice):
                    if spelling in found or (i, spelling) in missing:
                        continue
                    if len(spelling) == 1 and first is not None and spelling[0] in first:
                        found[spelling] = float(first[spelling[0]].logprob)
                    elif len(spelling) > 1 or req.get("exact_choice_logprobs", self.exact_choice_logprobs):
                        missing.append((i, spelling))
                    if len(spelling) > 1:
                        scoring = "sequence"
            unique = out.outputs if float(req.get("temperature", 0.0)) > 0 else out.outputs[:1]
            extra: dict[str, Any] = {"truncated_prompt_tokens": cuts[i]} if cuts[i] else {}
            if req.get("choices"):
                extra["choice_scoring"] = scoring
            results.append({
                # decoded from the token ids in one go (vLLM's streamed text holds back an incomplete
                # UTF-8 character at the end; the transformers backend decodes it as U+FFFD)
                "texts": [_cut_at_stop(self.tokenizer.decode(list(s.token_ids), skip_special_tokens=True),
                                       req.get("stop")) for s in samples],
                "prompt_tokens": len(out.prompt_token_ids),
                "completion_tokens": sum(len(s.token_ids) for s in unique),
                "finish_reasons": [str(s.finish_reason or "") for s in samples],
                "extra": extra,
                "_found": found,
            })
        if missing:
            # log P(spelling | prompt) = sum of the prompt logprobs of its tokens after the prompt
            # (exact, also for single tokens outside the returned top-k).
            rows = []
            for i, spelling in missing:
                prompt = list(outputs[i].prompt_token_ids)
                rows.append(prompt[max(0, len(prompt) + len(spelling) + 1 - self.max_model_len):] + list(spelling))
            scored = self.llm.generate([TokensPrompt(prompt_token_ids=r) for r in rows],
                                       SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0),
                                       use_tqdm=False)
            for (i, spelling), out in zip(missing, scored, strict=True):
                tail = out.prompt_logprobs[-len(spelling):]
                results[i]["_found"][spelling] = sum(float(lp[t].logprob) for lp, t in zip(tail, spelling, strict=True))
        seconds = (time.perf_counter() - start) / len(requests)
        for req, res in zip(requests, results, strict=True):
            found = res.pop("_found")
            res["seconds"] = seconds
            res["choice_logprobs"] = None
            if req.get("choices"):
                res["choice_logprobs"] = {c: _logsumexp([found[s] for s in self.spellings(c) if s in found])
                                          for c in req["choices"]}
        return results


# --------------------------------------------------------------------------- worker process
def _answer(stream: Any, payload: Mapping[str, Any]) -> None:
    stream.write(json.dumps(payload) + "\n")
    stream.flush()


def main() -> int:
    """Serve the JSON-lines protocol on stdin / (the original) stdout until ``close`` or EOF."""
    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # vLLM's logs and bars go to stderr
    sys.stdout = sys.stderr
    engine: VLLMEngine | None = None
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            message = json.loads(line)
            op = message.get("op")
            if op == "load":
                if engine is None:
                    engine = VLLMEngine(message["config"])
                _answer(protocol_out, {"ok": True, **engine.info})
            elif op == "generate":
                if engine is None:
                    raise RuntimeError("no engine loaded; send 'load' first")
                _answer(protocol_out, {"ok": True, "results": engine.generate(message["requests"])})
            elif op == "close":
                _answer(protocol_out, {"ok": True})
                break
            else:
                raise ValueError(f"unknown op {op!r}")
        except Exception as exc:  # noqa: BLE001 - reported to the backend, which raises it
            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
            _answer(protocol_out, {"ok": False, "error": f"{exc}", "type": type(exc).__name__})
    return 0


if __name__ == "__main__":
    # Run as a file: never let this folder (base.py, hf.py, ...) shadow top-level modules.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    raise SystemExit(main())
