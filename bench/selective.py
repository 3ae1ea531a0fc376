"""Selective evaluation with a guarantee (Trust or Escalate) and PPI++ on real registered data
(issue 15, items 5 and 6).

    .venv/bin/python -m bench.selective                       # registry under /tmp/bench-selective
    .venv/bin/python -m bench.selective --home DIR --reuse    # a registry this script filled before

1. A registry with the five LLMBar sets (Natural and Adversarial GPTInst, GPTOut, Manual, Neighbor;
   419 pairs), every LLMBar judge output under ``Dataset/LLMBar`` imported (``import_tree``: GPT-4
   and ChatGPT under each protocol, both orders judged), the baselines created and the untrained
   MiniLM scorer run on LLMBar Natural (its P(A): the ``prob_a`` confidence; one order).
2. Guarantee: for each judge × set (and the five sets pooled), ``--splits`` seeded random
   calibration/test splits (half/half); on each, the threshold of
   :func:`registry.domain.selective.calibrate` and the test accuracy on the kept. Reported: the share
   of splits whose test accuracy on the kept is ≥ target (the guarantee asks ≥ 1 − δ), the share
   where a threshold was found, mean coverage and mean / lowest kept accuracy.
3. PPI++: for each judge × set, ``--draws`` seeded draws of N human labels (win rate of response A):
   coverage of the full-label value by the 95% PPI++ CI and by the human-only CI, mean widths, mean λ.
4. Cascades: MiniLM (P(A)) → ChatGPT → GPT-4 → human on Natural, and ChatGPT → GPT-4 → human on every
   set, one seeded split each (``analyze_selective``) plus the share of ``--splits`` splits meeting
   the target; coverage per level, human share, judgments and seconds per 1000 test examples.

Writes a JSON of every figure (``--json``, default bench/out/selective.json) and prints Markdown
tables for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from bench.metaeval import data_root

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SETS = ("llmbar-natural", "llmbar-adversarial-gptinst", "llmbar-adversarial-gptout", "llmbar-adversarial-manual",
        "llmbar-adversarial-neighbor")
JUDGES = ("gpt-4/llmbar-vanilla", "gpt-4/llmbar-cot", "gpt-4/llmbar-swap_cot", "chatgpt/llmbar-vanilla",
          "chatgpt/llmbar-cot")


def build(home: Path, reuse: bool):
    import registry

    root = data_root()
    if reuse and (home / "registry.db").exists():
        return registry.open(home=home, data_root=root)
    reg = registry.init(home=home, data_root=root)
    reg.register_all(root, only=SETS)
    reg.import_tree(root / "princeton-nlp__LLMBar/Dataset/LLMBar", n_boot=50)
    reg.create_baselines()
    reg.evaluate("minilm-untrained", "llmbar-natural", n_boot=50)
    return reg


def _short(name: str) -> str:
    return name.replace("llmbar-adversarial-", "adv-").replace("llmbar-", "")


def guarantee(reg, args) -> list[dict]:
    from registry.domain import selective as S
    from registry.services.selective import judged

    rows, pooled = [], {}
    for judge in JUDGES:
        for ds in SETS:
            run, _ = judged(reg._ctx, judge, ds)
            level = run.level("orders")
            pooled.setdefault(judge, []).append(level)
            for target, delta in args.levels:
                sim = S.simulate([level], target=target, delta=delta, splits=args.splits, seed=args.seed)
                rows.append({"judge": judge, "dataset": ds, "confidence": "orders", "n": len(level.conf),
                             "accuracy": float(np.mean(level.correct)), **sim.as_dict()})
    for judge, levels in pooled.items():
        level = S.Level(judge, np.concatenate([lv.conf for lv in levels]), np.concatenate([lv.correct for lv in levels]))
        for target, delta in args.levels:
            sim = S.simulate([level], target=target, delta=delta, splits=args.splits, seed=args.seed)
            rows.append({"judge": judge, "dataset": "all five (pooled)", "confidence": "orders", "n": len(level.conf),
                         "accuracy": float(np.mean(level.correct)), **sim.as_dict()})
    run, _ = judged(reg._ctx, "minilm-untrained", "llmbar-natural")
    level = run.level("prob_a")
    for target, delta in ((0.6, 0.1), *args.levels):
        sim = S.simulate([level], target=target, delta=delta, splits=args.splits, seed=args.seed)
        rows.append({"judge": "minilm-untrained", "dataset": "llmbar-natural", "confidence": "prob_a",
                     "n": len(level.conf), "accuracy": float(np.mean(level.correct)), **sim.as_dict()})
    return rows


def ppi(reg, args) -> list[dict]:
    from registry.domain import ppi as P
    from registry.services.selective import ppi_values

    rows = []
    for judge in JUDGES + ("minilm-untrained",):
        for ds in SETS if judge != "minilm-untrained" else ("llmbar-natural",):
            _, metric, _, y, f = ppi_values(reg._ctx, judge, ds)
            for n in args.human_labels:
                if n > len(y):
                    continue
                sim = P.simulate(y, f, n=n, draws=args.draws, seed=args.seed)
                rows.append({"judge": judge, "dataset": ds, "metric": metric, **sim.as_dict()})
    return rows


def cascades(reg, args) -> list[dict]:
    api = reg
    target, delta = args.cascade_level
    plans = [("llmbar-natural", ["minilm-untrained", "chatgpt/llmbar-vanilla", "gpt-4/llmbar-vanilla"])]
    plans += [(ds, ["chatgpt/llmbar-vanilla", "gpt-4/llmbar-vanilla"]) for ds in SETS]
    plans += [(ds, ["chatgpt/llmbar-cot", "gpt-4/llmbar-cot"]) for ds in SETS]
    out = []
    for ds, names in plans:
        r = api.analyze_selective(None, ds, target=target, delta=delta, cascade=names, seed=args.seed,
                                  splits=args.splits)
        out.append(r.to_dict())
    return out


def pooled_cascades(reg, args) -> list[dict]:
    """ChatGPT → GPT-4 → human on the five sets pooled (419 examples), through the domain functions."""
    from registry.domain import selective as S
    from registry.services.selective import cascade_levels

    target, delta = args.cascade_level
    out = []
    for protocol in ("vanilla", "cot"):
        names = [f"chatgpt/llmbar-{protocol}", f"gpt-4/llmbar-{protocol}"]
        parts = [cascade_levels(reg._ctx, names, ds)[1] for ds in SETS]
        levels = [S.Level(name, np.concatenate([p[i].conf for p in parts]), np.concatenate([p[i].correct for p in parts]),
                          {"judgments": np.concatenate([p[i].costs["judgments"] for p in parts])})
                  for i, name in enumerate(names)]
        cal_idx, test_idx = S.random_splits(len(levels[0].conf), 0.5, 1, args.seed)
        cal = S.calibrate_cascade([lv.take(cal_idx[0]) for lv in levels], target=target, delta=delta)
        res = S.apply_cascade([lv.take(test_idx[0]) for lv in levels], [c.threshold for c in cal], target=target)
        sim = S.simulate(levels, target=target, delta=delta, splits=args.splits, seed=args.seed)
        out.append({"dataset": "all five (pooled)", "evaluators": names, "human_fraction": res.human_fraction,
                    "accuracy": res.accuracy, "cost_per_1000": {**res.cost_per_1000, "seconds": 0.0},
                    "levels": [{"evaluator": lv.name, "threshold": lv.threshold, "test": lv.as_dict()}
                               for lv in res.levels[:-1]],
                    "simulation": sim.as_dict()})
    return out


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _f(x, d=3) -> str:
    return "-" if x is None else f"{x:.{d}f}"


def markdown(result: dict) -> str:
    found = [r for r in result["guarantee"] if r["with_threshold"] > 0]
    vacuous = [r for r in result["guarantee"] if r["with_threshold"] == 0]
    lines = ["### Guarantee over random calibration/test splits", "",
             "| judge | set | conf. | n | acc. all | target / δ | met (test half) | met (whole set) | threshold "
             "found | mean coverage | kept acc. mean / min |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in found:
        lines.append(f"| {r['judge']} | {_short(r['dataset'])} | {r['confidence']} | {r['n']} | {_f(r['accuracy'])} | "
                     f"{r['target']:g} / {r['delta']:g} | **{_pct(r['met'])}** | {_pct(r['met_full'])} | "
                     f"{_pct(r['with_threshold'])} | {_pct(r['mean_coverage'])} | {_f(r['mean_accuracy'])} / "
                     f"{_f(r['min_accuracy'])} |")
    lines += ["", f"{len(vacuous)} more judge × set × level combinations never found a threshold (every example "
              "escalated: the guarantee holds vacuously): " + "; ".join(
                  f"{r['judge']} {_short(r['dataset'])} {r['target']:g}" for r in vacuous)]
    lines += ["", "### PPI++ (win rate of response A) over random draws of N human labels", "",
              "| judge | set | N / n | full-label value | coverage PPI++ / human-only | mean width PPI++ / human-only "
              "| mean λ |", "|---|---|---|---|---|---|---|"]
    for r in result["ppi"]:
        lines.append(f"| {r['judge']} | {_short(r['dataset'])} | {r['n']} / {r['n_total']} | {_f(r['truth'])} | "
                     f"{_pct(r['ppi_coverage'])} / {_pct(r['classical_coverage'])} | "
                     f"{_f(r['ppi_mean_width'])} / {_f(r['classical_mean_width'])} | {_f(r['mean_lambda'], 2)} |")
    lines += ["", "### Cascades (one seeded split; met over the random splits)", "",
              "| set | cascade | per level: threshold, share decided (acc. kept) | human | acc. of judges | "
              "judgments / s per 1000 | met over splits (test half / whole set) |", "|---|---|---|---|---|---|---|"]
    for r in result["cascades"]:
        levels = "; ".join(f"{lv['evaluator'].split('/')[0]}: λ {_f(lv['threshold'], 2)}, {_pct(lv['test']['coverage'])} "
                           f"({_f(lv['test']['accuracy'])})" for lv in r["levels"])
        cost = r["cost_per_1000"]
        lines.append(f"| {_short(r['dataset'].split('@')[0])} | {' → '.join(e.split('/')[0] for e in r['evaluators'])}"
                     f" ({r['levels'][-1]['evaluator'].split('/')[-1].replace('llmbar-', '')}) | {levels} | "
                     f"{_pct(r['human_fraction'])} | {_f(r['accuracy'])} | {cost['judgments']:,.0f} / "
                     f"{_f(cost['seconds'], 1)} | {_pct(r['simulation']['met'])} / "
                     f"{_pct(r['simulation']['met_full'])} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", type=Path, default=Path("/tmp/bench-selective"))
    p.add_argument("--reuse", action="store_true", help="Reuse the registry at --home if it exists.")
    p.add_argument("--splits", type=int, default=200)
    p.add_argument("--draws", type=int, default=500)
    p.add_argument("--human-labels", type=int, nargs="+", default=[20, 40])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=PROJECT_ROOT / "bench" / "out" / "selective.json")
    args = p.parse_args(argv)
    args.levels = ((0.9, 0.1), (0.8, 0.1))
    args.cascade_level = (0.85, 0.1)
    t0 = time.perf_counter()
    reg = build(args.home, args.reuse)
    built = time.perf_counter() - t0
    result = {"command": "python -m bench.selective " + " ".join(argv if argv is not None else sys.argv[1:]),
              "splits": args.splits, "draws": args.draws, "seed": args.seed, "setup_s": built}
    t = time.perf_counter()
    result["guarantee"] = guarantee(reg, args)
    result["guarantee_s"] = time.perf_counter() - t
    t = time.perf_counter()
    result["ppi"] = ppi(reg, args)
    result["ppi_s"] = time.perf_counter() - t
    t = time.perf_counter()
    result["cascades"] = cascades(reg, args) + pooled_cascades(reg, args)
    result["cascades_s"] = time.perf_counter() - t
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print(markdown(result))
    print(f"\nsetup {built:.1f} s, guarantee {result['guarantee_s']:.1f} s, PPI {result['ppi_s']:.1f} s, "
          f"cascades {result['cascades_s']:.1f} s; figures in {args.json}")
    reg.close()


if __name__ == "__main__":
    main()
