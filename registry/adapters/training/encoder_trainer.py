"""Multitask fine-tuning of the encoder scorer (torch): MiniLM + mean pooling + three scalar heads.

One forward pass per step over every sequence of the batch (a pairwise example is two sequences,
its responses with the same instruction); per example the logit of its task type's head —
pairwise: the Bradley–Terry margin ``s(a) − s(b)``, pointwise / classification: ``s`` — and one
loss, binary cross-entropy against the unified target (see :mod:`registry.domain.training`).

CPU budget (STACK.md: full fine-tuning of MiniLM at batch 16 pairs, length 256 costs ≈ 2.5 s a
step). What keeps a 20,000-example mixture within tens of minutes on 2 cores:

* ``max_length`` 128 (attention and activations shrink; texts are truncated longest-first);
* dynamic padding with length bucketing: examples are sorted by length inside chunks of 64
  batches, cut into batches, and the batches are shuffled (seeded) — little padding, still mixed;
* only the top ``train_layers`` (default 2 of 6) transformer layers train: the frozen lower layers
  run without building an autograd graph (no activations kept, no backward through them) and in
  eval mode (no dropout);
* one epoch by default;
* ``train_layers=0`` (heads only, a linear probe of the frozen encoder): every distinct
  (instruction, response) text is encoded **once** per process (inference mode, length-sorted
  batches) and its pooled vector cached; the heads then train on the cached vectors, so extra
  epochs, tail-patch probes and retraining on a re-weighted subset of the same rows cost almost
  nothing beyond the first encoding pass.

Deterministic: data order, dropout and head initialisation all come from the seed; the saved
weights of two runs with the same seed and data are byte-identical (on the same machine/threads).
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from registry.adapters.evaluators.encoder import (
    BUILTIN_MINILM,
    ENCODER_SUBFOLDER,
    FORMAT,
    HEAD_FILE,
    MULTI_HEAD_VERSION,
    SCORER_FILE,
    encoder_dir,
    read_scorer_config,
)
from registry.adapters.models.local import check_no_pickles, resolve_device
from registry.adapters.training.batching import plan_batches
from registry.domain.training import NEGATIVE_LABELS, TrainConfig, UnifiedExample
from registry.errors import InvalidInput

TASKS = ("pairwise", "pointwise", "classification")
HEAD_PREFIX = {"pairwise": "", "pointwise": "pointwise", "classification": "classification"}
"""Tensor name prefix of each head in ``head.safetensors`` (the pairwise head keeps the plain
``weight``/``bias`` names of single-head checkpoints)."""
_TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                    "added_tokens.json", "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model")
Progress = Callable[[int, int, float], None]
"""``(step, total_steps, running loss)``."""


_FEATURES: dict[tuple[str, int], dict[bytes, torch.Tensor]] = {}
"""Pooled vectors of the frozen encoder per (encoder folder, max_length), keyed by text hash."""


def _text_key(instruction: str, response: str) -> bytes:
    import hashlib

    return hashlib.sha1(instruction.encode("utf-8") + b"\0\1\0" + response.encode("utf-8")).digest()


def _key(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


class EncoderTrainer:
    """The trainable scorer: tokenizer, encoder, three heads, optimizer state per run."""

    def __init__(self, config: TrainConfig, init_checkpoint: Path | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        self.config = config
        self.device = resolve_device(config.device)
        if config.threads:
            torch.set_num_threads(int(config.threads))
        self.init_checkpoint = Path(init_checkpoint) if init_checkpoint else None
        if self.init_checkpoint is not None:
            check_no_pickles(self.init_checkpoint)
            meta = read_scorer_config(self.init_checkpoint)
            self.encoder_path = encoder_dir(self.init_checkpoint, meta)
            self.encoder_ref = meta["encoder"]
        else:
            meta = None
            self.encoder_path = encoder_dir(Path("."), {"encoder": BUILTIN_MINILM})
            self.encoder_ref = BUILTIN_MINILM
        hf_logging.disable_progress_bar()
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.encoder_path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(self.encoder_path), local_files_only=True, use_safetensors=True,
                                               trust_remote_code=False).to(self.device)
        hidden = int(self.model.config.hidden_size)
        self.hidden = hidden
        self.uses_token_types = "token_type_ids" in getattr(self.tokenizer, "model_input_names", ())
        torch.manual_seed(config.seed)
        self.heads = nn.ModuleDict({t: nn.Linear(hidden, 1) for t in TASKS}).to(self.device)
        if meta is not None:
            self._load_heads(meta)
        layers = self._layers()
        k = min(config.train_layers, len(layers)) if layers is not None else 0
        if config.train_layers and layers is None:
            raise InvalidInput("this encoder has no encoder.layer list; use train_layers 0", field="train_layers")
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.trained_layers = list(layers[len(layers) - k:]) if k else []
        for layer in self.trained_layers:
            for p in layer.parameters():
                p.requires_grad_(True)
        self.encoder_changed = False

    # ------------------------------------------------------------------ set-up helpers
    def _layers(self):
        enc = getattr(self.model, "encoder", None)
        return getattr(enc, "layer", None)

    def _load_heads(self, meta: dict[str, Any]) -> None:
        from safetensors.torch import load_file

        tensors = load_file(str(self.init_checkpoint / HEAD_FILE))
        prefixes = meta.get("heads") or {t: "" for t in TASKS}  # a single-head checkpoint seeds all three
        with torch.no_grad():
            for t in TASKS:
                prefix = prefixes.get(t, "")
                w, b = tensors.get(_key(prefix, "weight")), tensors.get(_key(prefix, "bias"))
                if w is None or b is None or tuple(w.shape) != (1, self.hidden):
                    raise InvalidInput(f"head {t!r} missing or misshapen", file=self.init_checkpoint / HEAD_FILE)
                self.heads[t].weight.copy_(w)
                self.heads[t].bias.copy_(b)

    # ------------------------------------------------------------------ data
    def encode(self, examples: Sequence[UnifiedExample]) -> list[list[tuple[list[int], list[int]]]]:
        """Token ids per example: one list per sequence (two for pairwise), truncated longest-first."""
        firsts, seconds, owner = [], [], []
        for i, ex in enumerate(examples):
            for r in ex.responses:
                firsts.append(ex.instruction)
                seconds.append(r)
                owner.append(i)
        limit = getattr(self.model.config, "max_position_embeddings", None) or self.config.max_length
        enc = self.tokenizer(firsts, seconds, truncation="longest_first",
                             max_length=min(self.config.max_length, int(limit)), padding=False,
                             return_attention_mask=False, return_token_type_ids=True)
        out: list[list[tuple[list[int], list[int]]]] = [[] for _ in examples]
        types = enc.get("token_type_ids")
        for j, i in enumerate(owner):
            ids = enc["input_ids"][j]
            out[i].append((ids, types[j] if types is not None else [0] * len(ids)))
        return out

    def _collate(self, seqs: list[tuple[list[int], list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(ids) for ids, _ in seqs)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        types = torch.zeros((len(seqs), width), dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for j, (a, t) in enumerate(seqs):
            ids[j, :len(a)] = torch.tensor(a, dtype=torch.long)
            types[j, :len(t)] = torch.tensor(t, dtype=torch.long)
            mask[j, :len(a)] = 1
        batch = {"input_ids": ids, "attention_mask": mask}
        if self.uses_token_types:
            batch["token_type_ids"] = types
        return {k: v.to(self.device) for k, v in batch.items()}

    def _pooled(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def _logits(self, examples: Sequence[UnifiedExample], tokens: Sequence[list], idx: Sequence[int]) -> torch.Tensor:
        """One logit per example of ``idx`` (its task type's head; the BT margin for pairs)."""
        seqs, spans = [], []
        for i in idx:
            spans.append((len(seqs), len(tokens[i])))
            seqs.extend(tokens[i])
        pooled = self._pooled(self._collate(seqs))
        out = []
        for i, (start, n) in zip(idx, spans):
            head = self.heads[examples[i].task_type]
            s = head(pooled[start:start + n]).squeeze(-1)
            out.append(s[0] - s[1] if n == 2 else s[0])
        return torch.stack(out)

    # ------------------------------------------------------------------ training
    def train(self, examples: Sequence[UnifiedExample], *, on_progress: Progress | None = None) -> dict[str, float]:
        """Fine-tune on ``examples`` for ``config.epochs`` (or ``max_steps``); returns training metrics."""
        cfg = self.config
        if not examples:
            raise InvalidInput("nothing to train on: the mixture selected no rows", field="components")
        t0 = time.perf_counter()
        if not self.trained_layers:
            return self._train_heads(examples, t0, on_progress)
        tokens = self.encode(examples)
        torch.manual_seed(cfg.seed)
        plan = plan_batches([max(len(s[0]) for s in t) for t in tokens], batch_size=cfg.batch_size,
                            epochs=cfg.epochs, max_steps=cfg.max_steps, rng=random.Random(cfg.seed))
        total = len(plan)
        params = [{"params": list(self.heads.parameters()), "lr": cfg.head_lr, "weight_decay": 0.0}]
        enc_params = [p for layer in self.trained_layers for p in layer.parameters()]
        if enc_params:
            params.append({"params": enc_params, "lr": cfg.lr, "weight_decay": cfg.weight_decay})
        opt = torch.optim.AdamW(params)
        warm = max(1, int(total * cfg.warmup_ratio))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: min((step + 1) / warm, max(0.0, (total - step) / max(1, total - warm))))
        self.model.eval()  # frozen layers: no dropout
        for layer in self.trained_layers:
            layer.train()
        self.heads.train()
        loss_fn = nn.BCEWithLogitsLoss(reduction="none")
        sums = {t: 0.0 for t in TASKS}
        counts = {t: 0 for t in TASKS}
        tail = {t: [0.0, 0] for t in TASKS}  # loss over the last 20% of steps
        running = None
        seqs_seen = 0
        for step, idx in enumerate(plan):
            targets = torch.tensor([examples[i].target for i in idx], dtype=torch.float32, device=self.device)
            with torch.set_grad_enabled(True):
                logits = self._logits(examples, tokens, idx)
                losses = loss_fn(logits, targets)
                loss = losses.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for g in params for p in g["params"]], 1.0)
            opt.step()
            sched.step()
            seqs_seen += sum(len(tokens[i]) for i in idx)
            for i, value in zip(idx, losses.detach().cpu().tolist()):
                t = examples[i].task_type
                sums[t] += value
                counts[t] += 1
                if step >= total * 0.8:
                    tail[t][0] += value
                    tail[t][1] += 1
            running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
            if on_progress:
                on_progress(step + 1, total, running)
        self.encoder_changed = self.encoder_changed or bool(enc_params and total)
        seconds = time.perf_counter() - t0
        rows = sum(len(b) for b in plan)
        metrics: dict[str, float] = {"steps": float(total), "rows_trained": float(rows),
                                     "sequences_trained": float(seqs_seen), "seconds": seconds,
                                     "rows_per_s": rows / seconds if seconds else float("nan")}
        for t in TASKS:
            if counts[t]:
                metrics[f"loss_{t}"] = sums[t] / counts[t]
            if tail[t][1]:
                metrics[f"final_loss_{t}"] = tail[t][0] / tail[t][1]
        return metrics

    # ------------------------------------------------------------------ frozen encoder: cached features
    @torch.inference_mode()
    def features(self, examples: Sequence[UnifiedExample], batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        """(pooled vectors [n_seq, hidden], sequence index per example [n, 2] with −1 for no second
        response) of the frozen encoder; texts encoded once per process and cached."""
        cache = _FEATURES.setdefault((str(self.encoder_path.resolve()), self.config.max_length), {})
        keys: list[bytes] = []
        index = torch.full((len(examples), 2), -1, dtype=torch.long)
        pos: dict[bytes, int] = {}
        missing: list[tuple[bytes, str, str]] = []
        for i, ex in enumerate(examples):
            for j, r in enumerate(ex.responses):
                k = _text_key(ex.instruction, r)
                if k not in pos:
                    pos[k] = len(keys)
                    keys.append(k)
                    if k not in cache:
                        missing.append((k, ex.instruction, r))
                index[i, j] = pos[k]
        if missing:
            self.model.eval()
            fake = [UnifiedExample("pointwise", "", "", instr, (resp,), 0.0, "") for _k, instr, resp in missing]
            tokens = self.encode(fake)
            order = sorted(range(len(fake)), key=lambda i: len(tokens[i][0][0]))
            for b in range(0, len(order), batch_size):
                idx = order[b:b + batch_size]
                pooled = self._pooled(self._collate([tokens[i][0] for i in idx])).float().cpu()
                for i, v in zip(idx, pooled):
                    cache[missing[i][0]] = v.clone()
        feats = torch.stack([cache[k] for k in keys]) if keys else torch.zeros((0, self.hidden))
        return feats.to(self.device), index.to(self.device)

    def _head_logits(self, feats: torch.Tensor, index: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        first = feats[index[:, 0]]
        second = feats[index[:, 1].clamp(min=0)]
        w = torch.cat([self.heads[t].weight for t in TASKS])  # [3, hidden]
        b = torch.cat([self.heads[t].bias for t in TASKS])
        s1 = (first @ w.T + b).gather(1, task_ids[:, None]).squeeze(1)
        s2 = (second @ w.T + b).gather(1, task_ids[:, None]).squeeze(1)
        return torch.where(index[:, 1] >= 0, s1 - s2, s1)

    def _train_heads(self, examples: Sequence[UnifiedExample], t0: float,
                     on_progress: Progress | None) -> dict[str, float]:
        """Heads-only training on the cached pooled vectors of the frozen encoder."""
        cfg = self.config
        feats, index = self.features(examples)
        encode_s = time.perf_counter() - t0
        task_ids = torch.tensor([TASKS.index(ex.task_type) for ex in examples], dtype=torch.long, device=self.device)
        targets = torch.tensor([ex.target for ex in examples], dtype=torch.float32, device=self.device)
        gen = torch.Generator().manual_seed(cfg.seed)
        n = len(examples)
        plan: list[torch.Tensor] = []
        epochs = math.ceil(cfg.epochs)
        for e in range(epochs):
            perm = torch.randperm(n, generator=gen)
            if e == epochs - 1 and cfg.epochs != epochs:
                perm = perm[:max(1, round(n * (cfg.epochs - (epochs - 1))))]
            plan.extend(perm[k:k + cfg.batch_size] for k in range(0, len(perm), cfg.batch_size))
        if cfg.max_steps is not None:
            plan = plan[:cfg.max_steps]
        total = len(plan)
        opt = torch.optim.AdamW(self.heads.parameters(), lr=cfg.head_lr, weight_decay=cfg.weight_decay)
        warm = max(1, int(total * cfg.warmup_ratio))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: min((step + 1) / warm, max(0.0, (total - step) / max(1, total - warm))))
        loss_fn = nn.BCEWithLogitsLoss(reduction="none")
        sums = torch.zeros(3)
        counts = torch.zeros(3)
        tail_sums = torch.zeros(3)
        tail_counts = torch.zeros(3)
        running = None
        for step, idx in enumerate(plan):
            idx = idx.to(self.device)
            losses = loss_fn(self._head_logits(feats, index[idx], task_ids[idx]), targets[idx])
            loss = losses.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            l_cpu, t_cpu = losses.detach().cpu(), task_ids[idx].cpu()
            sums.index_add_(0, t_cpu, l_cpu)
            counts.index_add_(0, t_cpu, torch.ones_like(l_cpu))
            if step >= total * 0.8:
                tail_sums.index_add_(0, t_cpu, l_cpu)
                tail_counts.index_add_(0, t_cpu, torch.ones_like(l_cpu))
            running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
            if on_progress and (step % 100 == 0 or step + 1 == total):
                on_progress(step + 1, total, running)
        seconds = time.perf_counter() - t0
        rows = int(sum(len(b) for b in plan))
        metrics: dict[str, float] = {"steps": float(total), "rows_trained": float(rows), "unique_rows": float(n),
                                     "sequences_encoded": float(feats.shape[0]), "encode_seconds": encode_s,
                                     "seconds": seconds, "rows_per_s": n / seconds if seconds else float("nan")}
        for k, t in enumerate(TASKS):
            if counts[k]:
                metrics[f"loss_{t}"] = float(sums[k] / counts[k])
            if tail_counts[k]:
                metrics[f"final_loss_{t}"] = float(tail_sums[k] / tail_counts[k])
        return metrics

    # ------------------------------------------------------------------ inference
    @torch.inference_mode()
    def logits(self, examples: Sequence[UnifiedExample], batch_size: int = 32) -> list[float]:
        """Logits of the examples (same heads as training), in eval mode."""
        if not self.trained_layers and not self.encoder_changed:
            feats, index = self.features(examples)
            task_ids = torch.tensor([TASKS.index(ex.task_type) for ex in examples], dtype=torch.long,
                                    device=self.device)
            return self._head_logits(feats, index, task_ids).float().cpu().tolist()
        tokens = self.encode(examples)
        was = [layer.training for layer in self.trained_layers]
        self.model.eval()
        out = [0.0] * len(examples)
        order = sorted(range(len(examples)), key=lambda i: max(len(s[0]) for s in tokens[i]))
        for k in range(0, len(order), batch_size):
            idx = order[k:k + batch_size]
            for i, v in zip(idx, self._logits(examples, tokens, idx).float().cpu().tolist()):
                out[i] = v
        for layer, w in zip(self.trained_layers, was):
            layer.train(w)
        return out

    # ------------------------------------------------------------------ saving
    def save(self, out_dir: Path, *, negative_labels: Sequence[str] = tuple(sorted(NEGATIVE_LABELS))) -> Path:
        """Write a multi-head encoder-scorer checkpoint (safetensors only) to ``out_dir``."""
        from safetensors.torch import save_file

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        tensors = {}
        for t in TASKS:
            tensors[_key(HEAD_PREFIX[t], "weight")] = self.heads[t].weight.detach().float().cpu().contiguous()
            tensors[_key(HEAD_PREFIX[t], "bias")] = self.heads[t].bias.detach().float().cpu().contiguous()
        save_file(tensors, str(out / HEAD_FILE), metadata={"format": FORMAT})
        if self.encoder_changed:
            enc_out = out / ENCODER_SUBFOLDER
            if enc_out.exists():
                shutil.rmtree(enc_out)
            self.model.save_pretrained(str(enc_out))
            for name in _TOKENIZER_FILES:  # byte copies: the tokenizer did not change
                if (self.encoder_path / name).is_file():
                    shutil.copyfile(self.encoder_path / name, enc_out / name)
            check_no_pickles(enc_out)
            encoder = ENCODER_SUBFOLDER
        elif self.encoder_ref == BUILTIN_MINILM:
            encoder = BUILTIN_MINILM
        else:  # heads-only fine-tune of a checkpoint that carries its own encoder: copy it unchanged
            shutil.copytree(self.encoder_path, out / ENCODER_SUBFOLDER, dirs_exist_ok=True)
            encoder = ENCODER_SUBFOLDER
        meta = {"format": FORMAT, "version": MULTI_HEAD_VERSION, "encoder": encoder, "pooling": "mean",
                "max_length": self.config.max_length, "head": {"in_features": self.hidden},
                "heads": dict(HEAD_PREFIX), "negative_labels": sorted(negative_labels)}
        (out / SCORER_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return out


__all__ = ["HEAD_PREFIX", "TASKS", "EncoderTrainer"]
