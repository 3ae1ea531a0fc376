"""The ReIFE protocol suite on REAL tiny models through the real transformers backend.

Two local checkpoints, no download:

* ``tiny_dir`` — random init: its texts almost never follow a format, so parse failures show up;
* ``tie_dir`` — the same architecture briefly trained (here, on CPU, a few seconds) to answer
  every judge prompt with ``"Rating: 7 [[C]]"``: bracketed C is a tie for the pairwise parsers and
  7 is a rating, so every pairwise protocol reaches a parsed verdict — a tie (equal ratings for the
  rating protocols, agreeing analyses for swap-and-synthesize, [[C]] for the others) — while the
  pointwise protocol refuses 7 on a 1–5 scale and the classifier finds no label (parse failures).

Stage reuse is shown by COUNTING the backend's generations (the real ``generate`` wrapped).
"""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import pytest

from registry.adapters.evaluators import TaskContext
from registry.adapters.evaluators.llm_judge import LLMJudge, MemoryStageStore, parse_stages, stage_input_hash
from registry.errors import InvalidInput
from registry.protocols import load_protocol_files

NATURAL = "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/dataset.json"
TIE_ANSWER = "Rating: 7 [[C]]"
PAIRWISE = TaskContext(task_type="pairwise", labels=("A", "B", "tie"))
POINTWISE = TaskContext(task_type="pointwise", scale=(1.0, 5.0))
CLASSIFICATION = TaskContext(task_type="classification", labels=("consistent", "inconsistent"))
CONTEXTS = {"pairwise": PAIRWISE, "pointwise": POINTWISE, "classification": CLASSIFICATION}


def judge_protocols() -> dict[str, dict]:
    """Every shipped generative-judge protocol (one with task_types) by name."""
    return {p.name: p.config for p in load_protocol_files() if p.config.get("task_types")}


# --------------------------------------------------------------------------- a model that says one thing
def _training_prompts(n: int, seed: int) -> list[list[dict[str, str]]]:
    """Chat prompts shaped like every shipped judge prompt and stage, filled with random words."""
    rng = random.Random(seed)
    words = ("the sea cat answer output instruction list summary poem write sort numbers paris capital "
             "explain code python good bad short long why how what when helpful accurate").split()
    templates = []
    for cfg in load_protocol_files():
        c = cfg.config
        for part in [c, *(c.get("stages") or [])]:
            if part.get("user"):
                templates.append((part.get("system"), part["user"]))

    def fill(t: str | None) -> str | None:
        if t is None:
            return None
        return re.sub(r"\{(\w+)\}", lambda _: " ".join(rng.choices(words, k=rng.randint(1, 60))),
                      t.replace("{{", "{").replace("}}", "}"))

    out = []
    for _ in range(n):
        system, user = rng.choice(templates)
        msgs = [{"role": "system", "content": fill(system)}] if system else []
        out.append(msgs + [{"role": "user", "content": fill(user)}])
    return out


def train_to_answer(src: Path, out: Path, answer: str, *, steps: int = 40, seed: int = 0) -> Path:
    """A copy of the tiny model at ``src`` fine-tuned (Adam, on CPU) to answer every judge-shaped
    prompt with ``answer`` then end of sequence; saved as safetensors in ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(src, local_files_only=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_pretrained(src, local_files_only=True, use_safetensors=True)
        target = tok(answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        seqs = []
        for msgs in _training_prompts(64, seed):
            ids = tok(tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True),
                      add_special_tokens=False)["input_ids"][-160:]
            seqs.append(ids + target)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        model.train()
        rng = random.Random(seed)
        for _ in range(steps):
            batch = rng.sample(seqs, 8)
            width = max(len(s) for s in batch)
            ids = torch.full((len(batch), width), tok.pad_token_id, dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for r, s in enumerate(batch):
                ids[r, :len(s)] = torch.tensor(s)
                mask[r, :len(s)] = 1
                labels[r, len(s) - len(target):len(s)] = torch.tensor(target)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
    model.eval()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    pytest.importorskip("transformers")
    from registry.adapters.backends.tiny import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "random", seed=0)


@pytest.fixture(scope="session")
def tie_dir(tiny_dir, tmp_path_factory) -> Path:
    return train_to_answer(tiny_dir, tmp_path_factory.mktemp("tiny") / "says-tie", TIE_ANSWER)


@pytest.fixture(scope="session")
def llmbar_rows(data_root) -> list[dict]:
    from registry.adapters.sources import get_adapter

    df = get_adapter("llmbar").read(data_root / NATURAL)
    return [{k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else v) for k, v in row.items()}
            for row in df.head(4).to_dict("records")]


POINTWISE_ROWS = [{"instruction": "Summarize: the cat sat on the mat.", "response": "A cat sat.", "criterion": "coherence"},
                  {"instruction": "Name a prime.", "response": "Seven.", "criterion": "accuracy"}]
CLASSIFICATION_ROWS = [{"instruction": "The meeting is on Monday.", "response": "The meeting is on Monday."},
                       {"instruction": "Paris is in France.", "response": "Lyon is the capital of France."}]


def _rows(task_type, llmbar_rows):
    return {"pairwise": llmbar_rows, "pointwise": POINTWISE_ROWS, "classification": CLASSIFICATION_ROWS}[task_type]


class GenerationCounter:
    """Wraps the real ``TransformersBackend.generate`` and records every request's prompt."""

    def __init__(self, monkeypatch) -> None:
        from registry.adapters.backends.hf import TransformersBackend

        self.requests: list = []
        real = TransformersBackend.generate

        def counted(backend, requests):
            self.requests.extend(requests)
            return real(backend, requests)

        monkeypatch.setattr(TransformersBackend, "generate", counted)

    def __len__(self) -> int:
        return len(self.requests)

    def containing(self, text: str) -> int:
        """Requests whose user message contains ``text``."""
        return sum(text in r.messages[-1]["content"] for r in self.requests)


# --------------------------------------------------------------------------- the protocol files
def test_suite_is_complete_and_stages_are_shared_text():
    protocols = judge_protocols()
    for name in ("pairwise-reference", "pairwise-metrics", "pairwise-metrics-reference", "pairwise-swap-synthesize",
                 "pairwise-fine-grained", "pairwise-prepair", "pairwise-multi-aspect", "pairwise-self-consistency",
                 "pairwise-vote", "llmbar-rating", "pairwise-base", "pairwise-cot", "llmbar-rules"):
        assert name in protocols, name
    ref = protocols["pairwise-reference"]["stages"][0]
    both = {s["name"]: s for s in protocols["pairwise-metrics-reference"]["stages"]}
    assert ref == both["generated_reference"]                  # inlined from stages/reference.yaml
    assert both["metrics"] == protocols["pairwise-metrics"]["stages"][0]
    swap = protocols["pairwise-swap-synthesize"]["stages"]
    assert {k: v for k, v in swap[0].items() if k not in ("name", "order")} == \
        {k: v for k, v in swap[1].items() if k not in ("name", "order")}
    assert swap[1]["order"] == "swapped"
    sc = protocols["pairwise-self-consistency"]
    assert sc["samples"] > 1 and sc["temperature"] > 0 and sc["aggregation"] == "majority"
    assert protocols["pairwise-vote"]["vote"] == ["pairwise-base@1", "pairwise-cot@1", "llmbar-rules@1"]


def test_protocol_loader_errors_name_the_file(tmp_path):
    (tmp_path / "stages").mkdir()
    bad = tmp_path / "p.yaml"
    bad.write_text("name: p\nversion: 1\nconfig:\n  stages:\n    - {use: nope}\n")
    with pytest.raises(InvalidInput, match="unknown shared stage 'nope'") as err:
        load_protocol_files(tmp_path)
    assert str(bad) in str(err.value) and "stages[0].use" in str(err.value)
    bad.write_text("name: p\nversion: 1\nconfig:\n  vote: [pairwise-base@9]\n")
    with pytest.raises(InvalidInput, match="vote member 'pairwise-base@9'") as err:
        load_protocol_files(tmp_path / ".")      # another path: not the cached load
    assert "config.vote" in str(err.value)


def test_stage_validation_names_the_field():
    good = {"name": "ref", "inputs": ["instruction"], "user": "Answer {instruction}"}
    assert parse_stages([good], {})[0].generation["max_tokens"] == 256
    assert parse_stages([good], {"max_tokens": 4})[0].generation["max_tokens"] == 4   # evaluator override
    cases = [
        ({**good, "user": "Answer {instruction} like {response_a}"}, "stages[0].inputs"),   # not in its cache key
        ({**good, "per": "sentence"}, "stages[0].per"),
        ({**good, "name": "reference"}, "stages[0].name"),                                   # clashes with a field
        ({**good, "for_each": {"aspect": []}}, "stages[0].for_each"),
        ({**good, "inputs": ["instruction", "response_a"], "per": "response"}, "stages[0].inputs"),
        ({**good, "tempreature": 0.5}, "stages[0]"),
    ]
    for stage, field in cases:
        with pytest.raises(InvalidInput) as err:
            parse_stages([stage], {})
        assert field in str(err.value), (stage, str(err.value))
    assert stage_input_hash(["instruction"], {"instruction": "x", "response": "y"}) == \
        stage_input_hash(["instruction"], {"instruction": "x", "response": "z"})          # only its inputs count
    assert len(stage_input_hash(["instruction"], {"instruction": "x"})) == 32


def test_decision_configs_refused(tiny_dir):
    rating = judge_protocols()["llmbar-rating"]
    for broken, field in (({**rating, "rating_stage": "nope"}, "rating_stage"),
                          ({**rating, "rating_scale": [5, 1]}, "rating_scale"),
                          ({**rating, "decision": "guess"}, "decision"),
                          ({**judge_protocols()["pairwise-swap-synthesize"], "analyses": ["cot_swapped", "cot"]},
                           "analyses"),
                          ({**judge_protocols()["pairwise-reference"], "user": "{generated_referense}"}, "user")):
        with pytest.raises(InvalidInput) as err:
            LLMJudge({"checkpoint": str(tiny_dir), "protocol": broken})
        assert field in str(err.value)
    with pytest.raises(InvalidInput, match="protocol vote"):
        LLMJudge({"checkpoint": str(tiny_dir), "protocol": judge_protocols()["pairwise-vote"]})


# --------------------------------------------------------------------------- every protocol, real backend
def _direct(name: str) -> bool:
    return not judge_protocols()[name].get("vote")


@pytest.mark.parametrize("name", [n for n in judge_protocols() if _direct(n)])
def test_every_protocol_on_real_tiny_models(tiny_dir, tie_dir, llmbar_rows, name):
    cfg = judge_protocols()[name]
    task_type = cfg["task_types"][0]
    ctx, rows = CONTEXTS[task_type], _rows(task_type, llmbar_rows)
    random_judge = LLMJudge({"checkpoint": str(tiny_dir), "protocol": cfg, "max_tokens": 6, "seed": 0})
    failures = random_judge.judge(ctx, rows)
    assert len(failures) == len(rows)
    assert all(isinstance(v.raw, str) and v.prompt_tokens > 0 for v in failures)
    # a random model does not follow the formats: failures are recorded (label None), never guessed
    assert any(not v.parsed and v.label is None for v in failures)
    if cfg.get("stages"):
        assert random_judge.stage_stats["generated"] > 0

    tie_judge = LLMJudge({"checkpoint": str(tie_dir), "protocol": cfg, "max_tokens": 12, "seed": 0})
    verdicts = tie_judge.judge(ctx, rows)
    for v in verdicts:
        if task_type == "pairwise":
            assert (v.label, v.parsed) == ("tie", True), (name, v.raw)
        else:   # 7 is off the 1-5 scale (refused); no classification label is mentioned
            assert (v.parsed, v.label, v.score) == (False, None, None), (name, v.raw)
    if cfg.get("decision") == "compare_ratings":
        assert all(v.score == 0.0 and set(v.extra["ratings"].values()) == {7.0} for v in verdicts)
    if cfg.get("choices"):
        assert all(0 < v.prob_a < 1 for v in verdicts)
    random_judge.close()
    tie_judge.close()


def test_pointwise_rating_parses_on_a_wide_scale(tie_dir):
    judge = LLMJudge({"checkpoint": str(tie_dir), "protocol": judge_protocols()["pointwise-rating"], "max_tokens": 12})
    verdicts = judge.judge(TaskContext(task_type="pointwise", scale=(1.0, 10.0)), POINTWISE_ROWS)
    assert [(v.score, v.parsed) for v in verdicts] == [(7.0, True)] * len(POINTWISE_ROWS)


def test_multi_token_choices_are_scored_as_sequences(tiny_dir):
    """"Output (a)"/"Output (b)" share their first token; the backend scores whole sequences."""
    import torch

    judge = LLMJudge({"checkpoint": str(tiny_dir), "protocol": judge_protocols()["pairwise-reference"],
                      "max_tokens": 4})
    backend = judge.backend
    from registry.adapters.backends import GenerationRequest

    short = {"instruction": "Say hi.", "response_a": "hi", "response_b": "Hello there!"}   # no truncation
    msgs = judge.messages(PAIRWISE, short, {"generated_reference": "Hi."})
    [res] = backend.generate([GenerationRequest(messages=msgs, max_tokens=2, choices=("Output (a)", "Output (b)"))])
    assert res.extra["choice_scoring"] == "sequence"
    lp = res.choice_logprobs
    assert lp["Output (a)"] != lp["Output (b)"]
    assert math.exp(lp["Output (a)"]) + math.exp(lp["Output (b)"]) <= 1 + 1e-6
    # by hand: log P(tokens | prompt) summed, over both spellings (with/without a leading space)
    tok, model = backend.lm.tokenizer, backend.lm.model
    prompt = tok(backend.render_prompt(msgs), add_special_tokens=False)["input_ids"]

    def seq_lp(ids):
        with torch.inference_mode():
            logits = model(torch.tensor([prompt + ids])).logits[0]
        logp = torch.log_softmax(logits.float(), dim=-1)
        return sum(float(logp[len(prompt) - 1 + i, t]) for i, t in enumerate(ids))

    spellings = {tuple(tok(t, add_special_tokens=False)["input_ids"]) for t in ("Output (a)", " Output (a)")}
    expected = math.log(sum(math.exp(seq_lp(list(s))) for s in spellings))
    assert lp["Output (a)"] == pytest.approx(expected, abs=1e-4)
    [single] = backend.generate([GenerationRequest(messages=msgs, max_tokens=2, choices=("A", "B"))])
    assert single.extra["choice_scoring"] == "first-token"
    judge.close()


# --------------------------------------------------------------------------- stages and their cache
def test_stage_outputs_shared_between_protocols_and_orders(tiny_dir, llmbar_rows, monkeypatch):
    counter = GenerationCounter(monkeypatch)
    store = MemoryStageStore()
    protocols = judge_protocols()
    n = len(llmbar_rows)
    swapped = [{**r, "response_a": r["response_b"], "response_b": r["response_a"]} for r in llmbar_rows]

    def judge(name, rows):
        j = LLMJudge({"checkpoint": str(tiny_dir), "protocol": protocols[name], "max_tokens": 4})
        j.stage_store = store
        before = len(counter)
        j.judge(PAIRWISE, rows)
        return j.stage_stats, len(counter) - before

    stats, calls = judge("pairwise-reference", llmbar_rows)
    assert stats == {"generated": n, "reused": 0} and calls == 2 * n      # n references + n decisions
    assert counter.containing("Write a high-quality output") == n
    stats, calls = judge("pairwise-reference", swapped)                   # the other order: same instructions
    assert stats == {"generated": 0, "reused": n} and calls == n
    stats, calls = judge("pairwise-metrics-reference", llmbar_rows)       # reference reused, questions new
    assert stats == {"generated": n, "reused": n} and calls == 2 * n
    stats, calls = judge("pairwise-metrics", swapped)                     # everything reused
    assert stats == {"generated": 0, "reused": n} and calls == n
    assert counter.containing("Write a high-quality output") == n         # never generated twice

    stats, _ = judge("pairwise-prepair", llmbar_rows)                      # one analysis per response
    assert stats == {"generated": 2 * n, "reused": 0}
    stats, calls = judge("pairwise-prepair", swapped)
    assert stats == {"generated": 0, "reused": 2 * n} and calls == n
    stats, calls = judge("pairwise-swap-synthesize", llmbar_rows)
    assert stats["generated"] == 2 * n and calls >= 2 * n                 # both analyses (+ syntheses)
    stats, _ = judge("pairwise-swap-synthesize", swapped)                 # the other order's analyses are these
    assert stats == {"generated": 0, "reused": 2 * n}
    stats, calls = judge("pairwise-multi-aspect", llmbar_rows)
    assert stats["generated"] == 2 * n * 3 and calls == 2 * n * 3          # 3 aspects per response, no decision
    stats, calls = judge("llmbar-rating", swapped)
    assert stats["generated"] == 2 * n and calls == 2 * n


def test_evaluator_overrides_change_the_stage_key(tiny_dir):
    cfg = judge_protocols()["pairwise-reference"]
    short = LLMJudge({"checkpoint": str(tiny_dir), "protocol": cfg, "max_tokens": 4})
    longer = LLMJudge({"checkpoint": str(tiny_dir), "protocol": cfg, "max_tokens": 8})
    other = LLMJudge({"checkpoint": str(tiny_dir), "protocol": judge_protocols()["pairwise-metrics-reference"],
                      "max_tokens": 4})
    key = short.stage_key(short.stages[0])
    assert key != longer.stage_key(longer.stages[0])
    assert key == other.stage_key(other.stages[1])           # same stage, another protocol: same key
    assert key != other.stage_key(other.stages[0])
    assert json.dumps(cfg).count("generated_reference") >= 2


# --------------------------------------------------------------------------- through the engine
def _register(reg, name: str, task_type: str, rows: list[dict], tmp_path: Path) -> str:
    from registry.services.datasets import register_dataset_version

    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    return register_dataset_version(reg, name=name, source="generic", path=path, task_type=task_type).version.ref


@pytest.fixture
def engine(sqlite_registry, tiny_dir, tie_dir, llmbar_rows, tmp_path):
    """A SQLite registry with the two tiny checkpoints and one small dataset of each task type."""
    return _engine(sqlite_registry, tiny_dir, tie_dir, llmbar_rows, tmp_path)


@pytest.fixture
def engine_db(registry, tiny_dir, tie_dir, llmbar_rows, tmp_path):
    """The same on SQLite and on PostgreSQL (the stage cache's rows on both databases)."""
    return _engine(registry, tiny_dir, tie_dir, llmbar_rows, tmp_path)


def _engine(reg, tiny_dir, tie_dir, llmbar_rows, tmp_path):
    from registry.services.evaluators import register_checkpoint

    pairwise = [{k: r[k] for k in ("example_id", "instruction", "response_a", "response_b", "label")}
                for r in llmbar_rows]
    pointwise = [{**r, "example_id": f"p{i}", "score": float(i + 1), "scale_min": 1, "scale_max": 5}
                 for i, r in enumerate(POINTWISE_ROWS * 2)]
    for i, r in enumerate(pointwise):
        r["response"] = r["response"] + " " + "more " * i
    classification = [{**r, "example_id": f"c{i}", "label": lab}
                      for i, (r, lab) in enumerate(zip(CLASSIFICATION_ROWS * 2, ["consistent", "inconsistent"] * 2))]
    for i, r in enumerate(classification):
        r["response"] = r["response"] + " " + "so " * i
    refs = {"pairwise": _register(reg, "tiny-pairwise", "pairwise", pairwise, tmp_path),
            "pointwise": _register(reg, "tiny-pointwise", "pointwise", pointwise, tmp_path),
            "classification": _register(reg, "tiny-classification", "classification", classification, tmp_path)}
    ckpts = {"random": register_checkpoint(reg, "tiny-random", kind="llm-judge", path=tiny_dir)[0].ref,
             "tie": register_checkpoint(reg, "tiny-tie", kind="llm-judge", path=tie_dir)[0].ref}
    return reg, refs, ckpts


def _evaluator(reg, ckpt: str, protocol: str, **config):
    from registry.services.evaluators import create_evaluator
    from registry.services.matrix import evaluator_name

    return create_evaluator(reg, checkpoint=ckpt, protocol=protocol, config=config,
                            name=evaluator_name(ckpt, protocol, config), derived_name=True)[0]


@pytest.mark.slow
def test_every_protocol_through_the_engine_is_meta_evaluated(engine, monkeypatch):
    """Every generative-judge protocol, both tiny models, real backend, real DB: runs succeed,
    parse failures and ties are recorded per example and resolved by the stated rule."""
    from registry.services.evaluation import load_predictions, run_evaluation

    reg, refs, ckpts = engine
    for name, cfg in judge_protocols().items():
        task_type = cfg["task_types"][0]
        tie = run_evaluation(reg, _evaluator(reg, ckpts["tie"], name, max_tokens=12).name, refs[task_type], n_boot=50)
        rnd = run_evaluation(reg, _evaluator(reg, ckpts["random"], name, max_tokens=4).name, refs[task_type],
                             n_boot=50)
        for run in (tie, rnd):
            assert run.status == "succeeded" and run.n_examples == 4, name
            coverage = run.metric("coverage")   # examples with a parsed judgment, of those judged at all
            assert coverage.extra["with_predictions"] == 4 == coverage.extra["judged"] + coverage.extra["unparsed"]
            assert coverage.value == pytest.approx(coverage.extra["judged"] / 4)
            preds = load_predictions(reg, run).to_pydict()
            assert all(v is None for v, ok in zip(preds["verdict"], preds["parsed"]) if not ok)
        if task_type == "pairwise":
            acc = tie.metric("accuracy")
            # every verdict a tie: ReIFE's expected credit ½ per order, whatever the label
            assert acc.value == pytest.approx(0.5), name
            assert acc.extra["ties_order0"] == acc.extra["ties_order1"] == 4 and acc.extra["failures_order0"] == 0
            assert tie.metric("correct_both").value == 0.0
            assert rnd.metric("accuracy").extra["failures_order0"] > 0 or name in ("pairwise-base", "pairwise-prepair")
            assert set(load_predictions(reg, tie).column("verdict").to_pylist()) == {"tie"}
            if cfg.get("samples", 1) > 1:
                assert tie.n_judgments == 4 * 2 * cfg["samples"]
            if cfg.get("choices"):           # logprob verdicts, averaged over both orders
                assert tie.metric("accuracy_logprob") is not None and rnd.metric("accuracy_logprob") is not None
        elif task_type == "pointwise":       # 7 is off the 1-5 scale: refused, recorded as failures
            assert tie.metric("coverage").value == 0.0 and tie.metric("coverage").extra["unparsed"] == 4
            assert not any(load_predictions(reg, tie).column("parsed").to_pylist())
        else:
            assert tie.metric("balanced_accuracy") is not None
            assert not any(load_predictions(reg, tie).column("parsed").to_pylist())


def test_stages_are_durable_and_counted_through_the_engine(engine_db, monkeypatch):
    """Stage outputs live in the judgments table: a protocol that shares a stage with one run
    before generates none of it again — counted on the real backend's generate."""
    from registry.services.evaluation import run_evaluation

    reg, refs, ckpts = engine_db
    counter = GenerationCounter(monkeypatch)
    n = 4
    first = run_evaluation(reg, _evaluator(reg, ckpts["random"], "pairwise-reference", max_tokens=4).name,
                           refs["pairwise"], n_boot=20)
    assert first.provenance["stages"] == {"generated": n, "reused": n}   # one reference per instruction, both orders
    assert counter.containing("Write a high-quality output") == n and len(counter) == n + 2 * n
    judgments_before = reg.store.count_judgments()
    both = run_evaluation(reg, _evaluator(reg, ckpts["random"], "pairwise-metrics-reference", max_tokens=4).name,
                          refs["pairwise"], n_boot=20)
    assert both.provenance["stages"] == {"generated": n, "reused": 3 * n}   # the questions only are new
    assert counter.containing("Write a high-quality output") == n           # no reference generated again
    assert counter.containing("Propose three concise questions") == n
    assert reg.store.count_judgments() == judgments_before + n + 2 * n      # n question rows + 2n judgments
    before = len(counter)
    metrics = run_evaluation(reg, _evaluator(reg, ckpts["random"], "pairwise-metrics", max_tokens=4).name,
                             refs["pairwise"], n_boot=20)
    assert metrics.provenance["stages"] == {"generated": 0, "reused": 2 * n}
    assert len(counter) - before == 2 * n                                    # decisions only
    # another evaluator config changes the generations, hence the stage key: generated anew
    other = run_evaluation(reg, _evaluator(reg, ckpts["random"], "pairwise-reference", max_tokens=5).name,
                           refs["pairwise"], n_boot=20)
    assert other.provenance["stages"]["generated"] == n


def test_vote_reuses_member_judgments_and_orders_can_be_chosen(engine_db, monkeypatch):
    from registry.services.evaluation import load_predictions, run_evaluation

    reg, refs, ckpts = engine_db
    counter = GenerationCounter(monkeypatch)
    vote = run_evaluation(reg, _evaluator(reg, ckpts["tie"], "pairwise-vote", max_tokens=12).name, refs["pairwise"],
                          n_boot=20)
    members = vote.provenance["vote_members"]
    assert set(members) == {"pairwise-base@1", "pairwise-cot@1", "llmbar-rules@1"}
    assert all(m["executed"] == 8 for m in members.values()) and len(counter) == 3 * 8
    preds = load_predictions(reg, vote).to_pydict()
    assert set(preds["verdict"]) == {"tie"} and all(json.loads(r)["votes"] for r in preds["raw"])
    # the member evaluator, created afterwards with the same config, finds its judgments cached
    base = run_evaluation(reg, _evaluator(reg, ckpts["tie"], "pairwise-base", max_tokens=12).name, refs["pairwise"],
                          n_boot=20)
    assert base.n_executed == 0 and base.n_cached == 8 and len(counter) == 3 * 8
    again = run_evaluation(reg, vote.evaluator, refs["pairwise"], n_boot=20)
    assert again.n_executed == 0 and again.provenance["vote_members"] == {}
    # order handling: single (as given) and swapped-only through the evaluator config
    for orders in ([0], [1]):
        run = run_evaluation(reg, _evaluator(reg, ckpts["random"], "pairwise-base", max_tokens=2, orders=orders).name,
                             refs["pairwise"], n_boot=20)
        assert set(load_predictions(reg, run).column("order").to_pylist()) == set(orders)
        assert run.n_judgments == 4 and run.metric("accuracy") is not None


def test_unparsed_ratings_are_dropped_from_correlations():
    """The stated rule for pointwise parse failures (scoring): left out of the correlations, counted."""
    import pyarrow as pa

    from registry.services.evaluation import PREDICTION_SCHEMA
    from registry.services.scoring import compute_metrics

    ids = [f"e{i}" for i in range(5)]
    table = pa.table({"example_id": ids, "score": [1.0, 2.0, 3.0, 4.0, 5.0]})

    def predictions(scores):
        n = len(scores)
        return pa.Table.from_pydict({"example_id": ids, "order": [0] * n, "sample": [0] * n, "verdict": [None] * n,
                                     "score": scores, "prob_a": [None] * n, "parsed": [s is not None for s in scores],
                                     "raw": ["x"] * n, "prompt_tokens": [1] * n, "completion_tokens": [1] * n,
                                     "seconds": [0.0] * n}, schema=PREDICTION_SCHEMA)

    some = {m.name: m for m in compute_metrics("pointwise", table, predictions([1.0, 2.0, None, 4.0, 5.0]), n_boot=50)}
    assert some["spearman"].value == pytest.approx(1.0) and some["spearman"].n == 4
    assert some["spearman"].extra["dropped"] == 1 and some["coverage"].value == pytest.approx(4 / 5)  # parsed only
    none = {m.name for m in compute_metrics("pointwise", table, predictions([None] * 5), n_boot=50)}
    assert "spearman" not in none and "coverage" in none


def test_order_and_sample_plans_and_the_vote_rule():
    from registry.services.evaluation import plan_for, plurality

    proto = judge_protocols()["pairwise-self-consistency"]
    assert plan_for("pairwise", proto, LLMJudge).orders == (0, 1) and plan_for("pairwise", proto, LLMJudge).samples == 5
    assert plan_for("pairwise", proto, LLMJudge, {"orders": [1], "samples": 3}) == \
        plan_for("pairwise", {"orders": [1], "samples": 3}, LLMJudge)
    assert plan_for("pointwise", proto, LLMJudge, {"orders": [1]}).orders == (0,)   # no order without a pair
    for bad, field in (({"orders": [2]}, "orders"), ({"orders": [0, 0]}, "orders"), ({"samples": 0}, "samples")):
        with pytest.raises(InvalidInput) as err:
            plan_for("pairwise", proto, LLMJudge, bad)
        assert field in str(err.value)
    assert plurality(["A", "A", "B", None]) == "A"
    assert plurality(["A", "B", None]) is None and plurality([None, None]) is None
