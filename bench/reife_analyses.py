"""ReIFE analyses (issue 15): ``analyze ranks`` and ``analyze protocols`` on (a) the real GPT-4 and
ChatGPT verdicts shipped with LLMBar (imported under every protocol on the five LLMBar sets) and
(b) the 130-cell tiny-judge matrix (2 tiny random-init checkpoints × 13 pairwise protocols × the five
LLMBar sets, as tests/services/test_matrix.py builds it), each in a fresh registry; Markdown tables
of both analyses and the wall times.

    .venv/bin/python -m bench.reife_analyses --part llmbar            # ~1 min
    nice .venv/bin/python -m bench.reife_analyses --part tiny         # ~7-15 min on 2 shared cores
    .venv/bin/python -m bench.reife_analyses --part tiny --rows 10    # quick: the first 10 pairs per set

Output: ``bench/out/reife_<part>.md`` and ``.json`` (the analyses' ``to_dict()``). The registries
live under ``--home`` (default ``.autorater/reife-<part>``, removed first unless ``--reuse``).

The helpers :data:`LLMBAR_SETS`, :data:`TINY_CONFIG`, :func:`tiny_models` and
:func:`register_llmbar_sets` are shared with tests/services/test_matrix.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

LLMBAR_SETS = ("llmbar-natural", "llmbar-adversarial-neighbor", "llmbar-adversarial-gptinst",
               "llmbar-adversarial-gptout", "llmbar-adversarial-manual")
"""The five LLMBar sets (their files come from the LLMBar adapter's catalog)."""
TINY_CONFIG = {"max_tokens": 3, "max_input_tokens": 192}
"""Small generations and prompts for the tiny judges: they say nothing sensible anyway."""


def llmbar_paths(data_root: Path) -> dict[str, Path]:
    """The ``dataset.json`` of each of :data:`LLMBAR_SETS` under ``data_root``."""
    from registry.services.datasets import catalog_entries

    defs = {d.name: d for source, d in catalog_entries() if source == "llmbar"}
    return {name: Path(data_root) / defs[name].path for name in LLMBAR_SETS}


def tiny_models(root: Path) -> dict[str, Path]:
    """Two random tiny chat models of different sizes (``tiny-s``, ``tiny-m``), written under ``root``."""
    from registry.adapters.backends.tiny import build_tiny_causal_lm

    root = Path(root)
    return {"tiny-s": build_tiny_causal_lm(root / "s", hidden_size=64, layers=2, seed=0),
            "tiny-m": build_tiny_causal_lm(root / "m", hidden_size=128, layers=4, seed=1)}


def register_llmbar_sets(reg, data_root: Path, *, rows: int | None = None, cut_dir: Path | None = None) -> list[str]:
    """Register :data:`LLMBAR_SETS` in ``reg`` (a ``RegistryContext``) from the real files — with
    ``rows``, each file cut to its first ``rows`` pairs (written under ``cut_dir``) — and return the
    version references."""
    from registry.services.datasets import register_dataset_version

    refs = []
    for name, path in llmbar_paths(data_root).items():
        if rows is not None:
            cut = Path(cut_dir) / name / "dataset.json"
            cut.parent.mkdir(parents=True, exist_ok=True)
            cut.write_text(json.dumps(json.loads(path.read_text(encoding="utf-8"))[:rows]), encoding="utf-8")
            path = cut
        refs.append(register_dataset_version(reg, name=name, source="llmbar", path=path).version.ref)
    return refs


def register_models(reg, models: dict[str, Path]) -> list[str]:
    """Register each tiny model folder as an ``llm-judge`` checkpoint; their references."""
    from registry.services.evaluators import register_checkpoint

    return [register_checkpoint(reg, name, kind="llm-judge", path=folder)[0].ref for name, folder in models.items()]


# ----------------------------------------------------------------------------- Markdown
def _f(x, digits: int = 3) -> str:
    return "–" if x is None or x != x else f"{x:.{digits}f}"


def _ci(v, lo, hi) -> str:
    return f"{_f(v)} [{_f(lo)}, {_f(hi)}]"


def ranks_markdown(r) -> str:
    out = []
    titles = {"datasets": "Evaluators ranked on two datasets", "protocols": "Base LLMs ranked under two protocols",
              "checkpoints": "Protocols ranked for two base LLMs"}
    for view in r.views:
        out.append(f"**{titles[view.name]}** ({len(view.pairs)} pairs; mean Kendall τ-b {_f(view.mean('kendall'))}, "
                   f"mean Spearman ρ {_f(view.mean('spearman'))})" + (f" — {view.note}" if view.note else ""))
        if not view.pairs:
            out.append("")
            continue
        if len(view.pairs) <= 15:
            out += ["", f"| {view.rows_are[:-1]} A | {view.rows_are[:-1]} B | {view.items_are} | Kendall τ-b [95% CI] "
                        "| Spearman ρ [95% CI] |", "|---|---|---:|---:|---:|"]
            out += [f"| {c.a} | {c.b} | {c.n_items} | {_ci(c.kendall, c.kendall_low, c.kendall_high)} | "
                    f"{_ci(c.spearman, c.spearman_low, c.spearman_high)} |" for c in view.pairs]
        else:
            rows = list(dict.fromkeys([c.a for c in view.pairs] + [c.b for c in view.pairs]))
            out += ["", f"| {view.rows_are[:-1]} | mean τ-b with the others | least correlated with | its τ-b [95% CI] |",
                    "|---|---:|---|---:|"]
            for row, mean, low in view.per_row(rows):
                other = (low.b if low.a == row else low.a) if low else "–"
                out.append(f"| {row} | {_f(mean)} | {other} | "
                           f"{_ci(low.kendall, low.kendall_low, low.kendall_high) if low else '–'} |")
        out.append("")
    return "\n".join(out)


def protocols_markdown(a) -> str:
    rep = a.report
    head = " | ".join(rep.checkpoints)
    out = [f"Base protocol `{rep.base}`; accuracy macro-averaged over {len(a.datasets)} sets; Δ = protocol − base "
           f"(paired bootstrap over the examples, {a.n_boot} resamples; * p < {rep.alpha:g}).", "",
           f"| protocol | mean over LLMs [95% CI] | Δ mean [95% CI] | p | {head} |",
           "|---|---:|---:|---:|" + "---:|" * len(rep.checkpoints)]
    for j, p in enumerate(rep.protocols):
        m = rep.protocol_means[j]
        t = m.versus_base
        cells = []
        for i in range(len(rep.checkpoints)):
            c = rep.cells[i][j]
            cells.append(_f(c.value) + (f" ({c.versus_base.difference:+.3f}{'*' if c.versus_base.significant else ''})"
                                        if c.versus_base else " (base)"))
        out.append(f"| {p} | {_ci(m.value, m.ci_low, m.ci_high)} | "
                   + (f"{t.difference:+.3f}{'*' if t.significant else ''} [{_f(t.ci_low)}, {_f(t.ci_high)}] | "
                      f"{_f(t.p_value)}" if t else "– | –") + " | " + " | ".join(cells) + " |")
    out += ["", "| LLM | mean over protocols [95% CI] | best protocol | best value | share of resamples "
                f"| tied with the best (p ≥ {rep.alpha:g}) |", "|---|---:|---|---:|---:|---|"]
    for m, b in zip(rep.checkpoint_means, rep.best, strict=True):
        out.append(f"| {b.checkpoint} | {_ci(m.value, m.ci_low, m.ci_high)} | {', '.join(b.protocols)} | "
                   f"{_f(b.value)} | {_f(b.share, 2)} | {', '.join(b.tied) or '–'} |")
    out += ["", f"Same best protocol for every LLM: **{'yes' if rep.same_best else 'no'}** (every LLM has the same "
                f"best in {_f(rep.same_best_share, 2)} of the resamples)."]
    if a.left_out:
        out += ["", "Left out: " + "; ".join(f"{s.kind} {s.name} ({s.reason})" for s in a.left_out)]
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- the two parts
def _open(home: Path, data: Path, reuse: bool):
    from registry import api
    from registry.config import Settings

    if home.exists() and not reuse:
        shutil.rmtree(home)
    settings = Settings.from_env(home=str(home), db_url=f"sqlite:///{home / 'registry.db'}", store=str(home / "store"),
                                 dvc_remote=str(home / "remote"), data_root=str(data))
    return api.init(settings=settings)


def part_llmbar(reg, data: Path, n_boot: int, seconds: dict) -> dict:
    t = time.perf_counter()
    refs = register_llmbar_sets(reg._ctx, data)
    seconds["register"] = time.perf_counter() - t
    t = time.perf_counter()
    paths = llmbar_paths(data)
    items = reg.import_tree([p for name in LLMBAR_SETS
                             for p in sorted(paths[name].parent.glob("evaluators/*/*/result.json"))], n_boot=200)
    seconds["import-tree"] = time.perf_counter() - t
    bad = [i for i in items if i.status not in ("imported", "unchanged")]
    if bad:
        raise SystemExit(f"import failed: {bad[:3]}")
    print(f"{len(refs)} sets, {len(items)} imported runs", file=sys.stderr)
    return {"evaluators": "gpt-4/*,chatgpt/*", "base": "llmbar-vanilla", "runs": len(items)}


def part_tiny(reg, data: Path, n_boot: int, seconds: dict, rows: int | None, home: Path) -> dict:
    from registry.services.matrix import run_matrix

    t = time.perf_counter()
    refs = register_llmbar_sets(reg._ctx, data, rows=rows, cut_dir=home / "cut")
    folders = {"tiny-s": home / "models" / "s", "tiny-m": home / "models" / "m"}
    reuse = all((f / "config.json").is_file() for f in folders.values())   # --reuse: the same checkpoints
    ckpts = register_models(reg._ctx, folders if reuse else tiny_models(home / "models"))
    seconds["register"] = time.perf_counter() - t
    t = time.perf_counter()
    m = run_matrix(reg._ctx, ckpts, "all", refs, config=TINY_CONFIG, n_boot=200,
                   on_cell=lambda i, n, what: print(f"[{i}/{n}] {what}", file=sys.stderr, flush=True))
    seconds["matrix"] = time.perf_counter() - t
    print(f"{len(m.cells)} cells: ran {m.count('ran')}, cached {m.count('cached')}, failed {m.count('failed')}",
          file=sys.stderr)
    return {"evaluators": None, "base": "pairwise-base", "cells": len(m.cells), "ran": m.count("ran"),
            "failed": m.count("failed"), "judgments": m.n_executed}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("llmbar", "tiny"), required=True)
    ap.add_argument("--data", default=os.environ.get("AUTORATER_DATA", "../shared/data"))
    ap.add_argument("--home", default=None, help="registry folder (default .autorater/reife-<part>)")
    ap.add_argument("--reuse", action="store_true", help="keep an existing registry (cells already run are cached)")
    ap.add_argument("--rows", type=int, default=None, help="tiny: cut every set to its first N pairs")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--out", default="bench/out")
    args = ap.parse_args(argv)
    data = Path(args.data).resolve()
    home = Path(args.home or f".autorater/reife-{args.part}").resolve()
    seconds: dict[str, float] = {}
    reg = _open(home, data, args.reuse)
    try:
        setup = part_llmbar(reg, data, args.n_boot, seconds) if args.part == "llmbar" else \
            part_tiny(reg, data, args.n_boot, seconds, args.rows, home)
        t = time.perf_counter()
        ranks = reg.analyze_ranks(evaluators=setup["evaluators"], n_boot=args.n_boot)
        seconds["analyze ranks"] = time.perf_counter() - t
        t = time.perf_counter()
        protocols = reg.analyze_protocols(evaluators=setup["evaluators"], base=setup["base"], n_boot=args.n_boot)
        seconds["analyze protocols"] = time.perf_counter() - t
    finally:
        reg.close()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items())
    text = (f"### {args.part}\n\nSetup: {json.dumps(setup)}. Wall time: {timing}.\n\n#### analyze ranks\n\n"
            + ranks_markdown(ranks) + "\n#### analyze protocols\n\n" + protocols_markdown(protocols))
    (out / f"reife_{args.part}.md").write_text(text, encoding="utf-8")
    (out / f"reife_{args.part}.json").write_text(json.dumps({"setup": setup, "seconds": seconds,
                                                             "ranks": ranks.to_dict(),
                                                             "protocols": protocols.to_dict()}, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
