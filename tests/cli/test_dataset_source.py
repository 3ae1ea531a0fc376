"""Defect 4 of issue 11: a dataset registered with ``--source generic`` keeps its source — the
adapter and the file it was read from — in ``dataset list`` and ``dataset show`` (text and JSON),
while the source catalog (public sources, their SQL rows) is unchanged."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import GENERIC_MAP, column_text, write_prefs_csv

NATURAL = "princeton-nlp__LLMBar/Dataset/LLMBar/Natural/dataset.json"


def test_generic_dataset_lists_and_shows_its_adapter_and_file(sqlite_registry, cli_at, tmp_path, data_root):
    cli = cli_at(sqlite_registry)
    prefs = write_prefs_csv(tmp_path / "prefs.csv")
    res = cli("dataset", "register", "my-prefs", "--source", "generic", "--path", prefs, "--task-type", "pairwise",
              *GENERIC_MAP)
    assert res.exit_code == 0, res.stderr
    assert cli("dataset", "register", "llmbar-natural", "--source", "llmbar", "--path", data_root / NATURAL).exit_code == 0

    listing = {d["name"]: d for d in json.loads(cli("dataset", "list", "--json").stdout)}
    assert listing["my-prefs"]["source"] == "generic"
    assert listing["my-prefs"]["source_file"] == str(prefs.resolve())
    assert (listing["my-prefs"]["latest_version"], listing["my-prefs"]["rows"]) == (1, 4)
    assert listing["llmbar-natural"]["source"] == "llmbar"
    assert listing["llmbar-natural"]["source_file"] == str((data_root / NATURAL).resolve())

    shown = json.loads(cli("dataset", "show", "my-prefs@1", "--json").stdout)
    assert (shown["source"], shown["source_file"]) == ("generic", str(prefs.resolve()))
    assert shown["provenance"]["adapter"] == "generic"

    table = cli("dataset", "list").stdout
    assert "generic:prefs.csv" in column_text(table, "source").replace(" ", "")
    assert "llmbar" in column_text(table, "source")
    text = cli("dataset", "show", "my-prefs").stdout
    assert f"sourcegeneric,file{prefs.resolve()}" in "".join(text.split())

    # the catalog of public sources has no row for a user's own file
    assert "generic" not in {s.name for s in sqlite_registry.store.list_sources()}
    assert {s.name for s in sqlite_registry.store.list_sources()} == {"llmbar"}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_dataset_list_rejects_an_unknown_task_type(cli):
    res = cli("dataset", "list", "--task-type", "pairwize")
    assert res.exit_code == 2
    assert "pairwise" in res.stderr and "Traceback" not in res.stderr
