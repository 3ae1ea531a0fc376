"""Perturbation probes on LLMBar Natural (issue 15): derive the probes, run the heuristic baselines
and the untrained MiniLM scorer on the parent and on every probe, and print a Markdown table of
each evaluator's accuracy on the parent and on the probe, the drop with its 95% paired-bootstrap CI
and the paired test's p-value (McNemar's where the metric is 0/1 correctness).

    AUTORATER_HOME=.autorater/probes .venv/bin/python -m bench.probes [--out bench/out/probes.md]

A fresh registry: AUTORATER_HOME (default ``.autorater/probes``) must not exist yet, or pass
``--reuse`` to continue in it (judgments are cached, so a second pass is quick). Besides the
baselines of ``Registry.create_baselines()`` (whose pairwise protocol judges both orders, so they
have no position bias by construction), ``always-first`` and ``always-second`` are also run with
the single-order protocol (``*-single``): the position-biased judges the ``swap`` probe is for.
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

NATURAL = "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/dataset.json"
PROBES = ("swap", "pad-worse", "pad-better", "truncate-better", "format-worse")
SINGLE_ORDER = ("always-first", "always-second")


def _fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None or x != x else f"{x:.{digits}f}"


def _p(x: float | None) -> str:
    return "–" if x is None or x != x else ("<0.001" if x < 0.001 else f"{x:.3f}")


def markdown(results: list, seconds: dict[str, float]) -> str:
    """One row per transform × evaluator."""
    lines = ["| transform | evaluator | accuracy parent | accuracy probe | drop [95% CI] | p (paired bootstrap) "
             "| p (McNemar) | flip rate |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        for x in r.rows:
            lines.append(f"| {r.transform} | {x.evaluator} | {_fmt(x.parent_value)} | {_fmt(x.probe_value)} | "
                         f"{_fmt(x.drop)} [{_fmt(x.ci_low)}, {_fmt(x.ci_high)}] | {_p(x.p_value)} | "
                         f"{_p(x.mcnemar_p)} | {_fmt(x.flip_rate, 2)} |")
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items())
    return "\n".join(lines) + f"\n\nWall time: {timing}.\n"


def main(argv: list[str] | None = None) -> int:
    from registry import api

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/out/probes.md", help="Markdown table written here (and printed)")
    ap.add_argument("--data", default=os.environ.get("AUTORATER_DATA", "../shared/data"))
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0, help="seed of the probes and of the bootstrap")
    ap.add_argument("--reuse", action="store_true", help="continue in an existing AUTORATER_HOME")
    args = ap.parse_args(argv)

    home = Path(os.environ.setdefault("AUTORATER_HOME", ".autorater/probes"))
    if home.exists() and not args.reuse:
        print(f"{home} exists: remove it for a fresh registry, or pass --reuse", file=sys.stderr)
        return 2
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    reg = api.init()
    parent = reg.register_dataset("llmbar-natural", source="llmbar", path=Path(args.data) / NATURAL).version
    probes = {t: reg.derive_dataset(f"llmbar-natural-{t}", source_ref=parent.ref, transform=t, seed=args.seed).version
              for t in PROBES}
    seconds["register + derive"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    evaluators = [e.name for e in reg.create_baselines()]
    for kind in SINGLE_ORDER:
        ckpt = next(c for c in reg.checkpoints(kind) if c.kind == kind)
        evaluators.append(reg.create_evaluator(checkpoint=ckpt.ref, protocol="score-single-order",
                                               name=f"{kind}-single").entity.name)
    for name in evaluators:
        for v in (parent, *probes.values()):
            run = reg.evaluate(name, v.ref, seed=args.seed, n_boot=args.n_boot)
            print(f"{name:>20} on {v.ref:<34} run {run.id} ({run.status})", file=sys.stderr)
    seconds["runs"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    results = [reg.robustness(evaluators, parent=parent.ref, probe=v.ref, n_boot=args.n_boot, seed=args.seed)
               for v in probes.values()]
    seconds["robustness"] = time.perf_counter() - t2
    text = markdown(results, seconds)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps([r.to_dict() for r in results], indent=1, default=str))
    reg.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
