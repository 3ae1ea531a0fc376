"""``autorater evaluator create --cascade``, ``eval run`` of a cascade and ``best --json`` /
``--max-cost-per-1000`` through the command line, on the small preference registry (three runs)."""

from __future__ import annotations

import json

from tests.cli.conftest import LONG_A, LONG_B

MEMBERS = f"{LONG_A},{LONG_B}"


def test_cascade_commands(runs_registry, cli_at):
    cli = cli_at(runs_registry)
    r = cli("evaluator", "create", "--cascade", MEMBERS, "--target", "0.8", "--delta", "0.2", "--folds", "2",
            "--name", "prefs-cascade", "--json")
    assert r.exit_code == 0, r.output
    created = json.loads(r.stdout)
    assert created["created"] and created["kind"] == "cascade"
    assert created["config"]["target"] == 0.8 and created["config"]["folds"] == 2
    again = cli("evaluator", "create", "--cascade", MEMBERS, "--target", "0.8", "--delta", "0.2", "--folds", "2",
                "--name", "prefs-cascade")
    assert again.exit_code == 0 and "unchanged" in again.stdout and "→" in again.stdout
    r = cli("eval", "run", "--evaluator", "prefs-cascade", "--dataset", "my-prefs", "--n-boot", "50", "--json")
    assert r.exit_code == 0, r.output
    run = json.loads(r.stdout)
    assert run["status"] == "succeeded" and list(run["provenance"]["member_runs"]) == [LONG_A, LONG_B]
    for args in ((), ("--max-cost-per-1000", "0")):                 # both members are free local heuristics
        r = cli("best", "--dataset", "my-prefs", *args, "--json")
        assert r.exit_code == 0, r.output
        kinds = {s["evaluator"]: s["kind"] for s in json.loads(r.stdout)["standings"]}
        assert kinds["prefs-cascade"] == "cascade"


def test_cascade_errors_are_one_line(runs_registry, cli_at):
    cli = cli_at(runs_registry)
    before = len(runs_registry.store.list_evaluators())
    r = cli("evaluator", "create", "--cascade", MEMBERS, "--jury", MEMBERS)
    assert r.exit_code != 0 and "leave out --jury" in r.output and "Traceback" not in r.output
    r = cli("evaluator", "create", "--cascade", LONG_A)
    assert r.exit_code != 0 and "a cascade needs at least two member evaluators" in r.output
    r = cli("evaluator", "create", "--cascade", "always-frist," + LONG_A)
    assert r.exit_code != 0 and "did you mean 'always-first'" in r.output and "Traceback" not in r.output
    r = cli("evaluator", "create", "--cascade", MEMBERS, "--delta", "1.5")
    assert r.exit_code != 0 and "delta must lie strictly between 0 and 1" in r.output
    assert len(runs_registry.store.list_evaluators()) == before
    r = cli("evaluator", "create", "--cascade", MEMBERS, "--name", "five-folds")
    assert r.exit_code == 0, r.output
    r = cli("eval", "run", "--evaluator", "five-folds", "--dataset", "my-prefs")
    assert r.exit_code != 0 and "too few for 5 folds" in r.output and "Traceback" not in r.output
    assert not runs_registry.store.list_runs(evaluator="five-folds")
