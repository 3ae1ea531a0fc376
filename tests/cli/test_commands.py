"""The CLI through its runner on temporary registries: help texts, --json listings, exit codes."""

from __future__ import annotations

import json

import click
import pytest

from registry.cli.main import app

NATURAL = "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/dataset.json"


def _commands(group: click.Group, prefix=()):
    for name, cmd in group.commands.items():
        yield prefix + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, prefix + (name,))


def test_every_command_has_help_text():
    import typer.main

    root = typer.main.get_command(app)
    missing = [" ".join(path) for path, cmd in _commands(root) if not (cmd.help or "").strip()]
    assert not missing, f"commands without help: {missing}"
    for path, cmd in _commands(root):
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert (param.help or "").strip(), f"option {param.name} of {' '.join(path)} has no help"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_listing_commands_json(cli, data_root):
    assert cli("dataset", "register", "llmbar-natural", "--source", "llmbar", "--path", data_root / NATURAL).exit_code == 0
    sources = json.loads(cli("sources", "list", "--json").stdout)
    by_name = {s["name"]: s for s in sources}
    assert by_name["llmbar"]["origin"] == "https://github.com/princeton-nlp/LLMBar"
    assert all(s["origin"].startswith("http") and s["license"] and s["citation"] for s in sources)
    listing = json.loads(cli("dataset", "list", "--json").stdout)
    assert [(d["name"], d["latest_version"], d["rows"]) for d in listing] == [("llmbar-natural", 1, 100)]
    shown = json.loads(cli("dataset", "show", "llmbar-natural@1", "--json").stdout)
    assert shown["row_count"] == 100 and shown["validation"]["success"] is True
    assert shown["provenance"]["adapter"] == "llmbar"
    assert json.loads(cli("db", "current", "--json").stdout)["current"] == json.loads(
        cli("db", "current", "--json").stdout)["head"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_register_diff_export_via_cli(cli, data_root, tmp_path):
    raw = json.loads((data_root / NATURAL).read_text())
    assert cli("dataset", "register", "nat", "--source", "llmbar", "--path", data_root / NATURAL).exit_code == 0
    raw[3]["label"] = 3 - raw[3]["label"]
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(raw))
    out = json.loads(cli("dataset", "register", "nat", "--source", "llmbar", "--path", edited, "--json").stdout)
    assert out["version"] == 2 and out["created"] and out["diff"]["changed"] == 1
    diff = json.loads(cli("dataset", "diff", "nat@1", "nat@2", "--json").stdout)
    assert len(diff["changed_ids"]) == 1 and diff["added"] == 0 and diff["removed"] == 0
    text = cli("dataset", "diff", "nat@1", "nat@2").stdout
    assert diff["changed_ids"][0] in text
    res = cli("dataset", "export", "nat@2", "--out", tmp_path / "nat.jsonl")
    assert res.exit_code == 0
    lines = (tmp_path / "nat.jsonl").read_text().splitlines()
    assert len(lines) == 100
    assert cli("dataset", "export", "nat@2", "--out", tmp_path / "nat.xml").exit_code == 2


def test_out_of_date_schema_is_refused_with_the_fix(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    monkeypatch.setenv("AUTORATER_HOME", str(tmp_path))
    runner = CliRunner()
    res = runner.invoke(app, ["dataset", "list"])
    assert res.exit_code == 5 and "autorater init" in res.stderr
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert runner.invoke(app, ["dataset", "list", "--json"]).stdout.strip() == "[]"
