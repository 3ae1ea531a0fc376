"""Bias diagnostics of the judges shipped with LLMBar (issue 15): GPT-4 and ChatGPT under every
LLMBar protocol on the five LLMBar sets, imported with ``eval import-tree`` as the demo does.

    AUTORATER_HOME=.autorater/bias .venv/bin/python -m bench.bias [--out bench/out/bias.md]

Prints (and writes) Markdown: per judge and protocol on LLMBar Natural, the stored bias metrics
with their 95% CIs; then the flip rate of every judge × protocol on every set beside LLMBar's
published positional agreement (``statistics.json`` "equal", two parse failures agreeing):
without parse failures the flip rate is exactly 1 − Agr.; then accuracy → length-controlled
accuracy on every set. Idempotent: a second run finds the imports (``unchanged``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

SETS = ("llmbar-natural", "llmbar-adversarial-neighbor", "llmbar-adversarial-gptinst",
        "llmbar-adversarial-gptout", "llmbar-adversarial-manual")
JUDGES = ("GPT-4", "ChatGPT")
COLUMNS = ("accuracy", "lc_accuracy", "flip_rate", "prob_prefer_first", "prob_prefer_longer",
           "prob_prefer_longer_human_shorter", "accuracy_longer_better", "accuracy_longer_worse", "tie_rate",
           "parse_failure_rate")


def _ci(m) -> str:
    if m is None or m.value is None:
        return "–"
    if m.ci_low is None:
        return f"{m.value:.3f}"
    return f"{m.value:.3f} [{m.ci_low:.2f}, {m.ci_high:.2f}]"


def _published_agreement(result: Path) -> tuple[int, int] | None:
    stats = result.with_name("statistics.json")
    if not stats.is_file():
        return None
    found = re.match(r"(\d+) / (\d+)", str(json.loads(stats.read_text()).get("equal", "")))
    return (int(found.group(1)), int(found.group(2))) if found else None


def _per_set(title: str, note: str, evaluators: list[str], by: dict, cell) -> list[str]:
    """A Markdown table: one row per evaluator, one ``cell(run)`` per LLMBar set."""
    lines = ["", f"### {title}", "", note, "", "| judge / protocol | "
             + " | ".join(s.removeprefix("llmbar-") for s in SETS) + " |", "|---|" + "---:|" * len(SETS)]
    return lines + [f"| {ev} | " + " | ".join(cell(by.get((ev, s))) for s in SETS) + " |" for ev in evaluators]


def main(argv: list[str] | None = None) -> int:
    from registry.config import Settings
    from registry.services import datasets as svc
    from registry.services.app import init_registry
    from registry.services.imports import import_tree

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="also write the Markdown here")
    ap.add_argument("--n-boot", type=int, default=1000)
    args = ap.parse_args(argv)

    os.environ.setdefault("AUTORATER_HOME", ".autorater/bias")
    settings = Settings.from_env()
    reg = init_registry(settings)
    t0 = time.perf_counter()
    svc.register_all(reg, settings.data_root, only=set(SETS))
    root = settings.data_root / "princeton-nlp__LLMBar/Dataset/LLMBar"
    items = import_tree(reg, root, n_boot=args.n_boot)
    failed = [i for i in items if i.status == "failed"]
    runs = [r for r in reg.store.latest_runs() if r.evaluator.split("/")[0].upper() in {j.upper() for j in JUDGES}]
    by = {(r.evaluator, r.dataset.split("@")[0]): r for r in runs}
    evaluators = sorted({r.evaluator for r in runs}, key=lambda e: (e.split("/")[0] != "gpt-4", e))

    lines = ["### LLMBar Natural: bias metrics of the shipped judges (95% CIs)", "",
             "| judge / protocol | " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for ev in evaluators:
        run = by.get((ev, "llmbar-natural"))
        if run is not None:
            lines.append(f"| {ev} | " + " | ".join(_ci(run.metric(c)) for c in COLUMNS) + " |")
    counts = {"exact": 0, "checked": 0}

    def flip_cell(run) -> str:
        flip = run.metric("flip_rate") if run else None
        if flip is None or flip.value is None:
            return "–"
        published = _published_agreement(Path(run.provenance.get("imported_from", "")))
        mark = "*" if (flip.extra or {}).get("with_failure") else ""
        if not published:
            return f"{flip.value:.3f}{mark}"
        one_minus = 1 - published[0] / published[1]
        counts["checked"] += 1
        counts["exact"] += not mark and abs(flip.value - one_minus) < 1e-12
        return f"{flip.value:.3f} / {one_minus:.3f}{mark}"

    def lc_cell(run) -> str:
        acc, lc = (run.metric("accuracy"), run.metric("lc_accuracy")) if run else (None, None)
        if acc is None or lc is None or lc.value is None:
            return "–"
        coef = (lc.extra or {}).get("length_coef")
        return f"{acc.value:.3f} → {lc.value:.3f}" + (f" ({coef:+.2f})" if coef is not None else "")

    lines += _per_set("Flip rate under swap on every LLMBar set, beside LLMBar's published agreement",
                      "Each cell: stored `flip_rate` (share of the examples with both orders parsed whose verdicts "
                      "differ) / 1 − LLMBar's published Agr. (statistics.json `equal`); `*`: the run has parse "
                      "failures, so the two differ by the examples with one failed order.", evaluators, by, flip_cell)
    lines += _per_set("Accuracy and length-controlled accuracy on every LLMBar set",
                      "Each cell: `accuracy` → `lc_accuracy` (the accuracy the GLM predicts on equally long "
                      "responses) and, in brackets, the length coefficient γ of that GLM (> 0: right more often "
                      "when the human-preferred response is the longer one).", evaluators, by, lc_cell)
    exact, checked = counts["exact"], counts["checked"]
    lines += ["", f"{len(runs)} runs ({len(items)} result files, {len(failed)} failed to import); flip rate equal "
              f"to 1 − published Agr. on {exact} of {checked} runs (the others have parse failures); "
              f"{time.perf_counter() - t0:.0f} s.", ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
