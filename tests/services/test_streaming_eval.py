"""Evaluation that streams (issue 12 item 2): the same results as the whole-table engine.

``streaming_pinned.json`` holds what the engine computed *before* it streamed (one table in
memory, the judgment cache row by row), on real datasets of every task type — pairwise with A/B
labels (LLMBar Natural, MT-Bench human), pairwise with tie labels and three annotators (PandaLM),
pointwise (SummEval coherence, WMT19 kk-en with repeated inputs and a second version with 1% of
the examples edited), classification (SummaC FactCC) —, with several samples, one order only, a
fully cached re-run and slicing. The test re-runs the same scenario with chunks of a few dozen
rows (so every step crosses many chunk boundaries, and repeated inputs fall in different chunks)
and compares the predictions (all columns but the measured ``seconds``), every metric (value,
CI, n, extra), the per-example judgments kept for the standings, ``n_executed`` / ``n_cached``
and the cache's contents. Regenerate the file only on purpose, with the code it should pin:
``python -m tests.services.test_streaming_eval``.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path

import pytest

PINNED = Path(__file__).with_name("streaming_pinned.json")
DATASETS = ("llmbar-natural", "mtbench-human", "pandalm-test", "summeval-coherence", "summac-factcc", "wmt19-kk-en")
WMT = "neulab__BARTScore/WMT/kk-en/data.json"
MEASURED = {"time_per_1000"}
"""Metrics of the judges' measured seconds (not the same from one run to the next)."""


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _clean(x):
    if isinstance(x, float):
        return None if not math.isfinite(x) else round(x, 12)
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def _run_summary(reg, run) -> dict:
    from registry.services.evaluation import load_predictions

    preds = load_predictions(reg, run)
    cols = {c: preds.column(c).to_pylist() for c in preds.column_names if c != "seconds"}
    for c in ("score", "prob_a"):  # a swapped tie's margin: -0.0 when judged, +0.0 once read back from SQLite rows
        cols[c] = [None if v is None else v + 0.0 for v in cols[c]]
    examples = reg.store.run_examples([run.id]).get(run.id)
    return {"n_examples": run.n_examples, "n_judgments": run.n_judgments, "n_executed": run.n_executed,
            "n_cached": run.n_cached, "prompt_tokens": run.prompt_tokens, "predictions": _digest(cols),
            "predictions_rows": preds.num_rows,
            "examples": hashlib.sha256(examples).hexdigest() if examples else None,
            "metrics": sorted(([m.name, m.slice, _clean(m.value), _clean(m.ci_low), _clean(m.ci_high), m.n,
                                _clean(m.extra)] for m in run.metrics), key=lambda m: (m[0], m[1] or ""))}


def _cache_summary(reg, ev_names: list[str], refs: list[str]) -> dict:
    """Every cached judgment of these evaluators on these versions' inputs (all but ``seconds``)."""
    from registry.domain.judgments import example_input_hashes
    from registry.services.datasets import load_table

    out = {}
    for name in ev_names:
        ev = reg.store.get_evaluator(name)
        found = []
        for ref in refs:
            version = reg.store.get_version(ref)
            table = load_table(reg, ref)
            keys = sorted(set(example_input_hashes({c: table.column(c).to_pylist() for c in table.column_names},
                                                   version.task_type)))
            for order in (0, 1):
                for sample in range(3):
                    for h, j in sorted(reg.store.cached_judgments(ev.sha256, keys, order, sample).items()):
                        v = j.verdict
                        score = None if v.score is None else v.score + 0.0  # unsigned zero (see _run_summary)
                        found.append([h, order, sample, v.label, _clean(score), _clean(v.prob_a), v.parsed, v.raw,
                                      v.prompt_tokens, v.completion_tokens])
        found = sorted({json.dumps(f) for f in found})
        out[name] = {"judgments": len(found), "digest": _digest(found), "count": reg.store.count_judgments(ev.sha256)}
    return out


def scenario(reg, data_root: Path, tmp: Path, **run_kw) -> dict:
    """Register the datasets, create the evaluators, run everything; a summary of each run and of
    the cache (``run_kw`` goes to every :func:`run_evaluation`, e.g. a small ``chunk_rows``)."""
    from registry.services import datasets as svc
    from registry.services.evaluation import run_evaluation
    from registry.services.evaluators import create_evaluator, ensure_baselines

    result = svc.register_all(reg, data_root, only=set(DATASETS))
    assert not result.failed and len(result.registered) == len(DATASETS), result
    ensure_baselines(reg, minilm=False)
    create_evaluator(reg, checkpoint="random", protocol="score-both-orders", name="random-s3",
                     config={"samples": 3, "seed": 7})
    create_evaluator(reg, checkpoint="longer", protocol="score-both-orders", name="longer-swapped",
                     config={"orders": [1]})
    plan = [("random", d) for d in DATASETS] + [
        ("longer", "pandalm-test"), ("longer", "summeval-coherence"), ("longer", "wmt19-kk-en"),
        ("always-first", "summac-factcc"), ("always-second", "llmbar-natural"), ("shorter", "mtbench-human"),
        ("random-s3", "pandalm-test"), ("random-s3", "summac-factcc"), ("longer-swapped", "llmbar-natural"),
        ("random", "pandalm-test"),  # a fully cached re-run
    ]
    runs = {}
    for i, (ev, ds) in enumerate(plan):
        run = run_evaluation(reg, ev, ds, seed=i % 3, n_boot=100, **run_kw)
        runs[f"{i:02d} {ev} {ds}"] = _run_summary(reg, run)
    sliced = run_evaluation(reg, "longer", "pandalm-test", n_boot=60,
                            slice_by=["category", "metadata.motivation_app"], min_slice_size=5, **run_kw)
    runs["slices longer pandalm-test"] = _run_summary(reg, sliced)
    # a second WMT version, 1% of the examples edited: only those are judged again
    rows = json.loads((data_root / WMT).read_text())
    for k in sorted(rows)[: len(rows) // 100]:
        rows[k]["better"]["sys"] = rows[k]["better"]["sys"] + " (post-edited)"
    copy = tmp / "wmt-v2.json"
    copy.write_text(json.dumps(rows))
    v2 = svc.register_dataset_version(reg, name="wmt19-kk-en", source="bartscore-wmt", path=copy)
    assert v2.created
    for ev in ("longer", "random"):
        runs[f"v2 {ev} wmt19-kk-en@2"] = _run_summary(reg, run_evaluation(reg, ev, "wmt19-kk-en@2", n_boot=80,
                                                                            **run_kw))
    refs = [f"{d}@1" for d in DATASETS] + ["wmt19-kk-en@2"]
    return {"runs": runs, "cache": _cache_summary(reg, ["random", "longer", "random-s3", "longer-swapped"], refs)}


def _registry(home: Path):
    from registry.config import Settings
    from registry.services.app import init_registry

    s = Settings.from_env(home=str(home), db_url=f"sqlite:///{home / 'registry.db'}", store=str(home / "store"),
                          dvc_remote=str(home / "remote"))
    return init_registry(s)


def test_streaming_matches_the_whole_table_engine(tmp_path, data_root):
    pinned = json.loads(PINNED.read_text())
    reg = _registry(tmp_path / "home")
    try:
        got = scenario(reg, data_root, tmp_path, chunk_rows=37)
    finally:
        reg.close()
    assert set(got["runs"]) == set(pinned["runs"])
    for key, want in pinned["runs"].items():
        have = got["runs"][key]
        for field, value in want.items():
            if field == "metrics":
                _same_metrics(key, have["metrics"], value)
            else:
                assert have[field] == value, (key, field)
    for name, want in pinned["cache"].items():
        assert got["cache"][name] == want, name


def _same_metrics(key: str, have: list, want: list) -> None:
    assert [m[:2] for m in have] == [m[:2] for m in want], key
    for h, w in zip(have, want):
        assert h[5] == w[5] and h[6] == w[6], (key, h[:2])
        if h[0] in MEASURED:
            continue
        for a, b in zip(h[2:5], w[2:5]):
            assert (a is None and b is None) or a == pytest.approx(b, rel=1e-9, abs=1e-12), (key, h[:2], a, b)


if __name__ == "__main__":  # regenerate the pinned file (on purpose only)
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.conftest import _data_root

    with tempfile.TemporaryDirectory() as tmp:
        reg = _registry(Path(tmp) / "home")
        try:
            data = scenario(reg, _data_root(), Path(tmp))
        finally:
            reg.close()
    PINNED.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {PINNED}: {len(data['runs'])} runs")
