"""Juries (registry.services.jury) on real data: LLMBar Natural with the imported GPT-4 / ChatGPT judges
and the heuristic baselines. A jury's run is a normal run (stored predictions per order, metrics,
leaderboard, ``best``), idempotent, computed from the members' stored verdicts (checked against a
loop over their prediction tables), with the members' summed cost; and the errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from registry.domain import jury as J
from registry.errors import InvalidInput, NotFound
from registry.services import datasets as svc
from registry.services.evaluation import load_predictions, run_evaluation
from registry.services.evaluators import (
    create_evaluator,
    ensure_baselines,
    register_checkpoint,
)
from registry.services.imports import import_predictions
from registry.services.jury import analyze_jury, create_jury
from registry.services.queries import EvaluatorFilter, best_evaluator, leaderboard

NATURAL = "llmbar-natural"
MANUAL = "llmbar-adversarial-manual"
JUDGES = (("GPT-4", "Vanilla"), ("GPT-4", "CoT"), ("ChatGPT", "Vanilla"))
N_BOOT = 100


def _name(judge: str, protocol: str) -> str:
    return f"{judge.lower()}/llmbar-{protocol.lower()}"


@pytest.fixture(scope="module")
def reg(tmp_path_factory, data_root):
    """LLMBar Natural and Adversarial/Manual registered, three LLMBar judges imported on Natural only,
    the heuristic baselines created (not run)."""
    from registry.config import Settings
    from registry.services.app import init_registry

    home = tmp_path_factory.mktemp("jury-home")
    s = Settings.from_env(home=str(home), db_url=f"sqlite:///{home / 'registry.db'}", store=str(home / "store"),
                          dvc_remote=str(home / "remote"), data_root=str(data_root))
    r = init_registry(s)
    assert not svc.register_all(r, data_root, only={NATURAL, MANUAL}).failed
    folder = data_root / "princeton-nlp__LLMBar" / "Dataset" / "LLMBar" / "Natural" / "evaluators"
    for judge, protocol in JUDGES:
        import_predictions(r, "llmbar", folder / judge / protocol / "result.json", NATURAL,
                           evaluator=_name(judge, protocol), n_boot=N_BOOT)
    ensure_baselines(r, minilm=False)
    yield r
    r.close()


def _member_codes(reg, run) -> dict[tuple[str, int], int]:
    p = load_predictions(reg, run).to_pydict()
    codes = {"A": 0, "B": 1, "tie": 2}
    return {(e, o): codes.get(v, -1) for e, o, v in zip(p["example_id"], p["order"], p["verdict"])}


def test_majority_jury_run_is_a_normal_run(reg):
    members = [_name(*j) for j in JUDGES]
    ev, created = create_jury(reg, members=members, combine="majority", name="llmbar-jury")
    assert created and ev.kind == "jury" and ev.protocol == "jury@1"
    assert [m["name"] for m in ev.config["members"]] == members
    assert create_jury(reg, members=members, combine="majority", name="llmbar-jury") == (ev, False)
    other, _ = create_jury(reg, members=members, combine="weighted", name="llmbar-jury-w")
    assert other.sha256 != ev.sha256                              # the combiner is part of the hash
    run = run_evaluation(reg, "llmbar-jury", NATURAL, n_boot=N_BOOT)
    assert run.status == "succeeded" and run.evaluator == "llmbar-jury"
    member_runs = {m: reg.store.list_runs(dataset=NATURAL, evaluator=m, status="succeeded")[0] for m in members}
    assert run.provenance["member_runs"] == {m: r.id for m, r in member_runs.items()}
    # every stored verdict is the strict plurality of the members' verdicts (a loop over their tables)
    member_codes = [_member_codes(reg, member_runs[m]) for m in members]
    preds = load_predictions(reg, run).to_pydict()
    assert sorted(set(preds["order"])) == [0, 1] and len(preds["example_id"]) == 200
    names = {0: "A", 1: "B", 2: "tie", -1: None}
    for e, o, v, raw in zip(preds["example_id"], preds["order"], preds["verdict"], preds["raw"]):
        votes = [c[(e, o)] for c in member_codes]
        counts = {x: votes.count(x) for x in set(votes) if x != -1}
        top = max(counts.values()) if counts else 0
        winners = [x for x, k in counts.items() if k == top]
        want = -1 if not counts else winners[0] if len(winners) == 1 else 2
        assert v == names[want]
        assert json.loads(raw)["votes"] == {m: names[c] for m, c in zip(members, votes)}
    # scored through the normal path: the headline is the credit of those verdicts
    acc = run.metric("accuracy")
    assert acc is not None and 0.9 <= acc.value <= 1.0 and acc.ci_low < acc.value < acc.ci_high
    # appears in the leaderboard and in best, with the single judges
    board = leaderboard(reg, NATURAL)
    kinds = {s.evaluator: s.kind for s in board.standings}
    assert kinds["llmbar-jury"] == "jury" and kinds["gpt-4/llmbar-vanilla"] == "external"
    assert {s.evaluator: s.kind for s in best_evaluator(reg, task_type="pairwise").standings}["llmbar-jury"] == "jury"
    assert "llmbar-jury" in [s.evaluator for s in best_evaluator(reg, dataset=NATURAL).standings]
    # idempotent: the same member runs and config give the same run
    assert run_evaluation(reg, "llmbar-jury", NATURAL, n_boot=N_BOOT).id == run.id
    # no price known for imported judges: the jury has none and a cost cap leaves it out
    assert run.metric("price_per_1000") is None
    run_evaluation(reg, "always-first", NATURAL, n_boot=N_BOOT)      # a free evaluator to rank under the cap
    capped = best_evaluator(reg, dataset=NATURAL, only=EvaluatorFilter(max_cost_per_1k=0.0))
    assert [s.evaluator for s in capped.standings] == ["always-first"]


def test_fitted_juries_are_out_of_fold_and_recorded(reg):
    members = [_name(*j) for j in JUDGES]
    for combine in J.FITTED:
        ev, _ = create_jury(reg, members=members, combine=combine, folds=4, seed=3, name=f"natural-{combine}")
        run = run_evaluation(reg, ev.name, NATURAL, n_boot=N_BOOT)
        assert run.provenance["combine"] == combine and run.provenance["folds"] == 4
        assert run.metric("accuracy").value >= 0.8
        if combine == "weighted":
            w = run.provenance["weights"]
            assert w["gpt-4/llmbar-vanilla"] > w["chatgpt/llmbar-vanilla"] > 0   # the better judge weighs more
        else:
            p = load_predictions(reg, run).column("prob_a").to_pylist()
            assert all(x is not None and 0 < x < 1 for x in p)
            assert "verdicts only" in run.provenance["notes"][0]      # LLMBar judges have no confidences


def test_runnable_members_are_run_first_and_costs_are_summed(reg):
    members = ["longer", "shorter", "random"]
    assert not reg.store.list_runs(dataset=NATURAL, evaluator="longer")
    ev, _ = create_jury(reg, members=members, combine="majority", name="heuristic-jury")
    run = run_evaluation(reg, ev.name, NATURAL, n_boot=N_BOOT)
    runs = {m: reg.store.list_runs(dataset=NATURAL, evaluator=m, status="succeeded")[0] for m in members}
    assert run.provenance["member_runs"] == {m: r.id for m, r in runs.items()}
    # cost and time = the members' sums
    assert run.metric("price_per_1000").value == 0.0                 # local heuristics cost nothing
    want = sum(r.metric("time_per_1000").value for r in runs.values())
    assert run.metric("time_per_1000").value == pytest.approx(want, rel=1e-6)
    assert run.seconds == pytest.approx(sum(r.seconds for r in runs.values()))
    # a cost cap keeps the free jury (kind jury in the standings), leaves out the imported judges
    capped = best_evaluator(reg, dataset=NATURAL, only=EvaluatorFilter(max_cost_per_1k=0.0))
    names = [s.evaluator for s in capped.standings]
    assert "heuristic-jury" in names and "gpt-4/llmbar-vanilla" not in names
    # scoring the run again from its predictions keeps the summed price (it is not in the predictions)
    from registry.services.rescore import rescore_runs

    rescored = rescore_runs(reg, run_ids=[run.id]).runs[0]
    assert "price_per_1000" not in rescored.removed
    assert reg.store.get_run(run.id).metric("price_per_1000").value == 0.0


def test_errors_leave_the_registry_unchanged(reg, data_root):
    with pytest.raises(NotFound, match="no evaluator named 'gpt-4/llmbar-vanila'; did you mean"):
        create_jury(reg, members=["gpt-4/llmbar-vanila", "longer"])
    with pytest.raises(InvalidInput, match="at least two member"):
        create_jury(reg, members=["longer"])
    with pytest.raises(InvalidInput, match="unknown combiner 'mean'"):
        create_jury(reg, members=["longer", "shorter"], combine="mean")
    ev, _ = create_jury(reg, members=["longer", "shorter", "random"], combine="stacked", name="tmp-jury")
    assert ev.name == "tmp-jury"
    with pytest.raises(InvalidInput, match="is itself a jury"):
        create_jury(reg, members=["tmp-jury", "longer"])
    # an imported member without a run on the version cannot be run here (checked before any member runs)
    before = len(reg.store.list_runs())
    ev, _ = create_jury(reg, members=["longer", "gpt-4/llmbar-vanilla"], combine="majority", name="needs-import")
    with pytest.raises(InvalidInput, match=r"jury member 'gpt-4/llmbar-vanilla' \(external\) has no run on "
                                           r"llmbar-adversarial-manual@1 .* import its predictions first"):
        run_evaluation(reg, "needs-import", MANUAL, n_boot=N_BOOT)
    assert not reg.store.list_runs(evaluator="needs-import")
    assert len(reg.store.list_runs()) == before                      # no run of any kind was added
    # too few examples for the folds
    create_jury(reg, members=["longer", "shorter"], combine="weighted", folds=60, name="many-folds")
    with pytest.raises(InvalidInput, match="100 examples are too few for 60 folds"):
        run_evaluation(reg, "many-folds", NATURAL, n_boot=N_BOOT)
    assert not reg.store.list_runs(evaluator="many-folds")
    # members without a task type in common: an external evaluator with no run yet
    ckpt, _ = register_checkpoint(reg, "nowhere", kind="external", uri="external:nowhere")
    create_evaluator(reg, checkpoint=ckpt.ref, protocol="external", name="nowhere/x", kind="external",
                     config={"format": "llmbar", "source": "nowhere/x"})
    with pytest.raises(InvalidInput, match=r"no task type in common \(.*nowhere/x: no runs yet"):
        create_jury(reg, members=["longer", "nowhere/x"])


def test_classification_majority_and_unsupported_task_types(reg, data_root):
    assert not svc.register_all(reg, data_root, only={"summac-factcc", "bagel-quality"}).failed
    members = ["always-first", "always-second", "random"]
    create_jury(reg, members=members, name="cls-jury")                # majority: pairwise and classification
    run = run_evaluation(reg, "cls-jury", "summac-factcc", n_boot=N_BOOT)
    assert run.status == "succeeded" and run.metric("balanced_accuracy") is not None
    runs = [reg.store.list_runs(dataset="summac-factcc", evaluator=m, status="succeeded")[0] for m in members]
    member_verdicts = []
    for r in runs:
        p = load_predictions(reg, r).to_pydict()
        member_verdicts.append(dict(zip(p["example_id"], p["verdict"])))
    p = load_predictions(reg, run).to_pydict()
    assert set(p["order"]) == {0}
    for e, v in zip(p["example_id"], p["verdict"]):
        votes = [m[e] for m in member_verdicts if m[e] is not None]
        counts = {x: votes.count(x) for x in set(votes)}
        winners = [x for x, k in counts.items() if k == max(counts.values())] if counts else []
        assert v == (winners[0] if len(winners) == 1 else None)      # a split gives no label
    # a fitted combiner is pairwise only; a pointwise version no jury judges
    create_jury(reg, members=["always-first", "always-second"], combine="weighted", name="cls-weighted")
    with pytest.raises(InvalidInput, match="summac-factcc@1: a classification jury combines by majority only"):
        run_evaluation(reg, "cls-weighted", "summac-factcc", n_boot=N_BOOT)
    create_jury(reg, members=["longer", "shorter"], name="pt-jury")
    with pytest.raises(InvalidInput, match="jury 'pt-jury' cannot judge bagel-quality@1: .* not pointwise"):
        run_evaluation(reg, "pt-jury", "bagel-quality", n_boot=N_BOOT)
    assert not reg.store.list_runs(evaluator="pt-jury")


def test_analyze_jury_finds_the_best_subset_with_a_paired_test(reg):
    members = [_name(*j) for j in JUDGES]
    for heuristic in ("longer", "shorter", "random"):   # (run by an earlier test, unless run alone)
        if not reg.store.list_runs(dataset=NATURAL, evaluator=heuristic, status="succeeded"):
            run_evaluation(reg, heuristic, NATURAL, n_boot=N_BOOT)
    got = analyze_jury(reg, NATURAL, members=members, combine="weighted", max_size=3, n_boot=N_BOOT)
    assert got.n_subsets == 4 and got.n_examples == 100
    assert got.candidates[0].evaluator == "gpt-4/llmbar-vanilla"   # the most accurate alone
    assert got.best_single.accuracy == pytest.approx(
        leaderboard(reg, NATURAL).standings[[s.evaluator for s in leaderboard(reg, NATURAL).standings]
                                            .index("gpt-4/llmbar-vanilla")].value)
    assert got.best.accuracy == max(s.accuracy for s in got.top)
    assert got.test.difference == pytest.approx(got.best.accuracy - got.best_single.accuracy)
    assert 0 < got.test.p_value <= 1
    # the stored jury of the same members and settings has the same out-of-fold accuracy
    ev, _ = create_jury(reg, members=list(got.best.members), combine="weighted", name="best-weighted")
    assert run_evaluation(reg, ev.name, NATURAL, n_boot=N_BOOT).metric("accuracy").value == \
        pytest.approx(got.best.accuracy)
    # a budget leaves out the imported judges (unknown cost) and says so
    with pytest.raises(InvalidInput, match="within the budget; a jury needs at least 2"):
        analyze_jury(reg, NATURAL, members=members, budget=1.0)
    capped = analyze_jury(reg, NATURAL, members=["longer", "shorter", "random", "gpt-4/llmbar-vanilla"],
                          budget=0.5, combine="majority", n_boot=N_BOOT)
    assert set(capped.best.members) == {"longer", "shorter", "random"} and capped.best.price_per_1000 == 0.0
    assert [e.evaluator for e in capped.excluded] == ["gpt-4/llmbar-vanilla"]
    with pytest.raises(InvalidInput, match="has no succeeded run on llmbar-adversarial-manual@1"):
        analyze_jury(reg, MANUAL, members=["gpt-4/llmbar-vanilla", "longer"])
    assert np.isfinite(got.best.ci_low)
    stacked = analyze_jury(reg, NATURAL, members=members, combine="stacked", max_size=2, n_boot=N_BOOT)
    assert stacked.n_subsets == 3 and any("verdicts only" in note for note in stacked.notes)


def test_the_flows_skip_juries_with_a_log_line(reg, caplog):
    """The continuous flows run the due (evaluator, version) pairs; a jury is not one of them (it is run
    with `eval run` once its members have runs), and the planner says so."""
    import logging

    from registry.services.matrix import missing_pairs

    create_jury(reg, members=["longer", "shorter", "random"], name="heuristic-jury")
    with caplog.at_level(logging.INFO, logger="registry.services.matrix"):
        pairs = missing_pairs(reg, datasets=[MANUAL])
    assert pairs and not [p for p in pairs if reg.store.get_evaluator(p.evaluator).kind == "jury"]
    assert {"longer", "shorter"} <= {p.evaluator for p in pairs}
    assert "skipping jury evaluator(s)" in caplog.text and "heuristic-jury" in caplog.text
