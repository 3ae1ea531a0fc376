"""Stored metric names and values of real runs, pinned.

The predictions are built here, deterministically, on real datasets (real judges' files where
the data ships them); the expected records were computed by the scoring code before the metrics
moved into the metric registry (``scoring_pinned.json``, regenerate only on purpose with
``python -m tests.services.test_scoring_pinned``). Any change of a stored name, value, CI, n or
extra shows up here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pytest

from registry.adapters.sources import get_adapter
from registry.domain.judgments import PREDICTION_COLUMNS
from registry.services.scoring import compute_metrics, per_example_values

PINNED = Path(__file__).with_name("scoring_pinned.json")
N_BOOT = 200
_TYPES = {"string": pa.string(), "int8": pa.int8(), "int16": pa.int16(), "int32": pa.int32(),
          "float64": pa.float64(), "bool": pa.bool_()}
SCHEMA = pa.schema([pa.field(k, _TYPES[v]) for k, v in PREDICTION_COLUMNS.items()])


def _dataset(root: Path, adapter: str, name: str) -> tuple[pa.Table, tuple[str, ...] | None]:
    a = get_adapter(adapter)
    d = a.dataset_def(name)
    return pa.Table.from_pandas(a.read(root / d.path, **d.options), preserve_index=False), d.labels


def _predictions(rows: list[dict]) -> pa.Table:
    data: dict[str, list] = {c: [] for c in PREDICTION_COLUMNS}
    for r in rows:
        for c in PREDICTION_COLUMNS:
            data[c].append(r.get(c, {"sample": 0, "parsed": True, "prompt_tokens": 0, "completion_tokens": 0,
                                     "seconds": 0.0}.get(c)))
    return pa.Table.from_pydict(data, schema=SCHEMA)


def _pandalm(root: Path) -> tuple[pa.Table, pa.Table]:
    """Tie labels, 3 annotators, several categories: order 0 is GPT-3.5's shipped verdict, order 1
    the longer response (every 9th a parse failure), a ``prob_a`` from the lengths on most examples,
    a second sample on every 5th example, tokens and seconds for the cost metrics."""
    table, _ = _dataset(root, "pandalm", "pandalm-test")
    shipped = json.loads((root / "WeOpenML__PandaLM/data/gpt-3.5-turbo-testset-v1.json").read_text())
    from registry.domain.metrics.pandalm import parse_pandalm_predictions, prediction_field

    codes = parse_pandalm_predictions(shipped, prediction_field(shipped[0]))
    names = {0: "A", 1: "B", 2: "tie"}
    cols = table.to_pydict()
    rows = []
    for i, eid in enumerate(cols["example_id"]):
        a, b = len(cols["response_a"][i]), len(cols["response_b"][i])
        v0 = names.get(int(codes[int(eid)]))
        v1 = None if i % 9 == 0 else ("A" if a > b else "B" if b > a else "tie")
        prob = None if i % 7 == 0 else (a + 1) / (a + b + 2)
        cost = {"prompt_tokens": 100 + i % 13, "completion_tokens": 5 + i % 3, "seconds": 0.01 * (1 + i % 4)}
        rows.append({"example_id": eid, "order": 0, "verdict": v0, "prob_a": prob, "parsed": v0 is not None, **cost})
        rows.append({"example_id": eid, "order": 1, "verdict": v1, "prob_a": None if prob is None else prob * 0.9,
                     "parsed": v1 is not None, **cost})
        if i % 5 == 0:
            rows.append({"example_id": eid, "order": 0, "sample": 1, "verdict": "B", "prob_a": 0.25, **cost})
    return table, _predictions(rows)


def _llmbar(root: Path) -> tuple[pa.Table, pa.Table]:
    """A/B labels, both orders: GPT-4's shipped LLMBar verdicts (Vanilla_NoRules)."""
    from registry.domain.metrics.llmbar import parse_llmbar_result

    table, _ = _dataset(root, "llmbar", "llmbar-natural")
    folder = root / "princeton-nlp__LLMBar/Dataset/LLMBar/Natural"
    records = json.loads((folder / "evaluators/GPT-4/Vanilla_NoRules/result.json").read_text())
    _, v0, v1 = parse_llmbar_result(records)
    # result.json lists the dataset's examples in dataset.json's order
    ids = table.column("example_id").to_pylist()
    names = {0: "A", 1: "B", 2: "tie"}
    rows = []
    for i, eid in enumerate(ids):
        for order, v in ((0, v0), (1, v1)):
            verdict = names.get(int(v[i]))
            rows.append({"example_id": eid, "order": order, "verdict": verdict, "parsed": verdict is not None,
                         "seconds": 0.5})
    return table, _predictions(rows)


def _unieval(root: Path) -> tuple[pa.Table, pa.Table]:
    """Pointwise with systems: UniEval's shipped ``overall`` scores on Topical-Chat (every 11th unparsed)."""
    import ast

    table, _ = _dataset(root, "unieval", "topical-chat-overall")
    shipped = json.loads((root / "maszhongming__UniEval/reproduce/unieval_predict/dialogue/topical_chat_result.json")
                         .read_text())
    rows = []
    for i, eid in enumerate(table.column("example_id").to_pylist()):   # the result file follows the data file
        scores = ast.literal_eval(shipped[i]["predict_scores"]) if isinstance(shipped[i]["predict_scores"], str) \
            else shipped[i]["predict_scores"]
        rows.append({"example_id": eid, "order": 0, "score": None if i % 11 == 0 else float(scores["overall"]),
                     "parsed": i % 11 != 0, "seconds": 0.2})
    return table, _predictions(rows)


def _summac(root: Path) -> tuple[pa.Table, pa.Table, tuple[str, ...]]:
    """Classification with a probability: consistent when the summary is short (every 13th unparsed)."""
    table, labels = _dataset(root, "summac", "summac-factcc")
    cols = table.to_pydict()
    rows = []
    for i, eid in enumerate(cols["example_id"]):
        n = len(cols["response"][i])
        label = None if i % 13 == 0 else ("consistent" if n < 300 else "inconsistent")
        rows.append({"example_id": eid, "order": 0, "verdict": label, "score": 1.0 / (1.0 + n / 300.0),
                     "parsed": label is not None, "seconds": 0.1})
    return table, _predictions(rows), labels


def _plain(obj):
    if isinstance(obj, float) and math.isnan(obj):
        return "nan"
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _records(metrics) -> list[dict]:
    return [_plain({"name": m.name, "slice": m.slice, "value": m.value, "ci_low": m.ci_low, "ci_high": m.ci_high,
                    "n": m.n, "extra": m.extra}) for m in metrics]


def compute_all(root: Path) -> dict[str, object]:
    """Every pinned case: metric records, and the per-example values of the paired tests."""
    out: dict[str, object] = {}
    table, preds = _pandalm(root)
    out["pandalm"] = _records(compute_metrics("pairwise", table, preds, seed=3, n_boot=N_BOOT,
                                              price_per_1k_tokens=0.002, min_slice_size=30))
    out["pandalm_sliced"] = _records(compute_metrics("pairwise", table, preds, seed=3, n_boot=N_BOOT,
                                                     slice_by=["metadata.motivation_app"], min_slice_size=20))
    out["pandalm_order0"] = _records(compute_metrics("pairwise", table, preds.filter(pa.compute.equal(
        preds.column("order"), 0)), seed=1, n_boot=N_BOOT))
    ids, values = per_example_values("pairwise", table, preds)
    out["pandalm_per_example"] = {"ids": ids[:5], "n": len(ids), "sum": float(values.sum()),
                                  "head": [float(x) for x in values[:5]]}
    table, preds = _llmbar(root)
    out["llmbar"] = _records(compute_metrics("pairwise", table, preds, seed=0, n_boot=N_BOOT))
    ids, values = per_example_values("pairwise", table, preds)
    out["llmbar_per_example"] = {"n": len(ids), "sum": float(values.sum())}
    table, preds = _unieval(root)
    out["unieval"] = _records(compute_metrics("pointwise", table, preds, seed=0, n_boot=N_BOOT,
                                              slice_by=["system_id"], min_slice_size=5))
    table, preds, labels = _summac(root)
    ctx = SimpleNamespace(labels=labels)
    out["summac"] = _records(compute_metrics("classification", table, preds, ctx=ctx, seed=2, n_boot=N_BOOT,
                                             slice_by=["num_annotators"], min_slice_size=10))
    ids, values = per_example_values("classification", table, preds, labels=labels)
    out["summac_per_example"] = {"n": len(ids), "sum": float(values.sum())}
    return out


def _same(got, want, where: str) -> None:
    if isinstance(want, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        assert got == pytest.approx(want, rel=1e-12, abs=1e-15), where
    elif isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), where
        for k in want:
            _same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            _same(g, w, f"{where}[{i}]")
    else:
        assert got == want, where


def test_metrics_of_real_runs_are_pinned(data_root):
    want = json.loads(PINNED.read_text())
    got = json.loads(json.dumps(compute_all(data_root)))
    assert list(got) == list(want)
    for case in want:
        if isinstance(want[case], list):  # same names in the same order first: the clearest failure
            assert [(m["name"], m["slice"]) for m in got[case]] == [(m["name"], m["slice"]) for m in want[case]], case
        _same(got[case], want[case], case)
    names = {m["name"] for m in want["pandalm"]}
    # the cases cover what they claim to: 3-way and logprob metrics, annotators, cost, slices
    assert {"accuracy_3way", "accuracy_logprob", "accuracy_logprob_3way", "human_agreement",
            "price_per_1000", "correct_both"} <= names
    assert any(m["slice"] != "all" for m in want["pandalm"])
    assert {"spearman", "system_spearman"} <= {m["name"] for m in want["unieval"]}
    assert {"balanced_accuracy", "roc_auc"} <= {m["name"] for m in want["summac"]}


if __name__ == "__main__":
    from tests.conftest import _data_root

    PINNED.write_text(json.dumps(compute_all(_data_root()), indent=1) + "\n")
    print(f"wrote {PINNED}")
