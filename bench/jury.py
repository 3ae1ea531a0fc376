"""Juries of the imported LLMBar judges (issue 15): do they beat the best single judge?

    .venv/bin/python -m bench.jury [--n-boot 1000] [--max-size 5] [--out bench/out/jury.json]

1. A throw-away registry (SQLite + DVC store in a temporary folder) with the five LLMBar sets
   registered with source ``llmbar`` from ``<data>/princeton-nlp__LLMBar/Dataset/LLMBar/...``, and every
   GPT-4 / ChatGPT ``result.json`` imported (``import_tree``: 27 judges per set, one per protocol).
2. Per set, three stored juries of *all* the set's judges (``create_jury`` + ``evaluate``:
   majority, weighted, stacked; 5 folds, seed 0) — chosen before looking at the data, so their
   out-of-fold accuracy is an honest estimate — each compared with the best single judge by the
   registry's paired test (``compare``: paired bootstrap of per-example accuracy credit).
3. Per set and combiner, ``analyze_jury`` (every jury of 2..max-size of the 12 most accurate
   judges; odd sizes for majority): the best subset and its paired test against the best single judge.
   Both the best subset and the best single judge are chosen on the same examples they are scored
   on (selection bias, the subset's more so: it is the best of ~1,000 juries).

Prints a Markdown table (what bench/RESULTS.md "Juries (issue 15)" holds) and writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

SETS = {
    "llmbar-natural": "Natural", "llmbar-adversarial-neighbor": "Adversarial/Neighbor",
    "llmbar-adversarial-gptinst": "Adversarial/GPTInst", "llmbar-adversarial-gptout": "Adversarial/GPTOut",
    "llmbar-adversarial-manual": "Adversarial/Manual",
}
COMBINERS = ("majority", "weighted", "stacked")


def _ci(value: float, lo: float, hi: float) -> str:
    return f"{100 * value:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def run(data: Path, home: Path, *, n_boot: int, max_size: int) -> dict:
    import registry

    llmbar = data / "princeton-nlp__LLMBar" / "Dataset" / "LLMBar"
    reg = registry.init(home=home, url=f"sqlite:///{home / 'registry.db'}", store=home / "store",
                        dvc_remote=str(home / "remote"), data_root=data)
    t0 = time.perf_counter()
    for name, folder in SETS.items():
        reg.register_dataset(name, source="llmbar", path=llmbar / folder / "dataset.json",
                             options={"category": name.removeprefix("llmbar-")})
    items = reg.import_tree(llmbar, n_boot=n_boot)
    failed = [i for i in items if i.status == "failed"]
    if failed:
        raise SystemExit(f"{len(failed)} imports failed: {failed[:3]}")
    setup_s = time.perf_counter() - t0
    out: dict = {"n_boot": n_boot, "max_size": max_size, "setup_seconds": setup_s, "sets": {}}
    for name in SETS:
        t1 = time.perf_counter()
        board = reg.leaderboard(name)
        judges = [s.evaluator for s in board.standings if reg.evaluator(s.evaluator).kind == "external"]
        best = next(s for s in board.standings if s.evaluator in judges)
        stats = reg.dataset(name).version.statistics or {}
        dist = stats.get("label_distribution") or {}
        row: dict = {"n_judges": len(judges), "n_examples": reg.dataset(name).version.row_count,
                     "label_a_share": dist.get("A", 0) / max(1, sum(dist.values())),
                     "best_single": {"evaluator": best.evaluator, "accuracy": best.value, "ci_low": best.ci_low,
                                     "ci_high": best.ci_high, "run": best.runs[0]},
                     "all_judges": {}, "search": {}}
        for combine in COMBINERS:
            jury = reg.create_jury(members=judges, combine=combine, folds=5, seed=0,
                                   name=f"{name}-all-{combine}").entity
            jrun = reg.evaluate(jury.name, name, n_boot=n_boot)
            acc = jrun.metric("accuracy")
            cmp = reg.compare(jrun.id, best.runs[0], n_boot=n_boot)
            row["all_judges"][combine] = {"accuracy": acc.value, "ci_low": acc.ci_low, "ci_high": acc.ci_high,
                                          "difference": cmp.paired_bootstrap["difference"],
                                          "p_value": cmp.paired_bootstrap["p_value"],
                                          "mcnemar_p": cmp.mcnemar.get("p_value"), "run": jrun.id}
            a = reg.analyze_jury(name, combine=combine, max_size=max_size, n_boot=n_boot,
                                 members=judges)
            row["search"][combine] = {"members": list(a.best.members), "accuracy": a.best.accuracy,
                                      "ci_low": a.best.ci_low, "ci_high": a.best.ci_high, "n_subsets": a.n_subsets,
                                      "difference": a.test.difference, "p_value": a.test.p_value,
                                      "best_single": a.best_single.evaluator}
        row["seconds"] = time.perf_counter() - t1
        out["sets"][name] = row
        print(f"{name}: {row['seconds']:.1f} s", flush=True)
    reg.close()
    return out


def table(res: dict) -> str:
    head = ("| set (n, judges, label A) | best single judge | all-judges majority | all-judges weighted "
            "| all-judges stacked | best searched jury (combiner) |\n|---|---|---|---|---|---|")
    lines = [head]
    for name, r in res["sets"].items():
        b = r["best_single"]
        share = f"A {100 * r['label_a_share']:.0f}%"
        cells = [f"{name.removeprefix('llmbar-')} ({r['n_examples']}, {r['n_judges']}, {share})",
                 f"{b['evaluator']} {_ci(b['accuracy'], b['ci_low'], b['ci_high'])}"]
        for c in COMBINERS:
            j = r["all_judges"][c]
            cells.append(f"{_ci(j['accuracy'], j['ci_low'], j['ci_high'])}, Δ {100 * j['difference']:+.1f}, "
                         f"p={j['p_value']:.3g}")
        top = max(COMBINERS, key=lambda c: r["search"][c]["accuracy"])
        s = r["search"][top]
        cells.append(f"{_ci(s['accuracy'], s['ci_low'], s['ci_high'])} ({top}, {len(s['members'])} judges), "
                     f"Δ {100 * s['difference']:+.1f}, p={s['p_value']:.3g}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    from bench.metaeval import data_root

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--max-size", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "jury.json")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-jury-") as tmp:
        res = run(data_root(), Path(tmp), n_boot=args.n_boot, max_size=args.max_size)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1))
    print(table(res))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
