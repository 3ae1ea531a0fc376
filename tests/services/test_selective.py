"""Selective evaluation with a guarantee and PPI++ on real registered data (issue 15, items 5-6):
LLMBar Natural with the GPT-4 and ChatGPT verdicts of the LLMBar paper imported (both orders: the
agreement confidence), the MiniLM scorer's P(A) (slow), a classification and a pointwise set;
the guarantee over 200 seeded calibration/test splits, PPI++'s coverage over 500 seeded draws,
the facade, the CLI's JSON and its errors."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from registry.domain import ppi as P
from registry.domain import selective as S
from registry.errors import InvalidInput, NotFound
from registry.services import selective as svc

LLMBAR = "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/evaluators"
GPT4, CHATGPT = "gpt-4/llmbar-vanilla", "chatgpt/llmbar-vanilla"
NATURAL = "llmbar-natural"


@pytest.fixture(scope="module")
def reg(tmp_path_factory, data_root):
    """LLMBar Natural with two imported judges (and their CoT variants), FactCC (classification) and
    BAGEL (pointwise) with the random baseline, and an evaluator that never ran."""
    from registry.config import Settings
    from registry.services.app import init_registry
    from registry.services.datasets import register_all
    from registry.services.evaluation import run_evaluation
    from registry.services.evaluators import ensure_baselines
    from registry.services.imports import import_predictions

    home = tmp_path_factory.mktemp("selective")
    s = Settings.from_env(home=str(home), db_url=f"sqlite:///{home / 'registry.db'}", store=str(home / "store"),
                          dvc_remote=str(home / "remote"), data_root=str(data_root))
    r = init_registry(s)
    result = register_all(r, data_root, only={NATURAL, "summac-factcc", "bagel-quality"})
    assert not result.failed
    for judge in ("GPT-4", "ChatGPT"):
        for protocol in ("Vanilla", "CoT"):
            import_predictions(r, "llmbar", data_root / LLMBAR / judge / protocol / "result.json", NATURAL,
                               evaluator=f"{judge.lower()}/llmbar-{protocol.lower()}", n_boot=20)
    ensure_baselines(r, minilm=False)
    run_evaluation(r, "random", "summac-factcc", n_boot=20)
    run_evaluation(r, "random", "bagel-quality", n_boot=20)
    yield r
    r.close()


@pytest.fixture
def cli(reg, monkeypatch):
    from typer.testing import CliRunner

    from registry.cli.main import app
    from tests.conftest import point_env_at

    point_env_at(monkeypatch, reg.settings)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


# ----------------------------------------------------------------------------- the guarantee
@pytest.mark.parametrize("evaluator,target,delta", [(GPT4, 0.9, 0.1), ("gpt-4/llmbar-cot", 0.85, 0.1),
                                                    (CHATGPT, 0.8, 0.2)])
def test_guarantee_holds_over_200_random_splits_of_real_data(reg, evaluator, target, delta):
    run, _ = svc.judged(reg, evaluator, NATURAL)
    assert set(run.votes) == {"orders"}             # two orders, no P(A), one sample
    level = run.level("auto")
    assert len(level.conf) == 100 and set(np.unique(level.conf)) <= {0.5, 1.0}
    sim = S.simulate([level], target=target, delta=delta, splits=200, seed=0)
    assert sim.splits == 200
    assert sim.met >= 1 - delta, sim
    assert sim.met_full >= 1 - delta, sim          # on the whole set, the population of the splits
    assert sim.with_threshold > 0 and sim.mean_coverage > 0      # the guarantee is not met by keeping nothing


def test_cascade_guarantee_over_200_random_splits(reg):
    _, levels, rows = svc.cascade_levels(reg, [CHATGPT, GPT4], NATURAL)
    assert len(rows) == 100 and [lv.name for lv in levels] == [CHATGPT, GPT4]
    sim = S.simulate(levels, target=0.85, delta=0.1, splits=200, seed=1)
    assert sim.met >= 0.9 and sim.met_full >= 0.9 and sim.with_threshold > 0.5


# ----------------------------------------------------------------------------- PPI++ coverage
@pytest.mark.parametrize("evaluator,n", [(GPT4, 30), (GPT4, 50), ("gpt-4/llmbar-cot", 40)])
def test_ppi_covers_the_full_label_value_over_500_draws(reg, evaluator, n):
    run, metric, positive, y, f = svc.ppi_values(reg, evaluator, NATURAL)
    assert metric == "win_rate_a" and positive is None and len(y) == 100
    sim = P.simulate(y, f, n=n, draws=500, seed=0)
    assert sim.truth == pytest.approx(0.42)             # 42 of LLMBar Natural's 100 labels are A
    assert sim.ppi_coverage >= 0.93, sim
    assert sim.ppi_mean_width < sim.classical_mean_width, sim


# ----------------------------------------------------------------------------- facade
def test_analyze_selective_one_judge(reg):
    from registry.api import Registry

    r = Registry(reg).analyze_selective(GPT4, NATURAL, target=0.9, delta=0.1, seed=0, splits=50)
    assert r.dataset == "llmbar-natural@1" and r.evaluators == (GPT4,)
    assert (r.n, r.n_calibration, r.n_test) == (100, 50, 50)
    (level,) = r.levels
    assert level.confidence == "orders" and level.threshold == 1.0
    assert level.calibration["p_value"] <= 0.1 and level.calibration["delta"] == 0.1
    assert r.coverage == pytest.approx(level.test["kept"] / 50)
    assert r.coverage + r.human_fraction == pytest.approx(1.0)
    assert r.met == (r.accuracy >= 0.9)
    assert r.simulation["splits"] == 50
    d = r.to_dict()
    json.dumps(d)
    assert {"levels", "human", "coverage", "human_fraction", "accuracy", "cost_per_1000", "simulation"} <= set(d)
    assert d["cost_per_1000"] == {"judgments": 2000.0, "seconds": 0.0, "usd": None}  # imported: no time, no price


def test_analyze_selective_cascade_and_seed(reg):
    from registry.api import Registry

    api = Registry(reg)
    r = api.analyze_selective(None, NATURAL, target=0.85, delta=0.1, cascade=[CHATGPT, GPT4, "human"])
    assert [lv.evaluator for lv in r.levels] == [CHATGPT, GPT4]
    assert r.levels[0].calibration["delta"] == pytest.approx(0.05)   # δ/2 per level
    assert r.levels[1].test["reached"] == 50 - r.levels[0].test["kept"]
    assert r.human["reached"] == r.levels[1].test["reached"] - r.levels[1].test["kept"]
    again = api.analyze_selective(CHATGPT, NATURAL, target=0.85, delta=0.1, cascade=[GPT4])
    assert again.to_dict() == r.to_dict() | {"evaluators": again.to_dict()["evaluators"]}
    other = api.analyze_selective(CHATGPT, NATURAL, target=0.85, delta=0.1, cascade=[GPT4], seed=5)
    assert other.seed == 5


def test_analyze_ppi(reg):
    from registry.api import Registry

    r = Registry(reg).analyze_ppi(GPT4, NATURAL, human_labels=30, seed=2, draws=200)
    assert r.metric == "win_rate_a" and r.n_total == 100 and r.human_labels == 30
    assert r.full_label_value == pytest.approx(0.42)
    assert r.ppi["ci_low"] <= r.ppi["estimate"] <= r.ppi["ci_high"] and 0 <= r.ppi["lambda"] <= 1
    assert r.ppi["width"] < r.classical["width"]
    assert r.simulation["draws"] == 200 and r.simulation["n"] == 30
    json.dumps(r.to_dict())


def test_ppi_positive_rate_on_a_classification_set(reg):
    run, metric, positive, y, f = svc.ppi_values(reg, "random", "summac-factcc")
    labels = [run.classes[c] for c in run.labels]
    counts = {c: labels.count(c) for c in set(labels)}
    assert metric == "positive_rate" and positive == min(counts, key=lambda c: (counts[c], c))
    assert y.mean() == pytest.approx(counts[positive] / len(labels))
    other = next(c for c in counts if c != positive)
    _, _, chosen, y2, _ = svc.ppi_values(reg, "random", "summac-factcc", "positive_rate", other)
    assert chosen == other and y2.mean() == pytest.approx(1 - y.mean())


def test_ppi_mean_score_on_a_pointwise_set(reg):
    run, metric, _, y, f = svc.ppi_values(reg, "random", "bagel-quality")
    assert metric == "mean_score" and len(y) == len(f) == len(run.rows) and np.isfinite(f).all()


# ----------------------------------------------------------------------------- errors
def test_errors_name_what_is_wrong(reg):
    from registry.api import Registry

    api = Registry(reg)
    with pytest.raises(NotFound, match="no evaluator named 'gpt-5'"):
        api.analyze_selective("gpt-5", NATURAL, target=0.9, delta=0.1)
    with pytest.raises(NotFound, match="no-such-set"):
        api.analyze_selective(GPT4, "no-such-set", target=0.9, delta=0.1)
    with pytest.raises(NotFound, match="autorater eval run --evaluator longer --dataset llmbar-natural@1"):
        api.analyze_selective("longer", NATURAL, target=0.9, delta=0.1)
    with pytest.raises(InvalidInput, match="no 'prob_a' confidence; available: orders"):
        api.analyze_selective(GPT4, NATURAL, target=0.9, delta=0.1, confidence="prob_a")
    with pytest.raises(InvalidInput, match="unknown confidence 'margin'"):
        api.analyze_selective(GPT4, NATURAL, target=0.9, delta=0.1, confidence="margin")
    with pytest.raises(InvalidInput, match="too few examples: 100 judged examples give 50 calibration"):
        api.analyze_selective(GPT4, NATURAL, target=0.99, delta=0.01)
    with pytest.raises(InvalidInput, match="pointwise dataset"):
        api.analyze_selective("random", "bagel-quality", target=0.9, delta=0.1)
    with pytest.raises(InvalidInput, match="target must lie strictly between 0 and 1"):
        api.analyze_selective(GPT4, NATURAL, target=1.0, delta=0.1)
    with pytest.raises(InvalidInput, match="'human' can only be the last level"):
        api.analyze_selective(None, NATURAL, target=0.9, delta=0.1, cascade=["human", GPT4])
    with pytest.raises(InvalidInput, match="between 2 and the 100 examples"):
        api.analyze_ppi(GPT4, NATURAL, human_labels=101)
    with pytest.raises(InvalidInput, match="unknown metric 'accuracy'"):
        api.analyze_ppi(GPT4, NATURAL, human_labels=20, metric="accuracy")
    with pytest.raises(InvalidInput, match="applies to classification datasets"):
        api.analyze_ppi(GPT4, NATURAL, human_labels=20, metric="positive_rate")
    with pytest.raises(InvalidInput, match="unknown positive class 'maybe'"):
        api.analyze_ppi("random", "summac-factcc", human_labels=20, positive="maybe")


def test_a_heuristic_without_a_confidence_is_refused(reg):
    """A classification run judges one order, one sample and gives no P(A): no confidence at all."""
    run, _ = svc.judged(reg, "random", "summac-factcc")
    assert run.votes == {} and run.order_codes.shape[0] == 1
    with pytest.raises(InvalidInput, match="has no confidence"):
        run.level("auto")


def test_sample_votes_are_gathered_per_order_and_sample():
    """Several samples per order: every (order, sample) verdict is a vote (hand-built predictions)."""
    from registry.services.scoring import PredictionArrays

    table = pa.table({"example_id": ["a", "b"]})
    preds = pa.table({"example_id": ["a"] * 6 + ["b"] * 3, "order": [0, 0, 0, 1, 1, 1, 0, 0, 0],
                      "sample": [0, 1, 2, 0, 1, 2, 0, 1, 2], "verdict": ["A", "A", "B", "A", "A", "A", "B", None, "B"],
                      "score": [None] * 9, "prob_a": [None] * 9, "prompt_tokens": [0] * 9,
                      "completion_tokens": [0] * 9, "seconds": [0.0] * 9})
    arrays = PredictionArrays.from_predictions(table, preds)
    vocab = np.array([{"A": 0, "B": 1}.get(v, -1) for v in arrays.vocab] + [-1])
    codes, present = svc._vote_matrix(arrays, preds, vocab, 2)
    assert codes.shape == (6, 2) and present[:, 0].all() and present[:, 1].sum() == 3
    verdict, conf = S.vote_confidence(codes, present)
    assert verdict.tolist() == [0, 1] and conf.tolist() == pytest.approx([5 / 6, 2 / 3])


# ----------------------------------------------------------------------------- CLI
def test_cli_json_and_tables(cli):
    res = cli("analyze", "selective", "--evaluator", GPT4, "--dataset", NATURAL, "--target", "0.9", "--delta", "0.1",
              "--json")
    assert res.exit_code == 0, res.stdout
    d = json.loads(res.stdout)
    assert d["levels"][0]["evaluator"] == GPT4 and d["levels"][0]["confidence"] == "orders"
    assert d["n_test"] == 50 and isinstance(d["met"], bool)
    res = cli("analyze", "selective", "--cascade", f"{CHATGPT},{GPT4},human", "--dataset", NATURAL, "--target", "0.85",
              "--splits", "20")
    assert res.exit_code == 0 and "human" in res.stdout and "over 20 seeded splits" in res.stdout
    res = cli("analyze", "ppi", "--evaluator", GPT4, "--dataset", NATURAL, "--human-labels", "30", "--draws", "50",
              "--json")
    assert res.exit_code == 0
    d = json.loads(res.stdout)
    assert d["metric"] == "win_rate_a" and d["simulation"]["draws"] == 50 and "lambda" in d["ppi"]
    res = cli("analyze", "ppi", "--evaluator", GPT4, "--dataset", NATURAL, "--human-labels", "30")
    assert res.exit_code == 0 and "PPI++" in res.stdout and "human only" in res.stdout


def test_cli_errors_are_one_line(cli):
    for args, code, text in (
        (("selective", "--evaluator", "gpt-5", "--dataset", NATURAL), 3, "no evaluator named 'gpt-5'"),
        (("selective", "--evaluator", GPT4, "--dataset", NATURAL, "--confidence", "prob_a"), 2, "available: orders"),
        (("selective", "--evaluator", GPT4, "--dataset", NATURAL, "--target", "0.99", "--delta", "0.01"), 2,
         "too few examples"),
        (("ppi", "--evaluator", GPT4, "--dataset", NATURAL, "--human-labels", "500"), 2, "between 2 and the 100"),
        (("ppi", "--evaluator", "longer", "--dataset", NATURAL, "--human-labels", "10"), 3, "autorater eval run"),
        (("selective", "--dataset", NATURAL), 2, "name an evaluator (--evaluator) or a cascade"),
        (("selective", "--cascade", f"{GPT4},{GPT4}", "--dataset", NATURAL), 2, "appears twice"),
    ):
        res = cli("analyze", *args)
        assert res.exit_code == code, (args, res.stdout, res.stderr)
        assert text in res.stderr and "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) <= 3       # one message (rich may wrap it)


@pytest.mark.slow
def test_minilm_prob_a_confidence_and_a_cheap_first_cascade(reg):
    """The untrained MiniLM scorer's P(A) (one order) as the confidence, first level of a cascade."""
    from registry.api import Registry
    from registry.services.evaluation import run_evaluation
    from registry.services.evaluators import ensure_baselines

    ensure_baselines(reg)
    run_evaluation(reg, "minilm-untrained", NATURAL, n_boot=20)
    run, _ = svc.judged(reg, "minilm-untrained", NATURAL)
    assert "prob_a" in run.votes and run.confidence_kind("auto") == "prob_a"
    verdict, conf = run.votes["prob_a"]
    assert ((conf >= 0.5) & (conf <= 1)).all() and len(np.unique(conf)) > 50
    sim = S.simulate([run.level("prob_a")], target=0.8, delta=0.1, splits=200, seed=0)
    assert sim.met >= 0.9
    r = Registry(reg).analyze_selective("minilm-untrained", NATURAL, target=0.85, delta=0.1, cascade=[CHATGPT, GPT4])
    assert r.levels[0].confidence == "prob_a" and r.levels[0].test["reached"] == 50
    assert r.levels[0].test["cost_per_1000"]["seconds"] > 0 and r.cost_per_1000["seconds"] > 0
