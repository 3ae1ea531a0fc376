"""``autorater train``: multitask training of the encoder autorater and tail-patch mixture selection."""

from __future__ import annotations

from pathlib import Path

import typer

from registry.cli.common import JSON_OPTION, console, new_app, open_registry, print_json

app = new_app("Train autoraters on registered dataset versions (FLAMe-style multitask, tail-patch, LoRA judges).")


def _config(seed, epochs, steps, batch_size, lr, head_lr, max_length, train_layers, device, shuffle_labels):
    from registry.domain.training import TrainConfig

    return TrainConfig(seed=seed, epochs=epochs, max_steps=steps, batch_size=batch_size, lr=lr, head_lr=head_lr,
                       max_length=max_length, train_layers=train_layers, device=device, shuffle_labels=shuffle_labels)


def _progress(step: int, total: int, loss: float) -> None:
    if step == total or step % 200 == 0:
        console.print(f"step {step}/{total} loss {loss:.4f}", highlight=False)


SEED = typer.Option(0, "--seed", help="Seed of row sampling, data order, dropout and head initialisation.")
EPOCHS = typer.Option(1.0, "--epochs", help="Passes over the mixture's rows.")
STEPS = typer.Option(None, "--steps", help="Stop after this many optimizer steps.")
BATCH = typer.Option(16, "--batch-size", help="Examples per step (a pair is two sequences).")
LR = typer.Option(5e-5, "--lr", help="Learning rate of the fine-tuned encoder layers.")
HEAD_LR = typer.Option(1e-3, "--head-lr", help="Learning rate of the heads.")
MAX_LEN = typer.Option(128, "--max-length", help="Tokens per (instruction, response) sequence.")
LAYERS = typer.Option(2, "--train-layers", help="Top encoder layers fine-tuned (0: heads only, cached features).")
DEVICE = typer.Option("cpu", "--device", help="cpu, cuda or auto.")
CARDS = typer.Option(None, "--model-cards-dir", help="Also write the model card here (<autorater>.md).")


@app.command("run")
def run(
    mixture: Path = typer.Option(..., "--mixture", "-m", help="Mixture YAML (see mixtures/default.yaml)."),
    autorater: str = typer.Option("minilm-flame", "--autorater", "-a", help="Autorater name of the checkpoint."),
    parent: str = typer.Option(None, "--parent", help="Continue from checkpoint AUTORATER@VERSION."),
    shuffle_labels: bool = typer.Option(False, "--shuffle-labels",
                                        help="Train on shuffled labels (a deliberately degraded checkpoint)."),
    seed: int = SEED, epochs: float = EPOCHS, steps: int = STEPS, batch_size: int = BATCH, lr: float = LR,
    head_lr: float = HEAD_LR, max_length: int = MAX_LEN, train_layers: int = LAYERS, device: str = DEVICE,
    model_cards_dir: Path = CARDS, json_out: bool = JSON_OPTION,
) -> None:
    """Train the MiniLM autorater on a mixture of registered datasets and register the checkpoint."""
    reg = open_registry()
    cfg = _config(seed, epochs, steps, batch_size, lr, head_lr, max_length, train_layers, device, shuffle_labels)
    res = reg.train(mixture, autorater=autorater, config=cfg, parent=parent, model_cards_dir=model_cards_dir,
                    on_progress=None if json_out else _progress)
    if json_out:
        print_json(res)
    else:
        console.print(f"trained {res.checkpoint.ref} on {res.rows_used} rows in {res.seconds:.1f} s "
                      f"({res.rows_per_s:.1f} rows/s); model card {res.checkpoint.model_card}", highlight=False)


@app.command("tail-patch")
def tail_patch_cmd(
    base: str = typer.Option(..., "--base", help="Multitask checkpoint AUTORATER@VERSION to patch from."),
    mixture: Path = typer.Option(..., "--mixture", "-m", help="Candidate mixture YAML."),
    target: str = typer.Option(..., "--target", "-t", help="Held-out dataset[@version] whose metric is measured."),
    patch_steps: int = typer.Option(20, "--patch-steps", help="Steps of each candidate's brief fine-tune."),
    total_rows: int = typer.Option(None, "--total-rows", help="Rows of the optimized mixture's retraining."),
    retrain: bool = typer.Option(True, "--retrain/--no-retrain", help="Retrain on the optimized mixture."),
    autorater: str = typer.Option(None, "--autorater", "-a", help="Name of the retrained autorater."),
    seed: int = SEED, epochs: float = EPOCHS, steps: int = STEPS, batch_size: int = BATCH, lr: float = LR,
    head_lr: float = HEAD_LR, max_length: int = MAX_LEN, train_layers: int = LAYERS, device: str = DEVICE,
    model_cards_dir: Path = CARDS, json_out: bool = JSON_OPTION,
) -> None:
    """Choose mixture weights by tail-patching (FLAMe-Opt) and retrain on the optimized mixture."""
    reg = open_registry()
    cfg = _config(seed, epochs, steps, batch_size, lr, head_lr, max_length, train_layers, device, False)
    res = reg.tail_patch(base=base, mixture=mixture, target=target, steps=patch_steps, config=cfg,
                         total_rows=total_rows, retrain=retrain, autorater=autorater, model_cards_dir=model_cards_dir)
    if json_out:
        print_json(res)
        return
    console.print(f"{res.target} {res.metric}: base {res.baseline:.4f}", highlight=False)
    for d in sorted(res.deltas, key=lambda d: -d.delta):
        console.print(f"  {d.dataset:32s} {d.delta:+.4f}  weight {res.weights.get(d.dataset, 0):.3f}", highlight=False)
    if res.no_positive:
        console.print("no candidate improved the target: uniform weights kept")
    if res.retrained:
        console.print(f"retrained {res.retrained.checkpoint.ref} on {res.retrained.rows_used} rows", highlight=False)


@app.command("lora")
def lora_cmd(
    base: str = typer.Option(..., "--base", help="llm-judge checkpoint AUTORATER@VERSION (a local causal-LM folder)."),
    mixture: Path = typer.Option(..., "--mixture", "-m", help="Mixture YAML (see mixtures/default.yaml)."),
    autorater: str = typer.Option(..., "--autorater", "-a", help="Autorater name of the trained judge."),
    rank: int = typer.Option(8, "--rank", help="LoRA rank r."),
    alpha: int = typer.Option(16, "--alpha", help="LoRA alpha (the update is alpha/r · BA)."),
    dropout: float = typer.Option(0.05, "--dropout", help="LoRA dropout."),
    target_modules: str = typer.Option("all-linear", "--target-modules",
                                       help="all-linear, or comma-separated module names (e.g. q_proj,v_proj,lm_head)."),
    one_order: bool = typer.Option(False, "--one-order", help="Show each pair in one random order, not both."),
    shuffle_labels: bool = typer.Option(False, "--shuffle-labels",
                                        help="Train on shuffled labels (a deliberately degraded judge)."),
    dtype: str = typer.Option("float32", "--dtype", help="float32 or bfloat16."),
    seed: int = SEED, epochs: float = EPOCHS, steps: int = STEPS,
    batch_size: int = typer.Option(8, "--batch-size", help="Prompts per step."),
    lr: float = typer.Option(2e-4, "--lr", help="Learning rate of the LoRA matrices."),
    max_length: int = typer.Option(512, "--max-length", help="Tokens of prompt + answer (prompts cut from the left)."),
    device: str = DEVICE, model_cards_dir: Path = CARDS, json_out: bool = JSON_OPTION,
) -> None:
    """Fine-tune a generative judge with LoRA (peft) to answer the registry's protocol prompts with the
    human judgments of a mixture; the merged weights are registered as a new llm-judge checkpoint."""
    from registry.domain.training import LoRAConfig

    reg = open_registry()
    modules = target_modules if target_modules == "all-linear" else tuple(
        m.strip() for m in target_modules.split(",") if m.strip())
    cfg = LoRAConfig(seed=seed, epochs=epochs, max_steps=steps, batch_size=batch_size, lr=lr, max_length=max_length,
                     rank=rank, alpha=alpha, dropout=dropout, target_modules=modules, both_orders=not one_order,
                     device=device, dtype=dtype, shuffle_labels=shuffle_labels)  # type: ignore[arg-type]
    res = reg.train_lora(base=base, mixture=mixture, autorater=autorater, config=cfg, model_cards_dir=model_cards_dir,
                         on_progress=None if json_out else _progress)
    if json_out:
        print_json(res)
    else:
        console.print(f"trained {res.checkpoint.ref} (LoRA on {base}) on {res.rows_used} rows in {res.seconds:.1f} s "
                      f"({res.rows_per_s:.1f} prompts/s); evaluate it with an llm-judge evaluator, e.g. "
                      f"`autorater evaluator create --checkpoint {res.checkpoint.ref} --protocol pairwise-base`",
                      highlight=False)
