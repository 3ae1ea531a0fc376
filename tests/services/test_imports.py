"""Imported predictions of real LLM judges, through the service, reproduce the published figures."""

from __future__ import annotations

import json
import re

import pytest

from registry.services import datasets as svc
from registry.services.imports import import_predictions

LLMBAR = "princeton-nlp__LLMBar/Dataset"
DATASETS = {  # registry name → folder under LLMBAR
    "llmbar-natural": "LLMBar/Natural", "llmbar-adversarial-neighbor": "LLMBar/Adversarial/Neighbor",
    "llmbar-adversarial-gptinst": "LLMBar/Adversarial/GPTInst", "llmbar-adversarial-gptout": "LLMBar/Adversarial/GPTOut",
    "llmbar-adversarial-manual": "LLMBar/Adversarial/Manual", "mtbench-human": "Processed/MT-Bench",
    "faireval": "Processed/FairEval", "llmeval2": "Processed/LLMEval^2",
}


def _percent(text: str) -> float:
    """'95 / 100 = 95.0%' or '95.5%' → 0.955 (at the printed precision)."""
    return float(re.search(r"([\d.]+)%\s*$", text).group(1)) / 100


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_every_llmbar_result_reproduces_statistics_json(registry, data_root):
    svc.register_all(registry, data_root, only=set(DATASETS))
    checked = 0
    for name, folder in DATASETS.items():
        for stats_path in sorted((data_root / LLMBAR / folder / "evaluators").glob("*/*/statistics.json")):
            judge, protocol = stats_path.parent.parent.name, stats_path.parent.name
            if judge not in ("GPT-4", "ChatGPT"):
                continue
            run = import_predictions(registry, "llmbar", stats_path.parent / "result.json", name,
                                     evaluator=f"{judge.lower()}/llmbar-{protocol.lower()}", n_boot=200)
            expected = json.loads(stats_path.read_text())
            got = {m.name: m for m in run.metrics if m.slice == "all"}
            for key in ("correct_False", "correct_True", "correct_average", "correct_both", "equal"):
                decimals = len(expected[key].rstrip("%").split(".")[-1]) + 2
                assert round(got[key].value, decimals) == pytest.approx(_percent(expected[key]), abs=1e-9), \
                    (name, judge, protocol, key)
            # LLMBar's κ fields, stored under names that say they are LLMBar's compatibility figures
            assert got["llmbar_kappa_agreement"].value == pytest.approx(expected["kappa_agreement"], abs=1e-9)
            assert got["llmbar_kappa_average"].value == pytest.approx(expected["kappa_average"], abs=1e-9)
            compat = got["llmbar_kappa_average"].extra
            assert compat["llmbar_kappa_False"] == pytest.approx(expected["kappa_False"], abs=1e-9)
            assert compat["llmbar_kappa_True"] == pytest.approx(expected["kappa_True"], abs=1e-9)
            assert "kappa_average" not in got and "kappa_agreement" not in got
            # the correct Cohen's κ is reported beside LLMBar's compatibility figure
            assert "cohen_kappa_average" in got and "cohen_kappa_agreement" in got
            assert run.n_examples == len(json.loads((stats_path.parent / "result.json").read_text()))
            checked += 1
    assert checked >= 100  # 8 datasets × 2 judges × ~9 protocols


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_pandalm_shipped_predictions(registry, data_root):
    svc.register_all(registry, data_root, only={"pandalm-test"})
    folder = data_root / "WeOpenML__PandaLM/data"
    gpt = import_predictions(registry, "pandalm", folder / "gpt-3.5-turbo-testset-v1.json", "pandalm-test",
                             evaluator="gpt-3.5-turbo/pandalm")
    panda = import_predictions(registry, "pandalm", folder / "pandalm-7b-testset-v1.json", "pandalm-test",
                               evaluator="pandalm-7b/pandalm")
    # 3-annotator majority (strict plurality, else tie); a tie verdict counts when the majority is tie:
    # PandaLM's published figure is the 3-way accuracy, the headline of tie-labelled sets
    assert gpt.metric("accuracy_3way").value == pytest.approx(697 / 999)
    assert panda.metric("accuracy_3way").value == pytest.approx(667 / 999)
    assert round(gpt.metric("accuracy_3way").value * 100, 1) == 69.8
    assert round(panda.metric("accuracy_3way").value * 100, 1) == 66.8
    three_way = gpt.metric("accuracy_3way")
    assert three_way.ci_low < three_way.value < three_way.ci_high
    # `accuracy` keeps its one meaning (ReIFE expected credit) here too, so it differs from the 3-way figure
    assert gpt.metric("accuracy").value != pytest.approx(three_way.value)
    assert gpt.metric("accuracy").extra["policy"] == "expected"
    from registry.services.scoring import headline_for

    assert headline_for(registry.store.get_version("pandalm-test")) == "accuracy_3way"
    assert gpt.n_examples == panda.n_examples == 999
    # AlpacaEval-style agreement against the annotators' mode, and the humans' own leave-one-out figure
    assert 0 < gpt.metric("human_agreement").value < 1 and 0 < gpt.metric("human_agreement_loo").value < 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_unieval_predictions_give_example_and_system_correlations(registry, data_root):
    pred = data_root / "maszhongming__UniEval/reproduce/unieval_predict"
    cases = {"topical-chat-engagingness": "dialogue/topical_chat_result.json",
             "sfres-naturalness": "data2text/sfres_result.json",
             "sfhot-informativeness": "data2text/sfhot_result.json",
             "qags-cnndm-consistency": "fact/qags_cnndm_result.json",
             "qags-xsum-consistency": "fact/qags_xsum_result.json"}
    svc.register_all(registry, data_root, only=set(cases))
    for name, rel in cases.items():
        run = import_predictions(registry, "unieval", pred / rel, name, evaluator="unieval", n_boot=200)
        m = {x.name: x for x in run.metrics if x.slice == "all"}
        assert run.n_examples == registry.store.get_version(name).row_count
        for k in ("pearson", "spearman", "kendall"):
            assert 0.1 < m[k].value < 0.9 and m[k].ci_low < m[k].value < m[k].ci_high, (name, k)
    tc = registry.store.latest_runs(evaluator="unieval")
    topical = next(r for r in tc if r.dataset.startswith("topical-chat"))
    assert topical.metric("system_pearson") is not None  # 6 systems in Topical-Chat


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_import_of_unrelated_file_is_refused(registry, data_root):
    svc.register_all(registry, data_root, only={"llmbar-natural"})
    other = data_root / LLMBAR / "Processed/MT-Bench/evaluators/GPT-4/Metrics_Reference/result.json"
    from registry.errors import InvalidInput

    with pytest.raises(InvalidInput, match="only 0 of 100 examples"):
        import_predictions(registry, "llmbar", other, "llmbar-natural", evaluator="gpt-4/llmbar-vanilla")
    assert registry.store.latest_runs() == []


def test_reife_results_are_matched_in_both_orders(sqlite_registry, data_root, tmp_path):
    """ReIFE's result format (recorded from its public repository: one JSON line per pair with
    ``result.winner``; the ``_swap`` file shows the outputs swapped) — real ReIFE result files
    are not part of the shared data, so the file is written here from LLMBar Natural."""
    reg = sqlite_registry
    svc.register_all(reg, data_root, only={"llmbar-natural"})
    rows = json.loads((data_root / LLMBAR / "LLMBar/Natural/dataset.json").read_text())
    main, swap = tmp_path / "llmbar_natural.m.base.pairwise_vanilla.jsonl", tmp_path / "llmbar_natural.m.base.pairwise_vanilla_swap.jsonl"
    with main.open("w") as f0, swap.open("w") as f1:
        for i, r in enumerate(rows):
            correct = r["label"]
            w0 = correct if i % 4 else 3 - correct                 # wrong on every 4th example
            f0.write(json.dumps({"instruction": r["input"], "output_1": r["output_1"], "output_2": r["output_2"],
                                 "winner": correct, "result": {"winner": w0, "tie": 0, "fail": False}}) + "\n")
            fail = i % 10 == 0
            f1.write(json.dumps({"instruction": r["input"], "output_1": r["output_2"], "output_2": r["output_1"],
                                 "winner": 3 - correct, "result": {"winner": 1 if fail else 3 - correct, "tie": 0,
                                                                   "fail": fail}}) + "\n")
    run = import_predictions(reg, "reife", main, "llmbar-natural", evaluator="m/base")
    assert run.n_judgments == 200
    acc0 = run.metric("accuracy_order0").value
    acc1 = run.metric("accuracy_order1").value
    assert acc0 == pytest.approx(0.75)
    assert acc1 == pytest.approx((90 + 10 * 0.5) / 100)  # 10 failures get the expected coin credit
