"""Revision 0005 renames stored metrics so each name has one meaning, on a populated registry:
LLMBar's compatibility κ becomes ``llmbar_kappa_*`` and the 3-way accuracy of tie-labelled sets
``accuracy_3way``; the downgrade restores exactly what older code stored."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from registry.adapters.store import db
from registry.services import datasets as svc
from registry.services.imports import import_predictions

LLMBAR_VANILLA = "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/evaluators/GPT-4/Vanilla/result.json"
PANDALM = "WeOpenML__PandaLM/data"


def _rows(engine: sa.Engine, run_id: int) -> dict[tuple[str, str], dict]:
    with engine.connect() as conn:
        got = conn.execute(sa.text("SELECT name, slice, value, extra FROM metrics WHERE run_id = :r"),
                           {"r": run_id}).all()
    return {(name, sl): {"value": value, "extra": json.loads(extra) if isinstance(extra, str) else extra}
            for name, sl, value, extra in got}


def _regression_metrics(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT metric FROM regressions ORDER BY id")).scalars())


def _add_regression(engine: sa.Engine, candidate: int, baseline: int, metric: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO regressions (candidate_run_id, baseline_run_id, baseline_kind, metric, slice, delta, ci_low, "
            "ci_high, p_value, method, severity, baseline_value, candidate_value, n_shared, threshold, alpha, status, "
            "details, created_at) VALUES (:c, :b, 'dataset_version', :m, 'all', -0.03, -0.05, -0.01, 0.01, "
            "'paired bootstrap', 'minor', 0.7, 0.67, 999, 0.02, 0.05, 'open', '{}', :t)"),
            {"c": candidate, "b": baseline, "m": metric, "t": datetime.now(timezone.utc)})


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_metric_names_migrate_down_and_up(registry, data_root):
    svc.register_all(registry, data_root, only={"llmbar-natural", "pandalm-test"})
    llmbar = import_predictions(registry, "llmbar", data_root / LLMBAR_VANILLA, "llmbar-natural",
                                evaluator="gpt-4/llmbar-vanilla", n_boot=50)
    gpt = import_predictions(registry, "pandalm", data_root / PANDALM / "gpt-3.5-turbo-testset-v1.json",
                             "pandalm-test", evaluator="gpt-3.5-turbo/pandalm", n_boot=50)
    panda = import_predictions(registry, "pandalm", data_root / PANDALM / "pandalm-7b-testset-v1.json",
                               "pandalm-test", evaluator="pandalm-7b/pandalm", n_boot=50)
    engine = registry.store.engine
    _add_regression(engine, panda.id, gpt.id, "accuracy_3way")
    head_llmbar, head_gpt = _rows(engine, llmbar.id), _rows(engine, gpt.id)
    three_way_slices = {sl for name, sl in head_gpt if name == "accuracy_3way"}
    assert len(three_way_slices) > 1 and ("accuracy", "all") in head_gpt       # ReIFE accuracy beside it

    # ------------------------------------------------------------ down: what older code stored
    db.downgrade(engine, "0004")
    old_llmbar, old_gpt = _rows(engine, llmbar.id), _rows(engine, gpt.id)
    assert not {n for n, _ in old_llmbar if n.startswith("llmbar_kappa")}
    assert old_llmbar[("kappa_average", "all")]["value"] == head_llmbar[("llmbar_kappa_average", "all")]["value"]
    assert old_llmbar[("kappa_agreement", "all")]["value"] == head_llmbar[("llmbar_kappa_agreement", "all")]["value"]
    compat = old_llmbar[("kappa_average", "all")]["extra"]
    assert "kappa_False" in compat and "kappa_True" in compat and "llmbar_kappa_False" not in compat
    # sets without tie labels keep their ReIFE accuracy
    assert old_llmbar[("accuracy", "all")]["value"] == head_llmbar[("accuracy", "all")]["value"]
    # on the tie-labelled set `accuracy` was the 3-way figure, on every slice
    assert not {n for n, _ in old_gpt if n.endswith("_3way")}
    assert old_gpt[("accuracy", "all")]["value"] == pytest.approx(697 / 999)
    assert {sl for n, sl in old_gpt if n == "accuracy"} == three_way_slices
    for sl in three_way_slices:
        assert old_gpt[("accuracy", sl)]["value"] == head_gpt[("accuracy_3way", sl)]["value"]
    assert _regression_metrics(engine) == ["accuracy"]
    # a coverage row as code before 0005 wrote it (no parsed counts)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE metrics SET extra = '{}' WHERE run_id = :r AND name = 'coverage'"),
                     {"r": llmbar.id})

    # ------------------------------------------------------------------- up: one meaning per name
    db.upgrade(engine)
    db.check_schema(engine)
    new_llmbar, new_gpt = _rows(engine, llmbar.id), _rows(engine, gpt.id)
    assert not {n for n, _ in new_llmbar if n.startswith("kappa_")}
    assert new_llmbar[("llmbar_kappa_average", "all")] == head_llmbar[("llmbar_kappa_average", "all")]
    assert new_llmbar[("llmbar_kappa_agreement", "all")] == head_llmbar[("llmbar_kappa_agreement", "all")]
    assert new_llmbar[("accuracy", "all")]["value"] == head_llmbar[("accuracy", "all")]["value"]
    assert {sl for n, sl in new_gpt if n == "accuracy_3way"} == three_way_slices
    assert new_gpt[("accuracy_3way", "all")]["value"] == pytest.approx(697 / 999)
    assert not {sl for n, sl in new_gpt if n == "accuracy"}   # ReIFE accuracy needs a re-score; not invented
    assert _regression_metrics(engine) == ["accuracy_3way"]
    assert "before_0005" in new_llmbar[("coverage", "all")]["extra"]
    assert "before_0005" not in new_gpt[("coverage", "all")]["extra"]     # written by today's code
    # the registry reads the migrated rows
    assert registry.store.get_run(gpt.id).metric("accuracy_3way").value == pytest.approx(697 / 999)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_upgrade_leaves_runs_scored_by_newer_code_alone(registry, data_root):
    """A registry at 0004 that already holds runs scored by newer code (``accuracy`` and
    ``accuracy_3way`` side by side, ``llmbar_kappa_*``) upgrades without a constraint error."""
    svc.register_all(registry, data_root, only={"pandalm-test", "llmbar-natural"})
    gpt = import_predictions(registry, "pandalm", data_root / PANDALM / "gpt-3.5-turbo-testset-v1.json",
                             "pandalm-test", evaluator="gpt-3.5-turbo/pandalm", n_boot=50)
    llmbar = import_predictions(registry, "llmbar", data_root / LLMBAR_VANILLA, "llmbar-natural",
                                evaluator="gpt-4/llmbar-vanilla", n_boot=50)
    engine = registry.store.engine
    before_gpt, before_llmbar = _rows(engine, gpt.id), _rows(engine, llmbar.id)
    db.downgrade(engine, "0005")  # the later revisions' tables go (0005 changes data only)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0004'"))  # as if written before 0005 ran
    db.upgrade(engine)
    after_gpt, after_llmbar = _rows(engine, gpt.id), _rows(engine, llmbar.id)
    assert {k: v["value"] for k, v in after_gpt.items()} == {k: v["value"] for k, v in before_gpt.items()}
    assert {k: v["value"] for k, v in after_llmbar.items()} == {k: v["value"] for k, v in before_llmbar.items()}
