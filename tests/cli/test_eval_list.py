"""Defect 12 of issue 11: ``autorater eval list`` — runs newest first with their evaluator,
dataset@version, status, counts, headline metric and times; filters in SQL; unknown names are
NotFound with "did you mean", an unknown status is InvalidInput listing the statuses."""

from __future__ import annotations

import json

from tests.cli.conftest import LONG_A, LONG_B, column_text


def test_eval_list_newest_first_with_headline(runs_registry, cli_at):
    cli = cli_at(runs_registry)
    res = cli("eval", "list", "--json")
    assert res.exit_code == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [r["evaluator"] for r in rows] == [LONG_B, LONG_A, "always-first"]
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)
    for r in rows:
        shown = json.loads(cli("eval", "show", str(r["id"]), "--json").stdout)
        headline = next(m for m in shown["metrics"] if m["name"] == r["headline"] and m["slice"] == "all")
        assert r["value"] == headline["value"] and (r["ci_low"], r["ci_high"]) == (headline["ci_low"], headline["ci_high"])
        assert (r["dataset"], r["status"], r["n_examples"], r["n_judgments"]) == ("my-prefs@1", "succeeded", 4, 8)
        assert r["started_at"] <= r["finished_at"]
    assert {r["headline"] for r in rows} == {"accuracy"}
    # in the preference file the human picked the shorter response every time, the first one twice
    assert [r["value"] for r in rows] == [1.0, 0.0, 0.5]


def test_eval_list_filters(runs_registry, cli_at):
    cli = cli_at(runs_registry)

    def ids(*args):
        res = cli("eval", "list", "--json", *args)
        assert res.exit_code == 0, res.stderr
        return [r["evaluator"] for r in json.loads(res.stdout)]

    assert ids("--evaluator", LONG_A) == [LONG_A]
    assert ids("--dataset", "my-prefs") == [LONG_B, LONG_A, "always-first"]
    assert ids("--dataset", "my-prefs@1", "--status", "succeeded", "--limit", "2") == [LONG_B, LONG_A]
    assert ids("--status", "failed") == []
    assert ids("--status", "running") == []


def test_eval_list_errors_name_the_alternatives(runs_registry, cli_at):
    cli = cli_at(runs_registry)
    res = cli("eval", "list", "--dataset", "my-pref")
    assert res.exit_code == 3 and "did you mean 'my-prefs'" in res.stderr
    res = cli("eval", "list", "--dataset", "my-prefs@7")
    assert res.exit_code == 3 and "no version 7" in res.stderr
    res = cli("eval", "list", "--evaluator", "always-frist")
    assert res.exit_code == 3 and "did you mean 'always-first'" in res.stderr
    res = cli("eval", "list", "--status", "done")
    assert res.exit_code == 2
    assert all(s in res.stderr for s in ("running", "succeeded", "failed"))
    assert "Traceback" not in res.stderr + res.stdout


def test_eval_list_table_keeps_long_names_whole_at_80_columns(runs_registry, cli_at):
    out = cli_at(runs_registry)("eval", "list").stdout
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    names = column_text(out, "dataset").replace(" ", "")
    assert LONG_A in names and LONG_B in names and "my-prefs@1" in names
