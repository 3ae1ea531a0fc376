"""The in-process ``transformers`` backend: a local causal LM folder, chat template, batched generate.

Config keys (:class:`TransformersConfig`):

* ``model`` — a local folder saved with ``save_pretrained`` (safetensors weights, a tokenizer with
  a chat template). Nothing is downloaded (``local_files_only``), no remote code runs, and a
  folder holding pickle-based files (``*.bin``, ``*.pt``, ``*.npy``…; see
  :mod:`registry.adapters.models.local`) is refused, because unpickling runs code from data.
* ``device`` — ``"cpu"`` (default) | ``"auto"`` (CUDA when available) | ``"cuda"`` | ``"cuda:N"``.
* ``dtype`` — ``"float32"`` (default) | ``"bfloat16"``.
* ``batch_size`` — prompts per greedy ``generate`` call (default 8).
* ``max_input_tokens`` — longer prompts lose tokens from the *left* (the end of the conversation,
  where the question and the generation prompt are, is kept); default 1024.

Decoding:

* greedy (``temperature == 0``): requests are batched (LEFT padding, so every row generates from
  its last real token); ``n`` samples are ``n`` copies of the one greedy text.
* sampling (``temperature > 0``): one ``generate`` call per request, its ``n`` samples drawn
  together (``num_return_sequences``) from torch's generator seeded with the request's ``seed``
  inside ``fork_rng`` — the samples depend on the seed alone, not on the other requests, and the
  caller's global RNG is untouched. Only ``temperature`` and ``top_p`` shape the distribution
  (``top_k`` off), as in OpenAI-compatible servers. ``seed=None`` draws a fresh seed.
* ``stop`` strings: each text is cut at the first occurrence of any of them.

Choice log-probabilities (``request.choices``): the log-probability of each choice as the start of
the answer, from the raw logits (before temperature or top-p). A choice is tokenized without and
with a leading space (``"A"`` and ``" A"`` are different BPE tokens, and a model may emit either
after the template's newline) and the two spellings' probabilities are added (log-sum-exp) — the
same rule as the OpenAI-compatible backend's top-logprobs matching. A spelling of ONE token is
scored from the first generation step's logits (no extra work); a spelling of SEVERAL tokens
(``"Output (a)"``) is scored as a whole sequence, log P(t₁…tₖ | prompt) = Σ log P(tᵢ | prompt,
t₁…tᵢ₋₁): the generation's key/value cache of the prompt is reused, so only the spelling's
tokens are run (one small forward pass per distinct spelling, over the batch) —
so choices that share their first token (``"Output (a)"`` / ``"Output (b)"``) still get distinct,
exclusive probabilities. ``extra["choice_scoring"]`` says which rule was used (``first-token`` |
``sequence``).

Cost: ``prompt_tokens`` counts the prompt's real (non-pad) tokens once per request after
truncation; ``completion_tokens`` the generated tokens of all samples up to and including the
end-of-sequence token (a greedy text is computed once, whatever ``n``); ``seconds`` is the wall time of a ``generate`` call split evenly over its
requests. torch and transformers are imported only when a backend loads its model.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

from registry.adapters.backends.base import Backend, GenerationRequest, GenerationResult
from registry.adapters.config import DeviceName, LocalModelConfig, PositiveInt
from registry.adapters.models.local import model_folder, model_folder_sha256, resolve_device
from registry.errors import InvalidInput

Dtype = Literal["float32", "bfloat16"]
DTYPES: tuple[Dtype, ...] = get_args(Dtype)
DEFAULT_BATCH_SIZE = 8
DEFAULT_MAX_INPUT_TOKENS = 1024


class TransformersConfig(LocalModelConfig):
    """Keys of the ``transformers`` backend (module docstring)."""

    what: ClassVar[str] = "backend 'transformers'"

    device: DeviceName = "cpu"
    """``cpu`` | ``auto`` (CUDA when available) | ``cuda`` | ``cuda:N``."""
    dtype: Dtype = "float32"
    """Weights' dtype."""
    batch_size: PositiveInt = DEFAULT_BATCH_SIZE
    """Prompts per greedy ``generate`` call."""
    max_input_tokens: PositiveInt = DEFAULT_MAX_INPUT_TOKENS
    """Longer prompts lose tokens from the left."""

# --------------------------------------------------------------------------- loaded models
@dataclass
class LoadedLM:
    """Tokenizer and model of one folder on one device in one dtype (shared per process)."""

    tokenizer: Any
    model: Any
    device: str
    max_positions: int | None
    """The model's position limit (``max_position_embeddings``), when it has one."""


_LOADED: dict[tuple[str, str, str], LoadedLM] = {}
_LOAD_LOCK = threading.Lock()


@contextmanager
def _no_progress_bar() -> Iterator[None]:
    """No "Loading weights" bar in CLI output; the caller's setting comes back afterwards."""
    from transformers.utils import logging as hf_logging

    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bar:
            hf_logging.enable_progress_bar()


def load_lm(folder: str | Path, device: str = "cpu", dtype: Dtype = "float32") -> LoadedLM:
    """The folder's causal LM and tokenizer, loaded once per process per (folder, device, dtype)."""
    path = model_folder(folder)
    dev = resolve_device(device)
    key = (str(path.resolve()), dev, dtype)
    with _LOAD_LOCK:
        if key in _LOADED:
            return _LOADED[key]
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            with _no_progress_bar():
                tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
                model = AutoModelForCausalLM.from_pretrained(
                    str(path), local_files_only=True, use_safetensors=True, trust_remote_code=False,
                    dtype=getattr(torch, dtype))
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidInput(f"cannot load the causal LM: {exc}", file=path) from exc
        if not getattr(tokenizer, "chat_template", None):
            raise InvalidInput("the tokenizer has no chat template", file=path,
                               hint="use an instruction-tuned model, or set tokenizer.chat_template and save it")
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        model.eval().to(dev)
        limit = getattr(model.config, "max_position_embeddings", None)
        loaded = LoadedLM(tokenizer=tokenizer, model=model, device=dev,
                          max_positions=limit if isinstance(limit, int) and limit > 0 else None)
        _LOADED[key] = loaded
        return loaded


def clear_loaded() -> None:
    """Forget every loaded model of this process (frees their memory once unreferenced)."""
    with _LOAD_LOCK:
        _LOADED.clear()


# --------------------------------------------------------------------------- the backend
@dataclass
class _Prompt:
    index: int
    request: GenerationRequest
    ids: list[int]
    truncated: int


def _cut_at_stop(text: str, stop: Sequence[str] | None) -> tuple[str, bool]:
    """``text`` up to the first occurrence of any stop string, and whether it was cut."""
    cuts = [i for i in (text.find(s) for s in stop or () if s) if i >= 0]
    return (text[:min(cuts)], True) if cuts else (text, False)


@contextmanager
def _seeded(seed: int | None, device: str) -> Iterator[None]:
    """Fork torch's RNG (CPU and, on CUDA, that device) and seed it: samples depend on ``seed`` alone."""
    import torch

    devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int.from_bytes(os.urandom(8), "little") >> 1 if seed is None else int(seed))
        yield


class TransformersBackend(Backend):
    """A local causal LM run in-process with ``transformers`` (see the module docstring)."""

    name = "transformers"

    Config = TransformersConfig
    local_weights = True

    def __init__(self, config: Mapping[str, Any] | TransformersConfig) -> None:
        super().__init__(config)
        settings: TransformersConfig = self.settings
        self.folder = model_folder(settings.model)
        self.device: str = settings.device
        self.dtype: Dtype = settings.dtype
        self.batch_size = settings.batch_size
        self.max_input_tokens = settings.max_input_tokens
        self._lm: LoadedLM | None = None
        self._choice_ids: dict[str, tuple[tuple[int, ...], ...]] = {}

    @property
    def lm(self) -> LoadedLM:
        """The loaded model (loaded on first use, shared with other backends on the same folder)."""
        if self._lm is None:
            self._lm = load_lm(self.folder, self.device, self.dtype)
        return self._lm

    def fingerprint(self) -> Mapping[str, Any]:
        """Backend name, content hash of the model folder (not its path), dtype and input limit."""
        return {"backend": self.name, "model_sha256": model_folder_sha256(self.folder), "dtype": self.dtype,
                "max_input_tokens": self.max_input_tokens}

    def close(self) -> None:
        """Drop this backend's reference (the per-process cache keeps the model; see :func:`clear_loaded`)."""
        self._lm = None

    # ------------------------------------------------------------------ prompts
    def render_prompt(self, messages: Sequence[Mapping[str, str]]) -> str:
        """The prompt text: ``messages`` through the chat template, with the generation prompt."""
        return self.lm.tokenizer.apply_chat_template([dict(m) for m in messages], tokenize=False,
                                                     add_generation_prompt=True)

    def _prompt(self, index: int, request: GenerationRequest) -> _Prompt:
        if request.n < 1:
            raise InvalidInput(f"n must be at least 1, got {request.n}", row=index, field="n")
        if request.temperature < 0 or not 0 < request.top_p <= 1:
            raise InvalidInput("temperature must be ≥ 0 and top_p in (0, 1]", row=index, field="temperature")
        ids = self.lm.tokenizer(self.render_prompt(request.messages), add_special_tokens=False)["input_ids"]
        limit = self.max_input_tokens
        if self.lm.max_positions is not None:
            limit = max(1, min(limit, self.lm.max_positions - max(1, request.max_tokens)))
        cut = max(0, len(ids) - limit)
        return _Prompt(index, request, ids[cut:], cut)

    def _spellings(self, choice: str) -> tuple[tuple[int, ...], ...]:
        """Token ids of ``choice`` without and with a leading space (distinct spellings)."""
        if choice not in self._choice_ids:
            tok = self.lm.tokenizer
            spellings: list[tuple[int, ...]] = []
            for text in (choice, " " + choice):
                ids = tuple(tok(text, add_special_tokens=False)["input_ids"])
                if ids and ids not in spellings:
                    spellings.append(ids)
            if not spellings:
                raise InvalidInput(f"choice {choice!r} has no tokens", field="choices")
            self._choice_ids[choice] = tuple(spellings)
        return self._choice_ids[choice]

    def _choice_logprobs(self, batch: Sequence[_Prompt], first_steps: Sequence[Any], cache: Any, mask: Any,
                         n: int) -> list[tuple[dict, str] | None]:
        """Per prompt of ``batch``: (log P(choice | prompt) per choice, the rule used) or None when it
        asks for no choices (module docstring). ``first_steps`` = log-softmax of each prompt's first
        generation step; ``cache`` = the generation's key/value cache cropped to the (left-padded)
        prompts, ``mask`` their attention mask, ``n`` the sequences per prompt in the cache. A
        multi-token spelling's later tokens are scored by one forward pass of the spelling (minus its
        last token) over a copy of that cache, for all the rows that need it at once."""
        import copy

        import torch

        wanted = {i: {c: self._spellings(c) for c in p.request.choices} for i, p in enumerate(batch)
                  if p.request.choices}
        rows_of: dict[tuple[int, ...], list[int]] = {}
        for i, spellings in wanted.items():
            for sp in {s for v in spellings.values() for s in v if len(s) > 1}:
                rows_of.setdefault(sp, []).append(i)
        tail: dict[tuple[int, tuple[int, ...]], float] = {}
        for sp, rows in rows_of.items():
            lm = self.lm
            k = len(sp) - 1
            c = copy.deepcopy(cache)
            c.batch_select_indices(torch.tensor([r * n for r in rows], device=lm.device))
            m = mask[rows]
            ids = torch.tensor([list(sp[:-1])] * len(rows), dtype=torch.long)
            am = torch.cat([m, torch.ones((len(rows), k), dtype=torch.long)], dim=1)
            pos = m.sum(dim=1, keepdim=True) + torch.arange(k)
            with torch.inference_mode():
                logits = lm.model(input_ids=ids.to(lm.device), attention_mask=am.to(lm.device),
                                  position_ids=pos.to(lm.device), past_key_values=c, use_cache=True).logits
            logp = torch.log_softmax(logits.float(), dim=-1).cpu()
            nxt = torch.tensor(sp[1:])
            for j, r in enumerate(rows):
                tail[(r, sp)] = float(logp[j, torch.arange(k), nxt].sum())
        out: list[tuple[dict, str] | None] = [None] * len(batch)
        for i, spellings in wanted.items():
            values = {}
            for choice, sps in spellings.items():
                parts = torch.tensor([float(first_steps[i][s[0]]) + tail.get((i, s), 0.0) for s in sps])
                values[choice] = float(torch.logsumexp(parts, dim=0))
            long = any(len(s) > 1 for sps in spellings.values() for s in sps)
            out[i] = (values, "sequence" if long else "first-token")
        return out

    # ------------------------------------------------------------------ generation
    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Completions for ``requests`` in order: greedy ones batched, sampled ones one call each."""
        prompts = [self._prompt(i, r) for i, r in enumerate(requests)]
        results: list[GenerationResult | None] = [None] * len(prompts)
        greedy = [p for p in prompts if p.request.temperature == 0]
        # Same max_tokens in a batch (no wasted steps); by length inside it (little padding).
        greedy.sort(key=lambda p: (p.request.max_tokens, len(p.ids)))
        batch: list[_Prompt] = []
        for p in greedy:
            if batch and (len(batch) == self.batch_size or batch[-1].request.max_tokens != p.request.max_tokens):
                self._run(batch, results)
                batch = []
            batch.append(p)
        if batch:
            self._run(batch, results)
        for p in prompts:
            if p.request.temperature > 0:
                with _seeded(p.request.seed, self.lm.device):
                    self._run([p], results)
        return results  # type: ignore[return-value] - every index filled above

    def _run(self, batch: Sequence[_Prompt], results: list[GenerationResult | None]) -> None:
        """One ``generate`` call for ``batch`` (left-padded); fills ``results`` at the prompts' indices."""
        import torch

        lm, tok = self.lm, self.lm.tokenizer
        first = batch[0].request
        sampling = first.temperature > 0
        n = first.n if sampling else 1  # greedy samples are all the same text
        width = max(len(p.ids) for p in batch)
        ids = torch.full((len(batch), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, p in enumerate(batch):
            ids[row, width - len(p.ids):] = torch.tensor(p.ids, dtype=torch.long)
            mask[row, width - len(p.ids):] = 1
        kwargs: dict[str, Any] = {"do_sample": False}
        if sampling:
            kwargs = {"do_sample": True, "temperature": first.temperature, "top_p": first.top_p, "top_k": 0,
                      "num_return_sequences": n}
        eos = tok.eos_token_id
        start = time.perf_counter()
        with torch.inference_mode():
            out = lm.model.generate(
                input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device),
                max_new_tokens=max(1, first.max_tokens), pad_token_id=tok.pad_token_id, eos_token_id=eos,
                return_dict_in_generate=True, output_logits=True, **kwargs)
        seconds = (time.perf_counter() - start) / len(batch)
        new = out.sequences[:, width:].cpu().tolist()
        first_logprobs = torch.log_softmax(out.logits[0].float(), dim=-1).cpu()
        cache = getattr(out, "past_key_values", None)
        if cache is not None and any(p.request.choices for p in batch):
            surplus = cache.get_seq_length() - width
            if surplus > 0:
                cache.crop(-surplus)  # the prompts only: multi-token choices continue from there
        choice_scores = self._choice_logprobs(batch, [first_logprobs[row * n] for row in range(len(batch))],
                                              cache, mask, n)
        for row, p in enumerate(batch):
            req = p.request
            texts, reasons, completion = [], [], 0
            for j in range(n):
                gen = new[row * n + j][:max(0, req.max_tokens)]
                end = gen.index(eos) + 1 if eos in gen else len(gen)
                completion += end
                text, cut = _cut_at_stop(tok.decode(gen[:end], skip_special_tokens=True), req.stop)
                texts.append(text)
                reasons.append("stop" if cut or eos in gen else "length")
            if not sampling:  # one greedy text computed, repeated n times
                texts, reasons = texts * req.n, reasons * req.n
            choice_logprobs = None
            extra: dict[str, Any] = {"truncated_prompt_tokens": p.truncated} if p.truncated else {}
            if choice_scores[row] is not None:
                choice_logprobs, extra["choice_scoring"] = choice_scores[row]
            results[p.index] = GenerationResult(
                texts=tuple(texts), prompt_tokens=len(p.ids), completion_tokens=completion, seconds=seconds,
                choice_logprobs=choice_logprobs, finish_reasons=tuple(reasons), extra=extra)

