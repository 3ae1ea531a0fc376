"""The transformers backend on a tiny Llama chat model built in the test session (CPU, offline).

The model is random-init, so its texts are gibberish; the tests check the mechanics a judge
relies on: chat template, batching with left padding, seeded sampling, choice log-probabilities,
cost reporting, safe loading.
"""

from __future__ import annotations

import hashlib
import math
import shutil

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from registry.adapters.backends import build_backend  # noqa: E402
from registry.adapters.backends.base import GenerationRequest  # noqa: E402
from registry.adapters.backends.hf import TransformersBackend, model_folder_sha256  # noqa: E402
from registry.adapters.backends.tiny import build_tiny_causal_lm  # noqa: E402
from registry.errors import InvalidInput  # noqa: E402

QUESTIONS = (
    "Which is better, Output (a) or Output (b)?",
    "Rate the response on a scale of 1 to 10.",
    "Hi",
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants.",
)


def chat(question: str) -> tuple[dict[str, str], ...]:
    return ({"role": "system", "content": "You are a fair judge."}, {"role": "user", "content": question})


def req(question: str = QUESTIONS[0], **kw) -> GenerationRequest:
    return GenerationRequest(chat(question), **{"max_tokens": 8, **kw})


@pytest.fixture(scope="module")
def backend(tiny_lm_dir) -> TransformersBackend:
    return build_backend("transformers", {"model": str(tiny_lm_dir), "batch_size": 4})


def file_hashes(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_build_is_deterministic_and_sizes_differ(tiny_lm_dir, tmp_path):
    again = build_tiny_causal_lm(tmp_path / "again", seed=0)
    assert file_hashes(again) == file_hashes(tiny_lm_dir)
    assert {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"} <= set(file_hashes(again))
    # The fingerprint hashes content, not the path.
    assert model_folder_sha256(again) == model_folder_sha256(tiny_lm_dir)
    bigger = build_tiny_causal_lm(tmp_path / "bigger", hidden_size=128, layers=4, seed=0)
    assert (bigger / "model.safetensors").stat().st_size > (tiny_lm_dir / "model.safetensors").stat().st_size
    assert model_folder_sha256(bigger) != model_folder_sha256(tiny_lm_dir)
    fp = TransformersBackend({"model": str(again)}).fingerprint()
    assert fp["backend"] == "transformers" and str(tmp_path) not in str(fp)


def test_chat_template_is_applied(backend):
    prompt = backend.render_prompt(chat(QUESTIONS[0]))
    assert QUESTIONS[0] in prompt and "You are a fair judge." in prompt
    assert prompt.startswith("<s>") and prompt.endswith("<|assistant|>\n")
    [res] = backend.generate([req()])
    assert res.prompt_tokens == len(backend.lm.tokenizer(prompt, add_special_tokens=False)["input_ids"])


def test_generation_returns_n_texts_and_costs(backend):
    greedy, sampled = backend.generate([req(n=3), req(n=3, temperature=1.0, seed=1)])
    for res in (greedy, sampled):
        assert len(res.texts) == 3 and len(res.finish_reasons) == 3
        assert res.prompt_tokens > 0 and res.completion_tokens > 0 and res.seconds > 0
        assert set(res.finish_reasons) <= {"stop", "length"}
    assert len(set(greedy.texts)) == 1
    assert sampled.completion_tokens <= 3 * 8


def test_greedy_is_deterministic(backend):
    requests = [req(q, choices=("A", "B")) for q in QUESTIONS[:2]]
    first, second = backend.generate(requests), backend.generate(requests)
    assert [r.texts for r in first] == [r.texts for r in second]
    assert [r.choice_logprobs for r in first] == [r.choice_logprobs for r in second]


def test_sampling_is_reproducible_per_seed(backend):
    import torch

    state = torch.random.get_rng_state()
    a1, b1 = backend.generate([req(temperature=1.0, n=2, seed=1), req(temperature=1.0, n=2, seed=2)])
    # The same seed alone (another batch around it) gives the same samples.
    [a2] = backend.generate([req(temperature=1.0, n=2, seed=1)])
    assert a1.texts == a2.texts
    # A random-init model spreads its mass over ~500 tokens: two seeds agreeing on 8 tokens is
    # practically impossible.
    assert a1.texts != b1.texts
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's global RNG is untouched


def test_left_padded_batch_matches_one_by_one(backend):
    requests = [req(q, choices=("A", "B")) for q in QUESTIONS]
    assert len({backend.generate([r])[0].prompt_tokens for r in requests[:2]}) == 2  # really padded
    batched = backend.generate(requests)
    for r, b in zip(requests, batched, strict=True):
        [alone] = backend.generate([r])
        assert b.texts == alone.texts
        assert b.prompt_tokens == alone.prompt_tokens
        for c in ("A", "B"):
            assert b.choice_logprobs[c] == pytest.approx(alone.choice_logprobs[c], abs=1e-4)


def test_choice_logprobs(backend):
    choices = ("A", "B", "tie")
    greedy, sampled = backend.generate([req(choices=choices), req(choices=choices, temperature=0.7, seed=3)])
    for res in (greedy, sampled):
        lp = res.choice_logprobs
        assert set(lp) == set(choices)
        assert all(math.isfinite(v) and v <= 0 for v in lp.values())
        assert sum(math.exp(v) for v in lp.values()) <= 1 + 1e-6
    # Raw next-token logits: the sampling temperature does not change them.
    assert sampled.choice_logprobs == pytest.approx(greedy.choice_logprobs, abs=1e-5)
    # Multi-token choices sharing their first token are scored as whole sequences: distinct, exclusive.
    [res] = backend.generate([req(choices=("Output (a)", "Output (b)"))])
    assert res.extra["choice_scoring"] == "sequence"
    assert res.choice_logprobs["Output (a)"] != res.choice_logprobs["Output (b)"]
    assert math.exp(res.choice_logprobs["Output (a)"]) + math.exp(res.choice_logprobs["Output (b)"]) <= 1 + 1e-6
    [none] = backend.generate([req()])
    assert none.choice_logprobs is None


def test_stop_strings_and_left_truncation(backend, tiny_lm_dir):
    [plain] = backend.generate([req(max_tokens=12)])
    text = plain.texts[0]
    stop = text[2:4]
    [stopped] = backend.generate([req(max_tokens=12, stop=(stop,))])
    assert stopped.texts[0] == text[:text.find(stop)] and stopped.finish_reasons == ("stop",)

    short = TransformersBackend({"model": str(tiny_lm_dir), "max_input_tokens": 8})
    assert short.lm is backend.lm  # one load per (folder, device, dtype)
    [cut] = short.generate([req(QUESTIONS[3])])
    assert cut.prompt_tokens == 8 and cut.extra["truncated_prompt_tokens"] > 0


def test_refuses_pickles_and_bad_config(tiny_lm_dir, tmp_path):
    folder = tmp_path / "unsafe"
    shutil.copytree(tiny_lm_dir, folder)
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(InvalidInput, match="pickle"):
        TransformersBackend({"model": str(folder)})
    with pytest.raises(InvalidInput, match="dtype"):
        TransformersBackend({"model": str(tiny_lm_dir), "dtype": "float16"})
    with pytest.raises(InvalidInput, match="batch_size"):
        TransformersBackend({"model": str(tiny_lm_dir), "batch_size": 0})


def test_bfloat16_on_auto_device(tiny_lm_dir, backend):
    half = TransformersBackend({"model": str(tiny_lm_dir), "dtype": "bfloat16", "device": "auto"})
    [res] = half.generate([req(choices=("A", "B"))])
    assert half.lm is not backend.lm and len(res.texts) == 1
    assert all(math.isfinite(v) and v <= 0 for v in res.choice_logprobs.values())
    assert half.fingerprint()["model_sha256"] == backend.fingerprint()["model_sha256"]
    assert half.fingerprint() != backend.fingerprint()  # dtype changes outputs
