"""Meta-evaluation benchmark: ReIFE-scale metrics with bootstrap CIs, vectorized vs a plain loop.

    .venv/bin/python -m bench.metaeval                      # 1,800 runs × 400 examples, 1,000 resamples
    .venv/bin/python -m bench.metaeval --loop-runs 1800     # time the loop on every run (≈ 1 h)

1. Labels: the REAL gold labels of the LLMBar sets (``princeton-nlp__LLMBar/Dataset/LLMBar/
   {Natural,Adversarial/*}/dataset.json``, 419 pairs, label 1/2 → A/B), concatenated in path
   order and cycled to ``--examples``.
2. Judges: ``--runs`` simulated evaluators (ReIFE: 25 LLMs × 15 protocols × 4 datasets ≈ 1,500;
   1,800 here), seeded. Each run has its own accuracy p ∈ [0.5, 0.97], position bias
   β ∈ [0, 0.4] (picks the response shown first), tie rate ∈ [0, 0.05] and parse-failure rate
   ∈ [0, 0.03]; both orders are judged independently and recorded in the original orientation.
3. Vectorized: one ``Bootstrap`` (seeded, B × n) and ``reife_metrics_many`` for ReIFE accuracy
   (expected credit ½ for ties/failures), positional agreement, correct-both and Krippendorff's α
   against the labels (mean of the two orders, coin-resolved verdicts), each with its 95%
   percentile CI — all runs at once. Timed end to end (bootstrap draw included).
4. Loop baseline: the same statistics computed with plain per-example Python loops — per run,
   per resample, per drawn index — on the SAME resample indices and the same seeded coins, then
   the same percentile function. It takes about a second per run, so by default it runs on the
   first ``--loop-runs`` runs and the time is extrapolated linearly to all runs (the work per run
   is identical). Both must agree to 1e-9 on every value and CI bound of those runs.

Data root: ``$AUTORATER_DATA`` or ``../shared/data``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from registry.domain.judgments import FAIL
from registry.domain.metrics import Bootstrap, reife_metrics_many
from registry.domain.metrics.value import percentile_ci

PROJECT_ROOT = Path(__file__).resolve().parent.parent
METRICS = ("accuracy", "positional_agreement", "correct_both", "alpha")
A, B, TIE = 0, 1, 2


def data_root() -> Path:
    env = os.environ.get("AUTORATER_DATA")
    for cand in ([Path(env)] if env else []) + [PROJECT_ROOT.parent / "shared" / "data"]:
        if cand.is_dir():
            return cand.resolve()
    sys.exit("real data not found: set AUTORATER_DATA or put it at ../shared/data")


def real_labels(n: int) -> tuple[np.ndarray, int]:
    """LLMBar gold labels (1 → A, 2 → B), concatenated in path order and cycled to n."""
    root = data_root() / "princeton-nlp__LLMBar" / "Dataset" / "LLMBar"
    labels: list[int] = []
    for f in sorted(root.rglob("dataset.json")):
        labels += [A if int(r["label"]) == 1 else B for r in json.loads(f.read_text())]
    return np.resize(np.array(labels, dtype=np.int8), n), len(labels)


def simulate(labels: np.ndarray, runs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Verdicts (runs, n) for orders 0 and 1 of judges with varying accuracy and position bias."""
    rng = np.random.default_rng(seed)
    n = labels.shape[0]
    acc = rng.uniform(0.5, 0.97, (runs, 1))
    bias = rng.uniform(0.0, 0.4, (runs, 1))
    ties = rng.uniform(0.0, 0.05, (runs, 1))
    fails = rng.uniform(0.0, 0.03, (runs, 1))
    out = []
    for first_shown in (A, B):            # order 0 shows A first, order 1 shows B first
        u = rng.random((runs, n))
        right = rng.random((runs, n)) < acc
        judged = np.where(right, labels, 1 - labels)
        v = np.where(u < fails, FAIL,
                     np.where(u < fails + ties, TIE,
                              np.where(u < fails + ties + bias, first_shown, judged)))
        out.append(v.astype(np.int8))
    return out[0], out[1]


def vectorized(labels, v0, v1, n_samples: int, seed: int):
    boot = Bootstrap.draw(labels.shape[0], n_samples, seed)
    res = reife_metrics_many(labels, v0, v1, boot=boot, seed=seed, include=METRICS)
    return boot, res


def loop_baseline(labels, v0, v1, indices, seed: int):
    """Plain Python: per-example values, then per resample a loop over its drawn indices."""
    n = len(labels)
    coins = np.random.default_rng(seed).integers(0, 2, size=(2, n)).tolist()   # the same seeded coins
    lab = [int(x) for x in labels]
    idx_lists = indices.tolist()
    out = {m: [] for m in METRICS}
    for r in range(v0.shape[0]):
        orders = [[int(x) for x in v0[r]], [int(x) for x in v1[r]]]
        credit, agree, both = [], [], []
        resolved = [[], []]
        for i in range(n):
            c = 0.0
            for o in (0, 1):
                v = orders[o][i]
                c += 0.5 if v in (FAIL, TIE) else (1.0 if v == lab[i] else 0.0)
                resolved[o].append(coins[o][i] if v in (FAIL, TIE) else v)
            credit.append(c / 2)
            agree.append(1.0 if orders[0][i] == orders[1][i] and orders[0][i] != FAIL else 0.0)
            both.append(1.0 if orders[0][i] == lab[i] and orders[1][i] == lab[i] else 0.0)

        def stats(sample):
            s_credit = s_agree = s_both = 0.0
            dis = [0, 0]
            cat = [[0, 0, 0], [0, 0, 0]]
            for i in sample:
                s_credit += credit[i]
                s_agree += agree[i]
                s_both += both[i]
                for o in (0, 1):
                    v = resolved[o][i]
                    dis[o] += v != lab[i]
                    cat[o][v] += 1
                    cat[o][lab[i]] += 1
            m = len(sample)
            alphas = []
            for o in (0, 1):
                values = 2 * m                 # every unit pairable after the coin flips
                denom = values * values - sum(c * c for c in cat[o])
                alphas.append(1.0 - (values - 1) * 2 * dis[o] / denom if denom else float("nan"))
            return s_credit / m, s_agree / m, s_both / m, (alphas[0] + alphas[1]) / 2

        point = stats(range(n))
        samples = np.array([stats(sample) for sample in idx_lists])
        for k, name in enumerate(METRICS):
            lo, hi = percentile_ci(samples[:, k])
            out[name].append((point[k], float(lo), float(hi)))
    return out


def machine() -> str:
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown CPU"
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=1800)
    ap.add_argument("--examples", type=int, default=400)
    ap.add_argument("--samples", type=int, default=1000, help="bootstrap resamples")
    ap.add_argument("--loop-runs", type=int, default=20, help="runs timed with the loop baseline")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args(argv)

    labels, n_real = real_labels(args.examples)
    v0, v1 = simulate(labels, args.runs, args.seed)
    print(f"data: {args.runs} runs × {args.examples} examples × 2 orders; labels from {n_real} real LLMBar "
          f"pairs (cycled); {args.samples} bootstrap resamples; metrics: {', '.join(METRICS)}")

    vectorized(labels[:50], v0[:2, :50], v1[:2, :50], 10, args.seed)     # warm-up (imports, BLAS threads)
    t = time.perf_counter()
    boot, res = vectorized(labels, v0, v1, args.samples, args.seed)
    t_vec = time.perf_counter() - t
    print(f"vectorized: {t_vec:.2f} s for all {args.runs} runs")

    k = min(args.loop_runs, args.runs)
    t = time.perf_counter()
    loop = loop_baseline(labels, v0[:k], v1[:k], boot.indices, args.seed)
    t_loop = time.perf_counter() - t
    t_loop_all = t_loop * args.runs / k
    if k == args.runs:
        print(f"loop baseline: {t_loop:.1f} s for all {args.runs} runs (measured)")
    else:
        print(f"loop baseline: {t_loop:.2f} s for {k} runs → {t_loop_all:.1f} s for {args.runs} runs "
              f"(extrapolated linearly ×{args.runs / k:g}; the work per run is identical)")

    worst = 0.0
    for name in METRICS:
        arr = res[name]
        for r in range(k):
            got = (arr.values[r], arr.ci_low[r], arr.ci_high[r])
            worst = max(worst, max(abs(a - b) for a, b in zip(got, loop[name][r])))
    assert worst <= 1e-9, f"vectorized and loop results differ by {worst}"
    speedup = t_loop_all / t_vec
    print(f"agreement on the {k} loop runs: max |difference| = {worst:.2e} (values and CI bounds, ≤ 1e-9)")
    print(f"speed-up: {speedup:.0f}×")
    ok_time, ok_speed = t_vec <= 10.0, speedup >= 20.0
    print(f"targets: vectorized ≤ 10 s: {'met' if ok_time else 'NOT met'}; ≥ 20× faster: "
          f"{'met' if ok_speed else 'NOT met'}")
    mean = {m: float(np.mean(res[m].values)) for m in METRICS}
    width = {m: float(np.mean(res[m].ci_high - res[m].ci_low)) for m in METRICS}
    print("mean over runs (value, CI width): " + "; ".join(f"{m} {mean[m]:.3f} ({width[m]:.3f})" for m in METRICS))
    print(f"date: {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M UTC}; machine: {machine()}")
    if args.json:
        args.json.write_text(json.dumps({
            "runs": args.runs, "examples": args.examples, "samples": args.samples, "loop_runs": k,
            "vectorized_s": t_vec, "loop_s": t_loop, "loop_all_s_extrapolated": t_loop_all, "speedup": speedup,
            "max_abs_difference": worst, "targets_met": ok_time and ok_speed, "mean": mean, "ci_width": width,
            "machine": machine()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
