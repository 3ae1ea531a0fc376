"""The REST API (issue 14): every endpoint against the shared ``web_registry`` (reads; answers equal to the
Python API's for the same call), writes against a registry of this module (``scratch``: the shared one's
open regression belongs to the browser test), problem+json errors, the token rule on every write,
pagination, uploads (limit, rejection leaves nothing) and background evaluation jobs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from registry.domain.serialization import to_jsonable
from tests.conftest import store_files
from tests.services.conftest import relabelled
from tests.web.conftest import TOKEN, XSS

API = "/api/v1"
PROBLEM = "application/problem+json"


def problem(r, status: int) -> dict:
    """``r`` is a problem+json answer with ``status`` and no stack trace; its body."""
    assert r.status_code == status, r.text[:800]
    assert r.headers["content-type"].startswith(PROBLEM), r.headers["content-type"]
    assert "Traceback" not in r.text and 'File "' not in r.text
    body = r.json()
    assert body["status"] == status and body["title"]
    return body


def pages(client, url: str, *, limit: int, key: str = "rows") -> list[list[dict]]:
    """Every page of a paginated endpoint, following ``next_cursor``."""
    out, cursor = [], None
    sep = "&" if "?" in url else "?"
    for _ in range(1000):
        r = client.get(f"{url}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else ""))
        assert r.status_code == 200, r.text
        body = r.json()
        out.append(body[key])
        cursor = body["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("pagination did not end")


# ====================================================================== reads (shared registry)
def test_openapi_lists_the_endpoints(client):
    paths = client.get(f"{API}/openapi.json").json()["paths"]
    for p in ("/sources", "/datasets", "/datasets/diff", "/datasets/{name}", "/datasets/{ref}/rows", "/checkpoints",
              "/checkpoints/{ref}", "/protocols", "/protocols/{ref}", "/evaluators", "/evaluators/{name}", "/runs",
              "/runs/{run_id}", "/runs/{run_id}/predictions", "/leaderboard", "/best", "/regressions", "/matrix",
              "/aliases/{autorater}/{alias}", "/regressions/{regression_id}/ack", "/datasets/{name}/versions",
              "/jobs/{job_id}"):
        assert f"{API}{p}" in paths, p
    assert "multipart/form-data" in paths[f"{API}/datasets/{{name}}/versions"]["post"]["requestBody"]["content"]


def test_sources(client, web_registry):
    r = client.get(f"{API}/sources")
    assert r.status_code == 200
    assert r.json() == to_jsonable(web_registry.reg.sources())
    assert "llmbar" in [s["name"] for s in r.json()]


def test_datasets_and_filters(client, web_registry):
    reg = web_registry.reg
    assert client.get(f"{API}/datasets").json() == to_jsonable(reg.datasets())
    names = {d["name"] for d in client.get(f"{API}/datasets").json()}
    assert {"llmbar-natural", "llmbar-gptout", "hostile-markup"} <= names
    assert [d["name"] for d in client.get(f"{API}/datasets", params={"q": "NATur"}).json()] == ["llmbar-natural"]
    assert client.get(f"{API}/datasets", params={"task_type": "pointwise"}).json() == []
    by_source = client.get(f"{API}/datasets", params={"source": "llmbar"}).json()
    assert by_source == to_jsonable(reg.datasets(source="llmbar")) and {"llmbar-natural"} <= {d["name"] for d in by_source}
    assert client.get(f"{API}/datasets", params={"source": "no-such-adapter"}).json() == []
    body = problem(client.get(f"{API}/datasets", params={"task_type": "ranking"}), 422)
    assert body["field"] == "task_type"


def test_dataset_details_and_versions(client, web_registry):
    reg = web_registry.reg
    body = client.get(f"{API}/datasets/llmbar-natural").json()
    assert body["version"] == 2 and body["parent_version"] == 1
    assert {k: body[k] for k in to_jsonable(reg.dataset("llmbar-natural"))} == to_jsonable(reg.dataset("llmbar-natural"))
    assert body["versions"] == to_jsonable(reg.versions("llmbar-natural"))
    assert [v["version"] for v in body["versions"]] == [1, 2]
    assert "statistics" in body and body["validation"]["failed"] == 0
    assert client.get(f"{API}/datasets/{web_registry.natural_v1}").json()["version"] == 1
    assert "did you mean" in problem(client.get(f"{API}/datasets/llmbar-naturel"), 404)["detail"]


def test_dataset_rows_paginate_without_overlap(client, web_registry):
    table = web_registry.reg.load_table(web_registry.natural_v2)
    got = pages(client, f"{API}/datasets/{web_registry.natural_v2}/rows", limit=30)
    assert [len(p) for p in got] == [30, 30, 30, 10]
    ids = [row["example_id"] for p in got for row in p]
    assert len(ids) == len(set(ids)) == table.num_rows
    assert ids == table.column("example_id").to_pylist()      # canonical order
    first = client.get(f"{API}/datasets/{web_registry.natural_v2}/rows", params={"limit": 2}).json()
    assert first["total"] == 100 and first["rows"] == to_jsonable(table.slice(0, 2).to_pylist())
    second = client.get(f"{API}/datasets/{web_registry.natural_v2}/rows",
                        params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert second["offset"] == 2 and second["rows"] == to_jsonable(table.slice(2, 2).to_pylist())
    # the default and maximum page sizes
    assert len(client.get(f"{API}/datasets/{web_registry.natural_v2}/rows").json()["rows"]) == 50
    for bad in (0, 501, -1):
        problem(client.get(f"{API}/datasets/{web_registry.natural_v2}/rows", params={"limit": bad}), 422)


@pytest.mark.parametrize("cursor", ["zzz", "bzotMQ", "!!!", "o:5", "b246LTE"])
def test_bad_cursor_is_a_422_naming_the_field(client, web_registry, cursor):
    body = problem(client.get(f"{API}/datasets/{web_registry.natural_v2}/rows", params={"cursor": cursor}), 422)
    assert body["field"] == "cursor" and body["code"] == "invalid_input"
    problem(client.get(f"{API}/runs", params={"cursor": cursor}), 422)


def test_undefined_numbers_are_null_not_nan():
    from registry.web.api import JSONData

    body = JSONData({"value": float("nan"), "ci": [float("inf"), 0.5, -float("inf")], "n": 3}).body
    assert json.loads(body) == {"value": None, "ci": [None, 0.5, None], "n": 3}
    assert b"NaN" not in body and b"Infinity" not in body


def test_cursor_round_trips():
    from registry.web.api import decode_cursor, encode_cursor

    for n in (0, 1, 49, 500, 10**9):
        assert decode_cursor(encode_cursor(n)) == n
    assert decode_cursor(None) == 0


def test_dataset_rows_filters(client, web_registry):
    table = web_registry.reg.load_table(web_registry.natural_v2).to_pylist()
    ref = web_registry.natural_v2
    body = client.get(f"{API}/datasets/{ref}/rows", params={"label": "B", "limit": 500}).json()
    assert body["total"] == sum(r["label"] == "B" for r in table) > 0
    assert {r["label"] for r in body["rows"]} == {"B"}
    category = next(r["category"] for r in table if r["category"] is not None)
    body = client.get(f"{API}/datasets/{ref}/rows", params={"slice": f"category={category}", "label": "A",
                                                            "limit": 500}).json()
    assert body["total"] == sum(r["category"] == category and r["label"] == "A" for r in table)
    assert client.get(f"{API}/datasets/{ref}/rows", params={"slice": "category=no such value"}).json()["total"] == 0
    assert problem(client.get(f"{API}/datasets/{ref}/rows", params={"slice": "category"}), 422)["field"] == "slice"
    assert problem(client.get(f"{API}/datasets/{ref}/rows", params={"slice": "nope=1"}), 422)["field"] == "slice"


def test_hostile_texts_come_back_as_data(client, web_registry):
    r = client.get(f"{API}/datasets/{web_registry.hostile}/rows", params={"limit": 1})
    assert r.headers["content-type"].startswith("application/json")
    row = r.json()["rows"][0]
    assert XSS in row["instruction"] and XSS in row["response_a"]


def test_diff_with_changed_fields(client, web_registry):
    reg, a, b = web_registry.reg, web_registry.natural_v1, web_registry.natural_v2
    body = client.get(f"{API}/datasets/diff", params={"a": a, "b": b}).json()
    assert body == to_jsonable(reg.diff(a, b, fields=True))
    plain = to_jsonable(reg.diff(a, b))                    # the CLI's --json, plus the changes
    assert {k: body[k] for k in plain} == plain and "changes" not in plain
    assert body["changed"] == 30 and body["added"] == body["removed"] == 0
    assert [c["example_id"] for c in body["changes"]] == body["changed_ids"]
    for c in body["changes"]:
        assert set(c["fields"]) == {"label"} and c["fields"]["label"]["from"] != c["fields"]["label"]["to"]
    problem(client.get(f"{API}/datasets/diff", params={"a": a, "b": "llmbar-natural@9"}), 404)
    problem(client.get(f"{API}/datasets/diff", params={"a": a}), 422)


def test_checkpoints(client, web_registry):
    reg = web_registry.reg
    assert client.get(f"{API}/checkpoints").json() == to_jsonable(reg.checkpoints())
    assert {c["autorater"] for c in client.get(f"{API}/checkpoints", params={"autorater": "longer"}).json()} == {"longer"}
    body = client.get(f"{API}/checkpoints/longer@1").json()
    assert body == to_jsonable(reg.checkpoint_details("longer@1"))
    assert body["ref"] == "longer@1" and body["parents"] == [] and body["training_datasets"] == []
    assert body["model_card_text"] is None and body["lineage"] == {}
    problem(client.get(f"{API}/checkpoints/longer@7"), 404)


def test_protocols_with_prompt_text(client, web_registry):
    reg = web_registry.reg
    assert client.get(f"{API}/protocols").json() == to_jsonable(reg.protocols())
    body = client.get(f"{API}/protocols/pairwise-cot").json()
    assert body == to_jsonable(reg.protocol_details("pairwise-cot"))
    assert body["ref"] == "pairwise-cot@1" and "{instruction}" in body["prompt"] and "{response_a}" in body["prompt"]
    assert body["config"]["user"].replace("{{", "{").replace("}}", "}") in body["prompt"]
    staged = client.get(f"{API}/protocols/pairwise-reference").json()["prompt"]
    assert "### stage" in staged
    assert client.get(f"{API}/protocols/score-both-orders").json()["prompt"] is None
    problem(client.get(f"{API}/protocols/no-such-protocol"), 404)


def test_evaluators_with_slash_and_at_in_names(client, web_registry):
    reg = web_registry.reg
    assert client.get(f"{API}/evaluators").json() == to_jsonable(reg.evaluators())
    assert client.get(f"{API}/evaluators/longer").json() == to_jsonable(reg.evaluator("longer"))
    if "gpt-4/llmbar-vanilla" in web_registry.runs:
        body = client.get(f"{API}/evaluators/gpt-4/llmbar-vanilla").json()
        assert body == to_jsonable(reg.evaluator("gpt-4/llmbar-vanilla")) and body["kind"] == "external"
        assert client.get(f"{API}/evaluators/gpt-4%2Fllmbar-vanilla").status_code == 200
    problem(client.get(f"{API}/evaluators/gpt-4@1/no such"), 404)
    problem(client.get(f"{API}/evaluators/%3Cscript%3E"), 404)


def test_runs_list_filters_and_pages(client, web_registry):
    reg = web_registry.reg
    body = client.get(f"{API}/runs").json()
    assert body["items"] == to_jsonable(reg.runs())[:50]
    got = [r["id"] for p in pages(client, f"{API}/runs", limit=4, key="items") for r in p]
    assert got == [r.id for r in reg.runs()] and len(got) == len(set(got))
    longer = client.get(f"{API}/runs", params={"evaluator": "longer"}).json()["items"]
    assert longer == to_jsonable(reg.runs(evaluator="longer")) and {r["evaluator"] for r in longer} == {"longer"}
    on_v2 = client.get(f"{API}/runs", params={"dataset": web_registry.natural_v2, "status": "succeeded"}).json()
    assert on_v2["items"] == to_jsonable(reg.runs(dataset=web_registry.natural_v2, status="succeeded"))
    assert {r["id"] for r in on_v2["items"]} >= set(web_registry.runs.values())


def test_run_details(client, web_registry):
    run_id = web_registry.runs["longer"]
    body = client.get(f"{API}/runs/{run_id}").json()
    assert body == to_jsonable(web_registry.reg.run(run_id))
    names = {(m["name"], m["slice"]) for m in body["metrics"]}
    assert ("accuracy", "all") in names and "provenance" in body and "cost_usd" in body
    assert all("ci_low" in m for m in body["metrics"])
    problem(client.get(f"{API}/runs/999999"), 404)
    problem(client.get(f"{API}/runs/abc"), 422)


def test_run_predictions_with_human_labels(client, web_registry):
    reg = web_registry.reg
    run_id = web_registry.runs["longer"]
    preds = reg.predictions(run_id).to_pylist()
    human = {r["example_id"]: r["label"] for r in reg.load_table(web_registry.natural_v2).to_pylist()}
    every = [row for p in pages(client, f"{API}/runs/{run_id}/predictions", limit=70) for row in p]
    assert len(every) == len(preds) == len({(r["example_id"], r["order"], r["sample"]) for r in every})
    assert all(r["human_label"] == human[r["example_id"]] for r in every)
    assert every == to_jsonable(list(reg.prediction_rows(run_id, limit=500).rows))
    disagree = [row for p in pages(client, f"{API}/runs/{run_id}/predictions?disagree=true", limit=25) for row in p]
    assert len(disagree) == sum(r["verdict"] != human[r["example_id"]] for r in preds) > 0
    assert all(r["verdict"] != r["human_label"] for r in disagree)
    problem(client.get(f"{API}/runs/999999/predictions"), 404)


def test_leaderboard_equals_the_python_api(client, web_registry):
    reg, ref = web_registry.reg, web_registry.natural_v2
    body = client.get(f"{API}/leaderboard", params={"dataset": ref}).json()
    assert body == to_jsonable(reg.leaderboard(ref))
    assert {s["evaluator"] for s in body["standings"]} >= {"longer", "shorter", "random", "always-first"}
    kappa = client.get(f"{API}/leaderboard", params={"dataset": ref, "metric": "cohen_kappa_agreement"}).json()
    assert kappa == to_jsonable(reg.leaderboard(ref, "cohen_kappa_agreement")) and kappa["metric"] == "cohen_kappa_agreement"
    assert problem(client.get(f"{API}/leaderboard", params={"dataset": ref, "metric": "bananas"}), 422)["field"] == "metric"
    problem(client.get(f"{API}/leaderboard"), 422)


def test_best_equals_the_cli_without_filters(client, web_registry):
    reg = web_registry.reg
    assert client.get(f"{API}/best", params={"task_type": "pairwise"}).json() == to_jsonable(reg.best(task_type="pairwise"))
    assert client.get(f"{API}/best", params={"dataset": "llmbar-natural"}).json() == \
        to_jsonable(reg.best(dataset="llmbar-natural"))
    body = client.get(f"{API}/best", params={"task_type": "pairwise", "coverage": "all"}).json()
    assert body == to_jsonable(reg.best(task_type="pairwise", coverage="all"))
    assert problem(client.get(f"{API}/best"), 422)["field"] == "dataset"
    problem(client.get(f"{API}/best", params={"task_type": "pairwise", "max_cost_per_1k": -1}), 422)


def test_best_filters(client, web_registry):
    reg = web_registry.reg
    params = {"dataset": web_registry.natural_v2}
    everyone = {s["evaluator"] for s in client.get(f"{API}/best", params=params).json()["standings"]}
    no_import = client.get(f"{API}/best", params={**params, "exclude_imported": "true"}).json()
    assert no_import == to_jsonable(reg.best(dataset=web_registry.natural_v2, exclude_imported=True))
    assert {s["evaluator"] for s in no_import["standings"]} == everyone - {"gpt-4/llmbar-vanilla"}
    kinds = client.get(f"{API}/best", params={**params, "backend": ["longer", "shorter"]}).json()
    assert {s["evaluator"] for s in kinds["standings"]} == {"longer", "shorter"}
    assert client.get(f"{API}/best", params={**params, "backend": "longer,shorter"}).json() == kinds
    # the filtered ranking is a ranking of its own: its best is tested against its own candidates
    assert kinds == to_jsonable(reg.best(dataset=web_registry.natural_v2, backend=["longer", "shorter"]))
    capped = client.get(f"{API}/best", params={"task_type": "pairwise", "max_cost_per_1k": 0}).json()
    assert "gpt-4/llmbar-vanilla" not in {s["evaluator"] for s in capped["standings"]}   # its price is unknown
    assert {"longer", "random"} <= {s["evaluator"] for s in capped["standings"]}          # local heuristics cost $0
    assert capped == to_jsonable(reg.best(task_type="pairwise", max_cost_per_1k=0))
    problem(client.get(f"{API}/best", params={**params, "backend": "openai"}), 404)


def test_best_limit_cuts_the_standings_as_the_cli_does(client, web_registry, monkeypatch):
    """`/best?limit=N` lists the first N standings, with the best, every tied name and the count whole: the
    same JSON as `autorater best --json --limit N` and `Registry.best(limit=N)`; each cut is encoded once."""
    from typer.testing import CliRunner

    from registry.cli.main import app as cli_app
    from registry.web import api as web_api
    from tests.conftest import point_env_at

    reg, finite = web_registry.reg, web_api._finite      # the API's JSON: a NaN statistic is null
    full = finite(to_jsonable(reg.best(task_type="pairwise")))
    assert len(full["standings"]) >= 4 and full["standings_total"] == len(full["standings"])
    cut = client.get(f"{API}/best", params={"task_type": "pairwise", "limit": 2})
    body = cut.json()
    assert body == finite(to_jsonable(reg.best(task_type="pairwise", limit=2)))
    assert body["standings"] == full["standings"][:2] and body["standings_total"] == len(full["standings"])
    assert body["best"] == full["best"] and body["tied_with_best"] == full["tied_with_best"]
    assert {k: v for k, v in body.items() if k != "standings"} == {k: v for k, v in full.items() if k != "standings"}
    point_env_at(monkeypatch, web_registry.settings)
    out = CliRunner().invoke(cli_app, ["best", "--task-type", "pairwise", "--limit", "2", "--json"],
                             catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert finite(json.loads(out.stdout)) == body
    whole = CliRunner().invoke(cli_app, ["best", "--task-type", "pairwise", "--json"], catch_exceptions=False)
    assert finite(json.loads(whole.stdout)) == full                      # the command line's default: every standing
    # the API's default lists at most 50; a limit past the end is the whole ranking
    assert client.get(f"{API}/best", params={"task_type": "pairwise"}).json() == full
    assert client.get(f"{API}/best", params={"task_type": "pairwise", "limit": 10_000}).json() == full
    # the same cut of the same memoised ranking is the same object, answered from its encoded JSON
    assert reg.best(task_type="pairwise", limit=2) is reg.best(task_type="pairwise", limit=2)
    assert client.get(f"{API}/best", params={"task_type": "pairwise", "limit": 2}).content == cut.content
    assert len(web_api._encoded) <= web_api.ENCODED_RANKINGS
    assert problem(client.get(f"{API}/best", params={"task_type": "pairwise", "limit": 0}), 422)
    with pytest.raises(Exception, match="limit"):
        reg.best(task_type="pairwise", limit=0)


def test_regressions_list(client, web_registry):
    reg = web_registry.reg
    assert client.get(f"{API}/regressions").json() == to_jsonable(reg.regressions())
    assert web_registry.regression_id in {r["id"] for r in client.get(f"{API}/regressions").json()}
    for status in ("open", "acknowledged"):
        body = client.get(f"{API}/regressions", params={"status": status}).json()
        assert body == to_jsonable(reg.regressions(status=status)) and {r["status"] for r in body} <= {status}
    longer = client.get(f"{API}/regressions", params={"evaluator": "longer", "dataset": "llmbar-natural"}).json()
    assert {r["evaluator"] for r in longer} == {"longer"}


def test_matrix(client, web_registry):
    reg = web_registry.reg
    body = client.get(f"{API}/matrix").json()
    whole = to_jsonable(reg.headline_matrix())
    assert {k: body[k] for k in ("datasets", "evaluators", "cells")} == whole and body["next_cursor"] is None
    cells, names, cursor = [], [], None  # pages of two evaluators put the whole matrix back together
    while True:
        page = client.get(f"{API}/matrix", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        assert len(page["evaluators"]) <= 2 and {c["evaluator"] for c in page["cells"]} <= set(page["evaluators"])
        names += page["evaluators"]
        cells += page["cells"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names == whole["evaluators"] and cells == whole["cells"] and len(names) > 2
    assert web_registry.natural_v2 in body["datasets"] and web_registry.natural_v1 not in body["datasets"]
    cell = next(c for c in body["cells"] if c["evaluator"] == "longer" and c["dataset"] == web_registry.natural_v2)
    board = reg.leaderboard(web_registry.natural_v2)
    assert cell["run"] == web_registry.runs["longer"] and cell["metric"] == board.metric
    assert cell["value"] == next(s.value for s in board.standings if s.evaluator == "longer")
    assert client.get(f"{API}/matrix", params={"task_type": "pointwise"}).json()["cells"] == []


def test_unknown_alias_is_a_404(client):
    body = problem(client.get(f"{API}/aliases/longer/champion"), 404)
    assert body["code"] == "not_found"


def test_info(client, web_registry):
    assert client.get(f"{API}/info").json() == to_jsonable(web_registry.reg.info())


# ====================================================================== writes (a registry of this module)
@dataclass
class Scratch:
    reg: object
    client: object
    regression_id: int
    natural_v2: str


@pytest.fixture(scope="module")
def scratch(tmp_path_factory, data_root) -> Iterator[Scratch]:
    """Like ``web_registry`` but small and owned by this module: LLMBar Natural v1 and a relabelled v2,
    `longer` and `shorter` on both, `longer`'s regression recorded (open)."""
    from fastapi.testclient import TestClient

    from registry.services.evaluators import ensure_baselines
    from registry.web.app import WebSettings, create_app
    from tests.web.conftest import new_registry

    base = tmp_path_factory.mktemp("api-writes")
    reg, settings, rows = new_registry(base, data_root)
    v1 = reg.versions("llmbar-natural")[0]
    (base / "in").mkdir()
    (base / "in" / "v2.json").write_text(json.dumps(relabelled(rows, 30)))
    v2 = reg.register_dataset("llmbar-natural", source="llmbar", path=base / "in" / "v2.json").version
    ensure_baselines(reg._ctx, minilm=False)
    for name in ("longer", "shorter"):
        reg.evaluate(name, v1.ref, n_boot=100)
    longer = reg.evaluate("longer", v2.ref, n_boot=100)
    reg.evaluate("shorter", v2.ref, n_boot=100)
    for name in ("longer", "shorter"):     # v1 runs sliced by the human label, for /best?slice=
        reg.evaluate(name, v1.ref, n_boot=100, slice_by=["label"])
    check = reg.detect_regressions(longer.id, n_boot=100)
    assert check.regressions
    app = create_app(registry=reg, web=WebSettings(token=TOKEN, public_read=True))
    with TestClient(app) as c:
        yield Scratch(reg=reg, client=c, regression_id=check.regressions[0].id, natural_v2=v2.ref)
    reg.close()


def _state(reg) -> tuple[dict, list[str], list]:
    """What a refused write must leave unchanged: row counts, store files, evaluators, regressions, aliases."""
    return (reg.info().counts, store_files(reg._ctx),
            [to_jsonable(x) for x in (reg.evaluators(), reg.regressions(), reg.checkpoints())])


CSV = b"q,a,b,w\nWhat is 2+2?,4,five,A\nName a colour,blue,a dog,A\nSay hi,bye,hi,B\n"
MAP = json.dumps({"instruction": "q", "response_a": "a", "response_b": "b", "label": "w"})


def _writes(s: Scratch) -> list[tuple[str, str, dict]]:
    return [
        ("post", f"{API}/regressions/{s.regression_id}/ack", {"json": {"note": "expected"}}),
        ("put", f"{API}/aliases/shorter/stable", {"json": {"version": 1}}),
        ("post", f"{API}/evaluators", {"json": {"checkpoint": "longer@1", "name": "refused-judge"}}),
        ("post", f"{API}/datasets/refused-set/versions",
         {"files": {"file": ("p.csv", CSV, "text/csv")}, "data": {"task_type": "pairwise", "map": MAP}}),
        ("post", f"{API}/runs", {"json": {"evaluator": "longer", "dataset": "llmbar-natural@1"}}),
    ]


def test_every_write_needs_the_token(scratch):
    c, before = scratch.client, _state(scratch.reg)
    for method, url, kwargs in _writes(scratch):
        body = problem(getattr(c, method)(url, **kwargs), 401)
        assert "Bearer" in body["detail"]
        problem(getattr(c, method)(url, headers={"Authorization": "Bearer wrong-token"}, **kwargs), 403)
        problem(getattr(c, method)(url, headers={"Authorization": f"Basic {TOKEN}"}, **kwargs), 401)
    assert _state(scratch.reg) == before
    assert scratch.reg.regressions(status="open")


def test_writes_are_refused_without_a_configured_token(scratch):
    from fastapi.testclient import TestClient

    from registry.web.app import WebSettings, create_app

    with TestClient(create_app(registry=scratch.reg, web=WebSettings(token=None))) as c:
        before = _state(scratch.reg)
        for method, url, kwargs in _writes(scratch):
            problem(getattr(c, method)(url, headers={"Authorization": f"Bearer {TOKEN}"}, **kwargs), 403)
        assert _state(scratch.reg) == before
        assert c.get(f"{API}/regressions").status_code == 200     # reads stay open


def test_ack_and_the_champion_rule(scratch):
    c, reg, rid = scratch.client, scratch.reg, scratch.regression_id
    auth = {"Authorization": f"Bearer {TOKEN}"}
    # the open regression blocks the champion alias: 409 carrying the decision
    body = problem(c.put(f"{API}/aliases/longer/champion", json={"version": 1}, headers=auth), 409)
    assert body["decision"]["promoted"] is False and rid in body["decision"]["open_regressions"]
    assert problem(c.get(f"{API}/aliases/longer/champion"), 404)
    # a bad body: 422; an unknown regression: 404
    problem(c.post(f"{API}/regressions/{rid}/ack", json={}, headers=auth), 422)
    problem(c.post(f"{API}/regressions/{rid}/ack", json={"note": "x", "sneaky": 1}, headers=auth), 422)
    problem(c.post(f"{API}/regressions/999999/ack", json={"note": "x"}, headers=auth), 404)
    assert reg.regressions(status="open")[0].id == rid
    r = c.post(f"{API}/regressions/{rid}/ack", json={"note": "relabelled on purpose <b>ok</b>", "by": "ci"},
               headers=auth)
    assert r.status_code == 200, r.text
    assert r.json() == to_jsonable(next(x for x in reg.regressions() if x.id == rid))
    assert r.json()["status"] == "acknowledged" and r.json()["ack_by"] == "ci"
    assert r.json()["ack_note"] == "relabelled on purpose <b>ok</b>"
    # now the rule lets it through
    r = c.put(f"{API}/aliases/longer/champion", json={"version": 1}, headers=auth)
    assert r.status_code == 200 and r.json()["promoted"] is True, r.text
    got = c.get(f"{API}/aliases/longer/champion").json()
    assert got == to_jsonable(reg.alias("longer", "champion"))
    assert got["checkpoint"] == "longer@1" and [e["name"] for e in got["evaluators"]] == ["longer"]
    assert got["evaluators"][0]["config"] == {}


def test_move_an_alias(scratch):
    c, reg = scratch.client, scratch.reg
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = c.put(f"{API}/aliases/shorter/stable", json={"version": 1}, headers=auth)
    assert r.status_code == 200 and "stable" in r.json()["aliases"], r.text
    assert r.json() == to_jsonable(reg.checkpoint("shorter@1"))
    body = c.get(f"{API}/aliases/shorter/stable").json()
    assert body["checkpoint"] == "shorter@1" and {e["name"] for e in body["evaluators"]} == {"shorter"}
    problem(c.put(f"{API}/aliases/shorter/stable", json={"version": 9}, headers=auth), 404)
    assert problem(c.put(f"{API}/aliases/shorter/3", json={"version": 1}, headers=auth), 422)["field"] == "alias"
    problem(c.put(f"{API}/aliases/shorter/stable", json={"version": "one"}, headers=auth), 422)


def test_create_evaluator(scratch):
    c, reg = scratch.client, scratch.reg
    auth = {"Authorization": f"Bearer {TOKEN}"}
    spec = {"checkpoint": "longer@1", "protocol": "score-single-order", "name": "team@2/longer-single"}
    r = c.post(f"{API}/evaluators", json=spec, headers=auth)
    assert r.status_code == 201 and r.json()["created"] is True, r.text
    assert r.headers["location"] == f"{API}/evaluators/team@2/longer-single"
    assert c.get(r.headers["location"]).json() == to_jsonable(reg.evaluator("team@2/longer-single"))
    again = c.post(f"{API}/evaluators", json=spec, headers=auth)
    assert again.status_code == 200 and again.json()["created"] is False
    before = _state(reg)
    secret = c.post(f"{API}/evaluators", json={**spec, "name": "leaky", "config": {"api_key": "sk-123"}}, headers=auth)
    body = problem(secret, 422)
    assert "sk-123" not in secret.text and body.get("field")
    assert _state(reg) == before
    problem(c.post(f"{API}/evaluators", json={**spec, "name": "x", "checkpoint": "nope@1"}, headers=auth), 404)
    problem(c.post(f"{API}/evaluators", json={**spec, "name": "bad name <script>"}, headers=auth), 422)
    # the same name for another evaluator: 409
    clash = problem(c.post(f"{API}/evaluators", json={**spec, "checkpoint": "shorter@1"}, headers=auth), 409)
    assert clash["code"] == "already_exists"
    assert _state(reg) == before


def test_best_on_a_slice(scratch):
    c, reg = scratch.client, scratch.reg
    body = c.get(f"{API}/best", params={"dataset": "llmbar-natural@1", "slice": "label=A"}).json()
    assert body == to_jsonable(reg.best(dataset="llmbar-natural@1", slice="label=A"))
    assert body["scope"] == "llmbar-natural@1 [label=A]" and {s["evaluator"] for s in body["standings"]} == {"longer", "shorter"}
    for s in body["standings"]:
        run = reg.run(s["runs"][0])
        assert s["value"] == run.metric("accuracy", "label=A").value and not s["tied_with_best"]
    assert body["standings"][0]["value"] >= body["standings"][1]["value"]
    only = c.get(f"{API}/best", params={"dataset": "llmbar-natural@1", "slice": "label=B", "backend": "shorter"}).json()
    assert [s["evaluator"] for s in only["standings"]] == ["shorter"]
    assert "label=B" in problem(c.get(f"{API}/best", params={"dataset": "llmbar-natural@1", "slice": "label=C"}), 404)["detail"]
    assert problem(c.get(f"{API}/best", params={"task_type": "pairwise", "slice": "label=A"}), 422)["field"] == "slice"


def test_checkpoint_parent_chain_and_model_card(scratch, tmp_path):
    c, reg = scratch.client, scratch.reg
    secret = tmp_path / "card.md"
    secret.write_text("# not for the API")
    reg.register_checkpoint("judge-x", kind="external", uri="external:judge-x-1", model_card=str(secret))
    reg.register_checkpoint("judge-x", kind="external", uri="external:judge-x-2", parent="judge-x@1")
    reg.register_checkpoint("judge-x", kind="external", uri="external:judge-x-3", parent="judge-x@2")
    body = c.get(f"{API}/checkpoints/judge-x@3").json()
    assert body == to_jsonable(reg.checkpoint_details("judge-x@3"))
    assert [p["ref"] for p in body["parents"]] == ["judge-x@2", "judge-x@1"] and body["parent_version"] == 2
    first = c.get(f"{API}/checkpoints/judge-x@1").json()
    assert first["model_card"] == str(secret) and first["model_card_text"] is None   # a file outside the store
    assert c.get(f"{API}/checkpoints/judge-x").json()["version"] == 3
    # a safetensors folder's README.md is its card, read from the store
    import numpy as np
    from safetensors.numpy import save_file

    folder = tmp_path / "tiny"
    folder.mkdir()
    save_file({"w": np.zeros((2, 2), dtype=np.float32)}, str(folder / "model.safetensors"))
    (folder / "README.md").write_text("# Tiny card\n<script>x</script>")
    reg.register_checkpoint("tiny-card", kind="encoder-scorer", path=folder)
    assert c.get(f"{API}/checkpoints/tiny-card@1").json()["model_card_text"] == "# Tiny card\n<script>x</script>"


def test_huge_json_bodies_are_refused_unread(scratch):
    c, reg = scratch.client, scratch.reg
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    before = _state(reg)
    huge = json.dumps({"checkpoint": "longer@1", "name": "huge", "config": {"x": "y" * (2 << 20)}})
    assert problem(c.post(f"{API}/evaluators", content=huge, headers=auth), 413)["title"] == "PayloadTooLarge"

    def streamed():
        yield b'{"note": "'
        for _ in range(300):
            yield b"z" * 10_000
        yield b'"}'
    problem(c.post(f"{API}/regressions/{scratch.regression_id}/ack", content=streamed(), headers=auth), 413)
    problem(c.post(f"{API}/evaluators", content=b"{not json", headers=auth), 422)
    assert _state(reg) == before


def _tmp_files(reg) -> list[Path]:
    tmp = Path(reg.settings.store) / "tmp"
    return sorted(tmp.rglob("*")) if tmp.exists() else []


def test_upload_a_dataset_version(scratch):
    c, reg = scratch.client, scratch.reg
    auth = {"Authorization": f"Bearer {TOKEN}"}
    form = {"task_type": "pairwise", "map": MAP, "description": "my <b>prefs</b>"}
    r = c.post(f"{API}/datasets/my-prefs/versions", files={"file": ("prefs v1.csv", CSV, "text/csv")}, data=form,
               headers=auth)
    assert r.status_code == 201, r.text
    assert r.json()["created"] is True and r.json()["rows"] == 3 and r.json()["version"] == 1
    assert r.headers["location"] == f"{API}/datasets/my-prefs@1"
    rows = reg.load_table("my-prefs@1").to_pylist()
    assert sorted(x["instruction"] for x in rows) == ["Name a colour", "Say hi", "What is 2+2?"]
    assert reg.dataset("my-prefs").source == "generic"
    listed = {d["name"]: d for d in c.get(f"{API}/datasets", params={"source": "generic"}).json()}
    assert listed["my-prefs"]["rows"] == 3
    again = c.post(f"{API}/datasets/my-prefs/versions", files={"file": ("prefs.csv", CSV, "text/csv")}, data=form,
                   headers=auth)
    assert again.status_code == 200 and again.json()["created"] is False
    # a second version with a label map
    csv2 = CSV.replace(b",A\n", b",first\n").replace(b",B\n", b",second\n")
    r = c.post(f"{API}/datasets/my-prefs/versions", files={"file": ("prefs.csv", csv2, "text/csv")},
               data={**form, "label_map": json.dumps({"first": "B", "second": "A"})}, headers=auth)
    assert r.status_code == 201 and r.json()["version"] == 2, r.text
    assert c.get(f"{API}/datasets/diff", params={"a": "my-prefs@1", "b": "my-prefs@2"}).json()["changed"] == 3
    assert _tmp_files(reg) == []


@pytest.mark.parametrize("case", ["missing-map", "bad-json-map", "bad-rows", "no-file", "bad-name", "unknown-field",
                                  "not-multipart", "bad-label", "empty-file"])
def test_a_rejected_upload_leaves_nothing_behind(scratch, case):
    c, reg = scratch.client, scratch.reg
    auth = {"Authorization": f"Bearer {TOKEN}"}
    before = _state(reg)
    name, files, data = "rejected-set", {"file": ("p.csv", CSV, "text/csv")}, {"task_type": "pairwise", "map": MAP}
    kwargs: dict = {}
    if case == "missing-map":
        data = {"task_type": "pairwise"}
    elif case == "bad-json-map":
        data = {**data, "map": "{instruction: q"}
    elif case == "bad-rows":
        files = {"file": ("p.csv", b"q,a,b,w\nx,,y,A\n\x00\xff,1\n", "text/csv")}
    elif case == "no-file":
        files = None
    elif case == "bad-name":
        name = "bad name@x"
    elif case == "unknown-field":
        data = {**data, "source": "llmbar"}
    elif case == "bad-label":
        files = {"file": ("p.csv", CSV.replace(b",B\n", b",maybe\n"), "text/csv")}
    elif case == "empty-file":
        files = {"file": ("p.csv", b"", "text/csv")}
    if case == "not-multipart":
        r = c.post(f"{API}/datasets/{name}/versions", json={"file": "x"}, headers=auth)
    else:
        r = c.post(f"{API}/datasets/{name}/versions", files=files, data=data, headers=auth, **kwargs)
    body = problem(r, 404 if r.status_code == 404 else 422)
    assert "/tmp" not in json.dumps(body) and "upload-" not in json.dumps(body)   # no server path
    assert _state(reg) == before
    assert _tmp_files(reg) == []
    assert c.get(f"{API}/datasets/{name}").status_code in (404, 422)


def test_the_upload_is_staged_in_the_store_tmp_folder_and_removed(scratch, monkeypatch):
    c, reg = scratch.client, scratch.reg
    seen: list[Path] = []
    register = reg.register_dataset

    def spy(name, **kwargs):
        path = Path(kwargs["path"])
        seen.append(path)
        assert path.is_file() and path.read_bytes() == CSV
        return register(name, **kwargs)

    monkeypatch.setattr(reg, "register_dataset", spy)
    r = c.post(f"{API}/datasets/staged-set/versions", files={"file": ("../../etc/passwd <x>.csv", CSV, "text/csv")},
               data={"task_type": "pairwise", "map": MAP}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 201, r.text
    (path,) = seen
    assert Path(reg.settings.store) / "tmp" in path.parents and path.suffix == ".csv"
    assert ".." not in path.name and "/" not in path.name and not path.exists() and not path.parent.exists()


def test_the_upload_is_written_off_the_event_loop(scratch, monkeypatch):
    """Every write of the file part (and its opening, closing and removal) runs in a worker thread, never on
    the thread that runs the event loop; the file still arrives whole, in several batches when large."""
    import asyncio
    import threading

    from registry.web import api as web_api

    c = scratch.client
    seen: list[tuple[str, bool]] = []

    def on_loop() -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True

    for name in ("_headers_done", "_data", "_end"):
        original = getattr(web_api._Multipart, name)

        def spy(self, *args, _original=original, _name=name):
            seen.append((_name, on_loop()))
            assert threading.current_thread() is not threading.main_thread() or not on_loop()
            return _original(self, *args)

        monkeypatch.setattr(web_api._Multipart, name, spy)
    monkeypatch.setattr(web_api, "UPLOAD_BATCH", 4096)
    big = b"q,a,b,w\n" + b"".join(b"question %d,answer,other answer,A\n" % i for i in range(600))
    assert len(big) > 4 * 4096
    boundary = b"offLOOPboundary"

    def chunks():   # streamed in 1000-byte chunks (the test client may join them)
        head = b"".join(b"--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n" % (boundary, k, v)
                        for k, v in ((b"task_type", b"pairwise"), (b"map", MAP.encode())))
        body = head + (b"--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n\r\n"
                       % boundary) + big + b"\r\n--%s--\r\n" % boundary
        for i in range(0, len(body), 1000):
            yield body[i:i + 1000]

    r = c.post(f"{API}/datasets/off-loop-set/versions", content=chunks(), headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": f"multipart/form-data; boundary={boundary.decode()}"})
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 600
    assert [n for n, _ in seen].count("_data") >= 3                    # the two fields and the file
    assert seen and not [n for n, loop in seen if loop], seen           # none on the event loop
    assert _tmp_files(scratch.reg) == []


def test_upload_over_the_limit_is_a_413_and_leaves_nothing(scratch, monkeypatch):
    c, reg = scratch.client, scratch.reg
    auth = {"Authorization": f"Bearer {TOKEN}"}
    before = _state(reg)
    monkeypatch.setenv("AUTORATER_MAX_UPLOAD_MB", "0.01")            # about 10 KB
    big = b"q,a,b,w\n" + b"".join(b"question %d,answer,other answer,A\n" % i for i in range(2000))
    assert len(big) > 20_000
    r = c.post(f"{API}/datasets/too-big/versions", files={"file": ("big.csv", big, "text/csv")},
               data={"task_type": "pairwise", "map": MAP}, headers=auth)
    body = problem(r, 413)
    assert body["code"] == "upload_too_large" and "AUTORATER_MAX_UPLOAD_MB" in body["detail"]
    # streamed without a Content-Length: stopped while writing
    def chunks():
        boundary = b"xyzBOUNDARY"
        yield b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\n'
        for _ in range(50):
            yield big[:1000]
        yield b"\r\n--" + boundary + b"--\r\n"
    r = c.post(f"{API}/datasets/too-big/versions", content=chunks(), headers={
        **auth, "Content-Type": "multipart/form-data; boundary=xyzBOUNDARY"})
    problem(r, 413)
    assert _state(reg) == before and _tmp_files(reg) == []
    problem(c.get(f"{API}/datasets/too-big"), 404)
    monkeypatch.setenv("AUTORATER_MAX_UPLOAD_MB", "1")
    r = c.post(f"{API}/datasets/small-enough/versions", files={"file": ("ok.csv", big, "text/csv")},
               data={"task_type": "pairwise", "map": MAP}, headers=auth)
    assert r.status_code == 201, r.text


def test_start_a_run_and_poll_its_job(scratch):
    c, reg = scratch.client, scratch.reg
    auth = {"Authorization": f"Bearer {TOKEN}"}
    problem(c.post(f"{API}/runs", json={"evaluator": "no-such", "dataset": "llmbar-natural"}, headers=auth), 404)
    problem(c.post(f"{API}/runs", json={"evaluator": "random", "dataset": "llmbar-natural@9"}, headers=auth), 404)
    problem(c.post(f"{API}/runs", json={"evaluator": "random"}, headers=auth), 422)
    r = c.post(f"{API}/runs", json={"evaluator": "random", "dataset": "llmbar-natural"}, headers=auth)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    assert r.headers["location"] == f"{API}/jobs/{job_id}" and r.json()["dataset"] == scratch.natural_v2
    deadline = time.monotonic() + 120
    while True:
        job = c.get(r.headers["location"]).json()
        if job["status"] in ("succeeded", "failed"):
            break
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job["status"] == "succeeded", job
    run = c.get(f"{API}/runs/{job['run_id']}").json()
    assert run == to_jsonable(reg.run(job["run_id"]))
    assert run["evaluator"] == "random" and run["dataset"] == scratch.natural_v2 and run["status"] == "succeeded"
    problem(c.get(f"{API}/jobs/999999"), 404)


def test_the_api_module_goes_through_the_python_api():
    """registry/web/api.py calls the facade (registry.api): no adapter or service import."""
    import registry.web.api as web_api
    from tests.layering import violations

    source = Path(web_api.__file__).read_text(encoding="utf-8")
    assert violations(source, ("registry.adapters", "registry.services"), "registry.web") == []


def test_a_ranking_is_encoded_once_per_answer(client, web_registry):
    """The same (memoised) ranking is answered from its encoded JSON; a different answer is not."""
    from registry.web import api as web_api

    first = client.get("/api/v1/leaderboard", params={"dataset": web_registry.natural_v2})
    again = client.get("/api/v1/leaderboard", params={"dataset": web_registry.natural_v2})
    other = client.get("/api/v1/leaderboard", params={"dataset": web_registry.gptout})
    assert first.status_code == again.status_code == other.status_code == 200
    assert first.content == again.content and first.json() != other.json()
    assert first.headers["content-type"].startswith("application/json")
    assert len(web_api._encoded) <= web_api.ENCODED_RANKINGS


def test_the_matrix_is_kept_until_a_run_lands(scratch):
    """`headline_matrix` answers from its per-generation copy, and a new run (or version) makes a new one."""
    reg = scratch.reg
    before = reg.headline_matrix()
    assert reg.headline_matrix() is before
    names = set(before.evaluators)
    new = next(e.name for e in reg.evaluators() if e.name not in names)
    run = reg.evaluate(new, scratch.natural_v2, n_boot=50)
    after = reg.headline_matrix()
    assert after is not before and new in after.evaluators
    assert any(c.run == run.id for c in after.cells)
    page = scratch.client.get(f"{API}/matrix").json()
    assert new in page["evaluators"]


def test_evaluator_kinds_is_the_light_read_of_evaluators(web_registry):
    reg = web_registry.reg
    assert reg.evaluator_kinds() == {e.name: e.kind for e in reg.evaluators()}
    assert list(reg.evaluator_kinds()) == sorted(reg.evaluator_kinds()) and "gpt-4/llmbar-vanilla" in reg.evaluator_kinds()
