"""Baseline leaderboards on every registered dataset: the heuristic baselines and the untrained
MiniLM scorer run on every catalog dataset of their task types, one leaderboard per dataset.

    AUTORATER_HOME=.autorater/leaderboards .venv/bin/python -m bench.leaderboards [--out bench/LEADERBOARDS.md]
        [--rescore] [--report-only]

Resumable: judgments are cached, so an interrupted run continues where it stopped. Writes a
Markdown report with one table per dataset (headline metric with its 95% bootstrap CI, the
paired test against the best) and the wall time of each run; pairwise tables also show bias
diagnostics (flip rate, length-controlled accuracy, position and length preference). ``--rescore``
first scores every stored run again from its predictions (what ``autorater eval rescore --all``
does: runs made before a metric existed get it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


BIAS_COLUMNS = {"flip_rate": "flip", "lc_accuracy": "LC acc", "prob_prefer_first": "first",
                "prob_prefer_longer": "longer", "prob_prefer_longer_human_shorter": "longer (h. shorter)"}
"""Bias diagnostics shown beside the headline on pairwise leaderboards (metric name: column title)."""


def _num(x: float | None) -> str:
    return "–" if x is None or x != x else f"{x:.3f}"


def main(argv: list[str] | None = None) -> int:
    from registry.adapters.evaluators import EVALUATORS
    from registry.config import Settings
    from registry.services import datasets as svc
    from registry.services.app import init_registry
    from registry.services.evaluation import run_evaluation
    from registry.services.evaluators import ensure_baselines
    from registry.services.queries import leaderboard

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/LEADERBOARDS.md")
    ap.add_argument("--only", nargs="*", help="only these datasets")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--skip-minilm", action="store_true")
    ap.add_argument("--report-only", action="store_true",
                    help="run nothing: write the report from the runs already in the registry, listing missing ones")
    ap.add_argument("--rescore", action="store_true",
                    help="first score every stored run again from its predictions (`autorater eval rescore --all`), "
                         "e.g. to give runs made before them the bias diagnostics")
    args = ap.parse_args(argv)

    os.environ.setdefault("AUTORATER_HOME", ".autorater/leaderboards")
    settings = Settings.from_env()
    reg = init_registry(settings)
    t0 = time.perf_counter()
    if not args.report_only:
        svc.register_all(reg, settings.data_root, only=set(args.only) if args.only else None)
        evaluators = ensure_baselines(reg, minilm=not args.skip_minilm)
    else:
        evaluators = [e for e in reg.store.list_evaluators() if e.kind != "external"]
    datasets = sorted(reg.store.list_datasets(), key=lambda d: reg.store.get_version(d.name).row_count)
    if args.only:
        datasets = [d for d in datasets if d.name in args.only]
    timings: dict[tuple[str, str], tuple[float, int, int]] = {}
    missing: list[str] = []
    if args.rescore:
        from registry.services.rescore import rescore_runs

        t = time.perf_counter()
        rescored = rescore_runs(reg, all_runs=True)
        changed = sorted({name for r in rescored.runs for name in r.changed})
        print(f"re-scored {len(rescored.runs)} runs in {time.perf_counter() - t:.0f} s; added "
              f"{', '.join(rescored.added) or 'nothing'}; recomputed values that differ from the stored ones "
              f"(kept): {', '.join(changed) or 'none'}", flush=True)
    done = {(r.evaluator, r.dataset.split("@")[0]): r for r in reg.store.latest_runs()}
    for ev in evaluators:  # heuristics first (fast), the encoder last
        kinds = EVALUATORS.get(ev.kind).task_types
        for d in datasets:
            if d.task_type not in kinds:
                continue
            if args.report_only:
                run = done.get((ev.name, d.name))
                if run is None:
                    missing.append(f"{ev.name} on {d.name}")
                else:
                    timings[(ev.name, d.name)] = (run.seconds or float("nan"), run.n_executed, run.n_cached)
                continue
            t = time.perf_counter()
            run = run_evaluation(reg, ev.name, d.name, n_boot=args.n_boot)
            timings[(ev.name, d.name)] = (time.perf_counter() - t, run.n_executed, run.n_cached)
            print(f"{ev.name:18s} {d.name:36s} {timings[(ev.name, d.name)][0]:8.1f}s "
                  f"executed {run.n_executed} cached {run.n_cached}", flush=True)

    how = ("report written with `--report-only` from the runs already in the registry, which were produced by "
           "`.venv/bin/python -m bench.leaderboards`" if args.report_only else
           f"`.venv/bin/python -m bench.leaderboards`, total wall time {time.perf_counter() - t0:.0f} s")
    if args.rescore:
        how += " (`--rescore`: every stored run scored again from its predictions first)"
    lines = ["# Baseline leaderboards", "",
             f"Command: {how}.  ",
             f"Machine: 2 cores, no GPU, shared with other jobs; {time.strftime('%Y-%m-%d')}.  ",
             "Headline metric per task type: pairwise ReIFE accuracy (3-way agreement where labels have ties), "
             "pointwise example-level Spearman, classification balanced accuracy; 95% bootstrap CIs "
             f"({args.n_boot} resamples); *p* = paired test against the best (bootstrap); "
             "*tied* = not distinguishable from the best at α = 0.05. *run s* = wall time of the run that "
             "produced the numbers (a run served from the judgment cache takes about a second). Pairwise "
             "tables also show bias diagnostics of each run (issue 15; `autorater metrics list --task-type "
             "pairwise`): *flip* = flip_rate under swap, *LC acc* = length-controlled accuracy, *first* = "
             "prob_prefer_first, *longer* = prob_prefer_longer, *longer (h. shorter)* = "
             "prob_prefer_longer_human_shorter (– where a run has none, e.g. one order judged).", ""]
    if missing:
        lines += [f"**Not run yet ({len(missing)}):** " + "; ".join(missing) + ".", ""]
    for d in datasets:
        try:
            board = leaderboard(reg, d.name, n_boot=args.n_boot)
        except Exception as exc:  # a dataset no baseline can judge
            lines += [f"## {d.name}", "", f"no leaderboard: {exc}", ""]
            continue
        bias = BIAS_COLUMNS if d.task_type == "pairwise" else {}
        lines += [f"## {board.scope} ({d.task_type}, {board.metric})", "",
                  f"| # | evaluator | {board.metric} | 95% CI | n | p vs best | tied | run s |"
                  + "".join(f" {title} |" for title in bias.values()),
                  "|---:|---|---:|---|---:|---:|---|---:|" + "---:|" * len(bias)]
        for i, s in enumerate(board.standings, 1):
            secs = timings.get((s.evaluator, d.name), (float("nan"),))[0]
            p = "" if s.p_value is None else f"{s.p_value:.3f}"
            more = "".join(f" {_num((s.metrics or {}).get(name))} |" for name in bias)
            lines.append(f"| {i} | {s.evaluator} | {s.value:.3f} | [{s.ci_low:.3f}, {s.ci_high:.3f}] | {s.n} | "
                         f"{p} | {'yes' if s.tied_with_best else ''} | {secs:.1f} |{more}")
        lines.append("")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
