"""The generative LLM judge: protocols rendered, generated through the REAL transformers backend on a
tiny local model, parsed, logprob prob_a, and one run through the engine (cache included)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from registry.adapters.backends import GenerationResult
from registry.adapters.evaluators import EVALUATORS, TaskContext, build_evaluator
from registry.adapters.evaluators.llm_judge import LLMJudge, choice_probability, render
from registry.errors import InvalidInput
from registry.protocols import load_protocol_files

NATURAL = "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/dataset.json"
PAIRWISE = TaskContext(task_type="pairwise", labels=("A", "B", "tie"))
POINTWISE = TaskContext(task_type="pointwise", scale=(1.0, 5.0))
CLASSIFICATION = TaskContext(task_type="classification", labels=("consistent", "inconsistent"))
PROTOCOLS = {"pairwise-base": PAIRWISE, "pairwise-cot": PAIRWISE, "llmbar-rules": PAIRWISE,
             "pointwise-rating": POINTWISE, "classification-direct": CLASSIFICATION}


@pytest.fixture(scope="session")
def tiny_judge_dir(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from registry.adapters.backends.tiny import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-judge") / "tiny-llama", seed=0)


@pytest.fixture(scope="session")
def llmbar_rows(data_root) -> list[dict]:
    from registry.adapters.sources import get_adapter

    df = get_adapter("llmbar").read(data_root / NATURAL)
    return [{k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else v) for k, v in row.items()}
            for row in df.head(4).to_dict("records")]


POINTWISE_ROWS = [
    {"instruction": "Summarize: the cat sat on the mat all day.", "response": "A cat sat on a mat.",
     "criterion": "coherence"},
    {"instruction": "Translate 'bonjour' to English.", "response": "Hello {name}!", "criterion": "accuracy"},
    {"instruction": "Name a prime number.", "response": "Seven.", "criterion": "accuracy"},
]
CLASSIFICATION_ROWS = [
    {"instruction": "The meeting is on Monday at 10am.", "response": "The meeting is on Monday."},
    {"instruction": "Paris is the capital of France.", "response": "Lyon is the capital of France."},
    {"instruction": "Water boils at 100 C at sea level.", "response": "At sea level water boils at 100 C."},
]


def _protocol(name: str) -> dict:
    return next(p.config for p in load_protocol_files() if p.name == name)


def _judge(folder: Path, protocol: str, **extra) -> LLMJudge:
    return LLMJudge({"backend": "transformers", "checkpoint": str(folder), "protocol": _protocol(protocol),
                     "max_tokens": 8, "seed": 0, **extra})


# --------------------------------------------------------------------------- pure parts
def test_render_is_brace_safe():
    out = render("Q: {instruction}\nJSON: {{\"a\": 1}} {not a field\nA: {response_a}",
                 {"instruction": "use {response_b} and {{x}}", "response_a": None})
    assert out == "Q: use {response_b} and {{x}}\nJSON: {\"a\": 1} {not a field\nA: "
    with pytest.raises(InvalidInput, match="unknown template placeholder"):
        render("{instrution}", {})


def test_choice_probability():
    assert choice_probability(math.log(0.3), math.log(0.1)) == pytest.approx(0.75)
    assert choice_probability(0.0, float("-inf")) == 1.0
    assert choice_probability(float("-inf"), float("-inf")) is None


def test_registered_and_protocols_documented():
    assert EVALUATORS.get("llm-judge") is LLMJudge
    files = {p.name: p for p in load_protocol_files()}
    for name, ctx in PROTOCOLS.items():
        cfg = files[name].config
        assert cfg["task_types"] == [ctx.task_type] and cfg["parser"] in ("pairwise_choice", "rating", "label")
        assert "Config format of generative-judge protocols" in files[name].path.read_text()
    assert files["pairwise-base"].config["choices"] == ["A", "B"]
    assert files["pairwise-cot"].config["mention"] == "last"


def test_bad_configs_refused(tiny_judge_dir):
    with pytest.raises(InvalidInput, match="protocol"):
        LLMJudge({"backend": "transformers", "model": str(tiny_judge_dir)})
    with pytest.raises(InvalidInput, match="choices"):
        LLMJudge({"model": str(tiny_judge_dir), "protocol": {**_protocol("pairwise-base"), "choices": ["A"]}})
    with pytest.raises(InvalidInput, match="parser"):
        LLMJudge({"model": str(tiny_judge_dir), "protocol": {**_protocol("pairwise-base"), "parser": "regex"}})
    judge = _judge(tiny_judge_dir, "pairwise-base")
    with pytest.raises(InvalidInput, match="not pointwise"):
        judge.judge(POINTWISE, POINTWISE_ROWS)


# --------------------------------------------------------------------------- real backend
@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_every_protocol_end_to_end_on_tiny_model(tiny_judge_dir, llmbar_rows, name):
    ctx = PROTOCOLS[name]
    rows = {"pairwise": llmbar_rows, "pointwise": POINTWISE_ROWS, "classification": CLASSIFICATION_ROWS}[ctx.task_type]
    judge = build_evaluator("llm-judge", {"backend": "transformers", "checkpoint": str(tiny_judge_dir),
                                          "protocol": _protocol(name), "max_tokens": 8, "seed": 0})
    verdicts = judge.judge(ctx, rows)
    assert len(verdicts) == len(rows)
    for v in verdicts:
        assert isinstance(v.raw, str)  # the generated text is kept, parsed or not
        assert v.prompt_tokens > 0 and 0 < v.completion_tokens <= 8 and v.seconds >= 0
        if not v.parsed:  # a failure is recorded, never guessed
            assert v.label is None
            if ctx.task_type == "pointwise":
                assert v.score is None
        if ctx.task_type == "pointwise" and v.parsed:
            assert 1 <= v.score <= 5
        if ctx.task_type == "classification" and v.parsed:
            assert v.label in CLASSIFICATION.labels
    if name == "pairwise-base":  # logprob verdicts from the A/B first-token log-probabilities
        for v in verdicts:
            assert 0 < v.prob_a < 1
            assert v.score == pytest.approx(v.extra["choice_logprobs"]["A"] - v.extra["choice_logprobs"]["B"])
            assert v.extra["logprob_verdict"] == ("A" if v.prob_a > 0.5 else "B")
    else:
        assert all(v.prob_a is None for v in verdicts)
    # a random tiny model rarely follows the format: failures show up and are recorded as such
    if name in ("pairwise-cot", "llmbar-rules", "pointwise-rating"):
        assert any(not v.parsed for v in verdicts)
    again = judge.judge(ctx, rows)  # greedy: the same texts again
    assert [v.raw for v in again] == [v.raw for v in verdicts]
    judge.close()


def test_fingerprint_and_prompts(tiny_judge_dir, llmbar_rows):
    judge = _judge(tiny_judge_dir, "llmbar-rules")
    fp = judge.fingerprint()
    assert fp["kind"] == "llm-judge" and len(fp["backend"]["model_sha256"]) == 64
    assert str(tiny_judge_dir) not in json.dumps(fp)
    assert fp["generation"]["max_tokens"] == 8 and fp["seed"] == 0
    assert _judge(tiny_judge_dir, "pairwise-base").fingerprint()["protocol_sha256"] != fp["protocol_sha256"]
    system, user = judge.messages(PAIRWISE, llmbar_rows[0])
    assert system["role"] == "system" and user["role"] == "user"
    assert llmbar_rows[0]["response_a"] in user["content"] and "{response_a}" not in user["content"]
    rating = _judge(tiny_judge_dir, "pointwise-rating").messages(POINTWISE, POINTWISE_ROWS[1])[1]["content"]
    assert "from 1 (worst) to 5 (best)" in rating and "accuracy" in rating and "Hello {name}!" in rating


def test_parsed_outputs_become_verdicts(tiny_judge_dir, llmbar_rows, monkeypatch):
    """Texts a real judge would write, through the same parse path (the backend's texts replaced)."""
    judge = _judge(tiny_judge_dir, "pairwise-cot")
    texts = iter(["A is short. Final verdict: [[B]]", "[[C]]", "I am not sure.", "[[A]]"])
    seen = []

    def fake_generate(requests):
        seen.extend(requests)
        return [GenerationResult(texts=(next(texts),), prompt_tokens=10, completion_tokens=3, seconds=0.5)
                for _ in requests]

    monkeypatch.setattr(judge.backend, "generate", fake_generate)
    out = judge.judge(PAIRWISE, llmbar_rows, sample=2)
    assert [(v.label, v.parsed) for v in out] == [("B", True), ("tie", True), (None, False), ("A", True)]
    assert out[2].raw == "I am not sure." and out[0].prompt_tokens == 10 and out[0].seconds == 0.5
    assert all(r.seed == 2 and r.choices is None and r.max_tokens == 8 for r in seen)  # seed + sample

    rating = _judge(tiny_judge_dir, "pointwise-rating")
    monkeypatch.setattr(rating.backend, "generate", lambda reqs: [
        GenerationResult(texts=(t,)) for t in ("Fine. Rating: 4", "Rating: 9", "[[2]]")])
    assert [(v.score, v.parsed) for v in rating.judge(POINTWISE, POINTWISE_ROWS)] == [
        (4.0, True), (None, False), (2.0, True)]


# --------------------------------------------------------------------------- through the engine
def test_engine_run_with_tiny_checkpoint(sqlite_registry, tiny_judge_dir, llmbar_rows, tmp_path):
    from registry.services.datasets import register_dataset_version
    from registry.services.evaluation import load_predictions, run_evaluation
    from registry.services.evaluators import create_evaluator, register_checkpoint

    reg = sqlite_registry
    rows = [{k: r[k] for k in ("example_id", "instruction", "response_a", "response_b", "label")}
            for r in llmbar_rows[:3]]
    path = tmp_path / "tiny-pairwise.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    register_dataset_version(reg, name="tiny-pairwise", source="generic", path=path, task_type="pairwise")
    ckpt, _ = register_checkpoint(reg, "tiny", kind="llm-judge", path=tiny_judge_dir)
    ev, created = create_evaluator(reg, checkpoint=ckpt.ref, protocol="pairwise-base",
                                   config={"backend": "transformers", "max_tokens": 4})
    assert created and ev.kind == "llm-judge"
    run = run_evaluation(reg, ev.name, "tiny-pairwise", n_boot=50)
    assert run.status == "succeeded" and run.n_examples == 3
    assert run.n_judgments == 6 and run.n_executed == 6  # both orders
    assert run.prompt_tokens > 0 and run.completion_tokens > 0
    assert run.metric("accuracy") is not None
    preds = load_predictions(reg, run).to_pydict()
    assert all(0 < p < 1 for p in preds["prob_a"])
    assert all(isinstance(r, str) for r in preds["raw"])
    assert all(v is None for v, ok in zip(preds["verdict"], preds["parsed"]) if not ok)
    second = run_evaluation(reg, ev.name, "tiny-pairwise", n_boot=50)
    assert second.status == "succeeded" and second.n_executed == 0 and second.n_cached == 6


def test_openai_backend_passthrough_and_logprobs(llmbar_rows):
    """The same judge over an OpenAI-compatible HTTP server (a local fake): backend keys pass
    through, the protocol's choices come back as prob_a, the echoed prompt is ambiguous → failure."""
    from tests.adapters.backends.fake_openai_server import FakeOpenAIServer

    with FakeOpenAIServer() as server:
        judge = LLMJudge({"backend": "openai", "base_url": server.base_url, "model": "fake-judge",
                          "api_key_env": "LLM_JUDGE_TEST_NO_KEY", "concurrency": 2, "timeout": 5,
                          "protocol": _protocol("pairwise-base"), "seed": 7})
        out = judge.judge(PAIRWISE, llmbar_rows[:2], sample=1)
        judge.close()
    lp_a, lp_b = math.log(math.exp(-0.2) + math.exp(-3.0)), -1.9  # "A" and " A" both count for A
    for v in out:
        assert v.prob_a == pytest.approx(math.exp(lp_a) / (math.exp(lp_a) + math.exp(lp_b)))
        assert v.extra["logprob_verdict"] == "A"
        assert (v.label, v.parsed) == (None, False) and v.raw.startswith("echo: ")
    assert len(server.bodies) == 2
    body = server.bodies[0]
    assert body["model"] == "fake-judge" and body["seed"] == 8 and body["max_tokens"] == 8
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert judge.fingerprint()["backend"] == {"backend": "openai", "model": "fake-judge"}
