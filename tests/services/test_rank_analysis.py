"""ReIFE analyses on a real registry: LLMBar Natural and Adversarial GPTOut with the GPT-4 and ChatGPT
verdicts shipped with LLMBar imported under every protocol (``eval import-tree``); the Python API,
the command line (tables and ``--json``) and the errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from registry.domain.entities import Evaluator
from registry.errors import InvalidInput, NotFound
from registry.services.rank_analysis import llm_and_protocol
from tests.conftest import point_env_at
from tests.services.conftest import GPTOUT, NATURAL

SETS = {"llmbar-natural": NATURAL, "llmbar-gptout": GPTOUT}


@pytest.fixture(scope="module")
def judges(tmp_path_factory, data_root):
    """The two sets and every imported LLMBar judge on them (27 evaluators: GPT-4 15 protocols, ChatGPT 12)."""
    from registry import api
    from registry.config import Settings

    base = tmp_path_factory.mktemp("reife")
    settings = Settings.from_env(home=str(base / "home"), db_url=f"sqlite:///{base / 'home' / 'registry.db'}",
                                 store=str(base / "home" / "store"), dvc_remote=str(base / "remote"),
                                 data_root=str(data_root))
    reg = api.init(settings=settings)
    files = []
    for name, rel in SETS.items():
        reg.register_dataset(name, source="llmbar", path=data_root / rel)
        files += sorted((data_root / rel).parent.glob("evaluators/*/*/result.json"))
    items = reg.import_tree(files, n_boot=50)
    assert {i.status for i in items} == {"imported"} and len(items) == 54
    yield reg
    reg.close()


def _stored(reg, dataset: str, metric: str = "accuracy") -> dict[str, float]:
    """Each evaluator's stored ``metric`` on ``dataset`` (its latest run)."""
    return {r.evaluator: r.metric(metric).value for r in reg._ctx.store.latest_runs(datasets=[dataset])}


def test_import_tree_records_the_judge_and_its_protocol(judges):
    ev = judges.evaluator("gpt-4/llmbar-swap_cot")
    assert (ev.config["llm"], ev.config["protocol"]) == ("gpt-4", "llmbar-swap_cot")
    assert llm_and_protocol(ev) == ("gpt-4", "llmbar-swap_cot")
    # registries imported before the config held them: the name says it
    old = Evaluator(name="chatgpt/llmbar-vanilla", kind="external", checkpoint="chatgpt@1", protocol="external@1",
                    sha256="0" * 64, config={"format": "llmbar", "source": "chatgpt/llmbar-vanilla"})
    assert llm_and_protocol(old) == ("chatgpt", "llmbar-vanilla")
    matrix = Evaluator(name="tiny-s@1/pairwise-cot[max_tokens=3]", kind="llm-judge", checkpoint="tiny-s@1",
                       protocol="pairwise-cot@1", sha256="1" * 64, config={"max_tokens": 3})
    assert llm_and_protocol(matrix) == ("tiny-s@1", "pairwise-cot")


def test_ranks_across_datasets_equal_scipy_on_the_stored_accuracies(judges):
    r = judges.analyze_ranks(n_boot=200)
    assert r.metric == "accuracy" and r.datasets == ("llmbar-gptout@1", "llmbar-natural@1")
    (pair,) = r.view("datasets").pairs
    assert pair.n_items == 27
    a, b = _stored(judges, "llmbar-gptout@1"), _stored(judges, "llmbar-natural@1")
    x, y = [a[e] for e in pair.items], [b[e] for e in pair.items]
    assert pair.kendall == pytest.approx(stats.kendalltau(x, y).statistic)
    assert pair.spearman == pytest.approx(stats.spearmanr(x, y).statistic)
    assert pair.kendall_low <= pair.kendall <= pair.kendall_high and pair.resamples == 200
    assert pair.kendall > 0.3                        # strong judges stay strong, weak ones weak
    # the grid: 2 LLMs × the 12 protocols both have; GPT-4's three Rating_* variants are left out
    assert r.checkpoints == ("chatgpt", "gpt-4") and len(r.protocols) == 12 and "llmbar-vanilla" in r.protocols
    assert {s.name for s in r.left_out if s.kind == "protocol"} == {
        "llmbar-rating_metrics", "llmbar-rating_metrics_reference", "llmbar-rating_reference"}
    by_protocol = r.view("protocols")
    assert len(by_protocol.pairs) == 66 and "±1" in by_protocol.note
    assert all(c.kendall == 1.0 for c in by_protocol.pairs)    # GPT-4 beats ChatGPT under every protocol
    (llms,) = r.view("checkpoints").pairs
    assert (llms.a, llms.b, llms.n_items) == ("chatgpt", "gpt-4", 12)
    # the grid's accuracies: each LLM × protocol macro-averaged over the two sets
    want = [np.mean([a[f"{c}/{p}"], b[f"{c}/{p}"]]) for c in ("chatgpt", "gpt-4") for p in llms.items]
    got = by_protocol.extra["scores"]
    assert [got[c][p] for c in ("chatgpt", "gpt-4") for p in llms.items] == pytest.approx(want)
    again = judges.analyze_ranks(n_boot=200)
    assert again.to_dict() == r.to_dict()            # seeded: the same answer


def test_protocols_against_the_stored_runs(judges):
    a = judges.analyze_protocols(n_boot=300)
    rep = a.report
    assert rep.base == "llmbar-vanilla" and rep.checkpoints == ("chatgpt", "gpt-4") and len(rep.protocols) == 12
    assert a.datasets == ("llmbar-gptout@1", "llmbar-natural@1")
    nat, out = _stored(judges, "llmbar-natural@1"), _stored(judges, "llmbar-gptout@1")
    for c in rep.checkpoints:
        for p in rep.protocols:
            assert rep.cell(c, p).value == pytest.approx((nat[f"{c}/{p}"] + out[f"{c}/{p}"]) / 2)
        t = rep.cell(c, "llmbar-cot").versus_base
        assert t.difference == pytest.approx(rep.cell(c, "llmbar-cot").value - rep.cell(c, "llmbar-vanilla").value)
        assert t.ci_low <= t.difference <= t.ci_high and 0 < t.p_value <= 1
    assert rep.checkpoint_means[1].value > rep.checkpoint_means[0].value + 0.2    # GPT-4 ≫ ChatGPT
    for m, p in zip(rep.protocol_means, rep.protocols, strict=True):
        assert m.value == pytest.approx(np.mean([rep.cell(c, p).value for c in rep.checkpoints]))
        assert (m.versus_base is None) == (p == "llmbar-vanilla")
    for b in rep.best:
        values = [rep.cell(b.checkpoint, p).value for p in rep.protocols]
        assert b.value == pytest.approx(max(values)) and 0 < b.share <= 1
    assert rep.same_best == bool(set(rep.best[0].protocols) & set(rep.best[1].protocols))
    d = a.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["base"] == "llmbar-vanilla" and len(d["cells"]) == 24
    assert d["cells"][0]["evaluator"] == f"chatgpt/{d['cells'][0]['protocol']}"
    assert {"best", "same_best", "same_best_share", "protocol_means", "checkpoint_means", "left_out"} <= set(d)
    # another base, fewer protocols, one LLM's set of evaluators by glob
    b = judges.analyze_protocols(base="llmbar-cot", protocols="llmbar-cot,llmbar-reference", n_boot=50)
    assert b.report.protocols == ("llmbar-cot", "llmbar-reference") and b.report.base == "llmbar-cot"
    g = judges.analyze_protocols(evaluators="gpt-4/*", n_boot=50)
    assert g.report.checkpoints == ("gpt-4",) and len(g.report.protocols) == 15


BAD_CALLS = [
    (NotFound, "no evaluator named 'gpt-5/llmbar-vanilla'", "analyze_ranks", {"evaluators": "gpt-5/llmbar-vanilla"}),
    (InvalidInput, "no evaluator matches 'llama", "analyze_ranks", {"evaluators": "llama*"}),
    (NotFound, "nope", "analyze_ranks", {"datasets": "llmbar-natural,nope"}),
    (InvalidInput, "nothing to correlate", "analyze_ranks", {"datasets": "llmbar-natural", "evaluators": "gpt-4/*"}),
    (NotFound, "base protocol .* 'llmbar-magic'", "analyze_protocols", {"base": "llmbar-magic"}),
    (NotFound, "checkpoint .* 'claude'", "analyze_protocols", {"checkpoints": "claude"}),
    (InvalidInput, "not a mean of per-example values", "analyze_protocols",
     {"metric": "cohen_kappa_agreement", "datasets": "llmbar-natural"}),
    (InvalidInput, "coverage cannot be resampled", "analyze_ranks", {"metric": "coverage"}),
    (InvalidInput, "resamples", "analyze_ranks", {"n_boot": 1}),
    (InvalidInput, "no dataset has runs of a checkpoint under two of the selected protocols", "analyze_protocols",
     {"evaluators": "chatgpt/*,gpt-4/llmbar-rating_reference", "base": "llmbar-vanilla",
      "protocols": "llmbar-rating_reference"}),
]


def test_errors_name_what_is_wrong_and_change_nothing(judges):
    before = judges._ctx.store.counts()
    for error, match, method, kwargs in BAD_CALLS:
        with pytest.raises(error, match=match):
            getattr(judges, method)(**kwargs)
    assert judges._ctx.store.counts() == before


def test_grid_equals_llmbar_published_statistics(judges, data_root):
    """LLMBar's own ``statistics.json`` (correct_average, a parse failure wrong): every cell of the grid
    by that metric is the mean of the two sets' published figures."""
    a = judges.analyze_protocols(metric="correct_average", n_boot=20)
    names = {"gpt-4": "GPT-4", "chatgpt": "ChatGPT"}
    for llm in a.report.checkpoints:
        for protocol in a.report.protocols:
            folder = protocol.removeprefix("llmbar-")
            published = []
            for rel in SETS.values():
                judge = next(p for p in ((data_root / rel).parent / "evaluators" / names[llm]).iterdir()
                             if p.name.lower() == folder)
                text = json.loads((judge / "statistics.json").read_text())["correct_average"]
                published.append(float(text.rstrip("%")) / 100)
            assert a.report.cell(llm, protocol).value == pytest.approx(np.mean(published), abs=1e-9), (llm, protocol)


def test_other_per_example_metrics(judges):
    r = judges.analyze_protocols(metric="correct_both", n_boot=50)
    nat, out = (_stored(judges, d, "correct_both") for d in ("llmbar-natural@1", "llmbar-gptout@1"))
    assert r.metric == "correct_both"
    assert r.report.cell("gpt-4", "llmbar-swap").value == pytest.approx(
        (nat["gpt-4/llmbar-swap"] + out["gpt-4/llmbar-swap"]) / 2)


def test_an_evaluator_imported_before_the_config_held_the_judge_is_reused(sqlite_registry, data_root):
    from registry.services.datasets import register_dataset_version
    from registry.services.imports import import_predictions, import_tree

    reg = sqlite_registry
    for name, rel in SETS.items():
        register_dataset_version(reg, name=name, source="llmbar", path=data_root / rel)
    vanilla = "evaluators/GPT-4/Vanilla/result.json"
    import_predictions(reg, "llmbar", (data_root / NATURAL).parent / vanilla, "llmbar-natural",
                       evaluator="gpt-4/llmbar-vanilla", n_boot=20)
    old = reg.store.get_evaluator("gpt-4/llmbar-vanilla")
    assert "llm" not in old.config
    (item,) = import_tree(reg, [(data_root / GPTOUT).parent / vanilla], n_boot=20)
    assert item.status == "imported" and item.evaluator == "gpt-4/llmbar-vanilla"
    assert reg.store.get_evaluator("gpt-4/llmbar-vanilla").sha256 == old.sha256


# ----------------------------------------------------------------------------- command line
@pytest.fixture
def cli(judges, monkeypatch):
    from typer.testing import CliRunner

    from registry.cli import common
    from registry.cli.main import app

    point_env_at(monkeypatch, judges.settings)
    monkeypatch.setattr(common.console, "width", 160)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_cli_ranks_and_protocols(cli, judges):
    out = cli("analyze", "ranks", "--n-boot", "100")
    assert out.exit_code == 0, out.output
    text = " ".join(out.stdout.split())
    assert "evaluators ranked on two datasets" in text and "llmbar-gptout@1" in text
    assert "66 pairs" in text and "protocols ranked for two base LLMs" in text
    assert "left out protocol llmbar-rating_reference: no run of chatgpt" in text
    js = json.loads(cli("analyze", "ranks", "--n-boot", "100", "--json").stdout)
    assert set(js["views"]) == {"datasets", "protocols", "checkpoints"}
    pair = js["views"]["datasets"]["pairs"][0]
    assert pair["n_items"] == 27 and len(pair["kendall_ci"]) == 2 and pair["kendall"] == pytest.approx(
        judges.analyze_ranks(n_boot=100).view("datasets").pairs[0].kendall)

    out = cli("analyze", "protocols", "--n-boot", "100", "--protocols", "llmbar-metrics_reference,llmbar-cot")
    assert out.exit_code == 0, out.output
    text = " ".join(out.stdout.split())
    assert "minus llmbar-vanilla" in text and "llmbar-metrics_reference" in text
    assert "is the best protocol the same for every LLM?" in text
    js = json.loads(cli("analyze", "protocols", "--base", "llmbar-cot", "--n-boot", "100", "--json").stdout)
    assert js["base"] == "llmbar-cot" and js["checkpoints"] == ["chatgpt", "gpt-4"]


def test_cli_errors_are_one_line(cli):
    out = cli("analyze", "protocols", "--base", "llmbar-magic")
    assert out.exit_code != 0 and "llmbar-magic" in out.output and "Traceback" not in out.output
    out = cli("analyze", "ranks", "--evaluators", "llama*", "--json")
    assert out.exit_code != 0 and "no evaluator matches" in out.output and len(out.output.strip().splitlines()) == 1

