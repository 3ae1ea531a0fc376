"""Training benchmark: FLAMe-style multitask training of the MiniLM autorater on the registered
catalog, held-out quality against heuristic baselines, and tail-patch vs uniform mixtures.

    AUTORATER_HOME=.autorater/train-bench nice -n 10 .venv/bin/python -m bench.train_quality \\
        [--mixture mixtures/default.yaml] [--out bench/TRAIN_QUALITY.md] [--json bench/train_quality.json]

Steps: register the mixture's and the held-out datasets from the data folder (idempotent);
train the uniform mixture (CPU; rows/s and wall time recorded); tail-patch from that checkpoint on
each component, measured on ``--target`` (a held-out *dev* set that is not part of the quality
table); retrain on the optimized mixture with ``--tp-rows`` rows; meta-evaluate both checkpoints and
the heuristic baselines (random, always-first/second, longer/shorter) on every held-out dataset with
``run_evaluation`` (95% bootstrap CIs, paired test against the best); write the report and the model
card of the uniform checkpoint (with its held-out results) into ``--model-cards-dir``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mixture", default="mixtures/default.yaml")
    ap.add_argument("--autorater", default="minilm-flame")
    ap.add_argument("--target", default="llmeval2", help="tail-patch target (held-out dev set)")
    ap.add_argument("--epochs", type=float, default=5.0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--head-lr", type=float, default=2e-3)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--train-layers", type=int, default=0)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tp-steps", type=int, default=30, help="tail-patch steps per candidate")
    ap.add_argument("--tp-rows", type=int, default=5000, help="rows of the tail-patch-optimized mixture")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--out", default="bench/TRAIN_QUALITY.md")
    ap.add_argument("--json", default="bench/train_quality.json")
    ap.add_argument("--model-cards-dir", default="model_cards")
    ap.add_argument("--report-only", action="store_true", help="re-render --out from --json; run nothing")
    args = ap.parse_args(argv)
    if args.report_only:
        report = json.loads(Path(args.json).read_text())
        Path(args.out).write_text(render(report, report["names"], args) + "\n")
        return 0

    os.environ.setdefault("AUTORATER_HOME", ".autorater/train-bench")
    from registry.config import Settings
    from registry.domain.training import TrainConfig
    from registry.services.app import init_registry
    from registry.services.datasets import register_all
    from registry.services.evaluation import run_evaluation
    from registry.services.evaluators import create_evaluator, ensure_baselines
    from registry.services.queries import leaderboard
    from registry.services.training import Mixture, tail_patch, train_autorater, write_model_card

    t_all = time.perf_counter()
    settings = Settings.from_env()
    reg = init_registry(settings)
    mixture = Mixture.from_yaml(args.mixture)
    needed = {c.name for c in mixture.components} | set(mixture.held_out) | {args.target}
    res = register_all(reg, settings.data_root, only=needed)
    if res.failed:
        raise SystemExit(f"registration failed: {res.failed}")
    config = TrainConfig(seed=args.seed, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         head_lr=args.head_lr, max_length=args.max_length, train_layers=args.train_layers)
    report: dict = {"config": config.to_dict(), "mixture": mixture.to_dict(), "target": args.target}

    def progress(step: int, total: int, loss: float) -> None:
        if step == total or step % 500 == 0:
            _log(f"  step {step}/{total} loss {loss:.4f}")

    _log(f"training {args.autorater} on {args.mixture} (uniform weights)")
    uniform = train_autorater(reg, autorater=args.autorater, mixture=mixture, config=config, on_progress=progress)
    _log(f"uniform: {uniform.checkpoint.ref} rows {uniform.rows_used} in {uniform.seconds:.0f} s "
         f"({uniform.rows_per_s:.1f} rows/s) metrics {uniform.metrics}")
    report["uniform"] = {"ref": uniform.checkpoint.ref, "rows": uniform.rows_used, "seconds": uniform.seconds,
                         "rows_per_s": uniform.rows_per_s, "metrics": uniform.metrics, "datasets": uniform.datasets}
    Path(args.json).write_text(json.dumps(report, indent=2, default=str))

    _log(f"tail-patch from {uniform.checkpoint.ref}, target {args.target}, {args.tp_steps} steps per candidate")
    tp = tail_patch(reg, base=uniform.checkpoint.ref, candidates=mixture, target=args.target, steps=args.tp_steps,
                    config=config, total_rows=args.tp_rows, autorater=f"{args.autorater}-tailpatch",
                    on_progress=lambda name, v: _log(f"  {name}: {v:+.4f}"))
    rt = tp.retrained
    _log(f"tail-patch weights {tp.weights}; retrained {rt.checkpoint.ref} rows {rt.rows_used} "
         f"in {rt.seconds:.0f} s")
    report["tail_patch"] = {"base": tp.base, "target": tp.target, "metric": tp.metric, "baseline": tp.baseline,
                            "deltas": {d.dataset: d.delta for d in tp.deltas}, "weights": tp.weights,
                            "patch_rows": tp.patch_rows, "probe_seconds": tp.seconds, "no_positive": tp.no_positive,
                            "retrained": {"ref": rt.checkpoint.ref, "rows": rt.rows_used, "seconds": rt.seconds,
                                          "metrics": rt.metrics, "datasets": rt.datasets}}
    Path(args.json).write_text(json.dumps(report, indent=2, default=str))

    evaluators = [e.name for e in ensure_baselines(reg, minilm=False)]
    names = {}
    for label, ref in (("uniform", uniform.checkpoint.ref), ("tail-patch", rt.checkpoint.ref)):
        ev, _ = create_evaluator(reg, checkpoint=ref, protocol="score-single-order", name=f"{ref}")
        names[label] = ev.name
        evaluators.append(ev.name)
    eval_sets = list(dict.fromkeys(list(mixture.held_out) + [args.target]))
    timings = {}
    for d in eval_sets:
        task_type = reg.store.get_version(d).task_type
        for ev in evaluators:
            kind = reg.store.get_evaluator(ev).kind
            if kind != "encoder-scorer" and task_type != "pairwise":
                continue
            t = time.perf_counter()
            run = run_evaluation(reg, ev, d, n_boot=args.n_boot, seed=args.seed)
            timings[(ev, d)] = time.perf_counter() - t
            _log(f"  eval {ev:28s} {d:30s} {timings[(ev, d)]:6.1f}s executed {run.n_executed}")

    boards = {}
    for d in eval_sets:
        b = leaderboard(reg, d, n_boot=args.n_boot)
        boards[d] = {"metric": b.metric, "standings": [
            {"evaluator": s.evaluator, "value": s.value, "ci_low": s.ci_low, "ci_high": s.ci_high, "n": s.n,
             "p_value": s.p_value, "tied_with_best": s.tied_with_best} for s in b.standings]}
    report["leaderboards"] = boards
    report["names"] = names
    report["wall_seconds"] = time.perf_counter() - t_all
    Path(args.json).write_text(json.dumps(report, indent=2, default=str))

    def row(d: str, ev: str) -> dict | None:
        return next((s for s in boards[d]["standings"] if s["evaluator"] == ev), None)

    eval_metrics = [{"dataset": d, "metric": boards[d]["metric"], **{k: row(d, names["uniform"])[k] for k in
                                                                  ("value", "ci_low", "ci_high", "n")}}
                    for d in mixture.held_out if row(d, names["uniform"])]
    card = write_model_card(reg, uniform.checkpoint.ref, Path(args.model_cards_dir), eval_metrics=eval_metrics)
    report["model_card"] = str(card)
    Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    Path(args.out).write_text(render(report, names, args) + "\n")
    _log(f"wrote {args.out}, {args.json}, {card}; total {report['wall_seconds']:.0f} s")
    return 0


def render(report: dict, names: dict, args) -> str:
    """The Markdown report."""
    u, tp = report["uniform"], report["tail_patch"]
    rt = tp["retrained"]
    lines = ["# Training quality (bench/train_quality.py)", "",
             f"Mixture `{args.mixture}`; config {report['config']}; total wall time {report['wall_seconds']:.0f} s.", "",
             "## Training", "",
             "| run | checkpoint | rows | train wall s | rows/s |", "|---|---|---:|---:|---:|",
             f"| uniform | {u['ref']} | {u['rows']} | {u['seconds']:.0f} | {u['rows_per_s']:.1f} |",
             f"| tail-patch optimized | {rt['ref']} | {rt['rows']} | {rt['seconds']:.0f} | "
             f"{rt['rows'] / rt['seconds'] if rt['seconds'] else float('nan'):.1f} |", "",
             f"Tail-patch on `{tp['target']}` ({tp['metric']}; base {tp['baseline']:.3f}; probes used "
             f"{tp['patch_rows']} rows, {tp['probe_seconds']:.0f} s):", "",
             "| component | delta | weight |", "|---|---:|---:|"]
    for k, v in sorted(tp["deltas"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {k} | {v:+.4f} | {tp['weights'].get(k, 0):.3f} |")
    lines += ["", "The optimized retraining reuses the frozen encoder's pooled vectors cached by the uniform run in "
              "the same process (heads-only training), so its wall time is head training only; a cold run "
              "costs about its rows / the uniform run's rows/s.", ""]
    heur = ["random", "always-first", "always-second", "longer", "shorter"]
    lines += ["## Summary (held-out; pairwise ReIFE accuracy, pointwise Spearman, classification balanced accuracy)",
              "", "| dataset | uniform | tail-patch | " + " | ".join(heur) + " | uniform > every heuristic |",
              "|---|---:|---:|" + "---:|" * len(heur) + "---|"]
    for d, b in report["leaderboards"].items():
        vals = {s["evaluator"]: s for s in b["standings"]}
        u_s, t_s = vals.get(names["uniform"]), vals.get(names["tail-patch"])

        def cell(s):
            return "" if s is None else f"{s['value']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}]"

        hv = [vals.get(h) for h in heur]
        beats = "" if not any(hv) or u_s is None else (
            "yes" if all(u_s["value"] > h["value"] for h in hv if h) else "no")
        lines.append(f"| {d} | {cell(u_s)} | {cell(t_s)} | " + " | ".join(
            "" if h is None else f"{h['value']:.3f}" for h in hv) + f" | {beats} |")
    lines += ["", "## Held-out quality (leaderboards)", ""]
    for d, b in report["leaderboards"].items():
        lines += [f"### {d} ({b['metric']})", "", "| evaluator | value | 95% CI | n | p vs best |",
                  "|---|---:|---|---:|---:|"]
        for s in b["standings"]:
            p = "" if s["p_value"] is None else f"{s['p_value']:.3f}"
            lines.append(f"| {s['evaluator']} | {s['value']:.3f} | [{s['ci_low']:.3f}, {s['ci_high']:.3f}] | "
                         f"{s['n']} | {p} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
