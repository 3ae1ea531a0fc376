"""Judge throughput: pairs/s of an evaluator through ``judge()`` vs the raw model on the same inputs.

    .venv/bin/python -m bench.judge_throughput --pairs 400

1. Takes N real pairs from the LLMBar sets (every ``princeton-nlp__LLMBar/Dataset/**/dataset.json``,
   read with the ``llmbar`` adapter, seeded shuffle).
2. Builds the default (untrained MiniLM) encoder-scorer checkpoint in a temporary folder.
3. Runs each *backend* — a name mapped to a factory that returns a ``run(pairs) -> None``
   callable — once on a warm-up slice, then times it on all N pairs. The machine may be shared,
   so the backends take turns: the N pairs are cut into chunks of ``--chunk`` pairs, every
   backend judges each chunk (the order rotating from chunk to chunk) and a backend's time is
   the sum over its chunks; this is repeated ``--repeats`` times and the best total is kept.
   Wall and process-CPU seconds are both reported. Backends today:

   * ``encoder-scorer judge()`` — the product's path: ``EncoderScorer.judge`` with pairwise
     verdicts (tokenize, dynamic padding, forward, Verdict objects);
   * ``raw forward (pre-tokenized)`` — the floor: the same model on the same batches (pairs
     sorted by length, ``batch_size // 2`` pairs per pass, both responses in one pass), padded
     tensors prepared *before* timing; timed: encoder forward + mean pooling + head only;
   * ``raw tokenize+forward`` — as above with the per-batch tokenizer call inside the timing.

   Generative judges (the ``llm-judge`` evaluator, protocol ``pairwise-base``: the same prompts,
   greedy, ``--gen-max-tokens`` tokens, A/B first-token log-probabilities) on one tiny random Llama
   built locally (hidden 256, 4 layers, vocab 768 — the shape vLLM's CPU kernels accept), one row
   per generation backend:

   * ``llm-judge transformers`` — the in-process transformers backend (batches of 8);
   * ``llm-judge vllm (engine)`` — the ``vllm`` backend: the offline ``vllm.LLM`` engine (in a
     worker process of ``.venv-vllm`` when vLLM is not importable here), one call per chunk;
   * ``llm-judge vllm-server (HTTP)`` — the ``vllm-server`` backend: a managed vLLM
     OpenAI-compatible server, requests over HTTP (``--concurrency`` in flight).

   For the vLLM rows the CPU column adds the CPU time of the worker / server processes (read
   from /proc) to this process's. The vLLM rows are left out (with a message) when no vLLM
   environment exists.
4. Prints pairs/s of each backend and the ratio judge()/floor (target ≥ 0.8×), and checks that
   judge() and the raw forward give the same scores; for the generative rows also prompt and
   completion tokens/s, the load time, and whether the backends wrote the same texts.

Data root: ``$AUTORATER_DATA`` or ``../shared/data``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.8


def data_root() -> Path:
    env = os.environ.get("AUTORATER_DATA")
    for cand in ([Path(env)] if env else []) + [Path.cwd() / "../shared/data", PROJECT_ROOT.parent / "shared" / "data"]:
        if cand.is_dir():
            return cand.resolve()
    raise SystemExit("real data not found: set AUTORATER_DATA or put it at ../shared/data")


def llmbar_pairs(root: Path, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` real pairs from every LLMBar set (standardized rows), shuffled with ``seed``."""
    from registry.adapters.sources import get_adapter

    adapter = get_adapter("llmbar")
    rows: list[dict[str, Any]] = []
    for d in adapter.catalog():
        rows.extend(adapter.read(root / d.path, **d.options).to_dict("records"))
    random.Random(seed).shuffle(rows)
    if n > len(rows):
        raise SystemExit(f"only {len(rows)} LLMBar pairs available; asked for {n}")
    return rows[:n]


@dataclass
class Setup:
    """What every backend factory receives."""

    checkpoint: Path
    batch_size: int
    max_length: int
    device: str
    results: dict[str, Any] = field(default_factory=dict)
    """Backends may leave scores here (name → list) for the cross-check."""
    lm_dir: Path | None = None
    """The tiny causal LM of the generative rows (built on first use)."""
    gen_max_tokens: int = 8
    concurrency: int = 8
    work: Path | None = None


Run = Callable[[list[dict[str, Any]]], None]


def encoder_judge(setup: Setup) -> Run:
    """The product path: ``EncoderScorer.judge`` on pairwise data."""
    from registry.adapters.evaluators import TaskContext, build_evaluator

    ev = build_evaluator("encoder-scorer", {"checkpoint": str(setup.checkpoint), "batch_size": setup.batch_size,
                                            "max_length": setup.max_length, "device": setup.device})
    ctx = TaskContext("pairwise", labels=("A", "B", "tie"))

    def run(pairs: list[dict[str, Any]]) -> None:
        verdicts = ev.judge(ctx, pairs)
        setup.results.setdefault("judge", []).extend((v.extra["s_a"], v.extra["s_b"]) for v in verdicts)

    return run


def _raw(setup: Setup, *, tokenize_in_timing: bool) -> Run:
    """The same model and batches, written directly against transformers (no evaluator code)."""
    import torch

    from registry.adapters.evaluators.encoder import load_scorer

    loaded = load_scorer(setup.checkpoint, setup.device)  # same weights; the process cache makes this free
    tok, model, weight, bias = loaded.tokenizer, loaded.model, loaded.weight, loaded.bias
    per_pass = max(1, setup.batch_size // 2)
    prepared: dict[int, list[tuple[list[int], dict[str, Any]]]] = {}

    def batches(pairs: list[dict[str, Any]]) -> list[tuple[list[int], list[tuple[str, str]]]]:
        texts = [(p["instruction"], p[k]) for p in pairs for k in ("response_a", "response_b")]
        lens = [len(x) for x in tok([t[0] for t in texts], [t[1] for t in texts], truncation="longest_first",
                                     max_length=setup.max_length)["input_ids"]]
        order = sorted(range(len(pairs)), key=lambda i: max(lens[2 * i], lens[2 * i + 1]))
        out = []
        for s in range(0, len(order), per_pass):
            rows = [2 * i + k for i in order[s:s + per_pass] for k in (0, 1)]
            out.append((rows, [texts[r] for r in rows]))
        return out

    def encode(texts: list[tuple[str, str]]) -> dict[str, Any]:
        return tok([t[0] for t in texts], [t[1] for t in texts], truncation="longest_first",
                   max_length=setup.max_length, padding=True, return_tensors="pt")

    def forward(enc: dict[str, Any]) -> list[float]:
        enc = {k: v.to(loaded.device) for k, v in enc.items()}
        hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return (pooled @ weight.T + bias).squeeze(-1).float().cpu().tolist()

    def run(pairs: list[dict[str, Any]]) -> None:
        key = id(pairs)
        if not tokenize_in_timing and key not in prepared:
            raise RuntimeError("call prepare() before timing the pre-tokenized backend")
        scores = [0.0] * (2 * len(pairs))
        with torch.inference_mode():
            if tokenize_in_timing:
                for rows, texts in batches(pairs):
                    for r, s in zip(rows, forward(encode(texts))):
                        scores[r] = s
            else:
                for rows, enc in prepared[key]:
                    for r, s in zip(rows, forward(enc)):
                        scores[r] = s
        name = "raw-tokenize" if tokenize_in_timing else "raw"
        setup.results.setdefault(name, []).extend((scores[2 * i], scores[2 * i + 1]) for i in range(len(pairs)))

    def prepare(pairs: list[dict[str, Any]]) -> None:
        prepared.clear()
        prepared[id(pairs)] = [(rows, encode(texts)) for rows, texts in batches(pairs)]

    run.prepare = prepare  # type: ignore[attr-defined]
    return run


def _group_cpu_seconds(pgid: int) -> float:
    """CPU seconds (user + system) of the live processes of process group ``pgid`` (Linux /proc)."""
    from registry.adapters.backends.vllm_backend import group_pids

    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in group_pids(pgid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _tiny_lm(setup: Setup) -> Path:
    if setup.lm_dir is None:
        from registry.adapters.backends.tiny import build_tiny_causal_lm

        assert setup.work is not None
        setup.lm_dir = build_tiny_causal_lm(setup.work / "tiny-llama-256", hidden_size=256, layers=4, vocab_size=768,
                                            seed=0)
    return setup.lm_dir


def llm_judge(name: str, backend: str, **extra: Any) -> Callable[[Setup], Run]:
    """A generative judge (llm-judge, protocol pairwise-base) through generation backend ``backend``."""

    def factory(setup: Setup) -> Run:
        from registry.adapters.backends import GenerationRequest
        from registry.adapters.evaluators import TaskContext, build_evaluator
        from registry.protocols import load_protocol_files

        protocol = next(p.config for p in load_protocol_files() if p.name == "pairwise-base")
        config = {"backend": backend, "model": str(_tiny_lm(setup)), "protocol": protocol,
                  "max_tokens": setup.gen_max_tokens, **extra}
        if backend == "vllm-server":
            config["concurrency"] = setup.concurrency
        judge = build_evaluator("llm-judge", config)
        judge.backend.generate([GenerationRequest(({"role": "user", "content": "Hi"},), max_tokens=1)])  # load
        ctx = TaskContext("pairwise", labels=("A", "B", "tie"))
        pgid = None
        if backend == "vllm" and judge.backend.mode == "worker":
            pgid = judge.backend.engine.pid
        elif backend == "vllm-server":
            pgid = judge.backend.server.pid

        def run(pairs: list[dict[str, Any]]) -> None:
            verdicts = judge.judge(ctx, pairs)
            run.last_tokens = (sum(v.prompt_tokens for v in verdicts), sum(v.completion_tokens for v in verdicts))
            setup.results.setdefault(f"texts:{name}", {}).update(
                {p["example_id"]: (v.raw, v.prob_a) for p, v in zip(pairs, verdicts)})

        run.last_tokens = (0, 0)  # type: ignore[attr-defined]
        run.close = judge.close  # type: ignore[attr-defined]
        if pgid is not None:
            run.external_cpu = lambda: _group_cpu_seconds(pgid)  # type: ignore[attr-defined]
        return run

    return factory


GENERATIVE = ("llm-judge transformers", "llm-judge vllm (engine)", "llm-judge vllm-server (HTTP)")
VLLM_ROWS = GENERATIVE[1:]
BACKENDS: dict[str, Callable[[Setup], Run]] = {
    "encoder-scorer judge()": encoder_judge,
    "raw forward (pre-tokenized)": lambda setup: _raw(setup, tokenize_in_timing=False),
    "raw tokenize+forward": lambda setup: _raw(setup, tokenize_in_timing=True),
    GENERATIVE[0]: llm_judge(GENERATIVE[0], "transformers"),
    GENERATIVE[1]: llm_judge(GENERATIVE[1], "vllm"),
    GENERATIVE[2]: llm_judge(GENERATIVE[2], "vllm-server"),
}
"""Name → factory of a ``run(pairs)`` callable; a ``run.prepare(pairs)`` hook, when present, is
called (untimed) before each timed run, for work the floor excludes on purpose."""
JUDGE, FLOOR = "encoder-scorer judge()", "raw forward (pre-tokenized)"


def measure(run: Run, pairs: list[dict[str, Any]]) -> tuple[float, float]:
    """Wall and process-CPU seconds of one ``run(pairs)``, after its untimed ``prepare`` hook if any.

    CPU seconds are reported next to wall seconds because the machine may be shared: another
    process stretches wall time but barely changes the CPU time this process needs. A backend
    working in other processes (vLLM worker, server) adds theirs through ``run.external_cpu``."""
    prepare = getattr(run, "prepare", None)
    if prepare is not None:
        prepare(pairs)
    external = getattr(run, "external_cpu", None)
    ext0 = external() if external else 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    run(pairs)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu + ((external() - ext0) if external else 0.0)


def vllm_missing() -> str | None:
    """Why the vLLM rows cannot run here (None when they can)."""
    from registry.adapters.backends.vllm_backend import find_vllm_python, vllm_importable

    try:
        if vllm_importable() or find_vllm_python() is not None:
            return None
    except Exception as exc:  # noqa: BLE001 - reported, the rows are skipped
        return str(exc)
    return "no vLLM environment (run scripts/vllm-venv.sh or set AUTORATER_VLLM_PYTHON)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=400)
    ap.add_argument("--batch-size", type=int, default=32, help="sequences per forward pass (pairs: half)")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--device", default="cpu", help="cpu | auto | cuda")
    ap.add_argument("--repeats", type=int, default=2, help="timed passes over all pairs (best total kept)")
    ap.add_argument("--chunk", type=int, default=80, help="pairs per turn; backends alternate chunk by chunk")
    ap.add_argument("--warmup", type=int, default=32, help="pairs in the untimed warm-up run")
    ap.add_argument("--backends", nargs="*", default=list(BACKENDS), help=f"subset of: {', '.join(BACKENDS)}")
    ap.add_argument("--gen-max-tokens", type=int, default=8, help="tokens generated per judgment (generative rows)")
    ap.add_argument("--concurrency", type=int, default=8, help="requests in flight to the vLLM server")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers to this JSON file")
    args = ap.parse_args(argv)
    unknown = [b for b in args.backends if b not in BACKENDS]
    if unknown:
        raise SystemExit(f"unknown backends {unknown}; known: {', '.join(BACKENDS)}")
    if any(b in VLLM_ROWS for b in args.backends) and (why := vllm_missing()):
        print(f"leaving out the vLLM rows: {why}")
        args.backends = [b for b in args.backends if b not in VLLM_ROWS]

    import torch
    import transformers

    from registry.adapters.evaluators.encoder import build_default_checkpoint, checkpoint_sha256

    pairs = llmbar_pairs(data_root(), args.pairs)
    warm = pairs[: args.warmup]
    work = Path(tempfile.mkdtemp(prefix="bench-judge-"))
    try:
        ckpt = build_default_checkpoint(work / "minilm-untrained", seed=0)
        setup = Setup(checkpoint=ckpt, batch_size=args.batch_size, max_length=args.max_length, device=args.device,
                      gen_max_tokens=args.gen_max_tokens, concurrency=args.concurrency, work=work)
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores (torch threads {torch.get_num_threads()}), "
              f"GPU {gpu}; python {platform.python_version()}, torch {torch.__version__}, transformers "
              f"{transformers.__version__}; date {_dt.datetime.now().isoformat(timespec='seconds')}")
        print(f"input: {len(pairs)} real LLMBar pairs (all sets, seeded shuffle); checkpoint untrained MiniLM "
              f"{checkpoint_sha256(ckpt)[:12]}; batch_size {args.batch_size} sequences "
              f"({max(1, args.batch_size // 2)} pairs) per pass, max_length {args.max_length}, device {args.device}")
        if any(b in GENERATIVE for b in args.backends):
            from registry.adapters.backends.hf import model_folder_sha256

            print(f"generative rows: llm-judge, protocol pairwise-base (A/B choice logprobs), greedy, "
                  f"max_tokens {args.gen_max_tokens}; tiny random Llama (hidden 256, 4 layers, vocab 768) "
                  f"{model_folder_sha256(_tiny_lm(setup))[:12]}, float32, max_model_len 1024; vLLM server "
                  f"concurrency {args.concurrency}")
        t = time.perf_counter()
        runs, load = {}, {}
        for name in args.backends:
            t1 = time.perf_counter()
            runs[name] = BACKENDS[name](setup)
            load[name] = time.perf_counter() - t1
            print(f"  built {name:<30} in {load[name]:6.1f} s")
        print(f"backends built (encoder model loaded once, shared) in {time.perf_counter() - t:.1f} s")
        for run in runs.values():
            measure(run, warm)
        best: dict[str, float] = {name: float("inf") for name in runs}
        best_cpu: dict[str, float] = {name: float("inf") for name in runs}
        names = list(runs)
        chunks = [pairs[i:i + args.chunk] for i in range(0, len(pairs), args.chunk)]
        tokens: dict[str, list[int]] = {}
        for rep in range(args.repeats):
            total = {name: [0.0, 0.0] for name in names}
            tokens = {name: [0, 0] for name in names}
            for k, chunk in enumerate(chunks):
                for name in names[k % len(names):] + names[:k % len(names)]:  # rotate who goes first
                    sec, cpu = measure(runs[name], chunk)
                    total[name][0] += sec
                    total[name][1] += cpu
                    for i, n in enumerate(getattr(runs[name], "last_tokens", (0, 0))):
                        tokens[name][i] += n
            for name, (sec, cpu) in total.items():
                best[name], best_cpu[name] = min(best[name], sec), min(best_cpu[name], cpu)
                print(f"  repeat {rep + 1}: {name:<30} {sec:7.2f} s wall ({len(pairs) / sec:6.1f} pairs/s)  "
                      f"{cpu:7.2f} s CPU")
        print("\nbest of repeats:")
        for name, sec in best.items():
            print(f"    {name:<30} {sec:7.2f} s wall  {len(pairs) / sec:7.1f} pairs/s   "
                  f"{best_cpu[name]:7.2f} s CPU  {len(pairs) / best_cpu[name]:7.1f} pairs/CPU-s")
        summary: dict[str, Any] = {"pairs": len(pairs), "batch_size": args.batch_size, "max_length": args.max_length,
                                   "device": args.device, "cores": os.cpu_count(), "gpu": gpu,
                                   "seconds": best, "cpu_seconds": best_cpu,
                                   "pairs_per_s": {k: len(pairs) / v for k, v in best.items()},
                                   "load_seconds": load}
        gen = [name for name in names if name in GENERATIVE]
        if gen:
            print("\ngenerative judges (same prompts, same tiny model; tokens of one pass over all pairs):")
            print(f"    {'backend':<30} {'judg./s':>8} {'prompt tok/s':>13} {'compl. tok/s':>13} {'load s':>7}"
                  f" {'prompt tok':>11} {'compl. tok':>11}")
            for name in gen:
                p_tok, c_tok = tokens[name]
                print(f"    {name:<30} {len(pairs) / best[name]:8.1f} {p_tok / best[name]:13.0f} "
                      f"{c_tok / best[name]:13.1f} {load[name]:7.1f} {p_tok:11d} {c_tok:11d}")
            summary["tokens"] = {name: {"prompt": tokens[name][0], "completion": tokens[name][1]} for name in gen}
            ref = setup.results.get(f"texts:{gen[0]}", {})
            for name in gen[1:]:
                other = setup.results.get(f"texts:{name}", {})
                same = sum(1 for k, (raw, _) in ref.items() if k in other and other[k][0] == raw)
                # vLLM's server streams text and holds back an incomplete UTF-8 character at the very
                # end, which a one-shot decode writes as U+FFFD: compare without those too.
                alike = sum(1 for k, (raw, _) in ref.items()
                            if k in other and other[k][0].rstrip("\ufffd") == raw.rstrip("\ufffd"))
                diffs = [abs(ref[k][1] - other[k][1]) for k in ref
                         if k in other and ref[k][1] is not None and other[k][1] is not None]
                summary.setdefault("same_texts", {})[name] = {"exact": same, "ignoring_trailing_fffd": alike,
                                                              "pairs": len(ref)}
                print(f"same texts as {gen[0]}: {name}: {same}/{len(ref)} exactly, {alike}/{len(ref)} ignoring a "
                      f"trailing U+FFFD; max |prob_a difference| {max(diffs) if diffs else float('nan'):.2e} "
                      f"over {len(diffs)} pairs")
        if JUDGE in best:
            for floor in (FLOOR, "raw tokenize+forward"):
                if floor in best:
                    ratio = best[floor] / best[JUDGE]  # = (judge pairs/s) / (floor pairs/s)
                    ratio_cpu = best_cpu[floor] / best_cpu[JUDGE]
                    summary.setdefault("ratios", {})[floor] = {"wall": ratio, "cpu": ratio_cpu}
                    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
                    print(f"ratio judge()/{floor}: {ratio:.3f}x wall, {ratio_cpu:.3f}x CPU "
                          f"(target >= {TARGET_RATIO}x on wall: {verdict})")
        raw = setup.results.get("raw") or setup.results.get("raw-tokenize")
        if raw and "judge" in setup.results:
            diff = max(abs(a - b) for x, y in zip(setup.results["judge"], raw) for a, b in zip(x, y))
            summary["max_score_diff"] = diff
            print(f"same scores: max |judge - raw| = {diff:.2e}")
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2))
    finally:
        for run in locals().get("runs", {}).values():
            close = getattr(run, "close", None)
            if close is not None:
                close()
        from registry.adapters.backends.vllm_backend import shutdown_engines

        shutdown_engines()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
