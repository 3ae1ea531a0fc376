"""LoRA fine-tuning of a causal-LM judge (torch + transformers + peft).

The model learns to continue a chat prompt with an answer: every training item is
``(messages, answer)``, rendered through the tokenizer's own chat template exactly as the
generation backends render a judging prompt (``add_generation_prompt=True``), followed by the
answer's assistant turn up to and including the end-of-turn token (so the judge learns to stop).
The loss is the cross-entropy of the answer tokens only (prompt and padding are masked with
-100). Prompts longer than ``max_length`` minus the answer lose tokens from the left, as the
backends cut them.

LoRA (peft): low-rank adapters on ``target_modules`` (``all-linear`` by default: every linear
layer except the output head); only the adapters train. :meth:`LoRATrainer.save` writes the
adapters merged into the base weights — a plain causal-LM folder (safetensors) that the
``transformers``, ``vllm`` and ``vllm-server`` backends load as they load any model — plus the
adapter alone in ``adapter/`` (``adapter_model.safetensors`` + ``adapter_config.json``). The base
folder's tokenizer, chat template and generation config are copied byte for byte.

Deterministic: adapter initialisation, dropout and data order come from the seed; two runs with
the same seed and data write identical weights (same machine and threads). Device: ``cpu`` by
default, ``cuda``/``auto`` on a GPU; ``bfloat16`` weights on request.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from registry.adapters.models.local import (
    WEIGHT_SUFFIXES,
    canonicalize_json,
    check_no_pickles,
    model_folder,
    resolve_device,
)
from registry.adapters.training.batching import plan_batches
from registry.domain.training import LoRAConfig
from registry.errors import InvalidInput

ADAPTER_SUBFOLDER = "adapter"
Progress = Callable[[int, int, float], None]
"""``(step, total_steps, running loss)``."""


@dataclass(frozen=True)
class ChatItem:
    """One training item: the prompt's chat messages and the answer the judge should give."""

    messages: tuple[Mapping[str, str], ...]
    answer: str
    task_type: str
    """For per-task losses in the metrics."""
    row: int = 0
    """The training-set row it renders (a pair shown in both orders is two items of one row)."""


class LoRATrainer:
    """A causal LM with LoRA adapters, its tokenizer and one training run's state."""

    def __init__(self, config: LoRAConfig, base_folder: Path) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        self.config = config
        self.base_folder = model_folder(base_folder)  # exists, safetensors weights, no pickles
        self.device = resolve_device(config.device)
        if config.threads:
            torch.set_num_threads(int(config.threads))
        hf_logging.disable_progress_bar()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.base_folder), local_files_only=True,
                                                           trust_remote_code=False)
            base = AutoModelForCausalLM.from_pretrained(str(self.base_folder), local_files_only=True,
                                                        use_safetensors=True, trust_remote_code=False,
                                                        dtype=getattr(torch, config.dtype))
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidInput(f"cannot load the causal LM: {exc}", file=self.base_folder) from exc
        if not getattr(self.tokenizer, "chat_template", None):
            raise InvalidInput("the tokenizer has no chat template", file=self.base_folder,
                               hint="train a judge from a chat model (its prompts go through the template)")
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None \
            else self.tokenizer.eos_token_id
        limit = getattr(base.config, "max_position_embeddings", None)
        self.max_length = min(config.max_length, int(limit)) if isinstance(limit, int) and limit > 0 \
            else config.max_length
        targets = config.target_modules if isinstance(config.target_modules, str) else list(config.target_modules)
        torch.manual_seed(config.seed)  # the adapters' A matrices are drawn here
        try:
            self.model = get_peft_model(base, LoraConfig(r=config.rank, lora_alpha=config.alpha,
                                                         lora_dropout=config.dropout, target_modules=targets,
                                                         bias="none", task_type="CAUSAL_LM"))
        except ValueError as exc:
            raise InvalidInput(f"cannot add LoRA adapters: {exc}", field="target_modules") from exc
        self.model.to(self.device)
        self.trainable_parameters = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        self.total_parameters = sum(p.numel() for p in self.model.parameters())

    # ------------------------------------------------------------------ data
    def _answer_text(self, messages: list[dict[str, str]], prompt: str, answer: str) -> str:
        """The text the chat template writes after the generation prompt for the answer's turn,
        cut after the end-of-sequence token (what follows it is never generated)."""
        full = self.tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": answer}],
                                                  tokenize=False)
        if not full.startswith(prompt):
            raise InvalidInput("the chat template does not extend the generation prompt with the assistant turn; "
                               "cannot tell the answer's tokens", file=self.base_folder, field="chat_template")
        rest = full[len(prompt):]
        eos = self.tokenizer.eos_token
        if eos and eos in rest:
            rest = rest[:rest.index(eos) + len(eos)]
        return rest

    def encode(self, items: Sequence[ChatItem]) -> list[tuple[list[int], int]]:
        """Per item: (token ids of prompt + answer, number of answer tokens at the end)."""
        out = []
        for i, item in enumerate(items):
            messages = [dict(m) for m in item.messages]
            prompt = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            prompt_ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
            answer_ids = self.tokenizer(self._answer_text(messages, prompt, item.answer),
                                        add_special_tokens=False)["input_ids"]
            if not answer_ids or len(answer_ids) >= self.max_length:
                raise InvalidInput(f"the answer needs {len(answer_ids)} tokens; max_length is {self.max_length}",
                                   row=i, field="max_length")
            keep = self.max_length - len(answer_ids)
            out.append((prompt_ids[-keep:] + answer_ids, len(answer_ids)))
        return out

    def _collate(self, seqs: Sequence[tuple[list[int], int]]) -> dict[str, torch.Tensor]:
        width = max(len(ids) for ids, _ in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        labels = torch.full((len(seqs), width), -100, dtype=torch.long)
        for j, (toks, n_answer) in enumerate(seqs):
            n = len(toks)
            ids[j, :n] = torch.tensor(toks, dtype=torch.long)
            mask[j, :n] = 1
            labels[j, n - n_answer:n] = ids[j, n - n_answer:n]
        return {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device), "labels": labels.to(self.device)}

    def _losses(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean answer-token cross-entropy of each sequence of the batch."""
        logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        labels = batch["labels"][:, 1:]
        logp = torch.nn.functional.cross_entropy(logits[:, :-1].float().transpose(1, 2), labels, ignore_index=-100,
                                                 reduction="none")
        counted = (labels != -100).float()
        return (logp * counted).sum(1) / counted.sum(1).clamp(min=1.0)

    # ------------------------------------------------------------------ training
    def train(self, items: Sequence[ChatItem], *, on_progress: Progress | None = None) -> dict[str, float]:
        """Train the adapters on ``items`` for ``epochs`` (or ``max_steps``); returns training metrics."""
        cfg = self.config
        if not items:
            raise InvalidInput("nothing to train on: the mixture gave no rows the judge's protocols can answer",
                               field="components")
        t0 = time.perf_counter()
        tokens = self.encode(items)
        torch.manual_seed(cfg.seed)
        plan = plan_batches([len(ids) for ids, _ in tokens], batch_size=cfg.batch_size, epochs=cfg.epochs,
                            max_steps=cfg.max_steps, rng=random.Random(cfg.seed))
        total = len(plan)
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        warm = max(1, int(total * cfg.warmup_ratio))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: min((step + 1) / warm, max(0.0, (total - step) / max(1, total - warm))))
        self.model.train()
        sums: dict[str, list[float]] = {}
        first = last = None
        tail = [0.0, 0]
        running = None
        answer_tokens = prompt_tokens = 0
        for step, idx in enumerate(plan):
            batch = self._collate([tokens[i] for i in idx])
            losses = self._losses(batch)
            loss = losses.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            value = loss.item()
            first = value if first is None else first
            last = value
            if step >= total * 0.8:
                tail[0] += value
                tail[1] += 1
            for i, v in zip(idx, losses.detach().cpu().tolist()):
                s = sums.setdefault(items[i].task_type, [0.0, 0])
                s[0] += v
                s[1] += 1
                answer_tokens += tokens[i][1]
                prompt_tokens += len(tokens[i][0]) - tokens[i][1]
            running = value if running is None else 0.9 * running + 0.1 * value
            if on_progress:
                on_progress(step + 1, total, running)
        self.model.eval()
        seconds = time.perf_counter() - t0
        rows = sum(len(b) for b in plan)
        distinct = len({items[i].row for b in plan for i in b})
        metrics: dict[str, float] = {
            "steps": float(total), "rows_trained": float(rows), "unique_rows": float(len(items)),
            "distinct_rows_seen": float(distinct),
            "prompt_tokens": float(prompt_tokens), "answer_tokens": float(answer_tokens), "seconds": seconds,
            "rows_per_s": rows / seconds if seconds else float("nan"),
            "first_loss": float(first if first is not None else float("nan")),
            "last_loss": float(last if last is not None else float("nan")),
            "trainable_parameters": float(self.trainable_parameters),
            "total_parameters": float(self.total_parameters)}
        if tail[1]:
            metrics["final_loss"] = tail[0] / tail[1]
        for t, (s, n) in sorted(sums.items()):
            metrics[f"loss_{t}"] = s / n
        return metrics

    # ------------------------------------------------------------------ saving
    def save(self, out_dir: Path) -> Path:
        """Write the merged model (safetensors), the base's tokenizer files and ``adapter/`` to ``out_dir``.

        Merging folds the adapters into the base weights in place: call it once, after training."""
        from transformers.utils import logging as hf_logging

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        hf_logging.disable_progress_bar()
        # the adapter alone (LoRA matrices; no copy of the base's embedding or output layers)
        self.model.save_pretrained(str(out / ADAPTER_SUBFOLDER), safe_serialization=True,
                                   save_embedding_layers=False)
        (out / ADAPTER_SUBFOLDER / "README.md").unlink(missing_ok=True)  # peft's placeholder card; ours is above
        merged = self.model.merge_and_unload()
        merged.save_pretrained(str(out), safe_serialization=True)
        for path in sorted(self.base_folder.iterdir()):  # tokenizer, chat template, generation config: unchanged
            if path.is_file() and path.name != "config.json" and not path.name.endswith(WEIGHT_SUFFIXES) \
                    and path.name != "README.md":
                shutil.copyfile(path, out / path.name)
        canonicalize_json(out / "config.json")
        check_no_pickles(out)
        return out


__all__ = ["ADAPTER_SUBFOLDER", "ChatItem", "LoRATrainer"]
