"""Cascades (registry.services.cascade) on real data: LLMBar Natural with the imported ChatGPT and GPT-4
judges and the heuristic baselines. A cascade's run is a normal run (predictions per order, metrics,
``best`` with kind ``cascade``), idempotent, routed out-of-fold (each stored verdict is the deciding
member's, checked against a loop over the members' tables), costed by the levels reached; and the errors."""

from __future__ import annotations

import json

import pytest

from registry.errors import InvalidInput, NotFound
from registry.services import datasets as svc
from registry.services.cascade import create_cascade
from registry.services.evaluation import load_predictions, run_evaluation
from registry.services.evaluators import ensure_baselines
from registry.services.imports import import_predictions
from registry.services.queries import EvaluatorFilter, best_evaluator

NATURAL = "llmbar-natural"
N_BOOT = 100
CHATGPT, GPT4 = "chatgpt/llmbar-vanilla", "gpt-4/llmbar-vanilla"


@pytest.fixture(scope="module")
def reg(tmp_path_factory, data_root):
    """LLMBar Natural registered, the ChatGPT and GPT-4 Vanilla judges imported, the baselines created."""
    from registry.config import Settings
    from registry.services.app import init_registry

    home = tmp_path_factory.mktemp("cascade-home")
    s = Settings.from_env(home=str(home), db_url=f"sqlite:///{home / 'registry.db'}", store=str(home / "store"),
                          dvc_remote=str(home / "remote"), data_root=str(data_root))
    r = init_registry(s)
    assert not svc.register_all(r, data_root, only={NATURAL}).failed
    folder = data_root / "princeton-nlp__LLMBar" / "Dataset" / "LLMBar" / "Natural" / "evaluators"
    for judge, name in (("ChatGPT", CHATGPT), ("GPT-4", GPT4)):
        import_predictions(r, "llmbar", folder / judge / "Vanilla" / "result.json", NATURAL, evaluator=name,
                           n_boot=N_BOOT)
    ensure_baselines(r, minilm=False)
    yield r
    r.close()


def _codes(reg, run) -> dict[tuple[str, int], str | None]:
    p = load_predictions(reg, run).to_pydict()
    return {(e, o): v for e, o, v in zip(p["example_id"], p["order"], p["verdict"])}


def test_cascade_run_is_a_ranked_run(reg):
    ev, created = create_cascade(reg, members=[CHATGPT, GPT4], target=0.9, delta=0.1, name="gpt-cascade")
    assert created and ev.kind == "cascade" and ev.protocol == "jury@1"
    assert [m["name"] for m in ev.config["members"]] == [CHATGPT, GPT4]
    assert {k: ev.config[k] for k in ("target", "delta", "confidence", "folds", "seed")} == \
        {"target": 0.9, "delta": 0.1, "confidence": "auto", "folds": 5, "seed": 0}
    assert create_cascade(reg, members=[CHATGPT, GPT4], name="gpt-cascade") == (ev, False)      # idempotent
    assert create_cascade(reg, members=[CHATGPT, GPT4], target=0.8, name="gpt-cascade-80")[0].sha256 != ev.sha256
    run = run_evaluation(reg, "gpt-cascade", NATURAL, n_boot=N_BOOT)
    assert run.status == "succeeded"
    prov = run.provenance
    member_runs = {m: reg.store.list_runs(dataset=NATURAL, evaluator=m, status="succeeded")[0] for m in (CHATGPT, GPT4)}
    assert prov["member_runs"] == {m: r.id for m, r in member_runs.items()}
    assert prov["confidences"] == {CHATGPT: "orders", GPT4: "orders"}          # both orders, no prob_a
    assert set(prov["thresholds"]) == {str(f) for f in range(5)}
    assert all(set(t) == {CHATGPT} for t in prov["thresholds"].values())       # the last level has none
    assert prov["reached"][CHATGPT] == 1.0 and 0.0 < prov["decided"][CHATGPT] < 1.0
    assert prov["decided"][CHATGPT] + prov["decided"][GPT4] == pytest.approx(1.0)
    # each stored verdict (per order) is the deciding member's, and the first level decides exactly
    # where ChatGPT's orders agree (confidence 1) at its fold's threshold (a loop)
    member = {m: _codes(reg, r) for m, r in member_runs.items()}
    preds = load_predictions(reg, run).to_pydict()
    assert sorted(set(preds["order"])) == [0, 1] and len(preds["example_id"]) == 200
    decided_first = 0
    for e, o, v, raw in zip(preds["example_id"], preds["order"], preds["verdict"], preds["raw"]):
        info = json.loads(raw)
        thr = prov["thresholds"][str(info["fold"])][CHATGPT]
        agree = member[CHATGPT][(e, 0)] == member[CHATGPT][(e, 1)] and member[CHATGPT][(e, 0)] is not None
        first = thr is not None and (1.0 if agree else 0.5) >= thr
        assert info["level"] == (CHATGPT if first else GPT4)
        assert v == member[info["level"]][(e, o)]
        decided_first += first and o == 0
    assert decided_first / 100 == pytest.approx(prov["decided"][CHATGPT])
    acc = run.metric("accuracy")
    assert acc is not None and acc.ci_low < acc.value < acc.ci_high
    # ranked by best with its kind, beside the single judges
    kinds = {s.evaluator: s.kind for s in best_evaluator(reg, dataset=NATURAL).standings}
    assert kinds["gpt-cascade"] == "cascade" and kinds[GPT4] == "external"
    assert {s.evaluator: s.kind for s in best_evaluator(reg, task_type="pairwise").standings}["gpt-cascade"] == "cascade"
    assert run_evaluation(reg, "gpt-cascade", NATURAL, n_boot=N_BOOT).id == run.id           # idempotent run
    assert run.metric("price_per_1000") is None                                # imported judges: no price


def test_cost_is_paid_by_the_levels_reached_and_filters_best(reg):
    """Two free local members (length heuristic → always-first): price $0 known, kept under a $0 cap;
    the GPT cascade (unknown price) is left out."""
    for e in ("longer", "always-first"):
        run_evaluation(reg, e, NATURAL, n_boot=N_BOOT)
    create_cascade(reg, members=["longer", "always-first"], target=0.6, delta=0.2, folds=4, name="free-cascade")
    run = run_evaluation(reg, "free-cascade", NATURAL, n_boot=N_BOOT)
    price = run.metric("price_per_1000")
    assert price is not None and price.value == 0.0
    capped = best_evaluator(reg, dataset=NATURAL, only=EvaluatorFilter(max_cost_per_1k=0.0))
    names = [s.evaluator for s in capped.standings]
    assert "free-cascade" in names and "gpt-cascade" not in names
    assert {s.evaluator: s.kind for s in capped.standings}["free-cascade"] == "cascade"
    # seconds per example: the first level's for every example, the second's only for the escalated
    members = {m: load_predictions(reg, reg.store.list_runs(dataset=NATURAL, evaluator=m, status="succeeded")[0])
               .to_pydict() for m in ("longer", "always-first")}
    secs = {m: {} for m in members}
    for m, p in members.items():
        for e, s in zip(p["example_id"], p["seconds"]):
            secs[m][e] = secs[m].get(e, 0.0) + (s or 0.0)
    preds = load_predictions(reg, run).to_pydict()
    for e, o, s, raw in zip(preds["example_id"], preds["order"], preds["seconds"], preds["raw"]):
        if o == preds["order"][0]:
            want = secs["longer"][e] + (secs["always-first"][e] if json.loads(raw)["level"] == "always-first" else 0)
            assert s == pytest.approx(want)


def test_errors_leave_the_registry_unchanged(reg):
    before = len(reg.store.list_evaluators())
    with pytest.raises(NotFound, match="no-such-judge"):
        create_cascade(reg, members=[CHATGPT, "no-such-judge"])
    with pytest.raises(InvalidInput, match="at least two member"):
        create_cascade(reg, members=[CHATGPT])
    with pytest.raises(InvalidInput, match="target must lie strictly between 0 and 1"):
        create_cascade(reg, members=[CHATGPT, GPT4], target=1.0)
    with pytest.raises(InvalidInput, match="unknown confidence 'margin'"):
        create_cascade(reg, members=[CHATGPT, GPT4], confidence="margin")
    assert len(reg.store.list_evaluators()) == before
    # a confidence a member lacks: the error names the member and the kinds it has
    create_cascade(reg, members=[CHATGPT, GPT4], confidence="prob_a", name="prob-cascade")
    with pytest.raises(InvalidInput, match=r"'chatgpt/llmbar-vanilla'.*no 'prob_a' confidence; available: orders"):
        run_evaluation(reg, "prob-cascade", NATURAL, n_boot=N_BOOT)
    assert reg.store.list_runs(dataset=NATURAL, evaluator="prob-cascade") == []
