"""``autorater evaluator create --jury``, ``eval run`` of a jury, ``best --json`` / ``--max-cost-per-1000``
and ``analyze jury`` through the command line, on the small preference registry (three runs)."""

from __future__ import annotations

import json

from tests.cli.conftest import LONG_A, LONG_B

MEMBERS = f"always-first,{LONG_A},{LONG_B}"


def test_jury_commands(runs_registry, cli_at):
    cli = cli_at(runs_registry)
    r = cli("evaluator", "create", "--jury", MEMBERS, "--combine", "majority", "--name", "prefs-jury", "--json")
    assert r.exit_code == 0, r.output
    created = json.loads(r.stdout)
    assert created["created"] and created["kind"] == "jury" and created["config"]["combine"] == "majority"
    again = cli("evaluator", "create", "--jury", MEMBERS, "--name", "prefs-jury")
    assert again.exit_code == 0 and "unchanged" in again.stdout
    r = cli("eval", "run", "--evaluator", "prefs-jury", "--dataset", "my-prefs", "--n-boot", "50", "--json")
    assert r.exit_code == 0, r.output
    run = json.loads(r.stdout)
    assert run["status"] == "succeeded" and set(run["provenance"]["member_runs"]) == {"always-first", LONG_A, LONG_B}
    # best ranks the jury with the single evaluators, says its kind, and the cost cap keeps it (all members free)
    for args in ((), ("--max-cost-per-1000", "0"), ("--max-cost-per-1k", "0.5")):
        r = cli("best", "--dataset", "my-prefs", *args, "--json")
        assert r.exit_code == 0, r.output
        kinds = {s["evaluator"]: s["kind"] for s in json.loads(r.stdout)["standings"]}
        assert kinds["prefs-jury"] == "jury" and kinds["always-first"] == "always-first"
    # analyze jury: the only odd jury of three candidates, with the paired test against the best single
    r = cli("analyze", "jury", "--dataset", "my-prefs", "--n-boot", "50", "--json")
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert got["n_subsets"] == 1 and set(got["best"]["members"]) == {"always-first", LONG_A, LONG_B}
    assert got["best_single"]["evaluator"] == LONG_B and "p_value" in got["test"]
    r = cli("analyze", "jury", "--dataset", "my-prefs", "--n-boot", "50")
    assert r.exit_code == 0 and "best jury − best single" in r.stdout


def test_jury_errors_are_one_line(runs_registry, cli_at):
    cli = cli_at(runs_registry)
    r = cli("evaluator", "create", "--jury", "always-frist," + LONG_A)
    assert r.exit_code != 0 and "no evaluator named 'always-frist'; did you mean 'always-first'" in r.output
    assert "Traceback" not in r.output
    r = cli("evaluator", "create", "--jury", MEMBERS, "--combine", "weighted", "--name", "w-jury")
    assert r.exit_code == 0, r.output
    r = cli("eval", "run", "--evaluator", "w-jury", "--dataset", "my-prefs")
    assert r.exit_code != 0 and "4 examples are too few for 5 folds" in r.output and "Traceback" not in r.output
    assert not runs_registry.store.list_runs(evaluator="w-jury")
    r = cli("evaluator", "create", "--jury", MEMBERS, "--price-per-1k-tokens", "2")
    assert r.exit_code != 0 and "leave out --checkpoint" in r.output
    r = cli("analyze", "jury", "--dataset", "my-prefs", "--budget", "-1")
    assert r.exit_code != 0 and "budget" in r.output
