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

import numpy as np
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


def _cache_summary(reg, plans: dict[str, tuple[tuple[int, ...], int]], refs: list[str]) -> dict:
    """Every cached judgment of these evaluators (name → orders and samples judged) on these
    versions' inputs (all but ``seconds``)."""
    from registry.domain.judgments import example_input_hashes
    from registry.services.datasets import load_table

    out = {}
    for name, (orders, samples) in plans.items():
        ev = reg.store.get_evaluator(name)
        found = []
        for ref in refs:
            version = reg.store.get_version(ref)
            table = load_table(reg, ref)
            keys = sorted(set(example_input_hashes({c: table.column(c).to_pylist() for c in table.column_names},
                                                   version.task_type)))
            for order in orders:
                for sample in range(samples):
                    for h, j in sorted(reg.store.cached_judgments(ev.sha256, keys, order, sample).items()):
                        v = j.verdict
                        score = None if v.score is None else v.score + 0.0  # unsigned zero (see _run_summary)
                        found.append([h, order, sample, v.label, _clean(score), _clean(v.prob_a), v.parsed, v.raw,
                                      v.prompt_tokens, v.completion_tokens])
        found = sorted({json.dumps(f) for f in found})
        out[name] = {"judgments": len(found), "digest": _digest(found), "count": reg.store.count_judgments(ev.sha256)}
    return out


def scenario(reg, data_root: Path, tmp: Path, chunk_rows: int | None = None) -> dict:
    """Register the datasets, create the evaluators, run everything; a summary of each run and of
    the cache. ``chunk_rows``: rows per chunk of every run (27 times that on the 9,728 WMT rows)."""
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
    def kw(ds: str) -> dict:
        return {} if chunk_rows is None else {"chunk_rows": chunk_rows * (27 if ds.startswith("wmt") else 1)}

    runs = {}
    for i, (ev, ds) in enumerate(plan):
        run = run_evaluation(reg, ev, ds, seed=i % 3, n_boot=100, **kw(ds))
        runs[f"{i:02d} {ev} {ds}"] = _run_summary(reg, run)
    sliced = run_evaluation(reg, "longer", "pandalm-test", n_boot=60,
                            slice_by=["category", "metadata.motivation_app"], min_slice_size=5, **kw("pandalm"))
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
                                                                            **kw("wmt")))
    refs = [f"{d}@1" for d in DATASETS] + ["wmt19-kk-en@2"]
    plans = {"random": ((0, 1), 1), "longer": ((0, 1), 1), "random-s3": ((0, 1), 3), "longer-swapped": ((1,), 1)}
    return {"runs": runs, "cache": _cache_summary(reg, plans, refs)}


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


# ----------------------------------------------------------------------------- the parts
def _real(data_root: Path, adapter: str, name: str):
    import pyarrow as pa

    from registry.adapters.sources import get_adapter

    a = get_adapter(adapter)
    d = a.dataset_def(name)
    return pa.Table.from_pandas(a.read(data_root / d.path, **d.options), preserve_index=False)


REAL = [("llmbar", "mtbench-human", "pairwise"), ("pandalm", "pandalm-test", "pairwise"),
        ("summac", "summac-factcc", "classification"), ("bartscore", "summeval-coherence", "pointwise")]


def test_input_hashes_at_once_equal_row_by_row(data_root):
    import pyarrow as pa

    from registry.domain.judgments import example_input_hash_array, example_input_hashes

    for adapter, name, task_type in REAL:
        table = _real(data_root, adapter, name)
        for t in (table, table.cast(pa.schema([pa.field(f.name, pa.string()) if pa.types.is_large_string(f.type)
                                               else f for f in table.schema]))):
            cols = {c: t.column(c).to_pylist() for c in t.column_names}
            for fields in (None, ("instruction", "response"), ("num_annotators", "nope", "response")):
                want = example_input_hashes(cols, task_type, fields)
                got = example_input_hash_array(t, task_type, fields)
                assert [b.hex() for b in got.to_pylist()] == want, (name, fields)


def test_heuristics_judge_a_table_as_they_judge_rows(data_root):
    from registry.adapters.evaluators import EVALUATORS
    from registry.adapters.evaluators.base import TaskContext

    contexts = {"pairwise": [TaskContext("pairwise", ("A", "B", "tie"))],
                "classification": [TaskContext("classification", ("consistent", "inconsistent", "other"))],
                "pointwise": [TaskContext("pointwise", None, (1, 5)), TaskContext("pointwise", None, None)]}
    for adapter, name, task_type in REAL:
        table = _real(data_root, adapter, name)
        rows = table.to_pylist()
        for ctx in contexts[task_type]:
            for kind in ("random", "longer", "shorter", "always-first", "always-second"):
                cls = EVALUATORS.get(kind)
                if task_type not in cls.task_types:
                    continue
                for config in ({}, {"seed": 7}) if kind == "random" else ({},):
                    ev = cls(config)
                    for sample in (0, 2):
                        old = ev.judge(ctx, rows, sample=sample)
                        new = ev.judge_arrow(ctx, table, sample=sample)
                        assert new.column("label").to_pylist() == [v.label for v in old], (name, kind, sample)
                        assert new.column("score").to_pylist() == [v.score for v in old], (name, kind, sample)


def test_a_replaced_judge_is_called(monkeypatch):
    from registry.adapters.evaluators import heuristics
    from registry.adapters.evaluators.base import TaskContext

    ev = heuristics.RandomEvaluator({})
    monkeypatch.setattr(heuristics.RandomEvaluator, "judge", lambda self, ctx, examples, *, sample=0: [])
    import pyarrow as pa

    assert ev.judge_arrow(TaskContext("pairwise"), pa.table({"response_a": ["x"], "response_b": ["y"]})) is None


def test_list_feature_in_re2_matches_python(data_root):
    import numpy as np
    import pyarrow as pa

    from registry.adapters.sources import get_adapter
    from registry.domain.metrics.alpacaeval import has_list
    from registry.services.scoring import text_features

    texts = []
    for adapter in ("llmbar", "pandalm"):
        a = get_adapter(adapter)
        for d in a.catalog():
            df = a.read(data_root / d.path, **d.options)
            texts += df["response_a"].tolist() + df["response_b"].tolist()
    texts += ["1. a\n2. b", "\u0661) x\n\u0662) y", "\u2003- a\n\u3000* b", "- a\r\n- b", "-a\n-b", "\n\n- a\n\n\n+ b",
              "\u2022 x\n\u2022 y", "12.x\n13. y\n", None, "", "1.\u00a0a\n2.\u00a0b", "1.\u200bx\n2. y", "x\n \n-  \n- b",
              "\x1c- a\n\x85- b", "1)\u205fa\n2)\u3000b"]
    lengths, lists = text_features(pa.array(texts))
    assert lists.tolist() == [has_list(t) for t in texts]
    assert np.array_equal(lengths, [len(t) if isinstance(t, str) else 0 for t in texts])
    assert sum(lists) > 100


def test_a_streamed_bootstrap_gives_the_same_metrics(data_root, monkeypatch):
    """Large draws are streamed (drawn again block by block) and summed from per-class counts: the
    metrics equal those of the kept (B, n) matrices."""
    import registry.domain.metrics.bootstrap as B
    from registry.services.scoring import compute_metrics
    from tests.services.test_scoring_pinned import _llmbar, _pandalm

    for build, max_classes in ((_pandalm, B.MAX_CLASSES), (_llmbar, B.MAX_CLASSES), (_pandalm, 40)):
        table, preds = build(data_root)
        kept = compute_metrics("pairwise", table, preds, n_boot=300, seed=3, slice_by=["category"], min_slice_size=5)
        monkeypatch.setattr(B, "KEPT_ENTRIES", 1000)
        monkeypatch.setattr(B, "BLOCK_ENTRIES", 7 * len(table))
        monkeypatch.setattr(B, "MAX_CLASSES", max_classes)   # 40: a partition per group of features
        streamed = compute_metrics("pairwise", table, preds, n_boot=300, seed=3, slice_by=["category"],
                                   min_slice_size=5)
        monkeypatch.undo()
        assert [(m.name, m.slice, m.n) for m in streamed] == [(m.name, m.slice, m.n) for m in kept]
        for a, b in zip(streamed, kept):
            for x, y in ((a.value, b.value), (a.ci_low, b.ci_low), (a.ci_high, b.ci_high)):
                assert (x is None and y is None) or x == pytest.approx(y, rel=1e-12, abs=1e-15), a.name
        assert streamed.examples == kept.examples
    boot = B.Bootstrap.draw(50, 40, 9)
    monkeypatch.setattr(B, "KEPT_ENTRIES", 10)
    monkeypatch.setattr(B, "BLOCK_ENTRIES", 3 * 50)
    lazy = B.Bootstrap.draw(50, 40, 9)
    assert lazy.streamed and not boot.streamed
    assert (lazy.indices == boot.indices).all() and (lazy.index_block(7, 19) == boot.indices[7:19]).all()
    assert (lazy.index_block(19, 23) == boot.indices[19:23]).all()
    x = np.random.default_rng(0).random((3, 50))
    assert np.allclose(lazy.sums(x), boot.sums(x), rtol=1e-13)


def test_segments_in_the_judgments_table(registry):
    """Bulk saves become segments (merged eight of a size at a time), found with the per-judgment
    rows (which win), counted once however often saved."""
    import pyarrow as pa
    import xxhash

    from registry.adapters.store.judgment_segments import judgment_schema
    from registry.domain.entities import JudgmentRecord
    from registry.domain.judgments import Verdict

    store = registry.store
    key = "e" * 64
    hexes = [xxhash.xxh3_128_hexdigest(str(i).encode()) for i in range(4000)]

    def table(idx, label):
        return pa.table({"example_hash": [bytes.fromhex(hexes[i]) for i in idx], "verdict": [label] * len(idx),
                         "score": [float(i) for i in idx], "prob_a": [None] * len(idx), "parsed": [True] * len(idx),
                         "raw": [None] * len(idx), "prompt_tokens": [1] * len(idx), "completion_tokens": [2] * len(idx),
                         "seconds": [-0.0] * len(idx)}, schema=judgment_schema())

    lookup = store.judgment_lookup(key, 1, 0)
    for c in range(70):
        lookup.save(table(range(c * 50, (c + 1) * 50), "A"))
    lookup.save(table(range(0, 10), "B"))                    # again: the newest wins
    assert len(lookup.segments) < 20
    store.save_judgments([JudgmentRecord(key=key, example_hash=hexes[3], order=1, sample=0,
                                         verdict=Verdict(label="tie", score=9.5))])
    fresh = store.judgment_lookup(key, 1, 0)
    found, got = fresh.find(pa.array([bytes.fromhex(h) for h in hexes[:3600]], type=pa.binary(16)))
    assert found.sum() == 3500 and not found[3500:].any()
    labels = got.column("verdict").to_pylist()
    assert labels[:3] == ["B", "B", "B"] and labels[3] == "tie" and labels[10:12] == ["A", "A"]
    assert got.column("score").to_pylist()[3] == 9.5 and got.column("prompt_tokens").to_pylist()[20] == 1
    assert store.count_judgments(key) == 3500 and store.count_judgments() == 3500
    cached = store.cached_judgments(key, hexes[:12] + ["0" * 32], 1, 0)
    assert len(cached) == 12 and cached[hexes[3]].verdict.label == "tie" and cached[hexes[11]].verdict.seconds == 0.0
    assert store.cached_judgments(key, hexes[:12], 0, 0) == {} and store.count_judgments("f" * 64) == 0


def test_an_interrupted_run_resumes_from_the_chunks_it_cached(tmp_path, data_root, monkeypatch):
    from registry.adapters.evaluators import heuristics
    from registry.services import datasets as svc
    from registry.services.evaluation import load_predictions, run_evaluation
    from registry.services.evaluators import ensure_baselines

    reg = _registry(tmp_path / "home")
    try:
        svc.register_all(reg, data_root, only={"pandalm-test"})
        ensure_baselines(reg, minilm=False)
        calls = []
        real = heuristics.RandomEvaluator._rule_arrow

        def dies_on_the_fifth(self, ctx, table, sample):
            calls.append(table.num_rows)
            if len(calls) == 5:
                raise RuntimeError("killed")
            return real(self, ctx, table, sample)

        monkeypatch.setattr(heuristics.RandomEvaluator, "_rule_arrow", dies_on_the_fifth)
        with pytest.raises(RuntimeError, match="killed"):
            run_evaluation(reg, "random", "pandalm-test", n_boot=50, chunk_rows=200)
        saved = sum(calls[:4])
        assert reg.store.count_judgments(reg.store.get_evaluator("random").sha256) == saved
        monkeypatch.undo()
        again = run_evaluation(reg, "random", "pandalm-test", n_boot=50, chunk_rows=300)
        assert again.n_cached == saved and again.n_executed == 1800 - saved
        first = load_predictions(reg, again)
        whole = run_evaluation(reg, "random", "pandalm-test", n_boot=50, seed=1)   # everything cached now
        assert whole.n_cached == 1800 and whole.n_executed == 0
        assert load_predictions(reg, whole).drop_columns(["seconds"]).equals(first.drop_columns(["seconds"]))
        assert [m.value for m in whole.metrics if m.name == "accuracy_3way"] == \
               [m.value for m in again.metrics if m.name == "accuracy_3way"]
        streamed = again.provenance["streaming"]
        assert streamed["chunk_rows"] == 300 and streamed["chunks"] == 4 and set(streamed["seconds"]) >= {"score"}
    finally:
        reg.close()


def test_chunks_are_sized_from_the_memory_setting():
    from registry.services.streaming import MAX_CHUNK_ROWS, MIN_CHUNK_ROWS, chunk_rows

    assert chunk_rows(2048, 3000) == 2048 * 2**20 // 4 // (6 * 3000)
    assert chunk_rows(1, 3000) == MIN_CHUNK_ROWS and chunk_rows(10**6, 100) == MAX_CHUNK_ROWS
    assert chunk_rows(4096, 3000) > chunk_rows(2048, 3000)


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


def test_list_feature_on_generated_texts_matches_python():
    """Texts drawn from the characters the list rule turns on (line breaks, every kind of space,
    bullets, ASCII and other decimal digits, '.' and ')', letters): the two-search form
    (``HAS_LIST_RE2``) gives Python's ``has_list`` (two non-overlapping ``_LIST_LINE`` matches)."""
    import numpy as np
    import pyarrow as pa

    from registry.domain.metrics.alpacaeval import has_list
    from registry.services.scoring import text_features

    alphabet = list("\n\n\n  \t\r-*+\u2022.)1234a") + ["12", "\u0661", "\u00a0", "\u2003", "\u3000", "\x85", "\u2028",
                                                   "\x1c", "\u200b", "x y", "- a", "1. b", "\n- ", "\n2) "]
    rng = np.random.default_rng(11)
    texts = ["".join(rng.choice(alphabet, size=int(rng.integers(0, 24)))) for _ in range(20_000)]
    _, lists = text_features(pa.array(texts))
    want = [has_list(t) for t in texts]
    assert lists.tolist() == want
    assert 1_000 < sum(want) < 19_000        # both answers are well represented
