"""The metric catalog against what runs really store, on real registered data of every task type:
every stored name is catalogued (an undocumented metric fails here), ``accuracy`` has one meaning,
slices of every headline metric by any column, and coverage that counts parsed judgments."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from registry.domain.metrics.catalog import SLICED, TASK_TYPES, metrics_for
from registry.errors import InvalidInput
from registry.services import datasets as svc
from registry.services.evaluation import PREDICTION_SCHEMA, run_evaluation, task_context
from registry.services.evaluators import ensure_baselines
from registry.services.scoring import compute_metrics, headline_for

SETS = {"llmbar-natural", "pandalm-test", "summeval-coherence", "summac-factcc"}


@pytest.fixture
def reg(sqlite_registry, data_root):
    svc.register_all(sqlite_registry, data_root, only=SETS)
    return sqlite_registry


def _predictions(table: pa.Table, task_type: str, *, orders=(0, 1), prob_a: bool = False, skip: int = 0,
                 unparsed: int = 0, seed: int = 0) -> pa.Table:
    """A judge that is right ~70% of the time (pairwise/classification) or noisy (pointwise). The
    first ``skip`` examples get no prediction, the next ``unparsed`` only unparseable ones."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {f.name: [] for f in PREDICTION_SCHEMA}
    labels = table.column("label").to_pylist() if "label" in table.column_names else None
    classes = sorted(set(labels)) if labels and task_type == "classification" else None
    for i, eid in enumerate(table.column("example_id").to_pylist()):
        if i < skip:
            continue
        for order in orders:
            verdict, score, p = None, None, None
            if i >= skip + unparsed:
                if task_type == "pairwise":
                    right = rng.random() < 0.7
                    verdict = labels[i] if right else {"A": "B", "B": "A", "tie": "A"}[labels[i]]
                    p = {"A": 0.8, "B": 0.2, "tie": 0.5}[verdict] if prob_a else None
                elif task_type == "pointwise":
                    score = float(table.column("score")[i].as_py()) + float(rng.normal(0, 1))
                else:
                    verdict = labels[i] if rng.random() < 0.7 else classes[0]
                    score = float(rng.random()) + (verdict == classes[0])
            rows["example_id"].append(eid)
            rows["order"].append(order)
            rows["sample"].append(0)
            rows["verdict"].append(verdict)
            rows["score"].append(score)
            rows["prob_a"].append(p)
            rows["parsed"].append(verdict is not None or score is not None)
            rows["raw"].append("")
            rows["prompt_tokens"].append(100)
            rows["completion_tokens"].append(5)
            rows["seconds"].append(0.01)
    return pa.Table.from_pydict(rows, schema=PREDICTION_SCHEMA)


def _score(reg, name, predictions, **kw):
    version = reg.store.get_version(name)
    table = svc.load_table(reg, name)
    return compute_metrics(version.task_type, table, predictions, ctx=task_context(version), n_boot=30, **kw)


def test_every_stored_metric_is_catalogued_and_every_catalogued_one_is_stored(reg):
    """An undocumented metric fails this test, and so does a catalog entry no run can have."""
    ensure_baselines(reg, minilm=False)
    stored: dict[str, set[str]] = {t: set() for t in TASK_TYPES}
    for evaluator, dataset in (("always-first", "llmbar-natural"), ("longer", "summeval-coherence"),
                               ("always-first", "summac-factcc")):
        run = run_evaluation(reg, evaluator, dataset, n_boot=30)
        stored[reg.store.get_version(dataset).task_type] |= {m.name for m in run.metrics if m.slice == "all"}
    scenarios = [("llmbar-natural", {"prob_a": True}), ("llmbar-natural", {"orders": (0,)}),
                 ("pandalm-test", {"prob_a": True}), ("pandalm-test", {"orders": (1,)}),
                 ("summeval-coherence", {}), ("summac-factcc", {})]
    for name, options in scenarios:
        table = svc.load_table(reg, name)
        task_type = reg.store.get_version(name).task_type
        records = _score(reg, name, _predictions(table, task_type, **options), price_per_1k_tokens=0.002)
        stored[task_type] |= {r.name for r in records if r.slice == "all"}
    for task_type in TASK_TYPES:
        catalogued = {m.name for m in metrics_for(task_type)}
        assert stored[task_type] - catalogued == set(), f"{task_type} metrics missing from the catalog"
        assert catalogued - stored[task_type] == set(), f"{task_type} catalog entries no run stores"
    assert "kappa_average" not in stored["pairwise"] and "llmbar_kappa_average" in stored["pairwise"]


def test_accuracy_has_one_meaning_and_tie_sets_get_accuracy_3way(reg):
    pandalm = reg.store.get_version("pandalm-test")
    table = svc.load_table(reg, "pandalm-test")
    records = {(r.name, r.slice): r for r in _score(reg, "pandalm-test", _predictions(table, "pairwise"))}
    preds = _predictions(table, "pairwise").to_pylist()
    labels = dict(zip(table.column("example_id").to_pylist(), table.column("label").to_pylist()))
    # ReIFE expected credit: a tie verdict earns ½ against an A/B label, nothing against a tie label
    credit = [(0.5 if labels[p["example_id"]] != "tie" else 0.0) if p["verdict"] == "tie"
              else float(p["verdict"] == labels[p["example_id"]]) for p in preds]
    exact = [float(p["verdict"] == labels[p["example_id"]]) for p in preds]
    assert records[("accuracy", "all")].value == pytest.approx(np.mean(credit))
    assert records[("accuracy_3way", "all")].value == pytest.approx(np.mean(exact))
    assert records[("accuracy", "all")].value != pytest.approx(records[("accuracy_3way", "all")].value)
    assert headline_for(pandalm) == "accuracy_3way" == SLICED["pairwise"][1]
    # no 3-way figure where the labels have no ties
    natural = svc.load_table(reg, "llmbar-natural")
    names = {r.name for r in _score(reg, "llmbar-natural", _predictions(natural, "pairwise"))}
    assert "accuracy" in names and "accuracy_3way" not in names
    assert headline_for(reg.store.get_version("llmbar-natural")) == "accuracy"


def _slices(records, name):
    return {r.slice: r for r in records if r.name == name and r.slice != "all"}


def test_slices_of_every_headline_metric_by_any_column(reg):
    table = svc.load_table(reg, "pandalm-test")
    # default: category (the compared model pairs), for accuracy and accuracy_3way
    records = _score(reg, "pandalm-test", _predictions(table, "pairwise"))
    pairs = {f"category={c}" for c in table.column("category").to_pylist()}
    assert len(pairs) > 1 and set(_slices(records, "accuracy")) == pairs == set(_slices(records, "accuracy_3way"))
    # a metadata key with 50 values (more than the old cap of 40), some under the minimum size
    records = _score(reg, "pandalm-test", _predictions(table, "pairwise"), slice_by=["metadata.motivation_app"])
    apps = [json.loads(m)["motivation_app"] for m in table.column("metadata").to_pylist()]
    sizes = {a: apps.count(a) for a in set(apps)}
    big = {f"metadata.motivation_app={a}" for a, n in sizes.items() if n >= 10}
    assert len(sizes) == 50 and 0 < len(big) < 50
    assert set(_slices(records, "accuracy")) == big == set(_slices(records, "accuracy_3way"))
    for sl, r in _slices(records, "accuracy").items():
        assert r.n == sizes[sl.split("=", 1)[1]]
    report = next(r for r in records if r.name == "coverage").extra["slices"]
    assert [(s["column"], s["computed"], s["skipped_total"]) for s in report] == \
        [("metadata.motivation_app", len(big), 50 - len(big))]
    assert {s["slice"] for s in report[0]["skipped"]} == {f"metadata.motivation_app={a}" for a in sizes} - big
    assert all(s["reason"] == "fewer than 10 examples" and s["n"] < 10 for s in report[0]["skipped"])
    # classification: balanced accuracy and accuracy per slice (never sliced before)
    clf = svc.load_table(reg, "summac-factcc")
    records = _score(reg, "summac-factcc", _predictions(clf, "classification"), slice_by=["label", "metadata.origin"],
                     min_slice_size=5)
    assert set(_slices(records, "balanced_accuracy")) == set(_slices(records, "accuracy")) == \
        {"label=consistent", "label=inconsistent", "metadata.origin=cnndm"}
    assert _slices(records, "accuracy")["metadata.origin=cnndm"].value == pytest.approx(
        next(r for r in records if r.name == "accuracy" and r.slice == "all").value)
    # pointwise: spearman per system
    pw = svc.load_table(reg, "summeval-coherence")
    records = _score(reg, "summeval-coherence", _predictions(pw, "pointwise"), slice_by=["system_id"])
    assert len(_slices(records, "spearman")) == 16
    assert all(r.n == 100 for r in _slices(records, "spearman").values())


def test_unknown_or_unsliceable_column_is_refused_with_the_columns(reg):
    table = svc.load_table(reg, "pandalm-test")
    preds = _predictions(table, "pairwise")
    with pytest.raises(InvalidInput) as err:
        _score(reg, "pandalm-test", preds, slice_by=["categry"])
    msg = str(err.value)
    assert "'categry'" in msg and "slice_by" in msg
    assert "category" in msg and "label" in msg and "metadata.motivation_app" in msg
    with pytest.raises(InvalidInput, match="holds lists"):
        _score(reg, "pandalm-test", preds, slice_by=["annotator_labels"])
    with pytest.raises(InvalidInput, match="min_slice_size"):
        _score(reg, "pandalm-test", preds, min_slice_size=0)


def test_coverage_counts_parsed_judgments(reg):
    table = svc.load_table(reg, "llmbar-natural")
    records = _score(reg, "llmbar-natural", _predictions(table, "pairwise", skip=10, unparsed=15))
    coverage = next(r for r in records if r.name == "coverage")
    assert coverage.value == pytest.approx(75 / 100)          # 10 never judged, 15 judged but unparsed
    assert coverage.n == 100
    assert {k: coverage.extra[k] for k in ("rows", "with_predictions", "unparsed", "judged")} == \
        {"rows": 100, "with_predictions": 90, "unparsed": 15, "judged": 75}
    clf = svc.load_table(reg, "summac-factcc")
    records = _score(reg, "summac-factcc", _predictions(clf, "classification", unparsed=11))
    coverage = next(r for r in records if r.name == "coverage")
    assert coverage.value == pytest.approx(300 / 311) and coverage.extra["unparsed"] == 11


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_eval_run_slice_by_through_the_cli(cli, registry, data_root):
    svc.register_all(registry, data_root, only={"pandalm-test"})
    ensure_baselines(registry, minilm=False)
    out = cli("eval", "run", "-e", "random", "-d", "pandalm-test", "--n-boot", "20", "--slice-by", "category",
              "--slice-by", "metadata.motivation_app", "--min-slice-size", "40", "--json")
    assert out.exit_code == 0, out.stdout
    run = json.loads(out.stdout)
    slices = {m["slice"] for m in run["metrics"] if m["name"] == "accuracy_3way"}
    apps = [json.loads(m)["motivation_app"] for m in svc.load_table(registry, "pandalm-test")["metadata"].to_pylist()]
    top = max(set(apps), key=apps.count)
    assert apps.count(top) >= 40
    assert "category=bloom-7b_llama-7b" in slices and f"metadata.motivation_app={top}" in slices
    report = next(m for m in run["metrics"] if m["name"] == "coverage")["extra"]["slices"]
    assert [r["column"] for r in report] == ["category", "metadata.motivation_app"]
    assert all(s["reason"] == "fewer than 40 examples" for s in report[1]["skipped"])
    bad = cli("eval", "run", "-e", "random", "-d", "pandalm-test", "--slice-by", "nope")
    assert bad.exit_code == 2 and "nope" in bad.stderr and "metadata.motivation_app" in bad.stderr
    assert len(registry.store.latest_runs()) == 1          # the refused run was never started
