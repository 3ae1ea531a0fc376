"""Checkpoint lineage and the champion rule on real encoder-scorer checkpoints.

Three checkpoints of one autorater, all MiniLM with a linear head, judged on LLMBar
Adversarial/GPTOut (47 real pairs):

* v1 — the untrained default scorer (random head);
* v2 — a head fitted (least squares on the pooled-embedding differences) to the human labels:
  a *better* checkpoint;
* v3 — v2's head negated: a *degraded* checkpoint that prefers exactly what v2 rejects.

Runs on SQLite only: the three scorer runs are the expensive part, and the SQL paths involved
(aliases, regressions, runs) are exercised on PostgreSQL by ``test_detect.py``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from registry.services.datasets import register_dataset_version
from registry.services.evaluation import run_evaluation
from registry.services.evaluators import create_evaluator, register_checkpoint
from registry.services.regressions import (
    acknowledge,
    baselines_for,
    detect_regressions,
    list_regressions,
    promote_champion,
)
from tests.services.conftest import GPTOUT

MAX_LENGTH = 64
PROTOCOL = "score-single-order"
SHARED = f"llmbar-adversarial-gptout@1 {PROTOCOL}@1"


@pytest.fixture(scope="module")
def heads(tmp_path_factory, data_root) -> dict[str, Path]:
    """Checkpoint folders: ``untrained``, ``fitted`` and ``negated`` (safetensors heads)."""
    import torch
    from safetensors.torch import save_file

    from registry.adapters.evaluators.encoder import FORMAT, HEAD_FILE, build_default_checkpoint, load_scorer

    root = tmp_path_factory.mktemp("heads")
    untrained = build_default_checkpoint(root / "untrained", seed=0)
    rows = json.loads((data_root / GPTOUT).read_text())
    instructions = [r["input"] for r in rows for _ in (0, 1)]
    responses = [r[k] for r in rows for k in ("output_1", "output_2")]
    scorer = load_scorer(untrained)
    hidden = scorer.weight.shape[1]
    # the scorer's own tokenization and pooling, with an identity head: pooled embeddings
    identity = dataclasses.replace(scorer, weight=torch.eye(hidden), bias=torch.zeros(hidden))
    enc = scorer.tokenize(instructions, responses, MAX_LENGTH)
    pooled = torch.cat([identity.forward(scorer.collate(enc, list(range(i, min(i + 32, len(responses))))))
                        for i in range(0, len(responses), 32)]).double()
    diff = pooled[0::2] - pooled[1::2]                                   # s_a − s_b = w · (e_a − e_b)
    target = torch.tensor([1.0 if str(r["label"]) == "1" else -1.0 for r in rows], dtype=torch.float64)
    w = torch.linalg.lstsq(diff, target[:, None], driver="gelsd").solution[:, 0]
    assert ((diff @ w).sign() == target).all()  # 47 pairs in 384 dimensions: separable
    out = {"untrained": untrained}
    for name, sign in (("fitted", 1.0), ("negated", -1.0)):
        folder = root / name
        folder.mkdir()
        shutil.copy(untrained / "scorer.json", folder / "scorer.json")
        save_file({"weight": (sign * w)[None, :].float().contiguous(), "bias": torch.zeros(1)},
                  str(folder / HEAD_FILE), metadata={"format": FORMAT})
        out[name] = folder
    return out


def _register(reg, folder: Path, parent: str | None):
    ckpt, created = register_checkpoint(reg, "judge", kind="encoder-scorer", path=folder, parent=parent)
    assert created
    ev, _ = create_evaluator(reg, checkpoint=ckpt.ref, protocol=PROTOCOL, config={"max_length": MAX_LENGTH})
    return ckpt, ev


def _cli(reg, monkeypatch):
    from typer.testing import CliRunner

    from registry.cli.main import app

    s = reg.settings
    for var, value in (("AUTORATER_HOME", s.home), ("AUTORATER_DB_URL", s.db_url), ("AUTORATER_STORE", s.store),
                       ("AUTORATER_DVC_REMOTE", s.dvc_remote)):
        monkeypatch.setenv(var, str(value))
    return lambda *args: CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.slow
def test_champion_moves_to_better_checkpoint_never_to_degraded(sqlite_registry, heads, data_root, monkeypatch,
                                                                 tmp_path):
    reg = sqlite_registry
    register_dataset_version(reg, name="llmbar-adversarial-gptout", source="llmbar", path=data_root / GPTOUT)

    # v1, untrained: no champion yet and no open regression → it takes the alias
    v1, e1 = _register(reg, heads["untrained"], parent=None)
    run1 = run_evaluation(reg, e1.name, "llmbar-adversarial-gptout", n_boot=100)
    first = promote_champion(reg, "judge@1")
    assert first.promoted and first.previous_champion is None and "no champion yet" in first.reason
    assert reg.store.get_checkpoint("judge@champion").version == 1

    # v2, fitted to the labels: its parent is the baseline; no regression; it beats the champion
    v2, e2 = _register(reg, heads["fitted"], parent="judge@1")
    run2 = run_evaluation(reg, e2.name, "llmbar-adversarial-gptout", n_boot=100)
    acc1, acc2 = run1.metric("accuracy").value, run2.metric("accuracy").value
    assert acc2 == 1.0 and acc1 < 0.9
    assert [(k, b.id) for k, b in baselines_for(reg, run2.id)] == [("parent_checkpoint", run1.id)]
    assert detect_regressions(reg, run2.id) == []
    second = promote_champion(reg, "2", autorater="judge")
    assert second.promoted and second.previous_champion == "judge@1"
    assert second.candidate_score == pytest.approx(acc2) and second.champion_score == pytest.approx(acc1)
    assert second.shared == (SHARED,)
    assert reg.store.get_checkpoint("judge@champion").version == 2
    assert promote_champion(reg, "judge@2").reason == "judge@2 already holds the champion alias"

    # v3, v2's head negated, registered as a child of v1: compared with its parent and the champion
    v3, e3 = _register(reg, heads["negated"], parent="judge@1")
    run3 = run_evaluation(reg, e3.name, "llmbar-adversarial-gptout", n_boot=100)
    acc3 = run3.metric("accuracy").value
    assert acc3 == 0.0
    assert [(k, b.id) for k, b in baselines_for(reg, run3.id)] == [("parent_checkpoint", run1.id),
                                                                    ("champion", run2.id)]
    found = {r.baseline_kind: r for r in detect_regressions(reg, run3.id)}
    assert set(found) == {"parent_checkpoint", "champion"}
    for kind, base_acc, base_run in (("parent_checkpoint", acc1, run1), ("champion", acc2, run2)):
        r = found[kind]
        assert r.baseline_run_id == base_run.id and r.candidate_run_id == run3.id
        assert r.evaluator == e3.name and r.baseline_evaluator == base_run.evaluator
        assert r.delta == pytest.approx(acc3 - base_acc) and r.ci_high < 0 and r.p_value < 0.01
        assert r.severity == "major" and r.n_shared == 47
    assert found["champion"].delta == pytest.approx(-1.0)

    # the degraded checkpoint is refused: first for its open regressions, then (acknowledged) on merit
    third = promote_champion(reg, "judge@3")
    assert not third.promoted and "open regression" in third.reason
    assert set(third.open_regressions) == {r.id for r in found.values()}
    assert reg.store.get_checkpoint("judge@champion").version == 2
    cli = _cli(reg, monkeypatch)
    res = cli("checkpoint", "promote", "judge@3")
    assert res.exit_code == 1 and "refused" in res.stdout
    for r in found.values():
        acknowledge(reg, r.id, note="negated head kept for the test", by="ci")
    assert list_regressions(reg, status="open") == []
    fourth = promote_champion(reg, "judge@3")
    assert not fourth.promoted and "is below the champion's" in fourth.reason
    assert fourth.candidate_score == pytest.approx(0.0) and fourth.champion_score == pytest.approx(1.0)
    assert reg.store.get_checkpoint("judge@champion").version == 2

    # a checkpoint never evaluated shares no (dataset version, protocol) with the champion: refused
    from registry.adapters.evaluators.encoder import build_default_checkpoint

    register_checkpoint(reg, "judge", kind="encoder-scorer", path=build_default_checkpoint(tmp_path / "s1", seed=1))
    res = cli("checkpoint", "promote", "judge@4", "--json")
    decision = json.loads(res.stdout)
    assert res.exit_code == 1 and not decision["promoted"] and decision["previous_champion"] == "judge@2"
    assert "share no evaluated" in decision["reason"] and SHARED in decision["reason"]
    assert reg.store.get_checkpoint("judge@champion").version == 2
