"""Standings kept as runs land (issue 12, item 3): `best` and `leaderboard` read the rows the store
writes when a run finishes and give the same answers as the computation from every run's
predictions (``fresh=True``), on a registry seeded with real runs of every task type — `eval run`
and imports, a tie-labelled pairwise set with annotators, partial coverage, parse failures, sliced
metrics — by every rankable metric, for one dataset and over task types with both coverage
policies; cached tests are dropped and task-type rankings recomputed when a run lands; runs scored
before revision 0006 get their standings from the migration and their per-example judgments once,
on demand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from registry.adapters.store import db
from registry.domain.metrics.catalog import METRICS
from registry.errors import NotFound
from registry.services import datasets as svc
from registry.services import queries
from registry.services.datasets import load_table, register_dataset_version
from registry.services.evaluation import run_evaluation
from registry.services.evaluators import ensure_baselines
from registry.services.imports import import_predictions
from registry.services.queries import NOT_TIED, best_evaluator, leaderboard
from registry.services.standings import RunExamples

LLMBAR = "princeton-nlp__LLMBar/Dataset/LLMBar"
NATURAL, NEIGHBOR, PANDALM = "llmbar-natural", "llmbar-adversarial-neighbor", "pandalm-test"
CLF, PW = "summac-factcc", "summeval-coherence"
N_BOOT = 100


def _mapped(reg, tmp_path, dataset: str, evaluator: str, rows: list[dict], **options):
    path = tmp_path / f"{evaluator.replace('/', '_')}-{dataset}.json"
    path.write_text(json.dumps(rows))
    mapping = {"example_id": "id", **{k: k for k in rows[0] if k != "id"}}
    return import_predictions(reg, "mapped", path, dataset, evaluator=evaluator,
                              options={"mapping": mapping, **options}, n_boot=N_BOOT)


def _seed(reg, data_root, tmp_path) -> None:
    """Real runs on five real datasets (three task types): `eval run` of the heuristic baselines,
    LLMBar's and PandaLM's shipped judge outputs, and mapped imports (twins, a clearly worse judge,
    partial coverage, unparsed verdicts)."""
    assert not svc.register_all(reg, data_root, only={NATURAL, NEIGHBOR, PANDALM, CLF, PW}).failed
    ensure_baselines(reg, minilm=False)
    rng = np.random.default_rng(7)
    for ds, folder in ((NATURAL, "Natural"), (NEIGHBOR, "Adversarial/Neighbor")):
        for judge, protocol in (("GPT-4", "Vanilla"), ("GPT-4", "CoT"), ("ChatGPT", "Vanilla")):
            path = data_root / LLMBAR / folder / "evaluators" / judge / protocol / "result.json"
            import_predictions(reg, "llmbar", path, ds, evaluator=f"{judge.lower()}/{protocol.lower()}",
                               n_boot=N_BOOT)
        for kind in ("longer", "random", "always-first"):
            run_evaluation(reg, kind, ds, n_boot=N_BOOT, seed=3)
    # partial coverage and parse failures on Natural
    table = load_table(reg, NATURAL).to_pydict()
    rows = [{"id": e, "verdict_0": lab if rng.random() < 0.8 else "garbage", "verdict_1": lab}
            for e, lab in zip(table["example_id"], table["label"]) if rng.random() < 0.7]
    _mapped(reg, tmp_path, NATURAL, "partial/judge", rows, unmapped="failure")
    # the tie-labelled set: PandaLM's two judges, two heuristics
    folder = data_root / "WeOpenML__PandaLM/data"
    for name, file in (("gpt-3.5-turbo/pandalm", "gpt-3.5-turbo-testset-v1.json"),
                       ("pandalm-7b/pandalm", "pandalm-7b-testset-v1.json")):
        import_predictions(reg, "pandalm", folder / file, PANDALM, evaluator=name, n_boot=N_BOOT)
    for kind in ("longer", "random"):
        run_evaluation(reg, kind, PANDALM, n_boot=N_BOOT)
    # classification: twins, a worse judge, a coin, a heuristic
    clf = load_table(reg, CLF).to_pydict()
    other = {"consistent": "inconsistent", "inconsistent": "consistent"}
    good = [{"id": e, "verdict_0": other[y] if rng.random() < 0.1 else y,
             "score_0": float((y == "consistent") + rng.normal(0, 0.5))} for e, y in zip(clf["example_id"], clf["label"])]
    worse = [{"id": r["id"], "verdict_0": other[r["verdict_0"]] if rng.random() < 0.2 else r["verdict_0"],
              "score_0": r["score_0"] + float(rng.normal(0, 1))} for r in good]
    coin = [{"id": e, "verdict_0": str(rng.choice(["consistent", "inconsistent"])), "score_0": float(rng.normal())}
            for e in clf["example_id"]]
    for name, rows in (("clf/one", good), ("clf/two", good), ("clf/worse", worse), ("clf/coin", coin)):
        _mapped(reg, tmp_path, CLF, name, rows)
    run_evaluation(reg, "always-first", CLF, n_boot=N_BOOT)
    # pointwise (with systems): twins, a noisier one, a coin, a heuristic
    pw = load_table(reg, PW).to_pydict()
    good = [{"id": e, "score_0": float(s + rng.normal(0, 0.5))} for e, s in zip(pw["example_id"], pw["score"])]
    noisy = [{"id": e, "score_0": float(s + rng.normal(0, 2))} for e, s in zip(pw["example_id"], pw["score"])]
    coin = [{"id": e, "score_0": float(rng.normal())} for e in pw["example_id"]]
    for name, rows in (("pw/one", good), ("pw/two", good), ("pw/noisy", noisy), ("pw/coin", coin)):
        _mapped(reg, tmp_path, PW, name, rows)
    run_evaluation(reg, "longer", PW, n_boot=N_BOOT, slice_by=[])


def _rankable(reg, dataset: str) -> list[str]:
    names = {m.name for r in reg.store.latest_runs(datasets=[reg.store.get_version(dataset).ref])
             for m in r.metrics if m.slice == "all" and m.value is not None}
    return sorted(n for n in names if METRICS[n].higher_is_better is not None)


def _same(new, old, *, alpha: float = queries.ALPHA) -> int:
    """The two answers agree field by field (a standing the new path did not test because the CIs do not
    overlap must be not tied in the old one); returns how many standings were left untested."""
    for f in ("scope", "metric", "datasets", "skipped", "left_out", "coverage", "test"):
        assert getattr(new, f) == getattr(old, f), f
    assert [s.evaluator for s in new.standings] == [s.evaluator for s in old.standings]
    untested = 0
    for a, b in zip(new.standings, old.standings):
        assert (a.value, a.ci_low, a.ci_high, a.n, a.runs) == (b.value, b.ci_low, b.ci_high, b.n, b.runs), a.evaluator
        assert list(a.metrics.items()) == list(b.metrics.items()), a.evaluator
        if a.test == NOT_TIED:
            untested += 1
            assert not a.tied_with_best and a.p_value is None
            assert not b.tied_with_best and b.p_value is not None and b.p_value < alpha, (a.evaluator, b)
            assert a.difference == pytest.approx(b.difference, abs=1e-9)
            continue
        assert (a.p_value, a.difference, a.tied_with_best, a.test) == (b.p_value, b.difference, b.tied_with_best,
                                                                       b.test), (a, b)
    if not untested:   # what the CLI prints (`--json`) is the same too
        assert json.dumps(new.to_dict()) == json.dumps(old.to_dict())
    return untested


def _queries(reg) -> list[tuple[str, dict]]:
    out: list[tuple[str, dict]] = []
    for ds in (NATURAL, NEIGHBOR, PANDALM, CLF, PW):
        out += [("leaderboard", {"dataset": ds, "metric": m}) for m in _rankable(reg, ds)]
        out.append(("best", {"dataset": ds}))
    for tt in ("pairwise", "classification", "pointwise"):
        for coverage in ("common", "all"):
            out.append(("best", {"task_type": tt, "coverage": coverage}))
    out += [("best", {"task_type": "pairwise", "metric": "correct_both"}),
            ("best", {"datasets": [NATURAL, NEIGHBOR]}),
            ("best", {"datasets": [NATURAL, PANDALM], "metric": "accuracy_strict", "coverage": "common"})]
    return out


def _ask(reg, what: str, kw: dict, *, fresh: bool):
    fn = leaderboard if what == "leaderboard" else best_evaluator
    try:
        return fn(reg, **kw, n_boot=300, fresh=fresh)
    except NotFound as exc:
        return ("NotFound", str(exc))


def _check_all(reg) -> int:
    untested = 0
    for what, kw in _queries(reg):
        old = _ask(reg, what, kw, fresh=True)
        for _ in range(2):                  # computed and cached, then read from the cache
            new = _ask(reg, what, kw, fresh=False)
            if isinstance(old, tuple):
                assert new == old, (what, kw)
            else:
                untested += _same(new, old)
    return untested


def test_standings_answer_as_the_runs_do(registry, data_root, tmp_path, monkeypatch):
    _seed(registry, data_root, tmp_path)
    # every finished run left its leaderboard row and its per-example judgments
    for ds in (NATURAL, NEIGHBOR, PANDALM, CLF, PW):
        ref = registry.store.get_version(ds).ref
        latest = registry.store.latest_runs(datasets=[ref])
        rows = registry.store.standings([ref])
        assert {(r.evaluator, r.run_id) for r in rows} == {(r.evaluator, r.id) for r in latest}
        stored = registry.store.run_examples([r.id for r in latest])
        assert set(stored) == {r.id for r in latest}
        assert all(RunExamples.decode(b).n_rows == registry.store.get_version(ds).row_count for b in stored.values())
    assert _check_all(registry) == 0          # small boards: every candidate tested, answers identical

    # the rule of large boards: only candidates whose CI overlaps the best's are tested
    monkeypatch.setattr(queries, "FULL_TESTS_UP_TO", 0)
    assert _check_all(registry) > 0


def test_a_landing_run_drops_the_cached_tests_and_moves_the_rankings_on(registry, data_root, tmp_path):
    _seed_small(registry, data_root)
    ref = registry.store.get_version(NATURAL).ref
    first = leaderboard(registry, NATURAL)
    best_run = first.standings[0].runs[0]
    assert len(registry.store.cached_tests(ref, "accuracy", best_run, n_boot=1000, seed=0)) == len(first.standings)
    over = best_evaluator(registry, task_type="pairwise")
    generation = registry.store.standings_generation("pairwise")
    path = data_root / LLMBAR / "Natural" / "evaluators" / "GPT-4" / "Swap" / "result.json"
    import_predictions(registry, "llmbar", path, NATURAL, evaluator="gpt-4/swap", n_boot=N_BOOT)
    assert registry.store.cached_tests(ref, "accuracy", best_run, n_boot=1000, seed=0) == {}
    assert registry.store.standings_generation("pairwise") == generation + 1
    after = best_evaluator(registry, task_type="pairwise")
    assert "gpt-4/swap" in {o.evaluator for o in after.left_out} - {o.evaluator for o in over.left_out}
    _same(after, best_evaluator(registry, task_type="pairwise", fresh=True))
    _same(leaderboard(registry, NATURAL), leaderboard(registry, NATURAL, fresh=True))
    # an evaluator's newer run replaces its row
    again = run_evaluation(registry, "longer", NATURAL, n_boot=N_BOOT, seed=9)
    rows = {r.evaluator: r for r in registry.store.standings([ref])}
    assert rows["longer"].run_id == again.id
    board = leaderboard(registry, NATURAL)
    _same(board, leaderboard(registry, NATURAL, fresh=True))
    assert leaderboard(registry, NATURAL) is board          # asked again, nothing landed: the answer kept
    # a new version of the dataset: `NAME` now means it (no run on it yet)
    rows = json.loads((data_root / LLMBAR / "Natural" / "dataset.json").read_text())
    rows[0]["label"] = 2 if str(rows[0]["label"]) == "1" else 1
    (tmp_path / "natural-v2.json").write_text(json.dumps(rows))
    register_dataset_version(registry, name=NATURAL, source="llmbar", path=tmp_path / "natural-v2.json")
    with pytest.raises(NotFound, match="llmbar-natural@2"):
        leaderboard(registry, NATURAL)
    with pytest.raises(NotFound):
        leaderboard(registry, NATURAL, fresh=True)


def _seed_small(reg, data_root) -> None:
    assert not svc.register_all(reg, data_root, only={NATURAL, NEIGHBOR}).failed
    ensure_baselines(reg, minilm=False)
    for ds, folder in ((NATURAL, "Natural"), (NEIGHBOR, "Adversarial/Neighbor")):
        for judge, protocol in (("GPT-4", "Vanilla"), ("ChatGPT", "Vanilla")):
            path = data_root / LLMBAR / folder / "evaluators" / judge / protocol / "result.json"
            import_predictions(reg, "llmbar", path, ds, evaluator=f"{judge.lower()}/{protocol.lower()}",
                               n_boot=N_BOOT)
        run_evaluation(reg, "longer", ds, n_boot=N_BOOT)


def test_runs_scored_before_the_standings_get_them_from_the_migration_and_on_demand(registry, data_root):
    _seed_small(registry, data_root)
    refs = [registry.store.get_version(d).ref for d in (NATURAL, NEIGHBOR)]
    before = sorted(registry.store.standings(refs, with_metrics=True), key=lambda r: r.run_id)
    engine = registry.store.engine
    db.downgrade(engine, "0005")      # as a registry written by older code: no standings at all
    db.upgrade(engine)
    after = sorted(registry.store.standings(refs, with_metrics=True), key=lambda r: r.run_id)
    assert after == before            # the migration computed every leaderboard row from the stored metrics
    runs = [r.run_id for r in after]
    assert registry.store.run_examples(runs) == {}
    _same(leaderboard(registry, NATURAL), leaderboard(registry, NATURAL, fresh=True))
    natural = [r.run_id for r in after if r.dataset == refs[0]]
    assert set(registry.store.run_examples(runs)) == set(natural)   # computed once, on demand, and kept
    _same(best_evaluator(registry, task_type="pairwise"), best_evaluator(registry, task_type="pairwise", fresh=True))
