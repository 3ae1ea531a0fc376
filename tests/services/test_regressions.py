"""Regression detection on real runs (SQLite and PostgreSQL): baselines of each kind, the paired
test, the threshold and significance gates, idempotence, notifications, acknowledgement, CLI."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest

from registry.adapters.store import db
from registry.errors import InvalidInput, NotFound, SchemaOutOfDate
from registry.services.datasets import register_dataset_version
from registry.services.evaluation import run_evaluation
from registry.services.evaluators import create_evaluator, ensure_baselines
from registry.services.regressions import (
    acknowledge,
    baselines_for,
    detect_regressions,
    list_regressions,
    promote_champion,
)
from tests.services.conftest import NATURAL, add_protocol, register_rows, relabelled

P_MIN = 1 / 1001  # smallest p-value of a paired bootstrap with 1000 resamples


@pytest.fixture
def heuristics(registry):
    return ensure_baselines(registry, minilm=False)


@pytest.fixture
def relabelled_runs(registry, heuristics, natural_rows, data_root, tmp_path):
    """`longer` on LLMBar Natural v1 and on a v2 where 30 rows it got right were relabelled."""
    v1 = register_dataset_version(registry, name="llmbar-natural", source="llmbar", path=data_root / NATURAL).version
    base = run_evaluation(registry, "longer", v1.ref, n_boot=100)
    v2 = register_rows(registry, "llmbar-natural", relabelled(natural_rows, 30), tmp_path / "v2")
    cand = run_evaluation(registry, "longer", v2.ref, n_boot=100)
    return base, cand


def test_relabelled_version_records_a_dataset_version_regression(registry, relabelled_runs):
    base, cand = relabelled_runs
    assert cand.dataset == "llmbar-natural@2" and cand.n_executed == 0  # same inputs: every judgment cached
    assert baselines_for(registry, base.id) == [] and detect_regressions(registry, base.id) == []
    assert [(k, b.id) for k, b in baselines_for(registry, cand.id)] == [("dataset_version", base.id)]

    # a real drop of 0.30 with p = 1/1001: kept out by a higher threshold, or by an alpha the test cannot reach
    assert detect_regressions(registry, cand.id, threshold=0.5) == []
    assert detect_regressions(registry, cand.id, alpha=0.0005) == []
    assert list_regressions(registry) == []

    [r] = detect_regressions(registry, cand.id)
    assert (r.baseline_kind, r.baseline_run_id, r.candidate_run_id) == ("dataset_version", base.id, cand.id)
    assert r.evaluator == r.baseline_evaluator == "longer"
    assert (r.dataset, r.baseline_dataset) == ("llmbar-natural@2", "llmbar-natural@1")
    assert r.metric == "accuracy" and r.slice == "all" and r.n_shared == 100
    assert r.delta == pytest.approx(-0.30)  # each relabelled row goes from full credit to none
    assert r.baseline_value == pytest.approx(base.metric("accuracy").value)
    assert r.candidate_value == pytest.approx(cand.metric("accuracy").value)
    assert r.ci_low < r.delta < r.ci_high < 0
    assert r.p_value == pytest.approx(P_MIN)
    assert (r.severity, r.status, r.threshold, r.alpha) == ("major", "open", 0.02, 0.05)
    # `accuracy` gives ½ credit (a tie verdict, orders that disagree): not 0/1 correctness, so no
    # McNemar's test (it used to be run on "full credit", a metric other than the one compared)
    assert "mcnemar" not in r.details and r.details["bootstrap_samples"] == 1000
    assert r.ack_note is None and r.acked_at is None and r.created_at is not None

    # idempotent: the same regression comes back, nothing new is recorded
    assert [x.id for x in detect_regressions(registry, cand.id)] == [r.id]
    assert [x.id for x in list_regressions(registry)] == [r.id]
    # filters
    assert [x.id for x in list_regressions(registry, status="open", evaluator="longer",
                                           dataset="llmbar-natural")] == [r.id]
    assert list_regressions(registry, dataset="llmbar-natural@1") == []
    assert list_regressions(registry, status="acknowledged") == []


def test_unaffected_evaluator_has_no_regression(registry, relabelled_runs):
    # always-first gets credit ½ on every row whatever the label: relabelling changes nothing
    first = run_evaluation(registry, "always-first", "llmbar-natural@1", n_boot=50)
    second = run_evaluation(registry, "always-first", "llmbar-natural@2", n_boot=50)
    assert [(k, b.id) for k, b in baselines_for(registry, second.id)] == [("dataset_version", first.id)]
    assert detect_regressions(registry, second.id, threshold=0.0, alpha=1.0) == []


def test_small_drop_needs_significance_and_the_threshold(registry, heuristics, natural_rows, data_root, tmp_path):
    v1 = register_dataset_version(registry, name="llmbar-natural", source="llmbar", path=data_root / NATURAL).version
    run_evaluation(registry, "longer", v1.ref, n_boot=50)
    v2 = register_rows(registry, "llmbar-natural", relabelled(natural_rows, 3), tmp_path / "v2")
    cand = run_evaluation(registry, "longer", v2.ref, n_boot=50)
    assert detect_regressions(registry, cand.id) == []                             # -0.03 is noise at α 0.05
    assert detect_regressions(registry, cand.id, alpha=0.5, threshold=0.05) == []  # significant at ½, too small
    # the defaults come from the settings (AUTORATER_REGRESSION_*)
    registry.settings = dataclasses.replace(registry.settings, regression_alpha=0.5, regression_threshold=0.05)
    assert detect_regressions(registry, cand.id) == []
    registry.settings = dataclasses.replace(registry.settings, regression_threshold=0.02)
    [r] = detect_regressions(registry, cand.id)
    assert r.delta == pytest.approx(-0.03) and 0.05 <= r.p_value < 0.5
    assert (r.severity, r.threshold, r.alpha) == ("minor", 0.02, 0.5)


def _gold_first(row: dict) -> dict:
    """The same judgment with the preferred output shown first."""
    if str(row["label"]) == "1":
        return dict(row)
    return {**row, "output_1": row["output_2"], "output_2": row["output_1"], "label": 1}


def test_new_protocol_version_regression(registry, heuristics, natural_rows, tmp_path):
    register_rows(registry, "natural-gold-first", [_gold_first(r) for r in natural_rows], tmp_path / "g")
    # v1 shows each pair once, as given; v2 also shows it swapped, exposing position bias
    p1 = add_protocol(registry, "probe-orders", 1, {"orders": [0], "samples": 1, "aggregation": "none"})
    p2 = add_protocol(registry, "probe-orders", 2, {"orders": [0, 1], "samples": 1, "aggregation": "none"})
    create_evaluator(registry, checkpoint="always-first", protocol=p1, name="always-first/probe-1")
    create_evaluator(registry, checkpoint="always-first", protocol=p2, name="always-first/probe-2")
    old = run_evaluation(registry, "always-first/probe-1", "natural-gold-first", n_boot=50)
    new = run_evaluation(registry, "always-first/probe-2", "natural-gold-first", n_boot=50)
    assert old.metric("accuracy").value == 1.0 and new.metric("accuracy").value == 0.5
    assert baselines_for(registry, old.id) == []
    assert [(k, b.id) for k, b in baselines_for(registry, new.id)] == [("protocol_version", old.id)]
    [r] = detect_regressions(registry, new.id)
    assert (r.baseline_kind, r.evaluator, r.baseline_evaluator) == ("protocol_version", "always-first/probe-2",
                                                                     "always-first/probe-1")
    assert r.dataset == r.baseline_dataset == "natural-gold-first@1"
    assert r.delta == pytest.approx(-0.5) and r.ci_low == pytest.approx(-0.5) and r.ci_high == pytest.approx(-0.5)
    assert r.p_value == pytest.approx(P_MIN) and r.severity == "major" and r.n_shared == 100


def test_webhook_gets_each_new_regression_once(registry, relabelled_runs, webhook):
    _, cand = relabelled_runs
    registry.settings = dataclasses.replace(registry.settings, webhook_url=webhook.url)
    [r] = detect_regressions(registry, cand.id)
    assert len(webhook.bodies) == 1
    got = webhook.bodies[0]
    assert got["path"] == "/hooks/autorater" and got["content_type"] == "application/json"
    assert got["json"]["event"] == "regression.detected"
    sent = got["json"]["regression"]
    assert sent["id"] == r.id and sent["candidate_run_id"] == cand.id and sent["baseline_kind"] == "dataset_version"
    assert sent["delta"] == pytest.approx(-0.3) and sent["severity"] == "major" and sent["status"] == "open"
    detect_regressions(registry, cand.id)  # already recorded: no second notification
    assert len(webhook.bodies) == 1


def test_failing_webhook_is_logged_not_fatal(registry, relabelled_runs, webhook, caplog):
    _, cand = relabelled_runs
    webhook.status = 500
    registry.settings = dataclasses.replace(registry.settings, webhook_url=webhook.url)
    with caplog.at_level(logging.WARNING, logger="registry.notify"):
        [r] = detect_regressions(registry, cand.id)
    assert len(webhook.bodies) == 1 and list_regressions(registry)[0].id == r.id
    assert any("webhook" in m and "500" in m and f"regression {r.id}" in m for m in caplog.messages)


def test_without_webhook_a_warning_is_logged(registry, relabelled_runs, caplog):
    _, cand = relabelled_runs
    assert registry.settings.webhook_url is None
    with caplog.at_level(logging.WARNING, logger="registry.notify"):
        [r] = detect_regressions(registry, cand.id)
    [line] = [m for m in caplog.messages if "regression.detected" in m]
    assert f"regression {r.id} (major) of longer on llmbar-natural@2" in line
    assert "dataset_version baseline" in line and f"candidate run {cand.id}" in line
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="registry.notify"):
        detect_regressions(registry, cand.id)
    assert not [m for m in caplog.messages if "regression.detected" in m]


def test_acknowledge(registry, relabelled_runs):
    _, cand = relabelled_runs
    [r] = detect_regressions(registry, cand.id)
    with pytest.raises(InvalidInput, match="needs a note"):
        acknowledge(registry, r.id, note="  ")
    with pytest.raises(NotFound, match="no regression 999"):
        acknowledge(registry, 999, note="x")
    done = acknowledge(registry, r.id, note="v2 fixed 30 wrong labels", by="alice")
    assert (done.status, done.ack_note, done.ack_by) == ("acknowledged", "v2 fixed 30 wrong labels", "alice")
    assert done.acked_at is not None
    assert list_regressions(registry, status="open") == []
    with pytest.raises(InvalidInput, match="already acknowledged by alice"):
        acknowledge(registry, r.id, note="again")
    # re-detecting keeps the acknowledgement
    [again] = detect_regressions(registry, cand.id)
    assert again.id == r.id and again.status == "acknowledged"


def test_bad_arguments(registry, relabelled_runs):
    _, cand = relabelled_runs
    with pytest.raises(InvalidInput, match="threshold"):
        detect_regressions(registry, cand.id, threshold=-0.1)
    with pytest.raises(InvalidInput, match="alpha"):
        detect_regressions(registry, cand.id, alpha=0.0)
    with pytest.raises(NotFound, match="no evaluation run 12345"):
        detect_regressions(registry, 12345)
    with pytest.raises(InvalidInput, match="unknown regression status 'closed'"):
        list_regressions(registry, status="closed")
    with pytest.raises(NotFound, match="did you mean 'longer'"):
        list_regressions(registry, evaluator="longr")
    assert list_regressions(registry) == []


def test_cli_detect_list_ack(registry, relabelled_runs, cli):
    _, cand = relabelled_runs
    res = cli("regressions", "detect", cand.id, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["baselines"][0]["kind"] == "dataset_version" and len(out["regressions"]) == 1
    rid = out["regressions"][0]["id"]

    res = cli("regressions", "list", "--status", "open", "--json")
    assert res.exit_code == 0 and [r["id"] for r in json.loads(res.stdout)] == [rid]
    res = cli("regressions", "list")
    assert res.exit_code == 0 and "llmbar-natural@2" in res.stdout and "dataset_version" in res.stdout

    res = cli("regressions", "ack", rid, "--note", "labels fixed on purpose", "--by", "alice")
    assert res.exit_code == 0 and "acknowledged by alice" in res.stdout
    assert json.loads(cli("regressions", "list", "--status", "open", "--json").stdout) == []
    [acked] = json.loads(cli("regressions", "list", "--status", "acknowledged", "--json").stdout)
    assert acked["ack_note"] == "labels fixed on purpose" and acked["ack_by"] == "alice" and acked["acked_at"]

    again = cli("regressions", "ack", rid, "--note", "twice")
    assert again.exit_code == 2 and "already acknowledged" in again.stderr
    assert cli("regressions", "ack", 999, "--note", "x").exit_code == 3
    bad = cli("regressions", "list", "--status", "closed")
    assert bad.exit_code == 2 and "unknown regression status" in bad.stderr


def test_downgrade_past_0004_keeps_runs(registry, relabelled_runs):
    base, cand = relabelled_runs
    [r] = detect_regressions(registry, cand.id)
    engine = registry.store.engine
    db.downgrade(engine, "0003")
    import sqlalchemy as sa

    tables = set(sa.inspect(engine).get_table_names())
    assert "regressions" not in tables and "evaluation_runs" in tables
    with pytest.raises(SchemaOutOfDate, match="autorater db upgrade"):
        db.check_schema(engine)
    db.upgrade(engine)
    assert registry.store.get_run(cand.id).metric("accuracy").value == cand.metric("accuracy").value
    assert list_regressions(registry) == []
    [again] = detect_regressions(registry, cand.id)  # the runs are intact: the same regression is found again
    assert again.delta == r.delta and again.p_value == r.p_value


def test_pointwise_spearman_regression(registry, heuristics, data_root, tmp_path):
    """BAGEL informativeness re-annotated on a reversed scale (6 ↔ 1): the `longer` heuristic's
    Spearman correlation with the human scores changes sign."""
    bagel = data_root / "neulab__BARTScore/D2T/BAGEL/data.json"
    v1 = register_dataset_version(registry, name="bagel-informativeness", source="bartscore", path=bagel).version
    base = run_evaluation(registry, "longer", v1.ref, n_boot=50)
    rows = json.loads(bagel.read_text())
    for row in rows.values():
        row["scores"]["informativeness"] = 7.0 - row["scores"]["informativeness"]
    (tmp_path / "BAGEL").mkdir()
    (tmp_path / "BAGEL" / "data.json").write_text(json.dumps(rows))
    v2 = register_dataset_version(registry, name="bagel-informativeness", source="bartscore",
                                  path=tmp_path / "BAGEL" / "data.json").version
    cand = run_evaluation(registry, "longer", v2.ref, n_boot=50)
    rho = base.metric("spearman").value
    assert rho > 0.1 and cand.metric("spearman").value == pytest.approx(-rho)
    [r] = detect_regressions(registry, cand.id)
    assert (r.metric, r.baseline_kind, r.method, r.n_shared) == ("spearman", "dataset_version", "paired_bootstrap", 404)
    assert r.baseline_value == pytest.approx(rho) and r.candidate_value == pytest.approx(-rho)
    assert r.delta == pytest.approx(-2 * rho) and r.ci_low < r.delta < r.ci_high < 0 and r.p_value < 0.05
    assert "mcnemar" not in r.details  # correlations have no per-example correctness


def test_open_regression_blocks_the_champion_alias(registry, relabelled_runs):
    _, cand = relabelled_runs
    [r] = detect_regressions(registry, cand.id)
    refused = promote_champion(registry, "longer@1")
    assert not refused.promoted and refused.open_regressions == (r.id,) and refused.previous_champion is None
    assert "champion" not in registry.store.get_checkpoint("longer@1").aliases
    acknowledge(registry, r.id, note="the data changed, not the evaluator")
    taken = promote_champion(registry, "1", autorater="longer")
    assert taken.promoted and "no champion yet" in taken.reason
    assert registry.store.get_checkpoint("longer@champion").version == 1
    with pytest.raises(InvalidInput, match="not a checkpoint of autorater 'shorter'"):
        promote_champion(registry, "longer@1", autorater="shorter")
    with pytest.raises(NotFound, match="no autorater named 'longr'"):
        promote_champion(registry, "longr@1")


def test_cli_eval_run_checks_for_regressions(registry, heuristics, natural_rows, data_root, tmp_path, cli):
    """`autorater eval run` records the regression of the new version's run (and says so), unless
    --no-check-regressions."""
    v1 = register_dataset_version(registry, name="llmbar-natural", source="llmbar", path=data_root / NATURAL).version
    first = cli("eval", "run", "-e", "longer", "-d", v1.ref, "--n-boot", 100, "--json")
    assert first.exit_code == 0, first.output
    assert "regression" not in first.stderr and list_regressions(registry) == []
    v2 = register_rows(registry, "llmbar-natural", relabelled(natural_rows, 30), tmp_path / "v2")
    quiet = cli("eval", "run", "-e", "longer", "-d", v2.ref, "--n-boot", 100, "--no-check-regressions")
    assert quiet.exit_code == 0 and list_regressions(registry) == []
    res = cli("eval", "run", "-e", "random", "-d", v1.ref, "--n-boot", 100)
    assert res.exit_code == 0 and list_regressions(registry) == []
    res = cli("eval", "run", "-e", "longer", "-d", v2.ref, "--n-boot", 100)
    assert res.exit_code == 0, res.output
    [r] = list_regressions(registry)
    assert r.baseline_kind == "dataset_version" and r.dataset == "llmbar-natural@2"
    assert f"regression #{r.id}" in res.stderr and "dataset_version" in res.stderr
