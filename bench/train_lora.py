"""LoRA benchmark: CPU throughput of LoRA fine-tuning of a causal-LM judge against full fine-tuning
of the same model on the same prompts (the baseline, measured in the same run), and what the
trained judge does under its protocols on held-out data.

    .venv/bin/python -m bench.train_lora [--hidden 128 --layers 4] [--rows 64] [--epochs 3] [--repeats 2]

Steps: register the training and held-out datasets from the data folder into a bench registry
(``AUTORATER_HOME``, default ``.autorater/lora-bench``); build a tiny random chat model locally
(``build_tiny_causal_lm``; nothing is downloaded) and register it as an ``llm-judge`` checkpoint;
render the mixture as protocol prompts (``judge_items``); then time, taking turns and keeping the
best of ``--repeats``: (a) LoRA (rank 8 on every linear layer and the output head) and (b) full
fine-tuning of every parameter, both through ``LoRATrainer.train`` (same batches, same loss, same
optimizer; only the trainable parameters differ). Finally ``train_llm_judge`` trains the judge for
``--judge-epochs`` and the base and the trained judge are meta-evaluated with ``run_evaluation``
(parse rate, headline metric with its 95% CI) on held-out sets never trained on.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

TRAIN = ("faireval", "summac-factcc", "bagel-quality")
HELD_OUT = {"llmbar-natural": "pairwise-base", "llmbar-adversarial-manual": "pairwise-base",
            "summac-xsumfaith": "classification-direct", "sfhot-naturalness": "pointwise-rating"}
TINY_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head")


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--rows", type=int, default=64, help="rows per training dataset")
    ap.add_argument("--epochs", type=float, default=2.0, help="epochs of each timed pass")
    ap.add_argument("--judge-epochs", type=float, default=20.0)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=192)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--no-judge", action="store_true", help="throughput rows only: no judge training / evaluation")
    args = ap.parse_args(argv)

    os.environ.setdefault("AUTORATER_HOME", ".autorater/lora-bench")
    import tempfile

    import torch

    from registry.adapters.backends.tiny import build_tiny_causal_lm
    from registry.adapters.training.lora_trainer import LoRATrainer
    from registry.config import Settings
    from registry.domain.training import LoRAConfig, Mixture
    from registry.services.app import init_registry
    from registry.services.datasets import register_all
    from registry.services.evaluation import load_predictions, run_evaluation
    from registry.services.evaluators import checkpoint_folder, create_evaluator, register_checkpoint
    from registry.services.training import build_training_set, judge_items, train_llm_judge

    settings = Settings.from_env()
    reg = init_registry(settings)  # idempotent: creates or upgrades the bench registry
    if settings.data_root is None:
        raise SystemExit("no data root: set AUTORATER_DATA")
    register_all(reg, settings.data_root, only=set(TRAIN) | set(HELD_OUT))
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_tiny_causal_lm(Path(tmp) / "m", hidden_size=args.hidden, layers=args.layers, seed=0)
        base, _ = register_checkpoint(reg, f"tiny-{args.hidden}x{args.layers}", kind="llm-judge", path=folder)
    mixture = Mixture.from_dict({"name": "lora-bench", "max_rows_per_dataset": args.rows,
                                 "components": [{"dataset": d} for d in TRAIN], "held_out": list(HELD_OUT)})
    items = judge_items(reg, build_training_set(reg, mixture, seed=0), both_orders=True, seed=0)
    base_folder = checkpoint_folder(reg, base)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; model {base.ref} "
          f"(hidden {args.hidden}, {args.layers} layers); {len(items)} prompts from {len(TRAIN)} datasets × "
          f"{args.rows} rows (pairs in both orders), max_length {args.max_length}, batch {args.batch_size}, "
          f"{args.epochs} epochs per pass")

    cfg = LoRAConfig(seed=0, epochs=args.epochs, batch_size=args.batch_size, lr=5e-3, max_length=args.max_length,
                     target_modules=TINY_TARGETS)

    def lora() -> LoRATrainer:
        return LoRATrainer(cfg, base_folder)

    def full() -> LoRATrainer:
        t = LoRATrainer(cfg, base_folder)
        t.model = t.model.unload()        # the plain model, every parameter trained
        for p in t.model.parameters():
            p.requires_grad_(True)
        t.trainable_parameters = t.total_parameters = sum(p.numel() for p in t.model.parameters())
        return t

    best: dict[str, dict] = {}
    for r in range(args.repeats):
        for name, make in (("LoRA r=8", lora), ("full fine-tuning", full))[::1 if r % 2 == 0 else -1]:
            trainer = make()
            c0, w0 = _cpu(), time.perf_counter()
            m = trainer.train(items)
            wall, cpu = time.perf_counter() - w0, _cpu() - c0
            row = {"wall": wall, "cpu": cpu, "prompts": m["rows_trained"],
                   "tokens": m["prompt_tokens"] + m["answer_tokens"], "trainable": m["trainable_parameters"],
                   "total": m["total_parameters"], "final_loss": m.get("final_loss", float("nan"))}
            _log(f"{name}: {wall:.1f} s wall, {cpu:.1f} s CPU, {row['prompts'] / wall:.1f} prompts/s, "
                 f"final loss {row['final_loss']:.3f}")
            if name not in best or wall < best[name]["wall"]:
                best[name] = row
    print("\n| run | trainable / total parameters | wall s | prompts/s | tokens/s | CPU s | final loss |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, row in best.items():
        print(f"| {name} | {int(row['trainable']):,} / {int(row['total']):,} | {row['wall']:.2f} | "
              f"{row['prompts'] / row['wall']:.1f} | {row['tokens'] / row['wall']:,.0f} | {row['cpu']:.2f} | "
              f"{row['final_loss']:.3f} |")
    ratio = (best["LoRA r=8"]["prompts"] / best["LoRA r=8"]["wall"]) / (
        best["full fine-tuning"]["prompts"] / best["full fine-tuning"]["wall"])
    print(f"\nLoRA / full fine-tuning throughput: {ratio:.2f}×")
    if args.no_judge:
        return 0

    _log(f"training the judge ({args.judge_epochs} epochs) with train_llm_judge")
    res = train_llm_judge(reg, autorater=f"{base.autorater}-lora", base=base.ref, mixture=mixture,
                          config=LoRAConfig(**{**cfg.to_dict(), "epochs": args.judge_epochs}))
    m = res.metrics
    print(f"\n{res.checkpoint.ref}: {int(m['rows_trained'])} prompts in {m['seconds']:.1f} s "
          f"({m['rows_per_s']:.1f}/s), loss {m['first_loss']:.3f} → {m.get('final_loss', float('nan')):.3f}")
    print("\n| held-out dataset | protocol | base parse rate | base metric | LoRA parse rate | LoRA metric [95% CI] |")
    print("|---|---|---:|---:|---:|---|")
    for dataset, protocol in HELD_OUT.items():
        cells = []
        for ref in (base.ref, res.checkpoint.ref):
            ev, _ = create_evaluator(reg, checkpoint=ref, protocol=protocol,
                                     config={"max_tokens": 6, "max_input_tokens": args.max_length})
            run = run_evaluation(reg, evaluator=ev.name, dataset=dataset, n_boot=args.n_boot)
            parsed = load_predictions(reg, run).column("parsed").to_pylist()
            headline = {"pairwise-base": "accuracy", "classification-direct": "balanced_accuracy",
                        "pointwise-rating": "spearman"}[protocol]
            metric = run.metric(headline)
            value = "n/a (nothing parsed, or constant)" if metric is None or metric.value is None else (
                f"{headline} {metric.value:.3f} [{metric.ci_low:.3f}, {metric.ci_high:.3f}]"
                if metric.ci_low is not None else f"{headline} {metric.value:.3f}")
            cells += [f"{sum(map(bool, parsed)) / len(parsed):.2f}", value]
        print(f"| {dataset} | {protocol} | {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
