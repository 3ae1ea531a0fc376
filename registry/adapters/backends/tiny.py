"""Tiny generative checkpoints built entirely locally, for tests and demos (no hub, no download).

:func:`build_tiny_causal_lm` trains a byte-level BPE tokenizer on a small built-in corpus of
judge-like text, wraps it as a ``PreTrainedTokenizerFast`` with ``<s>``/``</s>``/``<pad>`` and a
chat template, creates a randomly initialised ``LlamaForCausalLM`` from a seeded generator and
saves both with ``save_pretrained`` (safetensors). The model says nothing sensible, but it has the
exact shape of a real judge checkpoint: ``TransformersBackend`` loads, batches, samples and scores
choice log-probabilities on it in well under a second.

The same arguments always give the same bytes (tokenizer training, weights, JSON files), so the
checkpoint's content hash is reproducible; sizes are arguments so that checkpoints of different
sizes (e.g. hidden 64 × 2 layers and hidden 128 × 4 layers) can be registered side by side.
"""

from __future__ import annotations

import os
from pathlib import Path

BOS, EOS, PAD = "<s>", "</s>", "<pad>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = (BOS, EOS, PAD, *ROLE_TOKENS)

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)
"""One turn per message: ``<|role|>`` newline content ``</s>``; the generation prompt opens an
assistant turn. Roles: system, user, assistant."""

_CORPUS = """\
You are a helpful and precise assistant for checking the quality of the outputs of AI assistants.
Select the output, Output (a) or Output (b), that is better for the given instruction.
Output (a) is better. Output (b) is better. Output (a) follows the instruction more closely.
Output (b) is more helpful, accurate and harmless. Both outputs are equally good: it is a tie.
Which is better, Output (a) or Output (b)? Your answer should ONLY contain: Output (a) or Output (b).
Please act as an impartial judge and evaluate the quality of the responses provided by two AI
assistants to the user question displayed below. You should choose the assistant that follows the
user's instructions and answers the user's question better. Avoid any position biases and ensure
that the order in which the responses were presented does not influence your decision. Do not allow
the length of the responses to influence your evaluation. Be as objective as possible.
After providing your explanation, output your final verdict by strictly following this format:
"[[A]]" if assistant A is better, "[[B]]" if assistant B is better, and "[[C]]" for a tie.
[[A]] [[B]] [[C]] [[A]] [[B]] A B A B tie tie A B tie
Answer with A or B. Answer: A. Answer: B. Answer: tie. The better response is A. The better response is B.
Rate the response on a scale of 1 to 10. Rating: 1 Rating: 2 Rating: 3 Rating: 4 Rating: 5
Rating: 6 Rating: 7 Rating: 8 Rating: 9 Rating: 10 Rating: [[7]] Rating: [[10]] Score: 8/10
1 2 3 4 5 6 7 8 9 10 one two three four five six seven eight nine ten
Does the response answer the question? Yes or No. Yes. No. The response is correct. The response is
incorrect. The response is harmful. The response is safe. The response is relevant and concise.
[User Question]
What is the capital of France?
[The Start of Assistant A's Answer]
The capital of France is Paris.
[The End of Assistant A's Answer]
[The Start of Assistant B's Answer]
Paris is the capital and most populous city of France, with about two million inhabitants.
[The End of Assistant B's Answer]
Explanation: Assistant A answers directly. Assistant B adds useful context. Both are correct.
Final verdict: [[B]]
# Instruction:
Write a short poem about the sea.
# Output (a):
The sea is wide, the sea is deep, its waves will rock the world to sleep.
# Output (b):
Water. Blue. Big.
# Which is better, Output (a) or Output (b)?
Output (a)
# Instruction:
Sort the numbers 3, 1, 2 in ascending order.
# Output (a):
3, 2, 1
# Output (b):
1, 2, 3
# Which is better, Output (a) or Output (b)?
Output (b)
### Instruction: Summarize the text in one sentence.
### Response: The text describes how a small team built a registry for automatic raters.
### Feedback: The summary is accurate and brief. [RESULT] 5
### Feedback: The summary misses the main point. [RESULT] 2
The quick brown fox jumps over the lazy dog. A judge compares two answers and picks the better one.
Human preference, agreement, accuracy, correlation, calibration, position bias, length bias.
"""
"""Built-in tokenizer-training text: judge prompts and verdict formats (MT-Bench, LLMBar,
Prometheus style), digits 1–10, ``Rating:``, ``[[A]]``, ``Output (a)``/``Output (b)``, A/B/tie."""


def _train_tokenizer(vocab_size: int):
    """A byte-level BPE ``tokenizers.Tokenizer`` trained on the built-in corpus (deterministic)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    # The corpus repeated line by line: counts (not new words) decide the merges.
    tok.train_from_iterator(_CORPUS.splitlines() * 4, trainer=trainer)
    return tok


def build_tiny_causal_lm(out_dir: Path, *, hidden_size: int = 64, layers: int = 2, vocab_size: int = 512,
                         heads: int = 4, intermediate_size: int | None = None,
                         max_position_embeddings: int = 1024, seed: int = 0) -> Path:
    """Write a tiny random-init Llama chat model (tokenizer + safetensors weights) to ``out_dir``.

    ``intermediate_size`` defaults to ``2 * hidden_size``. The weights come from ``torch``'s
    generator seeded with ``seed`` inside ``fork_rng`` (the caller's global RNG state is left as
    it was). Returns ``out_dir``. About 0.15 M parameters at the defaults, 0.8 M at hidden 128 × 4 layers.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    if hidden_size % heads:
        raise ValueError(f"hidden_size {hidden_size} must be a multiple of heads {heads}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=_train_tokenizer(vocab_size), bos_token=BOS,
                                        eos_token=EOS, pad_token=PAD, padding_side="left",
                                        model_max_length=max_position_embeddings,
                                        additional_special_tokens=list(ROLE_TOKENS))
    tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=intermediate_size or 2 * hidden_size,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=max_position_embeddings, tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = LlamaForCausalLM(config)
    model.eval()
    from transformers.utils import logging as hf_logging

    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Writing model shards" bar; restored below
    try:
        model.save_pretrained(out)
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    tokenizer.save_pretrained(out)
    _canonicalize_json(out)
    return out


def _canonicalize_json(folder: Path) -> None:
    """Rewrite the saved JSON files with sorted keys, so their bytes do not depend on dict order."""
    from registry.adapters.models.local import canonicalize_json

    for path in sorted(folder.glob("*.json")):
        canonicalize_json(path)
